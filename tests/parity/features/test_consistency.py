"""The consistency check's comparison rules and log reading, on small hand-made logs."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from parity.features.consistency import (
    Consistency,
    Tolerance,
    breaches,
    compare_feature,
    read_log,
    sample_mask,
)
from serving.log import SCHEMA, LogRow

TOL = Tolerance()
AT = datetime(2026, 5, 30, tzinfo=timezone.utc)


def _masks(dtype, logged, offline):
    result = compare_feature(dtype, logged, pd.Series(offline), TOL)
    return {k: v.tolist() for k, v in result.items() if k != "smape"}, result["smape"]


def test_numbers_from_json_compare_by_value_int_and_float_alike():
    masks, smape = _masks("Int64", [3, 3.0, None, None, 5, 2], pd.array([3, 3, None, 4, None, 3], dtype="Int64"))
    assert masks["mismatch"] == [False, False, False, True, True, True]
    assert masks["missing_logged"] == [False, False, False, True, False, False]
    assert masks["missing_offline"] == [False, False, False, False, True, False]
    assert masks["value"] == [False, False, False, False, False, True]
    assert smape[0] == 0 and np.isnan(smape[2]) and smape[5] == 2 * 1 / 5


def test_nan_and_null_are_both_missing_and_tolerance_applies():
    masks, smape = _masks("Float64", [None, 0.1 + 0.2, 0.0, 1.0], [np.nan, 0.3, 0.0, 1.0001])
    assert masks["mismatch"] == [False, False, False, True]
    assert smape[2] == 0.0  # 0 vs 0 is equal, not 0/0


def test_a_value_of_another_kind_is_a_type_mismatch_never_coerced():
    masks, _ = _masks("Float64", ["1.5", True, 1.5], [1.5, 1.0, 1.5])
    assert masks["type"] == [True, True, False] and masks["mismatch"] == [True, True, False]
    masks, _ = _masks("String", ["acme", 5, None], ["acme", "5", None])
    assert masks["type"] == [False, True, False] and masks["mismatch"] == [False, True, False]


def test_timestamps_compare_as_instants():
    offline = pd.Series(pd.to_datetime(["2026-05-30T00:00:00Z", "2026-05-30T00:00:00Z"], utc=True))
    masks, _ = _masks("UnixTimestamp", ["2026-05-30 02:00:00+02:00", "2026-05-29 00:00:00+00:00"], offline)
    assert masks["mismatch"] == [False, True]


def _part(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([r._asdict() for r in rows], schema=SCHEMA), path)


def _row(request, customer, role="primary", status="ok", features='{"x": 1}'):
    return LogRow(request_id=request, logged_at=AT, request_at=AT, customer_id=customer, model_version="v0001",
                  role=role, status=status, score=0.5 if status == "ok" else None, decision=None,
                  latency_ms=1.0, features=features)


def test_read_log_counts_statuses_keeps_one_row_per_request_and_skips_the_wal(tmp_path):
    folder = tmp_path / "predictions"
    _part(folder / "date=2026-05-30" / "part-1.parquet", [
        _row("r1", "acme:A", "shadow"), _row("r1", "acme:A"), _row("r1", "acme:B", status="unknown_customer", features=None),
        _row("r1", "acme:C", status="stale_features")])
    _part(folder / "_wal" / "ignored.parquet", [_row("r9", "acme:Z")])
    _part(folder / "date=2026-05-30" / ".part-2.parquet.tmp.parquet", [_row("r8", "acme:Y")])
    found = Consistency()
    chunks = list(read_log([("serving", p) for p in sorted(folder.rglob("part-1.parquet"))], 100, 10, found))
    assert found.statuses == {"ok": 1, "unknown_customer": 1, "stale_features": 1} and found.log_rows == 4
    assert len(chunks) == 1 and chunks[0]["role"].tolist() == ["primary"]
    from parity.features.consistency import log_files

    assert [p.name for _, p in log_files(folder, None)] == ["part-1.parquet"]


def test_sampling_is_deterministic_and_about_the_rate():
    frame = pd.DataFrame({"request_id": [f"r{i}" for i in range(20000)], "customer_id": "acme:A"})
    mask = sample_mask(frame, 0.1)
    assert (mask == sample_mask(frame, 0.1)).all() and 1700 < mask.sum() < 2300
    assert sample_mask(frame, 1.0).all()


def test_breaches_follow_the_threshold():
    found = Consistency()
    from parity.features.consistency import FeatureTally

    found.tallies[("churn_v1", "spend_90d")] = FeatureTally("Float64", compared=100, mismatches=5)
    found.tallies[("churn_v1", "spend_30d")] = FeatureTally("Float64", compared=100, mismatches=0)
    assert [b["feature"] for b in breaches(found, 0.0, 1)] == ["spend_90d"]
    assert breaches(found, 0.05, 1) == [] and breaches(found, 0.0, 101) == []
