"""Scoring every customer at one as-of time: pure functions (frames in, the results table out).

Rows out = customers in, in the same order. A customer is scored (status 'ok') only from a
feature row at most `max_feature_age_days` (dbt var) old at the as-of time. Otherwise it is kept,
never dropped, with a null score, decision, reasons and segment, and a status saying why:
'no_features' (no feature row at or before the as-of time: no data yet) or 'stale_features'
(its newest row is older than the limit, or than the view's TTL; the row's time, its age and the
client's watermark are in the row) — "no data yet" is never scored as "no purchase".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from batch.reasons import reasons
from parity.config import ChurnPopulation
from parity.features.freshness import (
    NO_FEATURES,
    OK,
    STALE,
    Watermarks,
    age_days,
    client_of,
    stale_detail,
    verdict,
)
from parity.features.retrieval import ENTITY_KEY, TIME_COLUMN
from parity.jsonable import features_json

STALE_FEATURES = STALE
NO_DATA_DETAIL = "not scored: no feature row at or before the as-of time (no data for this customer yet)"
REASON_COLUMNS = ("reason_1", "reason_2", "reason_3")
# The results table (one Parquet file per as-of time under <data>/scores/); the dbt source
# `scores.batch_scores` documents the same columns.
SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("client_id", pa.string()),
        ("source_customer_id", pa.string()),
        ("as_of_at", pa.timestamp("us", tz="UTC")),
        ("status", pa.string()),  # ok | no_features | stale_features
        ("status_detail", pa.string()),  # why a customer was not scored, in words (null when ok)
        ("features_at", pa.timestamp("us", tz="UTC")),  # event time of the newest feature row <= as_of
        ("feature_age_days", pa.float64()),  # as_of_at - features_at, in days
        ("watermark_at", pa.timestamp("us", tz="UTC")),  # the client's data is complete up to here
        ("is_active", pa.bool_()),  # in the model's training population (see is_active)
        ("score", pa.float64()),
        ("decision", pa.bool_()),
        ("threshold", pa.float64()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("feature_service", pa.string()),
        ("reason_1", pa.string()),
        ("reason_2", pa.string()),
        ("reason_3", pa.string()),
        ("segment_id", pa.int64()),
        ("segment_name", pa.string()),
        ("segments_version", pa.string()),
        ("scored_at", pa.timestamp("us", tz="UTC")),
        ("features", pa.string()),  # JSON of the feature values used (as in the serving log)
    ]
)


def customers_at(customers: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Customers the platform knew at `as_of` (first_loaded_at <= as_of), ordered by id."""
    known = customers[pd.to_datetime(customers["first_loaded_at"], utc=True) <= pd.Timestamp(as_of)]
    return known.sort_values(ENTITY_KEY, kind="stable").reset_index(drop=True)


def entity_frame(customers: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """customer_id + event_timestamp (= as_of) for point-in-time retrieval."""
    return pd.DataFrame(
        {
            ENTITY_KEY: customers[ENTITY_KEY].astype(str).to_numpy(),
            TIME_COLUMN: pd.Series([pd.Timestamp(as_of)] * len(customers), dtype="datetime64[us, UTC]"),
        }
    )


def has_features(frame: pd.DataFrame, feature_names: list[str]) -> np.ndarray:
    """True where at least one feature is present (an unknown entity comes back all-missing)."""
    if frame.empty:
        return np.zeros(0, dtype=bool)
    return frame[feature_names].notna().any(axis=1).to_numpy()


def is_active(frame: pd.DataFrame, found: np.ndarray, population: ChurnPopulation | None) -> pd.arrays.BooleanArray:
    """Active per the churn definition (parity.config.ChurnPopulation, from the dbt var): the
    population the model was trained on. Inactive customers are scored too, but that is
    extrapolation; null without features or when the service lacks the feature."""
    out = pd.array([pd.NA] * len(frame), dtype="boolean")
    feature = population.feature if population is not None else None
    if feature and feature in frame.columns and len(frame):
        values = pd.to_numeric(frame[feature]).astype("Float64")
        active = (values >= population.min_purchases).fillna(False).to_numpy(dtype=bool)
        out[found] = active[found]
    return out


def freshness_status(found: np.ndarray, features_at: Sequence[datetime | None], as_of: datetime,
                     limit: timedelta) -> tuple[np.ndarray, np.ndarray]:
    """Per row the status (ok / no_features / stale_features) and the feature row's age in days.

    Stale: the newest row at or before `as_of` is older than `limit`, or exists while the
    point-in-time read returned nothing (older than the view's TTL). An unknown row time (a
    source the check cannot read) leaves the status to the features' presence."""
    # the age and the rule are serving's (parity.features.freshness), so both judge a row alike
    ages_or_none = [None if t is None or pd.isna(t) else age_days(as_of, pd.Timestamp(t).to_pydatetime())
                    for t in features_at]
    ages = np.array([np.nan if a is None else a for a in ages_or_none], dtype="float64")
    known = ~np.isnan(ages)
    too_old = known & (np.array([verdict(a, limit) == STALE for a in ages_or_none], dtype=bool) | ~found)
    status = np.where(too_old, STALE, np.where(found, OK, NO_FEATURES))
    return status.astype(object), ages


def score_customers(
    customers: pd.DataFrame,
    frame: pd.DataFrame,
    model: Any,
    as_of: datetime,
    scored_at: datetime,
    top_k: int = 3,
    segments: Any | None = None,
    segment_frame: pd.DataFrame | None = None,
    population: ChurnPopulation | None = None,
    features_at: Sequence[datetime | None] | None = None,
    max_age: timedelta | None = None,
    watermarks: Watermarks | None = None,
) -> pd.DataFrame:
    """The results table: one row per customer, aligned with `customers` (same order).

    `frame` is the point-in-time retrieval for those customers (same order, service of `model`);
    `segments` (a parity.models.segments.SegmentModel) assigns segments from `segment_frame` (its own
    service's retrieval, default `frame`). `features_at` is each customer's newest feature row time
    at or before `as_of` (`parity.features.freshness.newest_feature_times`), judged against
    `max_age`; `watermarks` says up to when each client's data is complete (reported only).
    """
    if list(frame[ENTITY_KEY].astype(str)) != list(customers[ENTITY_KEY].astype(str)):
        raise ValueError("the feature frame is not aligned with the customers (order or ids differ)")
    n = len(customers)
    feature_names = [name for name, _ in model.spec.features]
    present = has_features(frame, feature_names)
    if features_at is None or max_age is None:
        features_at, max_age = [None] * n, timedelta.max
    status, ages = freshness_status(present, features_at, as_of, max_age)
    ids = customers[ENTITY_KEY].astype(str).tolist()
    marks = watermarks.by_client if watermarks is not None else {}
    watermark = [marks.get(client_of(i)) for i in ids]
    detail = [None if s == OK else stale_detail(a, max_age, w) if s == STALE else NO_DATA_DETAIL
              for s, a, w in zip(status, ages, watermark)]
    found = status == OK
    ok = np.flatnonzero(found)
    score = np.full(n, np.nan)
    decision = pd.array([pd.NA] * n, dtype="boolean")
    texts: list[list[str]] = [[] for _ in range(n)]
    if len(ok):
        rows = frame.iloc[ok].reset_index(drop=True)
        prepared = model.prepare(rows)
        score[ok] = model.predict_proba(prepared)[:, 1]
        decision[ok] = score[ok] >= model.threshold
        if top_k > 0:
            contributions = model.contributions(prepared)
            for i, sentences in zip(ok, reasons(rows, prepared, contributions, model.spec, top_k)):
                texts[i] = sentences
    segment_id = pd.array([pd.NA] * n, dtype="Int64")
    segment_name = np.full(n, None, dtype=object)
    if segments is not None and len(ok):
        seg_rows = (segment_frame if segment_frame is not None else frame).iloc[ok]
        ids = segments.assign(seg_rows.reset_index(drop=True))
        segment_id[ok] = ids
        segment_name[ok] = segments.name_of(ids)
    features = np.full(n, None, dtype=object)
    logged = np.flatnonzero(present)  # stale rows keep the values they were not scored on
    rows = frame.iloc[logged]
    columns = {name: rows[name].astype(object).where(rows[name].notna(), None).tolist() for name in feature_names}
    features[logged] = list(features_json(columns, range(len(logged)), feature_names).values())
    out = pd.DataFrame(
        {
            "customer_id": customers[ENTITY_KEY].astype(str).to_numpy(),
            "client_id": customers["client_id"].astype(str).to_numpy(),
            "source_customer_id": customers["source_customer_id"].astype(object).to_numpy()
            if "source_customer_id" in customers.columns
            else None,
            "as_of_at": pd.Timestamp(as_of),
            "status": status,
            "status_detail": detail,
            "features_at": pd.to_datetime(list(features_at), utc=True),
            "feature_age_days": ages,
            "watermark_at": pd.to_datetime(watermark, utc=True),
            "is_active": is_active(frame, found, population),
            "score": score,
            "decision": decision,
            "threshold": float(model.threshold),
            "model_name": model.model,
            "model_version": model.version,
            "feature_service": model.feature_service,
        }
    )
    for k, column in enumerate(REASON_COLUMNS):
        out[column] = [t[k] if k < len(t) else None for t in texts]
    out["segment_id"] = segment_id
    out["segment_name"] = segment_name
    out["segments_version"] = getattr(segments, "version", None) if segments is not None else None
    out["scored_at"] = pd.Timestamp(scored_at)
    out["features"] = features
    return out


def to_arrow(results: pd.DataFrame) -> pa.Table:
    """The results as an Arrow table with the documented schema (types fixed, nulls kept)."""
    return pa.Table.from_pandas(results[SCHEMA.names], schema=SCHEMA, preserve_index=False)
