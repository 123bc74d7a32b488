"""Classification metrics with row weights, the cost-minimising threshold and a paired bootstrap.

Every metric is computed from scores sorted once (descending, ties grouped as scikit-learn does),
so a bootstrap resample is just a weight vector over the same rows: thousands of resamples cost a
few cumulative sums each. Tied scores are never split arbitrarily (lift@decile takes the expected
share of a tie group at the cut), so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

METRICS = (
    "TP",
    "FP",
    "TN",
    "FN",
    "precision",
    "recall",
    "F1",
    "PR-AUC",
    "ROC-AUC",
    "lift@top decile",
    "expected cost",
)
CHUNK = 100  # resamples evaluated at once (bounds memory: CHUNK x rows floats)


@dataclass(frozen=True)
class Ranked:
    """Scores sorted descending, with labels, decisions and the last index of each tie group."""

    order: np.ndarray
    y: np.ndarray
    decision: np.ndarray
    group_end: np.ndarray


def rank(y: np.ndarray, scores: np.ndarray, decision: np.ndarray | None = None) -> Ranked:
    """Sort rows by descending score (stable) and find the tie groups."""
    scores = np.asarray(scores, dtype="float64")
    order = np.argsort(-scores, kind="stable")
    ordered = scores[order]
    group_end = np.r_[np.flatnonzero(np.diff(ordered) != 0), len(ordered) - 1]
    decision = np.zeros(len(scores)) if decision is None else np.asarray(decision, dtype="float64")
    return Ranked(order, np.asarray(y, dtype="float64")[order], decision[order], group_end)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def weighted_metrics(
    ranked: Ranked, weights: np.ndarray, cost_fp: float, cost_fn: float, top_share: float = 0.1
) -> dict[str, np.ndarray]:
    """All METRICS for each row of `weights` (shape (reps, n), in the original row order)."""
    w = np.atleast_2d(weights)[:, ranked.order]
    pos, neg = w * ranked.y, w * (1.0 - ranked.y)
    tp_k = np.cumsum(pos, axis=1)[:, ranked.group_end]
    fp_k = np.cumsum(neg, axis=1)[:, ranked.group_end]
    p, n = tp_k[:, -1], fp_k[:, -1]
    d_tp = np.diff(tp_k, axis=1, prepend=0.0)
    d_fp = np.diff(fp_k, axis=1, prepend=0.0)
    pr_auc = np.nansum(d_tp * _safe_div(tp_k, tp_k + fp_k), axis=1) / np.where(p > 0, p, np.nan)
    tp_prev = tp_k - d_tp
    roc_auc = np.sum(d_fp * (tp_k + tp_prev) / 2.0, axis=1) / np.where(p * n > 0, p * n, np.nan)

    total = p + n
    target = top_share * total
    cum = tp_k + fp_k
    k = np.argmax(cum >= target[:, None] - 1e-12, axis=1)
    rows = np.arange(len(k))
    prev_cum = np.where(k > 0, cum[rows, np.maximum(k - 1, 0)], 0.0)
    prev_tp = np.where(k > 0, tp_k[rows, np.maximum(k - 1, 0)], 0.0)
    share = _safe_div(target - prev_cum, cum[rows, k] - prev_cum)
    top_tp = prev_tp + np.nan_to_num(share) * (tp_k[rows, k] - prev_tp)
    lift = _safe_div(_safe_div(top_tp, target), _safe_div(p, total))

    tp = np.sum(pos * ranked.decision, axis=1)
    fp = np.sum(neg * ranked.decision, axis=1)
    fn, tn = p - tp, n - fp
    precision, recall = _safe_div(tp, tp + fp), _safe_div(tp, p)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    return {
        "TP": tp,
        "FP": fp,
        "TN": tn,
        "FN": fn,
        "precision": precision,
        "recall": recall,
        "F1": f1,
        "PR-AUC": pr_auc,
        "ROC-AUC": roc_auc,
        "lift@top decile": lift,
        "expected cost": fp * cost_fp + fn * cost_fn,
    }


def point_metrics(
    y: np.ndarray, scores: np.ndarray, decision: np.ndarray, cost_fp: float, cost_fn: float
) -> dict[str, float]:
    """METRICS on the rows as they are (every weight 1)."""
    values = weighted_metrics(rank(y, scores, decision), np.ones((1, len(y))), cost_fp, cost_fn)
    return {name: float(v[0]) for name, v in values.items()}


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC (ties count half), NaN if one class is absent."""
    return point_metrics(y, scores, np.zeros(len(y)), 1.0, 1.0)["ROC-AUC"]


def average_precision(y: np.ndarray, scores: np.ndarray) -> float:
    """PR-AUC as average precision (scikit-learn's definition)."""
    return point_metrics(y, scores, np.zeros(len(y)), 1.0, 1.0)["PR-AUC"]


def choose_threshold(
    y: np.ndarray, scores: np.ndarray, cost_fp: float, cost_fn: float
) -> tuple[float, float]:
    """Threshold t (decide 1 when score >= t) with the lowest FP*cost_fp + FN*cost_fn, and that cost.

    Candidates are the observed scores plus "flag nobody" (t = +inf); ties in cost go to the
    higher threshold (fewer customers contacted).
    """
    ranked = rank(y, scores)
    ordered = np.asarray(scores, dtype="float64")[ranked.order]
    tp = np.cumsum(ranked.y)[ranked.group_end]
    fp = np.cumsum(1.0 - ranked.y)[ranked.group_end]
    positives = ranked.y.sum()
    costs = np.r_[positives * cost_fn, fp * cost_fp + (positives - tp) * cost_fn]
    best = int(np.argmin(costs))
    threshold = np.inf if best == 0 else float(ordered[ranked.group_end[best - 1]])
    return threshold, float(costs[best])


def cluster_weights(
    groups: np.ndarray, strata: np.ndarray, reps: int, seed: int
) -> Iterator[np.ndarray]:
    """Bootstrap row weights in chunks: resample clusters (customers) with replacement within strata.

    `groups` gives each row's cluster, `strata` each row's stratum (constant within a cluster). A
    row's weight is how often its cluster was drawn, so a cluster's rows move together.
    """
    rng = np.random.default_rng(seed)
    clusters, inverse = np.unique(groups, return_inverse=True)
    cluster_stratum = np.zeros(len(clusters), dtype=strata.dtype)
    cluster_stratum[inverse] = strata
    members = [np.flatnonzero(cluster_stratum == s) for s in np.unique(cluster_stratum)]
    done = 0
    while done < reps:
        size = min(CHUNK, reps - done)
        counts = np.zeros((size, len(clusters)))
        for idx in members:
            counts[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1.0 / len(idx)), size=size)
        yield counts[:, inverse]
        done += size


def bootstrap(
    y: np.ndarray,
    models: Mapping[str, tuple[np.ndarray, np.ndarray]],
    groups: np.ndarray,
    strata: np.ndarray,
    reps: int,
    seed: int,
    cost_fp: float,
    cost_fn: float,
) -> dict[str, dict[str, np.ndarray]]:
    """Paired bootstrap: the same resamples for every model -> {model: {metric: values per resample}}."""
    ranked = {name: rank(y, scores, decision) for name, (scores, decision) in models.items()}
    out: dict[str, dict[str, list[np.ndarray]]] = {
        name: {m: [] for m in METRICS} for name in models
    }
    for weights in cluster_weights(groups, strata, reps, seed):
        for name, r in ranked.items():
            for metric, values in weighted_metrics(r, weights, cost_fp, cost_fn).items():
                out[name][metric].append(values)
    return {
        name: {m: np.concatenate(v) for m, v in metrics.items()} for name, metrics in out.items()
    }


def interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of bootstrap values (NaN resamples ignored)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)
