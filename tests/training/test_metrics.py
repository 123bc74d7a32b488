"""Metrics agree with scikit-learn, the threshold minimises cost, the bootstrap resamples customers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from training.metrics import (
    average_precision,
    bootstrap,
    choose_threshold,
    cluster_weights,
    interval,
    point_metrics,
    rank,
    roc_auc,
    weighted_metrics,
)


@pytest.mark.parametrize("ties", [False, True])
def test_ranking_metrics_match_scikit_learn_with_ties_and_weights(ties):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    scores = rng.normal(size=600) + y
    if ties:
        scores = np.round(scores, 1)
    assert average_precision(y, scores) == pytest.approx(
        average_precision_score(y, scores), abs=1e-12
    )
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    weights = rng.integers(0, 4, 600).astype(float)
    values = weighted_metrics(rank(y, scores), weights[None, :], 1.0, 1.0)
    assert values["PR-AUC"][0] == pytest.approx(
        average_precision_score(y, scores, sample_weight=weights), abs=1e-12
    )
    assert values["ROC-AUC"][0] == pytest.approx(
        roc_auc_score(y, scores, sample_weight=weights), abs=1e-12
    )


def test_confusion_counts_precision_recall_f1_cost_and_lift():
    y = np.array([1] * 10 + [0] * 90)
    scores = np.arange(100, 0, -1).astype(float)  # positives ranked first
    decision = (scores > 95).astype(float)  # top 5
    m = point_metrics(y, scores, decision, cost_fp=2.0, cost_fn=7.0)
    assert (m["TP"], m["FP"], m["TN"], m["FN"]) == (5, 0, 90, 5)
    assert m["precision"] == 1.0 and m["recall"] == 0.5 and m["F1"] == pytest.approx(2 / 3)
    assert m["expected cost"] == 5 * 7.0
    assert m["lift@top decile"] == pytest.approx(10.0)  # top 10% are all positives, base rate 10%
    tied = point_metrics(y, np.zeros(100), np.zeros(100), 1, 1)
    assert tied["lift@top decile"] == pytest.approx(
        1.0
    )  # one tie group: expected share, not an arbitrary order


def test_threshold_minimises_the_expected_cost_over_all_cutoffs():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    scores = np.round(rng.uniform(size=300) + 0.4 * y, 2)
    for cost_fp, cost_fn in [(1, 1), (10, 40), (40, 10)]:
        threshold, cost = choose_threshold(y, scores, cost_fp, cost_fn)
        brute = min(
            ((scores >= t) & (y == 0)).sum() * cost_fp + ((scores < t) & (y == 1)).sum() * cost_fn
            for t in np.r_[np.unique(scores), np.inf]
        )
        assert cost == brute
        decided = scores >= threshold
        assert (decided & (y == 0)).sum() * cost_fp + (~decided & (y == 1)).sum() * cost_fn == cost
    # expensive misses push the threshold down (more customers contacted)
    assert choose_threshold(y, scores, 1, 50)[0] < choose_threshold(y, scores, 50, 1)[0]


def test_cluster_bootstrap_moves_a_customers_rows_together_within_strata():
    groups = np.array(["a", "a", "b", "c", "c", "c", "d", "e"])
    strata = np.array([1, 1, 0, 1, 1, 1, 0, 0])
    weights = np.concatenate(list(cluster_weights(groups, strata, reps=250, seed=3)))
    assert weights.shape == (250, 8)
    assert (weights[:, 0] == weights[:, 1]).all() and (weights[:, 3] == weights[:, 5]).all()
    # two churned customers (a, c) and three others (b, d, e): draw counts per stratum are fixed
    assert (weights[:, [0, 3]].sum(axis=1) == 2).all()
    assert (weights[:, [2, 6, 7]].sum(axis=1) == 3).all()
    again = np.concatenate(list(cluster_weights(groups, strata, reps=250, seed=3)))
    np.testing.assert_array_equal(weights, again)


def test_paired_bootstrap_interval_covers_the_point_and_separates_a_clear_winner():
    rng = np.random.default_rng(2)
    y = (rng.uniform(size=800) < 0.2).astype(int)
    good, bad = y + rng.normal(0, 0.5, 800), y + rng.normal(0, 3, 800)
    draws = bootstrap(
        y, {"good": (good, good > 0.5), "bad": (bad, bad > 0.5)}, np.arange(800), y, 200, 0, 1, 1
    )
    low, high = interval(draws["good"]["PR-AUC"], 0.95)
    assert low < average_precision(y, good) < high
    diff_low, _ = interval(draws["good"]["PR-AUC"] - draws["bad"]["PR-AUC"], 0.95)
    assert diff_low > 0
