"""Running dbt against the warehouse and reading results back from it."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import deque
from pathlib import Path

import duckdb
import pandas as pd

from parity.config import Settings

# dbt commands that neither read nor write the warehouse: allowed before anything is published
ADHOC_WITHOUT_BUILD = ("parse", "compile", "ls", "list", "debug")


class DbtError(RuntimeError):
    """A dbt command failed; the message carries dbt's own summary."""


def dbt_executable() -> str:
    """The dbt CLI installed next to this interpreter (the project's venv)."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(
    settings: Settings,
    *args: str,
    capture: bool = False,
    target_dir: Path | None = None,
    build_dir: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run one dbt command on the project; raise DbtError on failure.

    `build_dir` makes dbt write the warehouse and marts into that build folder (PARITY_BUILD_DIR),
    `target_dir` puts dbt's target (manifest, run results) there. Without them dbt works on the
    published build, which must exist. Output streams to the terminal unless `capture`; either
    way the last lines are kept for the error message.
    """
    cmd = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
    ]
    env = settings.env()
    if target_dir is not None:
        env["DBT_TARGET_PATH"] = str(target_dir)
    if build_dir is not None:
        env["PARITY_BUILD_DIR"] = str(build_dir)
    elif target_dir is None and not settings.published_dir.exists():
        # ad hoc, before the first build: nothing to work on (and dbt must not create
        # <data>/published as a folder); parse/compile/ls only check the project
        if args and args[0] not in ADHOC_WITHOUT_BUILD:
            raise DbtError(f"nothing is published in {settings.data_dir} yet: run `make build` first")
        env["DBT_TARGET_PATH"] = str(settings.data_dir / "dbt" / "target")
    (settings.data_dir / "dbt" / "logs").mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=60)
    with subprocess.Popen(cmd, env=env, cwd=settings.project_root, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            if not capture:
                print(line, end="", flush=True)
    if proc.returncode != 0:
        raise DbtError(_failure_message(args, proc.returncode, list(tail), capture))
    return subprocess.CompletedProcess(cmd, proc.returncode, "\n".join(tail), "")


_LOCK_RE = re.compile(r"Could not set lock on file \"([^\"]+)\"(?:[^\n]*?PID (\d+))?")


def _failure_message(args: tuple[str, ...], code: int, tail: list[str], captured: bool) -> str:
    """dbt's failure as one message: a DuckDB lock named as such, else dbt's own last lines."""
    text = "\n".join(tail)
    lock = _LOCK_RE.search(text)
    if lock:
        holder = f"process {lock.group(2)}" if lock.group(2) else "another process"
        return (f"`dbt {' '.join(args)}` failed: the DuckDB file {lock.group(1)} is locked by {holder} "
                "(an open DuckDB session or another build); close it and run the build again")
    shown = tail[-40:] if captured else [line for line in tail if _is_error_line(line)][-20:]
    return f"`dbt {' '.join(args)}` failed (exit {code})\n" + "\n".join(shown)


def _is_error_line(line: str) -> bool:
    return any(k in line for k in ("Error", "ERROR", "Failure", "FAIL", "error", "Done."))


def describe_duckdb_error(err: duckdb.Error) -> str:
    """A DuckDB error in one line; a file lock held by another process said as such."""
    first = str(err).splitlines()[0] if str(err) else type(err).__name__
    lock = _LOCK_RE.search(str(err))
    if lock:
        holder = f"process {lock.group(2)}" if lock.group(2) else "another process"
        return (f"the DuckDB file {lock.group(1)} is locked by {holder} (an open DuckDB session or a "
                "build); close it and try again")
    return f"DuckDB: {first}"


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
