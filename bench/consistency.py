"""Section 6: consistency-check throughput (`make consistency`), logged predictions per second.

A prediction log is synthesised from the synthetic repo: entity rows (customer, request time) get
their point-in-time features from `training_frame` — what serving reads at that time when the
online store holds the row — encoded as serving encodes them (`parity.jsonable.features_json`),
written as Parquet parts with the log's columns; a share of the rows are `unknown_customer` /
`stale_features` answers without features. `parity.features.consistency.check` then reads and
re-checks the whole log. Correct = every `ok` row compared and 0 mismatches.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench import synth
from bench.measure import stats

PART_ROWS = 20_000  # rows per log part (the service writes one per flush)


def write_log(store: Any, entity_df: pd.DataFrame, folder: Path) -> dict[str, int]:
    """The synthetic log's parts under `folder`; counts by status."""
    from parity.features.retrieval import training_frame
    from parity.jsonable import features_json

    frame = training_frame(store, entity_df, synth.SERVICE)
    names = [c for c in frame.columns if c not in ("customer_id", "event_timestamp")]
    found = frame[names].notna().any(axis=1).to_numpy()
    columns = {n: frame[n].astype(object).where(frame[n].notna(), None).tolist() for n in names}
    encoded = features_json(columns, np.flatnonzero(found).tolist(), names)
    status = np.where(found, "ok", "unknown_customer").astype(object)
    status[found & (np.arange(len(frame)) % 10 == 9)] = "stale_features"  # keep their features, as serving does
    logged_at = datetime.now(timezone.utc)
    table = pa.table({
        "request_id": pa.array([f"req-{i:09d}" for i in range(len(frame))], pa.string()),  # one customer each
        "logged_at": pa.array([logged_at] * len(frame), pa.timestamp("us", tz="UTC")),
        "request_at": pa.array(frame["event_timestamp"], pa.timestamp("us", tz="UTC")),
        "customer_id": pa.array(frame["customer_id"].astype(str), pa.string()),
        "model_version": pa.array(["v0001"] * len(frame), pa.string()),
        "role": pa.array(["primary"] * len(frame), pa.string()),
        "status": pa.array(status.tolist(), pa.string()),
        "features": pa.array([encoded.get(i) for i in range(len(frame))], pa.string()),
    })
    day = folder / f"date={logged_at:%Y-%m-%d}"
    day.mkdir(parents=True, exist_ok=True)
    for k in range(math.ceil(len(frame) / PART_ROWS)):
        pq.write_table(table.slice(k * PART_ROWS, PART_ROWS), day / f"part-{k:05d}.parquet")
    return {s: int((status == s).sum()) for s in ("ok", "unknown_customer", "stale_features")}


def task_time(args: dict[str, Any]) -> dict[str, Any]:
    """Synthesise the log, then time `reps` full checks of it."""
    from parity.config import Settings
    from parity.features.consistency import check, log_files
    from parity.features.feature_store import open_store

    root = Path(args["root"])
    store = open_store(Settings(data_dir=root / "data", project_root=root))
    entity_df = synth.entity_frame(args["rows"], args["entities"], args["weeks"], seed=5)
    folder = root / "predictions"
    counts = write_log(store, entity_df, folder)
    files = log_files(folder, None)
    seconds, found = [], None
    for _ in range(args["reps"]):
        found = check(store, files, lambda version: synth.SERVICE, max_rows=args["rows"], chunk_rows=args["chunk_rows"])
        seconds.append(found.seconds)
    table = found.features()
    mismatches = int(table["mismatches"].sum()) if len(table) else 0
    return {
        "rows": len(entity_df), "statuses": counts, "parts": len(files), "checked_rows": found.checked_rows,
        "features": len(table), "mismatches": mismatches, "times": {"platform": stats(seconds)},
        "rows_per_second": found.checked_rows / float(np.median(seconds)),
        "correct": mismatches == 0 and found.checked_rows == counts["ok"] and len(table) > 0,
    }
