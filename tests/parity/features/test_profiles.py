"""Feast glue by profile: the source class from the profile's offline store, Spark's type names,
Parquet part folders, and the profile's ${VARS} resolved without leaking between data folders."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from feast import FileSource
from feast.types import Int64, UnixTimestamp

from parity.config import load_settings
from parity.features.feast_definitions import (
    DefinitionError,
    check_parquet_schema,
    derive_feature_views,
    mart_specs,
)
from parity.features.feature_store import feast_environment, store_config
from tests.parity.features.test_feast_definitions import CUSTOMER, _feature, _manifest


def test_the_offline_store_type_chooses_the_source_class():
    manifest = _manifest(_feature("n", "bigint"))
    embedded = derive_feature_views(manifest, [CUSTOMER], "parity.features.stores.AsofDuckDBOfflineStore")
    assert type(embedded["activity"].batch_source) is FileSource
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

    spark = derive_feature_views(manifest, [CUSTOMER], "parity.features.spark_store.ArrowSparkOfflineStore")
    source = spark["activity"].batch_source
    assert isinstance(source, SparkSource) and source.path == "/tmp/mart.parquet" and source.file_format == "parquet"
    assert source.timestamp_field == "snapshot_at"


def test_spark_type_names_read_by_the_engine_that_built_the_marts():
    manifest = _manifest({**_feature("seen_at", "timestamp"), **_feature("n", "bigint")})
    manifest["nodes"]["model.parity.mart"]["columns"]["snapshot_at"]["data_type"] = "timestamp"
    manifest["metadata"] = {"adapter_type": "spark"}
    features = {f.name: f.feast_type for f in mart_specs(manifest)[0].features}
    assert features == {"seen_at": UnixTimestamp, "n": Int64}
    manifest["metadata"] = {"adapter_type": "duckdb"}  # DuckDB's `timestamp` is naive: refused
    with pytest.raises(DefinitionError, match="seen_at: dbt data_type 'timestamp' is not allowed"):
        mart_specs(manifest)
    manifest = _manifest(_feature("local", "timestamp_ntz"))
    manifest["metadata"] = {"adapter_type": "spark"}
    with pytest.raises(DefinitionError, match="timestamp_ntz.*naive"):
        mart_specs(manifest)


def test_a_spark_part_folder_is_checked_like_a_file(tmp_path: Path):
    folder = tmp_path / "mart.parquet"  # Spark's external materialization: parts at the path
    folder.mkdir()
    table = pa.table({"customer_id": ["a"], "snapshot_at": pa.array([0], pa.timestamp("us", tz="UTC")),
                      "n": pa.array([1.0])})
    pq.write_table(table, folder / "part-00000.parquet")
    (folder / "_SUCCESS").write_text("")
    manifest = _manifest(_feature("n", "bigint"))
    manifest["nodes"]["model.parity.mart"]["config"]["location"] = str(folder)
    problems = check_parquet_schema(mart_specs(manifest)[0])
    assert problems == ["mart.n: Parquet type double but Feast reads it as int64 (declared in dbt); "
                        "offline and online values would differ"]


def test_the_scale_config_resolves_from_the_services_and_never_leaks(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PARITY_PROFILE", "scale")
    for name in ("PARITY_REDIS_CONNECTION", "PARITY_REGISTRY_URL", "PARITY_SPARK_MASTER"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "services.json").write_text('{"redis": {"port": 7101}, "postgres": {"port": 7102}}')
    settings = load_settings(tmp_path)
    config = store_config(settings)
    assert config["online_store"] == {"type": "redis", "connection_string": "127.0.0.1:7101"}
    assert config["registry"]["path"] == "postgresql+psycopg://parity@127.0.0.1:7102/parity"
    assert config["offline_store"]["spark_conf"]["spark.master"] == "local[2]"
    assert "${" not in str(config)
    with feast_environment(settings):
        assert os.environ["PARITY_REDIS_CONNECTION"] == "127.0.0.1:7101"
    assert "PARITY_REDIS_CONNECTION" not in os.environ  # another data folder resolves its own


def test_the_scale_profile_names_the_fix_when_its_services_are_down(tmp_path: Path, monkeypatch):
    import socket

    from parity.features.feature_store import FeatureStoreError, require_services

    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("PARITY_PROFILE", "scale")
    for name in ("PARITY_REDIS_CONNECTION", "PARITY_REGISTRY_URL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "services.json").write_text(
        f'{{"redis": {{"port": {closed}}}, "postgres": {{"port": {closed}}}}}')
    with pytest.raises(FeatureStoreError, match=f"SQL registry at 127.0.0.1:{closed}/parity does not answer.*make services-up"):
        require_services(load_settings(tmp_path))
    monkeypatch.setenv("PARITY_REGISTRY_URL", "sqlite:///" + str(tmp_path / "registry.db"))
    with pytest.raises(FeatureStoreError, match=f"Redis online store at 127.0.0.1:{closed} does not answer.*make services-up"):
        require_services(load_settings(tmp_path))
    monkeypatch.delenv("PARITY_PROFILE")
    require_services(load_settings(tmp_path))  # the embedded profile needs no service
