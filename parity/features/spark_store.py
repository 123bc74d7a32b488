"""Feast's Spark offline store with an Arrow result that keeps the declared types.

Feast's `SparkRetrievalJob.to_arrow()` goes through pandas (`toPandas()` then
`Table.from_pandas`): a nullable bigint column with a null becomes float64, so a point-in-time
`birth_year` came back as 1964.0 where the online store says 1964 and `make parity` failed on
every row (issue 16). `ArrowSparkOfflineStore` is Feast's store whose jobs convert with Spark's
own `DataFrame.toArrow()` (pyspark >= 4): Spark's types map to Arrow directly (bigint -> int64 with
nulls, timestamp -> timestamp[us, tz=<session time zone>]). Everything else — the point-in-time
SQL, pulls, staging — is Feast's.

    offline_store:
      type: parity.features.spark_store.ArrowSparkOfflineStore
"""

from __future__ import annotations

import warnings
from typing import Any

import pyarrow as pa
from feast.infra.offline_stores.contrib.spark_offline_store.spark import (
    SparkOfflineStore,
    SparkOfflineStoreConfig,
    SparkRetrievalJob,
)
from feast.infra.offline_stores.offline_store import RetrievalJob
from pydantic import StrictStr

ARROW_SPARK_TYPE = "parity.features.spark_store.ArrowSparkOfflineStore"
# Feast warns "experimental" at every SparkSource it builds (each registry read): said once in the
# README ("Scale-out profile") instead of on every command
warnings.filterwarnings("ignore", message="The spark (offline store|data source API) is an experimental",
                        category=RuntimeWarning)


class ArrowSparkOfflineStoreConfig(SparkOfflineStoreConfig):
    """SparkOfflineStoreConfig under the platform's store type (Feast finds it by class name)."""

    type: StrictStr = ARROW_SPARK_TYPE


class ArrowSparkRetrievalJob(SparkRetrievalJob):
    """A SparkRetrievalJob whose Arrow result is Spark's own conversion (no pandas round trip)."""

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        if self._should_use_staging_for_arrow():
            return self._to_arrow_via_staging()
        return self.to_spark_df().toArrow()


class ArrowSparkOfflineStore(SparkOfflineStore):
    """SparkOfflineStore whose historical retrieval returns an `ArrowSparkRetrievalJob`."""

    @staticmethod
    def get_historical_features(config: Any, feature_views: list[Any], feature_refs: list[str], entity_df: Any,
                                registry: Any, project: str, full_feature_names: bool = False,
                                **kwargs: Any) -> RetrievalJob:
        """Feast's Spark point-in-time join, returned as an ArrowSparkRetrievalJob."""
        job = SparkOfflineStore.get_historical_features(config, feature_views, feature_refs, entity_df, registry,
                                                        project, full_feature_names, **kwargs)
        return ArrowSparkRetrievalJob(spark_session=job.spark_session, query=job.query,
                                      full_feature_names=job.full_feature_names, config=job._config,
                                      on_demand_feature_views=job.on_demand_feature_views, metadata=job.metadata)
