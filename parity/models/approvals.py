"""Model approvals: the registry's rule that a decision model becomes current (promote, or a
canary in serving) only with a recorded approval naming the approver and acknowledging every
item the model card flags (e.g. disparate impact below the threshold on a segment).

Ledger: ``<registry>/<model>/approvals.jsonl``, append-only (one JSON line per approval, fsynced).
A *decision model* is one whose metadata carries a decision ``threshold`` (it acts on customers);
descriptive models (the segments model) need none. The first model of a fresh project (nothing
current yet) is approved by whoever promotes it, recorded with ``kind: first_model`` so the
record says it was not a separate review; every later version needs ``make approve``.
Rollback returns to a version that was approved when it first became current.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

APPROVALS_FILE = "approvals.jsonl"
KINDS = ("review", "first_model")


class ApprovalError(ValueError):
    """An approval was refused (the message names what is missing or unknown)."""


def needs_approval(metadata: Mapping[str, Any]) -> bool:
    """A decision model (metadata with a decision threshold) needs an approval to become current."""
    return metadata.get("threshold") is not None


def flagged_items(metadata: Mapping[str, Any]) -> dict[str, str]:
    """The model card's flagged items an approver must acknowledge: item id -> what it says."""
    items = {}
    for row in metadata.get("fairness") or []:
        if row.get("flagged"):
            items[f"fairness:{row['dimension']}"] = (
                f"disparate impact {row.get('ratio', float('nan')):.2f} on {row['dimension']} "
                f"(lowest {row.get('lowest')}, highest {row.get('highest')})")
    for i, warning in enumerate((metadata.get("clients") or {}).get("warnings") or [], start=1):
        items[f"clients:{i}"] = str(warning)
    return items


def _ledger(model_dir: Path) -> Path:
    return model_dir / APPROVALS_FILE


def read_approvals(model_dir: Path) -> list[dict[str, Any]]:
    """Every approval of a model, oldest first."""
    path = _ledger(model_dir)
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def approval_for(model_dir: Path, version: str) -> dict[str, Any] | None:
    """The newest approval of one version, or None."""
    found = [a for a in read_approvals(model_dir) if a.get("version") == version]
    return found[-1] if found else None


def record(model_dir: Path, version: str, metadata: Mapping[str, Any], approver: str,
           acknowledged: Sequence[str], kind: str = "review", note: str | None = None) -> dict[str, Any]:
    """Append an approval after checking it names an approver and acknowledges exactly the
    flagged items (a missing one is refused, and so is an item the card does not flag)."""
    if not approver or not approver.strip():
        raise ApprovalError("an approval names its approver (APPROVER=...)")
    if kind not in KINDS:
        raise ApprovalError(f"unknown approval kind {kind!r} (known: {', '.join(KINDS)})")
    flagged = flagged_items(metadata)
    acked = sorted({a.strip() for a in acknowledged if a.strip()})
    missing = [item for item in flagged if item not in acked]
    unknown = [item for item in acked if item not in flagged]
    if missing or unknown:
        lines = [f"  {item}: {flagged[item]}" for item in missing]
        raise ApprovalError(
            f"approval of {version} refused: "
            + (f"unacknowledged flagged items (ACK={','.join(flagged)}):\n" + "\n".join(lines) if missing else "")
            + (f"{'; ' if missing else ''}not flagged by the model card: {', '.join(unknown)}" if unknown else ""))
    line = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "version": version,
            "approver": approver.strip(), "kind": kind, "acknowledged": {k: flagged[k] for k in acked},
            "note": note}
    model_dir.mkdir(parents=True, exist_ok=True)
    with open(_ledger(model_dir), "ab") as handle:
        handle.write(json.dumps(line, sort_keys=True).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return line


def require(model_dir: Path, model: str, version: str, metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """The approval that lets `version` become current (None for a model that needs none);
    raises ApprovalError naming the command that records one."""
    if not needs_approval(metadata):
        return None
    found = approval_for(model_dir, version)
    if found is None:
        flagged = ",".join(flagged_items(metadata)) or "<none flagged>"
        raise ApprovalError(
            f"refusing {model}/{version}: no recorded approval. Review its model card and risk register, "
            f"then `make approve VERSION={version} APPROVER=<name> ACK={flagged}`")
    return found


def canary_allowed(registry_dir: Path, model: str, version: str) -> str | None:
    """None when `version` may serve as a canary (approved, or needing no approval), else why not."""
    from parity.models import registry

    try:
        metadata = registry.read_metadata(registry_dir, model, version)
        require(registry.model_dir(registry_dir, model), model, version, metadata)
    except (ApprovalError, registry.RegistryError) as err:
        return f"canary {version} not served: {err}"
    return None
