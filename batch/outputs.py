"""Writing batch results: the results table (Parquet, read by dbt and the monitor) and per-client exports.

    <data>/scores/scores_<as-of>.parquet           every customer; one file per as-of time, so
                                                   re-scoring the same time replaces it
    <data>/exports/<client>/scores_<as-of>.csv     what a client receives: its customers only,
    <data>/exports/<client>/scores_<as-of>.parquet no feature values, reasons in words; a customer
                                                   not scored has an empty score and decision, its
                                                   status and status_detail say why (no data yet,
                                                   or features older than the limit: never shown
                                                   as "no purchase")

Files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from batch.score import to_arrow

SCORES_PREFIX = "scores_"
EXPORT_COLUMNS = (
    "customer_id",
    "source_customer_id",
    "status",
    "status_detail",
    "is_active",
    "score",
    "decision",
    "reason_1",
    "reason_2",
    "reason_3",
    "segment_id",
    "segment_name",
    "as_of_at",
    "features_at",
    "feature_age_days",
    "watermark_at",
    "model_version",
    "review_action",
    "review_reason",
    "reviewed_at",
    "review_batch_as_of",
)
TIME_COLUMNS = ("as_of_at", "features_at", "watermark_at", "reviewed_at")
# a reviewer's decision in the console (parity.reviews) that counts for each customer at this
# as-of time: approve / override / model_wrong, the reason from the list (never the free-text
# note: it may name people), when, and the batch it was taken on
REVIEW_COLUMNS = ("review_action", "review_reason", "reviewed_at", "review_batch_as_of")


def stamp(as_of: datetime) -> str:
    """File-name form of an as-of time: 20261129T000001Z."""
    return pd.Timestamp(as_of).tz_convert("UTC").strftime("%Y%m%dT%H%M%SZ")


def write_results(results: pd.DataFrame, scores_dir: Path, as_of: datetime) -> Path:
    """<scores_dir>/scores_<as-of>.parquet (replaced if it exists)."""
    scores_dir.mkdir(parents=True, exist_ok=True)
    target = scores_dir / f"{SCORES_PREFIX}{stamp(as_of)}.parquet"
    tmp = scores_dir / f".{target.name}.tmp"
    pq.write_table(to_arrow(results), tmp, coerce_timestamps="us")
    os.replace(tmp, target)
    return target


def with_reviews(results: pd.DataFrame, latest: pd.DataFrame) -> pd.DataFrame:
    """The results with REVIEW_COLUMNS from `latest` (`parity.reviews.latest_per_customer`);
    empty for customers nobody reviewed."""
    named = latest.rename(columns={"action": "review_action", "reason": "review_reason",
                                   "decided_at": "reviewed_at", "batch_as_of": "review_batch_as_of"})
    # typed even when empty, so every export file has the same schema
    named = named[["customer_id", *REVIEW_COLUMNS]].astype(
        {"customer_id": "object", "review_action": "string", "review_reason": "string",
         "review_batch_as_of": "string", "reviewed_at": "object"})
    named["reviewed_at"] = pd.to_datetime(named["reviewed_at"], utc=True).astype("datetime64[us, UTC]")
    out = results.drop(columns=[c for c in REVIEW_COLUMNS if c in results.columns])
    return out.merge(named, on="customer_id", how="left", validate="many_to_one")


def export_frame(results: pd.DataFrame) -> pd.DataFrame:
    """The client-facing columns (no features, no internal bookkeeping)."""
    return results[list(EXPORT_COLUMNS)].reset_index(drop=True)


def write_exports(
    results: pd.DataFrame,
    exports_dir: Path,
    as_of: datetime,
    clients: Sequence[str],
    formats: Sequence[str] = ("csv", "parquet"),
) -> dict[str, list[Path]]:
    """Per client (every name in `clients`, even with no customers: an empty file with headers)."""
    written: dict[str, list[Path]] = {}
    table = export_frame(results)
    for client in clients:
        rows = table[results["client_id"].to_numpy() == client].reset_index(drop=True)
        folder = exports_dir / client
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for fmt in formats:
            target = folder / f"{SCORES_PREFIX}{stamp(as_of)}.{fmt}"
            tmp = folder / f".{target.name}.tmp"
            if fmt == "csv":
                csv = rows.copy()
                for column in TIME_COLUMNS:
                    csv[column] = csv[column].map(lambda t: "" if pd.isna(t) else t.isoformat())
                csv.to_csv(tmp, index=False, float_format="%.6f", na_rep="")
            else:
                arrow = pa.Table.from_pandas(rows, preserve_index=False)
                pq.write_table(arrow, tmp, coerce_timestamps="us")
            os.replace(tmp, target)
            paths.append(target)
        written[client] = paths
    return written

