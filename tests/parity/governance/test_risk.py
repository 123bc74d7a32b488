"""The risk register is generated from the version's metadata, the governance config and the
approvals ledger; a retired version moves to the archive with its register, never the current one."""

from __future__ import annotations

import json

import pytest

from parity.config import load_settings
from parity.governance.config import GovernanceError, load_config
from parity.governance.risk import retire, risk_register, write_risk_register
from parity.models import approvals, registry

META = {
    "threshold": 0.31, "costs": {"false_negative": 40.0, "false_positive": 10.0},
    "fairness": [{"dimension": "client_id", "flagged": True, "ratio": 0.7, "lowest": "a", "highest": "b"}],
    "clients": {"trained_on": {"acme": {"rows": 10}}, "warnings": ["client dune has no country"]},
    "data_fingerprint": {"sha256": "f" * 64}, "features": [], "feature_service": "churn_v1",
}


def _entry(settings) -> str:
    files = {registry.MODEL_FILE: b"{}", registry.CALIBRATOR_FILE: b"{}", registry.CARD_FILE: b"# card\n",
             registry.METADATA_FILE: registry.dumps(META)}
    return registry.write_version(settings.registry_dir, "churn", files)


def test_the_register_names_owner_flags_limits_and_approval(tmp_path):
    settings = load_settings(tmp_path)
    version = _entry(settings)
    body = risk_register(settings, "churn", version, load_config())
    assert body["owner"] == load_config().risk.owner and body["threshold"] == 0.31
    assert body["fairness_flags"]["fairness:client_id"].startswith("disparate impact 0.70")
    assert "client dune has no country" in body["known_limits"] and body["approval"] is None
    assert "90 days" in body["population"]  # dbt var churn_activity_days, not typed here
    folder = registry.model_dir(settings.registry_dir, "churn")
    approvals.record(folder, version, META, "risk officer", ["fairness:client_id", "clients:1"])
    path = write_risk_register(settings, "churn", version)
    assert "risk officer (review" in path.read_text()
    assert json.loads(path.with_suffix(".json").read_text())["approval"]["approver"] == "risk officer"


def test_retire_archives_a_version_that_is_not_current(tmp_path):
    settings = load_settings(tmp_path)
    first, second = _entry(settings), _entry(settings)
    registry.promote(settings.registry_dir, "churn", first, lambda service: [])
    with pytest.raises(GovernanceError, match="is current"):
        retire(settings, "churn", first, "ana", "superseded")
    target = retire(settings, "churn", second, "ana", "superseded")
    assert target == settings.registry_dir / "churn" / "archive" / second
    assert registry.list_versions(settings.registry_dir, "churn") == [first]
    assert json.loads((target / "RETIRED.json").read_text())["by"] == "ana"
    assert (target / registry.METADATA_FILE).exists()
    assert (settings.registry_dir / "churn" / "governance" / second / "risk_register.md").exists()
