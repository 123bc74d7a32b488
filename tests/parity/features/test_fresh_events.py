"""Fresh events: intake with the staging rules, recompute with the mart's own SQL, online write,
and the next build reading the event log (a copy of the session's built data, so the shared
store is never changed)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pytest

from parity.config import Settings, load_settings

pytestmark = pytest.mark.data

MART = "customer_features_weekly"


@pytest.fixture(scope="module")
def copied(feature_data: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The session's built, applied and materialized data folder, copied."""
    target = tmp_path_factory.mktemp("fresh") / "data"
    shutil.copytree(feature_data.data_dir, target, symlinks=True,
                    ignore=shutil.ignore_patterns("build.lock", "registry", "serving", "reports", "training"))
    return load_settings(target)


@pytest.fixture(scope="module")
def pusher(copied: Settings):
    from parity.features.push import Pusher

    p = Pusher(copied)
    yield p
    p.close()


def _mart(settings: Settings, sql: str, params: list | None = None) -> pd.DataFrame:
    path = str(settings.marts_dir / f"{MART}.parquet")
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    try:
        return con.execute(sql.replace("MART", f"read_parquet('{path}')"), params or []).df()
    finally:
        con.close()


def _sample(settings: Settings, per_client: int = 6) -> pd.DataFrame:
    """A few customers per client at the client's newest snapshot."""
    return _mart(settings, f"""
        select customer_id, client_id, snapshot_at from (
            select customer_id, client_id, snapshot_at from MART
            qualify snapshot_at = max(snapshot_at) over (partition by client_id)
        ) as newest
        qualify row_number() over (partition by client_id order by hash(customer_id)) <= {per_client}
        order by client_id, customer_id""")


def test_recompute_is_the_mart_for_customers_without_new_events(copied, pusher):
    """The mart's compiled SQL for a few customers at a snapshot instant gives the mart's own rows,
    every column: the fresh path is the mart's definition, not a second one."""
    from parity.features.fresh import recompute

    con, plan = pusher.context.ensure()
    sample = _sample(copied)
    assert sample["client_id"].nunique() >= 3
    for at, group in sample.groupby("snapshot_at"):
        ids = sorted(group["customer_id"])
        got = recompute(con, plan, ids, at.to_pydatetime(), pusher.log.path).to_pandas().set_index("customer_id")
        want = _mart(copied, "select * from MART where snapshot_at = ? and customer_id in (select unnest(?)) "
                     "order by customer_id", [at.to_pydatetime(), ids]).set_index("customer_id")
        pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)


def test_online_rows_are_written_as_materialization_stored_them(copied, pusher):
    """The writer's values for recomputed rows equal what materialization stored (the store's
    layout: Feast's per-feature bytes, or the wide store's typed columns)."""
    from parity.features.fresh import OnlineWriter, fresh_mart, recompute

    con, plan = pusher.context.ensure()
    mart = fresh_mart(plan)
    columns = plan.fresh[mart]
    sample = _sample(copied, 3)
    writer = OnlineWriter(copied.feast_dir, copied.feature_repo_dir / "feature_store.yaml", plan.views[mart])
    db = sqlite3.connect(writer.db_path)
    checked = 0
    for at, group in sample.groupby("snapshot_at"):
        table = recompute(con, plan, sorted(group["customer_id"]), at.to_pydatetime(), pusher.log.path)
        rows = writer.rows(table, columns, plan.types[mart], at.to_pydatetime())
        assert rows
        for row in rows:
            if writer.layout == "wide":
                names = ", ".join(f'"{writer.columns[c]}"' for c in columns)
                stored = db.execute(f'select {names} from "{writer.table}" where entity_key = ?', [row[-1]]).fetchone()
                assert stored == row[:-1]
            else:
                key, name, value, text, stamp, _ = row
                stored = db.execute(f'select value, value_text, event_ts from "{writer.table}" '
                                    "where entity_key = ? and feature_name = ?", [key, name]).fetchone()
                assert stored == (value, text, stamp), name
            checked += 1
    assert checked >= 9
    db.close()


def _event(event_id: str, customer: str, **fields) -> dict:
    event = {"event_id": event_id, "customer_id": customer, "transaction_type": "purchase", "amount": 19.5,
             "currency": "USD", "category": "books",
             "transacted_at": (datetime.now(timezone.utc) - timedelta(hours=1)).replace(microsecond=0).isoformat()}
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def _unknown_customer(settings: Settings, client: str) -> str:
    """A well-formed id of the client (its declared pattern) that the warehouse does not hold."""
    ids = {"acme": "AC-999999", "bolt": "b-999999999", "cora": "CR-99999", "dune": "DU-99999"}
    key = f"{client}:{ids[client]}"
    assert _mart(settings, "select count(*) as n from MART where customer_id = ?", [key])["n"].iloc[0] == 0
    return key


def test_intake_judges_each_event_and_logs_only_the_accepted(copied, pusher):
    customer = _sample(copied, 1)["customer_id"].iloc[0]
    items = [
        _event("it-1", customer),
        _event("it-2", customer, amount="12"),                      # wrong_type
        _event("it-3", _unknown_customer(copied, customer.split(":")[0])),  # orphan_customer
        _event("it-4", "zeta:Z-1"),                                  # unknown_client
        _event("it-5", customer, transacted_at="2026-05-01T10:00:00"),  # missing_offset
        _event("it-6", customer, colour="red"),                      # unknown_field
        _event("it-1", customer),                                    # duplicate_event_id (index 0)
        "not an object",
        _event("it-7", customer, currency="XXX"),                    # unknown_currency
        _event("it-8", customer, amount=0),                          # zero_amount (client rule)
        _event(" ", customer),                                       # missing_transaction_id
    ]
    size = pusher.log.path.stat().st_size
    verdicts, accepted_at = pusher.intake(items)
    got = [(v.index, v.status, [(e["field"], e["reason"]) for e in v.errors]) for v in verdicts]
    assert got[0] == (0, "accepted", [])
    assert got[1][2] == [("amount", "wrong_type")]
    assert got[2][2] == [("customer_id", "orphan_customer")]
    assert got[3][2] == [("customer_id", "unknown_client")]
    assert got[4][2] == [("transacted_at", "missing_offset")]
    assert got[5][2] == [("colour", "unknown_field")]
    assert got[6][2] == [("event_id", "duplicate_event_id")] and "index 0" in verdicts[6].errors[0]["detail"]
    assert got[7][2] == [(None, "not_an_object")]
    assert got[8][2] == [("currency", "unknown_currency")]
    assert got[9][2][0][1] in ("zero_amount", ) or got[9][1] == "accepted"  # per the client's declared rule
    assert got[10][2] == [("event_id", "missing_transaction_id")]
    assert all(v.status == "rejected" for v in verdicts[1:9]) and all(v.errors for v in verdicts if v.status == "rejected")
    logged = pusher.log.path.read_bytes()[size:].decode().splitlines()
    accepted = [v for v in verdicts if v.status == "accepted"]
    assert len(logged) == len(accepted) and json.loads(logged[0])["event_id"] == "it-1"
    assert json.loads(logged[0])["accepted_at"] == accepted_at.isoformat()
    # the same event again: accepted once, reported as a duplicate, not logged twice
    again, _ = pusher.intake([_event("it-1", customer, transacted_at=json.loads(logged[0])["transacted_at"])])
    assert again[0].status == "duplicate"
    assert len(pusher.log.path.read_bytes()[size:].decode().splitlines()) == len(accepted)


def test_pushed_events_change_online_features_and_keep_the_snapshot_age(copied, pusher):
    from parity.features.online import EVENT_AT, FOUND, open_reader

    sample = _sample(copied, 2)
    customer, other = sample["customer_id"].iloc[0], sample["customer_id"].iloc[1]
    reader = open_reader(copied, "churn_v1")
    now = datetime.now(timezone.utc)
    before = reader.read_columns([customer, other], now)
    verdicts, update = pusher.push([_event("up-1", customer, amount=40.0), _event("up-2", customer, amount=2.5)])
    assert [v.status for v in verdicts] == ["accepted", "accepted"]
    assert update is not None and update.customers == (customer,)
    after = reader.read_columns([customer, other], datetime.now(timezone.utc))
    assert after[FOUND] == [True, True]
    # both purchases are in the last 30 days of the recompute instant
    assert after["purchase_count_30d"][0] >= 2 and after["spend_30d"][0] >= 42.5
    assert after["last_purchase_at"][0] > before["last_purchase_at"][0] if before["last_purchase_at"][0] else True
    assert after["days_since_last_purchase"][0] < 1.0
    # the snapshot's features keep their value and age; another customer is untouched
    assert after[EVENT_AT] == before[EVENT_AT]
    assert after["tenure_days"] == before["tenure_days"]
    for name in ("purchase_count_30d", "spend_30d", "last_purchase_at"):
        assert after[name][1] == before[name][1]


def test_offline_retrieval_after_a_push_returns_what_serving_returned(copied):
    """Point in time between snapshots: training_frame at t after a push equals the online read
    at t (every feature); before the push was readable, the snapshot's values. The push happens
    two days after the snapshot (a shifted clock: the test data ends months ago, and a snapshot
    older than the view's TTL is stale both online and offline)."""
    from parity.features.feature_store import open_store
    from parity.features.online import open_reader
    from parity.features.push import Pusher
    from parity.features.retrieval import training_frame

    sample = _sample(copied, 2)
    customer, other = sample["customer_id"].iloc[-1], sample["customer_id"].iloc[-2]
    offset = sample["snapshot_at"].iloc[-1].to_pydatetime() + timedelta(days=2) - datetime.now(timezone.utc)
    pusher = Pusher(copied, clock=lambda: datetime.now(timezone.utc) + offset)
    reader = open_reader(copied, "churn_v1")
    store = open_store(copied)
    before_push = pusher.clock()
    event = _event("pit-1", customer, amount=77.0, category="garden",
                   # whole seconds: the online store keeps timestamps in seconds (as Feast does)
                   transacted_at=(before_push - timedelta(hours=2)).replace(microsecond=0).isoformat())
    verdicts, update = pusher.push([event])
    assert update is not None and pusher.served_stale(update) == []  # two days old: still served
    pusher.close()
    assert verdicts[0].status == "accepted", verdicts[0].errors
    assert update is not None and update.customers == (customer,)
    at = update.online_at + timedelta(milliseconds=1)
    served = reader.read([customer, other], at).drop(columns=["event_timestamp"]).reset_index(drop=True)
    entities = pd.DataFrame({"customer_id": [customer, other, customer], "event_timestamp": [at, at, before_push]})
    offline = training_frame(store, entities, "churn_v1").drop(columns=["event_timestamp"])
    assert offline["client_id"].notna().all()  # within the TTL: the snapshot is found
    pd.testing.assert_frame_equal(offline.iloc[:2].reset_index(drop=True), served, check_exact=False, rtol=1e-12)
    # before the push was readable: the snapshot's values (the pushed purchase is not counted)
    assert offline["spend_30d"].iloc[2] + 77.0 <= offline["spend_30d"].iloc[0] + 1e-9


def test_the_next_build_reads_the_event_log(copied, pusher):
    """dbt reads the log as a source: the events are transactions of the next build, reconciled
    per client (source_table 'events', nothing unaccounted), and no client's watermark moves."""
    from tests.conftest import build

    customer = _sample(copied, 1)["customer_id"].iloc[0]
    client = customer.split(":", 1)[0]
    verdicts, _ = pusher.intake([_event("build-1", customer), _event("build-2", customer, amount="x")])
    assert [v.status for v in verdicts] == ["accepted", "rejected"]
    logged = [json.loads(line) for line in pusher.log.path.read_text().splitlines()]
    marks_before = _watermarks(copied)
    build(copied)
    con = duckdb.connect(str(copied.warehouse_path), read_only=True)
    try:
        rows = con.execute("select client_id, raw_rows, canonical_rows, quarantined_rows, duplicate_rows, unaccounted_rows "
                           "from marts.reconciliation where source_table = 'events'").fetchall()
        versions = con.execute("select count(*) from intermediate.int_transactions_versioned "
                               "where client_id = ? and transaction_id = 'build-1'", [client]).fetchone()[0]
    finally:
        con.close()
    by_client = {r[0]: r[1:] for r in rows}
    assert sum(r[0] for r in by_client.values()) == len(logged)  # every logged event is a staged row
    assert all(r[-1] == 0 for r in by_client.values())
    assert by_client[client][1] >= 1 and versions == 1
    assert _watermarks(copied) == marks_before


def _watermarks(settings: Settings) -> dict:
    return dict(duckdb.connect().execute(
        f"select client_id, watermark_at from read_parquet('{settings.marts_dir}/client_watermarks.parquet')").fetchall())


def test_materializing_an_older_snapshot_keeps_newer_pushed_values(copied, pusher):
    """Latest wins online as offline: a materialization rewriting a customer's snapshot row
    (older than its pushed values) is followed by the pushed values again."""
    from parity.features.feature_store import materialize
    from parity.features.online import open_reader

    customer = _sample(copied, 3)["customer_id"].iloc[2]
    pusher.push([_event("mat-1", customer, amount=55.0)])
    reader = open_reader(copied, "churn_v1")
    pushed = reader.read_columns([customer], datetime.now(timezone.utc))["spend_30d"][0]
    (copied.feast_dir / "materialized.json").unlink()  # the next run reloads every part
    result = materialize(copied)
    assert result["pushed_reapplied"] >= 1
    assert reader.read_columns([customer], datetime.now(timezone.utc))["spend_30d"][0] == pushed


def test_the_incrementally_staged_log_gives_what_staging_the_whole_log_gives(copied, pusher):
    from parity.features.fresh import StagedLog, recompute

    customer = _sample(copied, 4)["customer_id"].iloc[3]
    con, plan = pusher.context.ensure()
    staged = StagedLog()
    at = datetime.now(timezone.utc)
    recompute(con, plan, [customer], at, pusher.log.path, staged_log=staged)  # stages the log so far
    pusher.intake([_event("inc-1", customer, amount=5.0), _event("inc-2", customer, transaction_type="refund")])
    at = datetime.now(timezone.utc)
    incremental = recompute(con, plan, [customer], at, pusher.log.path, staged_log=staged)
    whole = recompute(con, plan, [customer], at, pusher.log.path)
    assert incremental.equals(whole) and incremental.column("refund_count_90d")[0].as_py() >= 1


def test_an_event_older_than_the_watermark_is_a_late_arrival(copied, pusher):
    """Accepted (as a late row of a drop would be) and counted from its arrival: it is in the
    365-day count of a recompute now only if it falls in that window, never in the 30-day one."""
    from parity.features.fresh import recompute

    customer = _sample(copied, 5)["customer_id"].iloc[4]
    con, plan = pusher.context.ensure()
    before = recompute(con, plan, [customer], datetime.now(timezone.utc), pusher.log.path).to_pylist()[0]
    old = (datetime.now(timezone.utc) - timedelta(days=200)).replace(microsecond=0).isoformat()
    verdicts, _ = pusher.intake([_event("late-1", customer, transacted_at=old)])
    assert verdicts[0].status == "accepted", verdicts[0].errors
    after = recompute(con, plan, [customer], datetime.now(timezone.utc), pusher.log.path).to_pylist()[0]
    assert after["purchase_count_365d"] == before["purchase_count_365d"] + 1
    assert after["purchase_count_30d"] == before["purchase_count_30d"]


def test_parity_holds_after_a_push_at_the_real_current_time(copied, pusher):
    """`make events-push` at the real time (no shifted clock) onto data that ends months earlier,
    then `make parity`: every entity agrees online and offline, the pushed customers included."""
    from parity.features.feature_store import open_store
    from parity.features.parity_check import run_parity

    customer = _sample(copied, 6)["customer_id"].iloc[5]
    verdicts, update = pusher.push([_event("real-1", customer, amount=31.0)])
    assert verdicts[0].status == "accepted", verdicts[0].errors
    report = run_parity(copied, services=["churn_v1"], sample_times=0)
    assert report.ok, report.summary()
    # the snapshot is months older than the TTL at the push: checked as served (stale) and stored
    assert report.expired_pushes >= 1 and update is not None and update.customers == (customer,)
    assert pusher.served_stale(update) == [customer]  # what `events push` tells the user
    # a pushed value online that the offline history does not hold is caught, naming the feature
    from parity.features.fresh import OnlineWriter, fresh_mart, recompute
    from parity.features.parity_check import check_expired_pushes

    con, plan = pusher.context.ensure()
    mart = fresh_mart(plan)
    writer = OnlineWriter(copied.feast_dir, copied.feature_repo_dir / "feature_store.yaml", plan.views[mart])
    skewed = recompute(con, plan, [customer], update.as_of, pusher.log.path)
    skewed = skewed.set_column(skewed.column_names.index("spend_30d"), "spend_30d",
                               pa.compute.add(skewed.column("spend_30d"), 1.0))
    writer.write(writer.rows(skewed, ["spend_30d"], plan.types[mart], update.as_of), ["spend_30d"])
    end = report.client_as_of[customer.split(":")[0]]
    _, found = check_expired_pushes(open_store(copied), "churn_v1", [customer], [end],
                                    [update.online_at + timedelta(seconds=1)])
    assert {m.feature for m in found} == {"spend_30d"}, found


def test_the_pairs_index_gives_what_the_staged_tables_give(copied, pusher):
    """A round finding its customers' transaction ids by customer number (parity.features.fresh_cut)
    computes what reading the staged tables computes, every column — also when a later round's
    numbers lie outside an earlier round's (a prepared plan must not keep stale statistics)."""
    from parity.features.fresh import fresh_mart, recompute

    context = pusher.update_context
    with context.lock:
        con, plan = context.ensure()
        assert context.pairs is not None and context.pairs.wait(120), context.pairs and context.pairs.problem
        numbers = context.pairs.numbers
        known = set(_mart(copied, "select distinct customer_id from MART")["customer_id"])
        ordered = sorted((c for c in numbers if c in known), key=numbers.get)
        # low numbers first, then high ones, then a customer with pushed events among others
        rounds = [ordered[:3], ordered[-3:], [ordered[len(ordered) // 2], *_sample(copied, 3)["customer_id"]]]
        at = datetime.now(timezone.utc)
        for customers in rounds:
            indexed = recompute(con, plan, customers, at, pusher.log.path, fresh_mart(plan), context.staged_log,
                                context.pairs)
            staged = recompute(con, plan, customers, at, pusher.log.path, fresh_mart(plan), context.staged_log)
            assert indexed.num_rows == len(set(customers)) and indexed.equals(staged)
        # too many records for memory: no index, rounds keep reading the staged tables
        from parity.features.fresh import staged_models
        from parity.features.fresh_cut import StagedPairs

        skipped = StagedPairs(con, staged_models(plan), max_rows=1)
        assert skipped.sql() is None and not skipped.wait(0) and "staged rows" in skipped.problem
