"""Guards against the published build, on two hand-made build folders (a warehouse with a
reconciliation table and a feature mart in Parquet each; no dbt): each guard fires alone, names
the client, the metric and both values, and an override lets exactly that breach through."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from parity.ingest import guards
from parity.ingest.build_config import GuardConfig, load_build_config

CONFIG = GuardConfig(raw_rows_max_change=0.5, quarantine_ratio_max_increase=0.05,
                     customers_lost_max=0.05, feature_rows_max_change=0.25)


def _manifest(path: Path) -> Path:
    node = {"resource_type": "model", "name": "features",
            "config": {"location": "/anywhere/published/marts/features.parquet",
                       "meta": {"feast": {"join_key": "customer_id"}}}}
    path.write_text(json.dumps({"nodes": {"model.parity.features": node}}))
    return path


def _build(folder: Path, recon: list[tuple], customers: dict[str, int], weeks: int = 4) -> Path:
    """A build folder: reconciliation rows (client, table, physical, quarantined) and a feature
    mart with `weeks` rows for each of customers[client] customers."""
    (folder / "marts").mkdir(parents=True)
    with duckdb.connect(str(folder / "warehouse.duckdb")) as con:
        con.execute("create schema marts")
        con.execute("create table marts.reconciliation (client_id varchar, source_table varchar, "
                    "physical_rows bigint, raw_rows bigint, quarantined_rows bigint)")
        for client, table, physical, quarantined in recon:
            con.execute("insert into marts.reconciliation values (?, ?, ?, ?, ?)",
                        [client, table, physical, physical, quarantined])
        rows = [(f"{c}:{n}", w) for c, count in customers.items() for n in range(count) for w in range(weeks)]
        con.execute("create table f (customer_id varchar, week int)")
        if rows:
            con.executemany("insert into f values (?, ?)", rows)
        con.execute(f"copy f to '{folder / 'marts' / 'features.parquet'}' (format parquet)")
    return folder


BASE_RECON = [("acme", "customers", 100, 10), ("acme", "transactions", 1000, 100),
              ("bolt", "customers", 200, 20), ("bolt", "transactions", 2000, 200)]
BASE_CUSTOMERS = {"acme": 100, "bolt": 200}


@pytest.fixture
def published(tmp_path: Path) -> Path:
    return _build(tmp_path / "published", BASE_RECON, BASE_CUSTOMERS)


def _check(tmp_path: Path, published: Path, recon=BASE_RECON, customers=BASE_CUSTOMERS, weeks=4):
    new = _build(tmp_path / "new", recon, customers, weeks)
    return guards.check(published, new, _manifest(tmp_path / "manifest.json"), CONFIG)


def test_an_unchanged_build_passes(tmp_path: Path, published: Path) -> None:
    assert _check(tmp_path, published) == []


def test_raw_rows_fires_per_table_naming_both_values(tmp_path: Path, published: Path) -> None:
    recon = [r if r[:2] != ("bolt", "transactions") else ("bolt", "transactions", 900, 90) for r in BASE_RECON]
    (breach,) = _check(tmp_path, published, recon=recon)
    assert (breach.client, breach.guard) == ("bolt", "raw_rows")
    assert "transactions" in str(breach) and "2,000" in str(breach) and "900" in str(breach)


def test_quarantine_ratio_fires(tmp_path: Path, published: Path) -> None:
    recon = [r if r[:2] != ("acme", "transactions") else ("acme", "transactions", 1000, 170) for r in BASE_RECON]
    (breach,) = _check(tmp_path, published, recon=recon)
    assert (breach.client, breach.guard) == ("acme", "quarantine_ratio")
    assert "10.0% (110 of 1,100)" in str(breach) and "16.4% (180 of 1,100)" in str(breach)


def test_customers_lost_fires_even_when_new_customers_replace_them(tmp_path: Path, published: Path) -> None:
    new = _build(tmp_path / "new", BASE_RECON, {"acme": 0, "bolt": 200})
    # acme: the same count of customers, but 10 of the published ones are gone
    with duckdb.connect() as con:
        con.execute(f"""copy (select * from read_parquet('{published / 'marts' / 'features.parquet'}')
                              where customer_id not in (select 'acme:' || i from range(10) t(i))
                              union all select 'acme:new' || i, w from range(10) t(i), range(4) s(w))
                        to '{new / 'marts' / 'features.parquet'}' (format parquet)""")
    (breach,) = guards.check(published, new, _manifest(tmp_path / "m.json"), CONFIG)
    assert (breach.client, breach.guard) == ("acme", "customers_lost")
    assert "100 customers" in str(breach) and "90 of them left (10 = 10.0% lost)" in str(breach)


def test_feature_rows_fires(tmp_path: Path, published: Path) -> None:
    acme, bolt = _check(tmp_path, published, weeks=6)  # +50% rows, same customers
    assert (acme.client, acme.guard, bolt.client, bolt.guard) == ("acme", "feature_rows", "bolt", "feature_rows")
    assert "published 400, new 600" in str(acme) and "published 800, new 1,200" in str(bolt)


def test_a_wiped_out_client_fires_every_guard(tmp_path: Path, published: Path) -> None:
    recon = [("acme", "customers", 0, 0), ("acme", "transactions", 1000, 1000), *BASE_RECON[2:]]
    found = _check(tmp_path, published, recon=recon, customers={"acme": 0, "bolt": 200})
    assert [(b.client, b.guard) for b in found] == [
        ("acme", "raw_rows"), ("acme", "quarantine_ratio"), ("acme", "customers_lost"), ("acme", "feature_rows")]


def test_overrides_name_a_client_and_guard(tmp_path: Path, published: Path) -> None:
    recon = [r if r[:2] != ("bolt", "transactions") else ("bolt", "transactions", 900, 90) for r in BASE_RECON]
    (breach,) = _check(tmp_path, published, recon=recon)
    assert guards.is_allowed(breach, guards.parse_allow(["bolt:raw_rows"]))
    assert guards.is_allowed(breach, guards.parse_allow(["acme:customers_lost,bolt:*"]))
    assert not guards.is_allowed(breach, guards.parse_allow(["acme:raw_rows", "bolt:feature_rows"]))
    with pytest.raises(guards.GuardSpecError, match="customers_lots"):
        guards.parse_allow(["acme:customers_lots"])
    with pytest.raises(guards.GuardSpecError):
        guards.parse_allow(["customers_lost"])


def test_a_new_client_is_not_compared(tmp_path: Path, published: Path) -> None:
    recon = [*BASE_RECON, ("cora", "customers", 5, 5), ("cora", "transactions", 5, 0)]
    assert _check(tmp_path, published, recon=recon, customers={**BASE_CUSTOMERS, "cora": 1}) == []


def test_the_shipped_thresholds_load() -> None:
    config = load_build_config()
    assert config.keep_builds >= 2
    assert 0 < config.guards.customers_lost_max < 1


def test_customers_erased_on_request_are_not_lost(tmp_path: Path, published: Path) -> None:
    """`make forget` rebuilds without the erased customers: by design, not a faulty drop."""
    import hashlib

    new = _build(tmp_path / "new", BASE_RECON, {"acme": 0, "bolt": 200})
    gone = [f"acme:{i}" for i in range(10)]  # 10% of acme, and 10% of its feature rows
    with duckdb.connect() as con:
        con.execute(f"""copy (select * from read_parquet('{published / 'marts' / 'features.parquet'}')
                              where customer_id not in (select unnest(?)))
                        to '{new / 'marts' / 'features.parquet'}' (format parquet)""", [gone])
    manifest = _manifest(tmp_path / "m.json")
    assert {b.guard for b in guards.check(published, new, manifest, CONFIG)} == {"customers_lost"}
    erased = [hashlib.sha256(k.encode()).hexdigest() for k in gone]
    assert guards.check(published, new, manifest, CONFIG, erased) == []
    # an erasure does not hide another loss of the same client
    assert [b.guard for b in guards.check(published, new, manifest, CONFIG, erased[:5])] == ["customers_lost"]
