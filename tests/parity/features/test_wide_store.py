"""The wide-row online store: one typed row per entity, read back by Feast's SDK path as Feast's own
SQLite store reads its per-feature rows (values and types), nulls and unknown entities included."""

from __future__ import annotations

import math
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from parity.features.wide_store import WIDE_SQLITE_TYPE, WideSqliteOnlineStore, table_name


def _at(day: int, second: int = 0) -> datetime:
    return datetime(2026, 5, day, 0, 0, second, tzinfo=timezone.utc)


def _setup(folder: Path, kind: str, features: list[tuple[str, object]] | None = None):
    from feast import Entity, FeatureView, Field, FileSource, RepoConfig, ValueType
    from feast.infra.online_stores.sqlite import SqliteOnlineStore
    from feast.types import Bool, Bytes, Float32, Float64, Int32, Int64, String, UnixTimestamp

    folder.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(project="parity", provider="local", registry=str(folder / "registry.db"),
                        online_store={"type": kind, "path": str(folder / "online.db")},
                        entity_key_serialization_version=3)
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING)
    schema = features or [("orders", Int64), ("spend", Float64), ("ratio", Float32), ("country", String),
                          ("active", Bool), ("seen_at", UnixTimestamp), ("blob", Bytes), ("n32", Int32)]
    view = FeatureView(name="activity", entities=[customer], ttl=timedelta(days=7),
                       source=FileSource(path=str(folder / "mart.parquet"), timestamp_field="snapshot_at"),
                       schema=[Field(name="customer_id", dtype=String), *(Field(name=n, dtype=t) for n, t in schema)])
    store = WideSqliteOnlineStore() if kind == WIDE_SQLITE_TYPE else SqliteOnlineStore()
    store.update(config, tables_to_delete=[], tables_to_keep=[view], entities_to_delete=[],
                 entities_to_keep=[customer], partial=False)
    return config, view, store


def _key(customer: str):
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    return EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=customer)])


def _rows():
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import NULL_TIMESTAMP_INT_VALUE

    full = {"orders": Value(int64_val=3), "spend": Value(double_val=2.0), "ratio": Value(float_val=0.1),
            "country": Value(string_val="DE"), "active": Value(bool_val=True),
            "seen_at": Value(unix_timestamp_val=int(_at(3).timestamp())), "blob": Value(bytes_val=b"\x00x"),
            "n32": Value(int32_val=-7)}
    nulls = {"orders": Value(), "spend": Value(double_val=math.nan), "ratio": Value(), "country": Value(),
             "active": Value(bool_val=False), "seen_at": Value(unix_timestamp_val=NULL_TIMESTAMP_INT_VALUE),
             "blob": Value(), "n32": Value(int32_val=0)}
    first = [(_key("acme:1"), full, _at(1, 5), _at(2)), (_key("bolt:7"), nulls, _at(1), None)]
    later = dict(full, orders=Value(int64_val=4), spend=Value(double_val=-0.5))
    return first, [(_key("acme:1"), later, _at(8), None)]


def _python(rows, view):
    """online_read results as (event time, {feature: Feast's python value}) (NaN and NaT: None)."""
    from feast.type_map import feast_value_type_to_python_type

    out = []
    for stamp, values in rows:
        if values is None:
            out.append((stamp, None))
            continue
        decoded = {}
        for name, proto in values.items():
            value = feast_value_type_to_python_type(proto)
            decoded[name] = None if isinstance(value, float) and math.isnan(value) else value
        out.append((stamp, decoded))
    return out


def test_sdk_read_equals_feasts_sqlite_store_values_and_types(tmp_path):
    """Same python values and types as Feast's own store (nulls, NaN, NaT, bool, float32, int64 vs
    float, timestamps, bytes), an upsert replacing a row, and an unknown entity as (None, None)."""
    first, second = _rows()
    keys = [_key("acme:1"), _key("bolt:7"), _key("nobody:0")]
    results = {}
    for kind in ("sqlite", WIDE_SQLITE_TYPE):
        config, view, store = _setup(tmp_path / kind.replace(".", "_"), kind)
        for batch in (first, second):
            store.online_write_batch(config, view, batch, None)
        results[kind] = _python(store.online_read(config, view, keys), view)
    stock, wide = results["sqlite"], results[WIDE_SQLITE_TYPE]
    assert wide[2] == (None, None) and stock[2] == (None, None)
    for (stock_at, stock_values), (wide_at, wide_values) in zip(stock[:2], wide[:2]):
        assert wide_at == stock_at  # both at whole seconds here (Feast's layout keeps seconds only)
        assert set(wide_values) == set(stock_values)
        for name in stock_values:
            assert type(wide_values[name]) is type(stock_values[name]), name
            assert wide_values[name] == stock_values[name], name
    assert wide[0][1]["orders"] == 4 and wide[0][1]["spend"] == -0.5 and wide[0][0] == _at(8)
    assert wide[1][1]["spend"] is None and wide[1][1]["seen_at"] is None and wide[1][1]["active"] is False


def test_one_row_per_entity_with_typed_columns(tmp_path):
    config, view, store = _setup(tmp_path, WIDE_SQLITE_TYPE)
    first, second = _rows()
    store.online_write_batch(config, view, first + second, None)
    with sqlite3.connect(tmp_path / "online.db") as con:
        rows = con.execute(f'select * from "{table_name("parity", view)}" order by entity_key').fetchall()
        tables = [r[0] for r in con.execute("select name from sqlite_master where type = 'table'")]
    assert tables == ["parity_activity__wide"]
    assert len(rows) == 2
    acme = rows[0]
    assert acme[1] == int(_at(8).timestamp()) * 1_000_000
    assert [type(v) for v in acme[3:]] == [int, float, float, str, int, int, bytes, int]


def test_subsecond_event_times_are_kept(tmp_path):
    config, view, store = _setup(tmp_path, WIDE_SQLITE_TYPE)
    first, _ = _rows()
    stamp = _at(1) + timedelta(microseconds=123_456)
    store.online_write_batch(config, view, [(first[0][0], first[0][1], stamp, None)], None)
    assert store.online_read(config, view, [_key("acme:1")])[0][0] == stamp


def _arrow_table() -> pa.Table:
    ts = pa.timestamp("us", tz="UTC")
    return pa.table({
        "customer_id": ["acme:1", "bolt:7", "cora:3"],
        "orders": pa.array([3, None, 0], pa.int64()),
        "spend": pa.array([2.0, math.nan, None], pa.float64()),
        "ratio": pa.array([0.1, None, 2.5], pa.float32()),
        "country": ["DE", None, "ü"],
        "active": pa.array([True, False, None]),
        "seen_at": pa.array([_at(3), None, _at(4, 59)], ts),
        "blob": pa.array([b"\x00x", None, b""], pa.binary()),
        "n32": pa.array([-7, 0, None], pa.int32()),
        "snapshot_at": pa.array([_at(1) + timedelta(microseconds=5), _at(2), _at(3)], ts),
    })


def _dump(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as con:
        return con.execute('select * from "parity_activity__wide" order by entity_key').fetchall()


def test_arrow_write_equals_feasts_conversion_and_batch_write(tmp_path):
    """Materialization's direct Arrow write stores exactly what Feast's conversion + online_write_batch stores."""
    from feast.utils import _convert_arrow_to_proto

    table = _arrow_table()
    config, view, store = _setup(tmp_path / "arrow", WIDE_SQLITE_TYPE)
    assert store.write_arrow(config, view, table)
    direct = _dump(tmp_path / "arrow" / "online.db")
    config2, view2, store2 = _setup(tmp_path / "proto", WIDE_SQLITE_TYPE)
    join_keys = {e.name: e.dtype.to_value_type() for e in view2.entity_columns}
    store2.online_write_batch(config2, view2, _convert_arrow_to_proto(table, view2, join_keys), None)
    assert direct == _dump(tmp_path / "proto" / "online.db")
    assert len(direct) == 3 and direct[0][4] is not None
    nulls = next(r for r in direct if r[3] is None)  # bolt:7: every null kind, including NaN
    assert nulls[4] is None and nulls[5] is None and nulls[6] is None and nulls[7] == 0 and nulls[8] is None


def test_arrow_write_declines_types_it_does_not_write_directly(tmp_path):
    config, view, store = _setup(tmp_path, WIDE_SQLITE_TYPE)
    table = _arrow_table()
    table = table.set_column(1, "orders", table.column("orders").cast(pa.float64()))  # Int64 feature as float
    assert store.write_arrow(config, view, table) is False
    assert _dump(tmp_path / "online.db") == []


def test_changed_definition_recreates_the_table_and_removed_views_are_dropped(tmp_path):
    from feast.types import Float64, Int64

    config, view, store = _setup(tmp_path, WIDE_SQLITE_TYPE, [("orders", Int64)])
    from feast.protos.feast.types.Value_pb2 import Value

    store.online_write_batch(config, view, [(_key("acme:1"), {"orders": Value(int64_val=1)}, _at(1), None)], None)
    # the same feature now a float: another column, so the old rows (of the old type) are gone
    config, changed, store = _setup(tmp_path, WIDE_SQLITE_TYPE, [("orders", Float64)])
    assert store.online_read(config, changed, [_key("acme:1")]) == [(None, None)]
    store.online_write_batch(config, changed, [(_key("acme:1"), {"orders": Value(double_val=1.0)}, _at(1), None)], None)
    assert store.online_read(config, changed, [_key("acme:1")])[0][1]["orders"].double_val == 1.0
    store.update(config, tables_to_delete=[], tables_to_keep=[], entities_to_delete=[], entities_to_keep=[],
                 partial=False)
    with sqlite3.connect(tmp_path / "online.db") as con:
        assert con.execute("select count(*) from sqlite_master where type = 'table'").fetchone()[0] == 0


def test_a_partial_write_keeps_the_features_it_does_not_name(tmp_path):
    from feast.protos.feast.types.Value_pb2 import Value

    config, view, store = _setup(tmp_path, WIDE_SQLITE_TYPE)
    first, _ = _rows()
    store.online_write_batch(config, view, first, None)
    store.online_write_batch(config, view, [(_key("acme:1"), {"orders": Value(int64_val=9)}, _at(9), None)], None)
    values = store.online_read(config, view, [_key("acme:1")])[0][1]
    assert values["orders"].int64_val == 9 and values["country"].string_val == "DE"


@pytest.mark.parametrize("customer", ["acme:1", "ü:2", ""])
def test_fast_key_equals_feasts_serialization(customer):
    from feast.infra.key_encoding_utils import serialize_entity_key

    from parity.features.wide_store import string_key_bytes

    assert string_key_bytes("customer_id")(customer) == serialize_entity_key(_key(customer), 3)


def test_materialization_lists_counts_deletes_and_teardown_removes_the_store(tmp_path):
    """What `make materialize` does to the store besides writing: list, count and delete entities
    (through the store's own table name), and Feast's teardown."""
    from parity.features.materialization import delete_online, online_count, online_keys

    config, view, store = _setup(tmp_path, WIDE_SQLITE_TYPE)
    first, _ = _rows()
    store.online_write_batch(config, view, first, None)

    class _Provider:
        online_store = store

    class _Store:  # the two FeatureStore members materialization's store helpers use
        def __init__(self):
            self.config = config

        def _get_provider(self):
            return _Provider()

    held = online_keys(_Store(), view)
    assert sorted(held) == [("acme:1",), ("bolt:7",)] and online_count(_Store(), view) == 2
    assert delete_online(_Store(), view, [held[("bolt:7",)]]) == 1
    assert online_count(_Store(), view) == 1
    assert store.online_read(config, view, [_key("bolt:7")]) == [(None, None)]
    store.teardown(config, [view], [])
    assert not (tmp_path / "online.db").exists()
