"""`kill -9` halfway through a build leaves the published build as it was, readable, and the next
build succeeds and publishes.

A small drop is built and published, then a day is appended and `python -m parity build
--incremental` is started (its own process group) and killed with SIGKILL to the group at:
1. `copy`: the background copy of the published warehouse (parity.ingest.warehouse.FileCopy)
   has written half of the file;
2. `mart`: inside dbt, the COPY of `customer_features_weekly` has opened its temporary file
   beside the mart, which is a hard link to the published build's file until it is replaced
   (macros/materializations.sql): the query is held on its first row by a DuckDB function;
3. `guards`: every model and test is done, the build folder is complete but not published;
4. `publish`: between the two renames of publishing (`previous` moved, `published` not yet).
The process pauses at each point (a marker file says so) so the kill lands there, not near it.
After each kill every file of the published build is byte-identical, its warehouse and marts
read, and the lock is free; at the end a plain `python -m parity build --incremental` publishes.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

from parity.config import PROJECT_ROOT, Settings
from parity.ingest import builds, warehouse
from parity.ingest.datagen_day import append_day
from tests.conftest import build, generate_raw

# a full build, four killed incremental ones and a finished one: the heavy group, make test-heavy
pytestmark = [pytest.mark.data, pytest.mark.heavy]

MART = "customer_features_weekly"

# The dbt process's start-up hook (a sitecustomize on its PYTHONPATH, acting only when
# PARITY_TEST_HOLD_MART names a marker file): dbt-duckdb's cursor runs the mart's COPY with a
# DuckDB function that, on the first row, writes the marker (the temporary file's path: the COPY
# has opened it, nothing is renamed) and waits.
HOLD = textwrap.dedent('''
    import os

    if os.environ.get("PARITY_TEST_HOLD_MART"):
        import re
        import time
        from pathlib import Path

        import duckdb
        from dbt.adapters.duckdb.environments import local

        marker = Path(os.environ["PARITY_TEST_HOLD_MART"])
        pattern = re.compile(r"(.*?)copy \\((.*)\\) to '([^']*/marts/MART_NAME\\.parquet)' \\((.*)\\)\\s*$", re.S)
        execute = local.DuckDBCursorWrapper.execute

        def hold(where):
            marker.write_text(where)
            time.sleep(3600)
            return True

        def held(self, sql, bindings=None):
            found = pattern.match(sql) if isinstance(sql, str) else None
            if found:
                comment, query, target, options = found.groups()  # (dbt's query comment first)
                tmp = str(Path(target).with_name("tmp_" + Path(target).name))
                self._cursor.create_function("parity_test_hold", lambda value: hold(tmp),
                                             [duckdb.sqltype("VARCHAR")], duckdb.sqltype("BOOLEAN"),
                                             side_effects=True)
                sql = (f"{comment}copy (select * from ({query}) as held where parity_test_hold(customer_id)) "
                       f"to '{target}' ({options})")
            return execute(self, sql, bindings)

        local.DuckDBCursorWrapper.execute = held
''').replace("MART_NAME", MART)

# The build paused at one point: `python driver.py <point> <marker> <args of python -m parity>`.
DRIVER = textwrap.dedent('''
    import os, runpy, sys, time
    from pathlib import Path

    point, marker = sys.argv[1], Path(sys.argv[2])

    def pause(*args, **kwargs):
        marker.write_text(point)
        time.sleep(3600)

    from parity.ingest import builds, pipeline, warehouse
    if point == "copy":
        def half_then_pause(self, source, target):
            with source.open("rb") as src, target.open("wb") as dst:
                left = os.fstat(src.fileno()).st_size // 2
                while left > 0:
                    done = os.copy_file_range(src.fileno(), dst.fileno(), left)
                    if done == 0:
                        break
                    left -= done
            pause()
        warehouse.FileCopy._copy = half_then_pause
    elif point == "mart":
        os.environ["PARITY_TEST_HOLD_MART"] = str(marker)  # read by the dbt process's sitecustomize
    elif point == "guards":
        pipeline._check_guards = pause
    elif point == "publish":
        point_link = builds._point
        def after_previous(link, target):
            point_link(link, target)
            if link.name == "previous":
                pause()
        builds._point = after_previous
    sys.argv = ["parity", *sys.argv[3:]]
    runpy.run_module("parity", run_name="__main__", alter_sys=True)
''')


def _state(settings: Settings) -> dict[str, str]:
    """Where `published` points and the sha256 of every file of that build."""
    hashes = {"published ->": os.readlink(settings.published_dir)}
    for path in sorted(p for p in settings.published_dir.resolve().rglob("*") if p.is_file()):
        hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def _readable(settings: Settings) -> None:
    """The published warehouse and marts open and answer."""
    assert int(warehouse.reconciliation(settings)["unaccounted_rows"].abs().sum()) == 0
    marts = settings.published_dir / "marts"
    for mart in (MART, "churn_labels", "client_watermarks"):
        n = warehouse.query(None, f"select count(*) as n from read_parquet('{marts}/{mart}.parquet')",
                            folder=settings.published_dir)["n"].iloc[0]
        assert n > 0, mart


def _env(settings: Settings, hooks: Path | None = None) -> dict[str, str]:
    path = os.pathsep.join(str(p) for p in (hooks, PROJECT_ROOT) if p is not None)
    return {**os.environ, "PARITY_DATA_DIR": str(settings.data_dir), "PYTHONPATH": path,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


@pytest.fixture(scope="module")
def day_n(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A small drop built and published in full, then the next day appended (not built)."""
    settings = generate_raw(tmp_path_factory.mktemp("killed") / "data", scale=0.03)
    build(settings)
    end = warehouse.query(settings, f"select max(snapshot_at) as t from marts.{MART}")["t"].iloc[0]
    append_day(settings.raw_dir, (end + timedelta(days=7)).date(), records_per_client=5)
    return settings


def _kill_at(settings: Settings, point: str, tmp_path: Path) -> str:
    """Start the incremental build paused at `point`, SIGKILL its process group there; the
    marker's text (what the process was doing)."""
    hooks, marker = tmp_path / "hooks", tmp_path / f"{point}.marker"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(HOLD)
    driver = hooks / "driver.py"
    driver.write_text(DRIVER)
    log = (tmp_path / f"{point}.log").open("w")
    proc = subprocess.Popen([sys.executable, str(driver), point, str(marker), "build", "--incremental"],
                            cwd=PROJECT_ROOT, env=_env(settings, hooks), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not marker.exists():
            assert proc.poll() is None, f"{point}: the build ended ({proc.returncode}) before the point: " \
                                        + (tmp_path / f"{point}.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"{point}: not reached in 10 minutes"
            time.sleep(0.05)
        time.sleep(0.2)  # whatever else runs meanwhile (dbt's other threads) runs a little further
        where = marker.read_text()
        if point == "mart":
            assert Path(where).exists(), f"the mart's temporary file {where} is not there"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    return where


@pytest.mark.parametrize("point", ["copy", "mart", "guards", "publish"])
def test_a_build_killed_halfway_leaves_the_published_build_as_it_was(day_n: Settings, point: str,
                                                                    tmp_path: Path) -> None:
    before, live = _state(day_n), builds.published(day_n)
    previous = builds.previous(day_n)
    _kill_at(day_n, point, tmp_path)
    assert _state(day_n) == before, point
    assert builds.published(day_n).build_id == live.build_id
    if point == "publish":  # killed between the renames: previous moved to the published build, harmless
        assert builds.previous(day_n).build_id == live.build_id
    else:
        assert (builds.previous(day_n) or previous) == previous
    _readable(day_n)
    killed = max(day_n.builds_dir.iterdir(), key=lambda p: p.name)
    assert killed.resolve() != live.path.resolve()
    # (publish records "published" in the folder before it moves the links: the link decides)
    assert builds.read_info(killed).status == ("published" if point == "publish" else "building")


def test_the_next_build_after_the_kills_publishes(day_n: Settings) -> None:
    live = builds.published(day_n)
    proc = subprocess.run([sys.executable, "-m", "parity", "build", "--incremental"], cwd=PROJECT_ROOT,
                          env=_env(day_n), capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    now = builds.published(day_n)
    assert now.build_id != live.build_id and now.status == "published"
    assert "incremental" in proc.stdout + proc.stderr, proc.stdout[-2000:]
    _readable(day_n)
