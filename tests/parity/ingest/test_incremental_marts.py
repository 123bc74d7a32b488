"""Incremental builds and the mart-side checks (README "Incremental builds"): every raw record is
still accounted for when an incremental run keeps the previous build's rows, and the data tests an
incremental run restricts to the rows it computed still fail on a bad row. Each case starts from a
copy of the session's day-N build (`built_data`) with a day appended."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from parity.config import Settings
from parity.ingest.datagen_day import append_day
from parity.ingest.pipeline import BuildFailed
from parity.ingest.warehouse import query
from tests.parity.ingest.test_incremental import _build_incremental as _incremental
from tests.parity.ingest.test_incremental import _append_line, _copy_data, _jsonl

pytestmark = [pytest.mark.heavy, pytest.mark.data]


def _next_day(settings: Settings) -> None:
    """Append a day's drop that crosses no grid point (two days after the last snapshot)."""
    base = settings.published_dir.resolve()
    end = query(None, f"select max(snapshot_at) as t from read_parquet('{base}/marts/customer_features_weekly.parquet')",
                folder=base)["t"].iloc[0]
    append_day(settings.raw_dir, (end + timedelta(days=2)).date(), records_per_client=5)


def test_a_record_lost_from_the_kept_rows_fails_the_incremental_build(built_data: Settings, tmp_path: Path) -> None:
    """The rows an incremental run keeps are counted again: a canonical version and a removed
    duplicate gone from the previous build's tables (no key the new day touches) fail the build
    with both named, and nothing is published."""
    settings = _copy_data(built_data, tmp_path / "data")
    base = settings.published_dir.resolve()
    with duckdb.connect(str(base / "warehouse.duckdb")) as con:
        # a transaction with a single version, and a removed duplicate
        lost = con.execute("""
            select client_id, transaction_id from intermediate.int_transactions_versioned
            where client_id = 'acme' and version_number = 1 and superseded_at is null
            order by transaction_id limit 1""").fetchone()
        con.execute("delete from intermediate.int_transactions_versioned where client_id = ? and transaction_id = ?", lost)
        # (from int_transactions_duplicates, the table reconciliation counts: on an incremental run
        # it keeps its rows of the keys the day does not touch, like int_transactions_unioned)
        duplicate = con.execute("""
            select client_id, transaction_id, loaded_at from intermediate.int_transactions_duplicates
            where client_id = 'bolt' order by transaction_id limit 1""").fetchone()
        assert duplicate is not None, "premise: bolt's drop has duplicates"
        con.execute("""delete from intermediate.int_transactions_duplicates
                       where client_id = ? and transaction_id = ? and loaded_at = ?""", duplicate)
    _next_day(settings)
    with pytest.raises(BuildFailed) as failed:
        _incremental(settings)
    message = str(failed.value)
    assert "accepted_range_reconciliation_unaccounted_rows" in message
    assert "client 'acme', transactions:" in message and "client 'bolt', transactions:" in message
    assert message.count(" 1 unaccounted") == 2, message
    assert settings.published_dir.resolve() == base


def test_a_bad_row_among_the_recomputed_customers_fails_the_restricted_interval_test(
        built_data: Settings, tmp_path: Path) -> None:
    """The interval tests of an incremental run read only the customers it recomputed
    (get_where_subquery, macros/incremental.sql): a duplicated version of a customer whose day
    brings a purchase (so it is recomputed) still fails the uniqueness test, with its name."""
    settings = _copy_data(built_data, tmp_path / "data")
    base = settings.published_dir.resolve()
    end = query(None, f"select max(snapshot_at) as t from read_parquet('{base}/marts/customer_features_weekly.parquet')",
                folder=base)["t"].iloc[0]
    with duckdb.connect(str(base / "warehouse.duckdb")) as con:
        # an old, current version of a bolt customer with snapshots, duplicated in the kept rows
        customer, transaction = con.execute("""
            select versions.customer_id, versions.transaction_id
            from intermediate.int_transactions_versioned as versions
            inner join intermediate.int_customer_snapshot_spans as spans using (customer_id)
            where versions.client_id = 'bolt' and versions.superseded_at is null and versions.version_number = 1
                and versions.transaction_type = 'purchase' and versions.transacted_at < ? - interval 60 day
            order by versions.customer_id, versions.transaction_id limit 1""", [end]).fetchone()
        con.execute("""insert into intermediate.int_transactions_versioned
                       select * from intermediate.int_transactions_versioned
                       where client_id = 'bolt' and transaction_id = ?""", [transaction])
    # the day brings that customer a purchase: its fingerprint changes, its intervals are recomputed
    records = _jsonl(settings.raw_dir / "bolt" / "transactions.jsonl")
    template = next(r for r in records if r.get("txn_id") == transaction)
    noon = (end + timedelta(days=2, hours=12)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    _append_line(settings.raw_dir / "bolt" / "transactions.jsonl",
                 json.dumps({**template, "txn_id": "bt-marts-new-1", "ts": noon, "received_at": noon}, separators=(",", ":")))
    with pytest.raises(BuildFailed) as failed:
        _incremental(settings)
    message = str(failed.value)
    assert "unique_combination_of_columns_int_transactions_snapshot_intervals" in message, message[-3000:]
    assert settings.published_dir.resolve() == base
    assert customer.startswith("bolt:")
