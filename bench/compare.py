"""Value-by-value comparison of result frames (floats to 1e-9, timestamps exact, nulls alike)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

TOLERANCE = 1e-9


def _normalise(series: pd.Series) -> tuple[str, np.ndarray, np.ndarray]:
    """(kind, values, null mask) with one representation per kind, whatever pandas dtype came in."""
    null = series.isna().to_numpy()
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(series.dtype):
        values = pd.DatetimeIndex(pd.to_datetime(series, utc=True)).as_unit("us").asi8  # NaT -> min int
        return "time", values, null
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return "number", series.astype("float64").to_numpy(na_value=np.nan), null
    values = series.astype(object).to_numpy()
    if len(values) and all(isinstance(v, (int, float, np.integer, np.floating)) for v in values[~null]):
        return "number", pd.to_numeric(series).astype("float64").to_numpy(), null
    return "object", values, null


def compare_frames(left: pd.DataFrame, right: pd.DataFrame, columns: list[str], label: str) -> dict[str, Any]:
    """Compare `columns` of two frames row by row (same order); counts and the first mismatches."""
    result: dict[str, Any] = {"pair": label, "rows": [len(left), len(right)], "mismatches": 0, "first": []}
    if len(left) != len(right):
        result["mismatches"] = abs(len(left) - len(right))
        result["first"].append(f"row counts differ: {len(left)} vs {len(right)}")
        result["ok"] = False
        return result
    for column in columns:
        if column not in left.columns or column not in right.columns:
            result["mismatches"] += len(left)
            result["first"].append(f"column {column} missing on one side")
            continue
        kind_l, a, null_a = _normalise(left[column].reset_index(drop=True))
        kind_r, b, null_b = _normalise(right[column].reset_index(drop=True))
        bad = null_a != null_b
        both = ~null_a & ~null_b
        if kind_l == "number" and kind_r == "number":
            close = np.isclose(a, b, rtol=TOLERANCE, atol=TOLERANCE, equal_nan=True)
            bad |= both & ~close
        elif kind_l == kind_r == "time":
            bad |= both & (a != b)
        else:
            bad |= both & np.array([x != y for x, y in zip(a, b)], dtype=bool)
        n_bad = int(bad.sum())
        if n_bad:
            result["mismatches"] += n_bad
            i = int(np.flatnonzero(bad)[0])
            result["first"].append(f"{column}: {n_bad} rows differ, e.g. row {i}: "
                                   f"{left[column].iloc[i]!r} vs {right[column].iloc[i]!r}")
    result["ok"] = result["mismatches"] == 0
    result["first"] = result["first"][:5]
    return result
