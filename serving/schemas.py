"""Request and response bodies of the prediction API (validated by FastAPI/pydantic)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_CUSTOMERS = 1000


class CustomerIn(BaseModel):
    """One customer to score, with the optional request-time inputs of on-demand features."""

    model_config = ConfigDict(extra="forbid")
    customer_id: str = Field(min_length=1, max_length=200, description="Platform key '<client>:<customer id>'.")
    request_at: datetime | None = Field(
        default=None, description="Time to predict for (UTC if no offset); default: now."
    )


def utc_times(values: Sequence[datetime | None], default: datetime) -> list[datetime]:
    """Each `request_at` in UTC (a naive time is UTC; None -> `default`), converted once per distinct
    time: a request's customers usually share one, and a pydantic validator per customer cost
    ~1 ms per 500 customers. Equal instants hash alike whatever their offset, so the cache is exact."""
    utc: dict[datetime, datetime] = {}
    out = []
    for value in values:
        if value is None:
            out.append(default)
            continue
        converted = utc.get(value)
        if converted is None:
            converted = utc[value] = (value.replace(tzinfo=timezone.utc) if value.tzinfo is None
                                      else value.astimezone(timezone.utc))
        out.append(converted)
    return out


class PredictRequest(BaseModel):
    """1..1000 distinct customers."""

    model_config = ConfigDict(extra="forbid")
    customers: list[CustomerIn] = Field(min_length=1, max_length=MAX_CUSTOMERS)

    @field_validator("customers")
    @classmethod
    def _distinct(cls, customers: list[CustomerIn]) -> list[CustomerIn]:
        seen, dupes = set(), []
        for c in customers:
            if c.customer_id in seen:
                dupes.append(c.customer_id)
            seen.add(c.customer_id)
        if dupes:
            raise ValueError(f"duplicate customer_id(s): {sorted(set(dupes))[:10]}")
        return customers


class Contribution(BaseModel):
    """One input's TreeSHAP contribution to the log-odds of churn, with the input's value."""

    feature: str
    value: float | None
    contribution: float


class Prediction(BaseModel):
    """The answer for one customer."""

    customer_id: str
    status: Literal["ok", "stale_features", "unknown_customer"] = Field(
        description="'ok' (scored); 'stale_features' (not scored: the customer's newest features are "
        "older than max_feature_age_days at request_at); 'unknown_customer' (not in the online store).")
    score: float | None = Field(description="Calibrated churn probability; null when status is not ok.")
    decision: bool | None = Field(description="score >= the model's threshold.")
    model_version: str
    contributions: list[Contribution] = []
    segment_id: int | None = Field(
        default=None,
        description="Customer segment (current `segments` model, as in batch scores); null when "
        "none is current or status is not ok.",
    )
    segment_name: str | None = Field(default=None, description="Generated segment name, e.g. 'Lapsed, long-standing'.")
    features_at: datetime | None = Field(
        default=None, description="Event time of the feature row used (UTC); null for an unknown customer.")
    feature_age_days: float | None = Field(
        default=None, description="Days from features_at to request_at; stale above max_feature_age_days.")
    watermark_at: datetime | None = Field(
        default=None, description="Time up to which the customer's client's data is known complete "
        "(client_watermarks mart); null when unknown.")
    detail: str | None = Field(default=None, description="Why the customer was not scored, in words.")


class ModelInfo(BaseModel):
    """Which model answered."""

    name: str
    version: str
    threshold: float
    feature_service: str


class PredictResponse(BaseModel):
    """Predictions in request order, the model and a request id (also in X-Request-ID)."""

    request_id: str
    model: ModelInfo
    predictions: list[Prediction]
