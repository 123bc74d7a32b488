"""`make docs`: dbt docs (lineage from raw sources to feature marts) and the feature catalogue."""

from __future__ import annotations

import html
import shutil
from pathlib import Path
from typing import Any

from parity.config import Settings
from parity.features.feature_store import open_store, require_applied
from parity.ingest.warehouse import run_dbt


def catalogue_rows(store: Any) -> list[dict[str, str]]:
    """One row per feature: view, feature, type, description, dbt model, services using it."""
    services: dict[tuple[str, str], list[str]] = {}
    for service in store.list_feature_services():
        for projection in service.feature_view_projections:
            for field in projection.features:
                services.setdefault((projection.name, field.name), []).append(service.name)
    rows = []
    views = [(v, "batch") for v in store.list_feature_views()] + [
        (v, "on demand") for v in store.list_on_demand_feature_views()
    ]
    for view, kind in views:
        for field in view.features:
            rows.append(
                {
                    "feature_view": view.name,
                    "kind": kind,
                    "feature": field.name,
                    "type": str(field.dtype),
                    "description": field.description or view.description,
                    "dbt_model": view.tags.get("dbt_model", ""),
                    "services": ", ".join(sorted(services.get((view.name, field.name), []))),
                }
            )
    return rows


def render_catalogue(store: Any) -> str:
    """An HTML page listing every feature view, feature service and feature."""
    esc = html.escape
    parts = ["<!doctype html><meta charset='utf-8'><title>Parity feature catalogue</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style>",
             "<h1>Feature catalogue</h1>",
             "<p>Derived from the dbt manifest (column <code>meta.feature</code> + contract types).</p>",
             "<h2>Feature services</h2><table><tr><th>service</th><th>description</th><th>tags</th><th>features</th></tr>"]
    for service in sorted(store.list_feature_services(), key=lambda s: s.name):
        feats = ", ".join(f"{p.name}:{f.name}" for p in service.feature_view_projections for f in p.features)
        parts.append(f"<tr><td>{esc(service.name)}</td><td>{esc(service.description)}</td>"
                     f"<td>{esc(str(service.tags))}</td><td>{esc(feats)}</td></tr>")
    parts.append("</table><h2>Feature views</h2><table><tr><th>view</th><th>entities</th><th>ttl</th><th>source</th><th>description</th></tr>")
    for view in sorted(store.list_feature_views(), key=lambda v: v.name):
        parts.append(f"<tr><td>{esc(view.name)}</td><td>{esc(', '.join(view.entities))}</td><td>{view.ttl}</td>"
                     f"<td>{esc(view.tags.get('dbt_model', ''))}</td><td>{esc(view.description)}</td></tr>")
    parts.append("</table><h2>Features</h2><table><tr>" + "".join(
        f"<th>{h}</th>" for h in ("feature view", "kind", "feature", "type", "description", "dbt model", "services")) + "</tr>")
    for row in catalogue_rows(store):
        parts.append("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in row.values()) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)


def build_docs(settings: Settings) -> dict[str, Path]:
    """Generate dbt docs and the feature catalogue under <data>/docs."""
    require_applied(settings)
    out = settings.data_dir / "docs"
    out.mkdir(parents=True, exist_ok=True)
    run_dbt(settings, "docs", "generate", "--static")
    dbt_page = out / "dbt" / "index.html"
    dbt_page.parent.mkdir(parents=True, exist_ok=True)
    static = settings.dbt_target_dir / "static_index.html"
    shutil.copy(static if static.exists() else settings.dbt_target_dir / "index.html", dbt_page)
    catalogue = out / "features.html"
    catalogue.write_text(render_catalogue(open_store(settings)))
    return {"dbt_docs": dbt_page, "feature_catalogue": catalogue}
