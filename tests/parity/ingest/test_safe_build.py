"""A bad drop never changes what is published: `python -m parity build` (a subprocess, as a user
runs it) on one small drop, built and loaded into Feast once, then broken in two ways.

1. A record DuckDB's CSV reader drops without an error (a final 40 MB line past the reader's
   sniffing sample): the pre-flight's own count has it, reconciliation does not balance, the
   build fails naming the client and both counts.
2. A header-only customers.csv (every transaction an orphan, a client wiped out, every dbt test
   green): the guards fail the build; with the override it publishes; rollback restores the
   previous build.

After each failure every file of the published build, the Feast registry and online store and
the published link are byte-identical (sha256), and the message says which build stays published.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import duckdb
import pytest

from parity.config import PROJECT_ROOT, Settings
from parity.ingest import builds
from parity.ingest.preflight import sources_from_manifest

pytestmark = pytest.mark.data

SNIFF_ROWS = 21_000  # more rows than DuckDB's CSV sniffer samples, so a final huge line is dropped


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
    """A small drop, built, published, applied and materialized into Feast's online store."""
    from parity.features.feature_store import apply, materialize
    from tests.conftest import build, generate_raw
    from tests.training.conftest import keep_data_dir_env

    with keep_data_dir_env():
        settings = generate_raw(tmp_path_factory.mktemp("safe") / "data", scale=0.05)
        build(settings)
        apply(settings)
        materialize(settings)
    assert (settings.feast_dir).is_dir() and any(settings.feast_dir.rglob("*.db"))
    return settings


def test_a_record_the_reader_drops_fails_the_build_and_changes_nothing(live: Settings) -> None:
    victim = live.raw_dir / "acme" / "transactions.csv"
    original = victim.read_bytes()
    before, published = _state(live), builds.published(live)
    last = original.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    fields = last.split(b";")
    huge = b";".join([b"AT-HUGE", fields[1], fields[2], b"9" * 40_000_000, *fields[4:]])
    try:
        # exact repeats of the last record (removed as duplicates, accounted for), then the huge line
        victim.write_bytes(original + (last + b"\n") * SNIFF_ROWS + huge + b"\n")
        src = next(s for s in sources_from_manifest(_manifest(live)) if (s.client, s.table) == ("acme", "transactions"))
        physical = original.count(b"\n") - 1 + SNIFF_ROWS + 1
        with duckdb.connect() as con:
            engine = con.execute(f"select count(*) from {src.reader_sql}").fetchone()[0]
        assert engine == physical - 1, "premise: DuckDB's reader drops the final huge line silently"
        proc = _cli(live, "build")
    finally:
        victim.write_bytes(original)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert (f"client 'acme', transactions: {physical} physical records in the raw file, "
            f"{physical - 1} read by the engine, 1 unaccounted") in proc.stderr
    assert f"build failed; the published build {published.describe()} is unchanged" in proc.stderr
    assert _state(live) == before
    failed = builds.read_info(sorted(live.builds_dir.iterdir())[-1])
    assert failed.status == "failed"


def _manifest(settings: Settings) -> dict:
    import json

    return json.loads(settings.dbt_manifest_path.read_text())


def test_a_wiped_out_client_is_stopped_by_the_guards_unless_allowed_and_rollback_restores(live: Settings) -> None:
    customers = live.raw_dir / "acme" / "customers.csv"
    original = customers.read_bytes()
    before, first = _state(live), builds.published(live)
    customers.write_bytes(original.split(b"\n", 1)[0] + b"\n")  # header only
    try:
        refused = _cli(live, "build")
        assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr
        assert "Traceback" not in refused.stderr + refused.stdout
        assert "client 'acme': customers_lost" in refused.stderr
        assert "client 'acme': raw_rows (customers records): published " in refused.stderr
        assert "new 0 " in refused.stderr and "ALLOW=acme:" in refused.stderr
        assert f"the published build {first.describe()} is unchanged" in refused.stderr
        assert "client 'bolt'" not in refused.stderr and "client 'cora'" not in refused.stderr
        assert _state(live) == before

        allowed = _cli(live, "build", "--allow-guard", "acme:*")
        assert allowed.returncode == 0, allowed.stdout[-3000:] + allowed.stderr
        assert "guard allowed by --allow-guard acme:customers_lost" in allowed.stdout
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
    with duckdb.connect(str(live.warehouse_path), read_only=True) as con:
        acme = con.execute("select count(*) from marts.customer_features_weekly where client_id = 'acme'").fetchone()[0]
    assert acme > 0


def test_reconcile_names_a_locked_warehouse(live: Settings) -> None:
    with duckdb.connect(str(live.warehouse_path)):  # a writer holds the published warehouse
        proc = _cli(live, "reconcile")
    assert proc.returncode == 2 and "is locked by process" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
