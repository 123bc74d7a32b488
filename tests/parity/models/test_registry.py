"""Model registry and loaded models: atomic versions, checksums, the current pointer, promotion
checks, safe loading, calibrators."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parity.models import loaded, registry
from parity.models.prepare import fit_spec, prepare

FEATURES = (
    ("client_id", "String"),
    ("purchase_count_30d", "Int64"),
    ("days_since_last_purchase", "Float64"),
)
MODEL = "churn"


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = rng.uniform(0, 90, n)
    return pd.DataFrame(
        {
            "customer_id": [f"acme:{i}" for i in range(n)],
            "client_id": rng.choice(["acme", "bolt"], n),
            "purchase_count_30d": pd.array(rng.integers(0, 6, n), dtype="Int64"),
            "days_since_last_purchase": days,
            "is_churned": (days + rng.normal(0, 20, n) > 50).astype(int),
        }
    )


@pytest.fixture(scope="module")
def entry() -> dict:
    """Files of a small but real registry entry (xgboost JSON + Platt calibrator + metadata)."""
    import xgboost as xgb

    frame = _frame()
    spec = fit_spec(frame, FEATURES)
    x = prepare(frame, spec)
    model = xgb.XGBClassifier(n_estimators=20, max_depth=2, n_jobs=1, random_state=0).fit(
        x, frame["is_churned"]
    )
    calibrator = {
        "method": "platt",
        "a": 1.1,
        "b": -0.2,
        "eps": loaded.PLATT_EPS,
        "input": "probability",
    }
    metadata = {
        "format": registry.FORMAT,
        "feature_service": "churn_v1",
        "features": [list(f) for f in FEATURES],
        "prepare_spec": spec.to_dict(),
        "threshold": 0.3,
    }
    files = {
        registry.MODEL_FILE: bytes(model.get_booster().save_raw(raw_format="json")),
        registry.CALIBRATOR_FILE: registry.dumps(calibrator),
        registry.METADATA_FILE: registry.dumps(metadata),
        registry.CARD_FILE: b"# card\n",
    }
    return {"files": files, "frame": frame, "x": x, "model": model, "calibrator": calibrator}


def approve(registry_dir, version, approver="risk officer"):
    """Record a reviewed approval of `version` (acknowledging whatever its card flags)."""
    from parity.models import approvals

    meta = registry.read_metadata(registry_dir, MODEL, version)
    return approvals.record(registry.model_dir(registry_dir, MODEL), version, meta, approver,
                            list(approvals.flagged_items(meta)))


def live(features=FEATURES):
    """A fake live schema: every service has `features`."""
    return lambda service: features


def test_versions_are_numbered_monotonically_and_hold_checksummed_files(tmp_path, entry):
    assert registry.list_versions(tmp_path, MODEL) == []
    first = registry.write_version(tmp_path, MODEL, entry["files"])
    second = registry.write_version(tmp_path, MODEL, entry["files"])
    assert (first, second) == ("v0001", "v0002")
    assert registry.list_versions(tmp_path, MODEL) == ["v0001", "v0002"]
    folder = tmp_path / MODEL / first
    checksums = json.loads((folder / registry.CHECKSUMS_FILE).read_text())
    assert set(checksums) == set(entry["files"])
    for name, data in entry["files"].items():
        assert (folder / name).read_bytes() == data
        assert checksums[name] == registry.sha256_bytes(data)
    # only the creation time differs between two identical entries, and it is not checksummed
    assert (folder / registry.CREATED_FILE).exists() and registry.CREATED_FILE not in checksums
    assert not [p for p in (tmp_path / MODEL).iterdir() if p.name.startswith(".tmp")]


def test_interrupted_write_leaves_no_version_and_the_current_model_loadable(
    tmp_path, entry, monkeypatch
):
    registry.write_version(tmp_path, MODEL, entry["files"])
    registry.promote(tmp_path, MODEL, "v0001", live())

    def crash(src, dst):
        raise KeyboardInterrupt("killed while renaming the new version into place")

    monkeypatch.setattr(registry.os, "rename", crash)
    with pytest.raises(KeyboardInterrupt):
        registry.write_version(tmp_path, MODEL, entry["files"])
    monkeypatch.undo()
    assert registry.list_versions(tmp_path, MODEL) == ["v0001"]
    assert loaded.load_current_from(tmp_path, MODEL).version == "v0001"
    # the next successful write still gets the next number
    assert registry.write_version(tmp_path, MODEL, entry["files"]) == "v0002"


def test_interrupted_pointer_update_keeps_the_previous_pointer(tmp_path, entry, monkeypatch):
    registry.write_version(tmp_path, MODEL, entry["files"])
    registry.write_version(tmp_path, MODEL, entry["files"])
    registry.promote(tmp_path, MODEL, "v0001", live())
    before = (tmp_path / MODEL / registry.POINTER_FILE).read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    approve(tmp_path, "v0002")
    monkeypatch.setattr(registry.os, "replace", crash)
    with pytest.raises(OSError):
        registry.promote(tmp_path, MODEL, "v0002", live())
    monkeypatch.undo()
    assert (tmp_path / MODEL / registry.POINTER_FILE).read_bytes() == before
    assert registry.current_version(tmp_path, MODEL) == "v0001"


def test_promote_and_rollback_move_the_pointer_and_keep_history(tmp_path, entry):
    for _ in range(3):
        registry.write_version(tmp_path, MODEL, entry["files"])
    assert registry.current_version(tmp_path, MODEL) is None
    registry.promote(tmp_path, MODEL, "v0001", live())
    approve(tmp_path, "v0003")
    approve(tmp_path, "v0002")
    registry.promote(tmp_path, MODEL, "v0003", live())
    pointer = registry.promote(tmp_path, MODEL, "v0002", live())
    assert pointer["version"] == "v0002" and pointer["history"] == ["v0001", "v0003", "v0002"]
    assert registry.promote(tmp_path, MODEL, "v0002", live())["history"] == [
        "v0001",
        "v0003",
        "v0002",
    ]
    assert registry.rollback(tmp_path, MODEL, live())["version"] == "v0003"
    assert registry.rollback(tmp_path, MODEL, live())["version"] == "v0001"
    assert registry.read_pointer(tmp_path, MODEL)["history"] == ["v0001"]
    with pytest.raises(registry.PromotionError, match="no previous version"):
        registry.rollback(tmp_path, MODEL, live())
    assert loaded.load_current_from(tmp_path, MODEL).version == "v0001"


def test_promote_of_a_missing_version_fails(tmp_path, entry):
    registry.write_version(tmp_path, MODEL, entry["files"])
    with pytest.raises(registry.RegistryError, match="does not exist"):
        registry.promote(tmp_path, MODEL, "v0042", live())
    assert registry.current_version(tmp_path, MODEL) is None


@pytest.mark.parametrize(
    "changed, expected",
    [
        ((FEATURES[1], FEATURES[0], FEATURES[2]), "order differs"),
        (
            (FEATURES[0], ("purchase_count_30d", "Float64"), FEATURES[2]),
            "dtype of purchase_count_30d",
        ),
        (FEATURES[:2], "missing from the live service: days_since_last_purchase"),
        (FEATURES + (("spend_30d", "Float64"),), "not in the model: spend_30d"),
    ],
)
def test_promotion_refuses_a_feature_list_that_differs_from_the_live_service(
    tmp_path, entry, changed, expected
):
    registry.write_version(tmp_path, MODEL, entry["files"])
    registry.write_version(tmp_path, MODEL, entry["files"])
    registry.promote(tmp_path, MODEL, "v0001", live())
    with pytest.raises(registry.PromotionError, match=expected):
        registry.promote(tmp_path, MODEL, "v0002", live(changed))
    assert registry.current_version(tmp_path, MODEL) == "v0001"


def test_rollback_refuses_a_target_whose_features_no_longer_match(tmp_path, entry):
    registry.write_version(tmp_path, MODEL, entry["files"])
    registry.write_version(tmp_path, MODEL, entry["files"])
    registry.promote(tmp_path, MODEL, "v0001", live())
    approve(tmp_path, "v0002")
    registry.promote(tmp_path, MODEL, "v0002", live())
    with pytest.raises(registry.PromotionError, match="refusing churn/v0001"):
        registry.rollback(tmp_path, MODEL, live(FEATURES[::-1]))
    assert registry.current_version(tmp_path, MODEL) == "v0002"


def test_a_tampered_entry_is_refused_on_load_and_promotion(tmp_path, entry):
    registry.write_version(tmp_path, MODEL, entry["files"])
    model_file = tmp_path / MODEL / "v0001" / registry.MODEL_FILE
    model_file.write_bytes(model_file.read_bytes().replace(b'"base_score"', b'"base_scorE"', 1))
    with pytest.raises(registry.RegistryError, match="corrupt"):
        loaded.load_version(tmp_path, MODEL, "v0001")
    with pytest.raises(registry.RegistryError, match="corrupt"):
        registry.promote(tmp_path, MODEL, "v0001", live())


def test_load_current_without_a_current_model_says_what_to_do(tmp_path):
    with pytest.raises(registry.RegistryError, match="no current 'churn' model"):
        loaded.load_current_from(tmp_path, MODEL)


def test_loaded_model_scores_like_the_model_it_was_saved_from(tmp_path, entry):
    registry.write_version(tmp_path, MODEL, entry["files"])
    model = loaded.load_version(tmp_path, MODEL, "v0001")
    x = model.prepare(entry["frame"])
    pd.testing.assert_frame_equal(x, entry["x"])
    raw = entry["model"].predict_proba(entry["x"])[:, 1]
    np.testing.assert_array_equal(model.raw_proba(x), raw)
    proba = model.predict_proba(x)
    assert proba.shape == (len(x), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:, 1], loaded.apply_calibrator(entry["calibrator"], raw))
    np.testing.assert_array_equal(model.predict(x), (proba[:, 1] >= 0.3).astype(int))
    contributions = model.contributions(x)
    assert list(contributions.columns) == list(model.spec.columns) + ["bias"]
    # TreeSHAP is additive: contributions + bias = the model's log-odds
    margin = (
        entry["model"].get_booster().predict(__import__("xgboost").DMatrix(x), output_margin=True)
    )
    np.testing.assert_allclose(contributions.sum(axis=1), margin, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="columns differ"):
        model.predict_proba(x[x.columns[::-1]])


def test_loaded_model_scores_with_numpy_trees_and_falls_back_to_xgboost(tmp_path, entry):
    """The registry's model scores without xgboost (bit-identical); a model the numpy trees do not
    reproduce (here dart) is scored by xgboost itself, with the reason kept."""
    import xgboost as xgb

    registry.write_version(tmp_path, MODEL, entry["files"])
    model = loaded.load_version(tmp_path, MODEL, "v0001")
    assert model.forest is not None and model.unsupported is None and model._booster is None
    dart = xgb.XGBClassifier(booster="dart", n_estimators=10, max_depth=2, n_jobs=1, random_state=0,
                             rate_drop=0.1).fit(entry["x"], entry["frame"]["is_churned"])
    files = {**entry["files"], registry.MODEL_FILE: bytes(dart.get_booster().save_raw(raw_format="json"))}
    registry.write_version(tmp_path, MODEL, files)
    fallback = loaded.load_version(tmp_path, MODEL, "v0002")
    assert fallback.forest is None and "dart" in fallback.unsupported
    x = entry["x"]
    np.testing.assert_array_equal(fallback.raw_proba(x), dart.predict_proba(x)[:, 1])
    scores, contributions = fallback.score_and_explain(x)
    np.testing.assert_array_equal(scores, fallback.predict_proba(x)[:, 1])
    assert contributions.shape == (len(x), len(model.spec.columns) + 1)


def test_exported_calibrators_reproduce_scikit_learn():
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 400)
    y = (rng.uniform(0, 1, 400) < p**2).astype(int)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(p, y)
    params = {
        "method": "isotonic",
        "x": iso.X_thresholds_.tolist(),
        "y": iso.y_thresholds_.tolist(),
    }
    grid = np.linspace(-0.2, 1.2, 57)
    np.testing.assert_allclose(
        loaded.apply_calibrator(params, grid), iso.predict(grid), atol=1e-12
    )
    z = loaded.logit_clipped(p, loaded.PLATT_EPS)[:, None]
    platt = LogisticRegression(C=np.inf).fit(z, y)
    params = {
        "method": "platt",
        "a": float(platt.coef_[0, 0]),
        "b": float(platt.intercept_[0]),
        "eps": loaded.PLATT_EPS,
    }
    np.testing.assert_allclose(
        loaded.apply_calibrator(params, p), platt.predict_proba(z)[:, 1], atol=1e-12
    )
    with pytest.raises(registry.RegistryError, match="unknown calibration"):
        loaded.apply_calibrator({"method": "beta"}, p)


def test_entries_without_required_files_or_with_reserved_names_are_refused(tmp_path, entry):
    files = dict(entry["files"])
    del files[registry.CARD_FILE]
    with pytest.raises(registry.RegistryError, match="needs"):
        registry.write_version(tmp_path, MODEL, files)
    with pytest.raises(registry.RegistryError, match="invalid entry file names"):
        registry.write_version(tmp_path, MODEL, {**entry["files"], registry.CHECKSUMS_FILE: b"{}"})
    assert registry.list_versions(tmp_path, MODEL) == []


def test_git_commit_is_read_from_git_files_or_unknown(tmp_path):
    assert registry.git_commit(tmp_path) == "unknown"
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text("a" * 40 + "\n")
    assert registry.git_commit(tmp_path) == "a" * 40
    (git / "refs" / "heads" / "main").unlink()
    (git / "packed-refs").write_text("# pack-refs\n" + "b" * 40 + " refs/heads/main\n")
    assert registry.git_commit(tmp_path) == "b" * 40


def test_the_settings_entry_point_reads_the_platform_registry(tmp_path, entry):
    from parity.config import load_settings

    settings = load_settings(tmp_path)
    registry.write_version(settings.registry_dir, MODEL, entry["files"])
    registry.promote(settings.registry_dir, MODEL, "v0001", live())
    assert loaded.load_current(settings).version == "v0001"
    assert Path(os.path.commonpath([settings.registry_dir, tmp_path])) == tmp_path


@pytest.mark.parametrize("version", ["/some/dir", "../segments/v0001", "v0001/..", "v1", "V0001", "", "v0001\n"])
def test_promote_accepts_only_registry_version_names(tmp_path, entry, version):
    registry_dir = tmp_path / "registry"
    registry.write_version(registry_dir, MODEL, entry["files"])
    registry.write_version(registry_dir / "segments_like", MODEL, entry["files"])  # a real target elsewhere
    with pytest.raises(registry.RegistryError, match="invalid version"):
        registry.promote(registry_dir, MODEL, version, live())
    assert registry.current_version(registry_dir, MODEL) is None


@pytest.mark.parametrize("model", ["../../x", "a/b", "/abs", ".hidden", "..", "x" * 65, ""])
def test_model_names_that_are_paths_are_refused_and_nothing_is_created(tmp_path, entry, model):
    registry_dir = tmp_path / "registry"
    registry_dir.mkdir()
    for call in (lambda: registry.write_version(registry_dir, model, entry["files"]),
                 lambda: registry.promote(registry_dir, model, "v0001", live()),
                 lambda: registry.rollback(registry_dir, model, live()),
                 lambda: registry.list_versions(registry_dir, model),
                 lambda: loaded.load_version(registry_dir, model, "v0001")):
        with pytest.raises(registry.RegistryError, match="invalid model name"):
            call()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["registry"]


def test_a_pointer_naming_a_path_is_refused(tmp_path, entry):
    version = registry.write_version(tmp_path, MODEL, entry["files"])
    registry.promote(tmp_path, MODEL, version, live())
    pointer = tmp_path / MODEL / registry.POINTER_FILE
    data = json.loads(pointer.read_text())
    pointer.write_text(json.dumps({**data, "version": "../../etc", "history": ["../../etc"]}))
    with pytest.raises(registry.RegistryError, match="invalid versions"):
        registry.current_version(tmp_path, MODEL)


def test_training_cli_refuses_a_path_as_version(tmp_path, capsys):
    from training.__main__ import main

    assert main(["promote", "../segments/v0001", "--data-dir", str(tmp_path)]) == 2
    assert "invalid version" in capsys.readouterr().err
    assert main(["list", "--model", "../../x", "--data-dir", str(tmp_path)]) == 2
    assert "invalid model name" in capsys.readouterr().err
    assert not (tmp_path.parent / "x").exists()


def test_promotion_and_rollback_are_recorded_in_the_audit_log(tmp_path, entry):
    first = registry.write_version(tmp_path, MODEL, entry["files"])
    second = registry.write_version(tmp_path, MODEL, entry["files"])
    registry.promote(tmp_path, MODEL, first, live())
    approve(tmp_path, second)
    registry.promote(tmp_path, MODEL, second, live(), actor="ana", reason="better PR-AUC")
    registry.promote(tmp_path, MODEL, second, live(), actor="ana")  # already current: no move, no line
    registry.rollback(tmp_path, MODEL, live(), actor="bo", reason="complaints")
    audit = registry.read_audit(tmp_path, MODEL)
    assert [(a["action"], a["from"], a["to"], a["reason"]) for a in audit] == [
        ("promote", None, first, None), ("promote", first, second, "better PR-AUC"),
        ("rollback", second, first, "complaints")]
    assert [a["actor"] for a in audit][1:] == ["ana", "bo"] and audit[0]["actor"]
    assert all(a["at"].endswith("+00:00") for a in audit)


def _flagged_files(entry) -> dict:
    """The entry with a model card that flags disparate impact on two dimensions."""
    meta = json.loads(entry["files"][registry.METADATA_FILE])
    meta["fairness"] = [
        {"dimension": "client_id", "flagged": True, "ratio": 0.71, "lowest": "bolt", "highest": "dune"},
        {"dimension": "country", "flagged": False, "ratio": 0.9, "lowest": "NL", "highest": "DE"},
        {"dimension": "age_band", "flagged": True, "ratio": 0.62, "lowest": "18-24", "highest": "65+"}]
    return {**entry["files"], registry.METADATA_FILE: registry.dumps(meta)}


def test_promotion_needs_a_recorded_approval_acknowledging_every_flag(tmp_path, entry):
    from parity.models import approvals

    files = _flagged_files(entry)
    first, second = (registry.write_version(tmp_path, MODEL, files) for _ in range(2))
    # the first model of a fresh project: approved by whoever promotes it, recorded as such
    registry.promote(tmp_path, MODEL, first, live(), actor="operator")
    ledger = approvals.read_approvals(tmp_path / MODEL)
    assert [(a["version"], a["approver"], a["kind"]) for a in ledger] == [(first, "operator", "first_model")]
    assert sorted(ledger[0]["acknowledged"]) == ["fairness:age_band", "fairness:client_id"]
    # a later version without an approval is refused, naming the command and the flags
    with pytest.raises(registry.PromotionError, match=r"no recorded approval.*make approve VERSION=v0002 "
                       r"APPROVER=<name> ACK=fairness:client_id,fairness:age_band"):
        registry.promote(tmp_path, MODEL, second, live())
    assert registry.current_version(tmp_path, MODEL) == first
    folder, meta = tmp_path / MODEL, registry.read_metadata(tmp_path, MODEL, second)
    with pytest.raises(approvals.ApprovalError, match=r"(?s)unacknowledged.*fairness:age_band: disparate impact 0.62"):
        approvals.record(folder, second, meta, "risk officer", ["fairness:client_id"])
    with pytest.raises(approvals.ApprovalError, match="not flagged by the model card: fairness:country"):
        approvals.record(folder, second, meta, "risk officer", ["fairness:client_id", "fairness:age_band",
                                                                 "fairness:country"])
    with pytest.raises(approvals.ApprovalError, match="names its approver"):
        approvals.record(folder, second, meta, " ", ["fairness:client_id", "fairness:age_band"])
    assert registry.current_version(tmp_path, MODEL) == first
    # with an approval: promoted, and the audit line names the approval
    approvals.record(folder, second, meta, "risk officer", ["fairness:age_band", "fairness:client_id"])
    registry.promote(tmp_path, MODEL, second, live(), actor="ana")
    assert registry.current_version(tmp_path, MODEL) == second
    audit = registry.read_audit(tmp_path, MODEL)[-1]
    assert audit["to"] == second and audit["approval"]["approver"] == "risk officer"
    assert audit["approval"]["kind"] == "review"


def test_a_model_without_a_decision_threshold_needs_no_approval(tmp_path, entry):
    meta = json.loads(entry["files"][registry.METADATA_FILE])
    del meta["threshold"]
    files = {**entry["files"], registry.METADATA_FILE: registry.dumps(meta)}
    for _ in range(2):
        registry.write_version(tmp_path, MODEL, files)
    registry.promote(tmp_path, MODEL, "v0001", live())
    registry.promote(tmp_path, MODEL, "v0002", live())
    assert registry.current_version(tmp_path, MODEL) == "v0002"


def test_an_unapproved_canary_is_not_served(tmp_path, entry):
    from parity.models import approvals

    files = _flagged_files(entry)
    for _ in range(2):
        registry.write_version(tmp_path, MODEL, files)
    assert "no recorded approval" in approvals.canary_allowed(tmp_path, MODEL, "v0002")
    approve(tmp_path, "v0002")
    assert approvals.canary_allowed(tmp_path, MODEL, "v0002") is None
