"""What the console reads, each from its one home: Settings paths and the platform's own loaders.

Every loader returns plain data and never raises for a missing or unreadable input: the page
shows the reason instead (a console that hides a missing file behind an empty table would be a
wrong result that looks right).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from parity import prediction_log
from parity.config import Settings
from parity.features.freshness import read_watermarks
from parity.models import registry

SCORES_GLOB = "scores_*.parquet"  # batch writes scores_<as-of stamp>.parquet (temp files start with '.')


@dataclass
class Loaded:
    """A table (or value) and, when it could not be read, why."""

    frame: pd.DataFrame = field(default_factory=pd.DataFrame)
    problem: str | None = None


class ScanError(RuntimeError):
    """DuckDB could not read a file (its message says which and why)."""


def _scan(sql: str, params: list[Any], con: Any = None) -> pd.DataFrame:
    """A DuckDB query over files, on `con` or a connection of its own (DuckDB is imported here:
    the service's cold start does not pay for it); a DuckDB error becomes a ScanError."""
    import duckdb

    try:
        if con is not None:
            return con.execute(sql, params).df()
        with duckdb.connect() as own:
            return own.execute(sql, params).df()
    except duckdb.Error as err:
        raise ScanError(str(err)) from err


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def score_history(settings: Settings, customer_id: str, limit: int = 500) -> Loaded:
    """A customer's scores over time: online predictions (the log, primary role) and batch runs."""
    import duckdb

    with duckdb.connect() as con:  # one connection for both scans (opening one costs ~20-50 ms)
        return _score_history(settings, customer_id, limit, con)


def _score_history(settings: Settings, customer_id: str, limit: int, con: Any) -> Loaded:
    from serving.console.history import index_of

    parts, problems = [], []
    log_dir = settings.predictions_dir
    if log_dir.is_dir():  # online scores from the process's index of the log (serving/console/history.py)
        online, unreadable = index_of(log_dir).history(customer_id, limit)
        parts.append(online)
        problems += [f"prediction log part {p}" for p in unreadable]
    if any(settings.scores_dir.glob(SCORES_GLOB)):
        try:
            parts.append(_scan(
                f"select as_of_at as at, score, model_version, status, 'batch' as source "
                f"from read_parquet('{_sql_path(settings.scores_dir)}/{SCORES_GLOB}', union_by_name=true) "
                "where customer_id = ? order by as_of_at desc limit ?", [customer_id, limit], con))
        except ScanError as err:
            problems.append(f"batch scores {settings.scores_dir}: {err}")
    parts = [p for p in parts if len(p)]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["at", "score", "model_version", "status", "source"])
    if len(frame):
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
        frame = frame.sort_values("at", kind="stable").reset_index(drop=True)
    return Loaded(frame, "; ".join(problems) or None)


def served_requests(settings: Settings, days: int = 14, now: datetime | None = None) -> Loaded:
    """One row per answered /v1/predict request of the last `days` days in the prediction log:
    when, size (customers answered), latency, and how many were ok / stale / unknown. Only the
    log's day folders the window reaches are opened (parity.prediction_log)."""
    log_dir = settings.predictions_dir
    since = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    window = prediction_log.parts(log_dir, logged_since=since)
    if not window:
        if not prediction_log.parts(log_dir):
            return Loaded(problem=f"no prediction log under {log_dir} yet (the service writes it as it answers)")
        return Loaded(pd.DataFrame(columns=["request_id", "at", "customers", "latency_ms", "ok", "stale", "unknown"]))
    try:
        frame = _scan(
            "select request_id, min(logged_at) as logged_at, count(*) as customers, max(latency_ms) as latency_ms, "
            "count(*) filter (where status = 'ok') as ok, "
            "count(*) filter (where status = 'stale_features') as stale, "
            "count(*) filter (where status in ('unknown_customer', 'malformed_customer_id')) as unknown "
            "from read_parquet(?, union_by_name=true, hive_partitioning=false) "
            "where role <> 'shadow' and logged_at >= ? group by request_id order by 2",
            [[str(p) for p in window], since])
    except ScanError as err:
        return Loaded(problem=f"prediction log {log_dir}: {err}")
    frame = frame.rename(columns={"logged_at": "at"})
    if len(frame):
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return Loaded(frame)


def latest_batch(settings: Settings) -> Path | None:
    """The newest batch results file (file names sort by as-of time)."""
    files = sorted(settings.scores_dir.glob(SCORES_GLOB))
    return files[-1] if files else None


def flagged(path: Path) -> pd.DataFrame:
    """The customers a batch flags: scored ok with a positive decision."""
    frame = _scan(f"select * from read_parquet('{_sql_path(path)}') where status = 'ok' and decision", [])
    if len(frame):
        frame["as_of_at"] = pd.to_datetime(frame["as_of_at"], utc=True)
    return frame


def find_customers(settings: Settings, client: str, text: str, limit: int = 20) -> Loaded:
    """Customers of a client whose id contains `text` (any case), from the latest batch run (one
    row per customer known to the warehouse at its as-of time)."""
    path = latest_batch(settings)
    if path is None:
        return Loaded(problem=f"no batch run under {settings.scores_dir} to search (run `make score`)")
    try:
        frame = _scan(
            f"select customer_id, status, score, decision from read_parquet('{_sql_path(path)}') "
            "where client_id = ? and contains(lower(customer_id), lower(?)) order by customer_id limit ?",
            [client, text.strip(), limit])
    except ScanError as err:
        return Loaded(problem=f"{path}: {err}")
    return Loaded(frame)


@dataclass
class ModelVersion:
    """One registered version with its metadata (or why it could not be read)."""

    version: str
    metadata: dict[str, Any]
    problem: str | None = None


def model_versions(settings: Settings, model: str) -> tuple[list[ModelVersion], dict[str, Any] | None, str | None]:
    """Every registered version (newest first), the `current` pointer, and a problem if any."""
    try:
        versions = registry.list_versions(settings.registry_dir, model)
        pointer = registry.read_pointer(settings.registry_dir, model)
    except Exception as err:  # a broken registry is shown, not raised
        return [], None, f"registry {settings.registry_dir / model}: {err}"
    out = []
    for version in reversed(versions):
        try:
            out.append(ModelVersion(version, registry.read_metadata(settings.registry_dir, model, version)))
        except Exception as err:
            out.append(ModelVersion(version, {}, f"metadata unreadable: {err}"))
    return out, pointer, None


def model_card(settings: Settings, model: str, version: str) -> str | None:
    """A version's MODEL_CARD.md (checksums verified), or None when it has none or is unreadable."""
    try:
        return registry.verified_files(settings.registry_dir / model / version)["MODEL_CARD.md"].decode()
    except Exception:
        return None


def model_costs(registry_dir: Path, model: str, version: str) -> dict[str, float] | None:
    """The costs a version was trained with (metadata `costs`: false_positive, false_negative)."""
    try:
        costs = registry.read_metadata(registry_dir, model, version).get("costs") or {}
        return {"false_positive": float(costs["false_positive"]), "false_negative": float(costs["false_negative"])}
    except Exception:
        return None


def training_report(settings: Settings, version: str, name: str = "report.html") -> Path | None:
    """A file of a version's training report folder (None when absent or outside it)."""
    folder = (settings.reports_dir / "training" / version).resolve()
    path = (folder / name).resolve()
    if path.parent != folder or path.suffix not in (".html", ".png") or not path.is_file():
        return None
    return path


def reconciliation(settings: Settings) -> Loaded:
    """The reconciliation mart per client and raw table (warehouse)."""
    from parity.ingest.warehouse import reconciliation as read

    return _warehouse(settings, read)


def quarantine(settings: Settings) -> Loaded:
    """Quarantined rows per client, table and reason (warehouse)."""
    from parity.ingest.warehouse import quarantine_summary

    return _warehouse(settings, quarantine_summary)


def _warehouse(settings: Settings, read: Any) -> Loaded:
    from parity.ingest import warehouse

    where = warehouse.location(settings.published_dir)
    if not warehouse.exists(settings.published_dir):
        return Loaded(problem=f"warehouse {where} does not exist: run `make build`")
    try:
        return Loaded(read(settings))
    except Exception as err:  # locked by a running build, table missing: say so
        return Loaded(problem=f"warehouse {where}: {err}")


_LINEAGE: dict[str, Any] = {}  # the published build's column lineage, kept while its artefacts are unchanged
_LINEAGE_LOCK = threading.Lock()


def column_lineage(settings: Settings) -> tuple[Any, str | None]:
    """`parity.ingest.column_lineage.ColumnLineage` of the published build (its run manifest's
    compiled SQL, else the fresh plan's, which partial builds keep), or why there is none.

    Kept in memory per build: tracing parses every upstream model's SQL (seconds), once."""
    from parity.ingest.column_lineage import ColumnLineage
    from parity.ingest.fresh_plan import PLAN_FILE

    build = settings.published_dir
    manifest_path = build / "run" / "manifest.json"
    if not manifest_path.exists():
        manifest_path = settings.dbt_manifest_path
    try:
        key = f"{manifest_path.resolve()}:{manifest_path.stat().st_mtime_ns}"
    except OSError as err:
        return None, f"no dbt manifest in the published build ({err}): run `make build`"
    with _LINEAGE_LOCK:
        if _LINEAGE.get("key") != key:
            try:
                manifest = json.loads(manifest_path.read_text())
                plan = json.loads((build / PLAN_FILE).read_text()) if (build / PLAN_FILE).exists() else {}
            except (OSError, ValueError) as err:
                return None, f"{manifest_path}: {err}"
            sql = {name: node["sql"] for name, node in (plan.get("nodes") or {}).items() if node.get("sql")}
            _LINEAGE.clear()
            _LINEAGE.update(key=key, lineage=ColumnLineage(manifest, sql))
        return _LINEAGE["lineage"], None


def watermarks(settings: Settings) -> Loaded:
    """Each client's watermark (client_watermarks mart)."""
    marks = read_watermarks(settings.marts_dir)
    frame = pd.DataFrame({"client_id": list(marks.by_client), "watermark_at": list(marks.by_client.values())})
    return Loaded(frame, marks.problem)


def monitoring_summary(settings: Settings) -> tuple[dict[str, Any] | None, str | None]:
    """The last monitoring run's summary.json (status, alerts, messages), or why there is none."""
    return report_summary(settings, "monitoring", "make monitor")


def consistency_summary(settings: Settings) -> tuple[dict[str, Any] | None, str | None]:
    """The last `make consistency` run's summary.json (status, checked rows, alerts), or why none."""
    return report_summary(settings, "consistency", "make consistency")


def report_summary(settings: Settings, name: str, command: str) -> tuple[dict[str, Any] | None, str | None]:
    """<reports>/<name>/summary.json, or why there is none (the command that writes it)."""
    path = settings.reports_dir / name / "summary.json"
    if not path.exists():
        return None, f"not run: {path} does not exist (`{command}` writes it)"
    try:
        return json.loads(path.read_text()), None
    except (OSError, ValueError) as err:
        return None, f"{path}: {err}"
