"""Retention deletes exactly what is older than configured, and only when applied."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timezone

import duckdb
import pytest

from parity import reviews
from parity.config import load_settings
from parity.governance.config import RetentionConfig, load_config
from parity.governance.retention import apply_retention
from parity.ingest import builds

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=timezone.utc)
CONFIG = RetentionConfig(prediction_log_days=10, review_decisions_days=30, old_builds_days=5)
QUARANTINE_DAYS = 20


def _data(tmp_path):
    settings = load_settings(tmp_path)
    for day in ("2026-06-19", "2026-06-20", "2026-06-21"):  # cutoff 06-20 12:00: only 06-19 ended before
        part = settings.predictions_dir / f"date={day}"
        part.mkdir(parents=True)
        (part / "part-1.parquet").write_bytes(b"x")
    with reviews.connect(settings.console_dir) as con:
        for at in ("2026-05-31T11:59:59+00:00", "2026-05-31T12:00:00+00:00", "2026-06-29T00:00:00+00:00"):
            con.execute("insert into review_decisions (decided_at, who, key_name, customer_id, client_id, "
                        "batch_as_of, model_version, action) values (?, 'a', 'k', 'acme:1', 'acme', 'b', 'v1', "
                        "'approve')", [at])
            con.execute("insert into console_actions (at, who, action, detail) values (?, 'a', 'x', '{}')", [at])
    for name, finished in (("b1", "2026-06-20T00:00:00+00:00"), ("b2", "2026-06-24T00:00:00+00:00"),
                           ("b3", "2026-06-25T11:59:59+00:00"), ("b4", "2026-06-25T12:00:00+00:00")):
        (settings.builds_dir / name).mkdir(parents=True)
        builds.write_info(settings.builds_dir / name, build_id=name, started_at=finished, finished_at=finished)
    os.symlink("builds/b1", settings.published_dir)  # published and previous always stay
    os.symlink("builds/b2", settings.data_dir / "previous")
    with duckdb.connect(str(settings.builds_dir / "b1" / "warehouse.duckdb")) as con:
        con.execute("create schema quarantine")
        con.execute("create table quarantine.quarantine_acme as select * from (values "
                    "('old', timestamptz '2026-06-09 23:59:59+00'), ('new', timestamptz '2026-06-10 00:00:00+00')) "
                    "as t(raw_record, loaded_at)")
    return settings


def test_retention_is_a_dry_run_unless_applied_and_deletes_exactly_the_old(tmp_path):
    settings = _data(tmp_path)
    dry = apply_retention(settings, CONFIG, QUARANTINE_DAYS, now=NOW)
    assert not dry.applied and len(dry.deleted) == 5
    assert (settings.predictions_dir / "date=2026-06-19").exists() and (settings.builds_dir / "b3").exists()
    report = apply_retention(settings, CONFIG, QUARANTINE_DAYS, now=NOW, apply=True)
    assert report.deleted == dry.deleted and report.skipped == []
    assert sorted(p.name for p in settings.predictions_dir.iterdir()) == ["date=2026-06-20", "date=2026-06-21"]
    con = sqlite3.connect(settings.console_dir / reviews.FILE)
    assert [r[0] for r in con.execute("select decided_at from review_decisions order by 1")] == [
        "2026-05-31T12:00:00+00:00", "2026-06-29T00:00:00+00:00"]
    assert con.execute("select count(*) from console_actions").fetchone()[0] == 2
    con.close()
    assert sorted(p.name for p in settings.builds_dir.iterdir()) == ["b1", "b2", "b4"]
    with duckdb.connect(str(settings.builds_dir / "b1" / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("select raw_record from quarantine.quarantine_acme order by loaded_at").fetchall()
    assert rows == [(None,), ("new",)]  # the row stays (reconciliation counts it); its sample goes
    assert apply_retention(settings, CONFIG, QUARANTINE_DAYS, now=NOW, apply=True).deleted == []  # idempotent


def test_null_keeps_forever_and_the_shipped_config_loads(tmp_path):
    settings = _data(tmp_path)
    keep = RetentionConfig(prediction_log_days=None, review_decisions_days=None, old_builds_days=None)
    assert apply_retention(settings, keep, None, now=NOW, apply=True).deleted == []
    assert load_config().retention.prediction_log_days == 180


def test_the_quarantine_period_has_one_home_dbt_s_var(tmp_path, monkeypatch):
    """The builds and `make retention` read one period: vars.quarantine_sample_days (a run may
    override it through the environment, as the tests do); the governance config refuses it."""
    from parity.config import (
        QUARANTINE_SAMPLE_DAYS_ENV,
        ProjectConfigError,
        dbt_vars,
        quarantine_sample_days,
    )
    from parity.governance.config import GovernanceError

    monkeypatch.delenv(QUARANTINE_SAMPLE_DAYS_ENV, raising=False)
    assert quarantine_sample_days() == dbt_vars()["quarantine_sample_days"] == 90
    monkeypatch.setenv(QUARANTINE_SAMPLE_DAYS_ENV, "none")
    assert quarantine_sample_days() is None
    monkeypatch.setenv(QUARANTINE_SAMPLE_DAYS_ENV, "-3")
    with pytest.raises(ProjectConfigError, match=QUARANTINE_SAMPLE_DAYS_ENV):
        quarantine_sample_days()
    old = tmp_path / "g.yaml"
    old.write_text("retention: {quarantine_sample_days: 30}\n")
    with pytest.raises(GovernanceError, match="quarantine_sample_days"):
        load_config(old)


def test_a_bad_config_names_the_key(tmp_path):
    from parity.governance.config import GovernanceError

    bad = tmp_path / "g.yaml"
    bad.write_text("retention: {prediction_log_dayz: 3}\n")
    with pytest.raises(GovernanceError, match="prediction_log_dayz"):
        load_config(bad)


def test_a_spark_build_s_quarantine_samples_are_blanked_in_its_parquet_parts(tmp_path):
    """The scale profile's build keeps its quarantine as Spark Parquet parts (no DuckDB file):
    the same rule, part by part, other columns and rows untouched, Hadoop's stale checksum gone."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    settings = load_settings(tmp_path)
    table_dir = settings.builds_dir / "s1" / "spark" / "warehouse" / "quarantine.db" / "quarantine_acme"
    table_dir.mkdir(parents=True)
    naive = pa.timestamp("us")  # Spark's TIMESTAMP_NTZ-like UTC instants (session time zone UTC)
    stamps = [datetime(2026, 6, 9, 23, 59, 59), datetime(2026, 6, 10, 0, 0, 0), datetime(2026, 6, 1)]
    part = pa.table({"quarantine_reason": ["a", "b", "c"], "raw_record": ["x1", "x2", None],
                     "loaded_at": pa.array(stamps, naive)}).replace_schema_metadata({"org.apache.spark": "meta"})
    # Spark's default timestamp encoding (INT96); it reads no nanosecond INT64, so INT96 must stay
    pq.write_table(part, table_dir / "part-00000.parquet", use_deprecated_int96_timestamps=True)
    (table_dir / ".part-00000.parquet.crc").write_bytes(b"old checksum")
    dry = apply_retention(settings, CONFIG, QUARANTINE_DAYS, now=NOW)  # samples: 20 days back from the start of 06-30, 06-10 00:00 UTC
    assert [line for line in dry.deleted if "quarantine" in line] == [
        f"1 quarantine samples (raw_record) of {settings.builds_dir / 's1' / 'spark' / 'warehouse'}::quarantine.quarantine_acme"]
    assert pq.read_table(table_dir / "part-00000.parquet")["raw_record"].equals(part["raw_record"])
    apply_retention(settings, CONFIG, QUARANTINE_DAYS, now=NOW, apply=True)
    after = pq.read_table(table_dir / "part-00000.parquet")
    assert after["raw_record"].to_pylist() == [None, "x2", None]
    assert after["quarantine_reason"].to_pylist() == ["a", "b", "c"] and after.schema.metadata == part.schema.metadata
    assert after["loaded_at"].cast(naive).to_pylist() == stamps
    assert not (table_dir / ".part-00000.parquet.crc").exists()
    assert pq.ParquetFile(table_dir / "part-00000.parquet").schema.column(2).physical_type == "INT96"
    assert apply_retention(settings, CONFIG, QUARANTINE_DAYS, now=NOW).deleted == []
