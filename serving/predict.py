"""Scoring online features with a registered model: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from parity.models.prepare import prepare_matrix
from parity.pandas_lazy import na

if TYPE_CHECKING:
    import pandas as pd


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
        scores = score_and_explain(model, matrix, explain=False)[0]
        return Scored(scores, scores >= model.threshold, [[] for _ in range(len(matrix))])
    scores, contribs = score_and_explain(model, matrix)
    contribs = contribs[:, :-1]  # drop the bias column
    order = np.argsort(-np.abs(contribs), axis=1)[:, :top_k]
    rows = np.arange(len(order))[:, None]
    shown = shown_values(columns, model.spec.columns, matrix)[rows, order]
    # the chosen cells as python objects in one go per array (per-cell numpy indexing was ~1 ms
    # of a 100-customer request); NaN -> None below, cell by cell only where there is one
    features = _names(model.spec.columns)[order].tolist()
    values, contributions = shown.tolist(), contribs[rows, order].tolist()
    for row, k in zip(*np.nonzero(np.isnan(shown))):
        values[row][k] = None
    top = [[{"feature": f, "value": v, "contribution": c} for f, v, c in zip(*cells)]
           for cells in zip(features, values, contributions)]
    return Scored(scores, scores >= model.threshold, top)


def shown_values(columns: Mapping[str, Sequence[Any]], names: Sequence[str], matrix: np.ndarray) -> np.ndarray:
    """The value each prepared column shows beside its contribution (NaN = None): a raw feature
    (a prepared column named like a read column) shows the customer's own value, never the
    imputed one; one-hot, missing-flag and derived columns show the prepared value (NaN when not
    finite)."""
    shown = np.where(np.isfinite(matrix), matrix, np.nan)
    for c, name in enumerate(names):
        source = columns.get(name)
        if source is not None:
            shown[:, c] = _raw_floats(source)
    return shown


def _raw_floats(values: Sequence[Any]) -> np.ndarray:
    """float(value) of each value, NaN for None / pd.NA / NaN (an infinite value stays infinite)."""
    missing = na()
    return np.array([np.nan if v is None or v is missing else v for v in values], dtype="float64")


_NAMES: dict[tuple[str, ...], np.ndarray] = {}


def _names(columns: tuple[str, ...]) -> np.ndarray:
    """The prepared column names as an object array (cached per spec's column tuple)."""
    names = _NAMES.get(columns)
    if names is None:
        if len(_NAMES) > 64:
            _NAMES.clear()
        names = _NAMES[columns] = np.asarray(columns, dtype=object)
    return names


def score_and_explain(model: Any, matrix: np.ndarray, explain: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Calibrated scores and TreeSHAP (bias last; None unless `explain`) of a prepared matrix:
    `LoadedModel.score_and_explain` — the numpy trees (`parity.models.trees`, = xgboost's scores
    bit for bit) and TreeSHAP from tables, one set of split decisions for both, no xgboost."""
    return model.score_and_explain(matrix, explain=explain)


def score_frame(model: Any, frame: pd.DataFrame, top_k: int) -> Scored:
    """`score_columns` on a retrieval frame."""
    return score_columns(model, {name: frame[name].tolist() for name in frame.columns}, top_k)
