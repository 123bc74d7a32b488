"""`make materialize` loads what is new whatever its event time, deletes what is gone, and `make
parity` names the clients whose entities are missing online (or online only) and the fix."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import duckdb
import pytest

from parity.config import Settings
from parity.features.feature_store import apply, materialize, open_store
from parity.features.materialization import online_keys
from parity.features.parity_check import run_parity

pytestmark = pytest.mark.data

MART = "customer_features_weekly.parquet"


@pytest.fixture
def own_copy(built_data: Settings, tmp_path: Path) -> Settings:
    """The built marts and dbt manifest in a data folder of the test's own (own Feast stores)."""
    data = tmp_path / "data"
    settings = dataclasses.replace(built_data, data_dir=data)
    shutil.copytree(built_data.marts_dir, settings.marts_dir)
    settings.dbt_target_dir.mkdir(parents=True)
    manifest = built_data.dbt_manifest_path.read_text()
    # the marts' Parquet locations are absolute paths in dbt's manifest: point them at the copy
    settings.dbt_manifest_path.write_text(manifest.replace(str(built_data.data_dir), str(data)))
    shutil.copy(settings.marts_dir / MART, tmp_path / "full.parquet")
    return settings


def _write_mart(settings: Settings, source: Path, where: str) -> None:
    con = duckdb.connect()
    con.execute("set TimeZone='UTC'")
    tmp = settings.marts_dir / "rewrite.tmp.parquet"
    con.execute(f"copy (select * from read_parquet('{source}') where {where}) to '{tmp}' (format parquet)")
    tmp.replace(settings.marts_dir / MART)


def _online_clients(settings: Settings) -> dict[str, int]:
    store = open_store(settings)
    keys = online_keys(store, store.get_feature_view("customer_activity"))
    counts: dict[str, int] = {}
    for (key,) in keys:
        counts[key.split(":")[0]] = counts.get(key.split(":")[0], 0) + 1
    return counts


def test_a_new_clients_older_rows_reach_the_online_store_without_reset(own_copy: Settings, tmp_path: Path):
    settings = own_copy
    full = tmp_path / "full.parquet"
    # the online store first knows acme and bolt only; cora arrives later, with its whole
    # history: event times at or before what was already materialized
    _write_mart(settings, full, "client_id <> 'cora'")
    apply(settings)
    materialize(settings)
    assert set(_online_clients(settings)) == set(settings.clients) - {"cora"}
    _write_mart(settings, full, "true")

    report = run_parity(settings, sample_times=0)
    assert not report.ok
    problem = " ".join(report.coverage_problems)
    assert "missing online" in problem and "cora: " in problem and "make materialize" in problem, report.summary()
    assert not [c for c in settings.clients if c != "cora" and f"{c}: " in problem]

    result = materialize(settings)
    assert "cora:" in result["views"]["customer_activity"]
    assert set(result["details"]["customer_activity"]["loaded"]) == {"cora"}  # only what changed
    customers = duckdb.connect().execute(
        f"select client_id, count(distinct customer_id) from read_parquet('{full}') group by 1").fetchall()
    assert _online_clients(settings) == dict(customers)
    report = run_parity(settings, sample_times=0)
    assert report.ok, report.summary()

    # nothing new: up to date, nothing written
    again = materialize(settings)
    assert set(again["views"].values()) == {"up to date"}


def test_a_removed_client_is_deleted_online_and_parity_names_it(own_copy: Settings, tmp_path: Path):
    settings = own_copy
    apply(settings)
    materialize(settings)
    _write_mart(settings, tmp_path / "full.parquet", "client_id <> 'bolt'")

    report = run_parity(settings, sample_times=0)
    assert not report.ok
    problem = " ".join(report.coverage_problems)
    assert "online are in no current mart row" in problem and "bolt: " in problem, report.summary()
    assert "make materialize" in problem

    result = materialize(settings)
    assert "removed from the source: bolt" in result["views"]["customer_activity"]
    assert set(_online_clients(settings)) == set(settings.clients) - {"bolt"}
    assert run_parity(settings, sample_times=0).ok


def test_a_corrected_row_with_an_old_event_time_is_loaded(own_copy: Settings, tmp_path: Path):
    settings = own_copy
    apply(settings)
    materialize(settings)
    # a correction of acme's newest snapshots (same event times): Feast's incremental run skips it
    _write_mart(settings, tmp_path / "full.parquet", "true")
    src = settings.marts_dir / MART
    fixed = tmp_path / "fixed.parquet"
    duckdb.connect().execute(
        f"copy (select * replace (case when client_id = 'acme' then spend_90d + 1 else spend_90d end as spend_90d) "
        f"from read_parquet('{src}')) to '{fixed}' (format parquet)")
    _write_mart(settings, fixed, "true")
    assert not run_parity(settings, sample_times=0).ok
    result = materialize(settings)
    assert set(result["details"]["customer_activity"]["loaded"]) == {"acme"}
    assert run_parity(settings, sample_times=0).ok


def test_a_lost_online_store_is_reloaded_although_the_marker_says_up_to_date(own_copy: Settings):
    settings = own_copy
    apply(settings)
    materialize(settings)
    before = _online_clients(settings)
    (settings.feast_dir / "online_store.db").unlink()  # e.g. restored from an older backup, or removed
    result = materialize(settings)
    assert set(result["details"]["customer_activity"]["loaded"]) == set(before)
    assert _online_clients(settings) == before
    assert set(materialize(settings)["views"].values()) == {"up to date"}


def test_a_client_whose_data_ends_weeks_earlier_is_served_over_its_own_window(own_copy: Settings, tmp_path: Path):
    settings = own_copy
    # cora's whole history ends 10 weeks before the others' (a client that delivers late)
    shifted = tmp_path / "shifted.parquet"
    duckdb.connect().execute(
        f"copy (select * replace (case when client_id = 'cora' then snapshot_at - interval 70 day else snapshot_at end "
        f"as snapshot_at, case when client_id = 'cora' then last_purchase_at - interval 70 day else last_purchase_at end "
        f"as last_purchase_at) from read_parquet('{tmp_path / 'full.parquet'}')) to '{shifted}' (format parquet)")
    _write_mart(settings, shifted, "true")
    apply(settings)
    result = materialize(settings)
    loaded = result["details"]["customer_activity"]["loaded"]
    assert loaded["cora"]["end"] < loaded["acme"]["end"]  # its own window, not the union's
    customers = dict(duckdb.connect().execute(
        f"select client_id, count(distinct customer_id) from read_parquet('{shifted}') group by 1").fetchall())
    assert _online_clients(settings) == customers  # every cora customer is online, with its newest row
    report = run_parity(settings, sample_times=2)
    assert report.ok, report.summary()
    assert report.client_as_of["cora"] < report.client_as_of["acme"]
    assert "compared as of" in report.summary()
