"""Feast online store plug-ins of the platform (configured by import path in feature_store.yaml).

`BulkSqliteOnlineStore` is Feast's SQLite online store with a faster materialization write: one
`executemany` of Feast's own upsert per batch instead of one `execute` per (entity, feature).
Same tables, same rows, same bytes (entity key, ValueProto, value_text, event_ts, created_ts), so
everything that reads the SQLite file (Feast, parity.features.online, serving) is unaffected. Reads, table
creation and teardown are Feast's.

    online_store:
      type: parity.features.stores.BulkSqliteOnlineStore
      path: ...

`AsofDuckDBOfflineStore` is Feast's DuckDB offline store whose point-in-time retrieval is one
DuckDB `ASOF LEFT JOIN` per feature view (newest row with timestamp <= t, dropped when older than
the view's TTL: Feast's semantics) instead of Feast's ibis plan (inner join on key and time window,
row_number window, join back), which grows faster than the ASOF join with the entity frame (1M
rows: ~1.6x the ASOF join's time). The result comes back in entity-frame order. Views it does not
cover (non-Parquet or remote sources, created-timestamp tie-breaks, field mappings, join-key
maps, full feature names) go to Feast's own plan; everything else (pull for materialization,
writes) is Feast's.

    offline_store:
      type: parity.features.stores.AsofDuckDBOfflineStore
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from feast.data_format import ParquetFormat
from feast.feature_view import FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.offline_stores.duckdb import DuckDBOfflineStore, DuckDBOfflineStoreConfig
from feast.infra.offline_stores.file_source import FileSource
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
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
from pydantic import StrictStr

BULK_SQLITE_TYPE = "parity.features.stores.BulkSqliteOnlineStore"
ASOF_DUCKDB_TYPE = "parity.features.stores.AsofDuckDBOfflineStore"
ENTITY_TIME = "event_timestamp"
_ROW = "__asof_row"
COLUMNS = ("entity_key", "feature_name", "value", "value_text", "event_ts", "created_ts")

Row = tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]


class BulkSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """SqliteOnlineStoreConfig under the platform's store type (Feast finds it by class name)."""

    type: Literal["parity.features.stores.BulkSqliteOnlineStore"] = BULK_SQLITE_TYPE  # type: ignore[assignment]


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


class AsofDuckDBOfflineStoreConfig(DuckDBOfflineStoreConfig):
    """DuckDBOfflineStoreConfig under the platform's store type (Feast finds it by class name)."""

    type: StrictStr = ASOF_DUCKDB_TYPE


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def asof_supported(view: FeatureView) -> bool:
    """Whether the ASOF plan gives exactly Feast's result for this view (else Feast's own plan)."""
    source = view.batch_source
    return (isinstance(source, FileSource) and isinstance(source.file_format, ParquetFormat)
            and "://" not in source.path and not source.created_timestamp_column
            and not source.field_mapping and not getattr(view.projection, "join_key_map", None))


def asof_sql(feature_views: list[FeatureView], feature_refs: list[str]) -> str:
    """One SELECT over the registered `__entities` table: an ASOF LEFT JOIN per view, the TTL as a
    CASE per feature (Feast: feature_ts >= entity_ts - ttl), in entity-frame order.

    Only the feature columns are selected: the entity columns are the entity table's own (the
    result is in its order), so DuckDB neither sorts nor converts them. Empty without features."""
    select: list[str] = []
    joins: list[str] = []
    for i, view in enumerate(feature_views):
        alias = f"f{i}"
        prefix = f"{view.projection.name_to_use()}:"
        names = [ref.split(":", 1)[1] for ref in feature_refs if ref.startswith(prefix)]
        ts = _quote(view.batch_source.timestamp_field)
        keys = [c.name for c in view.entity_columns]
        on = [f"e.{_quote(k)} = {alias}.{_quote(k)}" for k in keys] + [f"e.{ENTITY_TIME} >= {alias}.{ts}"]
        if view.ttl and view.ttl.total_seconds() > 0:
            micros = int(view.ttl.total_seconds() * 1_000_000)
            fresh = f"epoch_us({alias}.{ts}) + {micros} >= epoch_us(e.{ENTITY_TIME})"
            select += [f"CASE WHEN {fresh} THEN {alias}.{_quote(n)} END AS {_quote(n)}" for n in names]
        else:
            select += [f"{alias}.{_quote(n)} AS {_quote(n)}" for n in names]
        path = view.batch_source.path.replace("'", "''")
        columns = ", ".join(_quote(c) for c in dict.fromkeys([*keys, view.batch_source.timestamp_field, *names]))
        joins.append(f"ASOF LEFT JOIN (SELECT {columns} FROM read_parquet('{path}')) {alias} ON {' AND '.join(on)}")
    if not select:
        return ""  # no batch feature: nothing to join
    return f"SELECT {', '.join(select)} FROM __entities e {' '.join(joins)} ORDER BY e.{_ROW}"


def with_entity_columns(entities: pa.Table, features: pa.Table) -> pa.Table:
    """The entity columns followed by the feature columns (both in entity-frame order)."""
    if features.num_rows != entities.num_rows:
        raise ValueError(f"ASOF join returned {features.num_rows} rows for {entities.num_rows} entity rows")
    columns = [*entities.columns, *features.columns]
    return pa.Table.from_arrays(columns, names=[*entities.column_names, *features.column_names])


class AsofRetrievalJob(RetrievalJob):
    """The ASOF statement over the entity table; Arrow out in entity-frame order."""

    def __init__(self, sql: str, entities: pa.Table, odfvs: list[Any], metadata: RetrievalMetadata,
                 full_feature_names: bool):
        self._sql, self._entities, self._odfvs = sql, entities, odfvs
        self._metadata, self._full_feature_names = metadata, full_feature_names

    @property
    def full_feature_names(self) -> bool:
        return self._full_feature_names

    @property
    def on_demand_feature_views(self) -> list[Any]:
        return self._odfvs

    @property
    def metadata(self) -> RetrievalMetadata | None:
        return self._metadata

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        entities = self._entities.drop_columns([_ROW])
        if not self._sql:
            return entities
        return with_entity_columns(entities, self._features())

    def _features(self) -> pa.Table:
        """The feature columns of the ASOF statement, in entity-frame order."""
        import duckdb

        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            # DuckDB >= 1.1 may plan an ASOF join with an Arrow probe side it cannot size as a
            # nested-loop join (quadratic in practice): force the ASOF operator
            try:
                con.execute("SET asof_loop_join_threshold = 0")
            except duckdb.Error:
                pass
            con.register("__entities", self._entities)
            result = con.execute(self._sql)
            return result.to_arrow_table() if hasattr(result, "to_arrow_table") else result.fetch_arrow_table()
        finally:
            con.close()

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return self._to_arrow_internal(timeout).to_pandas()

    def persist(self, storage: Any, allow_overwrite: bool = False, timeout: int | None = None) -> None:
        raise NotImplementedError("AsofRetrievalJob cannot persist a saved dataset; use Feast's duckdb store")


class AsofDuckDBOfflineStore(DuckDBOfflineStore):
    """DuckDBOfflineStore whose get_historical_features is an ASOF JOIN where that is exact."""

    @staticmethod
    def get_historical_features(
        config: Any,
        feature_views: list[FeatureView],
        feature_refs: list[str],
        entity_df: pd.DataFrame | str,
        registry: Any,
        project: str,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
    ) -> RetrievalJob:
        """Point-in-time join of `entity_df` (with an `event_timestamp` column) to the views."""
        from feast.on_demand_feature_view import OnDemandFeatureView

        if (not isinstance(entity_df, pd.DataFrame) or full_feature_names or filter_by_created_timestamp
                or ENTITY_TIME not in entity_df.columns or _ROW in entity_df.columns
                or not all(asof_supported(v) for v in feature_views)):
            return DuckDBOfflineStore.get_historical_features(
                config, feature_views, feature_refs, entity_df, registry, project,
                full_feature_names, filter_by_created_timestamp)
        entities = pa.Table.from_pandas(entity_df, preserve_index=False)
        stamps = pd.to_datetime(entity_df[ENTITY_TIME], utc=True, cache=False)
        entities = entities.set_column(entities.schema.get_field_index(ENTITY_TIME), ENTITY_TIME,
                                       pa.array(stamps, pa.timestamp("us", tz="UTC")))
        entities = entities.append_column(_ROW, pa.array(np.arange(len(entity_df), dtype=np.int64)))
        metadata = RetrievalMetadata(
            features=feature_refs,
            keys=[c for c in entity_df.columns if c != ENTITY_TIME],
            min_event_timestamp=stamps.min().to_pydatetime() if len(stamps) else None,
            max_event_timestamp=stamps.max().to_pydatetime() if len(stamps) else None,
        )
        odfvs = OnDemandFeatureView.get_requested_odfvs(feature_refs, project, registry)
        return AsofRetrievalJob(asof_sql(feature_views, feature_refs), entities, odfvs, metadata, full_feature_names)
