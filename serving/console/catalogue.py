"""The feature catalogue: every feature with its description, type, Feast view and services, dbt
lineage from the manifest, and the registered model versions that use it. Pure: data in, rows out.

Lineage comes from dbt's manifest (`depends_on`), walked upstream from the feature's mart: the
raw source tables, staging, intermediate and mart models it is built from; and column by column
from the SQL dbt compiled (`parity.ingest.column_lineage`: the raw file fields -> staging columns
-> intermediate columns -> the mart column). Where that cannot be traced (no compiled SQL in the
build's artefacts, SQL sqlglot cannot follow) the page says why and shows the model-level path:
a guessed column would be a wrong result that looks right.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LAYERS = ("raw", "staging", "intermediate", "mart")


@dataclass
class Lineage:
    """A mart's upstream models by layer (names in walking order) and, column-level, the
    `<model or file>.<column>` that the feature is computed from in each layer."""

    by_layer: dict[str, list[str]] = field(default_factory=lambda: {layer: [] for layer in LAYERS})
    columns: dict[str, list[str]] = field(default_factory=lambda: {layer: [] for layer in LAYERS})
    problem: str | None = None  # why the column-level lineage is missing or stops early


def _layer(unique_id: str, node: Mapping[str, Any], seeds: bool = False) -> str | None:
    if unique_id.startswith("source."):
        return "raw"
    if node.get("resource_type") == "seed" and seeds:
        return "raw"  # a reference table (currency rates) a column is computed with
    if node.get("resource_type") != "model":
        return None  # seeds are not model-level lineage of a customer's value
    if str(node.get("name", "")).startswith("stg_"):
        return "staging"  # a staging model outside models/staging/ (the event log's, models/events/)
    path = str(node.get("original_file_path") or node.get("path") or "")
    for layer, folder in (("staging", "staging"), ("intermediate", "intermediate"), ("mart", "marts")):
        if f"/{folder}/" in f"/{path}":
            return layer
    return "intermediate"


def _label(unique_id: str, node: Mapping[str, Any]) -> str:
    if unique_id.startswith("source."):
        return f"{node.get('source_name', '?')}.{node.get('name', '?')}"
    if node.get("resource_type") == "seed":
        return f"seed {node.get('name', unique_id)}"
    return str(node.get("name", unique_id))


def upstream(manifest: Mapping[str, Any], model: str, column: str, columns: Any = None) -> Lineage:
    """Walk `depends_on` from the mart `model` (breadth first) and sort what it reaches by layer;
    with a `parity.ingest.column_lineage.ColumnLineage`, also the columns `column` comes from."""
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
        out.by_layer[layer].append(_label(uid, node))
        for parent in (node.get("depends_on") or {}).get("nodes", []):
            if parent not in seen:
                seen.add(parent)
                queue.append(parent)
    if columns is not None:
        _add_columns(out, manifest, columns, start, column)
    return out


def _add_columns(out: Lineage, manifest: Mapping[str, Any], columns: Any, start: str, column: str) -> None:
    """Fill `out.columns` from the column-level walk (each layer's columns, upstream last)."""
    from parity.ingest.column_lineage import Column

    nodes = {**manifest.get("sources", {}), **manifest.get("nodes", {})}
    stops = []
    for col in columns.upstream(Column(start, column)):
        node = nodes.get(col.node, {})
        layer = _layer(col.node, node, seeds=True)
        if layer is not None:
            out.columns[layer].append(f"{_label(col.node, node)}.{col.column}")
        if col in columns.problems:
            stops.append(f"{_label(col.node, node)}.{col.column}: {columns.problems[col]}")
    for layer in LAYERS:
        out.columns[layer] = sorted(set(out.columns[layer]))
    if not out.columns["raw"] and not stops:
        stops = ["no raw field reached: computed from constants of the SQL (such as the client's name) "
                 "or the build time only"]
    out.problem = "; ".join(stops) or None


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
         versions: Sequence[Any], current: str | None, columns: Any = None) -> list[dict[str, Any]]:
    """One row per feature (`parity.docs.catalogue_rows`) with its lineage and model versions."""
    models_of = used_by(versions)
    out = []
    for f in features:
        lineage = (upstream(manifest, f["dbt_model"], f["feature"], columns)
                   if manifest and f.get("dbt_model") else None)
        using = models_of.get(f["feature"], [])
        out.append({**f, "lineage": lineage, "versions": using, "in_current": current in using})
    return out
