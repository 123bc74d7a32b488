"""Materialization by content: every feature row that appeared, changed or vanished since the
last run reaches the online store, whatever its event time.

Feast's `materialize-incremental` continues from the last materialized end: rows that appear
later with OLDER event times (a new client's history, a late back-fill, a correction) are never
loaded, and rows removed from the source stay served. Here each feature view is cut into parts,
one per client (the source's `client_id` column; the whole view is one part without it), and
after each successful run a marker (`<feast dir>/materialized.json`) records per part its row
count, newest event time and a content hash of its rows (DuckDB `hash` of each row, summed: one
scan of the Parquet mart, order-free, duplicates counted). The next run reloads exactly the parts
whose fingerprint differs (new, changed) and deletes the online entities that no part loads any
more (a removed client, an erased customer). Nothing changed: "up to date", nothing written.

A part's load is what Feast's first materialization of that client alone would write: per entity
the newest row in the client's own window [newest - ttl, newest] (a client whose data ends weeks
before the others is loaded over its own span, not the union's), converted and written with
Feast's own row conversion and the configured online store's `online_write_batch`. Why content,
not the mart's build id or mtime: every dbt build rewrites every mart, so an id would reload
everything after each build; the hash reloads only clients whose rows differ, at the cost of one
scan. A part is the unit because the online store is keyed by entity and a client is the unit
that arrives, is back-filled or is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute  # noqa: F401 (pa.compute)

MARKER_NAME = "materialized.json"
FORMAT = 1
CLIENT_COLUMN = "client_id"
WHOLE_VIEW = "*"  # the part name of a view whose source has no client column
WRITE_BATCH = 20_000  # rows converted to protobuf and written per online_write_batch call


@dataclass(frozen=True)
class Part:
    """Fingerprint of one client's rows of one view's source."""

    rows: int
    newest: str  # ISO time of the newest event
    sha: str

    @property
    def newest_at(self) -> datetime:
        return datetime.fromisoformat(self.newest)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("set TimeZone='UTC'")
    return con


def parquet_sql(path: str) -> str:
    """DuckDB's read of a Parquet mart: one file (dbt-duckdb's `external`) or a folder of part
    files at the same path (the Spark `external` materialization)."""
    target = f"{path.rstrip('/')}/*.parquet" if Path(path).is_dir() else path
    return "read_parquet('" + target.replace("'", "''") + "')"


def source_sql(view: Any) -> str:
    return parquet_sql(str(view.batch_source.path))


def client_expr(view: Any, con: duckdb.DuckDBPyConnection | None = None) -> str:
    """SQL for a row's part name: its client column as text, or the whole-view part."""
    con = con or connect()
    columns = {row[0] for row in con.execute(f"select * from {source_sql(view)} limit 0").description}
    if CLIENT_COLUMN in columns:
        return f"coalesce(cast({quote(CLIENT_COLUMN)} as varchar), '?')"
    return f"'{WHOLE_VIEW}'"


def definition_sha(view: Any) -> str:
    """What an online row of the view depends on besides the data: its features, keys, TTL."""
    spec = {
        "features": [(f.name, str(f.dtype)) for f in view.features],
        "join_keys": list(view.join_keys),
        "timestamp": view.batch_source.timestamp_field,
        "created": view.batch_source.created_timestamp_column or "",
        "ttl": (view.ttl or timedelta(0)).total_seconds(),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def source_parts(view: Any, end: datetime | None = None) -> dict[str, Part]:
    """Per client: row count, newest event time and content hash of the view's rows (<= end)."""
    con = connect()
    ts = quote(view.batch_source.timestamp_field)
    where, params = (f"where {ts}::timestamptz <= ?", [end]) if end else ("", [])
    rows = con.execute(
        f"select {client_expr(view, con)} as part, count(*), max({ts}::timestamptz), "
        f"sum(hash(src)::hugeint)::varchar from {source_sql(view)} src {where} group by part", params
    ).fetchall()
    return {
        part: Part(rows=count, newest=newest.astimezone(timezone.utc).isoformat(), sha=sha)
        for part, count, newest, sha in rows
        if newest is not None
    }


def window(view: Any, part: Part) -> tuple[datetime, datetime]:
    """A part's load window: [newest - ttl, newest] (all of it without a TTL), both inclusive."""
    newest = part.newest_at
    if not view.ttl:
        return datetime(1970, 1, 1, tzinfo=timezone.utc), newest
    return newest - view.ttl, newest


PART = "__part"  # the part (client) of a loaded row; not a feature, ignored by Feast's conversion


def _windows_table(view: Any, windows: dict[str, tuple[datetime, datetime]]) -> pa.Table:
    return pa.table({
        "part": list(windows),
        "start_at": pa.array([w[0] for w in windows.values()], pa.timestamp("us", tz="UTC")),
        "end_at": pa.array([w[1] for w in windows.values()], pa.timestamp("us", tz="UTC")),
    })


def latest_rows(view: Any, windows: dict[str, tuple[datetime, datetime]]) -> pa.Table:
    """The newest row per entity of each part within its window [start, end] (one scan for all
    parts), with the part in column `__part`: what the online store holds."""
    con = connect()
    source = view.batch_source
    ts = quote(source.timestamp_field)
    order = [f"src.{ts} desc"]
    if source.created_timestamp_column:
        order.append(f"src.{quote(source.created_timestamp_column)} desc")
    columns = [*view.join_keys, *(f.name for f in view.features), source.timestamp_field]
    if source.created_timestamp_column:
        columns.append(source.created_timestamp_column)
    mapping = {v: k for k, v in (source.field_mapping or {}).items()}  # feature name -> source column
    select = ", ".join(
        "src." + quote(mapping.get(c, c)) + f" as {quote(c)}" for c in dict.fromkeys(columns)
    )
    con.register("windows", _windows_table(view, windows))
    result = con.execute(
        f"select {select}, w.part as {PART} from {source_sql(view)} src join windows w "
        f"on w.part = {client_expr(view, con)} and src.{ts}::timestamptz between w.start_at and w.end_at "
        f"qualify row_number() over (partition by {', '.join('src.' + quote(k) for k in view.join_keys)} "
        f"order by {', '.join(order)}) = 1"
    )
    return result.to_arrow_table() if hasattr(result, "to_arrow_table") else result.fetch_arrow_table()


def write_rows(store: Any, view: Any, table: pa.Table) -> int:
    """Write rows with Feast's own conversion and the configured online store's batch write."""
    from feast.utils import _convert_arrow_to_proto

    join_keys = {entity.name: entity.dtype.to_value_type() for entity in view.entity_columns}
    provider = store._get_provider()
    # a store that takes Arrow (parity.features.wide_store) skips Feast's per-value conversion
    write_arrow = getattr(provider.online_store, "write_arrow", None)
    if write_arrow is not None and write_arrow(store.config, view, table.drop_columns([PART])
                                               if PART in table.column_names else table):
        return table.num_rows
    for batch in table.combine_chunks().to_batches(max_chunksize=WRITE_BATCH):
        rows = _convert_arrow_to_proto(batch, view, join_keys)
        provider.online_write_batch(config=store.config, table=view, data=rows, progress=None)
    return table.num_rows


def expected_keys(view: Any, parts: dict[str, Part]) -> set[tuple[Any, ...]]:
    """Entity keys the online store should hold for the view: those with a row in their part's window."""
    if not parts:
        return set()
    con = connect()
    ts = quote(view.batch_source.timestamp_field)
    keys = ", ".join(quote(k) for k in view.join_keys)
    con.register("windows", _windows_table(view, {name: window(view, part) for name, part in parts.items()}))
    rows = con.execute(
        f"select distinct {keys} from {source_sql(view)} src join windows w "
        f"on w.part = {client_expr(view, con)} and {ts}::timestamptz between w.start_at and w.end_at"
    ).fetchall()
    return set(rows)


# --------------------------------------------------------------------------------------------
# the online store's own entity keys (SQLite and Redis: read and delete; other stores: not listed)


def _sqlite_table(store: Any, view: Any) -> tuple[Path, str] | None:
    """(database file, table name) of the view in a SQLite online store; None for other stores."""
    from feast.infra.online_stores.sqlite import SqliteOnlineStore, _table_id

    online = store._get_provider().online_store
    if not isinstance(online, SqliteOnlineStore):
        return None
    path = Path(online._get_db_path(store.config))
    if hasattr(online, "table_name"):  # a store with its own table layout (parity.features.wide_store)
        return path, online.table_name(store.config, view)
    name = _table_id(store.config.project, view, store.config.registry.enable_online_feature_view_versioning)
    return path, name


def online_keys(store: Any, view: Any) -> dict[tuple[Any, ...], bytes] | None:
    """Entity keys held online for the view (key values -> stored key bytes); None if not listable."""
    from feast.infra.key_encoding_utils import deserialize_entity_key
    from feast.type_map import feast_value_type_to_python_type

    located = _sqlite_table(store, view)
    if located is None:
        from parity.features.online_redis import view_entity_keys

        return view_entity_keys(store, view)  # Redis (None: a store that cannot list)
    path, table = located
    if not path.exists():
        return {}
    version = store.config.entity_key_serialization_version
    with sqlite3.connect(path) as con:
        try:
            blobs = [row[0] for row in con.execute(f"select distinct entity_key from {quote(table)}")]
        except sqlite3.OperationalError:  # table not created yet
            return {}
    found = {}
    for blob in blobs:
        key = deserialize_entity_key(blob, entity_key_serialization_version=version)
        values = dict(zip(key.join_keys, (feast_value_type_to_python_type(v) for v in key.entity_values)))
        found[tuple(values.get(k) for k in view.join_keys)] = blob
    return found


def online_count(store: Any, view: Any) -> int | None:
    """How many entities the view's online table (SQLite) or hashes (Redis) hold (None for stores
    that cannot say)."""
    located = _sqlite_table(store, view)
    if located is None:
        keys = online_keys(store, view)  # Redis: its listed entities
        return None if keys is None else len(keys)
    path, table = located
    if not path.exists():
        return 0
    with sqlite3.connect(path) as con:
        try:
            return int(con.execute(f"select count(distinct entity_key) from {quote(table)}").fetchone()[0])
        except sqlite3.OperationalError:  # table not created yet
            return 0


def delete_online(store: Any, view: Any, blobs: Iterable[bytes]) -> int:
    """Delete entities (stored key bytes) from the view's SQLite table or Redis hashes; returns how many."""
    located = _sqlite_table(store, view)
    blobs = list(blobs)
    if located is None:
        from parity.features.online_redis import delete_view_entities

        return delete_view_entities(store, view, blobs)  # Redis (0 for a store that cannot delete)
    if not blobs:
        return 0
    path, table = located
    with sqlite3.connect(path) as con:
        con.executemany(f"delete from {quote(table)} where entity_key = ?", [(b,) for b in blobs])
    return len(blobs)


# --------------------------------------------------------------------------------------------
# the marker and the run


def marker_path(feast_dir: Path) -> Path:
    return feast_dir / MARKER_NAME


def read_marker(feast_dir: Path) -> dict[str, Any]:
    """The marker of the last successful run ({} when none, unreadable or of another format)."""
    try:
        marker = json.loads(marker_path(feast_dir).read_text())
    except (OSError, ValueError):
        return {}
    return marker if marker.get("format") == FORMAT else {}


def write_marker(feast_dir: Path, marker: dict[str, Any]) -> None:
    """Write the marker atomically (a crash leaves the previous one, so the next run redoes)."""
    path = marker_path(feast_dir)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"format": FORMAT, **marker}, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def materialize_view(store: Any, view: Any, recorded: dict[str, Any], end: datetime | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Bring one view's online rows in line with its source; (what was done, the view's new marker)."""
    parts = source_parts(view, end)
    definition = definition_sha(view)
    known = recorded.get("parts", {}) if recorded.get("definition") == definition else {}
    held = online_count(store, view)
    if known and recorded.get("online_entities") != held:
        known = {}  # the online store is not what the marker says (deleted, restored): reload all
    changed = sorted(name for name, part in parts.items() if known.get(name) != asdict(part))
    removed = sorted(set(known) - set(parts))
    done: dict[str, Any] = {"loaded": {}, "removed": removed, "deleted": 0, "not_deletable": 0}
    if changed:  # the view's online table exists (Feast creates it at apply; a lost store lacks it)
        store._get_provider().online_store.update(config=store.config, tables_to_delete=[], tables_to_keep=[view],
                                                  entities_to_delete=[], entities_to_keep=[], partial=True)
    windows = {name: window(view, parts[name]) for name in changed}
    if windows:
        rows = latest_rows(view, windows)
        write_rows(store, view, rows)
        counts = dict(zip(*(c.to_pylist() for c in pa.compute.value_counts(rows.column(PART)).flatten())))
        done["loaded"] = {name: {"entities": counts.get(name, 0), "start": start.isoformat(), "end": stop.isoformat()}
                          for name, (start, stop) in windows.items()}
    if (changed or removed) and held != 0:  # an empty store before loading has nothing stale
        online = online_keys(store, view)
        if online is None:  # not listable: parity reports what stays served
            done["not_deletable"] = len(removed)
        else:
            expected = expected_keys(view, parts)
            done["deleted"] = delete_online(store, view, (blob for key, blob in online.items() if key not in expected))
    marker = {"definition": definition, "parts": {name: asdict(part) for name, part in parts.items()},
              "online_entities": online_count(store, view)}
    if parts and changed:
        starts = [window(view, parts[n])[0] for n in changed]
        newest = max(p.newest_at for p in parts.values())
        # keep Feast's own metadata (materialization_intervals, `feast` CLI) in step
        store.registry.apply_materialization(view, store.project, min(starts), newest + timedelta(seconds=1))
    return done, marker


def describe(done: dict[str, Any]) -> str:
    """One line for `make materialize` about one view."""
    if not done["loaded"] and not done["removed"] and not done["deleted"]:
        return "up to date"
    bits = [f"{name}: {d['entities']} entities ({d['start']} -> {d['end']})" for name, d in sorted(done["loaded"].items())]
    if done["removed"]:
        bits.append(f"removed from the source: {', '.join(done['removed'])}")
    if done["deleted"]:
        bits.append(f"{done['deleted']} entities no longer in the source deleted online")
    if done["not_deletable"]:
        bits.append("the online store cannot list entities: removed ones may stay served (see `make parity`)")
    return "; ".join(bits)


def part_ends(feast_dir: Path) -> dict[str, dict[str, datetime]]:
    """Per view and part (client), the end of what was last materialized: newest event + 1 s."""
    marker = read_marker(feast_dir)
    return {
        view: {name: datetime.fromisoformat(p["newest"]) + timedelta(seconds=1) for name, p in entry["parts"].items()}
        for view, entry in marker.get("views", {}).items()
    }
