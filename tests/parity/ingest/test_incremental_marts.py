"""Incremental builds and the mart-side checks (README "Incremental builds"): every raw record is
still accounted for when an incremental run keeps the previous build's rows, and the data tests an
incremental run restricts to the rows it computed still fail on a bad row. Each case starts from a
copy of the session's day-N build (`built_data`) with a day appended."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from parity.config import Settings
from parity.ingest.datagen_day import append_day
from parity.ingest.pipeline import BuildFailed
from parity.ingest.warehouse import query
from tests.parity.ingest.test_incremental import _build_incremental as _incremental
from tests.parity.ingest.test_incremental import _copy_data

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
        # a transaction with a single version, and a removed duplicate (kept in the unioned rows)
        lost = con.execute("""
            select client_id, transaction_id from intermediate.int_transactions_versioned
            where client_id = 'acme' and version_number = 1 and superseded_at is null
            order by transaction_id limit 1""").fetchone()
        con.execute("delete from intermediate.int_transactions_versioned where client_id = ? and transaction_id = ?", lost)
        duplicate = con.execute("""
            select client_id, transaction_id, loaded_at from intermediate.int_transactions_unioned
            where client_id = 'bolt' and duplicate_rank > 1 order by transaction_id limit 1""").fetchone()
        assert duplicate is not None, "premise: bolt's drop has duplicates"
        con.execute("""delete from intermediate.int_transactions_unioned
                       where client_id = ? and transaction_id = ? and loaded_at = ? and duplicate_rank > 1""", duplicate)
    _next_day(settings)
    with pytest.raises(BuildFailed) as failed:
        _incremental(settings)
    message = str(failed.value)
    assert "accepted_range_reconciliation_unaccounted_rows" in message
    assert "client 'acme', transactions:" in message and "client 'bolt', transactions:" in message
    assert message.count(" 1 unaccounted") == 2, message
    assert settings.published_dir.resolve() == base
