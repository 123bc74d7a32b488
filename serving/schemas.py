"""Request and response bodies of the prediction API (validated by FastAPI/pydantic)."""

from __future__ import annotations

import email.message
import functools
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Literal

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic_core import PydanticUndefined as Undefined

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
    status: Literal["ok", "stale_features", "unknown_customer", "malformed_customer_id"] = Field(
        description="'ok' (scored); 'stale_features' (not scored: the customer's newest features are "
        "older than max_feature_age_days at request_at); 'unknown_customer' (not in the online store); "
        "'malformed_customer_id' (not scored: the id breaks its client's declared id pattern, which "
        "`detail` names; no customer can have it).")
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


# ---- the request body, parsed without FastAPI's body handling ---------------------------------
# `/v1/predict` reads its body itself (serving.routes): FastAPI's json.loads, per-customer model
# objects and dependency solving were ~0.3 ms of a one-customer request and ~1 ms at 500. The
# fast path accepts only bodies PredictRequest accepts, with the same values; anything else
# (bad JSON, a wrong type or length, extra keys, duplicates...) goes through PredictRequest, so
# the 422 errors are the ones FastAPI gave (tests/serving/test_app.py, test_request_body.py).
_CUSTOMER_KEYS = frozenset(CustomerIn.model_fields)
_ID_FIELD = CustomerIn.model_fields["customer_id"].metadata
_ID_MIN = next(m.min_length for m in _ID_FIELD if getattr(m, "min_length", None) is not None)
_ID_MAX = next(m.max_length for m in _ID_FIELD if getattr(m, "max_length", None) is not None)
_TIME = TypeAdapter(datetime)
_PARSED: dict[str, datetime] = {}  # request_at text -> parsed (a request's customers share one)


@functools.lru_cache(maxsize=64)
def _json_types(content_type: str | None) -> bool:
    """Whether FastAPI parses a body of this Content-Type as JSON (strict: the header is needed)."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def _fast(value: Any) -> tuple[list[str], list[datetime | None]] | None:
    """(ids, request_at values) of a body PredictRequest surely accepts as is, else None."""
    if type(value) is not dict or value.keys() != {"customers"}:
        return None
    customers = value["customers"]
    if type(customers) is not list or not 1 <= len(customers) <= MAX_CUSTOMERS:
        return None
    ids, times = [], []
    for item in customers:
        if type(item) is not dict or not item.keys() <= _CUSTOMER_KEYS:
            return None
        cid, at = item.get("customer_id"), item.get("request_at")
        if type(cid) is not str or not _ID_MIN <= len(cid) <= _ID_MAX:
            return None
        if at is not None:
            if type(at) is not str:
                return None  # e.g. epoch numbers: pydantic's own rules decide
            parsed = _PARSED.get(at)
            if parsed is None:
                try:
                    parsed = _TIME.validate_python(at)
                except ValidationError:
                    return None
                if len(_PARSED) > 1000:
                    _PARSED.clear()
                _PARSED[at] = parsed
            at = parsed
        ids.append(cid)
        times.append(at)
    if len(set(ids)) != len(ids):
        return None
    return ids, times


def parse_predict_body(raw: bytes, content_type: str | None) -> tuple[list[str], list[datetime | None]]:
    """The customer ids and request times of a `/v1/predict` body; RequestValidationError with
    FastAPI's errors (locations under 'body') when PredictRequest refuses it."""
    value: Any = Undefined
    fast = None
    if raw and _json_types(content_type):
        try:
            value = orjson.loads(raw)
            fast = _fast(value)
        except orjson.JSONDecodeError:
            # (what orjson refuses but json reads, e.g. a lone surrogate, is left to pydantic)
            try:  # FastAPI's parser: its error position and message (and what it accepts, e.g. NaN)
                value = json.loads(raw)
            except json.JSONDecodeError as err:
                raise RequestValidationError([{"type": "json_invalid", "loc": ("body", err.pos),
                                               "msg": "JSON decode error", "input": {},
                                               "ctx": {"error": err.msg}}], body=err.doc) from err
    elif raw:
        value = raw  # not JSON by its Content-Type: refused below, as FastAPI did
    if value is Undefined:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    if fast is not None:
        return fast
    try:
        body = PredictRequest.model_validate(value, from_attributes=True)  # as FastAPI validates
    except ValidationError as err:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in err.errors(include_url=False)], body=value) from err
    return [c.customer_id for c in body.customers], [c.request_at for c in body.customers]
