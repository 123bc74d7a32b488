"""Scoring online features with a registered model: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from parity.prepare import prepare_matrix


@dataclass(frozen=True)
class Scored:
    """Scores, decisions and top contributions of a batch, aligned with the input rows."""

    scores: np.ndarray
    decisions: np.ndarray
    top: list[list[dict[str, Any]]]


def score_columns(model: Any, columns: Mapping[str, Sequence[Any]], top_k: int) -> Scored:
    """Prepare (the shared function), score (calibrated) and explain (TreeSHAP top-k by |value|).

    `columns` maps feature names to equal-length sequences of plain values (the online read),
    so the hot path needs no DataFrame.
    """
    matrix = prepare_matrix(columns, model.spec)
    if len(matrix) == 0:
        return Scored(np.empty(0), np.empty(0, dtype=bool), [])
    if top_k <= 0:
        scores = model.predict_proba(matrix)[:, 1]
        return Scored(scores, scores >= model.threshold, [[] for _ in range(len(matrix))])
    scores, contribs = model.score_and_explain(matrix)
    contribs = contribs[:, :-1]  # drop the bias column
    names = list(model.spec.columns)
    order = np.argsort(-np.abs(contribs), axis=1)[:, :top_k]
    top = [
        [{"feature": names[c], "value": _shown(columns, names[c], row, matrix[row, c]),
          "contribution": float(contribs[row, c])} for c in cols]
        for row, cols in enumerate(order)
    ]
    return Scored(scores, scores >= model.threshold, top)


def score_frame(model: Any, frame: pd.DataFrame, top_k: int) -> Scored:
    """`score_columns` on a retrieval frame."""
    return score_columns(model, {name: frame[name].tolist() for name in frame.columns}, top_k)


def _shown(columns: Mapping[str, Sequence[Any]], name: str, row: int, prepared: float) -> float | None:
    """The customer's own value of a raw feature (None if missing, never the imputed value);
    the prepared value for one-hot, missing-flag and derived columns."""
    if name not in columns:
        return float(prepared) if np.isfinite(prepared) else None
    value = columns[name][row]
    return None if value is None or value is pd.NA or value != value else float(value)


def feature_snapshot(columns: Mapping[str, Sequence[Any]], row: int, names: list[str]) -> dict[str, Any]:
    """JSON-ready feature values of one row (for the prediction log)."""
    out = {}
    for name in names:
        value = columns[name][row]
        if value is None or value is pd.NA or (isinstance(value, float) and not np.isfinite(value)):
            out[name] = None
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        elif isinstance(value, np.integer):
            out[name] = int(value)
        elif isinstance(value, np.floating):
            out[name] = float(value)
        else:
            out[name] = str(value)
    return out
