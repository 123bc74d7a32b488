"""Scoring online features with a registered model: pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Scored:
    """Scores, decisions and top contributions of a batch, aligned with the input rows."""

    scores: np.ndarray
    decisions: np.ndarray
    top: list[list[dict[str, Any]]]


def score_frame(model: Any, frame: pd.DataFrame, top_k: int) -> Scored:
    """Prepare (the shared function), score (calibrated) and explain (TreeSHAP top-k by |value|)."""
    if frame.empty:
        return Scored(np.empty(0), np.empty(0, dtype=bool), [])
    prepared = model.prepare(frame)
    scores = model.predict_proba(prepared)[:, 1]
    decisions = scores >= model.threshold
    top: list[list[dict[str, Any]]] = [[] for _ in range(len(frame))]
    if top_k > 0:
        contribs = model.contributions(prepared).drop(columns=["bias"]).to_numpy()
        values = prepared.to_numpy(dtype="float64")
        names = list(prepared.columns)
        raw_columns = {name: frame[name].to_numpy() for name in names if name in frame.columns}
        order = np.argsort(-np.abs(contribs), axis=1)[:, :top_k]
        for row, columns in enumerate(order):
            top[row] = [
                {"feature": names[c], "value": _shown(raw_columns, names[c], row, values[row, c]),
                 "contribution": float(contribs[row, c])}
                for c in columns
            ]
    return Scored(scores, decisions, top)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _shown(raw_columns: dict[str, np.ndarray], name: str, row: int, prepared: float) -> float | None:
    """The customer's own value of a raw feature (None if missing, never the imputed value);
    the prepared value for one-hot, missing-flag and derived columns."""
    if name not in raw_columns:
        return _finite(prepared)
    value = raw_columns[name][row]
    return None if value is None or value is pd.NA or value != value else float(value)


def feature_snapshot(frame: pd.DataFrame, row: int, names: list[str]) -> dict[str, Any]:
    """JSON-ready feature values of one row (for the prediction log)."""
    out = {}
    for name in names:
        value = frame[name].iat[row]
        if value is None or value is pd.NA or (isinstance(value, float) and not np.isfinite(value)):
            out[name] = None
        elif isinstance(value, (np.integer,)):
            out[name] = int(value)
        elif isinstance(value, (np.floating,)):
            out[name] = float(value)
        else:
            out[name] = value if isinstance(value, (str, int, float, bool)) else str(value)
    return out
