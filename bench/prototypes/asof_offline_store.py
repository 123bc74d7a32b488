"""PROTOTYPE (evidence for a product proposal, not product code): Feast's DuckDB offline store
with point-in-time retrieval planned as one DuckDB ASOF LEFT JOIN per feature view instead of
Feast's ibis plan (hash of the entity row, inner join on key + ts <= t + ttl >= t, window
row_number, left join back).

Select it in feature_store.yaml:

    offline_store:
      type: bench.prototypes.asof_offline_store.AsofDuckDBOfflineStore

Scope: Parquet FileSources, event-timestamp semantics of Feast (newest row with ts <= t, dropped
when ts + ttl < t), no created_timestamp tie-break, no field mapping; anything else falls back to
the stock DuckDB store. On-demand feature views run exactly as before (RetrievalJob.to_arrow
applies them to the joined table), so python-mode UDFs see the same inputs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa
from feast.data_format import ParquetFormat
from feast.feature_view import FeatureView
from feast.infra.offline_stores.duckdb import DuckDBOfflineStore, DuckDBOfflineStoreConfig
from feast.infra.offline_stores.file_source import FileSource
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.repo_config import RepoConfig
from pydantic import StrictStr


class AsofDuckDBOfflineStoreConfig(DuckDBOfflineStoreConfig):
    type: StrictStr = "bench.prototypes.asof_offline_store.AsofDuckDBOfflineStore"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _supported(view: FeatureView) -> bool:
    source = view.batch_source
    return (isinstance(source, FileSource) and isinstance(source.file_format, ParquetFormat)
            and not source.created_timestamp_column and not source.field_mapping
            and not getattr(view.projection, "join_key_map", None))


class AsofRetrievalJob(RetrievalJob):
    """One SQL statement over the registered entity table; Arrow out in entity-frame order."""

    def __init__(self, sql: str, entities: pa.Table, odfvs: list[OnDemandFeatureView],
                 metadata: RetrievalMetadata, full_feature_names: bool):
        self._sql, self._entities, self._odfvs = sql, entities, odfvs
        self._metadata, self._full = metadata, full_feature_names

    @property
    def full_feature_names(self) -> bool:
        return self._full

    @property
    def on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        return self._odfvs

    @property
    def metadata(self) -> RetrievalMetadata | None:
        return self._metadata

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        import duckdb

        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        # without this DuckDB plans a nested-loop join for a registered Arrow table it cannot size
        try:
            con.execute("SET asof_loop_join_threshold = 0")
        except duckdb.Error:  # older DuckDB: no loop-join fallback to switch off
            pass
        con.register("__entities", self._entities)
        result = con.execute(self._sql)
        table = result.to_arrow_table() if hasattr(result, "to_arrow_table") else result.fetch_arrow_table()
        return table.drop_columns(["__asof_row"])

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return self._to_arrow_internal(timeout).to_pandas()

    def persist(self, storage: Any, allow_overwrite: bool = False, timeout: int | None = None) -> None:
        raise NotImplementedError("prototype: persist is not implemented")


class AsofDuckDBOfflineStore(DuckDBOfflineStore):
    """DuckDBOfflineStore with an ASOF JOIN plan for get_historical_features."""

    @staticmethod
    def get_historical_features(
        config: RepoConfig,
        feature_views: list[FeatureView],
        feature_refs: list[str],
        entity_df: pd.DataFrame | str,
        registry: Any,
        project: str,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
    ) -> RetrievalJob:
        if (not isinstance(entity_df, pd.DataFrame) or full_feature_names or filter_by_created_timestamp
                or "event_timestamp" not in entity_df.columns
                or not all(_supported(v) for v in feature_views)):
            return DuckDBOfflineStore.get_historical_features(
                config, feature_views, feature_refs, entity_df, registry, project,
                full_feature_names, filter_by_created_timestamp)
        frame = entity_df.copy()
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
        entities = pa.Table.from_pandas(frame, preserve_index=False)
        entities = entities.set_column(
            entities.schema.get_field_index("event_timestamp"), "event_timestamp",
            entities.column("event_timestamp").cast(pa.timestamp("us", tz="UTC")))
        entities = entities.append_column("__asof_row", pa.array(range(len(frame)), pa.int64()))

        select = ["e.*"]
        joins = []
        for i, view in enumerate(feature_views):
            alias = f"f{i}"
            prefix = f"{view.projection.name_to_use()}:"
            names = [ref.split(":", 1)[1] for ref in feature_refs if ref.startswith(prefix)]
            ts = _quote(view.batch_source.timestamp_field)
            keys = [c.name for c in view.entity_columns]
            conditions = [f"e.{_quote(k)} = {alias}.{_quote(k)}" for k in keys]
            conditions.append(f"e.event_timestamp >= {alias}.{ts}")
            if view.ttl and view.ttl.total_seconds() > 0:
                micros = int(view.ttl.total_seconds() * 1_000_000)
                fresh = f"epoch_us({alias}.{ts}) + {micros} >= epoch_us(e.event_timestamp)"
                select += [f"CASE WHEN {fresh} THEN {alias}.{_quote(n)} END AS {_quote(n)}" for n in names]
            else:
                select += [f"{alias}.{_quote(n)} AS {_quote(n)}" for n in names]
            path = view.batch_source.path.replace("'", "''")
            columns = ", ".join(_quote(c) for c in [*keys, view.batch_source.timestamp_field, *names])
            joins.append(f"ASOF LEFT JOIN (SELECT {columns} FROM read_parquet('{path}')) {alias} "
                         f"ON {' AND '.join(conditions)}")
        sql = f"SELECT {', '.join(select)} FROM __entities e {' '.join(joins)} ORDER BY e.__asof_row"
        odfvs = OnDemandFeatureView.get_requested_odfvs(feature_refs, project, registry)
        stamps = frame["event_timestamp"]
        metadata = RetrievalMetadata(
            features=feature_refs,
            keys=[c for c in frame.columns if c != "event_timestamp"],
            min_event_timestamp=stamps.min().to_pydatetime() if len(frame) else None,
            max_event_timestamp=stamps.max().to_pydatetime() if len(frame) else None,
        )
        return AsofRetrievalJob(sql, entities, odfvs, metadata, full_feature_names)


__all__ = ["AsofDuckDBOfflineStore", "AsofDuckDBOfflineStoreConfig", "datetime"]
