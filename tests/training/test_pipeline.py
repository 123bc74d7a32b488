"""End-to-end training on the session's small data: registry entry, determinism, monotonicity, report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from parity.features.feature_store import open_store
from parity.features.retrieval import service_schema
from parity.models import loaded, registry
from training import dataset
from training.models import DISPLAY

pytestmark = pytest.mark.data

DETERMINISTIC = (
    registry.MODEL_FILE,
    registry.CALIBRATOR_FILE,
    registry.METADATA_FILE,
    registry.CARD_FILE,
)


def test_a_run_registers_a_complete_entry_and_promotes_the_first_model(trained):
    settings, first = trained["settings"], trained["first"]
    assert first.version == "v0001" and first.promoted and first.current == "v0001"
    entry = settings.registry_dir / "churn" / "v0001"
    assert {p.name for p in entry.iterdir()} == {
        *DETERMINISTIC,
        registry.CHECKSUMS_FILE,
        registry.CREATED_FILE,
    }
    meta = json.loads((entry / registry.METADATA_FILE).read_text())
    store = open_store(settings)
    assert [tuple(f) for f in meta["features"]] == list(service_schema(store, "churn_v1").features)
    assert meta["feature_service"] == "churn_v1"
    assert meta["dbt_manifest_sha256"] == registry.sha256_file(settings.dbt_manifest_path)
    assert meta["calibration"]["method"] == "platt"
    assert meta["prepare_spec"]["columns"][0] == "client_id=acme"
    fingerprint = meta["data_fingerprint"]
    saved = settings.data_dir / "training" / "churn_v1" / fingerprint["file"]
    assert dataset.load_dataset(saved)[1]["sha256"] == fingerprint["sha256"]
    window = meta["training_window"]
    assert window["train"]["as_of_max"] < window["valid"]["as_of_min"] < window["test"]["as_of_min"]
    assert window["train"]["label_window_end_max"] <= window["valid"]["as_of_min"]
    # the threshold is the validation cost optimum, not a default
    assert 0 < meta["threshold"] < 1 and meta["threshold"] != 0.5
    assert set(meta["metrics"]["test"]) == set(DISPLAY.values())
    assert "Intended use" in (entry / registry.CARD_FILE).read_text()


def test_comparison_table_has_every_model_and_metric_with_intervals(trained):
    table, long = trained["first"].table, trained["first"].comparison
    assert list(table.columns) == ["as is", "logistic regression", "random forest", "xgboost"]
    assert {
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
    } <= set(table.index)
    ranked = long[long.metric.isin(["PR-AUC", "ROC-AUC", "precision", "recall"])]
    assert ((ranked.ci_low <= ranked.value) & (ranked.value <= ranked.ci_high)).all()
    assert (long.groupby("model").size() == long.metric.nunique()).all()


def test_two_runs_with_the_same_seed_are_byte_identical(trained):
    first, second = trained["first"], trained["second"]
    assert second.version == "v0002"
    # the checked-out commit is recorded; another engineer may commit between the two runs
    commits = (first.metadata["git_commit"].encode(), second.metadata["git_commit"].encode())
    for name in DETERMINISTIC:
        one = (first.entry_dir / name).read_bytes()
        two = (second.entry_dir / name).read_bytes().replace(commits[1], commits[0])
        assert one == two, name
    pd.testing.assert_frame_equal(first.comparison, second.comparison)


def test_a_second_run_is_not_promoted_automatically(trained):
    assert not trained["second"].promoted
    assert registry.current_version(trained["settings"].registry_dir, "churn") == "v0001"


def test_retraining_from_the_saved_dataset_reproduces_the_model(trained):
    from training.pipeline import run

    settings, first = trained["settings"], trained["first"]
    again = run(settings, trained["config"], dataset_path=first.dataset_path, auto_promote=False)
    assert (again.entry_dir / registry.MODEL_FILE).read_bytes() == (
        first.entry_dir / registry.MODEL_FILE
    ).read_bytes()
    assert again.metadata["data_fingerprint"] == first.metadata["data_fingerprint"]


def _sweep(model, frame, feature, values):
    rows = []
    for value in values:
        changed = frame.copy()
        changed[feature] = pd.Series(value, index=frame.index).astype(frame[feature].dtype)
        rows.append(model.predict_proba(model.prepare(changed))[:, 1])
    return np.column_stack(rows)


@pytest.fixture(scope="module")
def real_rows(trained):
    path = trained["first"].dataset_path
    return dataset.load_dataset(path)[0].iloc[::10].reset_index(drop=True)


def test_more_days_since_last_purchase_never_lowers_churn_risk(trained, real_rows):
    model = loaded.load_current(trained["settings"])
    predictions = _sweep(model, real_rows, "days_since_last_purchase", np.linspace(0, 200, 41))
    assert np.all(np.diff(predictions, axis=1) >= 0)
    assert np.any(np.diff(predictions, axis=1) > 0)  # the feature matters: the test is not vacuous


def test_more_recent_purchases_never_raise_churn_risk(trained, real_rows):
    model = loaded.load_current(trained["settings"])
    predictions = _sweep(model, real_rows, "purchase_count_30d", range(16))
    assert np.all(np.diff(predictions, axis=1) <= 0)
    assert np.any(np.diff(predictions, axis=1) < 0)


def test_the_sweep_detects_violations_of_an_unconstrained_model(trained, real_rows):
    """Control for the two tests above: the same sweep on a model trained without constraints."""
    import xgboost as xgb

    model = loaded.load_current(trained["settings"])
    frame = dataset.load_dataset(trained["first"].dataset_path)[0]
    x = model.prepare(frame)
    free = xgb.XGBClassifier(n_estimators=200, max_depth=6, n_jobs=1, random_state=0).fit(
        x, frame["is_churned"]
    )
    predictions = []
    for value in np.linspace(0, 200, 41):
        changed = real_rows.assign(days_since_last_purchase=value)
        predictions.append(free.predict_proba(model.prepare(changed))[:, 1])
    assert np.any(np.diff(np.column_stack(predictions), axis=1) < 0)


def test_the_report_has_tables_and_plots(trained):
    report = trained["first"].report_path
    html = report.read_text()
    for needle in (
        "Model comparison",
        "Per-segment metrics",
        "Disparate impact",
        "TreeSHAP",
        "lift@top decile",
    ):
        assert needle in html
    for image in (
        "pr_curves.png",
        "lift.png",
        "calibration.png",
        "comparison.png",
        "contributions.png",
    ):
        assert (report.parent / image).stat().st_size > 1000
        assert image in html


def test_segments_cover_clients_and_demographics_and_flag_disparate_impact(trained):
    meta = trained["first"].metadata
    fairness = trained["first"].fairness
    assert list(fairness.dimension) == ["client_id", "country", "acquisition_channel", "age_band"]
    for row in fairness.itertuples():
        if not np.isnan(row.ratio):
            assert 0 <= row.ratio <= 1
            assert row.flagged == (row.ratio < 0.8)
    assert meta["fairness"][0]["dimension"] == "client_id"
