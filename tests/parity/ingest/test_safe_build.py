"""A bad drop never changes what is published: one small drop, built and loaded into Feast once,
then broken in several ways.

1. A record the engine's reader drops without an error: the project copy's acme transactions
   reader skips what it cannot read (`ignore_errors=true`, as someone might configure it), so a
   final 3 MB line vanishes from the engine's rows; the pre-flight's own count has it,
   reconciliation does not balance, the build fails naming the client and both counts.
2. A header-only customers.csv (every transaction an orphan, a client wiped out, every dbt test
   green): the guards fail the build; with the override it publishes; rollback restores the
   previous build.
3. A raw file that is a directory, a warehouse locked by another process: messages, no traceback
   (`python -m parity` as a subprocess, as a user runs it).

After each failure every file of the published build, the Feast registry and online store and
the published link are byte-identical (sha256), and the message says which build stays published.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys

import duckdb
import pytest

from parity.config import PROJECT_ROOT, Settings
from parity.ingest import builds, guards
from parity.ingest.pipeline import BuildFailed
from parity.ingest.preflight import sources_from_manifest
from tests.conftest import build

# one drop built, applied and materialized, then four more builds (a failed, a refused, an
# allowed one, a CLI one) and a rollback: the heavy group, make test-heavy
pytestmark = [pytest.mark.data, pytest.mark.heavy]

# the project copy's acme transactions reader: lines over DuckDB's max_line_size (2 MB by default)
# are skipped silently instead of read
SKIPPING_READER = "ignore_errors=true"


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PARITY_DATA_DIR": str(settings.data_dir), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run([sys.executable, "-m", "parity", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=900, check=False)


def _state(settings: Settings) -> dict[str, str]:
    """sha256 of every file a consumer reads: the published build, Feast's registry and online
    store, batch scores; plus where the published and previous links point."""
    hashes = {"published ->": os.readlink(settings.published_dir)}
    roots = [settings.published_dir.resolve(), settings.feast_dir, settings.data_dir / "scores"]
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A project copy whose acme transactions reader skips unreadable lines, and a small drop,
    built, published, applied and materialized into Feast's online store."""
    from parity.features.feature_store import apply, materialize
    from tests.conftest import generate_raw
    from tests.training.conftest import keep_data_dir_env

    root = tmp_path_factory.mktemp("safe")
    for folder in ("dbt_project", "feature_repo"):
        shutil.copytree(PROJECT_ROOT / folder, root / folder,
                        ignore=shutil.ignore_patterns("target", "logs", "__pycache__"))
    sources = root / "dbt_project" / "models" / "staging" / "acme" / "_acme__sources.yml"
    text = sources.read_text()
    reader = text.index("raw/acme/transactions.csv', header=false")
    cut = text.index("max_line_size=67108864", reader)
    sources.write_text(text[:cut] + SKIPPING_READER + text[cut + len("max_line_size=67108864"):])
    with keep_data_dir_env():
        settings = dataclasses.replace(generate_raw(root / "data", scale=0.05), project_root=root)
        build(settings)
        apply(settings)
        materialize(settings)
    assert any(settings.feast_dir.rglob("*.db"))
    return settings


def test_a_record_the_reader_drops_fails_the_build_and_changes_nothing(live: Settings) -> None:
    victim = live.raw_dir / "acme" / "transactions.csv"
    original = victim.read_bytes()
    before, published = _state(live), builds.published(live)
    last = original.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    fields = last.split(b";")
    huge = b";".join([b"AT-HUGE", fields[1], fields[2], b"9" * 3_000_000, *fields[4:]])
    physical = original.count(b"\n") - 1 + 1  # records: lines minus the header, plus the huge one
    try:
        victim.write_bytes(original + huge + b"\n")
        src = next(s for s in sources_from_manifest(_manifest(live)) if (s.client, s.table) == ("acme", "transactions"))
        with duckdb.connect() as con:
            lines = con.execute(f"select count(*) from {src.reader_sql}").fetchone()[0]
        assert lines == physical, "premise: the reader skips the huge line silently (header + records - 1)"
        with pytest.raises(BuildFailed) as failed:
            build(live)
    finally:
        victim.write_bytes(original)
    message = str(failed.value)
    assert (f"client 'acme', transactions: {physical} physical records in the raw file, "
            f"{physical - 1} read by the engine, 1 unaccounted") in message
    assert f"build failed; the published build {published.describe()} is unchanged" in message
    assert _state(live) == before
    assert builds.read_info(sorted(live.builds_dir.iterdir())[-1]).status == "failed"


def _manifest(settings: Settings) -> dict:
    import json

    return json.loads(settings.dbt_manifest_path.read_text())


def test_a_wiped_out_client_is_stopped_by_the_guards_unless_allowed_and_rollback_restores(live: Settings) -> None:
    customers = live.raw_dir / "acme" / "customers.csv"
    original = customers.read_bytes()
    before, first = _state(live), builds.published(live)
    customers.write_bytes(original.split(b"\n", 1)[0] + b"\n")  # header only
    try:
        with pytest.raises(BuildFailed) as refused:
            build(live)
        message = str(refused.value)
        assert "client 'acme': customers_lost" in message
        assert "client 'acme': raw_rows (customers records): published " in message and ", new 0 " in message
        assert "ALLOW=acme:" in message and f"the published build {first.describe()} is unchanged" in message
        assert "client 'bolt'" not in message and "client 'cora'" not in message
        assert _state(live) == before

        allowed = build(live, allow=guards.parse_allow(["acme:*"]))
        assert {b.key for b in allowed.allowed} >= {"acme:customers_lost", "acme:raw_rows"}
    finally:
        customers.write_bytes(original)
    second = builds.published(live)
    assert second.build_id != first.build_id and builds.previous(live).build_id == first.build_id
    with duckdb.connect(str(live.warehouse_path), read_only=True) as con:
        acme = con.execute("select count(*) from marts.customer_features_weekly where client_id = 'acme'").fetchone()[0]
    assert acme == 0  # the override published the deliberate change

    rolled = _cli(live, "rollback-build")
    assert rolled.returncode == 0, rolled.stderr
    assert f"published build is now {first.build_id}" in rolled.stdout
    assert _state(live) == before  # the first build again, byte for byte (Feast never touched)


def test_a_raw_file_that_is_a_directory_is_a_message(live: Settings) -> None:
    victim = live.raw_dir / "bolt" / "customers.jsonl"
    saved = victim.with_name("customers.saved")
    before = _state(live)
    victim.rename(saved)
    victim.mkdir()
    try:
        proc = _cli(live, "build")
    finally:
        victim.rmdir()
        saved.rename(victim)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr
    assert f"client 'bolt', file {victim}" in proc.stderr and "is a directory, not a file" in proc.stderr
    assert "is unchanged" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
    assert _state(live) == before


def test_reconcile_names_a_locked_warehouse(live: Settings) -> None:
    with duckdb.connect(str(live.warehouse_path)):  # a writer holds the published warehouse
        proc = _cli(live, "reconcile")
    assert proc.returncode == 2 and "is locked by process" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
