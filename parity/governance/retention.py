"""`make retention`: delete what is older than the configured periods (governance config
`retention:`), reporting every deletion. A dry run unless applied (`make retention APPLY=1`):
deleting is not undoable, so the default shows what would go.

- prediction log: a day partition (`date=YYYY-MM-DD`) goes once its whole day is older than the
  period (its end <= now - days), so nothing younger than the period is deleted;
- review decisions and console actions: rows whose time is older than the period;
- quarantine samples: the redacted raw text (`raw_record`) of quarantined records that arrived
  before the period (whole UTC days back from the start of today) is blanked in every build's warehouse (a DuckDB file by an update, a Spark
  build by rewriting its quarantine tables' Parquet parts); the row (reason, file, line, hash)
  stays, so reconciliation still balances. The period is dbt's `vars.quarantine_sample_days`:
  every build blanks the same samples as of its own time (macros/retention.sql), so a rebuild
  never brings one back; this rule catches up builds as they age;
- old builds: build folders other than the published and previous ones, finished before the period.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import duckdb

from parity import prediction_log, reviews
from parity.config import Settings
from parity.governance.config import RetentionConfig
from parity.ingest import builds, warehouse


@dataclass
class RetentionReport:
    """What was (or, in a dry run, would be) deleted, one line per item."""

    applied: bool
    now: datetime
    deleted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def cutoff(now: datetime, days: int | None) -> datetime | None:
    """The instant before which records are deleted (None: kept forever)."""
    return None if days is None else now - timedelta(days=days)


def sample_cutoff(now: datetime, days: int | None) -> datetime | None:
    """Quarantine samples: `days` whole UTC days back from the start of `now`'s day, the cutoff
    every build applies too (dbt_project/macros/retention.sql), so builds of one day agree."""
    if days is None:
        return None
    day_start = datetime.combine(now.astimezone(timezone.utc).date(), time.min, tzinfo=timezone.utc)
    return day_start - timedelta(days=days)


def apply_retention(settings: Settings, config: RetentionConfig, quarantine_sample_days: int | None,
                    now: datetime | None = None, apply: bool = False) -> RetentionReport:
    """Every retention rule; deletes only when `apply`. The quarantine period is dbt's
    (`parity.config.quarantine_sample_days`): builds blank the same samples when they run."""
    report = RetentionReport(apply, now or datetime.now(timezone.utc))
    _prediction_log(settings.predictions_dir, cutoff(report.now, config.prediction_log_days), report)
    _reviews(settings.console_dir, cutoff(report.now, config.review_decisions_days), report)
    _quarantine_samples(settings, sample_cutoff(report.now, quarantine_sample_days), report)
    _old_builds(settings, cutoff(report.now, config.old_builds_days), report)
    return report


def _prediction_log(folder: Path, before: datetime | None, report: RetentionReport) -> None:
    if before is None or not folder.is_dir():
        return
    for part in sorted(folder.iterdir()):
        day_end = prediction_log.day_end(part.name)
        if day_end is None or not part.is_dir():
            continue
        if day_end <= before:
            files = len(list(part.glob("*.parquet")))
            report.deleted.append(f"prediction log {part} ({files} parts, day ended {day_end.isoformat()})")
            if report.applied:
                shutil.rmtree(part)


def _reviews(folder: Path, before: datetime | None, report: RetentionReport) -> None:
    path = folder / reviews.FILE
    if before is None or not path.exists():
        return
    stamp = before.isoformat(timespec="seconds")  # the tables' own format: comparable as text
    con = sqlite3.connect(path, timeout=30)
    try:
        with con:
            for table, column in (("review_decisions", "decided_at"), ("console_actions", "at")):
                count = con.execute(f"select count(*) from {table} where {column} < ?", [stamp]).fetchone()[0]
                if count:
                    report.deleted.append(f"{count} rows of {path}::{table} before {stamp}")
                    if report.applied:
                        con.execute(f"delete from {table} where {column} < ?", [stamp])
    finally:
        con.close()


def _quarantine_samples(settings: Settings, before: datetime | None, report: RetentionReport) -> None:
    if before is None or not settings.builds_dir.is_dir():
        return
    for folder in sorted(f for f in settings.builds_dir.iterdir() if warehouse.exists(f)):
        path = warehouse.location(folder)
        if warehouse.engine_of(folder) == "spark":
            _spark_quarantine_samples(folder, before, report)
            continue
        try:
            opened = warehouse.connect_for_update(folder) if report.applied else warehouse.connect(folder)
            with opened as con:
                tables = con.execute("select table_schema, table_name from information_schema.tables where "
                                     "table_schema = 'quarantine' and table_type = 'BASE TABLE'").fetchall()
                for schema, table in tables:
                    where = "raw_record is not null and loaded_at < ?"
                    count = con.execute(f'select count(*) from "{schema}"."{table}" where {where}', [before]).fetchone()[0]
                    if count:
                        report.deleted.append(f"{count} quarantine samples (raw_record) of {path}::{schema}.{table}")
                        if report.applied:
                            con.execute(f'update "{schema}"."{table}" set raw_record = null where {where}', [before])
        except (duckdb.Error, warehouse.WarehouseMissing) as err:
            report.skipped.append(f"{path}: not changed ({str(err).splitlines()[0]})")


def _spark_quarantine_samples(folder: Path, before: datetime, report: RetentionReport) -> None:
    """A Spark build's quarantine tables (Parquet parts): the same blanking, part by part."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def blank(table: pa.Table) -> tuple[pa.Table, int]:
        loaded = table["loaded_at"]
        if loaded.type.tz is None:  # Spark writes UTC instants without a zone (session time zone UTC)
            loaded = loaded.cast(pa.timestamp(loaded.type.unit, tz="UTC"))
        old = pc.fill_null(pc.and_(pc.is_valid(table["raw_record"]), pc.less(loaded, pa.scalar(before))), False)
        rows = pc.sum(old).as_py() or 0
        if not rows:
            return table, 0
        index = table.schema.get_field_index("raw_record")
        kept = pc.if_else(old, pa.scalar(None, table["raw_record"].type), table["raw_record"])
        return table.set_column(index, table.schema.field(index), kept), rows

    tables = sorted(t for s, t in warehouse.spark_relations(folder) if s == "quarantine")
    for table in tables:
        try:
            count = warehouse.update_spark_table(folder, "quarantine", table, blank, report.applied)
        except (OSError, ValueError, KeyError, pa.ArrowException) as err:
            report.skipped.append(f"{warehouse.location(folder)}::quarantine.{table}: not changed ({err})")
            continue
        if count:
            report.deleted.append(f"{count} quarantine samples (raw_record) of "
                                  f"{warehouse.location(folder)}::quarantine.{table}")


def _old_builds(settings: Settings, before: datetime | None, report: RetentionReport) -> None:
    if before is None or not settings.builds_dir.is_dir():
        return
    pinned = {b.path.resolve() for b in (builds.published(settings), builds.previous(settings)) if b is not None}
    for folder in sorted(p for p in settings.builds_dir.iterdir() if p.is_dir()):
        info = builds.read_info(folder)
        stamp = (info.finished_at or info.started_at) if info else None
        if folder.resolve() in pinned or stamp is None:
            continue
        if datetime.fromisoformat(stamp.replace("Z", "+00:00")) < before:
            report.deleted.append(f"build {folder.name} (finished {stamp})")
            if report.applied:
                shutil.rmtree(folder)
