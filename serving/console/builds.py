"""What the data page reads about builds: the last build folders (status, guards, error), each
one's reconciliation (its own warehouse, read-only), and a page of a client's quarantined records.

Build folders and their build.json are `parity.ingest.builds`' format; quarantined records come
from dbt's quarantine_<client> models, whose `raw_record` is already redacted there (no e-mail,
phone number or name) — the console shows that column, never the raw file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from parity.config import Settings
from parity.ingest import builds
from serving.console.data import Loaded

RECENT = 5
SAMPLE_COLUMNS = ("source_table", "quarantine_reason", "source_file", "line_number", "raw_record")
SUMMED = ("physical_rows", "raw_rows", "canonical_rows", "quarantined_rows", "duplicate_rows", "flagged_rows",
          "unaccounted_rows")


def recent_builds(settings: Settings, n: int = RECENT) -> list[dict[str, Any]]:
    """The newest `n` build folders (newest first) with their record and whether published."""
    published = settings.published_dir.resolve() if settings.published_dir.exists() else None
    # the folder the published build lives in (<data>/builds; a data folder may link another's)
    folder = published.parent if published is not None else settings.builds_dir
    if not folder.is_dir():
        return []
    out = []
    for path in sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True)[:n]:
        info = builds.read_info(path)
        raw = _raw_info(path)
        out.append({"build_id": path.name, "path": path, "status": info.status if info else "unrecorded",
                    "finished_at": info.finished_at if info else None, "published": path.resolve() == published,
                    "guards": list(raw.get("guards") or []), "allowed": list(raw.get("allowed") or []),
                    "error": raw.get("error")})
    return out


def _raw_info(path: Path) -> dict[str, Any]:
    import json

    try:
        data = json.loads((path / builds.INFO_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def reconciliation_of(build_dir: Path) -> Loaded:
    """A build's reconciliation mart, summed per client (read-only; a failed build may have none)."""
    import duckdb

    from parity.ingest import warehouse

    if not warehouse.exists(build_dir):
        return Loaded(problem="no warehouse in this build")
    try:
        frame = warehouse.query(None, "select * from marts.reconciliation", build_dir)
    except duckdb.Error as err:
        return Loaded(problem=f"reconciliation unreadable: {str(err).splitlines()[0]}")
    columns = [c for c in SUMMED if c in frame.columns]
    return Loaded(frame.groupby("client_id")[columns].sum().reset_index())


def guards_of(client: str, build: dict[str, Any]) -> list[str]:
    """The guard breaches a build recorded for `client` (they name "client '<name>'")."""
    return [g for g in build["guards"] if f"client '{client}'" in g]


def quarantine_page(settings: Settings, client: str, reason: str, offset: int, limit: int) -> Loaded:
    """Quarantined records of one client (optionally one reason) from the published warehouse."""
    import duckdb

    from parity.ingest import warehouse

    if client not in settings.clients or not re.fullmatch(r"[a-z][a-z0-9_]*", client):
        return Loaded(problem=f"unknown client {client!r}")
    if not warehouse.exists(settings.published_dir):
        return Loaded(problem=f"warehouse {warehouse.location(settings.published_dir)} does not exist: run `make build`")
    where, params = ("where quarantine_reason = ?", [reason]) if reason else ("", [])
    sql = (f"select {', '.join(SAMPLE_COLUMNS)}, count(*) over () as total from quarantine.quarantine_{client} "
           f"{where} order by source_table, source_file, line_number limit ? offset ?")
    try:
        with warehouse.connect(settings.published_dir) as con:
            frame = con.execute(sql, [*params, limit, offset]).df()
    except duckdb.Error as err:
        return Loaded(problem=f"quarantine of {client}: {str(err).splitlines()[0]}")
    if len(frame):
        frame["source_file"] = frame["source_file"].map(lambda p: Path(str(p)).name if pd.notna(p) else "")
    return Loaded(frame)
