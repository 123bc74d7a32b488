"""The cross-engine check (parity.ingest.cross_engine) and the warehouse interface over both profiles.

The comparison itself is tested here on small hand-made warehouses (no Spark, default suite): a
DuckDB file against a Spark-shaped build folder (Parquet part folders), with a changed value, a
missing row and a changed type planted. The real thing — the corruption corpus built on DuckDB
and on Spark, every table compared — is in the `scale` group (tests/scale/).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from parity.ingest import cross_engine, warehouse


def _duckdb_build(folder: Path) -> Path:
    folder.mkdir()
    with duckdb.connect(str(folder / warehouse.WAREHOUSE_FILE)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.features as select * from (values "
                    "('acme:1', 3::bigint, 1.5::double, timestamptz '2026-10-25 01:30:00+00'), "
                    "('acme:2', 4::bigint, 2.5::double, timestamptz '2026-10-25 02:30:00+00')) "
                    "as t(customer_id, purchases, spend, snapshot_at)")
    return folder


def _spark_build(folder: Path, rows: str, purchases_type: str = "bigint") -> Path:
    """A build folder shaped as a Spark build: a managed table's part files and a mart folder."""
    table = folder / "spark" / "warehouse" / "marts.db" / "features"
    table.mkdir(parents=True)
    (table / "_SUCCESS").write_text("")
    with duckdb.connect() as con:
        con.execute(f"copy (select customer_id, purchases::{purchases_type} as purchases, spend::double as spend, snapshot_at "
                    f"from (values {rows}) as t(customer_id, purchases, spend, snapshot_at)) "
                    f"to '{table / 'part-00000.parquet'}'")
    return folder


SAME = ("('acme:2', 4, 2.5, timestamptz '2026-10-25 02:30:00+00'), "
        "('acme:1', 3, 1.5, timestamptz '2026-10-25 01:30:00+00')")


def test_identical_builds_compare_equal(tmp_path: Path) -> None:
    diffs = cross_engine.compare(_duckdb_build(tmp_path / "d"), _spark_build(tmp_path / "s", SAME))
    assert [(d.table, d.rows, d.differing_rows, d.type_differences) for d in diffs] == [
        ("marts.features", {"duckdb": 2, "spark": 2}, 0, [])]
    assert diffs[0].identical
    assert "differing rows: 0 in 0 of 1 tables" in cross_engine.report(diffs)


def test_a_changed_value_a_missing_row_and_a_type_are_reported(tmp_path: Path) -> None:
    # the repeated DST hour read with the other offset: one row differs, one is missing
    other = "('acme:1', 3, 1.5, timestamptz '2026-10-25 00:30:00+00')"
    diffs = cross_engine.compare(_duckdb_build(tmp_path / "d"), _spark_build(tmp_path / "s", other, "integer"))
    (diff,) = diffs
    assert diff.rows == {"duckdb": 2, "spark": 1}
    assert diff.only_in == {"duckdb": 2, "spark": 1}
    assert diff.type_differences == ["purchases: duckdb BIGINT, spark INTEGER"]
    assert not diff.identical
    assert "differing rows: 3 in 1 of 1 tables (marts.features)" in cross_engine.report(diffs)


def test_a_table_built_on_one_engine_only_is_a_difference(tmp_path: Path) -> None:
    spark = _spark_build(tmp_path / "s", SAME)
    extra = spark / "spark" / "warehouse" / "staging.db" / "stg_x"
    extra.mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute(f"copy (select 1 as a) to '{extra / 'part-0.parquet'}'")
    diffs = {d.table: d for d in cross_engine.compare(_duckdb_build(tmp_path / "d"), spark)}
    assert diffs["staging.stg_x"].rows == {"duckdb": None, "spark": 1}
    assert not diffs["staging.stg_x"].identical and diffs["marts.features"].identical


def test_the_warehouse_interface_reads_both_profiles_alike(tmp_path: Path) -> None:
    duck, spark = _duckdb_build(tmp_path / "d"), _spark_build(tmp_path / "s", SAME)
    assert (warehouse.engine_of(duck), warehouse.engine_of(spark), warehouse.engine_of(tmp_path)) == (
        "duckdb", "spark", None)
    sql = "select customer_id, purchases, snapshot_at from marts.features order by customer_id"
    with warehouse.connect(duck) as a, warehouse.connect(spark) as b:
        assert a.execute(sql).fetchall() == b.execute(sql).fetchall()
    assert warehouse.location(spark) == spark / "spark" / "warehouse"
    with pytest.raises(warehouse.WarehouseMissing, match="no warehouse in"):
        warehouse.connect(tmp_path / "nothing")


def test_dbt_views_are_left_out(tmp_path: Path) -> None:
    duck = _duckdb_build(tmp_path / "d")
    with duckdb.connect(str(duck / warehouse.WAREHOUSE_FILE)) as con:
        con.execute("create view marts.features_view as select * from marts.features")
    (duck / "run").mkdir()
    (duck / "run" / "manifest.json").write_text(
        '{"nodes": {"model.p.features_view": {"resource_type": "model", "schema": "marts", '
        '"name": "features_view", "alias": "features_view", "config": {"materialized": "view"}}}}')
    diffs = cross_engine.compare(duck, _spark_build(tmp_path / "s", SAME))
    assert [d.table for d in diffs] == ["marts.features"] and diffs[0].identical
