"""The benchmark's correctness checks can fail: compare_frames flags value, null and type drift."""

from __future__ import annotations

import pandas as pd

from bench.compare import compare_frames


def _frame(**overrides) -> pd.DataFrame:
    base = {
        "customer_id": ["a", "b", "c"],
        "spend": [1.0, 2.0, None],
        "count": pd.array([1, None, 3], dtype="Int64"),
        "at": pd.to_datetime(["2026-01-01 00:00:00", "2026-01-02 00:00:00", None], utc=True),
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_identical_frames_pass_with_other_representations() -> None:
    # float64 with NaN vs nullable Int64, naive-UTC vs aware timestamps: same values, same nulls
    other = _frame(count=[1.0, float("nan"), 3.0])
    assert compare_frames(_frame(), other, list(other.columns), "x")["ok"]


def test_float_beyond_tolerance_is_flagged() -> None:
    result = compare_frames(_frame(), _frame(spend=[1.0, 2.0 + 1e-6, None]), ["spend"], "x")
    assert not result["ok"] and result["mismatches"] == 1


def test_float_within_tolerance_passes() -> None:
    assert compare_frames(_frame(), _frame(spend=[1.0, 2.0 + 1e-12, None]), ["spend"], "x")["ok"]


def test_missingness_and_strings_and_times_are_flagged() -> None:
    assert not compare_frames(_frame(), _frame(spend=[1.0, 2.0, 0.0]), ["spend"], "x")["ok"]
    assert not compare_frames(_frame(), _frame(customer_id=["a", "b", "d"]), ["customer_id"], "x")["ok"]
    shifted = _frame(at=pd.to_datetime(["2026-01-01 00:00:00", "2026-01-02 00:00:01", None], utc=True))
    assert not compare_frames(_frame(), shifted, ["at"], "x")["ok"]


def test_row_count_and_missing_column_are_flagged() -> None:
    assert not compare_frames(_frame(), _frame().iloc[:2], ["spend"], "x")["ok"]
    assert not compare_frames(_frame(), _frame().drop(columns="spend"), ["spend"], "x")["ok"]
