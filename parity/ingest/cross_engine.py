"""`python -m parity cross-engine`: the same raw drops built on DuckDB and on Spark, every table compared.

Both builds run the whole project (pre-flight, every model, data test and unit test) into their
own folders under `<data>/cross_engine/`, never published. Every table both warehouses hold
(staging, quarantine, intermediate, marts, the seed) is then compared through the one warehouse
interface: column names and types, row counts, and the rows themselves as multisets (EXCEPT ALL
both ways, exact values: no tolerance). Models dbt materializes as views hold no data and are
left out (their tables are compared).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from parity.config import Settings
from parity.ingest import warehouse
from parity.ingest.pipeline import build_into

ENGINES = ("duckdb", "spark")
# where each build is attached (the DuckDB file under its own name: its views name it)
CATALOG = {"duckdb": "warehouse", "spark": "on_spark"}
# the schemas holding data (build: the pre-flight's counts; scores: batch outputs, none here)
SCHEMAS = ("reference", "build", "staging", "quarantine", "intermediate", "marts")
# Columns whose values are engine-specific by design, left out of the comparison: the feature
# mart's input fingerprints (macros/incremental.sql row_fingerprint: DuckDB's hash, Spark's
# xxhash64), only ever compared with the same engine's previous build.
ENGINE_SPECIFIC_COLUMNS = {"intermediate.int_customer_feature_changes": ("customer_hash", "versions_hash", "visible_versions_hash"),
                           # customer_key: a hash of the id (macros/incremental.sql stable_key)
                           "intermediate.int_customer_snapshot_spans": ("customer_key",),
                           "intermediate.int_transactions_snapshot_intervals": ("customer_key",)}


@dataclass
class TableDiff:
    """How one table differs between the two builds (all zero / empty: identical)."""

    table: str
    rows: dict[str, int | None]
    only_in: dict[str, int] = field(default_factory=dict)
    type_differences: list[str] = field(default_factory=list)

    @property
    def differing_rows(self) -> int:
        return sum(self.only_in.values())

    @property
    def identical(self) -> bool:
        return (not self.type_differences and self.differing_rows == 0
                and None not in self.rows.values())


def build_on(settings: Settings, target: str, folder: Path, capture: bool = True) -> float:
    """A full build (pre-flight, `dbt build`: every model and test) with dbt target `target` into
    `folder`, the build pipeline's own steps, not published; seconds taken. Raises BuildFailed."""
    started = time.monotonic()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    build_into(dataclasses.replace(settings, dbt_target=target), folder, None, None, capture, fresh_plan=False)
    return time.monotonic() - started


def _relations(con: duckdb.DuckDBPyConnection, catalog: str) -> set[tuple[str, str]]:
    rows = con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = ? "
        "union select schema_name, view_name from duckdb_views() where database_name = ? and not internal",
        [catalog, catalog]).fetchall()
    return {(s, t) for s, t in rows if s in SCHEMAS}


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str) -> list[tuple[str, str]]:
    return [tuple(r) for r in con.execute(
        "select column_name, data_type from duckdb_columns() where database_name = ? and schema_name = ? "
        "and table_name = ? order by column_index", [catalog, schema, table]).fetchall()]


def compare_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> TableDiff:
    """Types, row counts and rows (as multisets) of one table in both attached builds."""
    name = f"{schema}.{table}"
    skipped = ENGINE_SPECIFIC_COLUMNS.get(name, ())
    columns = {e: [c for c in _columns(con, CATALOG[e], schema, table) if c[0] not in skipped] for e in ENGINES}
    rows = {e: (con.execute(f'select count(*) from {CATALOG[e]}."{schema}"."{table}"').fetchone()[0]
                if columns[e] else None) for e in ENGINES}
    diff = TableDiff(name, rows)
    if not all(columns.values()):
        return diff
    types = {e: dict(columns[e]) for e in ENGINES}
    for column in dict.fromkeys([c for c, _ in columns["duckdb"]] + [c for c, _ in columns["spark"]]):
        seen = {e: types[e].get(column, "absent") for e in ENGINES}
        if seen["duckdb"] != seen["spark"]:
            diff.type_differences.append(f"{column}: duckdb {seen['duckdb']}, spark {seen['spark']}")
    shared = ", ".join(f'"{c}"' for c, _ in columns["duckdb"] if c in types["spark"])
    for engine, other in (ENGINES, ENGINES[::-1]):
        diff.only_in[engine] = con.execute(
            f'select count(*) from (select {shared} from {CATALOG[engine]}."{schema}"."{table}" '
            f'except all select {shared} from {CATALOG[other]}."{schema}"."{table}")').fetchone()[0]
    return diff


def dbt_views(build: Path) -> set[tuple[str, str]]:
    """(schema, name) of the models dbt materialized as views in a build (its run manifest): no
    data of their own, and a Spark view is not readable without Spark."""
    manifest = build / "run" / "manifest.json"
    if not manifest.exists():
        return set()
    nodes = json.loads(manifest.read_text()).get("nodes", {}).values()
    return {(n["schema"], n.get("alias") or n["name"]) for n in nodes
            if n.get("resource_type") == "model" and n.get("config", {}).get("materialized") == "view"}


def compare(duckdb_build: Path, spark_build: Path) -> list[TableDiff]:
    """Every table of either build compared with its namesake in the other (dbt views, which hold
    no data, left out)."""
    with duckdb.connect() as con:
        warehouse.attach(con, duckdb_build, CATALOG["duckdb"])
        warehouse.attach(con, spark_build, CATALOG["spark"])
        names = sorted((_relations(con, CATALOG["duckdb"]) | _relations(con, CATALOG["spark"]))
                       - dbt_views(duckdb_build) - dbt_views(spark_build))
        return [compare_table(con, schema, table) for schema, table in names]


def report(diffs: list[TableDiff], seconds: dict[str, float] | None = None) -> str:
    """The comparison as text: one line per table, then the verdict."""
    lines = [f"{'table':<48} {'rows duckdb':>12} {'rows spark':>11} {'only duckdb':>12} {'only spark':>11}  types"]
    for d in diffs:
        shown = {e: "-" if d.rows[e] is None else f"{d.rows[e]:,}" for e in ENGINES}
        lines.append(f"{d.table:<48} {shown['duckdb']:>12} {shown['spark']:>11} "
                     f"{d.only_in.get('duckdb', 0):>12,} {d.only_in.get('spark', 0):>11,}  "
                     + ("; ".join(d.type_differences) or "same"))
    differing = sum(d.differing_rows for d in diffs)
    bad = [d.table for d in diffs if not d.identical]
    if seconds:
        lines.append("build time: " + ", ".join(f"{e} {s:.1f} s" for e, s in seconds.items()))
    lines.append(f"differing rows: {differing:,} in {len(bad)} of {len(diffs)} tables"
                 + (f" ({', '.join(bad)})" if bad else ": the engines agree on every row, value and type"))
    return "\n".join(lines)


def run(settings: Settings, capture: bool = True) -> tuple[list[TableDiff], dict[str, float]]:
    """Build the raw drops of `settings` on both engines and compare every table."""
    root = settings.data_dir / "cross_engine"
    seconds = {engine: build_on(settings, engine, root / engine, capture) for engine in ENGINES}
    return compare(root / "duckdb", root / "spark"), seconds
