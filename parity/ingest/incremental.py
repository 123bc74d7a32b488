"""When a build may add to the published warehouse instead of rebuilding it (`--incremental`).

Every DuckDB build records ``raw_state.json``: each raw file's size and SHA-256, a fingerprint of
the dbt project (models, macros, seeds, dbt_project.yml) and of the build's extra dbt arguments,
and of the erasure list. An incremental build is allowed only when, against the published
build's record, every raw file still starts with exactly the bytes it had (a drop was appended,
nothing rewritten), no raw file appeared or disappeared, and project, arguments and erasures are
unchanged; then dbt re-parses only the appended records (macros/incremental.sql) in a copy of the
published warehouse. Anything else is refused with the reason, and the caller builds everything:
an incremental result must equal a full rebuild, never merely look like one.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from parity.config import Settings
from parity.ingest import warehouse
from parity.ingest.preflight import Known, read_facts, sources_from_manifest

STATE_FILE = "raw_state.json"
ENV = "PARITY_INCREMENTAL"
FORMAT = 1
_CHUNK = 1 << 22


# Whole-file digests computed while checking a prefix (refusal), by (path, size, mtime_ns): the
# build's own record_state then reads each raw file once, not twice (seconds at 10M records)
_WHOLE: dict[tuple[str, int, int], str] = {}
# Prefix digests the refusal check computed, by (path, size, mtime_ns, prefix length): what
# known_prefixes takes as proof that a file still starts with the bytes its base build read
_PREFIX: dict[tuple[str, int, int, int], str] = {}


def _sha256(path: Path, limit: int | None = None) -> str:
    """SHA-256 of the file's first `limit` bytes (all when None); the whole file's digest is
    computed in the same pass and remembered for a later whole-file request."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if limit is None and key in _WHOLE:
        return _WHOLE[key]
    if limit is not None and (*key, limit) in _PREFIX:
        return _PREFIX[(*key, limit)]
    digest = hashlib.sha256()
    prefix = None
    read = 0
    with path.open("rb") as fh:
        while True:
            if limit is not None and prefix is None and read == limit:
                prefix = digest.hexdigest()
            step = _CHUNK if limit is None or prefix is not None else min(_CHUNK, limit - read)
            chunk = fh.read(step)
            if not chunk:
                break
            digest.update(chunk)
            read += len(chunk)
    whole = digest.hexdigest()
    if path.stat().st_mtime_ns == stat.st_mtime_ns and read == stat.st_size:
        _WHOLE[key] = whole
        if limit is not None:
            _PREFIX[(*key, limit)] = prefix if prefix is not None else whole
    if limit is None:
        return whole
    return prefix if prefix is not None else whole  # a file shorter than `limit`: all of it


def project_snapshot(settings: Settings) -> tuple[str, dict[str, str]]:
    """The dbt project's fingerprint (SHA-256 over every file that shapes a model's result, with
    its path) and each of those files' own SHA-256 by path (to name what changed)."""
    digest = hashlib.sha256()
    files = {}
    root = settings.dbt_project_dir
    for sub in ("models", "macros", "seeds", "dbt_project.yml", "profiles.yml"):
        base = root / sub
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in paths:
            name, text = str(path.relative_to(root)), path.read_bytes()
            digest.update(name.encode() + b"\0" + text + b"\0")
            files[name] = hashlib.sha256(text).hexdigest()
    return digest.hexdigest(), files


def project_fingerprint(settings: Settings) -> str:
    """SHA-256 over every file of the dbt project that shapes a model's result."""
    return project_snapshot(settings)[0]


def project_changes(settings: Settings, before: dict[str, str]) -> list[str]:
    """The project's files added, removed or changed since project_snapshot gave `before`."""
    now = project_snapshot(settings)[1]
    return sorted(name for name in before.keys() | now.keys() if before.get(name) != now.get(name))


def _context(settings: Settings, dbt_args: tuple[str, ...], project: str | None = None) -> dict[str, str]:
    """What besides the raw files decides a build's tables (`project`: the project's fingerprint
    as the build's dbt read it; taken now when None)."""
    from parity import suppression

    return {"project": project if project is not None else project_fingerprint(settings),
            "dbt_args": json.dumps(list(dbt_args)),
            "erased": hashlib.sha256(suppression.env_value(settings.data_dir).encode()).hexdigest()}


def raw_files(manifest_path: Path) -> list[Path]:
    """The raw files the project reads (each source's declared file)."""
    manifest = json.loads(manifest_path.read_text())
    return sorted({src.file for src in sources_from_manifest(manifest)})


def _key(settings: Settings, path: Path) -> str:
    """A raw file's name in the state: relative to the data folder when inside it (movable)."""
    try:
        return str(path.relative_to(settings.data_dir))
    except ValueError:
        return str(path)


def record_state(settings: Settings, folder: Path, manifest_path: Path, dbt_args: tuple[str, ...],
                 project: str | None = None) -> None:
    """Write the build's ``raw_state.json`` (see the module docstring), with what this build's
    pre-flight found about each file (parity.ingest.preflight.Known) when the file is the one it
    read (same size and modification time): the next incremental build's pre-flight starts there.
    `project`: the fingerprint of the project the build's dbt parsed (parity.ingest.pipeline
    takes it before dbt parses and checks it is unchanged after), not of the project as it is
    when this runs."""
    facts = read_facts(folder)
    files = {}
    for path in raw_files(manifest_path):
        if not path.is_file():
            continue
        stat = path.stat()
        files[_key(settings, path)] = {"size": stat.st_size, "sha256": _sha256(path)}
        known = facts.get(str(path))
        if known is not None and (known.size, known.mtime_ns) == (stat.st_size, stat.st_mtime_ns) == _stat(path):
            files[_key(settings, path)]["preflight"] = known.as_json()
    state = {"format": FORMAT, "files": files, "data_dir": str(settings.data_dir),
             **_context(settings, dbt_args, project)}
    (folder / STATE_FILE).write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")


def _prefix_digests(files: list[tuple[Path, int]]) -> dict[Path, str]:
    """SHA-256 of each file's first `size` bytes (the whole file's is remembered too, _sha256),
    two files at a time, largest first: hashlib frees the GIL, so both cores hash."""
    from concurrent.futures import ThreadPoolExecutor

    todo = sorted(((p, n) for p, n in files if p.stat().st_size >= n), key=lambda item: -item[1])
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip([p for p, _ in todo], pool.map(lambda item: _sha256(*item), todo), strict=True))


def prehash(settings: Settings, base: Path) -> threading.Thread:
    """Hash, on a thread, the raw files `base`'s record names (their first bytes as it read them,
    and whole): what `refusal` checks next, done while dbt parses (hashlib frees the GIL; dbt
    runs in its own process). Only a head start: `refusal` hashes again whatever changed since
    (the digests are remembered by path, size and modification time)."""
    def run() -> None:
        try:
            files: dict[str, dict[str, Any]] = json.loads((base / STATE_FILE).read_text()).get("files", {})
            todo = [(settings.data_dir / name, int(seen["size"])) for name, seen in files.items()]
            _prefix_digests([(path, size) for path, size in todo if path.is_file()])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # refusal says what is wrong

    thread = threading.Thread(target=run, name="raw-prehash", daemon=True)
    thread.start()
    return thread


def refusal(settings: Settings, base: Path, manifest_path: Path, dbt_args: tuple[str, ...],
            project: str | None = None) -> str | None:
    """Why the build cannot add to `base` (None: it can); `project`: as in record_state."""
    if settings.dbt_target != "duckdb":
        return f"this build runs on {settings.dbt_target} (incremental builds are DuckDB-only)"
    if warehouse.engine_of(base) != "duckdb":
        return "the published build is not a DuckDB build (incremental builds are DuckDB-only)"
    try:
        state: dict[str, Any] = json.loads((base / STATE_FILE).read_text())
    except (OSError, ValueError):
        return f"the published build has no readable {STATE_FILE} (built before incremental builds existed)"
    if state.get("format") != FORMAT:
        return f"the published build's {STATE_FILE} has another format"
    for key, value in _context(settings, dbt_args, project).items():
        if state.get(key) != value:
            what = {"project": "the dbt project changed", "dbt_args": "the dbt arguments (--vars) changed",
                    "erased": "the erasure list changed"}[key]
            return f"{what} since the published build"
    old: dict[str, dict[str, Any]] = state.get("files", {})
    now = {_key(settings, p): p for p in raw_files(manifest_path) if p.is_file()}
    if set(old) != set(now):
        changed = sorted(set(old) ^ set(now))
        return f"the set of raw files changed since the published build: {', '.join(changed)}"
    digests = _prefix_digests([(now[name], seen["size"]) for name, seen in old.items()])
    for name, seen in old.items():
        path = now[name]
        if path.stat().st_size < seen["size"]:
            return f"{path} is shorter than when the published build read it (rewritten, not appended)"
        if digests.get(path) != seen["sha256"]:
            return f"{path} no longer starts with the bytes the published build read (rewritten, not appended)"
    return None


def _stat(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def known_prefixes(settings: Settings, base: Path, manifest_path: Path) -> dict[Path, Known]:
    """What `base`'s pre-flight found about each raw file's first bytes, for the files this
    process's refusal check proved still start with them (the prefix digest it computed, for the
    file as it is now: same size and modification time); the pre-flight then reads only the
    bytes after them (parity.ingest.preflight_append)."""
    try:
        files: dict[str, dict[str, Any]] = json.loads((base / STATE_FILE).read_text()).get("files", {})
    except (OSError, ValueError):
        return {}
    found = {}
    for path in raw_files(manifest_path):
        seen = files.get(_key(settings, path))
        known = Known.from_json(seen.get("preflight")) if seen else None
        if known is None or known.size != seen["size"] or not path.is_file():
            continue
        if _PREFIX.get((str(path), *_stat(path), known.size)) == seen["sha256"]:
            found[path] = known
    return found


def relocate(settings: Settings, base: Path, folder: Path) -> None:
    """After copying `base` into `folder`: when the data folder moved since `base` was built,
    point the staged and quarantined rows' source_file (the raw file's path) at the raw files' new
    place, as a full build there would name them (the quarantine keeps its rows too)."""
    old = json.loads((base / STATE_FILE).read_text()).get("data_dir")
    new = str(settings.data_dir)
    if not old or old == new:
        return
    with warehouse.connect_for_update(folder) as con:
        tables = con.execute("select table_schema, table_name from information_schema.columns "
                             "where column_name = 'source_file' and table_schema in ('staging', 'quarantine')").fetchall()
        for schema, table in tables:
            con.execute(f'update "{schema}"."{table}" set source_file = ? || substr(source_file, ?) '
                        "where starts_with(source_file, ?)", [new + "/", len(old) + 2, old + "/"])


# Where an incremental dbt run records the keys each model recomputed (macros/incremental.sql)
INCREMENTS_SCHEMA = "increments"


def reset_increments(folder: Path, create: bool) -> None:
    """Drop the record of what an incremental run changed: before the run (a copied build's must
    never be read as this run's; `create`: an empty schema for the run, made here once because
    dbt's threads creating it at once conflict) and after it (it describes the run, not the data)."""
    with warehouse.connect_for_update(folder) as con:
        con.execute(f"drop schema if exists {INCREMENTS_SCHEMA} cascade")
        if create:
            con.execute(f"create schema {INCREMENTS_SCHEMA}")


# Columns that say what one build did rather than what the data is: int_customer_feature_changes
# records, beside each customer's input fingerprint (compared), whether this build found it
# changed and which of its snapshots it computed (an incremental and a full build differ there by
# design: on a full build every customer is changed).
BUILD_STEP_COLUMNS = {"intermediate.int_customer_feature_changes":
                      ("is_changed", "is_recomputed_whole", "change_reason", "rebuild_week", "previous_snapshot_end",
                       "previous_first_snapshot_at", "previous_watermark_at")}


def differences(left: Path, right: Path, schemas: tuple[str, ...] = ("staging", "quarantine", "intermediate", "marts")
                ) -> dict[str, tuple[int, int]]:
    """Per table of two DuckDB builds (`<schema>.<table>`, and each Parquet mart as
    `marts/<name>`): rows only in `left` and rows only in `right` (EXCEPT ALL both ways, so
    duplicates count; BUILD_STEP_COLUMNS left out); a table on one side only counts as (-1, -1)."""
    import duckdb

    def relations(con: duckdb.DuckDBPyConnection, side: str, folder: Path) -> dict[str, str]:
        found = {f"{s}.{t}": f'{side}."{s}"."{t}"' for s, t in con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = ?", [side]).fetchall()
            if s in schemas}
        for name, columns in BUILD_STEP_COLUMNS.items():
            if name in found:
                found[name] = f"(select * exclude ({', '.join(columns)}) from {found[name]})"
        for mart in sorted((folder / "marts").glob("*.parquet")):
            found[f"marts/{mart.stem}"] = f"read_parquet('{mart}')"
        return found

    out: dict[str, tuple[int, int]] = {}
    with duckdb.connect() as con:
        warehouse.attach(con, left, "l")
        warehouse.attach(con, right, "r")
        lhs, rhs = relations(con, "l", left), relations(con, "r", right)
        for name in sorted(lhs.keys() | rhs.keys()):
            if name not in lhs or name not in rhs:
                out[name] = (-1, -1)
                continue
            only_left, only_right = (con.execute(
                f"select count(*) from (select * from {a} except all select * from {b})").fetchone()[0]
                for a, b in ((lhs[name], rhs[name]), (rhs[name], lhs[name])))
            out[name] = (only_left, only_right)
    return out


def feature_rebuilds(folder: Path) -> dict[str, int]:
    """What an incremental build's feature mart computed (int_customer_feature_changes): customers
    recomputed whole per reason, customers given new grid points only, customers kept as they were
    (also those whose versions changed after every old snapshot: a day's purchases)."""
    import duckdb

    with warehouse.connect(folder) as con:
        try:
            rows = con.execute(
                "select case when is_recomputed_whole then 'whole: ' || change_reason "
                "when rebuild_week >= 0 then 'new grid points only' else 'kept' end, count(*) "
                "from intermediate.int_customer_feature_changes where rebuild_week is not null group by 1 order by 1"
            ).fetchall()
        except duckdb.Error:
            return {}
    return {str(what): int(n) for what, n in rows}
