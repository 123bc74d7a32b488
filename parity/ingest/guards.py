"""Guards: a new build is compared, per client, with the published build before it may replace it.

A green build can still wipe a client out (a header-only customers file turns every transaction
into an orphan: quarantined, accounted for, tests pass). So before publishing, per client:

- ``raw_rows``: physical records per raw table, |new - published| / published;
- ``quarantine_ratio``: quarantined / raw records, increase in absolute terms;
- ``customers_lost``: share of the published feature mart's customers with no feature row now;
- ``feature_rows``: rows per feature mart, |new - published| / published.

Thresholds live in build.yaml (parity.ingest.build_config). A breach fails the build naming the
client, the metric and both values; `--allow-guard client:metric` lets a deliberate change through.
The client of a feature row is the prefix of its entity key ('<client>:<id>', the customer entity's
documented format).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from parity.ingest import warehouse
from parity.ingest.build_config import GuardConfig
from parity.ingest.events import EVENTS_TABLE

GUARDS = ("raw_rows", "quarantine_ratio", "customers_lost", "feature_rows")


class GuardSpecError(ValueError):
    """An --allow-guard value that names no guard."""


@dataclass(frozen=True)
class Breach:
    """One guard a client breached: the metric, both values and the limit."""

    client: str
    guard: str
    what: str
    published: str
    new: str
    limit: str

    def __str__(self) -> str:
        return (f"client '{self.client}': {self.guard} ({self.what}): published {self.published}, "
                f"new {self.new} (limit {self.limit})")

    @property
    def key(self) -> str:
        return f"{self.client}:{self.guard}"


def parse_allow(values: list[str] | None) -> frozenset[str]:
    """`client:guard` overrides ('*' for any client or guard); refuse a guard that does not exist."""
    allowed = set()
    for value in values or []:
        for item in filter(None, (v.strip() for v in value.split(","))):
            client, sep, guard = item.partition(":")
            if not sep or not client or guard not in (*GUARDS, "*"):
                raise GuardSpecError(f"--allow-guard {item!r}: expected <client>:<guard> with guard one of "
                                     f"{', '.join(GUARDS)} (or '*')")
            allowed.add(f"{client}:{guard}")
    return frozenset(allowed)


def is_allowed(breach: Breach, allowed: frozenset[str]) -> bool:
    """Whether an override names this breach (exactly, or with '*' for the client or the guard)."""
    return bool({breach.key, f"*:{breach.guard}", f"{breach.client}:*", "*:*"} & allowed)


def feature_marts(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(Parquet file name, join key) of every feature mart (a model with `meta.feast`)."""
    marts = []
    for node in manifest.get("nodes", {}).values():
        meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
        location = (node.get("config") or {}).get("location")
        if node.get("resource_type") == "model" and meta.get("feast") and location:
            marts.append((Path(location).name, meta["feast"]["join_key"]))
    return sorted(marts)


def _reconciliation(con: duckdb.DuckDBPyConnection, alias: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(client, table) -> (records, quarantined) of one build; {} when it has no reconciliation."""
    try:
        cols = {r[0] for r in con.execute(
            "select column_name from duckdb_columns() where database_name = ? and table_name = 'reconciliation'",
            [alias]).fetchall()}
        records = "coalesce(physical_rows, raw_rows)" if "physical_rows" in cols else "raw_rows"
        rows = con.execute(f"select client_id, source_table, {records}, quarantined_rows "
                           f"from {alias}.marts.reconciliation").fetchall()
    except duckdb.CatalogException:
        return {}
    return {(c, t): (int(n or 0), int(q or 0)) for c, t, n, q in rows}


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _change(old: int, new: int) -> float:
    return abs(new - old) / old


def raw_and_quarantine(old: dict, new: dict, config: GuardConfig) -> list[Breach]:
    """Breaches of raw_rows (per raw table) and quarantine_ratio (per client)."""
    found = []
    for (client, table), (before, _) in sorted(old.items()):
        if table == EVENTS_TABLE:
            continue  # the event log only grows, by design: pushed events are not a drop
        after = new.get((client, table), (0, 0))[0]
        if before > 0 and _change(before, after) > config.raw_rows_max_change:
            found.append(Breach(client, "raw_rows", f"{table} records", f"{before:,}", f"{after:,}",
                                f"change of {_pct(config.raw_rows_max_change)}"))
    for client in sorted({c for c, _ in old}):
        totals = [[sum(v[i] for (c, _), v in side.items() if c == client) for i in (0, 1)] for side in (old, new)]
        (before_n, before_q), (after_n, after_q) = totals
        if before_n == 0 or after_n == 0:
            continue  # no records: raw_rows already says so
        ratio_before, ratio_after = before_q / before_n, after_q / after_n
        if ratio_after - ratio_before > config.quarantine_ratio_max_increase:
            found.append(Breach(client, "quarantine_ratio", "quarantined / raw records",
                                f"{_pct(ratio_before)} ({before_q:,} of {before_n:,})",
                                f"{_pct(ratio_after)} ({after_q:,} of {after_n:,})",
                                f"+{config.quarantine_ratio_max_increase * 100:g} points"))
    return found


def mart_guards(con: duckdb.DuckDBPyConnection, old_file: Path, new_file: Path, key: str,
                config: GuardConfig, erased: Sequence[str] = ()) -> list[Breach]:
    """Breaches of customers_lost and feature_rows for one feature mart. Customers erased on
    request (`erased`: sha256 hex of their keys, parity.suppression) are left out of both sides:
    their rows vanish by design, not by a faulty drop (a small client would trip the guard)."""
    client = "split_part(k, ':', 1)"
    kept = "coalesce(sha256(k) not in (select unnest(?::varchar[])), true)"
    # per distinct key first: the erasure test hashes each customer once, not each of its rows
    rows = con.execute(f"""
        with old as (select k, {client} as client_id, n from (
                         select {key} as k, count(*) as n from read_parquet(?) group by all) where {kept}),
             new as (select k, {client} as client_id, n from (
                         select {key} as k, count(*) as n from read_parquet(?) group by all) where {kept}),
             old_rows as (select client_id, sum(n) as n from old group by client_id),
             new_rows as (select client_id, sum(n) as n from new group by client_id),
             old_keys as (select client_id, k from old where k is not null),
             new_keys as (select k from new where k is not null),
             lost as (
                 select old_keys.client_id, count(*) as keys_old,
                        count(*) filter (where new_keys.k is null) as keys_lost
                 from old_keys left join new_keys on new_keys.k = old_keys.k
                 group by old_keys.client_id
             )
        select client_id, old_rows.n, new_rows.n, lost.keys_old, lost.keys_lost
        from old_rows full join new_rows using (client_id) left join lost using (client_id)
        order by client_id
    """, [str(old_file), list(erased), str(new_file), list(erased)]).fetchall()
    found = []
    mart = new_file.stem
    for client_id, rows_old, rows_new, keys_old, keys_lost in rows:
        if not rows_old:
            continue  # a client new in this build has nothing to be compared with
        rows_new = rows_new or 0
        if keys_old and keys_lost / keys_old > config.customers_lost_max:
            found.append(Breach(client_id, "customers_lost", f"customers of {mart} with no row any more",
                                f"{keys_old:,} customers", f"{keys_old - keys_lost:,} of them left "
                                f"({keys_lost:,} = {_pct(keys_lost / keys_old)} lost)",
                                _pct(config.customers_lost_max)))
        if _change(rows_old, rows_new) > config.feature_rows_max_change:
            found.append(Breach(client_id, "feature_rows", f"rows of {mart}", f"{rows_old:,}", f"{rows_new:,}",
                                f"change of {_pct(config.feature_rows_max_change)}"))
    return found


def check(published_dir: Path, new_dir: Path, manifest_path: Path, config: GuardConfig,
          erased: Sequence[str] = ()) -> list[Breach]:
    """Every guard breach of the build in `new_dir` against the published build, per client
    (`erased`: the suppression list's hashed keys, see mart_guards)."""
    manifest = json.loads(manifest_path.read_text())
    with duckdb.connect() as con:
        warehouse.attach(con, published_dir, "old_build")
        warehouse.attach(con, new_dir, "new_build")
        found = raw_and_quarantine(_reconciliation(con, "old_build"), _reconciliation(con, "new_build"), config)
        for name, key in feature_marts(manifest):
            old_file, new_file = published_dir / "marts" / name, new_dir / "marts" / name
            if old_file.exists() and new_file.exists():
                found += mart_guards(con, old_file, new_file, key, config, erased)
    return sorted(found, key=lambda b: (b.client, GUARDS.index(b.guard)))
