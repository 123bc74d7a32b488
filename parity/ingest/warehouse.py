"""Running dbt against the warehouse and reading results back from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

from parity.config import Settings


class DbtError(RuntimeError):
    """A dbt command failed; the message carries dbt's own summary."""


def dbt_executable() -> str:
    """The dbt CLI installed next to this interpreter (the project's venv)."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(settings: Settings, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    """Run one dbt command on the project with the settings' paths; raise DbtError on failure."""
    cmd = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
    ]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.marts_dir).mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        cmd,
        env=settings.env(),
        cwd=settings.project_root,
        text=True,
        capture_output=capture,
    )
    if proc.returncode != 0:
        tail = ""
        if capture:
            lines = (proc.stdout or "").splitlines() + (proc.stderr or "").splitlines()
            tail = "\n".join(lines[-40:])
        raise DbtError(f"`dbt {' '.join(args)}` failed (exit {proc.returncode})\n{tail}".rstrip())
    return proc


def query(settings: Settings, sql: str) -> pd.DataFrame:
    """Run a read-only query on the warehouse."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql).df()


def reconciliation(settings: Settings) -> pd.DataFrame:
    """The reconciliation mart: raw = canonical + quarantined + duplicates, per client and table."""
    return query(settings, "select * from marts.reconciliation order by client_id, source_table")


def quarantine_summary(settings: Settings) -> pd.DataFrame:
    """Quarantined rows per client, table and reason."""
    unions = " union all ".join(
        f"select client_id, source_table, quarantine_reason from quarantine.quarantine_{c}"
        for c in settings.clients
    )
    return query(
        settings,
        f"select client_id, source_table, quarantine_reason, count(*) as n_rows from ({unions}) "
        "group by all order by all",
    )
