"""parity.features.online_redis: Feast's Redis connection strings and hash fields, read as Feast does."""

from __future__ import annotations

import pytest

from parity.features.online_redis import field_key, parse_connection


def test_connection_strings_read_as_feasts_redis_store_reads_them():
    assert parse_connection("127.0.0.1:6390") == ([("127.0.0.1", 6390)], {})
    nodes, params = parse_connection("r1:7000, r2:7001,ssl=true,password=s3cr=t,db=2,unknown=x")
    assert nodes == [("r1", 7000), ("r2", 7001)]
    assert params == {"ssl": True, "password": "s3cr=t", "db": 2}
    for bad in ("", "host-without-port", "ssl=true"):
        with pytest.raises(ValueError, match="Redis connection string"):
            parse_connection(bad)


@pytest.mark.parametrize("view,feature", [("customer_activity", "birth_year"), ("v", "ÄÖü x")])
def test_hash_fields_equal_feasts(view, feature):
    from feast.infra.online_stores.helpers import _mmh3

    assert field_key(view, feature) == _mmh3(f"{view}:{feature}")


@pytest.mark.data
def test_materialization_lists_counts_and_deletes_redis_entities(redis_feature_data):
    from parity.features.feature_store import materialize, materialized_until, open_store
    from parity.features.materialization import (
        delete_online,
        expected_keys,
        online_count,
        online_keys,
        read_marker,
        source_parts,
    )
    from parity.features.online import open_reader
    from tests.training.conftest import keep_data_dir_env

    settings = redis_feature_data
    with keep_data_dir_env():
        store = open_store(settings)
        view = store.get_feature_view("customer_activity")
        held = online_keys(store, view)
        assert set(held) == expected_keys(view, source_parts(view)) and online_count(store, view) == len(held)
        assert read_marker(settings.feast_dir)["views"]["customer_activity"]["online_entities"] == len(held)
        (gone,) = sorted(held)[:1]
        assert delete_online(store, view, [held[gone]]) == 1
        reader = open_reader(settings, "churn_v1")
        at = materialized_until(settings)
        assert reader.read_columns([gone[0]], at)["__found__"] == [False]
        assert online_count(store, view) == len(held) - 1
        materialize(settings)  # the store no longer holds what the marker says: reloaded
        assert reader.read_columns([gone[0]], at)["__found__"] == [True]
        assert set(online_keys(store, view)) == set(held)
