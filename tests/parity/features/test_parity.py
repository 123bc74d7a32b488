"""`make parity`: online equals offline for every entity; deliberate skews are caught."""

from __future__ import annotations

import shutil
import subprocess
import sys

import duckdb
import pytest

from parity.config import Settings
from parity.features.parity_check import compare_values, run_parity


def test_compare_values_rules():
    assert compare_values(1.0, 1.0 + 1e-12) is None
    assert compare_values(1.0, 1.0001) is not None
    assert compare_values(None, None) is None
    assert compare_values(None, 0) == "missing on one side only"
    assert compare_values(1, 1.0).startswith("python type")


@pytest.mark.data
def test_parity_holds_for_every_entity(feature_data: Settings):
    report = run_parity(feature_data, sample_times=4)
    assert report.ok, report.summary()
    customers = duckdb.connect().execute(
        f"select count(distinct customer_id) from read_parquet('{feature_data.marts_dir}/customer_features_weekly.parquet')"
    ).fetchone()[0]
    assert report.entities_checked == customers > 0
    assert report.features_checked == 17
    assert report.values_compared == customers * 17
    assert report.historical_values_compared > 0


@pytest.fixture
def skewed_copy(feature_data: Settings, tmp_path):
    """Restore the mart after a test rewrites it (the online store stays as materialized)."""
    mart = feature_data.marts_dir / "customer_features_weekly.parquet"
    backup = tmp_path / "backup.parquet"
    shutil.copy(mart, backup)
    yield mart
    shutil.copy(backup, mart)


def _rewrite(mart, select_sql: str) -> None:
    con = duckdb.connect()
    con.execute("set TimeZone='UTC'")
    tmp = mart.with_suffix(".tmp.parquet")
    con.execute(f"copy ({select_sql.format(src='read_parquet(' + chr(39) + str(mart) + chr(39) + ')')}) to '{tmp}' (format parquet)")
    tmp.replace(mart)


@pytest.mark.data
def test_value_skew_after_materialization_is_caught(feature_data: Settings, skewed_copy):
    # the mart is rebuilt with a changed cast (rounded to cents) after the online store was loaded
    _rewrite(skewed_copy, "select * replace (round(spend_90d, 1) as spend_90d) from {src}")
    proc = subprocess.run([sys.executable, "-m", "parity", "--data-dir", str(feature_data.data_dir), "parity",
                           "--sample-times", "0"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "PARITY FAILED" in proc.stdout and "spend_90d" in proc.stdout
    assert "spend_30d:" not in proc.stdout  # only the skewed feature is named


@pytest.mark.data
def test_type_skew_is_caught_naming_the_column(feature_data: Settings, skewed_copy):
    # a decimal cast: Feast would read Decimal offline but float online
    _rewrite(skewed_copy, "select * replace (cast(spend_30d as decimal(18,2)) as spend_30d) from {src}")
    report = run_parity(feature_data, sample_times=0)
    assert not report.ok
    assert any("spend_30d" in p and "decimal" in p for p in report.schema_problems), report.summary()
