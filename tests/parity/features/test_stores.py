"""The platform's bulk SQLite online store writes exactly what Feast's own SQLite store writes."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from parity.features.feature_store import open_store
from parity.features.stores import ASOF_DUCKDB_TYPE, BULK_SQLITE_TYPE, asof_sql
from parity.features.wide_store import WIDE_SQLITE_TYPE

COLUMNS = "entity_key, feature_name, value, value_text, vector_value, event_ts, created_ts"


def _repo(folder: Path, online_type: str, registry: Path, online: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "feature_store.yaml").write_text(
        f"project: parity\nprovider: local\nregistry:\n  registry_type: file\n  path: {registry}\n"
        f"online_store:\n  type: {online_type}\n  path: {online}\n"
        "offline_store:\n  type: duckdb\nentity_key_serialization_version: 3\n")
    return folder


def _dump(db: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type = 'table' order by name")]
        return {t: con.execute(f"select {COLUMNS} from {t} order by entity_key, feature_name").fetchall() for t in tables}
    finally:
        con.close()


@pytest.mark.data
def test_product_repo_uses_the_platform_stores(feature_data):
    store = open_store(feature_data)
    assert store.config.offline_store.type == ASOF_DUCKDB_TYPE
    assert store.config.online_store.type == WIDE_SQLITE_TYPE
    assert type(store._get_provider().online_store).__name__ == "WideSqliteOnlineStore"


def _materialized_copy(feature_data, folder: Path, online_type: str):
    """A repo on a copy of the product registry with an empty online store of `online_type`, loaded
    by Feast's own materialize over the whole history (many rows per entity: upserts exercised)."""
    from feast import FeatureStore

    product = open_store(feature_data)
    registry, db = folder / "registry.db", folder / "online_store.db"
    repo = _repo(folder / "repo", online_type, registry, db)
    shutil.copy(feature_data.feast_dir / "registry.db", registry)
    store = FeatureStore(repo_path=str(repo))
    views = product.list_feature_views()
    store._get_provider().online_store.update(store.config, tables_to_delete=[], tables_to_keep=views,
                                              entities_to_delete=[], entities_to_keep=[], partial=True)
    store.materialize(start_date=datetime(2000, 1, 1, tzinfo=timezone.utc),
                      end_date=datetime.now(timezone.utc), feature_views=[v.name for v in views])
    return store, db


@pytest.mark.data
def test_bulk_store_writes_the_same_tables_and_bytes_as_feasts_sqlite_store(feature_data, tmp_path):
    dumps = {}
    for online_type in ("sqlite", BULK_SQLITE_TYPE):
        store, db = _materialized_copy(feature_data, tmp_path / online_type.replace(".", "_"), online_type)
        assert type(store._get_provider().online_store).__name__ == (
            "SqliteOnlineStore" if online_type == "sqlite" else "BulkSqliteOnlineStore")
        dumps[online_type] = _dump(db)
    stock, bulk = dumps["sqlite"], dumps[BULK_SQLITE_TYPE]
    assert sum(len(rows) for rows in stock.values()) > 100
    assert list(stock) == list(bulk)
    for table in stock:
        assert stock[table] == bulk[table], table


@pytest.mark.data
def test_wide_store_serves_what_feasts_sqlite_store_serves_for_every_entity(feature_data, tmp_path):
    """Feast's SDK (get_online_features) over the wide store answers exactly as over Feast's own
    layout, both loaded by Feast's materialize: every entity, every feature, values and types."""
    from parity.features.materialization import online_keys

    answers = {}
    for online_type in ("sqlite", WIDE_SQLITE_TYPE):
        store, _ = _materialized_copy(feature_data, tmp_path / online_type.replace(".", "_"), online_type)
        view = store.list_feature_views()[0]
        ids = sorted(k[0] for k in online_keys(store, view))
        features = [f"{view.name}:{f.name}" for f in view.features]
        answers[online_type] = (ids, store.get_online_features(
            features=features, entity_rows=[{"customer_id": c} for c in [*ids, "nobody:0"]]).to_dict())
    (ids, stock), (wide_ids, wide) = answers["sqlite"], answers[WIDE_SQLITE_TYPE]
    assert ids == wide_ids and len(ids) > 10
    assert list(stock) == list(wide)
    for name in stock:
        pairs = list(zip(stock[name], wide[name]))
        assert all(type(a) is type(b) and (a == b or (a != a and b != b)) for a, b in pairs), name
    assert any(v is None for name in stock for v in stock[name][:-1])  # nulls of known entities compared


def _write_batches(kind: str, folder: Path, batches: list[list]) -> dict[str, list[tuple]]:
    """Create a view's table with `kind`'s store and write `batches` through its online_write_batch."""
    from datetime import timedelta

    from feast import Entity, FeatureView, Field, FileSource, RepoConfig, ValueType
    from feast.infra.online_stores.sqlite import SqliteOnlineStore
    from feast.types import Float64, String

    from parity.features.stores import BulkSqliteOnlineStore

    folder.mkdir()
    config = RepoConfig(project="parity", provider="local", registry=str(folder / "registry.db"),
                        online_store={"type": kind, "path": str(folder / "online.db")},
                        entity_key_serialization_version=3)
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING)
    view = FeatureView(name="activity", entities=[customer], ttl=timedelta(days=7),
                       source=FileSource(path=str(folder / "mart.parquet"), timestamp_field="snapshot_at"),
                       schema=[Field(name="spend_30d", dtype=Float64), Field(name="country", dtype=String)])
    store = BulkSqliteOnlineStore() if kind == BULK_SQLITE_TYPE else SqliteOnlineStore()
    store.update(config, tables_to_delete=[], tables_to_keep=[view], entities_to_delete=[],
                 entities_to_keep=[customer], partial=False)
    for batch in batches:
        store.online_write_batch(config, view, batch, None)
    return _dump(folder / "online.db")


def test_bulk_write_upserts_like_feasts_sqlite_store(tmp_path):
    """Same rows and bytes as Feast's row-by-row write, including a later update of a key."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    def key(customer: str) -> EntityKey:
        return EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=customer)])

    def at(day: int) -> datetime:
        return datetime(2026, 5, day, tzinfo=timezone.utc)

    first = [(key("acme:1"), {"spend_30d": Value(double_val=1.5), "country": Value(string_val="DE")}, at(1), at(2)),
             (key("bolt:7"), {"spend_30d": Value(), "country": Value(string_val="US")}, at(1), None)]
    # a later snapshot of acme:1 replaces both of its values; cora:3 is new
    second = [(key("acme:1"), {"spend_30d": Value(double_val=2.25), "country": Value(string_val="FR")}, at(8), at(9)),
              (key("cora:3"), {"spend_30d": Value(double_val=0.0), "country": Value()}, at(8), at(9))]
    stock = _write_batches("sqlite", tmp_path / "stock", [first, second])
    bulk = _write_batches(BULK_SQLITE_TYPE, tmp_path / "bulk", [first, second])
    assert stock == bulk
    rows = next(iter(bulk.values()))
    assert len(rows) == 6  # three customers x two features: the update replaced, not appended
    acme = [r for r in rows if r[1] == "country" and r[3] == "FR"]
    assert len(acme) == 1 and acme[0][5] == int(at(8).timestamp())


def test_asof_plan_applies_the_ttl_per_view_and_keeps_entity_order():
    from datetime import timedelta

    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, String

    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING)
    source = FileSource(name="s", path="/tmp/mart's.parquet", timestamp_field="snapshot_at")
    view = FeatureView(name="activity", entities=[customer], ttl=timedelta(days=7), source=source,
                       schema=[Field(name="customer_id", dtype=String),
                               Field(name="spend_30d", dtype=Float64)])
    sql = asof_sql([view], ["activity:spend_30d"])
    assert "ASOF LEFT JOIN (SELECT \"customer_id\", \"snapshot_at\", \"spend_30d\" FROM read_parquet('/tmp/mart''s.parquet'))" in sql
    assert "epoch_us(f0.\"snapshot_at\") + 604800000000 >= epoch_us(e.event_timestamp)" in sql
    assert "e.event_timestamp >= f0.\"snapshot_at\"" in sql and sql.endswith("ORDER BY e.__asof_row")


def test_asof_plan_selects_only_features_and_is_empty_without_any():
    from datetime import timedelta

    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, String

    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING)
    source = FileSource(name="s", path="/tmp/mart.parquet", timestamp_field="snapshot_at")
    view = FeatureView(name="activity", entities=[customer], ttl=timedelta(days=7), source=source,
                       schema=[Field(name="customer_id", dtype=String), Field(name="spend_30d", dtype=Float64)])
    # the entity columns come from the entity table itself (the result is in its order)
    assert asof_sql([view], ["activity:spend_30d"]).startswith('SELECT CASE WHEN')
    assert asof_sql([view], []) == ""


def test_entity_columns_lead_and_row_counts_must_match():
    import pyarrow as pa

    from parity.features.stores import with_entity_columns

    entities = pa.table({"customer_id": ["a", "b"], "event_timestamp": [1, 2]})
    table = with_entity_columns(entities, pa.table({"spend_30d": [1.0, None]}))
    assert table.column_names == ["customer_id", "event_timestamp", "spend_30d"]
    assert table.column("customer_id").to_pylist() == ["a", "b"]
    with pytest.raises(ValueError, match="3 rows for 2 entity rows"):
        with_entity_columns(entities, pa.table({"spend_30d": [1.0, 2.0, 3.0]}))
