"""PROTOTYPE (evidence for a product proposal, not product code): Feast's SQLite online store
writing a materialization batch with one executemany in one transaction instead of one
`conn.execute` per (entity, feature). Same rows, same bytes (entity key v3, ValueProto,
value_text, epoch event_ts); reads are untouched.

    online_store:
      type: bench.prototypes.bulk_sqlite.BulkSqliteOnlineStore
      path: ...
"""

from __future__ import annotations

from collections.abc import Callable
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


class BulkSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    type: Literal["bench.prototypes.bulk_sqlite.BulkSqliteOnlineStore"] = (  # type: ignore[assignment]
        "bench.prototypes.bulk_sqlite.BulkSqliteOnlineStore")


class BulkSqliteOnlineStore(SqliteOnlineStore):
    """SqliteOnlineStore whose online_write_batch is one executemany (plain scalar features only)."""

    def online_write_batch(
        self,
        config: Any,
        table: Any,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        if config.online_store.vector_enabled or getattr(config.online_store, "enable_openai_compatible_store", False):
            return super().online_write_batch(config, table, data, progress)
        conn = self._get_conn(config)
        name = _quote_id(_table_id(config.project, table, config.registry.enable_online_feature_view_versioning))
        columns = ["entity_key", "feature_name", "value", "value_text", "event_ts", "created_ts"]
        sql = (f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
               "ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
               + ", ".join(f"{c} = excluded.{c}" for c in columns[2:]) + ";")
        version = config.entity_key_serialization_version

        def rows():
            for entity_key, values, timestamp, created_ts in data:
                key = serialize_entity_key(entity_key, entity_key_serialization_version=version)
                timestamp = to_naive_utc(timestamp)
                created = None if created_ts is None else to_naive_utc(created_ts)
                for feature_name, val in values.items():
                    yield (key, feature_name, val.SerializeToString(), extract_text_and_num(val, False)[0],
                           timestamp, created)

        with conn:
            conn.executemany(sql, rows())
        if progress:
            progress(len(data))
