"""Running dbt against the warehouse and reading results back from it: the one warehouse interface.

Both profiles implement it. A build folder holds either the embedded profile's DuckDB file
(`warehouse.duckdb`) or the scale profile's Spark warehouse (`spark/warehouse/<schema>.db/<table>/`,
Parquet part files, plus the marts' Parquet under `marts/`). Readers get a read-only DuckDB
connection on which the same `<schema>.<table>` names resolve either way (for Spark: views over
its Parquet files, so no JVM starts to read a few tables); no other module opens a warehouse
(tests/test_structure.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

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
    warehouse_of: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run one dbt command on the project (a `dbt` process of its own); raise DbtError on failure.

    `build_dir` makes dbt write the warehouse and marts into that build folder (PARITY_BUILD_DIR),
    `target_dir` puts dbt's target (manifest, run results) there; `warehouse_of` (a build
    folder): the profile names that build's warehouse as its dbt build will, everything else the
    published build (a build's parse: its partial-parse state then serves the build's own parse).
    Without them dbt works on the published build, which must exist. Output streams to the
    terminal unless `capture`; either way the last lines are kept for the error message.
    """
    cmd, env = dbt_command(settings, args, target_dir, build_dir, warehouse_of)
    tail: deque[str] = deque(maxlen=60)
    with subprocess.Popen([dbt_executable(), *cmd], env=env, cwd=settings.project_root, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            if not capture:
                print(line, end="", flush=True)
    if proc.returncode != 0:
        raise DbtError(_failure_message(args, proc.returncode, list(tail), capture))
    return subprocess.CompletedProcess(cmd, proc.returncode, "\n".join(tail), "")


def dbt_command(settings: Settings, args: tuple[str, ...], target_dir: Path | None = None,
                build_dir: Path | None = None, warehouse_of: Path | None = None
                ) -> tuple[list[str], dict[str, str]]:
    """The arguments (after `dbt`) and the environment of one dbt command (see run_dbt)."""
    cmd = [*args, "--project-dir", str(settings.dbt_project_dir), "--profiles-dir", str(settings.dbt_project_dir)]
    env = settings.env()
    if target_dir is not None:
        env["DBT_TARGET_PATH"] = str(target_dir)
    if build_dir is not None:
        env["PARITY_BUILD_DIR"] = str(build_dir)
        env["PARITY_WAREHOUSE_DIR"] = str(_point_build_link(settings, build_dir))
    elif warehouse_of is not None:
        env["PARITY_WAREHOUSE_DIR"] = str(_point_build_link(settings, warehouse_of))
    elif target_dir is None and not settings.published_dir.exists():
        # ad hoc, before the first build: nothing to work on (and dbt must not create
        # <data>/published as a folder); parse/compile/ls only check the project
        if args and args[0] not in ADHOC_WITHOUT_BUILD:
            raise DbtError(f"nothing is published in {settings.data_dir} yet: run `make build` first")
        env["DBT_TARGET_PATH"] = str(settings.data_dir / "dbt" / "target")
    (settings.data_dir / "dbt" / "logs").mkdir(parents=True, exist_ok=True)
    return cmd, env


class DbtSession:
    """The dbt commands of one build in one dbt process (parity.ingest.dbt_session): dbt is
    imported and its adapter started once, not once per command. DuckDB builds only: a Spark
    build's dbt-spark starts a JVM in its process, so there each command stays a `dbt` process of
    its own (run_dbt). Use as a context manager; the process ends with it (killed if a command
    is still running, e.g. the build was interrupted)."""

    def __init__(self, settings: Settings):
        self.proc: subprocess.Popen[str] | None = None
        self.busy = False  # a command is running
        self.pending: Callable[[], subprocess.CompletedProcess] | None = None  # what `finish` waits for
        if settings.dbt_target == "duckdb":
            from parity.ingest import dbt_session

            self.marker = dbt_session.MARKER
            env = settings.env()  # the child imports this package's dbt_session wherever it runs
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(dbt_session.__file__).resolve().parents[2]),
                                                            env.get("PYTHONPATH")) if p)
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "parity.ingest.dbt_session"], env=env, cwd=settings.project_root,
                text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                errors="replace", bufsize=1)

    @property
    def in_process(self) -> bool:
        """Whether its commands run in its one process (else each is a `dbt` process of its own)."""
        return self.proc is not None

    def __enter__(self) -> DbtSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, settings: Settings, *args: str, capture: bool = False, target_dir: Path | None = None,
            build_dir: Path | None = None, warehouse_of: Path | None = None,
            reuse_manifest: bool = False) -> subprocess.CompletedProcess:
        """run_dbt's command, run by this session's process (or by run_dbt when it has none);
        `reuse_manifest`: given the manifest a `start(..., keep_manifest=True)` parse just made,
        when this command's environment is exactly that parse's (parity.ingest.dbt_session)."""
        self.start(settings, *args, target_dir=target_dir, build_dir=build_dir, warehouse_of=warehouse_of,
                   reuse_manifest=reuse_manifest, capture=capture)
        return self.finish()

    def start(self, settings: Settings, *args: str, target_dir: Path | None = None, build_dir: Path | None = None,
              warehouse_of: Path | None = None, keep_manifest: bool = False, reuse_manifest: bool = False,
              capture: bool = True) -> None:
        """Start a command without waiting for it (`finish` waits, and so does the next command:
        a failure is raised there); `keep_manifest`: keep what it parsed for the next command."""
        self.finish()
        if self.proc is None or self.proc.poll() is not None:
            self.pending = lambda: run_dbt(settings, *args, capture=capture, target_dir=target_dir,
                                           build_dir=build_dir, warehouse_of=warehouse_of)
            return
        cmd, env = dbt_command(settings, args, target_dir, build_dir, warehouse_of)
        # dbt's log file at info (each node's start, end and error), not debug (every statement's
        # SQL: ~1 s of CPU per build, ~5% of dbt's run at 20k transactions); DBT_LOG_LEVEL_FILE=debug
        # in the environment keeps the SQL
        env.setdefault("DBT_LOG_LEVEL_FILE", "info")
        assert self.proc.stdin is not None
        self.busy = True
        try:
            self.proc.stdin.write(json.dumps({"args": cmd, "env": env, "keep_manifest": keep_manifest,
                                              "reuse_manifest": reuse_manifest}) + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # the process ended: said by finish, with what it printed
        self.pending = lambda: self._output(args, cmd, capture)

    def finish(self) -> subprocess.CompletedProcess | None:
        """Wait for the command started last, if any; raise DbtError if it failed."""
        pending, self.pending = self.pending, None
        return pending() if pending is not None else None

    def _output(self, args: tuple[str, ...], cmd: list[str], capture: bool) -> subprocess.CompletedProcess:
        """Read the running command's output up to its exit marker (see run_dbt's `capture`)."""
        assert self.proc is not None and self.proc.stdout is not None
        tail: deque[str] = deque(maxlen=60)
        code: int | None = None
        for line in self.proc.stdout:
            at = line.find(self.marker)
            if at >= 0:
                line, code = line[:at], int(line[at + len(self.marker):].strip() or 2)
            if line:
                tail.append(line.rstrip("\n"))
                if not capture:
                    print(line, end="", flush=True)
            if code is not None:
                break
        if code is None:  # the process ended before the command did
            code = self.proc.wait() or 2
        self.busy = False
        if code != 0:
            raise DbtError(_failure_message(args, code, list(tail), capture))
        return subprocess.CompletedProcess(cmd, code, "\n".join(tail), "")

    def close(self) -> None:
        """End the process: stdin closed ends it; one still running a command is killed."""
        self.pending = None
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if self.busy:  # interrupted mid-command: nothing it does now is used
            proc.kill()
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# <data>/dbt/<this>: a link to the folder a build's dbt writes (see _point_build_link)
BUILD_LINK = "building"


def _point_build_link(settings: Settings, build_dir: Path) -> Path:
    """Point `<data>/dbt/building` at `build_dir` and return the link: the DuckDB profile names the
    warehouse through it, so its value is the same for every build and dbt's partial parse state
    of the base build stays valid (a changed profile makes dbt parse everything again, ~5 s).
    Builds hold the build lock, so one build at a time moves it."""
    link = settings.data_dir / "dbt" / BUILD_LINK
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{BUILD_LINK}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path(build_dir).resolve(), target_is_directory=True)
    os.replace(tmp, link)
    return link


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


WAREHOUSE_FILE = "warehouse.duckdb"
SPARK_WAREHOUSE = Path("spark") / "warehouse"


class WarehouseMissing(RuntimeError):
    """A build folder holds no warehouse of either profile."""


def engine_of(folder: Path) -> str | None:
    """'duckdb' or 'spark': which profile built the warehouse in `folder` (None: no warehouse)."""
    if (folder / WAREHOUSE_FILE).exists():
        return "duckdb"
    if (folder / SPARK_WAREHOUSE).is_dir():
        return "spark"
    return None


def exists(folder: Path) -> bool:
    """Whether `folder` (a build, or the published link) holds a warehouse."""
    return engine_of(folder) is not None


def location(folder: Path) -> Path:
    """What to name in messages: the DuckDB file, or the Spark warehouse folder."""
    return folder / (SPARK_WAREHOUSE if engine_of(folder) == "spark" else WAREHOUSE_FILE)


def spark_relations(folder: Path) -> dict[tuple[str, str], Path]:
    """(schema, table) -> Parquet folder or file of every table a Spark build wrote."""
    found: dict[tuple[str, str], Path] = {}
    for db in sorted((folder / SPARK_WAREHOUSE).glob("*.db")):
        for table in sorted(p for p in db.iterdir() if p.is_dir() and any(p.glob("*.parquet"))):
            found[(db.name[: -len(".db")], table.name)] = table
    for mart in sorted((folder / "marts").glob("*.parquet")):
        found[("marts", mart.name[: -len(".parquet")])] = mart
    return found


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _spark_views(con: duckdb.DuckDBPyConnection, folder: Path, catalog: str | None = None) -> None:
    """`<schema>.<table>` views over a Spark build's Parquet, in `catalog` (default: the current)."""
    prefix = f'"{catalog}".' if catalog else ""
    for (schema, table), path in spark_relations(folder).items():
        con.execute(f'create schema if not exists {prefix}"{schema}"')
        con.execute(f"create or replace view {prefix}\"{schema}\".\"{table}\" as "
                    f"select * from read_parquet('{_quote(str(path))}')")


def connect(folder: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse of a build folder (either profile's)."""
    engine = engine_of(folder)
    if engine == "duckdb":
        return duckdb.connect(str(folder / WAREHOUSE_FILE), read_only=True)
    if engine is None:
        raise WarehouseMissing(f"no warehouse in {folder}: run `make build`")
    con = duckdb.connect()
    _spark_views(con, folder)
    return con


def connect_for_update(folder: Path) -> duckdb.DuckDBPyConnection:
    """A writable connection to a DuckDB build's warehouse, for governance's in-place retention
    (blanking old quarantine samples); a Spark build is refused (its tables are Parquet files)."""
    if engine_of(folder) != "duckdb":
        raise WarehouseMissing(f"no DuckDB warehouse in {folder} (a Spark build is not updated in place)")
    return duckdb.connect(str(folder / WAREHOUSE_FILE))


def update_spark_table(folder: Path, schema: str, table: str,
                       change: Callable[[pa.Table], tuple[pa.Table, int]], apply: bool) -> int:
    """Pass every Parquet part of a Spark build's table through `change` (-> the part as it should
    be, rows changed); with `apply`, write each changed part back (same schema and Spark's
    metadata; temp file + rename) and drop Hadoop's checksum beside it (`.<part>.crc`: Spark's
    local reader verifies it when present, and it no longer matches). Returns the rows changed.
    Part by part: an interrupted run leaves some parts done, and running again finishes the rest."""
    import pyarrow.parquet as pq

    path = spark_relations(folder).get((schema, table))
    if path is None or engine_of(folder) != "spark":
        raise WarehouseMissing(f"no Spark table {schema}.{table} in {folder}")
    changed = 0
    for part in sorted(path.glob("*.parquet")):
        before = pq.read_table(part)
        after, rows = change(before)
        changed += rows
        if apply and rows:
            tmp = part.with_name(f".{part.name}.{os.getpid()}.tmp")
            # Spark writes timestamps as INT96 by default and reads no nanosecond INT64: keep INT96
            int96 = any(c.physical_type == "INT96" for c in pq.ParquetFile(part).schema)
            pq.write_table(after.replace_schema_metadata(before.schema.metadata), tmp,
                           use_deprecated_int96_timestamps=int96)
            os.replace(tmp, part)
            part.with_name(f".{part.name}.crc").unlink(missing_ok=True)
    return changed


def attach(con: duckdb.DuckDBPyConnection, folder: Path, alias: str) -> None:
    """Make a build's warehouse readable as `<alias>.<schema>.<table>` on `con` (guards compare two)."""
    engine = engine_of(folder)
    if engine == "duckdb":
        con.execute(f"attach '{_quote(str(folder / WAREHOUSE_FILE))}' as {alias} (read_only)")
    elif engine == "spark":
        con.execute(f"attach ':memory:' as {alias}")
        _spark_views(con, folder, alias)
    else:
        raise WarehouseMissing(f"no warehouse in {folder}")


def copy_duckdb(base: Path, folder: Path, old_dir: str, copied: FileCopy | None = None) -> None:
    """Copy a DuckDB build's warehouse into `folder` (a partial build's start), its views over the
    marts re-pointed from `old_dir` (where `base` was written) to `folder` (`copied`: a copy of the
    file already started, parity.ingest.pipeline starts it before its checks)."""
    (copied or FileCopy(base, folder)).wait()
    with duckdb.connect(str(folder / WAREHOUSE_FILE)) as con:
        views = con.execute(
            "select sql from duckdb_views() where not internal and sql like ?", [f"%{old_dir}/%"]
        ).fetchall()
        for (sql,) in views:
            con.execute(sql.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1).replace(f"{old_dir}/", f"{folder}/"))


class FileCopy:
    """The DuckDB file (and WAL) of build `base` copied into `folder` on a thread, so that the
    copy (5 GB at 10M transactions, no reflink on ext4) runs while the build checks its raw files:
    the kernel copies (copy_file_range), the GIL is free. `cancel` stops it and removes the partial
    files (a build that will not use them); `wait` re-raises the copy's error. `base` is only read."""

    STEP = 64 * 1024 * 1024

    def __init__(self, base: Path, folder: Path):
        import threading

        self.names = [n for n in (WAREHOUSE_FILE, f"{WAREHOUSE_FILE}.wal") if (base / n).exists()]
        self.base, self.folder = base, folder
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="warehouse-copy", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for name in self.names:
                self._copy(self.base / name, self.folder / name)
        except BaseException as err:  # noqa: BLE001 - handed to the waiting thread
            self.error = err

    def _copy(self, source: Path, target: Path) -> None:
        import shutil

        with source.open("rb") as src, target.open("wb") as dst:
            left = os.fstat(src.fileno()).st_size
            try:
                while left > 0 and not self.stop.is_set():
                    done = os.copy_file_range(src.fileno(), dst.fileno(), min(self.STEP, left))
                    if done == 0:
                        break
                    left -= done
            except OSError:  # no in-kernel copy between these file systems: copy through memory
                src.seek(0)
                dst.seek(0)
                dst.truncate()
                shutil.copyfileobj(src, dst, self.STEP)

    def wait(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error

    def cancel(self) -> None:
        self.stop.set()
        self.thread.join()
        for name in self.names:
            (self.folder / name).unlink(missing_ok=True)


def query(settings: Settings | None, sql: str, folder: Path | None = None) -> pd.DataFrame:
    """Run a read-only query on the published warehouse (or on the build in `folder`)."""
    if folder is None and settings is None:
        raise ValueError("query needs settings (the published build) or a build folder")
    with connect(folder or settings.published_dir) as con:
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
