"""The feature catalogue: every feature with its description, type, Feast view and services, dbt
lineage from the manifest, and the registered model versions that use it. Pure: data in, rows out.

Lineage comes from dbt's manifest (`depends_on`), walked upstream from the feature's mart: the
raw source tables, staging, intermediate and mart models it is built from. Column-level where the
manifest can say it: a model or raw table upstream that documents a column of the same name
(e.g. `country` from each client's customers file); a computed feature (a 90-day sum) keeps its
model-level path — dbt core's manifest has no column lineage, and a guessed one would be a wrong
result that looks right.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LAYERS = ("raw", "staging", "intermediate", "mart")


@dataclass
class Lineage:
    """A mart's upstream, by layer (names in walking order), and which of them carry `column`."""

    by_layer: dict[str, list[str]] = field(default_factory=lambda: {layer: [] for layer in LAYERS})
    same_name: dict[str, list[str]] = field(default_factory=lambda: {layer: [] for layer in LAYERS})


def _layer(unique_id: str, node: Mapping[str, Any]) -> str | None:
    if unique_id.startswith("source."):
        return "raw"
    if node.get("resource_type") != "model":
        return None  # seeds (currency rates) and the like are not lineage of a customer's value
    path = str(node.get("original_file_path") or node.get("path") or "")
    for layer, folder in (("staging", "staging"), ("intermediate", "intermediate"), ("mart", "marts")):
        if f"/{folder}/" in f"/{path}":
            return layer
    return "intermediate"


def _label(unique_id: str, node: Mapping[str, Any]) -> str:
    if unique_id.startswith("source."):
        return f"{node.get('source_name', '?')}.{node.get('name', '?')}"
    return str(node.get("name", unique_id))


def upstream(manifest: Mapping[str, Any], model: str, column: str) -> Lineage:
    """Walk `depends_on` from the mart `model` (breadth first) and sort what it reaches by layer."""
    nodes, sources = manifest.get("nodes", {}), manifest.get("sources", {})
    start = next((uid for uid, n in nodes.items() if n.get("resource_type") == "model" and n.get("name") == model), None)
    out = Lineage()
    if start is None:
        return out
    seen, queue = {start}, [start]
    while queue:
        uid = queue.pop(0)
        node = nodes.get(uid) or sources.get(uid) or {}
        layer = _layer(uid, node)
        if layer is None:
            continue
        label = _label(uid, node)
        out.by_layer[layer].append(label)
        if column in (node.get("columns") or {}):
            out.same_name[layer].append(f"{label}.{column}")
        for parent in (node.get("depends_on") or {}).get("nodes", []):
            if parent not in seen:
                seen.add(parent)
                queue.append(parent)
    return out


def used_by(versions: Sequence[Any]) -> dict[str, list[str]]:
    """feature name -> the registered versions whose metadata lists it (newest first as given)."""
    out: dict[str, list[str]] = {}
    for v in versions:
        for item in (getattr(v, "metadata", None) or {}).get("features") or []:
            name = item[0] if isinstance(item, (list, tuple)) and item else None
            if isinstance(name, str):
                out.setdefault(name, []).append(v.version)
    return out


def rows(features: Sequence[Mapping[str, str]], manifest: Mapping[str, Any] | None,
         versions: Sequence[Any], current: str | None) -> list[dict[str, Any]]:
    """One row per feature (`parity.docs.catalogue_rows`) with its lineage and model versions."""
    models_of = used_by(versions)
    out = []
    for f in features:
        lineage = upstream(manifest, f["dbt_model"], f["feature"]) if manifest and f.get("dbt_model") else None
        using = models_of.get(f["feature"], [])
        out.append({**f, "lineage": lineage, "versions": using, "in_current": current in using})
    return out
