"""The model risk register (generated per version) and the archive of retired versions.

The register is derived, never typed: purpose, owner and review cadence from the governance
config (its one home), the population from dbt's churn rule, threshold and costs, known limits
and fairness flags from the version's metadata, approvals from the registry's ledger. Written to
``<registry>/<model>/governance/<version>/risk_register.{json,md}`` (outside the checksummed
entry, which never changes). Retiring a version moves its entry to ``<model>/archive/<version>``
with a ``RETIRED.json`` (when, who, why, its register); the current version cannot be retired.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from parity.config import Settings
from parity.governance.config import GovernanceConfig, GovernanceError, load_config
from parity.models import approvals, registry

ARCHIVE_DIR = "archive"
GOVERNANCE_DIR = "governance"


def risk_register(settings: Settings, model: str, version: str, config: GovernanceConfig) -> dict[str, Any]:
    """The register of one version as a plain mapping."""
    meta = registry.read_metadata(settings.registry_dir, model, version)
    folder = registry.model_dir(settings.registry_dir, model)
    approved = approvals.approval_for(folder, version)
    created = json.loads((registry.entry_dir(settings.registry_dir, model, version) / registry.CREATED_FILE)
                         .read_text())["created_at"]
    since = datetime.fromisoformat((approved or {}).get("at") or created)
    clients = meta.get("clients") or {}
    test = (meta.get("metrics") or {}).get("test", {}).get("xgboost", {})
    limits = [str(w) for w in clients.get("warnings") or []]
    limits += [f"features null for client {c}: {', '.join(f)}" for c, f in (clients.get("features_null_for_client") or {}).items()]
    limits.append(f"trained on {meta.get('training_window', {}).get('train', {}).get('as_of_min', '?')} .. "
                  f"{meta.get('training_window', {}).get('test', {}).get('as_of_max', '?')}; behaviour outside that "
                  "period and outside the listed clients is unmeasured")
    return {
        "model": model, "version": version, "created_at": created,
        "purpose": config.risk.purpose.strip(),
        "population": f"active customers: at least {settings.churn_population.min_purchases} purchase in the "
                      f"{settings.churn_population.days} days up to the as-of time (dbt var churn_activity_days)",
        "clients": clients.get("trained_on"),
        "threshold": meta.get("threshold"), "threshold_rule": meta.get("threshold_rule"), "costs": meta.get("costs"),
        "test_pr_auc": test.get("PR-AUC"),
        "owner": config.risk.owner,
        "review_every_days": config.risk.review_every_days,
        "next_review": (since + timedelta(days=config.risk.review_every_days)).date().isoformat(),
        "fairness_flags": approvals.flagged_items(meta),
        "known_limits": limits,
        "training_data_sha256": (meta.get("data_fingerprint") or {}).get("sha256"),
        "approval": approved,
        "needs_approval": approvals.needs_approval(meta),
    }


def _markdown(body: dict[str, Any]) -> str:
    lines = [f"# Risk register: {body['model']}/{body['version']}", ""]
    for key in ("purpose", "population", "owner", "next_review", "threshold", "threshold_rule", "costs",
                "test_pr_auc", "clients", "training_data_sha256"):
        lines.append(f"- **{key.replace('_', ' ')}**: {body[key]}")
    lines += ["", "## Fairness flags (must be acknowledged by the approver)", ""]
    lines += [f"- `{k}`: {v}" for k, v in body["fairness_flags"].items()] or ["- none"]
    lines += ["", "## Known limits", ""] + [f"- {limit}" for limit in body["known_limits"]]
    approval = body["approval"]
    lines += ["", "## Approval", "", f"- {approval['approver']} ({approval['kind']}, {approval['at']})"
              if approval else "- not approved: cannot become current"]
    return "\n".join(lines) + "\n"


def write_risk_register(settings: Settings, model: str, version: str,
                        config: GovernanceConfig | None = None) -> Path:
    """Write the register's JSON and Markdown (atomically); returns the Markdown path."""
    body = risk_register(settings, model, version, config or load_config())
    folder = registry.model_dir(settings.registry_dir, model) / GOVERNANCE_DIR / version
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("risk_register.json", json.dumps(body, indent=2, sort_keys=True, default=str) + "\n"),
                       ("risk_register.md", _markdown(body))):
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, folder / name)
    return folder / "risk_register.md"


def retire(settings: Settings, model: str, version: str, who: str, reason: str) -> Path:
    """Move a version that is not current into the archive with its metadata and register."""
    entry = registry.entry_dir(settings.registry_dir, model, version)
    if not entry.is_dir():
        raise GovernanceError(f"{model}/{version} is not in the registry")
    if registry.current_version(settings.registry_dir, model) == version:
        raise GovernanceError(f"{model}/{version} is current: promote another version before retiring it")
    write_risk_register(settings, model, version)
    target = registry.model_dir(settings.registry_dir, model) / ARCHIVE_DIR / version
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(entry, target)
    (target / "RETIRED.json").write_text(json.dumps({
        "retired_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "by": who, "reason": reason,
        "risk_register": f"../../{GOVERNANCE_DIR}/{version}/risk_register.json"}, indent=2) + "\n")
    return target
