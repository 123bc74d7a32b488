"""dbt on Spark equals dbt on DuckDB (issue 16): the `scale` group (`pytest -m scale`, needs Java).

One session-scoped pair of builds: small generated drops plus the corruption corpus (every kind
of bad input, tests/data/corpus.py — failed casts, impossible dates, CRLF, BOMs, quoted newlines,
JSON of the wrong type: what ANSI-off Spark would turn into silent NULLs), built by the real dbt
on DuckDB and on Spark (one JVM, in dbt's process). Every table is then compared, value by value
and type by type; every dbt test and unit test (the DST rule at 02:30 included) ran on Spark.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from parity.config import Settings
from parity.ingest import cross_engine, warehouse

pytestmark = [pytest.mark.scale, pytest.mark.data, pytest.mark.timeout(1800)]  # setup pays the Spark build


def _spark(settings: Settings) -> Path:
    return settings.published_dir


# The one kind of corpus record the engines still read differently (README "Scale-out profile"):
# a JSON amount written NaN (DuckDB's JSON reader takes it: non_finite_amount; Spark's rejects the
# whole line: missing_transaction_id). One bolt raw record; the rest follows from it. (Blanks
# around values, U+00A0 and the other Unicode space separators, are trimmed alike since
# trim_text: tests/scale/test_trim_on_spark.py.)
KNOWN_STAGING_DIFFERENCES = {"staging.stg_bolt__transactions": 2}


def test_types_agree_everywhere_and_rows_differ_only_from_known_records(engines) -> None:
    _, diffs = engines
    assert len(diffs) >= 25, [d.table for d in diffs]
    report = cross_engine.report(diffs)
    assert all(not d.type_differences and None not in d.rows.values() for d in diffs), report
    staging = {d.table: d.only_in.get("duckdb", 0) for d in diffs
               if d.table.startswith("staging.") and d.differing_rows}
    assert staging == KNOWN_STAGING_DIFFERENCES, report


@pytest.mark.xfail(strict=True, reason="known: JSON NaN (KNOWN_STAGING_DIFFERENCES)")
def test_every_table_is_identical_on_both_engines(engines) -> None:
    _, diffs = engines
    assert all(d.identical for d in diffs), cross_engine.report(diffs)


def test_every_test_and_the_dst_unit_test_ran_on_spark(engines) -> None:
    settings, _ = engines
    results = json.loads((_spark(settings) / "run" / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"].split(".")[-1]: r["status"] for r in results}
    assert statuses["acme_reads_the_repeated_dst_hour_as_standard_time"] == "pass"
    assert {s for s in statuses.values()} <= {"pass", "success"}, statuses
    assert sum(r["unique_id"].startswith("test.") for r in results) >= 100


def test_spark_marts_are_parquet_every_reader_takes(engines) -> None:
    settings, _ = engines
    marts = _spark(settings) / "marts"
    frame = pd.read_parquet(marts / "customer_features_weekly.parquet")
    assert len(frame) > 0 and str(frame["snapshot_at"].dtype) == "datetime64[us, UTC]"
    assert frame["purchase_count_90d"].dtype == "int64"


def test_the_published_spark_build_reconciles_through_the_warehouse_interface(engines) -> None:
    settings, _ = engines
    assert warehouse.engine_of(settings.published_dir) == "spark"
    table = warehouse.reconciliation(settings)
    assert set(table["client_id"]) >= {"acme", "bolt", "cora", "dune"}
    assert int(table["unaccounted_rows"].abs().sum()) == 0
    assert len(warehouse.quarantine_summary(settings)) > 0


def test_both_engines_blank_the_quarantine_samples_older_than_the_period(engines, sample_period) -> None:
    """The retention rule in the quarantine models (macros/retention.sql), on each engine: every
    sample that arrived before the cutoff NULL, every newer one kept as staging has it."""
    from datetime import datetime, time, timedelta, timezone

    settings, _ = engines

    def cutoff(day):
        return datetime.combine(day, time.min, tzinfo=timezone.utc) - timedelta(days=sample_period["days"])

    earliest, latest = cutoff(sample_period["first_day"]), cutoff(sample_period["last_day"])  # equal unless past midnight
    for folder in (_spark(settings), sample_period["duckdb"]):
        union = " union all ".join(f"select raw_record, loaded_at from quarantine.quarantine_{c}" for c in settings.clients)
        q = warehouse.query(None, f"select * from ({union})", folder=folder)
        at = pd.to_datetime(q["loaded_at"], utc=True)  # Spark's tables hold UTC instants without a zone
        old, new = q[at < earliest], q[at >= latest]
        assert len(old) > 10 and new["raw_record"].notna().sum() > 10, (folder, len(old), len(new))
        assert old["raw_record"].isna().all(), (folder, old.head().to_string())
