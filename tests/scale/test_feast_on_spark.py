"""The scale profile's Feast side on real engines (issue 16): Feast's Spark offline store, Redis
online store and PostgreSQL SQL registry over the same marts as the embedded default — the `scale`
group (`pytest -m scale`: Java, redis-server, PostgreSQL).

One Spark session in this process (Feast's), one Redis and one PostgreSQL from parity.services
(stopped by PID). The marts are the session's DuckDB build (`built_data`): what is under test here
is Feast on Spark/Redis/PostgreSQL against Feast on DuckDB/SQLite over the same data; dbt on
Spark against dbt on DuckDB is tests/scale/test_dbt_on_spark.py.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parity import services
from parity.config import Settings
from parity.features.feature_store import apply, materialize, materialized_until, open_store
from parity.features.online import open_reader
from parity.features.online_redis import RedisReader
from parity.features.parity_check import run_parity
from parity.features.retrieval import training_frame
from tests.training.conftest import keep_data_dir_env

pytestmark = [pytest.mark.scale, pytest.mark.data, pytest.mark.timeout(1800)]  # setup pays the Spark build
SERVICE = "churn_v1"
UNKNOWN = ["acme:NOPE", "nobody:1"]


@pytest.fixture(scope="module")
def scale_data(built_data: Settings) -> Iterator[Settings]:
    """`built_data`'s marts applied and materialized with the scale profile's Feast config."""
    root = Path(tempfile.mkdtemp(prefix="parity-scale-"))
    root.chmod(0o755)  # PostgreSQL runs as its own user when we are root
    data = root / "data"
    try:
        services.up(data / "services")  # where the profile's settings find the ports
        (data / "published").symlink_to(built_data.published_dir.resolve())
        settings = dataclasses.replace(built_data, data_dir=data, profile="scale", dbt_target="spark", feast_config="")
        with keep_data_dir_env():
            apply(settings)
            materialize(settings)
        yield settings
    finally:
        services.down(data / "services")
        shutil.rmtree(root, ignore_errors=True)


def test_make_parity_passes_on_spark_redis_and_postgresql(scale_data):
    with keep_data_dir_env():
        report = run_parity(scale_data, sample_times=3)
    assert report.ok, report.summary()
    assert report.values_compared > 1000 and report.historical_values_compared > 0


def test_spark_point_in_time_equals_duckdb_for_the_same_marts(scale_data, feature_data):
    marts = pd.read_parquet(feature_data.marts_dir / "customer_features_weekly.parquet",
                            columns=["customer_id", "snapshot_at"])
    rng = np.random.default_rng(16)
    picked = marts.iloc[rng.choice(len(marts), size=min(400, len(marts)), replace=False)]
    # times on, between and after snapshots; unknown customers too
    offsets = pd.to_timedelta(rng.integers(0, 20 * 24 * 3600, size=len(picked)), unit="s")
    entities = pd.DataFrame({"customer_id": list(picked["customer_id"]) + UNKNOWN,
                             "event_timestamp": list(picked["snapshot_at"] + offsets) + [marts["snapshot_at"].max()] * 2})
    with keep_data_dir_env():
        spark = training_frame(open_store(scale_data), entities, SERVICE)
        duckdb = training_frame(open_store(feature_data), entities, SERVICE)
    pd.testing.assert_frame_equal(spark, duckdb)
    assert spark.drop(columns=["customer_id", "event_timestamp"]).notna().any(axis=None)
    assert spark["birth_year"].dtype == "Int64"  # not double (Feast's own pandas conversion)


def test_serving_reads_redis_directly_and_tells_unknown_customers_apart(scale_data, feature_data):
    reader = open_reader(scale_data, SERVICE)
    assert isinstance(reader, RedisReader), getattr(reader, "fallback_reason", None)
    assert reader.health() is None
    known = pd.read_parquet(feature_data.marts_dir / "customer_features_weekly.parquet",
                            columns=["customer_id"])["customer_id"].drop_duplicates().head(50).tolist()
    ids = known + UNKNOWN
    at = materialized_until(scale_data)
    redis = reader.read_columns(ids, at)
    sqlite = open_reader(feature_data, SERVICE).read_columns(ids, at)
    assert redis["__found__"][-2:] == [False, False]
    for name in sqlite:
        assert redis[name] == sqlite[name], name
