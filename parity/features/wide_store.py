"""A wide-row SQLite online store: one row per entity per feature view, one typed column per feature.

Feast's SQLite layout stores one row per (entity, feature) — 17 rows and 17 protobuf values per
customer for our main view — so reading 100 customers fetches and decodes 1,700 rows. This store
keeps Feast's file and Feast's `OnlineStore` interface (chosen in feature_store.yaml) but writes
one row per entity:

    "<project>_<view>__wide" (entity_key BLOB PRIMARY KEY, event_ts INTEGER, created_ts INTEGER,
                              "<feature>:<VALUE_TYPE>" ..., one column per feature)

`entity_key` is Feast's serialized entity key (as in Feast's own layout), `event_ts`/`created_ts`
are epoch microseconds, and each feature column holds the plain value SQLite stores natively:
INTEGER for INT32/INT64/BOOL (0/1)/UNIX_TIMESTAMP (epoch seconds, as Feast's `unix_timestamp_val`),
REAL for DOUBLE/FLOAT, TEXT for STRING, BLOB for BYTES, and Feast's serialized `Value` for any other
type. NULL is a null value (Feast's empty `Value`; a NaN or a missing timestamp is null as well).
The columns carry no declared type, so SQLite never converts a value (no affinity), and the value
type is part of the column name, so a changed definition is a changed table.

Readers: Feast's SDK through `online_read` (values rebuilt as Feast `Value`s from the view's
types) and serving's direct reader (`parity.features.online.SqliteReader`, from the serving
manifest, without Feast). Materialization writes Arrow batches straight into the table
(`write_arrow`), skipping Feast's per-value protobuf conversion; `online_write_batch` (Feast's
materialize, `write_to_online_store`) writes the same rows from Feast's `Value`s.

Tables are created by `update` (Feast's `FeatureStore.apply`; `parity apply` calls it for every
view) and by the first write; a table whose columns differ from the view's is dropped and created
again (its rows were of another definition: materialize to reload). Feast's `plan` infra objects
are SQLite tables of Feast's own layout, so `plan` lists none; `update(partial=False)` drops the
wide tables of views no longer kept.

    online_store:
      type: parity.features.wide_store.WideSqliteOnlineStore
      path: ...
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import compute_table_id
from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig, _quote_id
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

WIDE_SQLITE_TYPE = "parity.features.wide_store.WideSqliteOnlineStore"
SUFFIX = "__wide"
KEY_COLUMNS = ("entity_key", "event_ts", "created_ts")
# Feast value type -> the Value field a plain SQLite value maps to (others: serialized Value bytes)
FIELDS = {"STRING": "string_val", "INT64": "int64_val", "INT32": "int32_val", "DOUBLE": "double_val",
          "FLOAT": "float_val", "BOOL": "bool_val", "BYTES": "bytes_val", "UNIX_TIMESTAMP": "unix_timestamp_val"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NULL_TIMESTAMP = -9223372036854775808  # feast.type_map.NULL_TIMESTAMP_INT_VALUE
# Arrow types written directly (anything else goes through Feast's conversion)
_ARROW = {"STRING": (pa.string(), pa.large_string()), "INT64": (pa.int64(),), "INT32": (pa.int32(),),
          "DOUBLE": (pa.float64(),), "FLOAT": (pa.float32(),), "BOOL": (pa.bool_(),), "BYTES": (pa.binary(),)}

Row = tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]


class WideSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """SqliteOnlineStoreConfig under the wide store's type (Feast finds it by class name)."""

    type: Literal["parity.features.wide_store.WideSqliteOnlineStore"] = WIDE_SQLITE_TYPE  # type: ignore[assignment]


def value_type(feature: Any) -> str:
    """A feature's Feast value type name (e.g. 'INT64')."""
    return feature.dtype.to_value_type().name


def column_name(feature: str, kind: str) -> str:
    """The column of a feature: its name and value type (a changed type is a changed column)."""
    return f"{feature}:{kind}"


def view_columns(view: Any) -> list[tuple[str, str]]:
    """(feature, value type) of every feature of the view, in the view's order."""
    return [(f.name, value_type(f)) for f in view.features]


def table_name(project: str, view: Any, versioning: bool = False) -> str:
    """The wide table of a view: Feast's table id plus a suffix (never Feast's own table)."""
    return compute_table_id(project, view, versioning) + SUFFIX


def to_micros(stamp: datetime | None) -> int | None:
    """A datetime (naive = UTC) as epoch microseconds."""
    if stamp is None:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    delta = stamp - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int | None) -> datetime | None:
    """Epoch microseconds as a UTC datetime."""
    if value is None:
        return None
    return _EPOCH + timedelta(microseconds=value)


def plain_value(proto: ValueProto | None, kind: str) -> Any:
    """The SQLite value of a Feast Value of the given type (None for null, NaN, NaT)."""
    if proto is None:
        return None
    which = proto.WhichOneof("val")
    if which is None or which == "null_val":
        return None
    field = FIELDS.get(kind)
    if field is None:
        return proto.SerializeToString()
    value = getattr(proto, which)
    if which == "unix_timestamp_val":
        return None if value == _NULL_TIMESTAMP else value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value != value:  # NaN is null, as Feast's conversion makes it
        return None
    return value


def proto_value(value: Any, kind: str) -> ValueProto:
    """The Feast Value of a stored SQLite value of the given type (empty Value for NULL)."""
    if value is None:
        return ValueProto()
    field = FIELDS.get(kind)
    if field is None:
        proto = ValueProto()
        proto.ParseFromString(value)
        return proto
    if field == "bool_val":
        value = bool(value)
    return ValueProto(**{field: value})


def string_key_bytes(join_key: str) -> Callable[[str], bytes]:
    """Feast's serialize_entity_key (v3) of a single STRING join key, as a fast function."""
    name = join_key.encode("utf8")
    head = struct.pack("<III", 1, 2, len(name)) + name + struct.pack("<I", 2)
    pack = struct.Struct("<I").pack

    def encode(value: str) -> bytes:
        raw = value.encode("utf8")
        return head + pack(len(raw)) + raw

    return encode


class WideSqliteOnlineStore(SqliteOnlineStore):
    """Feast's SQLite online store with one wide row per entity and view (module docstring)."""

    _checked: dict[str, tuple[str, ...]] | None = None

    # ---- tables -----------------------------------------------------------------------------

    @staticmethod
    def table_name(config: Any, view: Any) -> str:
        """The view's wide table in this store."""
        return table_name(config.project, view, config.registry.enable_online_feature_view_versioning)

    def _ensure_table(self, conn: sqlite3.Connection, name: str, view: Any) -> tuple[str, ...]:
        """Create the view's table, or re-create it when its columns differ; its feature columns."""
        wanted = tuple(column_name(f, k) for f, k in view_columns(view))
        checked = self._checked if self._checked is not None else {}
        self._checked = checked
        if checked.get(name) == wanted:
            return wanted
        existing = [row[1] for row in conn.execute(f"PRAGMA table_info({_quote_id(name)})")]
        if existing and tuple(existing) != (*KEY_COLUMNS, *wanted):
            with conn:
                conn.execute(f"DROP TABLE {_quote_id(name)}")
            existing = []
        if not existing:
            columns = ", ".join(_quote_id(c) for c in wanted)
            with conn:
                conn.execute(f"CREATE TABLE IF NOT EXISTS {_quote_id(name)} (entity_key BLOB PRIMARY KEY, "
                             f"event_ts INTEGER, created_ts INTEGER{', ' if wanted else ''}{columns})")
        checked[name] = wanted
        return wanted

    def update(self, config: Any, tables_to_delete: Sequence[Any], tables_to_keep: Sequence[Any],
               entities_to_delete: Sequence[Any], entities_to_keep: Sequence[Any], partial: bool) -> None:
        """Create (or re-create when changed) the kept views' tables; drop the deleted ones, and
        with partial=False every wide table of the project that is not kept."""
        conn = self._get_conn(config)
        keep = {self.table_name(config, view) for view in tables_to_keep}
        for view in tables_to_keep:
            self._ensure_table(conn, self.table_name(config, view), view)
        drop = {self.table_name(config, view) for view in tables_to_delete} - keep
        if not partial:
            prefix = f"{config.project}_"
            drop |= {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                     if name.startswith(prefix) and name.endswith(SUFFIX) and name not in keep}
        with conn:
            for name in sorted(drop):
                conn.execute(f"DROP TABLE IF EXISTS {_quote_id(name)}")
        if self._checked:
            for name in drop:
                self._checked.pop(name, None)

    def plan(self, config: Any, desired_registry_proto: Any) -> list[Any]:
        """No Feast infra objects: Feast's SqliteTable would create its own per-feature layout."""
        return []

    # ---- writes -----------------------------------------------------------------------------

    def _upsert(self, config: Any, view: Any, columns: Sequence[str], rows: Any) -> None:
        """Insert or update rows of (entity_key, event_ts, created_ts, *columns) in one transaction."""
        conn = self._get_conn(config)
        name = self.table_name(config, view)
        self._ensure_table(conn, name, view)
        names = [*KEY_COLUMNS, *columns]
        update = ", ".join(f"{_quote_id(c)} = excluded.{_quote_id(c)}" for c in names[1:])
        sql = (f"INSERT INTO {_quote_id(name)} ({', '.join(_quote_id(c) for c in names)}) "
               f"VALUES ({', '.join('?' * len(names))}) ON CONFLICT(entity_key) DO UPDATE SET {update}")
        with conn:
            conn.executemany(sql, rows)

    def online_write_batch(self, config: Any, table: Any, data: list[Row],
                           progress: Callable[[int], Any] | None) -> None:
        """Write Feast rows (entity key, {feature: Value}, event time, created time): one row per
        entity; a feature missing from a row's dict keeps its stored value (as in Feast's layout)."""
        kinds = dict(view_columns(table))
        version = config.entity_key_serialization_version
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for entity_key, values, event_ts, created_ts in data:
            names = tuple(f for f in kinds if f in values)
            key = serialize_entity_key(entity_key, entity_key_serialization_version=version)
            row = (key, to_micros(event_ts), to_micros(created_ts), *(plain_value(values[f], kinds[f]) for f in names))
            groups.setdefault(names, []).append(row)
        for names, rows in groups.items():
            self._upsert(config, table, [column_name(f, kinds[f]) for f in names], rows)
        if progress:
            progress(len(data))

    def write_arrow(self, config: Any, view: Any, table: pa.Table) -> bool:
        """Write an Arrow table of the view's rows (join key, features, timestamp field[, created
        timestamp]) straight into the wide table; False (nothing written) when a column's Arrow type
        is not one written directly — the caller then uses Feast's conversion."""
        keys = list(view.entity_columns)
        if len(keys) != 1 or value_type(keys[0]) != "STRING" or table.column(keys[0].name).type not in _ARROW["STRING"]:
            return False
        kinds = view_columns(view)
        lists = []
        for feature, kind in kinds:
            column = _plain_column(table.column(feature), kind)
            if column is None:
                return False
            lists.append(column)
        encode = string_key_bytes(keys[0].name)
        entity_keys = [None if v is None else encode(v) for v in table.column(keys[0].name).to_pylist()]
        if any(k is None for k in entity_keys):
            raise ValueError(f"view '{view.name}': a row without its join key '{keys[0].name}'")
        source = view.batch_source
        event = _micros_column(table.column(source.timestamp_field))
        created = (_micros_column(table.column(source.created_timestamp_column))
                   if source.created_timestamp_column else [None] * table.num_rows)
        self._upsert(config, view, [column_name(f, k) for f, k in kinds], zip(entity_keys, event, created, *lists))
        return True

    # ---- reads ------------------------------------------------------------------------------

    def online_read(self, config: Any, table: Any, entity_keys: list[EntityKeyProto],
                    requested_features: list[str] | None = None) -> list[tuple[datetime | None, dict[str, ValueProto] | None]]:
        """Feast's online_read over the wide rows: (event time, {feature: Value}) per entity key,
        (None, None) for an entity the store does not hold."""
        kinds = view_columns(table)
        if requested_features is not None:
            wanted = set(requested_features)
            kinds = [(f, k) for f, k in kinds if f in wanted]
        version = config.entity_key_serialization_version
        keys = [serialize_entity_key(k, entity_key_serialization_version=version) for k in entity_keys]
        found = self.read_rows(self._get_conn(config), self.table_name(config, table),
                               [column_name(f, k) for f, k in kinds], keys)
        result: list[tuple[datetime | None, dict[str, ValueProto] | None]] = []
        for key in keys:
            row = found.get(key)
            if row is None:
                result.append((None, None))
                continue
            values = {f: proto_value(v, k) for (f, k), v in zip(kinds, row[1:])}
            result.append((from_micros(row[0]), values))
        return result

    @staticmethod
    def read_rows(conn: sqlite3.Connection, name: str, columns: Sequence[str],
                  keys: Sequence[bytes]) -> dict[bytes, tuple[Any, ...]]:
        """{entity key: (event_ts, *columns)} of the stored keys among `keys` (missing table: none)."""
        if not keys:
            return {}
        select = ", ".join(["entity_key", "event_ts", *(_quote_id(c) for c in columns)])
        try:
            rows = conn.execute(f"SELECT {select} FROM {_quote_id(name)} WHERE entity_key IN "
                                f"({','.join('?' * len(keys))})", list(keys)).fetchall()
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):
                return {}
            raise
        return {row[0]: row[1:] for row in rows}


def _micros_column(column: pa.ChunkedArray) -> list[int | None]:
    """A timestamp column (any unit, naive = UTC) as epoch microseconds."""
    if not pa.types.is_timestamp(column.type):
        raise TypeError(f"timestamp column of type {column.type}")
    return column.cast(pa.timestamp("us", tz=column.type.tz)).cast(pa.int64()).to_pylist()


def _plain_column(column: pa.ChunkedArray, kind: str) -> list[Any] | None:
    """A feature column as SQLite values (Feast's conversion: NaN and NaT are null, timestamps epoch
    seconds, booleans 0/1); None when its Arrow type is not one written directly."""
    if kind == "UNIX_TIMESTAMP":
        if not pa.types.is_timestamp(column.type):
            return None
        return [None if v is None else v // 1_000_000 for v in _micros_column(column)]
    if column.type not in _ARROW.get(kind, ()):
        return None
    if kind in ("DOUBLE", "FLOAT"):
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
    values = column.to_pylist()
    if kind == "BOOL":
        return [None if v is None else int(v) for v in values]
    return values
