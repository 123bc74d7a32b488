"""The serving manifest and the Feast-free SQLite reader: identical values, exact entity keys,
stale or missing manifests handled (fallback to Feast's provider, with the reason)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import timedelta

import pandas as pd
import pytest

from parity.config import load_settings
from parity.features.feature_store import materialized_until, open_store
from parity.features.online import OnlineReader, SqliteReader, open_reader
from parity.features.online_manifest import (
    ManifestError,
    definitions_fingerprint,
    entity_key_bytes,
    load_manifest,
    manifest_path,
    service_plan,
)
from parity.features.online_redis import RedisReader
from parity.features.retrieval import online_frame
from tests.training.conftest import keep_data_dir_env

pytestmark = pytest.mark.data
SERVICE = "churn_v1"
UNKNOWN = ["acme:AC-999999", "nobody:1", "cora:CR-99999"]
TABLE = "parity_customer_activity__wide"  # the product's wide online store (parity.features.wide_store)


def _online_ids(settings) -> list[str]:
    """Every customer in the online store (decoded from Feast's own entity keys, SQLite or Redis)."""
    from feast.infra.key_encoding_utils import deserialize_entity_key

    from parity.features.feature_store import store_config
    from parity.features.online_redis import connect

    online = store_config(settings)["online_store"]
    if online["type"] == "redis":
        project = b"parity"
        keys = [k[:-len(project)] for k in connect(online).scan_iter(match=b"*" + project, count=5000)]
    else:
        with sqlite3.connect(settings.feast_dir / "online_store.db") as con:
            keys = [k for (k,) in con.execute(f'select distinct entity_key from "{TABLE}"')]
    return sorted(deserialize_entity_key(k, 3).entity_values[0].string_val for k in keys)


def _direct(settings) -> SqliteReader | RedisReader:
    reader = open_reader(settings, SERVICE)
    assert isinstance(reader, (SqliteReader, RedisReader)), getattr(reader, "fallback_reason", None)
    return reader


@pytest.fixture(params=["sqlite", "redis"])
def store_data(request):
    """The materialized store of each online store kind: the same reader tests run on both."""
    settings = request.getfixturevalue("feature_data" if request.param == "sqlite" else "redis_feature_data")
    assert _direct(settings).kind == request.param
    return settings


def _same(a, b) -> bool:
    return type(a) is type(b) and (a == b or (a != a and b != b))


def test_apply_writes_a_fresh_manifest_naming_the_sqlite_tables(feature_data):
    manifest = load_manifest(feature_data.feast_dir, feature_data.feature_repo_dir / "feature_store.yaml")
    assert manifest["online_store"]["direct_read"] is True
    entry = manifest["feature_services"][SERVICE]
    assert manifest["online_store"]["layout"] == "wide"
    assert [v["table"] for v in entry["views"]] == [TABLE]
    assert all(c == f"{f}:{t}" for v in entry["views"] for f, c in v["columns"].items() for t in [v["features"][f]])
    assert entry["on_demand"][0]["name"] == "request_recency" and "def request_recency" in entry["on_demand"][0]["udf_source"]
    assert not entry["problems"]


def test_direct_reader_equals_online_reader_for_every_entity_values_and_types(store_data):
    ids = _online_ids(store_data) + UNKNOWN
    as_of = materialized_until(store_data)
    times = [as_of + timedelta(days=i % 9, hours=i % 5) for i in range(len(ids))]  # per-row request times
    direct = _direct(store_data).read_columns(ids, times)
    with keep_data_dir_env():
        lean = OnlineReader(open_store(store_data), SERVICE).read_columns(ids, times)
    assert list(direct) == list(lean)
    mismatches = [(name, ids[i], direct[name][i], lean[name][i])
                  for name in lean for i in range(len(ids)) if not _same(direct[name][i], lean[name][i])]
    assert not mismatches, mismatches[:5]
    assert direct["__found__"][-len(UNKNOWN):] == [False] * len(UNKNOWN)
    assert all(direct["__found__"][:-len(UNKNOWN)])
    # every known entity's row time is read (and equal to Feast's, above); unknown ones have none
    assert all(t is not None and t.tzinfo is not None for t in direct["__event_at__"][:-len(UNKNOWN)])
    assert direct["__event_at__"][-len(UNKNOWN):] == [None] * len(UNKNOWN)
    # the comparison covered missing values of known customers, not only unknown ones
    known = len(ids) - len(UNKNOWN)
    assert any(value is None for name in lean if name != "__found__" for value in lean[name][:known])


def test_direct_reader_frame_equals_feast_sdk_online_frame(store_data):
    ids = _online_ids(store_data) + UNKNOWN
    as_of = materialized_until(store_data)
    with keep_data_dir_env():
        sdk = online_frame(open_store(store_data), ids, SERVICE, request_at=as_of)
    frame = _direct(store_data).read(ids, as_of)
    pd.testing.assert_frame_equal(frame, sdk)
    assert frame.iloc[-1].drop(["customer_id", "event_timestamp"]).isna().all()


@pytest.mark.parametrize("customer_id", ["acme:AC-000001", "bolt:b-00042", "", "cora:ÄÖü-7 ", "x" * 300])
def test_entity_key_bytes_equal_feast_serialize_entity_key(customer_id):
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    feast_key = serialize_entity_key(
        EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=customer_id)]), 3)
    assert entity_key_bytes("customer_id", customer_id) == feast_key
    int_key = serialize_entity_key(EntityKey(join_keys=["n"], entity_values=[Value(int64_val=-42)]), 3)
    assert entity_key_bytes("n", -42, "INT64") == int_key


def test_definitions_fingerprint_ignores_metadata_and_map_order_but_not_definitions(feature_data):
    from feast.protos.feast.core.Registry_pb2 import Registry

    data = (feature_data.feast_dir / "registry.db").read_bytes()
    base = definitions_fingerprint(data)
    registry = Registry()
    registry.ParseFromString(data)

    touched = Registry()
    touched.CopyFrom(registry)
    touched.feature_views[0].meta.last_updated_timestamp.seconds += 3600  # what materialize rewrites
    tags = dict(touched.feature_views[0].spec.tags)
    touched.feature_views[0].spec.tags.clear()
    for key in reversed(list(tags)):  # same map, other insertion (and so serialization) order
        touched.feature_views[0].spec.tags[key] = tags[key]
    assert len(tags) > 1
    assert definitions_fingerprint(touched.SerializeToString()) == base

    renamed = Registry()
    renamed.CopyFrom(registry)
    renamed.feature_views[0].spec.features[0].name += "_v2"
    assert definitions_fingerprint(renamed.SerializeToString()) != base

    udf = Registry()
    udf.CopyFrom(registry)
    transformation = udf.on_demand_feature_views[0].spec.feature_transformation.user_defined_function
    transformation.body_text += "\n# edited"
    assert definitions_fingerprint(udf.SerializeToString()) != base


def _copied(feature_data, root):
    """A data folder with its own copy of the Feast folder (registry, online store, manifest)."""
    shutil.copytree(feature_data.feast_dir, root / "feast")
    return load_settings(root)


def test_copied_feast_folder_reads_its_own_online_store(feature_data, tmp_path):
    settings = _copied(feature_data, tmp_path)
    plan = service_plan(load_manifest(settings.feast_dir, settings.feature_repo_dir / "feature_store.yaml"), SERVICE)
    assert plan.db_path.resolve() == (tmp_path / "feast" / "online_store.db").resolve()


def test_missing_manifest_falls_back_to_feast_saying_what_to_run(feature_data, tmp_path):
    settings = _copied(feature_data, tmp_path)
    manifest_path(settings.feast_dir).unlink()
    with pytest.raises(ManifestError, match="make apply"):
        load_manifest(settings.feast_dir, settings.feature_repo_dir / "feature_store.yaml")
    with keep_data_dir_env():  # the Feast fallback points PARITY_DATA_DIR at the copy
        reader = open_reader(settings, SERVICE)
    assert isinstance(reader, OnlineReader) and "make apply" in reader.fallback_reason
    ids = _online_ids(feature_data)[:3]
    as_of = materialized_until(feature_data)
    pd.testing.assert_frame_equal(reader.read(ids, as_of), _direct(feature_data).read(ids, as_of))


def test_stale_manifest_falls_back_to_feast(feature_data, tmp_path):
    settings = _copied(feature_data, tmp_path)
    path = manifest_path(settings.feast_dir)
    manifest = json.loads(path.read_text())
    manifest["registry"]["definitions_sha256"] = "0" * 64  # as if the registry was applied since
    path.write_text(json.dumps(manifest))
    with keep_data_dir_env():
        reader = open_reader(settings, SERVICE)
    assert isinstance(reader, OnlineReader)
    assert "definitions changed" in reader.fallback_reason and "make apply" in reader.fallback_reason


def test_only_online_store_settings_in_feature_store_yaml_make_the_manifest_stale(feature_data, tmp_path):
    import yaml

    config = yaml.safe_load((feature_data.feature_repo_dir / "feature_store.yaml").read_text())
    offline = tmp_path / "offline.yaml"
    offline.write_text(yaml.safe_dump({**config, "offline_store": {"type": "some.OtherOfflineStore"}}))
    load_manifest(feature_data.feast_dir, offline)  # still fresh: serving never reads offline
    online = tmp_path / "online.yaml"
    online.write_text(yaml.safe_dump({**config, "online_store": {"type": "redis", "connection_string": "x:6379"}}))
    with pytest.raises(ManifestError, match="online store settings"):
        load_manifest(feature_data.feast_dir, online)


def test_unknown_service_in_manifest_names_the_known_ones(feature_data):
    manifest = load_manifest(feature_data.feast_dir, feature_data.feature_repo_dir / "feature_store.yaml")
    with pytest.raises(ManifestError, match="churn_v1"):
        service_plan(manifest, "churn_v9")
