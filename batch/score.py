"""Scoring every customer at one as-of time: pure functions (frames in, the results table out).

Rows out = customers in, in the same order. A customer whose point-in-time features are all
missing (no feature row within the view's TTL at the as-of time) is kept with status
'no_features' and null score, decision, reasons and segment — never dropped.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from batch.reasons import reasons
from parity.features.retrieval import ENTITY_KEY, TIME_COLUMN

OK, NO_FEATURES = "ok", "no_features"
REASON_COLUMNS = ("reason_1", "reason_2", "reason_3")
# The results table (one Parquet file per as-of time under <data>/scores/); the dbt source
# `scores.batch_scores` documents the same columns.
SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("client_id", pa.string()),
        ("source_customer_id", pa.string()),
        ("as_of_at", pa.timestamp("us", tz="UTC")),
        ("status", pa.string()),
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


def is_active(frame: pd.DataFrame, found: np.ndarray, feature: str | None) -> pd.arrays.BooleanArray:
    """Active per the churn definition (>= 1 purchase in the 90 days up to the as-of time): the
    population the model was trained on. Inactive customers are scored too, but that is
    extrapolation; null without features or when the service lacks the feature."""
    out = pd.array([pd.NA] * len(frame), dtype="boolean")
    if feature and feature in frame.columns and len(frame):
        values = pd.to_numeric(frame[feature]).astype("Float64")
        active = (values >= 1).fillna(False).to_numpy(dtype=bool)
        out[found] = active[found]
    return out


def feature_json(frame: pd.DataFrame, feature_names: list[str]) -> list[str]:
    """Per row, the feature values as JSON (None for missing), the serving log's format."""
    out = []
    columns = [frame[name].astype(object).where(frame[name].notna(), None).tolist() for name in feature_names]
    for values in zip(*columns) if columns else [() for _ in range(len(frame))]:
        out.append(json.dumps({n: _plain(v) for n, v in zip(feature_names, values)}, sort_keys=False))
    return out


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, (str, int, bool)):
        return value
    return str(value)


def score_customers(
    customers: pd.DataFrame,
    frame: pd.DataFrame,
    model: Any,
    as_of: datetime,
    scored_at: datetime,
    top_k: int = 3,
    segments: Any | None = None,
    segment_frame: pd.DataFrame | None = None,
    active_feature: str | None = "purchase_count_90d",
) -> pd.DataFrame:
    """The results table: one row per customer, aligned with `customers` (same order).

    `frame` is the point-in-time retrieval for those customers (same order, service of `model`);
    `segments` (a parity.models.segments.SegmentModel) assigns segments from `segment_frame` (its own
    service's retrieval, default `frame`).
    """
    if list(frame[ENTITY_KEY].astype(str)) != list(customers[ENTITY_KEY].astype(str)):
        raise ValueError("the feature frame is not aligned with the customers (order or ids differ)")
    n = len(customers)
    feature_names = [name for name, _ in model.spec.features]
    found = has_features(frame, feature_names)
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
    features[ok] = feature_json(frame.iloc[ok], feature_names)
    out = pd.DataFrame(
        {
            "customer_id": customers[ENTITY_KEY].astype(str).to_numpy(),
            "client_id": customers["client_id"].astype(str).to_numpy(),
            "source_customer_id": customers["source_customer_id"].astype(object).to_numpy()
            if "source_customer_id" in customers.columns
            else None,
            "as_of_at": pd.Timestamp(as_of),
            "status": np.where(found, OK, NO_FEATURES),
            "is_active": is_active(frame, found, active_feature),
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
