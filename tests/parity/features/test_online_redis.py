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
