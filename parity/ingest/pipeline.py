"""`python -m parity build`: pre-flight, dbt build into a new build folder, guards, publish.

A full build starts from an empty folder; a partial one (`--select`, e.g. `make score`'s
`path:models/scores`) starts from a copy of the published build and adds the selected models to
it. Either way the result is published (parity.ingest.builds) only when every model and test
passed and no guard fired; otherwise the published build is left exactly as it was.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from parity.config import Settings
from parity.ingest import builds, guards, raw_tails, warehouse
from parity.ingest import incremental as incremental_state
from parity.ingest.build_config import BuildConfig
from parity.ingest.events import ensure_event_log
from parity.ingest.fresh_plan import PLAN_FILE, write_plan
from parity.ingest.preflight import RawFileError, check_present, run_preflight, undeclared_files
from parity.ingest.spark_metastore import MetastoreCopyError, copy_spark, link_tree
from parity.ingest.warehouse import DbtError, describe_duckdb_error, run_dbt

COUNTS_FILE = "physical_counts.csv"


class BuildFailed(RuntimeError):
    """The build did not publish; the message says why and which build stays published."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class BuildResult:
    """What a published build did."""

    build: Path
    replaced: builds.BuildInfo | None
    removed: list[Path] = field(default_factory=list)
    allowed: list[guards.Breach] = field(default_factory=list)
    mode: str = "full"


@contextmanager
def _phase(folder: Path, name: str) -> Iterator[None]:
    """Record the wall seconds of one step of a build in its build.json (`phase_seconds`), so a
    build says where its time went outside dbt too (bench.incremental reports it)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        try:
            phases = json.loads((folder / builds.INFO_FILE).read_text()).get("phase_seconds", {})
        except (OSError, ValueError):
            phases = {}
        phases[name] = round(phases.get(name, 0) + time.perf_counter() - started, 2)
        builds.write_info(folder, phase_seconds=phases)


def check_writable(settings: Settings) -> None:
    """The data folder takes new files (dbt's logger and DuckDB fail with tracebacks otherwise)."""
    probe = settings.data_dir / f".write-probe-{os.getpid()}"
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
        for folder in (settings.builds_dir, settings.data_dir / "dbt" / "logs"):
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise builds.BuildError(
            f"cannot write to the data folder {settings.data_dir} ({err.strerror or err}); "
            "a build needs a writable data folder (PARITY_DATA_DIR / --data-dir)"
        ) from None


def unchanged(settings: Settings) -> str:
    """The sentence saying what stays published after a failed build."""
    current = builds.published(settings)
    if current is None:
        return "nothing was published (there is no published build yet)"
    return f"the published build {current.describe()} is unchanged"


def run_build(settings: Settings, config: BuildConfig, select: str | None = None,
              capture: bool = False, allow: frozenset[str] = frozenset(),
              dbt_args: tuple[str, ...] = (), incremental: bool = False) -> BuildResult:
    """Build into a new folder and publish it if every model, test and guard passed (`allow`:
    guard overrides, 'client:guard'; `dbt_args`: extra arguments of dbt parse and build, e.g.
    --vars; `incremental`: add the appended raw records to a copy of the published build when
    parity.ingest.incremental allows it, else build everything); raise BuildFailed otherwise."""
    check_writable(settings)
    if select and incremental:
        raise BuildFailed("--incremental builds every model; it cannot be combined with --select", exit_code=2)
    with builds.build_lock(settings, f"build {select or ('incremental' if incremental else 'everything')}"):
        base = builds.published(settings)
        if select and base is None:
            raise BuildFailed(f"`--select {select}` adds to the published build, but nothing is "
                              "published yet: run a full `make build` first", exit_code=2)
        folder = builds.new_build(settings, select=select, base=base.path if base else None)
        try:
            mode = build_into(settings, folder, base if (select or incremental) else None, select, capture,
                              dbt_args, incremental=incremental)
            builds.write_info(folder, mode=mode)
            with _phase(folder, "guards"):
                allowed = _check_guards(settings, config, base, folder, allow)
        except BuildFailed as err:
            _record_failure(settings, config, folder, str(err))
            raise BuildFailed(f"{err}\nbuild failed; {unchanged(settings)}", err.exit_code) from None
        except (OSError, duckdb.Error) as err:
            _record_failure(settings, config, folder, str(err))
            raise BuildFailed(f"{_describe(err)}\nbuild failed; {unchanged(settings)}") from None
        with _phase(folder, "publish_and_prune"):
            replaced = builds.publish(settings, folder)
            removed = builds.prune(settings, config.keep_builds)
        return BuildResult(folder, replaced, removed, allowed, mode)


def _check_guards(settings: Settings, config: BuildConfig, base: builds.BuildInfo | None, folder: Path,
                  allow: frozenset[str]) -> list[guards.Breach]:
    """Compare the new build with the published one; raise BuildFailed on a breach not allowed."""
    if base is None:
        return []  # the first build has nothing to be compared with
    from parity import suppression

    breaches = guards.check(base.path, folder, folder / "target" / "manifest.json", config.guards,
                            suppression.keys(settings.data_dir))
    allowed = [b for b in breaches if guards.is_allowed(b, allow)]
    blocking = [b for b in breaches if not guards.is_allowed(b, allow)]
    builds.write_info(folder, guards=[str(b) for b in breaches], allowed=[b.key for b in allowed])
    if blocking:
        lines = "\n".join(f"  - {b}" for b in blocking)
        keys = ",".join(dict.fromkeys(b.key for b in blocking))
        raise BuildFailed(
            f"{len(blocking)} guard(s) fired against the published build (thresholds in "
            f"parity/ingest/build.yaml):\n{lines}\nIf this change is deliberate, build again with "
            f"`make build ALLOW={keys}` (python -m parity build --allow-guard ...)."
        )
    return allowed


def build_into(settings: Settings, folder: Path, base: builds.BuildInfo | None, select: str | None,
               capture: bool, dbt_args: tuple[str, ...] = (), incremental: bool = False,
               fresh_plan: bool = True) -> str:
    """Every step of one build into `folder`; returns its mode ('full', 'incremental' or 'partial');
    raises BuildFailed naming the step that failed (`fresh_plan=False`: no plan for the
    fresh-event path, for a build never published)."""
    # an incremental build's copy of the base warehouse runs on a thread from here on, beside the
    # parse, the checks and the pre-flight; it is cancelled (and removed) unless the build uses it
    copying = (warehouse.FileCopy(base.path, folder)
               if incremental and base is not None and warehouse.engine_of(base.path) == "duckdb" else None)
    # the build's dbt commands run in one dbt process, started now so that dbt's import runs
    # beside the steps before the parse (warehouse.DbtSession)
    dbt = warehouse.DbtSession(settings)
    # the raw files' hashes the incremental check compares, on a thread while dbt parses
    hashing = incremental_state.prehash(settings, base.path) if copying is not None and base is not None else None
    try:
        (folder / "marts").mkdir(exist_ok=True)  # DuckDB's COPY TO does not create folders
        ensure_event_log(settings)  # dbt reads it as a source: present, even before any push
        # the manifest consumers read: parsed without PARITY_BUILD_DIR, so the mart locations
        # (Feast's FileSource paths) name <data>/published, valid across publishes. Its profile
        # names this build's warehouse (`warehouse_of`), as the build's does: dbt's parse state
        # is then valid for the build's own parse, which re-parses only the files whose env vars
        # differ (the mart locations), not the whole project
        if incremental and base is not None:
            _reuse_parse_state(base.path, folder)
        # the project as dbt is about to read it: what the incremental check compares and the
        # build records, checked unchanged once dbt has run (an edit meanwhile: the code dbt ran
        # is not known, and the build fails rather than record a fingerprint it did not run)
        project, project_files = incremental_state.project_snapshot(settings)
        with _phase(folder, "dbt_parse"):
            dbt.run(settings, "parse", "--quiet", *dbt_args, capture=True, target_dir=folder / "target",
                    warehouse_of=folder)
        parsed = folder / "target" / "manifest.json"
        _seed_parse_state(folder / "target", folder / "run")
        if base is not None and select:
            if settings.dbt_target != "duckdb":  # said before a JVM starts (the metastore copy's, dbt's)
                check_present(parsed, settings.raw_dir, f"a {settings.dbt_target} build registers every "
                              f"declared raw file before any model runs, even for `--select {select}`")
            copy_build(base.path, folder)
        mode = "partial" if select else "full"
        if incremental:
            with _phase(folder, "incremental_check"):
                if hashing is not None:
                    hashing.join()
                mode, settings = _incremental_start(settings, folder, base, parsed, dbt_args, project)
            if mode != "incremental" and copying is not None:
                copying.cancel()  # refused: a full build writes its own warehouse here
                copying = None
        # the build's own parse (the build folder's paths; from the parse's state above, so only
        # the files whose env vars differ), run now beside the pre-flight and the warehouse copy:
        # the build is given what it parsed (parity.ingest.dbt_session: only when its environment
        # is exactly this one) and does not parse again
        in_build = {"target_dir": folder / "run", "build_dir": folder}
        if dbt.in_process:
            dbt.start(settings, "parse", "--quiet", "--no-write-json", *dbt_args, keep_manifest=True, **in_build)
        if not select:
            # an incremental build's pre-flight reads only what was appended to each raw file its
            # base's pre-flight read (the check above proved the rest unchanged)
            known = (incremental_state.known_prefixes(settings, base.path, parsed)
                     if mode == "incremental" and base is not None else None)
            with _phase(folder, "preflight"):
                sources = run_preflight(parsed, folder / COUNTS_FILE, known=known)
            print(f"preflight: {len(sources)} raw files readable, records counted")
            if mode == "incremental":  # what staging re-parses, cut from each raw file
                with _phase(folder, "raw_tails"):
                    raw_tails.write_tails(folder, sources, known or {})
            for path in undeclared_files(sources):
                print(f"preflight: warning: {path} is declared by no source and is not read")
        if mode == "incremental" and base is not None:
            with _phase(folder, "copy_warehouse"):  # what is left of the copy, its views re-pointed
                warehouse.copy_duckdb(base.path, folder, _recorded_dir(base.path) or str(base.path), copying)
                copying = None
            with _phase(folder, "warehouse_fixups"):  # a data folder that moved; this run's record
                incremental_state.relocate(settings, base.path, folder)
                incremental_state.reset_increments(folder, create=True)
        # an incremental build runs on the very project and --vars its base was built and
        # unit-tested with (parity.ingest.incremental refuses otherwise): its unit tests, which
        # depend on nothing else, are not run again
        skip = ["--exclude-resource-type", "unit_test"] if mode == "incremental" else []
        with _phase(folder, "dbt_build"):
            dbt.run(settings, "build", *(["--select", select] if select else []), *skip, *dbt_args, capture=capture,
                    reuse_manifest=True, **in_build)
            dbt.close()  # its process ends, releasing the warehouse, before anything reads it
        changed = incremental_state.project_changes(settings, project_files)
        if changed:
            raise BuildFailed(f"the dbt project changed while this build ran ({', '.join(changed[:5])}"
                              f"{', ...' if len(changed) > 5 else ''}): which version dbt parsed is not "
                              "known; run the build again")
        if mode == "incremental":
            incremental_state.reset_increments(folder, create=False)
            raw_tails.remove_tails(folder)
            rebuilt = incremental_state.feature_rebuilds(folder)
            builds.write_info(folder, feature_customers=rebuilt)
            print("feature mart, customers: " + ", ".join(f"{what} {n}" for what, n in rebuilt.items()))
        if mode == "full" and fresh_plan:  # the SQL the fresh-event path runs (other builds keep their base's)
            with _phase(folder, "fresh_plan"):
                write_plan(plan_manifest(settings, folder, dbt_args), folder / PLAN_FILE)
        if not select and warehouse.engine_of(folder) == "duckdb":
            with _phase(folder, "raw_state"):
                incremental_state.record_state(settings, folder, parsed, dbt_args, project)
        return mode
    except RawFileError as err:
        raise BuildFailed(str(err), exit_code=2) from None
    except DbtError as err:
        dbt.close()  # its process may hold the warehouse open: the note reads it
        raise BuildFailed(f"{err}{unaccounted_note(folder)}") from None
    finally:
        dbt.close()
        if copying is not None:  # not used: refused, or the build failed before dbt
            copying.cancel()


def _reuse_parse_state(base: Path, folder: Path) -> None:
    """Start dbt's parse from the base build's partial-parse state (dbt re-parses every file, or
    everything, whose text, vars, profile or env vars changed), so an incremental build does not
    parse the whole project."""
    _seed_parse_state(base / "target", folder / "target")


def _seed_parse_state(source: Path, target: Path) -> None:
    """Copy dbt's partial-parse state from target folder `source` to `target` (dbt reads it from
    its target path), when there is one."""
    state = source / "partial_parse.msgpack"
    if state.is_file():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(state, target / state.name)


def _incremental_start(settings: Settings, folder: Path, base: builds.BuildInfo | None, parsed: Path,
                       dbt_args: tuple[str, ...], project: str) -> tuple[str, Settings]:
    """Start an incremental build from a copy of `base` when parity.ingest.incremental allows it;
    otherwise say why and build everything (the mode and the settings dbt runs with; `project`:
    the fingerprint of the project dbt parsed)."""
    reason = ("nothing is published yet" if base is None
              else incremental_state.refusal(settings, base.path, parsed, dbt_args, project))
    if reason is not None:
        print(f"incremental build not possible: {reason}; building everything")
        builds.write_info(folder, incremental_refused=reason)
        return "full", settings
    copy_build(base.path, folder, warehouse_file=False)  # the file: copying on a thread (build_into)
    env = {**settings.extra_env, incremental_state.ENV: "1"}
    return "incremental", dataclasses.replace(settings, extra_env=env)


def plan_manifest(settings: Settings, folder: Path, dbt_args: tuple[str, ...] = ()) -> Path:
    """The manifest whose compiled SQL the fresh-event path runs: this build's own on DuckDB.

    The fresh path runs in DuckDB (parity.features.fresh), over the build's tables either way
    (a Spark build's through parity.ingest.warehouse). For a Spark build the same models are
    compiled again by dbt-duckdb — the plan's models only, in a scratch folder removed after —
    so the event path runs the build's definitions in DuckDB's dialect, never a second copy."""
    if settings.dbt_target == "duckdb":
        return folder / "run" / "manifest.json"
    from parity.ingest.fresh_plan import EVENTS_MODEL, fresh_marts

    marts = fresh_marts(json.loads((folder / "run" / "manifest.json").read_text()))
    scratch = folder / "fresh_compile"
    duck = dataclasses.replace(settings, dbt_target="duckdb")
    scratch.mkdir(exist_ok=True)
    try:
        run_dbt(duck, "compile", "--quiet", "--indirect-selection", "empty", "--select", EVENTS_MODEL,
                *(f"+{m}" for m in marts), *dbt_args, capture=True, target_dir=folder / "fresh_target",
                build_dir=scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # the empty DuckDB file dbt-duckdb opened
    return folder / "fresh_target" / "manifest.json"


def unaccounted_note(folder: Path) -> str:
    """The failed build's unaccounted records per client and table, when reconciliation was built."""
    try:
        with warehouse.connect(folder) as con:
            rows = con.execute(
                "select client_id, source_table, physical_rows, raw_rows, unaccounted_rows "
                "from marts.reconciliation where unaccounted_rows is distinct from 0 order by all"
            ).fetchall()
    except (duckdb.Error, OSError, warehouse.WarehouseMissing):
        return ""
    lines = [f"  - client '{c}', {t}: {p} physical records in the raw file, {r} read by the engine, "
             f"{u} unaccounted" for c, t, p, r, u in rows]
    return "\nrecords not accounted for:\n" + "\n".join(lines) if lines else ""


def _record_failure(settings: Settings, config: BuildConfig, folder: Path, error: str) -> None:
    """Mark the build failed (kept for inspection) and prune older ones."""
    try:
        builds.write_info(folder, status="failed", finished_at=builds.now_iso(), error=error)
        builds.prune(settings, config.keep_builds)
    except OSError:
        pass  # the failure itself is reported; its record is a courtesy


def _describe(err: BaseException) -> str:
    """An OSError or DuckDB error as one line naming the path, without a traceback."""
    if isinstance(err, OSError):
        where = f" {err.filename}" if err.filename else ""
        return f"cannot use{where}: {err.strerror or err}"
    return describe_duckdb_error(err)


def copy_build(base: Path, folder: Path, warehouse_file: bool = True) -> None:
    """Start `folder` as a copy of build `base`: warehouse copied, marts hard-linked (never written
    in place: dbt replaces a mart's file), and the warehouse's views over the marts re-pointed
    (a Spark build: its metastore's paths, parity.ingest.spark_metastore). `warehouse_file=False`:
    all but a DuckDB build's warehouse (the caller copies it, warehouse.copy_duckdb)."""
    for name in (COUNTS_FILE, PLAN_FILE, incremental_state.STATE_FILE):
        if (base / name).exists():
            shutil.copy2(base / name, folder / name)
    if (base / "marts").is_dir():
        (folder / "marts").mkdir(exist_ok=True)
        for mart in (base / "marts").iterdir():
            if mart.is_dir():  # a Spark mart: a folder of part files
                link_tree(mart, folder / "marts" / mart.name)
                continue
            try:
                os.link(mart, folder / "marts" / mart.name)
            except OSError:
                shutil.copy2(mart, folder / "marts" / mart.name)
    if warehouse.engine_of(base) == "spark":
        try:
            copy_spark(base, folder, _recorded_dir(base) or str(base))
        except MetastoreCopyError as err:
            raise BuildFailed(str(err)) from None
        return
    if warehouse_file:
        warehouse.copy_duckdb(base, folder, _recorded_dir(base) or str(base))


def _recorded_dir(base: Path) -> str | None:
    """The path the base build was written at (its views name it), from its build.json."""
    import json

    try:
        return json.loads((base / builds.INFO_FILE).read_text()).get("dir")
    except (OSError, ValueError):
        return None
