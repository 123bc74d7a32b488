"""Fresh features on Redis (the scale profile's online store): `open_writer` picks `RedisWriter`,
whose bytes equal what materialization stored and which `RedisReader` reads back — on the
session's Redis + PostgreSQL store (`redis_feature_data`, real servers), left as it was found."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from parity.config import Settings

pytestmark = pytest.mark.data
SERVICE = "churn_v1"


def _log(settings: Settings):
    from parity.ingest.events import event_log_path

    return event_log_path(settings.data_dir)


@pytest.fixture(scope="module")
def fresh(redis_feature_data: Settings):
    from parity.features.fresh import FreshContext, fresh_mart, open_writer
    from parity.ingest.events import ensure_event_log

    ensure_event_log(redis_feature_data)  # recompute stages the (empty) event log of this folder
    context = FreshContext(redis_feature_data.published_dir)
    con, plan = context.ensure()
    mart = fresh_mart(plan)
    writer = open_writer(redis_feature_data, plan.views[mart])
    yield redis_feature_data, con, plan, mart, writer
    writer.close()
    context.close()


def _newest(settings: Settings, count: int) -> tuple[list[str], object]:
    """`count` customers of the newest snapshot (what the online store holds) and its time."""
    path = settings.marts_dir / "customer_features_weekly.parquet"
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    at = con.execute(f"select max(snapshot_at) from read_parquet('{path}')").fetchone()[0]
    ids = [r[0] for r in con.execute(f"select customer_id from read_parquet('{path}') where snapshot_at = ? "
                                     f"order by hash(customer_id) limit {count}", [at]).fetchall()]
    con.close()
    return ids, at


def test_open_writer_picks_redis_and_writes_the_bytes_materialization_stored(fresh):
    from parity.features.fresh import recompute
    from parity.features.fresh_redis import RedisWriter

    settings, con, plan, mart, writer = fresh
    assert isinstance(writer, RedisWriter)
    ids, at = _newest(settings, 8)
    table = recompute(con, plan, ids, at, _log(settings))
    rows = writer.rows(table, plan.fresh[mart], plan.types[mart], at)
    assert len(rows) == len(ids) and writer.known([k for k, _ in rows]) == {k for k, _ in rows}
    for key, fields in rows:
        stored = writer._client.hmget(key, list(fields))
        assert stored == list(fields.values())
    unknown = writer.key("acme:NOPE")
    assert writer.known([unknown]) == set() and writer.snapshot_times([unknown]) == {}


def test_a_redis_write_is_read_back_with_the_snapshot_time_kept(fresh):
    from parity.features.fresh import recompute
    from parity.features.online import open_reader

    settings, con, plan, mart, writer = fresh
    columns = plan.fresh[mart]
    ids, at = _newest(settings, 20)
    reader = open_reader(settings, SERVICE)
    before = reader.read_columns(ids, at)
    times = writer.snapshot_times([writer.key(c) for c in ids])
    later = at + timedelta(days=5)  # five days on: days_since_last_purchase grows by 5
    original = writer.rows(recompute(con, plan, ids, at, _log(settings)), columns,
                           plan.types[mart], at)
    moved = recompute(con, plan, ids, later, _log(settings))
    try:
        writer.write(writer.rows(moved, columns, plan.types[mart], later), columns)
        after = reader.read_columns(ids, at)
        assert writer.snapshot_times([writer.key(c) for c in ids]) == times
        by_customer = {row["customer_id"]: row for row in moved.to_pylist()}
        for name in columns:
            assert after[name] == [by_customer[c][name] for c in ids], name
        assert after["__event_at__"] == before["__event_at__"]
        assert any(after[name] != before[name] for name in columns)
    finally:
        writer.write(original, columns)  # the session's store as it was
    assert reader.read_columns(ids, at) == before
