"""Incremental builds (`python -m parity build --incremental`): day N built in full (the session's
`built_data`), day N+1 appended (new records, a late row and a correction), added incrementally
to a copy of day N's warehouse, and compared with a full build of day N+1 (same folder, same
raw files) by EXCEPT ALL both ways on every staging, quarantine, intermediate and mart table. Also: a rewritten raw file is
refused (the build falls back to everything) rather than added to."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from parity.config import Settings, load_settings
from parity.ingest import incremental
from parity.ingest.build_config import load_build_config
from parity.ingest.datagen_day import append_day
from parity.ingest.pipeline import BuildResult, run_build
from parity.ingest.warehouse import query
from tests.conftest import TEST_END_DATE, build

pytestmark = pytest.mark.data


def _copy_data(settings: Settings, to: Path) -> Settings:
    """A private copy of a data folder: raw drops, builds and the published link."""
    shutil.copytree(settings.data_dir, to, symlinks=True, ignore=shutil.ignore_patterns("build.lock", "feast*"))
    return load_settings(to)


def _build_incremental(settings: Settings) -> BuildResult:
    return run_build(settings, load_build_config(), capture=True, incremental=True)


def _newest_lines(folder: Path) -> dict[str, int]:
    """The last record's line number of each client's transaction staging table in a build."""
    return {client: int(query(None, f"select max(line_number) as n from staging.stg_{client}__transactions",
                              folder=folder)["n"].iloc[0]) for client in ("acme", "bolt", "cora")}


def test_incremental_build_equals_full_rebuild(built_data: Settings, tmp_path: Path) -> None:
    day_n = _copy_data(built_data, tmp_path / "incremental")
    before = _newest_lines(day_n.published_dir.resolve())
    appended = append_day(day_n.raw_dir, TEST_END_DATE + timedelta(days=1), records_per_client=5)

    added = _build_incremental(day_n)  # day N was built in another folder: its rows are re-pointed
    assert added.mode == "incremental"
    rebuilt = build(day_n)  # everything, from the same raw files in the same folder
    assert rebuilt.mode == "full"

    diffs = incremental.differences(added.build, rebuilt.build)
    assert {"staging.stg_acme__transactions", "marts/customer_features_weekly", "marts.reconciliation",
            "quarantine.quarantine_bolt"} <= set(diffs)
    assert {name: d for name, d in diffs.items() if d != (0, 0)} == {}

    # only the appended records (and the old last record, re-read) were parsed again
    for client, line in before.items():
        compiled = next((added.build / "run" / "compiled").rglob(f"stg_{client}__transactions.sql")).read_text()
        assert f"where parsed.line_number >= {line}\n" in compiled  # a constant: pushed below the parsing
        reparsed = query(None, f"select count(*) as n from staging.stg_{client}__transactions "
                         f"where line_number >= {line}", folder=added.build)["n"].iloc[0]
        assert reparsed == appended[client] + 1
    # the late rows and the corrections are in the canonical transactions
    versions = query(None, "select transaction_id, is_correction from intermediate.int_transactions_versioned "
                     "where loaded_at >= timestamptz '2026-06-02 00:00:00+00'", folder=added.build)
    assert versions["transaction_id"].str.contains("late").sum() == 3
    assert versions["is_correction"].sum() >= 3


def test_rewritten_raw_file_is_refused(built_data: Settings, tmp_path: Path) -> None:
    day_n = _copy_data(built_data, tmp_path / "data")
    base = day_n.published_dir.resolve()
    # the manifest a parse in the copied folder gives: the sources' files named there
    manifest = tmp_path / "manifest.json"
    text = (base / "target" / "manifest.json").read_text()
    manifest.write_text(text.replace(str(built_data.data_dir), str(day_n.data_dir)))
    assert incremental.refusal(day_n, base, manifest, ()) is None
    path = day_n.raw_dir / "acme" / "transactions.csv"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([lines[0], lines[2], lines[1], *lines[3:]]))
    reason = incremental.refusal(day_n, base, manifest, ())
    assert reason is not None and "transactions.csv" in reason and "rewritten" in reason
    assert "--vars" in (incremental.refusal(day_n, base, manifest, ("--vars", "{a: 1}")) or "")
    spark = dataclasses.replace(day_n, dbt_target="spark")
    assert "DuckDB-only" in (incremental.refusal(spark, base, manifest, ()) or "")
