"""Drift statistics, freshness, label matching and the promotion rule: pure functions, fast."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from monitoring import drift, freshness, performance
from monitoring.config import load_config
from monitoring.retrain import decide

CONFIG = load_config().drift
FEATURES = [("client_id", "String"), ("spend_90d", "Float64"), ("channel", "String")]


def normal(seed: int, n: int = 2000, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(100 + shift, 15, n)


def test_a_synthetic_shift_is_detected_by_ks_and_psi():
    row = drift.compare_feature("x", "Float64", pd.Series(normal(1)), pd.Series(normal(2, shift=15)), CONFIG, 50)
    assert row["p_value"] < CONFIG.ks_pvalue and row["statistic"] >= CONFIG.ks_min_statistic
    assert row["psi"] > CONFIG.psi_alert
    assert row["status"] == "drift"


def test_an_unshifted_sample_is_not_flagged():
    row = drift.compare_feature("x", "Float64", pd.Series(normal(1)), pd.Series(normal(2)), CONFIG, 50)
    assert row["p_value"] > CONFIG.ks_pvalue and row["psi"] < CONFIG.psi_warn
    assert row["status"] == "ok"


def test_a_significant_but_tiny_shift_on_a_large_sample_is_not_drift():
    """With 200k rows, KS calls a 0.05-sd shift significant; the effect-size guard keeps it ok."""
    row = drift.compare_feature("x", "Float64", pd.Series(normal(1, 200_000)),
                                pd.Series(normal(2, 200_000, shift=0.75)), CONFIG, 50)
    assert row["p_value"] < 1e-6 and row["statistic"] < CONFIG.ks_min_statistic
    assert row["status"] == "ok"


def test_categorical_shift_uses_chi_square_and_psi():
    rng = np.random.default_rng(3)
    ref = pd.Series(rng.choice(["organic", "paid", "social"], 3000, p=[0.6, 0.3, 0.1]))
    same = pd.Series(rng.choice(["organic", "paid", "social"], 3000, p=[0.6, 0.3, 0.1]))
    moved = pd.Series(rng.choice(["organic", "paid", "social"], 3000, p=[0.2, 0.3, 0.5]))
    flagged = drift.compare_feature("channel", "String", ref, moved, CONFIG, 50)
    assert flagged["test"] == "chi2" and flagged["p_value"] < CONFIG.chi2_pvalue
    assert flagged["effect"] >= CONFIG.cramers_v_min and flagged["psi"] > CONFIG.psi_alert
    assert flagged["status"] == "drift"
    assert drift.compare_feature("channel", "String", ref, same, CONFIG, 50)["status"] == "ok"


def test_a_feature_that_arrives_empty_is_drift_through_the_missing_bin():
    row = drift.compare_feature("x", "Float64", pd.Series(normal(1)), pd.Series([np.nan] * 500), CONFIG, 50)
    assert np.isnan(row["p_value"]) and row["missing_current"] == 1.0
    assert row["psi"] > CONFIG.psi_alert and row["status"] == "drift"


def test_small_samples_do_not_explode_psi():
    """One empty decile in a 120-row sample must not read as a major shift."""
    ref = normal(1, 2000)
    cur = normal(2, 120)
    edges = drift.quantile_edges(ref, 10)
    cur = cur[~((cur > edges[4]) & (cur <= edges[5]))]  # empty one bin
    row = drift.compare_feature("x", "Float64", pd.Series(ref), pd.Series(cur), CONFIG, 50)
    assert row["psi"] < CONFIG.psi_alert and row["status"] != "drift"


def test_too_few_rows_are_skipped_with_a_note():
    row = drift.compare_feature("x", "Float64", pd.Series(normal(1)), pd.Series(normal(2, 10)), CONFIG, 50)
    assert row["status"] == "skipped" and "too few rows" in row["note"]


def test_drift_table_flags_only_the_shifted_group_and_survives_a_missing_feature():
    rng = np.random.default_rng(5)

    def frame(n: int, shift_bolt: float) -> pd.DataFrame:
        client = rng.choice(["acme", "bolt"], n)
        return pd.DataFrame({
            "client_id": client,
            "spend_90d": rng.normal(100, 15, n) + np.where(client == "bolt", shift_bolt, 0),
            "channel": rng.choice(["a", "b"], n),
        })

    reference, current = frame(4000, 0.0), frame(2000, 20.0).drop(columns=["channel"])
    table = drift.drift_table(reference, current, FEATURES, CONFIG, 50, group_by="client_id")
    status = table.set_index(["group", "feature"])["status"]
    assert status[("bolt", "spend_90d")] == "drift"
    assert status[("acme", "spend_90d")] == "ok"
    assert (table[table["feature"] == "channel"]["status"] == "skipped").all()
    assert "missing from the current sample" in table[table["feature"] == "channel"]["note"].iloc[0]
    assert ("acme", "client_id") not in status.index  # constant inside its own group


def test_a_group_missing_from_the_current_sample_is_not_overall_drift():
    rng = np.random.default_rng(6)
    n = 3000
    reference = pd.DataFrame({
        "client_id": np.repeat(["acme", "dune"], n),
        "spend_90d": np.concatenate([rng.normal(100, 15, n), rng.normal(300, 15, n)]),
    })
    current = pd.DataFrame({"client_id": ["acme"] * n, "spend_90d": rng.normal(100, 15, n)})
    table = drift.drift_table(reference, current, [("client_id", "String"), ("spend_90d", "Float64")],
                              CONFIG, 50, group_by="client_id")
    status = table.set_index(["group", "feature"])["status"]
    assert status[("all", "spend_90d")] == "ok"
    assert status[("all", "client_id")] == "ok"
    # without group_by the missing client is still what it is: a shifted overall distribution
    plain = drift.drift_table(reference, current, [("spend_90d", "Float64")], CONFIG, 50)
    assert plain.set_index(["group", "feature"])["status"][("all", "spend_90d")] == "drift"


def test_compare_scores():
    shifted = drift.compare_scores(np.random.default_rng(1).beta(2, 8, 3000),
                                   np.random.default_rng(2).beta(4, 6, 3000), 0.25, 0.01, 0.2)
    same = drift.compare_scores(np.random.default_rng(1).beta(2, 8, 3000),
                                np.random.default_rng(2).beta(2, 8, 3000), 0.25, 0.01, 0.2)
    assert shifted["status"] == "drift" and shifted["mean_current"] > shifted["mean_reference"]
    assert same["status"] == "ok"


def test_freshness_flags_a_client_with_no_new_data():
    now = datetime(2026, 6, 2, tzinfo=timezone.utc)
    raw = pd.DataFrame({"client_id": ["acme", "bolt", "cora"], "newest_raw_file": ["a", "b", "c"],
                        "raw_file_modified_at": [pd.Timestamp(now - timedelta(days=1))] * 2
                        + [pd.Timestamp(now - timedelta(days=20))]})
    loaded = pd.DataFrame({"client_id": ["acme", "bolt", "cora"],
                           "newest_loaded_at": pd.to_datetime([now - timedelta(hours=5)] * 2
                                                              + [now - timedelta(days=12)], utc=True)})
    table = freshness.freshness_table(raw, loaded, now, load_config().freshness).set_index("client_id")
    assert table.loc["acme", "status"] == "ok" and table.loc["bolt", "status"] == "ok"
    assert table.loc["cora", "status"] == "stale"
    assert "no new data since" in table.loc["cora", "problem"] and "raw file 20.0 days" in table.loc["cora", "problem"]


def test_labels_match_scores_within_the_tolerance_only():
    at = pd.Timestamp("2026-03-01", tz="UTC")
    scored = pd.DataFrame({"customer_id": ["a", "b", "c"], "scored_for": [at + pd.Timedelta(seconds=1)] * 2
                           + [at + pd.Timedelta(days=10)], "score": [0.9, 0.1, 0.5],
                           "model_version": "v0001", "source": "batch"})
    labels = pd.DataFrame({"customer_id": ["a", "b", "c"], "as_of_at": [at] * 3, "is_churned": [1, 0, 1]})
    matched = performance.match_labels(scored, labels, 3.5)
    assert sorted(matched["customer_id"]) == ["a", "b"]
    realised = performance.realised_metrics(matched, {"v0001": 0.5}, group="label_as_of_at")
    assert realised.loc[0, "PR-AUC"] == 1.0 and realised.loc[0, "rows"] == 2
    judged = performance.judge(realised, {"v0001": 0.6}, "PR-AUC", 0.05, min_rows=1)
    assert judged.loc[0, "status"] == "ok"
    assert performance.judge(realised, {"v0001": 0.6}, "PR-AUC", 0.05, min_rows=5).loc[0, "status"] == "too few labels"


def test_promotion_rule():
    assert decide(0.62, None, 0.0) == (True, "no model was current")
    assert decide(0.63, 0.62, 0.0)[0] is True
    assert decide(0.62, 0.62, 0.0)[0] is False  # an identical retrain is not an improvement
    assert decide(0.63, 0.62, 0.02)[0] is False


def test_config_refuses_unknown_keys_and_bad_thresholds(tmp_path):
    from monitoring.config import MonitoringError

    bad = tmp_path / "c.yaml"
    bad.write_text("drift: {psi_alert: 0.05, psi_warn: 0.1}\n")
    with pytest.raises(MonitoringError, match="psi_warn <= psi_alert"):
        load_config(bad)
    bad.write_text("drfit: {}\n")
    with pytest.raises(MonitoringError, match="unknown key"):
        load_config(bad)
    assert load_config().drift.psi_alert == 0.25
