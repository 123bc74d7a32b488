"""`python -m training`: help, exit status 2 with a clear message on bad input, promote/rollback/list."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from parity.models import loaded, registry
from tests.training.conftest import SMALL
from training import dataset
from training.__main__ import main

pytestmark = pytest.mark.data


def small_args(*extra: str) -> list[str]:
    """CLI overrides equivalent to the SMALL test config."""
    return [
        "--quiet",
        "--set",
        "bootstrap.reps=30",
        "--set",
        "bootstrap.segment_reps=10",
        "--set",
        "cv.folds=2",
        "--set",
        "models.logistic_regression.grid={C: [1.0]}",
        "--set",
        "models.random_forest.params.n_estimators=25",
        "--set",
        "models.random_forest.grid={min_samples_leaf: [20]}",
        "--set",
        "models.xgboost.params.n_estimators=60",
        "--set",
        "models.xgboost.grid={max_depth: [3], n_estimators: [60]}",
        *extra,
    ]


def test_help_lists_the_subcommands():
    out = subprocess.run(
        [sys.executable, "-m", "training", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("train", "promote", "rollback", "list"):
        assert command in out
    out = subprocess.run(
        [sys.executable, "-m", "training", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--config" in out and "--data-dir" in out and "--set" in out


def test_small_cli_overrides_match_the_small_config():
    from training.config import load_config, merge, parse_assignments

    args = small_args()
    assignments = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    assert load_config(None, {**parse_assignments(assignments), "progress": False}) == load_config(
        None, merge(SMALL, {})
    )


def test_unknown_feature_service_exits_2_naming_it(fresh_data, capsys):
    assert (
        main(
            [
                "train",
                "--data-dir",
                str(fresh_data.data_dir),
                *small_args("--set", "service=churn_v9"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "feature service 'churn_v9'" in err and "churn_v1" in err
    assert registry.list_versions(fresh_data.registry_dir, "churn") == []


def _own_labels(settings, labels: pd.DataFrame) -> None:
    """Give the private data folder its own published build whose labels mart is `labels` (every
    other file links to the shared build, which is never written)."""
    shared = settings.published_dir.resolve()
    own = settings.builds_dir / "own"
    (own / "marts").mkdir(parents=True)
    for path in shared.iterdir():
        if path.name != "marts":
            (own / path.name).symlink_to(path)
    for path in (shared / "marts").iterdir():
        (own / "marts" / path.name).symlink_to(path)
    settings.published_dir.unlink()
    settings.published_dir.symlink_to(own, target_is_directory=True)
    (settings.marts_dir / "churn_labels.parquet").unlink()
    labels.to_parquet(settings.marts_dir / "churn_labels.parquet", index=False)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda labels: labels.iloc[:0], "labels mart is empty"),
        (lambda labels: labels.assign(is_churned=0), "only class 0"),
        (
            lambda labels: labels.assign(
                label_window_end_at=labels.label_window_end_at + pd.Timedelta(days=400)
            ),
            "outcome is not observed",
        ),
    ],
)
def test_bad_labels_exit_2_with_the_reason(fresh_data, capsys, change, message):
    labels = pd.read_parquet(fresh_data.marts_dir / "churn_labels.parquet")
    _own_labels(fresh_data, change(labels))
    assert main(["train", "--data-dir", str(fresh_data.data_dir), *small_args()]) == 2
    assert message in capsys.readouterr().err


def test_missing_labels_mart_exits_2(fresh_data, capsys):
    _own_labels(fresh_data, pd.DataFrame())
    (fresh_data.marts_dir / "churn_labels.parquet").unlink()
    assert main(["train", "--data-dir", str(fresh_data.data_dir), *small_args()]) == 2
    assert "make build" in capsys.readouterr().err


def _edited_dataset(trained, tmp_path, edit) -> str:
    frame, print_ = dataset.load_dataset(trained["first"].dataset_path)
    frame = edit(frame)
    return str(dataset.save_dataset(frame, dataset.fingerprint(frame, print_["service"]), tmp_path))


def test_an_all_null_feature_is_reported_not_a_crash(trained, tmp_path, capsys):
    # a feature no client sends (issue 12: this crashed with an Arrow cast error, then refused)
    path = _edited_dataset(
        trained, tmp_path, lambda f: f.assign(tenure_days=pd.array([None] * len(f), dtype="Int64"))
    )
    code = main(
        [
            "train",
            "--data-dir",
            str(trained["settings"].data_dir),
            "--dataset",
            path,
            "--no-promote",
            *small_args(),
        ]
    )
    assert code == 0
    out = capsys.readouterr()
    assert "WARNING: feature(s) tenure_days are null on every training row" in out.err
    assert "WARNING: feature(s) tenure_days are null on every training row" in out.out
    assert "clients in the training set: acme" in out.out


def test_a_feature_that_peeks_at_the_outcome_exits_2_as_leakage(trained, tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = _edited_dataset(
        trained,
        tmp_path,
        lambda f: f.assign(spend_30d=f["is_churned"] * 500.0 + rng.uniform(0, 50, len(f))),
    )
    before = registry.list_versions(trained["settings"].registry_dir, "churn")
    code = main(
        [
            "train",
            "--data-dir",
            str(trained["settings"].data_dir),
            "--dataset",
            path,
            "--no-promote",
            *small_args(),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "spend_30d" in err and "ROC-AUC" in err
    assert registry.list_versions(trained["settings"].registry_dir, "churn") == before


def test_promote_rollback_and_list(trained, capsys):
    data_dir = str(trained["settings"].data_dir)
    root = trained["settings"].registry_dir
    assert registry.current_version(root, "churn") == "v0001"
    # a decision model needs a recorded approval acknowledging its card's flags (parity.models.approvals)
    assert main(["promote", "v0002", "--data-dir", data_dir]) == 2
    assert "no recorded approval" in capsys.readouterr().err
    from parity.models import approvals

    flags = ",".join(approvals.flagged_items(registry.read_metadata(root, "churn", "v0002")))
    if flags:  # leaving one flag out is refused
        assert main(["approve", "v0002", "--approver", "risk officer", "--ack", flags.split(",")[0] + ",x:y",
                     "--data-dir", data_dir]) == 2
    assert main(["approve", "v0002", "--approver", "risk officer", "--ack", flags, "--data-dir", data_dir]) == 0
    assert "approved churn/v0002 by risk officer" in capsys.readouterr().out
    assert (root / "churn" / "governance" / "v0002" / "risk_register.md").exists()
    assert main(["promote", "v0002", "--data-dir", data_dir]) == 0
    assert registry.read_pointer(root, "churn")["history"] == ["v0001", "v0002"]
    assert registry.read_audit(root, "churn")[-1]["approval"]["approver"] == "risk officer"
    assert main(["list", "--data-dir", data_dir]) == 0
    listing = capsys.readouterr().out
    assert "* v0002" in listing and "  v0001" in listing
    assert main(["--data-dir", data_dir, "rollback"]) == 0
    assert registry.current_version(root, "churn") == "v0001"
    assert main(["rollback", "--data-dir", data_dir]) == 2
    assert "no previous version" in capsys.readouterr().err
    assert main(["promote", "v0099", "--data-dir", data_dir]) == 2
    assert registry.current_version(root, "churn") == "v0001"


def test_an_interrupted_training_leaves_the_previous_model_current(fresh_data, monkeypatch):
    from tests.training.conftest import small_config
    from training import pipeline

    pipeline.run(fresh_data, small_config())
    before = loaded.load_current(fresh_data)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing the registry entry")

    monkeypatch.setattr(registry.os, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(fresh_data, small_config())
    monkeypatch.undo()
    assert registry.list_versions(fresh_data.registry_dir, "churn") == ["v0001"]
    after = loaded.load_current(fresh_data)
    assert after.version == before.version == "v0001"
    assert after.threshold == before.threshold
