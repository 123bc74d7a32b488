"""Train/serve parity: the online store returns exactly what the offline store returns.

For EVERY entity of every feature view, the online features (at the materialization time T)
are compared with Feast's offline point-in-time features at T, for every feature service:
same value (floats to 1e-9 relative), same Arrow type, same Python type, same missing-ness.
A customer with pushed fresh features is compared as of its newest push (the online store holds
the pushed values); one pushed onto a snapshot already older than the view's TTL (data that ends
months before the push) is served `stale_features` there and has no features offline, so it is
checked as such (`check_expired_pushes`). In addition, for a sample of historical timestamps, Feast's offline point-in-time join is
compared with an independent lookup on the dbt Parquet marts (newest snapshot <= t by group-by, not ASOF,
within the TTL), so the offline path itself is checked against its source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from parity.config import Settings
from parity.features.coverage import check_coverage, entity_clients
from parity.features.feast_definitions import check_parquet_schema, load_manifest, mart_specs
from parity.features.feature_store import materialized_until, open_store, require_applied
from parity.features.materialization import part_ends, source_sql
from parity.features.retrieval import (
    ENTITY_KEY,
    TIME_COLUMN,
    offline_arrow,
    online_arrow,
    service_schema,
)

FLOAT_TOLERANCE = 1e-9
READABLE_AT = "pushes_readable_at"  # entity-frame column: pushed values readable by this time


@dataclass
class Mismatch:
    """One value that differs between two paths."""

    check: str
    entity: str
    feature: str
    left: Any
    right: Any
    why: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.entity} {self.feature}: {self.why} ({self.left!r} vs {self.right!r})"


@dataclass
class ParityReport:
    """Counts and mismatches of a parity run."""

    as_of: datetime | None = None
    entities_checked: int = 0
    features_checked: int = 0
    values_compared: int = 0
    historical_values_compared: int = 0
    schema_problems: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    # entities missing online / online only, by client, with the command that fixes them
    coverage_problems: list[str] = field(default_factory=list)
    # per client, the time its entities were compared at (its own materialized end)
    client_as_of: dict[str, datetime] = field(default_factory=dict)
    # entities pushed onto a snapshot older than the TTL (checked by check_expired_pushes)
    expired_pushes: int = 0

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.schema_problems and not self.coverage_problems

    def summary(self, show: int = 10) -> str:
        lines = [
            f"parity as of {self.as_of.isoformat() if self.as_of else '?'}",
            f"  entities checked:    {self.entities_checked}",
            f"  features checked:    {self.features_checked}",
            f"  values compared:     {self.values_compared} online vs offline, "
            f"{self.historical_values_compared} offline vs marts (historical)",
            f"  schema problems:     {len(self.schema_problems)}",
            f"  online coverage:     {len(self.coverage_problems)} problem(s)",
            f"  mismatches:          {len(self.mismatches)}",
        ]
        if self.expired_pushes:
            lines.append(f"  pushed onto an expired snapshot: {self.expired_pushes} entities (served stale_features "
                         "at the push, no features offline there; stored values compared at the client's end)")
        if len(set(self.client_as_of.values())) > 1:  # clients on their own timelines
            lines.append("  compared as of:      " + ", ".join(
                f"{c} {t.isoformat()}" for c, t in sorted(self.client_as_of.items())))
        lines += [f"  ! {p}" for p in self.schema_problems[:show]]
        lines += [f"  ! {p}" for p in self.coverage_problems]
        lines += [f"  ! {m}" for m in self.mismatches[:show]]
        if len(self.mismatches) > show:
            lines.append(f"  ... and {len(self.mismatches) - show} more")
        lines.append("PARITY OK" if self.ok else "PARITY FAILED")
        return "\n".join(lines)


def compare_values(left: Any, right: Any) -> str | None:
    """Why two values differ (None if they are the same value, type and missing-ness)."""
    if left is None or right is None:
        return None if left is None and right is None else "missing on one side only"
    if type(left) is not type(right):
        return f"python type {type(left).__name__} vs {type(right).__name__}"
    if isinstance(left, float):
        if math.isnan(left) and math.isnan(right):
            return None
        if not math.isclose(left, right, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE):
            return f"differs by {abs(left - right):.3g}"
        return None
    return None if left == right else "different value"


def compare_tables(check: str, left: pa.Table, right: pa.Table, features: list[str]) -> tuple[int, list[Mismatch]]:
    """Compare two tables row by row (same key order) on `features`: types, then values."""
    mismatches: list[Mismatch] = []
    keys = left.column(ENTITY_KEY).to_pylist()
    if keys != right.column(ENTITY_KEY).to_pylist():
        raise AssertionError(f"{check}: the two sides are not aligned on {ENTITY_KEY}")
    compared = 0
    for name in features:
        lcol, rcol = left.column(name), right.column(name)
        # an all-null column inferred as Arrow `null` carries no type to compare (its values are)
        if lcol.type != rcol.type and not pa.types.is_null(lcol.type) and not pa.types.is_null(rcol.type):
            mismatches.append(Mismatch(check, "*", name, str(lcol.type), str(rcol.type), "Arrow type differs"))
        for key, a, b in zip(keys, lcol.to_pylist(), rcol.to_pylist()):
            compared += 1
            why = compare_values(a, b)
            if why:
                mismatches.append(Mismatch(check, key, name, a, b, why))
    return compared, mismatches


def all_entities(store: Any) -> list[str]:
    """Every entity key present in any feature view's batch source."""
    return sorted(entity_clients_all(store))


def entity_clients_all(store: Any) -> dict[str, str]:
    """Every entity key of any feature view's batch source, with its client."""
    owners: dict[str, str] = {}
    for view in store.list_feature_views():
        owners.update({key[0]: client for key, client in entity_clients(view).items()})
    return owners


def entity_times(settings: Settings, owners: dict[str, str], entities: list[str], default: datetime) -> tuple[list[datetime], dict[str, datetime]]:
    """Per entity, the time to compare it at: its client's materialized end (a client whose data
    ends earlier is loaded over its own window), else `default`; and the time per client."""
    ends: dict[str, datetime] = {}
    for parts in part_ends(settings.feast_dir).values():
        for client, end in parts.items():
            ends[client] = max(end, ends.get(client, end))
    return [ends.get(owners.get(e, ""), default) for e in entities], ends


def check_online_offline(store: Any, service: str, entities: list[str], as_of: datetime | list[datetime]) -> tuple[int, list[Mismatch], int]:
    """Online features vs offline point-in-time features at `as_of` (one time, or one per entity)."""
    schema = service_schema(store, service)
    entity_df = pd.DataFrame({ENTITY_KEY: entities, TIME_COLUMN: as_of})
    offline = offline_arrow(store, entity_df, service)
    offline = offline.take(pa.compute.sort_indices(offline, [(ENTITY_KEY, "ascending")]))
    online = online_arrow(store, entities, service, as_of)
    online = online.take(pa.compute.sort_indices(online, [(ENTITY_KEY, "ascending")]))
    compared, mismatches = compare_tables(f"{service} online-vs-offline", offline, online, schema.names)
    return compared, mismatches, len(schema.names)


def expired_pushes(store: Any, settings: Settings, times: dict[str, datetime]) -> set[str]:
    """The pushed entities (entity -> the time compared at, after its newest push) whose newest
    snapshot at that time is older than the view's TTL: Feast's offline join has no row for them
    there, and serving (max_feature_age_days <= the TTL) answers stale_features."""
    from parity.features.fresh import KEY, history_glob

    if not times:
        return set()
    expired: set[str] = set()
    con = duckdb.connect()
    try:
        con.execute("set TimeZone='UTC'")
        con.register("pushed", pd.DataFrame({"k": list(times), "t": pd.to_datetime(list(times.values()), utc=True)}))
        for view in store.list_feature_views():
            glob = history_glob(settings.data_dir, view.name)
            if glob is None:
                continue
            ts = view.batch_source.timestamp_field
            ttl = int(view.ttl.total_seconds()) if view.ttl else 0
            within = f"and m.{ts} >= p.t - interval '{ttl} seconds'" if ttl else ""
            expired |= {k for (k,) in con.execute(
                f"""select p.k from pushed p
                    left join {source_sql(view)} m on m.{ENTITY_KEY} = p.k and m.{ts} <= p.t {within}
                    where p.k in (select {KEY} from read_parquet('{glob}'))
                    group by p.k having count(m.{ts}) = 0""").fetchall()}
    finally:
        con.close()
    return expired


def check_expired_pushes(store: Any, service: str, entities: list[str], ends: list[datetime],
                         pushes: list[datetime]) -> tuple[int, list[Mismatch]]:
    """Entities pushed onto an expired snapshot: at the push serving answers stale_features, so
    offline must have no feature there; what the online store holds (the snapshot's values with
    the pushed fresh ones) must equal the offline join at the client's end with the pushed rows
    readable by the push (parity.features.fresh.apply_pushed), request time the client's end."""
    schema = service_schema(store, service)
    at_push = offline_arrow(store, pd.DataFrame({ENTITY_KEY: entities, TIME_COLUMN: pushes}), service)
    mismatches = [Mismatch(f"{service} expired-at-push", key, name, value, None,
                           "offline has a value where the snapshot had expired (serving answers stale_features)")
                  for name in schema.names
                  for key, value in zip(at_push.column(ENTITY_KEY).to_pylist(), at_push.column(name).to_pylist())
                  if value is not None and value == value]  # NaN: missing
    frame = pd.DataFrame({ENTITY_KEY: entities, TIME_COLUMN: ends, READABLE_AT: pd.to_datetime(pushes, utc=True)})
    offline = offline_arrow(store, frame, service, READABLE_AT)
    offline = offline.take(pa.compute.sort_indices(offline, [(ENTITY_KEY, "ascending")]))
    online = online_arrow(store, entities, service, ends)
    online = online.take(pa.compute.sort_indices(online, [(ENTITY_KEY, "ascending")]))
    compared, found = compare_tables(f"{service} online-vs-offline (pushed onto an expired snapshot)", offline, online,
                                     schema.names)
    return compared + len(entities) * len(schema.names), mismatches + found


def check_offline_against_marts(store: Any, settings: Settings, times: list[datetime], per_time: int = 200) -> tuple[int, list[Mismatch]]:
    """Feast's offline point-in-time join vs the mart itself at historical times.

    The reference is a plain group-by (newest snapshot <= t) and join back, deliberately not an
    ASOF join: the project's offline store (`parity.features.stores`) is built on DuckDB's ASOF join, so
    the check must not share its algorithm.
    """
    compared, mismatches = 0, []
    for view in store.list_feature_views():
        source, ts = source_sql(view), view.batch_source.timestamp_field
        names = [f.name for f in view.features]
        con = duckdb.connect()
        con.execute("set TimeZone='UTC'")
        for when in times:
            sample = con.execute(
                f"select distinct {ENTITY_KEY} from {source} where {ts} <= ? order by hash({ENTITY_KEY}) limit {per_time}",
                [when],
            ).df()
            if sample.empty:
                continue
            sample[TIME_COLUMN] = pd.Timestamp(when)
            con.register("entities", sample)
            ttl = f"interval '{int(view.ttl.total_seconds())} seconds'"
            cols = ", ".join(f"case when m.{ts} >= e.{TIME_COLUMN} - {ttl} then m.{n} end as {n}" for n in names)
            result = con.execute(
                f"""
                with latest as (  -- newest snapshot at or before the time, per entity
                    select e.{ENTITY_KEY}, max(m.{ts}) as {ts}
                    from entities e
                    left join {source} m
                      on m.{ENTITY_KEY} = e.{ENTITY_KEY} and m.{ts} <= e.{TIME_COLUMN}
                    group by e.{ENTITY_KEY}
                )
                select e.{ENTITY_KEY}, {cols}
                from entities e
                join latest l on l.{ENTITY_KEY} = e.{ENTITY_KEY}
                left join {source} m
                  on m.{ENTITY_KEY} = l.{ENTITY_KEY} and m.{ts} = l.{ts}
                order by e.{ENTITY_KEY}
                """
            )
            # to_arrow_table from duckdb 1.4 (fetch_arrow_table is deprecated there)
            expected = result.to_arrow_table() if hasattr(result, "to_arrow_table") else result.fetch_arrow_table()
            features = [f"{view.name}:{n}" for n in names]
            actual = store.get_historical_features(entity_df=sample, features=features).to_arrow()
            actual = actual.take(pa.compute.sort_indices(actual, [(ENTITY_KEY, "ascending")]))
            # Feast infers an all-null result column as Arrow `null`: keep the mart's type there
            expected = expected.cast(pa.schema([actual.schema.field(ENTITY_KEY)] + [
                expected.schema.field(n) if pa.types.is_null(actual.schema.field(n).type) else actual.schema.field(n)
                for n in names]))
            n, found = compare_tables(f"{view.name} offline-vs-mart@{when:%Y-%m-%d}", expected, actual, names)
            compared += n
            mismatches += found
    return compared, mismatches


def historical_times(as_of: datetime, count: int) -> list[datetime]:
    """Sample times before `as_of`: on snapshot instants and mid-week, going back in time."""
    times = []
    for i in range(count):
        weeks_back = 4 * (i + 1)
        offset = timedelta(days=3, hours=5) if i % 2 else timedelta(0)
        times.append(as_of - timedelta(weeks=weeks_back) + offset)
    return times


def run_parity(settings: Settings, services: list[str] | None = None, sample_times: int = 8) -> ParityReport:
    """The full parity check; see the module docstring."""
    require_applied(settings)
    report = ParityReport()
    for spec in mart_specs(load_manifest(settings.dbt_manifest_path)):
        report.schema_problems += check_parquet_schema(spec)
    store = open_store(settings)
    report.as_of = materialized_until(settings)
    for coverage in check_coverage(store, settings.feast_dir):
        report.coverage_problems += coverage.problems()
    owners = entity_clients_all(store)
    entities = sorted(owners)
    times, report.client_as_of = entity_times(settings, owners, entities, report.as_of)
    # a customer with pushed fresh features (README "Fresh events") is online as of its newest push
    from parity.features.fresh import newest_online_at

    pushed = newest_online_at(settings.data_dir)
    # on a whole second: Feast's online path reads the request time in whole seconds
    pushed = {e: (t + timedelta(seconds=1)).replace(microsecond=0) if t.microsecond else t for e, t in pushed.items()}
    ends = times
    times = [max(t, pushed[e]) if e in pushed else t for e, t in zip(entities, times)]
    expired = expired_pushes(store, settings, {e: t for e, t in zip(entities, times) if e in pushed})
    report.entities_checked, report.expired_pushes = len(entities), len(expired)
    live = [i for i, e in enumerate(entities) if e not in expired]
    gone = [i for i, e in enumerate(entities) if e in expired]
    for service in services or sorted(s.name for s in store.list_feature_services()):
        compared, found, n_features = check_online_offline(
            store, service, [entities[i] for i in live], [times[i] for i in live])
        report.values_compared += compared
        report.features_checked += n_features
        report.mismatches += found
        if gone:
            compared, found = check_expired_pushes(store, service, [entities[i] for i in gone],
                                                   [ends[i] for i in gone], [times[i] for i in gone])
            report.values_compared += compared
            report.mismatches += found
    if sample_times:
        compared, found = check_offline_against_marts(store, settings, historical_times(report.as_of, sample_times))
        report.historical_values_compared = compared
        report.mismatches += found
    return report
