"""Feast online store plug-ins of the platform (configured by import path in feature_store.yaml).

`BulkSqliteOnlineStore` is Feast's SQLite online store with a faster materialization write: one
`executemany` of Feast's own upsert per batch instead of one `execute` per (entity, feature).
Same tables, same rows, same bytes (entity key, ValueProto, value_text, event_ts, created_ts), so
everything that reads the SQLite file (Feast, parity.online, serving) is unaffected. Reads, table
creation and teardown are Feast's.

    online_store:
      type: parity.stores.BulkSqliteOnlineStore
      path: ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Literal

from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import extract_text_and_num
from feast.infra.online_stores.sqlite import (
    SqliteOnlineStore,
    SqliteOnlineStoreConfig,
    _quote_id,
    _table_id,
)
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.utils import to_naive_utc

BULK_SQLITE_TYPE = "parity.stores.BulkSqliteOnlineStore"
COLUMNS = ("entity_key", "feature_name", "value", "value_text", "event_ts", "created_ts")

Row = tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]


class BulkSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """SqliteOnlineStoreConfig under the platform's store type (Feast finds it by class name)."""

    type: Literal["parity.stores.BulkSqliteOnlineStore"] = BULK_SQLITE_TYPE  # type: ignore[assignment]


def upsert_sql(table_name: str) -> str:
    """Feast's SQLite upsert statement for the plain columns (no value_num, no vectors)."""
    update = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[2:])
    return (f"INSERT INTO {_quote_id(table_name)} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
            f"ON CONFLICT(entity_key, feature_name) DO UPDATE SET {update};")


def sqlite_rows(data: list[Row], entity_key_serialization_version: int) -> Iterator[tuple[Any, ...]]:
    """The rows Feast's SqliteOnlineStore.online_write_batch writes, in its order and bytes."""
    for entity_key, values, timestamp, created_ts in data:
        key = serialize_entity_key(entity_key, entity_key_serialization_version=entity_key_serialization_version)
        event_ts = to_naive_utc(timestamp)
        created = None if created_ts is None else to_naive_utc(created_ts)
        for feature_name, value in values.items():
            text = extract_text_and_num(value, False)[0]
            yield key, feature_name, value.SerializeToString(), text, event_ts, created


class BulkSqliteOnlineStore(SqliteOnlineStore):
    """SqliteOnlineStore whose online_write_batch is one executemany in one transaction."""

    def online_write_batch(
        self,
        config: Any,
        table: Any,
        data: list[Row],
        progress: Callable[[int], Any] | None,
    ) -> None:
        """Upsert a materialization batch; Feast's own (row by row) write for vector/value_num tables."""
        store = config.online_store
        if store.vector_enabled or getattr(store, "enable_openai_compatible_store", False):
            return super().online_write_batch(config, table, data, progress)
        conn = self._get_conn(config)
        name = _table_id(config.project, table, config.registry.enable_online_feature_view_versioning)
        with conn:
            conn.executemany(upsert_sql(name), sqlite_rows(data, config.entity_key_serialization_version))
        if progress:
            progress(len(data))
        return None
