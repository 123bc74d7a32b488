"""The compiled SQL of the models that pushed events run through, kept with each full build.

A full `dbt build` writes `<build>/fresh_plan.json`: for every model upstream of a mart that
declares fresh features (`meta.fresh` on a column), and for the event log's staging model, the
SQL dbt compiled and ran, its relation name and what it depends on. The fresh-event path
(`parity.ingest.events` to judge a pushed event, `parity.features.fresh` to recompute the fresh
features of a few customers) runs exactly that SQL in DuckDB, with some inputs swapped for
small relations (`chain_sql`): the same definitions as the build, never a second implementation.
A partial build (`make score`) copies its base's plan (parity.ingest.pipeline.copy_build).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

PLAN_FILE = "fresh_plan.json"
FORMAT = 1
EVENTS_MODEL = "stg_events__transactions"
# dbt's build time, marked by macros/staging.sql build_time(): a pushed event is judged at its intake
BUILD_TIME = re.compile(r"/\* parity:build_time \*/ cast\('[^']*' as timestamptz\)")


class PlanError(RuntimeError):
    """The published build has no usable plan; the message says what to run."""


@dataclass(frozen=True)
class Node:
    """One compiled model."""

    name: str
    relation: str
    sql: str
    depends_on: tuple[str, ...]
    materialized: str


@dataclass(frozen=True)
class Plan:
    """The compiled models, the event log source's relation and the fresh features per mart."""

    nodes: Mapping[str, Node]
    events_source: str
    fresh: Mapping[str, tuple[str, ...]]  # mart -> its columns marked meta.fresh
    views: Mapping[str, str]  # mart -> the Feast feature view it feeds (meta.feast.feature_view)
    types: Mapping[str, Mapping[str, str]]  # mart -> column -> contract data_type
    path: Path


def _fresh_columns(node: dict[str, Any]) -> tuple[str, ...]:
    return tuple(name for name, column in node.get("columns", {}).items()
                 if (column.get("meta") or {}).get("fresh") or (column.get("config", {}).get("meta") or {}).get("fresh"))


def fresh_marts(manifest: dict[str, Any]) -> list[str]:
    """The models with columns marked `meta.fresh` (the marts pushed events update)."""
    return sorted(n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model" and _fresh_columns(n))


def build_plan(manifest: dict[str, Any]) -> dict[str, Any]:
    """The plan of a run manifest: the fresh marts' upstream models and the event staging model."""
    nodes = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "seed")}
    by_id = {n["unique_id"]: n["name"] for n in nodes.values()}
    fresh = {name: _fresh_columns(n) for name, n in nodes.items() if n["resource_type"] == "model" and _fresh_columns(n)}
    wanted, todo = set(), [*fresh, EVENTS_MODEL]
    while todo:
        name = todo.pop()
        if name in wanted or name not in nodes:
            continue
        wanted.add(name)
        todo.extend(by_id[d] for d in nodes[name]["depends_on"].get("nodes", []) if d in by_id)
    events = next((s for s in manifest["sources"].values()
                   if s["source_name"] == "events" and s["name"] == "transactions"), None)
    return {
        "format": FORMAT,
        "events_source": events["relation_name"] if events else None,
        "fresh": {k: list(v) for k, v in fresh.items()},
        "views": {k: ((nodes[k]["config"].get("meta") or nodes[k].get("meta") or {}).get("feast") or {}).get("feature_view")
                  for k in fresh},
        "types": {k: {c: col.get("data_type") for c, col in nodes[k]["columns"].items()} for k in fresh},
        "nodes": {name: {"relation": nodes[name]["relation_name"], "sql": nodes[name].get("compiled_code"),
                         "materialized": nodes[name]["config"].get("materialized"),
                         "depends_on": sorted(by_id[d] for d in nodes[name]["depends_on"].get("nodes", []) if d in by_id)}
                  for name in sorted(wanted)},
    }


def write_plan(manifest_path: Path, path: Path) -> None:
    """Write the plan of a finished build (temp file + rename)."""
    plan = build_plan(json.loads(manifest_path.read_text()))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(plan, indent=1, sort_keys=True))
    os.replace(tmp, path)


def load_plan(build_dir: Path) -> Plan:
    """The plan of a build folder (the published one: `settings.published_dir`)."""
    path = build_dir / PLAN_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanError(f"{path} does not exist: the published build predates fresh events; run `make build`") from None
    except (OSError, ValueError) as err:
        raise PlanError(f"{path}: unreadable ({err}); run `make build`") from None
    if data.get("format") != FORMAT or not data.get("events_source"):
        raise PlanError(f"{path}: not a plan of this version (or no event log source); run `make build`")
    missing = sorted(name for name, node in data["nodes"].items() if node["sql"] is None and node["materialized"] != "seed")
    if missing:
        raise PlanError(f"{path}: no compiled SQL for {missing}; run a full `make build`")
    nodes = {name: Node(name, n["relation"], n["sql"] or "", tuple(n["depends_on"]), n["materialized"] or "")
             for name, n in data["nodes"].items()}
    return Plan(nodes, data["events_source"], {k: tuple(v) for k, v in data["fresh"].items()},
                data.get("views", {}), data.get("types", {}), path)


def at_build_time(sql: str, instant: str) -> str:
    """`sql` with dbt's build time replaced by `instant` (ISO, UTC)."""
    return BUILD_TIME.sub(f"cast('{instant}' as timestamptz)", sql)


def events_reader(plan: Plan, log_path: Path) -> str:
    """The event log source's reader (as compiled) pointed at `log_path` (this data folder's log,
    wherever the build ran)."""
    path = str(log_path).replace("'", "''")
    reader, found = re.subn(r"^(\s*read_csv\()'(?:[^']|'')*'", lambda m: f"{m.group(1)}'{path}'", plan.events_source)
    if not found:
        raise PlanError(f"{plan.path}: the event log source is not a read_csv('<file>', ...) reader")
    return reader


def substitute(sql: str, relations: Mapping[str, str]) -> str:
    """`sql` with each relation name (as dbt rendered it) replaced, longest first."""
    for old in sorted(relations, key=len, reverse=True):
        sql = sql.replace(old, relations[old])
    return sql


def chain_sql(plan: Plan, target: str, inputs: Mapping[str, str], extra: Mapping[str, str] | None = None,
              instant_sql: str | None = None, prefix: str = "fresh__",
              lead: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The compiled SQL of `target` and every model it needs, stopping at `inputs` (model name ->
    SQL of the relation to use instead, e.g. a filtered table; `extra`: other relation names to
    swap, e.g. a source), as one query: `with <model> as materialized (<its SQL>), ...` in
    dependency order (`lead`: CTEs placed first, e.g. a filter the inputs share), the build time
    replaced by `instant_sql` (a literal, or a parameter such as `cast($1 as timestamptz)` in a
    statement prepared once). Returns the WITH clause and the CTE name of `target`. One statement
    instead of one per model: DuckDB parses and plans the chain once, and a prepared chain is
    only executed again (planning the compiled SQL, not running it, is most of a small run)."""
    ctes: list[str] = [f"{name} as materialized (\n{sql}\n)" for name, sql in (lead or {}).items()]
    done: dict[str, str] = {}
    swaps: dict[str, str] = dict(extra or {})

    def cte(name: str) -> str:
        if name in done:
            return done[name]
        node = plan.nodes[name]
        if name not in inputs and (node.materialized == "seed" or not node.sql):
            done[name] = node.relation  # read from the warehouse as built
            return node.relation
        alias = f"{prefix}{name}"
        if name in inputs:
            sql = inputs[name]
        else:
            for dep in node.depends_on:
                swaps[plan.nodes[dep].relation] = cte(dep)
            sql = substitute(node.sql, swaps)
            sql = BUILD_TIME.sub(instant_sql, sql) if instant_sql else sql
        # materialized: a model read several times by the next (the mart reads its intervals
        # eight times) is computed once; the target, read once by the caller's select, is
        # inlined so that columns it does not select are never computed
        ctes.append(f"{alias} as {'' if name == target else 'materialized '}(\n{sql}\n)")
        done[name] = alias
        swaps[node.relation] = alias
        return alias

    name = cte(target)
    return "with " + ",\n".join(ctes), name


INSTANT_PARAMETER = "cast($1 as timestamptz)"  # the build time in a chain run by `Statements.run`


class Statements:
    """Chain queries prepared once on one connection and executed with the instant as their one
    parameter. The connection must see no DDL between runs (inputs are filled by delete/insert
    into temp tables kept for it): DuckDB binds a prepared statement again after a catalog change."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    def run(self, con: duckdb.DuckDBPyConnection, sql: str, instant: str | None) -> duckdb.DuckDBPyConnection:
        """Execute `sql` (a statement using `INSTANT_PARAMETER`) at `instant` (ISO, UTC);
        `instant` None: a statement without parameters."""
        name = self._names.get(sql)
        if name is None:
            name = f"parity_chain_{len(self._names)}"
            con.execute(f"prepare {name} as {sql}")
            self._names[sql] = name
        if instant is None:
            return con.execute(f"execute {name}")
        literal = instant.replace("'", "''")
        # typed as the parameter was bound: a VARCHAR would make DuckDB bind and plan it again
        return con.execute(f"execute {name}(cast('{literal}' as timestamptz))")


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, instant: str,
            statements: Statements | None = None) -> duckdb.DuckDBPyConnection:
    """A statement using `INSTANT_PARAMETER`: prepared once (`statements`) or run as is."""
    if statements is not None:
        return statements.run(con, sql, instant)
    return con.execute(sql, [instant])


def fill(con: duckdb.DuckDBPyConnection, table: str, column: str, values: list[str]) -> str:
    """A one-column temp table kept on the connection, holding exactly `values` (no DDL after the
    first call: prepared statements reading it stay bound)."""
    con.execute(f"create temp table if not exists {table} ({column} varchar)")
    con.execute(f"delete from {table}")
    if values:
        con.execute(f"insert into {table} select unnest($1::varchar[])", [values])
    return table
