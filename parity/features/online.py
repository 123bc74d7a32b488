"""A lean online read path for serving: the same storage and transformations as Feast's SDK,
without its per-request overhead.

`OnlineReader` resolves a feature service ONCE (views, features, the on-demand transformations
registered in Feast) and then, per request, reads the online store through Feast's own provider
(`online_read`, so any configured online store works — SQLite, Redis, ...), decodes values with
Feast's type map and runs the registered on-demand transformation code. Its output is the same
frame as `parity.features.retrieval.online_frame` (tested equal for every entity), just faster.

`SqliteReader` is the same read without Feast at all: it follows the serving manifest written at
`parity apply` (`parity.features.online_manifest`) and reads Feast's SQLite tables directly — one indexed
SELECT per view, entity keys serialized as Feast does, values decoded with Feast's own `Value`
protobuf class, the registered transformation source exec'd once. Serving uses it so that the
process never imports Feast (3+ s of cold start). `open_reader` picks it when the manifest is
present and fresh and the online store is SQLite, and otherwise falls back to `OnlineReader`
(Redis or another store; a manifest missing or stale after a plain `feast apply`), saying why.
"""

from __future__ import annotations

import logging
import operator
import os
import sqlite3
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from parity.features.retrieval import (
    ARROW_TYPES,
    ENTITY_KEY,
    REQUEST_TIME,
    TIME_COLUMN,
    ServiceSchema,
    conform,
    get_service,
    resolve_service,
    service_schema,
    to_frame,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("parity.features.online")

_SCALARS = frozenset({"int64_val", "int32_val", "double_val", "float_val", "string_val", "bool_val", "bytes_val"})
_NULL_TIMESTAMP = -9223372036854775808  # feast.type_map.NULL_TIMESTAMP_INT_VALUE
# read_columns' extra keys: whether the store knows the entity, and the event time of its row
# (the oldest over the service's views that hold it; None when unknown)
FOUND, EVENT_AT = "__found__", "__event_at__"
_MAX = datetime.max.replace(tzinfo=timezone.utc)


def _older(current: datetime | None, candidate: datetime | None) -> datetime | None:
    """The older of two event times (None = not seen yet)."""
    if candidate is None:
        return current
    return candidate if current is None or candidate < current else current


def _stored(stamp: datetime | None, values: dict[str, Any] | None) -> bool:
    """Whether a provider read found the entity: Feast's Redis store answers an unknown key with
    a dict of empty values and an epoch-0 time (SQLite with None), so a dict alone is not enough."""
    if not values:
        return False
    return (stamp is not None and stamp.timestamp() > 0) or any(v.WhichOneof("val") for v in values.values())


@dataclass(frozen=True)
class _ViewRead:
    """One batch feature view to read: the view object and the features needed from it."""

    view: Any
    features: tuple[str, ...]


class _TypedReads:
    """`read_found` / `read` on top of a reader's `read_columns` (both readers share them)."""

    schema: ServiceSchema

    def read_columns(self, customer_ids: Sequence[str], request_at: datetime | Sequence[datetime]) -> dict[str, list[Any]]:
        raise NotImplementedError  # each reader reads its own store

    def read_found(
        self, customer_ids: Sequence[str], request_at: datetime | Sequence[datetime] | None = None
    ) -> tuple[pd.DataFrame, list[bool]]:
        """The typed frame (as `retrieval.online_frame`) and which customers the store knows."""
        request_at = request_at or datetime.now(timezone.utc)
        columns = self.read_columns(customer_ids, request_at)
        arrays = {ENTITY_KEY: pa.array(list(customer_ids), pa.string()),
                  TIME_COLUMN: pa.array(columns[REQUEST_TIME], ARROW_TYPES["UnixTimestamp"])}
        for name, dtype in self.schema.features:
            arrays[name] = pa.array(columns[name], ARROW_TYPES[dtype])
        return to_frame(conform(pa.table(arrays), self.schema)), columns["__found__"]

    def read(self, customer_ids: Sequence[str], request_at: datetime | Sequence[datetime] | None = None) -> pd.DataFrame:
        """Same frame as `retrieval.online_frame` (key, time, features; declared dtypes)."""
        return self.read_found(customer_ids, request_at)[0]


class OnlineReader(_TypedReads):
    """Reads a feature service's online features for a list of customers."""

    kind = "feast"
    fallback_reason: str | None = None

    def __init__(self, store: Any, service_name: str):
        from feast.infra.key_encoding_utils import serialize_entity_key  # noqa: F401 (warm import)
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value
        from feast.type_map import feast_value_type_to_python_type

        self._entity_key, self._value = EntityKey, Value
        self._to_python = feast_value_type_to_python_type
        self.store = store
        self.service_name = service_name
        self.schema = service_schema(store, service_name)
        self._provider = store._get_provider()
        plan = resolve_service(store, get_service(store, service_name))
        self._views = [
            _ViewRead(store.get_feature_view(name), tuple(sorted(names))) for name, names in sorted(plan.views.items())
        ]
        self._transforms = plan.steps

    def _decode(self, proto: Any) -> Any:
        """A stored ValueProto as the same Python value Feast's type map returns (fast for scalars)."""
        kind = proto.WhichOneof("val")
        if kind is None:
            return None
        if kind in _SCALARS:
            return getattr(proto, kind)
        if kind == "unix_timestamp_val":
            value = proto.unix_timestamp_val
            return None if value == _NULL_TIMESTAMP else datetime.fromtimestamp(value, tz=timezone.utc)
        return self._to_python(proto)

    def _read_view(self, read: _ViewRead, keys: list[Any], found: list[bool],
                   event_at: list[datetime | None]) -> dict[str, list[Any]]:
        rows = self._provider.online_read(
            config=self.store.config, table=read.view, entity_keys=keys, requested_features=list(read.features)
        )
        columns: dict[str, list[Any]] = {name: [] for name in read.features}
        for i, (stamp, values) in enumerate(rows):
            if _stored(stamp, values):
                found[i] = True
                event_at[i] = _older(event_at[i], stamp)
            for name in read.features:
                proto = values.get(name) if values else None
                columns[name].append(None if proto is None else self._decode(proto))
        return columns

    def read_columns(self, customer_ids: Sequence[str], request_at: datetime | Sequence[datetime]) -> dict[str, list[Any]]:
        """Feature values as python lists keyed by feature name (before typing), plus `__found__`:
        whether any feature view holds the entity (False = unknown customer), and `__event_at__`:
        the event time (UTC) of its stored row, the oldest over the views that hold it."""
        keys = [
            self._entity_key(join_keys=[ENTITY_KEY], entity_values=[self._value(string_val=cid)])
            for cid in customer_ids
        ]
        found = [False] * len(keys)
        event_at: list[datetime | None] = [None] * len(keys)
        columns: dict[str, list[Any]] = {}
        for read in self._views:
            columns.update(self._read_view(read, keys, found, event_at))
        return _with_on_demand(columns, found, event_at, request_at, self._transforms)


class SqliteReader(_TypedReads):
    """`OnlineReader`'s read straight from Feast's SQLite online store, following the serving
    manifest (no Feast import): same columns, values and Python types."""

    kind = "sqlite"

    def __init__(self, plan: Any):
        from parity.features.online_manifest import string_key_prefix, value_message

        self.service_name = plan.name
        self.schema = ServiceSchema(name=plan.name, features=plan.features)
        self.fallback_reason: str | None = None
        for view in plan.views:
            if view.join_key != ENTITY_KEY or view.join_key_type != "STRING":
                raise ValueError(f"view '{view.name}': join key {view.join_key} ({view.join_key_type}) is not "
                                 f"the STRING key '{ENTITY_KEY}'")
        # read-only: serving never writes, and a missing file is an error rather than a new empty db
        self.db_path = plan.db_path
        self._con = sqlite3.connect(plan.db_path.as_uri() + "?mode=ro", uri=True, check_same_thread=False)
        self._inode = os.stat(plan.db_path).st_ino  # a deleted or re-created file is noticed (health)
        self._lock = threading.Lock()
        # Feast's Value message (protobuf, ~15 ms to load) decodes Feast's layout only
        self._message = value_message() if plan.layout != "wide" else None
        self._views = plan.views
        self._tables = [
            (view, f'SELECT entity_key, feature_name, value, event_ts FROM "{view.table.replace(chr(34), chr(34) * 2)}" '
                   "WHERE entity_key IN ", set(view.features))
            for view in plan.views]
        self._prefix = string_key_prefix(ENTITY_KEY)
        self._transforms = plan.transforms
        self._wide = plan.layout == "wide"
        if self._wide:  # one row per entity: (entity_key, event_ts, one column per feature)
            self._tables = [(view, _wide_select(view), _wide_converters(view)) for view in plan.views]
        self._cache: dict[bytes, Any] = {}  # stored value bytes -> python value (values repeat a lot)
        self._stamps: dict[Any, datetime | None] = {}  # stored event_ts -> UTC datetime (few distinct)

    def entity_key(self, customer_id: str) -> bytes:
        """Feast's serialize_entity_key (v3) of a customer key."""
        raw = customer_id.encode("utf8")
        return self._prefix + struct.pack("<I", len(raw)) + raw

    def _decode(self, blob: bytes) -> Any:
        """Stored ValueProto bytes as the value `OnlineReader._decode` returns."""
        message = self._message()
        message.ParseFromString(blob)
        kind = message.WhichOneof("val")
        if kind is None or kind == "null_val":
            return None
        if kind not in _SCALARS and kind != "unix_timestamp_val":
            raise ValueError(f"stored value of kind {kind} is not a scalar the manifest declared")
        value = getattr(message, kind)
        if kind == "unix_timestamp_val":
            return None if value == _NULL_TIMESTAMP else datetime.fromtimestamp(value, tz=timezone.utc)
        return value

    def _event_time(self, stored: Any) -> datetime | None:
        """A stored event_ts as a UTC datetime. Feast writes naive UTC datetimes, which sqlite3
        stores as ISO text ('YYYY-MM-DD HH:MM:SS[.ffffff]'); cached, as snapshot times repeat."""
        stamp = self._stamps.get(stored, self)
        if stamp is self:
            if isinstance(stored, (str, bytes)):
                text = stored.decode() if isinstance(stored, bytes) else stored
                parsed = datetime.fromisoformat(text)
                stamp = parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
            elif isinstance(stored, (int, float)):  # epoch seconds, should a writer store them so
                stamp = datetime.fromtimestamp(stored, tz=timezone.utc)
            else:
                stamp = None
            if len(self._stamps) < 100_000:
                self._stamps[stored] = stamp
        return stamp

    def _stored_wide(self, keys: list[bytes]) -> tuple[dict[str, list[Any]], list[bool], list[datetime | None]]:
        """`_stored` over the wide layout: one row per entity and view, typed columns. Column by
        column: the fetched rows are transposed once and put in request order by one
        itemgetter per column (a Python loop per value was ~1 ms of a 500-customer read)."""
        n = len(keys)
        position = {key: i for i, key in enumerate(keys)}
        found: list[bool] = [False] * n
        event_at: list[datetime | None] = [None] * n
        columns: dict[str, list[Any]] = {}
        placeholders = "(" + ",".join("?" * n) + ")"
        first = True  # no view has returned rows yet
        for view, select, converters in self._tables:
            names = tuple(view.features)
            with self._lock:
                rows = self._con.execute(select + placeholders, keys).fetchall() if keys else []
            if not rows:
                columns.update((name, [None] * n) for name in names)
                continue
            fetched, stamps, *values = zip(*rows)
            # request position -> fetched row; an entity the view lacks points at a None appended below
            missing = len(rows)
            order = [missing] * n
            for j, key in enumerate(fetched):
                order[position[key]] = j
            pick = _picker(order)
            times = {stamp: self._event_micros(stamp) for stamp in set(stamps)}  # a few snapshot times
            view_at = pick((*map(times.__getitem__, stamps), None))
            if first:  # the first view holding rows: its event times and presence as they are
                event_at, found, first = view_at, [j != missing for j in order], False
            else:  # the oldest over views (the entity's staleness), present in any of them
                event_at = [_older(a, b) for a, b in zip(event_at, view_at)]
                found = [f or j != missing for f, j in zip(found, order)]
            for name, convert, column in zip(names, converters, values):
                if convert is not None:
                    column = [None if v is None else convert(v) for v in column]
                columns[name] = pick((*column, None))
        return columns, found, event_at

    def _event_micros(self, stored: int | None) -> datetime | None:
        """A wide row's event_ts (epoch microseconds) as a UTC datetime; cached, as snapshot times repeat."""
        stamp = self._stamps.get(stored, self)
        if stamp is self:
            stamp = None if stored is None else _EPOCH + timedelta(microseconds=stored)
            if len(self._stamps) < 100_000:
                self._stamps[stored] = stamp
        return stamp

    def _stored(self, keys: list[bytes]) -> tuple[dict[str, list[Any]], list[bool], list[datetime | None]]:
        """The stored features of distinct entity keys, by feature name, which keys exist and the
        event time of each key's row (the oldest over views)."""
        if self._wide:
            return self._stored_wide(keys)
        position = {key: i for i, key in enumerate(keys)}
        found = [False] * len(keys)
        event_at: list[datetime | None] = [None] * len(keys)
        columns: dict[str, list[Any]] = {}
        cache = self._cache
        placeholders = "(" + ",".join("?" * len(keys)) + ")"
        for view, select, names in self._tables:
            view_columns = {name: [None] * len(keys) for name in view.features}
            with self._lock:
                rows = self._con.execute(select + placeholders, keys).fetchall() if keys else []
            seen: dict[int, Any] = {}
            for key, name, blob, stamp in rows:
                i = position[key]
                found[i] = True
                # the oldest event time of the entity's features in this view: a materialized row
                # has one, but pushed fresh features (parity.features.fresh) are newer than the
                # snapshot's others, whose age is what staleness judges
                prev = seen.get(i)
                if prev is None or (stamp != prev and (self._event_time(stamp) or _MAX) < (self._event_time(prev) or _MAX)):
                    seen[i] = stamp
                if name not in names:
                    continue
                value = cache.get(blob, cache)
                if value is cache:
                    value = self._decode(blob)
                    if len(cache) < 200_000:
                        cache[blob] = value
                view_columns[name][i] = value
            for i, stamp in seen.items():
                event_at[i] = _older(event_at[i], self._event_time(stamp))
            columns.update(view_columns)
        return columns, found, event_at

    def read_columns(self, customer_ids: Sequence[str], request_at: datetime | Sequence[datetime]) -> dict[str, list[Any]]:
        """As `OnlineReader.read_columns`: python lists by feature name, plus `__found__` and
        `__event_at__`."""
        keys = [self.entity_key(cid) for cid in customer_ids]
        distinct = list(dict.fromkeys(keys))
        columns, found, event_at = self._stored(distinct)
        if len(distinct) < len(keys):  # a repeated customer gets its row once per occurrence
            where = {key: i for i, key in enumerate(distinct)}
            rows = [where[key] for key in keys]
            columns = {name: [values[i] for i in rows] for name, values in columns.items()}
            found = [found[i] for i in rows]
            event_at = [event_at[i] for i in rows]
        return _with_on_demand(columns, found, event_at, request_at, self._transforms)


    def file_replaced(self) -> bool:
        """True when the store file was re-created since this reader opened it (e.g. `make apply`
        after a delete): the open connection still reads the old, deleted file."""
        try:
            return os.stat(self.db_path).st_ino != self._inode
        except OSError:
            return False

    def health(self) -> str | None:
        """Why the online store cannot answer for the service (None: it can): its file was
        deleted, or none of the service's view tables holds a row."""
        if not self.db_path.exists():
            return f"online store {self.db_path} was deleted: run `make apply` and `make materialize`"
        with self._lock:
            try:
                filled = [self._con.execute(f'SELECT EXISTS (SELECT 1 FROM "{view.table.replace(chr(34), chr(34) * 2)}")')
                          .fetchone()[0] for view in self._views]
            except sqlite3.Error as err:
                return f"online store {self.db_path} unreadable: {err}"
        if not any(filled):
            return (f"online store {self.db_path} holds no feature rows for '{self.service_name}': "
                    "run `make materialize`")
        return None

    def close(self) -> None:
        self._con.close()


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _wide_select(view: Any) -> str:
    """The wide table's SELECT of a view's features (entity keys appended as an IN list)."""
    columns = ", ".join(_quote(view.columns[f]) for f in view.features)
    return f"SELECT entity_key, event_ts{', ' if columns else ''}{columns} FROM {_quote(view.table)} WHERE entity_key IN "


def _picker(order: list[int]) -> Any:
    """A function from a sequence to the list of its items at `order`, in C (itemgetter)."""
    if len(order) == 1:
        index = order[0]
        return lambda values: [values[index]]
    get = operator.itemgetter(*order)
    return lambda values: list(get(values))


def _timestamp(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _wide_converters(view: Any) -> list[Any]:
    """Per feature, the function from the stored value to `OnlineReader._decode`'s (None: as stored)."""
    if not view.columns or set(view.columns) != set(view.features):
        raise ValueError(f"view '{view.name}': the serving manifest lists no wide columns: run `make apply`")
    return [bool if kind == "BOOL" else _timestamp if kind == "UNIX_TIMESTAMP" else None
            for kind in view.features.values()]


def open_reader(settings: Any, service_name: str) -> Any:
    """The direct SQLite reader when the serving manifest allows it, else Feast's `OnlineReader`
    (its `fallback_reason` says why: no manifest, stale manifest, non-SQLite store...)."""
    from parity.features.feature_store import open_store, require_applied, store_config
    from parity.features.online_manifest import ManifestError, load_manifest, service_plan

    require_applied(settings)
    try:
        config = store_config(settings)  # the profile's Feast config, ${VARS} resolved
        manifest = load_manifest(settings.feast_dir, settings.feature_store_yaml, (config.get("registry") or {}).get("path"))
        plan = service_plan(manifest, service_name)
        if plan.store_kind == "redis":  # the scale profile's store: parity.features.online_redis
            from parity.features.online_redis import RedisReader

            return RedisReader(plan, config.get("online_store") or {})
        return SqliteReader(plan)
    except (ManifestError, ValueError) as err:
        reason = str(err)
    log.warning("reading online features through Feast (slower start): %s", reason)
    reader = OnlineReader(open_store(settings), service_name)
    reader.fallback_reason = reason
    return reader


def _with_on_demand(columns: dict[str, list[Any]], found: list[bool], event_at: list[datetime | None],
                    request_at: datetime | Sequence[datetime], transforms: Sequence[Any]) -> dict[str, list[Any]]:
    """Stored columns + request_at + `__found__` + `__event_at__` + each on-demand view's outputs
    (its registered function on its input lists): the `read_columns` result of both readers."""
    count = len(found)
    columns[REQUEST_TIME] = [request_at] * count if isinstance(request_at, datetime) else list(request_at)
    columns[FOUND] = found
    columns[EVENT_AT] = event_at
    for transform in transforms:
        out = transform.udf({name: columns[name] for name in transform.inputs})
        columns.update({name: out[name] for name in transform.outputs})
    return columns
