"""Fresh features: the marts' own compiled SQL, run for a few customers at one instant.

Which features are fresh is declared in dbt (`meta: {fresh: true}` beside `meta.feature` on a
mart column). `recompute` runs the build's compiled SQL of that mart and everything it needs
(parity.ingest.fresh_plan) in DuckDB over the published warehouse, with three inputs swapped:
the customers and the staged transactions filtered to the given customers, the event log staged
afresh (events accepted since the build included), and each client's timeline cut to a single
snapshot at `as_of`. What comes out is the mart's row "as if a snapshot were taken at as_of" —
the same definition, computed for a few customers instead of every customer every week.

`OnlineWriter` writes the fresh columns into the SQLite online store (Feast's per-feature rows or
the wide store's row per entity, as the store keeps them; tested equal to what materialization
stored), `parity.features.fresh_redis.RedisWriter` into Redis (the scale profile; `open_writer`
picks by the serving manifest): the other features keep their snapshot's value and event time, so serving's staleness
rule still judges the snapshot.
`append_history` keeps every pushed row (Parquet, `<data>/events/pushed/<view>/`), which
`parity.features.retrieval` joins in so that offline retrieval at t returns what serving did.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from parity.features.fresh_cut import StagedPairs, previous_owners
from parity.ingest import warehouse
from parity.ingest.events import events_dir
from parity.ingest.fresh_plan import (
    EVENTS_MODEL,
    INSTANT_PARAMETER,
    Plan,
    Statements,
    chain_sql,
    events_reader,
    fill,
    load_plan,
    run_sql,
)

KEY = "customer_id"
PUSHED_AT = "pushed_at"  # the instant the pushed row's features were computed for (its event time)
ONLINE_AT = "online_at"  # when it became readable online
ACCEPTED_AT = "accepted_at"  # the oldest acceptance among the events it includes


def history_dir(data_dir: Path, view: str) -> Path:
    return events_dir(data_dir) / "pushed" / view


class StagedLog:
    """The event log staged on one connection, incrementally: each round stages only the lines
    appended since the last (an accepted event's staging does not depend on when it is staged,
    as long as that is after its acceptance), so a round costs its new events, not the whole log.
    `statements`: the connection's prepared chains (the staging SQL planned once, not per round)."""

    TABLE = "log__staged"

    def __init__(self, statements: Statements | None = None) -> None:
        self.offset, self.inode, self.ready = 0, None, False
        self.statements = statements

    def refresh(self, con: duckdb.DuckDBPyConnection, plan: Plan, log_path: Path, instant: str) -> str:
        """The staged table, with every complete line of the log up to now."""
        try:
            stat = os.stat(log_path)
        except FileNotFoundError:
            stat = None
        if stat is None or stat.st_ino != self.inode or stat.st_size < self.offset:  # new or rewritten log
            self.offset, self.inode, self.ready = 0, stat.st_ino if stat else None, False
        data = b""
        if stat is not None and stat.st_size > self.offset:
            with open(log_path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(stat.st_size - self.offset)
            data = data[: data.rfind(b"\n") + 1]  # complete lines only (an append may be under way)
        if data or not self.ready:
            lines = data.decode("utf-8", errors="replace").split("\n")[:-1] if data else []
            batch = fill(con, "lognew__batch", "raw_line", lines)
            with_sql, new = chain_sql(plan, EVENTS_MODEL, {}, {plan.events_source: batch}, INSTANT_PARAMETER, "lognew__")
            if self.ready:  # rows only: no DDL, the prepared chains stay bound
                run_sql(con, f"insert into {self.TABLE} {with_sql} select * from {new}", instant, self.statements)
            else:
                con.execute(f"create or replace temp table {self.TABLE} as {with_sql} select * from {new}", [instant])
            self.offset += len(data)
            self.ready = True
        return self.TABLE


class FreshContext:
    """A DuckDB connection with the published warehouse attached and its build's plan; reopened
    when another build is published. One user at a time (`lock`)."""

    def __init__(self, published_dir: Path, index_pairs: bool = False):
        self.published_dir = published_dir
        self.lock = threading.RLock()
        self.build: Path | None = None
        self.con: duckdb.DuckDBPyConnection | None = None
        self.plan: Plan | None = None
        self.statements = Statements()
        self.staged_log = StagedLog(self.statements)
        # rounds find their customers' transaction ids by customer number once the pairs are
        # built (parity.features.fresh_cut); until then, in the warehouse's tables
        self.index_pairs = index_pairs
        self.pairs: StagedPairs | None = None

    def ensure(self) -> tuple[duckdb.DuckDBPyConnection, Plan]:
        """The connection and plan of the build published now."""
        build = self.published_dir.resolve()
        if build != self.build or self.con is None:
            plan = load_plan(build)
            con = duckdb.connect()
            con.execute("set TimeZone = 'UTC'")
            # one thread: the inputs are a few customers, and a regex's per-thread state is
            # compiled again at each run (the staging rules' PII patterns: ~8 ms each)
            con.execute("set threads = 1")
            # statements are prepared once and run on temp tables whose rows change every round:
            # DuckDB 1.5 bakes the tables' statistics at preparation into the plan (a filter
            # dropped, a join cut to a stale range: wrong rows, duckdb#23704/#24182; fixed
            # upstream by not propagating statistics for prepared plans, duckdb#24696), so not here
            con.execute("set disabled_optimizers = 'statistics_propagation'")
            # the build's warehouse, either profile's (parity.ingest.warehouse), as `warehouse`
            warehouse.attach(con, build, "warehouse")
            self.close()
            self.con, self.plan, self.build = con, plan, build
            # prepared statements and the staged table lived on the old connection
            self.statements = Statements()
            self.staged_log = StagedLog(self.statements)
            self.pairs = StagedPairs(con, staged_models(plan)) if self.index_pairs else None
        return self.con, self.plan

    def close(self) -> None:
        if self.pairs is not None:
            self.pairs.cancelled = True
        if self.con is not None:
            self.con.close()
            self.con = None


def fresh_mart(plan: Plan) -> str:
    """The one mart with fresh features (several would each need their own online write)."""
    if len(plan.fresh) != 1:
        raise ValueError(f"{plan.path}: expected one mart with `meta.fresh` columns, found {sorted(plan.fresh)}")
    return next(iter(plan.fresh))


def _instant(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat()


def _whole_log(con: duckdb.DuckDBPyConnection, plan: Plan, log_path: Path, instant: str) -> str:
    """The whole event log staged now, in a temp table."""
    with_sql, staged = chain_sql(plan, EVENTS_MODEL, {}, {plan.events_source: events_reader(plan, log_path)},
                                 INSTANT_PARAMETER, "log__")
    con.execute(f"create or replace temp table log__whole as {with_sql} select * from {staged}", [instant])
    return "log__whole"


def staged_models(plan: Plan) -> dict[str, str]:
    """The staged transaction models of the warehouse (the event log's aside): name -> relation."""
    return {name: node.relation for name, node in plan.nodes.items()
            if name.startswith("stg_") and name.endswith("__transactions") and name != EVENTS_MODEL}


def mart_sql(plan: Plan, mart: str, events: str, keys: str, pairs: str | None = None) -> str:
    """The query of the mart's rows at the instant (`INSTANT_PARAMETER`) for the customers in
    the table `keys`: the mart's compiled chain with its inputs cut to those customers.
    `pairs`: a query of the (client_id, transaction_id) of these customers' warehouse records
    (parity.features.fresh_cut), default: found in the staged tables."""
    keyed = f"{KEY} in (select {KEY} from {keys})"
    customers = plan.nodes["int_customers_deduplicated"].relation
    timelines = plan.nodes["int_client_timelines"].relation
    staged = staged_models(plan)
    staged[EVENTS_MODEL] = events
    # every record sharing a transaction id with these customers' (duplicates and versions are
    # ranked per id, and may name another customer), and every customer those records name:
    # each staged relation is read twice (its keyed ids, then the records of those ids), the
    # records kept as a CTE that both the model's input and the named customers read
    lead = {"fresh__related": " union ".join(
        [f"select client_id, transaction_id from {events} where {keyed}", pairs] if pairs is not None else
        [f"select client_id, transaction_id from {relation} where {keyed}" for relation in staged.values()])}
    related = "(client_id, transaction_id) in (select client_id, transaction_id from fresh__related)"
    for name, relation in staged.items():
        lead[f"fresh__records_{name}"] = f"select * from {relation} where {related}"
    inputs = {name: f"select * from fresh__records_{name}" for name in staged}
    named = " union ".join(f"select customer_id from fresh__records_{name}" for name in staged)
    inputs["int_customers_deduplicated"] = f"select * from {customers} where {keyed} or customer_id in ({named})"
    # one snapshot, at the instant: week 0 of a grid that ends there
    inputs["int_client_timelines"] = (
        f"select * replace ({INSTANT_PARAMETER} as snapshot_end, cast(1 as bigint) as n_snapshots) "
        f"from {timelines} where client_id in (select client_id from {customers} where {keyed})")
    with_sql, table = chain_sql(plan, mart, inputs, instant_sql=INSTANT_PARAMETER, lead=lead)
    return f"{with_sql} select * from {table} where {keyed} order by {KEY}"


def recompute(con: duckdb.DuckDBPyConnection, plan: Plan, customer_ids: Sequence[str], as_of: datetime,
              log_path: Path, mart: str | None = None, staged_log: StagedLog | None = None,
              pairs: StagedPairs | None = None, owners: bool = False) -> pa.Table:
    """The mart's rows at `as_of` for these customers (every column, snapshot_at = as_of),
    computed by the mart's compiled SQL over the warehouse and the event log at `log_path`
    (`staged_log`: the connection's incrementally staged log, its chains prepared once;
    default: staged whole, now; `pairs`: the warehouse records' transaction ids by customer
    number, used once built, parity.features.fresh_cut; default: found in the staged tables;
    `owners`: also the previous owners of the customers' pushed transactions, `previous_owners`)."""
    mart = mart or fresh_mart(plan)
    instant = _instant(as_of)
    # the event log staged now (accepted events newer than the build included)
    events = staged_log.refresh(con, plan, log_path, instant) if staged_log is not None else \
        _whole_log(con, plan, log_path, instant)
    ids = sorted(set(customer_ids))
    keys = fill(con, "fresh__keys", KEY, ids)
    if owners and (moved := previous_owners(con, list(staged_models(plan).values()), events, keys,
                                                 staged_log.statements if staged_log is not None else None)):
        ids = sorted({*ids, *moved})
        keys = fill(con, "fresh__keys", KEY, ids)
    found = pairs.sql() if pairs is not None else None
    if found is not None:
        pairs.fill(con, ids)
    sql = mart_sql(plan, mart, events, keys, found)
    return run_sql(con, sql, instant, staged_log.statements if staged_log is not None else None).to_arrow_table()


# contract data_type -> the Value field Feast stores it in
_NULL_TIMESTAMP = -9223372036854775808  # feast.type_map.NULL_TIMESTAMP_INT_VALUE
_VALUE_FIELDS = {"bigint": "int64_val", "double": "double_val", "varchar": "string_val", "timestamptz": "unix_timestamp_val"}


def find_view(manifest: dict[str, Any], view: str) -> tuple[Any, Any]:
    """(service plan, view entry) of the first feature service of the serving manifest reading `view`."""
    from parity.features.online_manifest import ManifestError, service_plan

    for service in manifest["feature_services"]:
        plan = service_plan(manifest, service)
        table = next((v for v in plan.views if v.name == view), None)
        if table is not None:
            return plan, table
    raise ManifestError(f"feature view '{view}' is in no feature service of the serving manifest")


def open_writer(settings: Any, view: str) -> OnlineWriter:
    """The fresh-feature writer of the profile's online store: SQLite (`OnlineWriter`) or
    Feast's Redis store (`parity.features.fresh_redis.RedisWriter`), from the serving manifest."""
    from parity.features.feature_store import store_config
    from parity.features.online_manifest import load_manifest

    config = store_config(settings)  # the profile's Feast config, ${VARS} resolved
    registry_url = (config.get("registry") or {}).get("path") if isinstance(config.get("registry"), dict) else None
    manifest = load_manifest(settings.feast_dir, settings.feature_store_yaml, registry_url)
    plan, table = find_view(manifest, view)
    if plan.store_kind == "redis":
        from parity.features.fresh_redis import RedisWriter

        return RedisWriter(plan, table, config.get("online_store") or {})
    return OnlineWriter(settings.feast_dir, settings.feature_store_yaml, view, registry_url)


class OnlineWriter:
    """Writes fresh feature values into the SQLite online store, in its layout (from the serving
    manifest): Feast's row per (entity, feature) — the bytes Feast's own write produces, event
    time `as_of` per fresh feature — or the wide store's row per entity (parity.features.wide_store)
    — the fresh columns of the entity's row updated, its event time (the snapshot's) kept. Either
    way serving's `features_at` stays the snapshot's, so its staleness rule judges the snapshot.
    A customer the store does not hold yet is not written (it has no snapshot to add to)."""

    def __init__(self, feast_dir: Path, store_yaml: Path, view: str, registry_url: str | None = None):
        from parity.features.online_manifest import ManifestError, load_manifest, value_message

        plan, table = find_view(load_manifest(feast_dir, store_yaml, registry_url), view)
        if plan.store_kind != "sqlite" or plan.db_path is None:
            raise ManifestError(f"online store {plan.store_kind} is not SQLite: use open_writer (Redis: RedisWriter)")
        self.db_path, self.layout, self.table = plan.db_path, plan.layout, table.table
        self.join_key, self.columns = table.join_key, table.columns or {}
        self._message = value_message()
        self._lock = threading.Lock()

    def key(self, customer_id: str) -> bytes:
        from parity.features.online_manifest import entity_key_bytes

        return entity_key_bytes(self.join_key, customer_id)

    def value(self, data_type: str, value: Any) -> tuple[bytes, str | None]:
        """A value's stored bytes and value_text in Feast's layout (a null as Feast stores it: an
        empty Value, or its null timestamp)."""
        message = self._message()
        kind = _VALUE_FIELDS.get(data_type)
        if kind is None:
            raise ValueError(f"no online encoding for data type {data_type!r}")
        if value is None:
            if kind == "unix_timestamp_val":  # Feast's NULL_TIMESTAMP_INT_VALUE, not an empty Value
                message.unix_timestamp_val = _NULL_TIMESTAMP
            return message.SerializeToString(), None
        if kind == "unix_timestamp_val":
            value = int(value.timestamp())
        setattr(message, kind, value)
        text = value if kind == "string_val" else (None if kind == "unix_timestamp_val" else str(value))
        return message.SerializeToString(), text

    @staticmethod
    def plain(value: Any) -> Any:
        """A value as the wide store keeps it (timestamps as epoch seconds; NaN is null)."""
        if isinstance(value, datetime):
            return int(value.timestamp())
        if isinstance(value, float) and value != value:
            return None
        return value

    def rows(self, table: pa.Table, columns: Sequence[str], types: dict[str, str], event_at: datetime) -> list[tuple]:
        """The statement parameters: (entity_key, feature_name, value, value_text, event_ts,
        created_ts) per feature (rows layout), or (*fresh values, entity_key) per entity (wide)."""
        data = table.select([KEY, *columns]).to_pylist()
        if self.layout == "wide":
            return [(*(self.plain(row[name]) for name in columns), self.key(row[KEY])) for row in data]
        stamp = int(event_at.timestamp())
        return [(self.key(row[KEY]), name, *self.value(types[name], row[name]), stamp, None)
                for row in data for name in columns]

    def _sql(self, columns: Sequence[str]) -> str:
        quoted = '"' + self.table.replace('"', '""') + '"'
        if self.layout == "wide":
            sets = ", ".join('"' + self.columns[c].replace('"', '""') + '" = ?' for c in columns)
            return f"UPDATE {quoted} SET {sets} WHERE entity_key = ?"
        return (f"INSERT INTO {quoted} (entity_key, feature_name, value, value_text, event_ts, created_ts) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
                "value = excluded.value, value_text = excluded.value_text, event_ts = excluded.event_ts, "
                "created_ts = excluded.created_ts")

    def known(self, keys: Sequence[bytes]) -> set[bytes]:
        """The entity keys the store holds (a fresh write only completes a stored row)."""
        quoted = '"' + self.table.replace('"', '""') + '"'
        con = sqlite3.connect(self.db_path, timeout=30)
        try:
            marks = ",".join("?" * len(keys))
            return {k for (k,) in con.execute(f"SELECT DISTINCT entity_key FROM {quoted} WHERE entity_key IN ({marks})",
                                              list(keys)).fetchall()} if keys else set()
        finally:
            con.close()

    def snapshot_times(self, keys: Sequence[bytes]) -> dict[bytes, datetime]:
        """The event time of each stored entity's row (wide: its row's; Feast rows: the oldest)."""
        quoted = '"' + self.table.replace('"', '""') + '"'
        marks = ",".join("?" * len(keys))
        con = sqlite3.connect(self.db_path, timeout=30)
        try:
            rows = con.execute(f"SELECT entity_key, min(event_ts) FROM {quoted} WHERE entity_key IN ({marks}) "
                               "GROUP BY entity_key", list(keys)).fetchall() if keys else []
        finally:
            con.close()
        scale = 1_000_000 if self.layout == "wide" else 1  # the wide store keeps microseconds
        found = {}
        for key, stamp in rows:
            if isinstance(stamp, (int, float)):
                found[key] = datetime.fromtimestamp(stamp / scale, tz=timezone.utc)
            elif isinstance(stamp, str):
                parsed = datetime.fromisoformat(stamp)
                found[key] = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        return found

    def close(self) -> None:
        """Nothing to release: each write opens its own SQLite connection."""

    def write(self, rows: list[tuple], columns: Sequence[str]) -> None:
        """Write in one transaction (readers see all of a push or none of it)."""
        with self._lock:
            con = sqlite3.connect(self.db_path, timeout=30)
            try:
                with con:
                    con.executemany(self._sql(columns), rows)
            finally:
                con.close()


def append_history(data_dir: Path, view: str, table: pa.Table, columns: Sequence[str], pushed_at: datetime,
                   online_at: datetime, accepted_at: dict[str, datetime]) -> Path:
    """One Parquet part with the pushed rows (key, pushed_at, online_at, accepted_at, the fresh
    columns), written to a temp name and renamed (readers never see half a part)."""
    folder = history_dir(data_dir, view)
    folder.mkdir(parents=True, exist_ok=True)
    keys = table.column(KEY).to_pylist()
    ts = pa.timestamp("us", tz="UTC")
    part = pa.table({
        KEY: table.column(KEY),
        PUSHED_AT: pa.array([pushed_at] * len(keys), ts),
        ONLINE_AT: pa.array([online_at] * len(keys), ts),
        ACCEPTED_AT: pa.array([accepted_at.get(k, pushed_at) for k in keys], ts),
        **{name: table.column(name) for name in columns},
    })
    path = folder / f"part-{pushed_at.strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.parquet"
    tmp = path.with_name("." + path.name + ".tmp")
    pq.write_table(part, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def lag_log_path(data_dir: Path) -> Path:
    """Per accepted event: its client, when accepted, when its features were readable online."""
    return events_dir(data_dir) / "lag.jsonl"


def append_lags(data_dir: Path, events: Sequence[tuple[str, datetime]], update: Update) -> None:
    """One line per event of an update (no customer key: the lag is a per-client figure)."""
    import json

    done = set(update.customers)
    lines = "".join(json.dumps({
        "client_id": customer.split(":", 1)[0], "accepted_at": accepted.isoformat(),
        "online_at": update.online_at.isoformat() if customer in done else None,
        "lag_seconds": (update.online_at - accepted).total_seconds() if customer in done else None}) + "\n"
        for customer, accepted in events)
    path = lag_log_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(lines)


def history_glob(data_dir: Path, view: str) -> str | None:
    """The DuckDB glob of a view's pushed rows, None when nothing was pushed."""
    folder = history_dir(data_dir, view)
    if not folder.is_dir() or not any(folder.glob("part-*.parquet")):
        return None
    return str(folder / "part-*.parquet")


@dataclass(frozen=True)
class Update:
    """One online update: the customers written, the instant computed for, when readable."""

    customers: tuple[str, ...]
    as_of: datetime
    online_at: datetime
    history: Path | None


def data_dir_of(store: Any, mart_path: str | Path) -> Path:
    """The data folder of a Feast store (parity.config.Settings lays out <data>/feast/registry.db
    and <data>/published/marts/<mart>.parquet): from its file registry, else from the mart."""
    registry = getattr(store.config, "registry", None)
    path = getattr(registry, "path", None) if getattr(registry, "registry_type", "file") == "file" else None
    if path and "://" not in str(path):
        return Path(path).parent.parent
    return Path(mart_path).parent.parent.parent


def apply_pushed(store: Any, view_names: Sequence[str], table: pa.Table, key: str, time_column: str,
                 readable_column: str | None = None) -> pa.Table:
    """Point in time between snapshots: for each entity row (key, time t) of an offline join,
    the fresh columns of the newest pushed row readable online by t (online_at <= t) replace
    the snapshot's when that row was computed after the snapshot the join used (newest snapshot
    <= t, within the view's TTL) — what serving returned at t. Views with no pushed rows: as is.
    `readable_column`: the pushed rows readable by that column's time instead of t (parity's
    check of what the online store holds for a customer pushed onto an expired snapshot)."""
    for name in view_names:
        view = store.get_feature_view(name)
        source = view.batch_source
        path = getattr(source, "path", None)
        if not path or "://" in str(path):
            continue
        glob = history_glob(data_dir_of(store, path), name)
        if glob is None:
            continue
        table = _overlay(table, str(path), source.timestamp_field, glob, view.ttl, key, time_column, readable_column)
    return table


def _overlay(table: pa.Table, mart: str, ts: str, glob: str, ttl: Any, key: str, time_column: str,
             readable_column: str | None = None) -> pa.Table:
    pushed_columns = [f.name for f in pq.read_schema(sorted(Path(glob).parent.glob("part-*.parquet"))[0])]
    fresh = [c for c in pushed_columns if c not in (KEY, PUSHED_AT, ONLINE_AT, ACCEPTED_AT) and c in table.column_names]
    if not fresh:
        return table
    seconds = ttl.total_seconds() if ttl else None
    q = '"{}"'.format
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        utc = pa.timestamp("us", tz="UTC")
        entities = pa.table({"k": table.column(key), "t": table.column(time_column).cast(utc),
                             "r": table.column(readable_column or time_column).cast(utc),
                             "i": pa.array(range(table.num_rows), pa.int64())})
        con.register("entities", entities)
        # Feast's TTL rule: the snapshot row counts when snapshot_at >= t - ttl
        within = f"and snapshot_at >= t - to_seconds({seconds})" if seconds else ""
        rows = con.execute(f"""
            with snap as (
                select e.i, e.k, e.t, e.r, s.{q(ts)} as snapshot_at
                from entities e asof left join (select {q(KEY)} as k, {q(ts)} from read_parquet('{mart}')) s
                    on s.k = e.k and s.{q(ts)} <= e.t
            ),
            pushed as (
                select snap.i, snap.snapshot_at, snap.t, p.*
                from snap asof left join read_parquet('{glob}') p
                    on p.{q(KEY)} = snap.k and p.{q(ONLINE_AT)} <= snap.r
            )
            select i, {", ".join(q(c) for c in fresh)} from pushed
            where {q(PUSHED_AT)} > snapshot_at and snapshot_at is not null {within}
            order by i""").to_arrow_table()
    finally:
        con.close()
    if rows.num_rows == 0:
        return table
    index = rows.column("i").to_numpy()
    for name in fresh:
        position = table.column_names.index(name)
        values = table.column(name).to_pylist()
        for i, value in zip(index, rows.column(name).cast(table.schema.field(name).type).to_pylist()):
            values[i] = value
        table = table.set_column(position, table.schema.field(name), pa.array(values, table.schema.field(name).type))
    return table


def reapply_pushed(settings: Any) -> int:
    """After a materialization: pushed fresh values computed after the snapshot row now online
    are written again (the newest wins, as offline retrieval decides: `apply_pushed`). Returns
    how many customers were rewritten (0 when nothing was ever pushed)."""
    root = events_dir(settings.data_dir) / "pushed"
    if not root.is_dir():
        return 0
    try:
        plan = load_plan(settings.published_dir)
    except Exception:  # no plan (a build before fresh events): nothing can be judged
        return 0
    rewritten = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        glob = history_glob(settings.data_dir, folder.name)
        mart = next((m for m, v in plan.views.items() if v == folder.name), None)
        if glob is None or mart is None:
            continue
        con = duckdb.connect()
        try:
            con.execute("set TimeZone = 'UTC'")
            latest = con.execute(f"select * from read_parquet('{glob}') qualify row_number() over "
                                 f"(partition by {KEY} order by {PUSHED_AT} desc) = 1").to_arrow_table()
        finally:
            con.close()
        writer = open_writer(settings, folder.name)
        try:
            columns = [c for c in plan.fresh[mart] if c in latest.column_names]
            ids = latest.column(KEY).to_pylist()
            times = writer.snapshot_times([writer.key(c) for c in ids])
            pushed = latest.column(PUSHED_AT).to_pylist()
            newer = [i for i, c in enumerate(ids) if writer.key(c) in times and pushed[i] > times[writer.key(c)]]
            for at in sorted({pushed[i] for i in newer}):
                rows = latest.take([i for i in newer if pushed[i] == at])
                writer.write(writer.rows(rows, columns, plan.types[mart], at), columns)
        finally:
            writer.close()
        rewritten += len(newer)
    return rewritten


def newest_online_at(data_dir: Path) -> dict[str, datetime]:
    """Per customer with pushed rows (any view), when its newest pushed values became readable."""
    root = events_dir(data_dir) / "pushed"
    globs = [g for p in sorted(root.iterdir()) if p.is_dir() and (g := history_glob(data_dir, p.name))] if root.is_dir() else []
    if not globs:
        return {}
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        rows = con.execute(f"select {KEY}, max({ONLINE_AT}) from read_parquet({globs!r}) group by 1").fetchall()
    finally:
        con.close()
    return {k: (t if t.tzinfo else t.replace(tzinfo=timezone.utc)) for k, t in rows}
