"""Evaluation on the held-out test period: comparison table, segments, fairness, leakage, monotonicity."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from parity.features.retrieval import ENTITY_KEY, TIME_COLUMN
from parity.models.prepare import PrepareSpec, prepare
from training.config import BootstrapConfig, CostConfig, SegmentConfig
from training.dataset import LABEL
from training.errors import LeakageError, TrainingError
from training.metrics import METRICS, bootstrap, interval, point_metrics, roc_auc
from training.models import Candidate

COUNT_METRICS = ("TP", "FP", "TN", "FN")


def check_feature_leakage(
    prepared: pd.DataFrame, y: np.ndarray, sources: Sequence[str], max_auc: float
) -> dict[str, float]:
    """Single-feature ROC-AUC per source feature on train; LeakageError above `max_auc`.

    No honest feature predicts next-60-day churn almost perfectly on its own; one that does is
    derived from the outcome (or read after it).
    """
    best: dict[str, float] = {}
    for column, source in zip(prepared.columns, sources):
        values = prepared[column].to_numpy()
        if np.all(values == values[0]):
            continue
        auc = roc_auc(y, values)
        best[source] = max(best.get(source, 0.5), auc, 1.0 - auc)
    leaks = {name: round(auc, 4) for name, auc in best.items() if auc > max_auc}
    if leaks:
        raise LeakageError(
            f"feature(s) predict the label alone with ROC-AUC > {max_auc} on train: {leaks} "
            "(derived from the outcome or read after the as-of time?)"
        )
    return {name: round(auc, 6) for name, auc in sorted(best.items())}


def resampling_units(frame: pd.DataFrame, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap (cluster, stratum) per row.

    customer: a customer's rows are one cluster, stratified by whether the customer churned in any
    row; row: every row its own cluster, stratified by its label.
    """
    if unit == "row":
        return np.arange(len(frame)), frame[LABEL].to_numpy()
    return frame[ENTITY_KEY].to_numpy(), frame.groupby(ENTITY_KEY)[LABEL].transform(
        "max"
    ).to_numpy()


def compare(
    test: pd.DataFrame,
    candidates: Sequence[Candidate],
    boot: BootstrapConfig,
    costs: CostConfig,
    seed: int,
) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Long table (model, metric, value, ci_low, ci_high) on test, plus the raw bootstrap draws."""
    y = test[LABEL].to_numpy()
    models = {c.name: (c.test_scores, c.test_decisions()) for c in candidates}
    groups, strata = resampling_units(test, boot.unit)
    draws = bootstrap(
        y, models, groups, strata, boot.reps, seed, costs.false_positive, costs.false_negative
    )
    rows = []
    for c in candidates:
        point = point_metrics(
            y, c.test_scores, c.test_decisions(), costs.false_positive, costs.false_negative
        )
        for metric in METRICS:
            low, high = interval(draws[c.name][metric], boot.confidence)
            rows.append(
                {
                    "model": c.name,
                    "metric": metric,
                    "value": point[metric],
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    return pd.DataFrame(rows), draws


def paired_difference(
    draws: dict[str, dict[str, np.ndarray]],
    test: pd.DataFrame,
    candidates: Sequence[Candidate],
    better: str,
    worse: str,
    metric: str,
    confidence: float,
    costs: CostConfig,
) -> dict[str, Any]:
    """`better - worse` on one metric with a paired bootstrap CI (same resamples for both)."""
    y = test[LABEL].to_numpy()
    by_name = {c.name: c for c in candidates}
    point = {
        name: point_metrics(
            y,
            by_name[name].test_scores,
            by_name[name].test_decisions(),
            costs.false_positive,
            costs.false_negative,
        )[metric]
        for name in (better, worse)
    }
    low, high = interval(draws[better][metric] - draws[worse][metric], confidence)
    better_ci, worse_ci = (interval(draws[name][metric], confidence) for name in (better, worse))
    return {
        "metric": metric,
        "better": better,
        "worse": worse,
        "difference": point[better] - point[worse],
        "ci_low": low,
        "ci_high": high,
        "excludes_zero": bool(low > 0 or high < 0),
        # the stricter reading: do the two models' own intervals overlap?
        "marginal_cis_overlap": bool(better_ci[0] <= worse_ci[1] and worse_ci[0] <= better_ci[1]),
    }


def comparison_table(long: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Wide display table: rows = metrics, columns = models, cells 'value [low, high]'."""

    def cell(row: pd.Series) -> str:
        if row["metric"] in COUNT_METRICS or row["metric"] == "expected cost":
            return f"{row['value']:.0f} [{row['ci_low']:.0f}, {row['ci_high']:.0f}]"
        return (
            f"{row['value']:.{digits}f} [{row['ci_low']:.{digits}f}, {row['ci_high']:.{digits}f}]"
        )

    shown = long.assign(cell=long.apply(cell, axis=1))
    table = shown.pivot(index="metric", columns="model", values="cell")
    return table.loc[list(dict.fromkeys(long["metric"])), list(dict.fromkeys(long["model"]))]


def with_segments(frame: pd.DataFrame, edges: Sequence[int]) -> pd.DataFrame:
    """Add `age_band` (age at the as-of time from birth_year; 'unknown' when missing)."""
    age = frame[TIME_COLUMN].dt.year - pd.to_numeric(frame["birth_year"]).astype("float64")
    bounds = [-np.inf, *edges, np.inf]
    labels = (
        [f"<{edges[0]}"]
        + [f"{a}-{b - 1}" for a, b in itertools.pairwise(edges)]
        + [f"{edges[-1]}+"]
    )
    band = pd.cut(age, bounds, right=False, labels=labels).astype(object)
    return frame.assign(age_band=band.where(age.notna(), "unknown"))


def segment_table(
    test: pd.DataFrame,
    candidate: Candidate,
    segments: SegmentConfig,
    boot: BootstrapConfig,
    costs: CostConfig,
    seed: int,
) -> pd.DataFrame:
    """Every comparison metric (with CI) per segment value, plus rows, prevalence and decision rate."""
    frame = with_segments(test, segments.age_band_edges)
    decisions = candidate.test_decisions()
    rows = []
    for dimension in segments.columns:
        values = frame[dimension].astype(object).where(frame[dimension].notna(), "unknown")
        for value in sorted(values.unique(), key=str):
            mask = (values == value).to_numpy()
            part = frame[mask]
            y, scores, decided = (
                part[LABEL].to_numpy(),
                candidate.test_scores[mask],
                decisions[mask],
            )
            point = point_metrics(y, scores, decided, costs.false_positive, costs.false_negative)
            groups, strata = resampling_units(part, boot.unit)
            draws = bootstrap(
                y,
                {"m": (scores, decided)},
                groups,
                strata,
                boot.segment_reps,
                seed,
                costs.false_positive,
                costs.false_negative,
            )["m"]
            row = {
                "dimension": dimension,
                "segment": str(value),
                "rows": int(mask.sum()),
                "prevalence": float(y.mean()),
                "decision_rate": float(decided.mean()),
            }
            for metric in METRICS:
                low, high = interval(draws[metric], boot.confidence)
                row[metric] = point[metric]
                row[f"{metric} ci"] = (low, high)
            rows.append(row)
    return pd.DataFrame(rows)


def disparate_impact(segment_rows: pd.DataFrame, segments: SegmentConfig) -> pd.DataFrame:
    """Per dimension: min/max positive-decision rate over segments with >= min_rows rows; flag < threshold."""
    out = []
    for dimension, part in segment_rows.groupby("dimension", sort=False):
        big = part[part["rows"] >= segments.min_rows]
        if len(big) < 2:
            out.append(
                {
                    "dimension": dimension,
                    "segments": len(big),
                    "ratio": np.nan,
                    "flagged": False,
                    "lowest": "",
                    "highest": "",
                    "prevalence_ratio": np.nan,
                }
            )
            continue
        low, high = big.loc[big["decision_rate"].idxmin()], big.loc[big["decision_rate"].idxmax()]
        ratio = (
            low["decision_rate"] / high["decision_rate"] if high["decision_rate"] > 0 else np.nan
        )
        out.append(
            {
                "dimension": dimension,
                "segments": len(big),
                "ratio": float(ratio),
                "flagged": bool(ratio < segments.disparate_impact_threshold),
                "lowest": f"{low['segment']} ({low['decision_rate']:.3f})",
                "highest": f"{high['segment']} ({high['decision_rate']:.3f})",
                # context: a decision-rate gap that mirrors a churn-rate gap is not by itself unfair
                "prevalence_ratio": float(big["prevalence"].min() / big["prevalence"].max())
                if big["prevalence"].max() > 0
                else np.nan,
            }
        )
    return pd.DataFrame(out)


def feature_contributions(
    contributions: np.ndarray, columns: Sequence[str], sources: Sequence[str]
) -> pd.DataFrame:
    """Mean |TreeSHAP contribution| per source feature (a one-hot group's columns summed per row first)."""
    frame = pd.DataFrame(contributions[:, : len(columns)], columns=list(columns))
    grouped = frame.T.groupby(list(sources), sort=False).sum().T
    mean_abs = grouped.abs().mean().sort_values(ascending=False)
    return pd.DataFrame({"feature": mean_abs.index, "mean_abs_contribution": mean_abs.to_numpy()})


def monotone_violations(
    frame: pd.DataFrame,
    spec: PrepareSpec,
    predict: Callable[[pd.DataFrame], np.ndarray],
    feature: str,
    direction: int,
    values: Sequence[float],
) -> float:
    """Largest move against `direction` when `feature` sweeps `values` on each real row (0 = none)."""
    predictions = []
    for value in sorted(values):
        changed = frame.copy()
        changed[feature] = pd.Series(value, index=frame.index).astype(frame[feature].dtype)
        predictions.append(predict(prepare(changed, spec)))
    steps = np.diff(np.column_stack(predictions), axis=1) * direction
    return float(max(0.0, -steps.min())) if steps.size else 0.0


def check_monotone(
    test: pd.DataFrame,
    train: pd.DataFrame,
    spec: PrepareSpec,
    predict: Callable[[pd.DataFrame], np.ndarray],
    constraints: dict[str, int],
    rows: int = 500,
) -> dict[str, float]:
    """Sweep each constrained service feature over its training quantiles on real test rows.

    Returns the largest reversal per feature; raises TrainingError if any is positive. Derived
    columns are covered through their inputs (the sweep re-runs `prepare`).
    """
    sample = test.iloc[np.linspace(0, len(test) - 1, min(rows, len(test))).astype(int)]
    found = {}
    for feature, direction in constraints.items():
        if feature not in test.columns or direction == 0:
            continue
        values = pd.to_numeric(train[feature]).dropna().astype("float64")
        grid = np.unique(np.quantile(values, np.linspace(0, 1, 12)))
        if str(test[feature].dtype) == "Int64":
            grid = np.unique(np.round(grid))
        found[feature] = monotone_violations(sample, spec, predict, feature, direction, grid)
    broken = {name: value for name, value in found.items() if value > 0}
    if broken:
        raise TrainingError(f"monotone constraint violated by the trained model: {broken}")
    return found
