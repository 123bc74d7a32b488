"""Thin wiring of a monitoring run: inputs -> drift / prediction drift / performance / freshness
-> alerts -> report + JSON summary (+ history for trends)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitoring import drift, event_lag, freshness, inputs, performance, reviews
from monitoring.config import MonitoringConfig
from parity.config import ChurnPopulation, Settings
from parity.jsonable import jsonable
from parity.models import registry

REPORT_DIR = ("reports", "monitoring")


@dataclass
class Findings:
    """Everything a run found; the report and the JSON summary are renderings of it."""

    now: datetime
    data_dir: Path
    config: MonitoringConfig
    population: ChurnPopulation
    reference: inputs.Reference
    samples: dict[str, inputs.Sample]
    current: dict[str, pd.DataFrame]  # population-filtered current samples that were compared
    feature_drift: pd.DataFrame
    prediction_drift: pd.DataFrame
    performance: pd.DataFrame
    newest_feature_at: pd.Timestamp | None
    freshness: pd.DataFrame
    batches: pd.DataFrame
    history: pd.DataFrame
    alerts: list[dict[str, str]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    retrain: dict[str, Any] | None = None
    reviews: dict[str, pd.DataFrame] = field(default_factory=dict)  # monitoring.reviews.review_findings
    consistency: dict[str, Any] | None = None  # monitoring.consistency's summary (None: not run)
    event_lag: pd.DataFrame = field(default_factory=pd.DataFrame)  # monitoring.event_lag.lag_table

    @property
    def status(self) -> str:
        """'alert' when any threshold is crossed, else 'ok'."""
        return "alert" if self.alerts else "ok"


def _subsample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=max_rows, random_state=seed).reset_index(drop=True) if len(frame) > max_rows else frame


def current_rows(sample: inputs.Sample, population: ChurnPopulation, config: MonitoringConfig,
                 messages: list[str]) -> pd.DataFrame | None:
    """The sample restricted to the churn population (and subsampled)."""
    if sample.frame is None:
        return None
    keep = inputs.in_population(sample.frame, population.feature, population.min_purchases)
    if (~keep).any():
        messages.append(
            f"{sample.name}: {int((~keep).sum())} of {len(keep)} scored rows are outside the training "
            f"population ({population.feature} < {population.min_purchases}) and are not compared"
        )
    return _subsample(sample.frame[keep.to_numpy()].reset_index(drop=True), config.max_rows, config.seed)


def feature_drift(ref: inputs.Reference, current: dict[str, pd.DataFrame], config: MonitoringConfig,
                  messages: list[str]) -> pd.DataFrame:
    """Drift tables of every current sample against the reference (column `sample`)."""
    if ref.frame is None or not ref.features:
        return pd.DataFrame()
    reference = _subsample(ref.frame, config.max_rows, config.seed)
    tables = []
    for name, frame in current.items():
        table = drift.drift_table(reference, frame, ref.features, config.drift, config.min_rows, config.group_by)
        table.insert(0, "sample", name)
        tables.append(table)
        if config.group_by and config.group_by in frame.columns:
            present = set(frame[config.group_by].dropna().astype(str))
            for group in sorted(set(ref.frame[config.group_by].dropna().astype(str)) - present):
                messages.append(f"{name}: no rows for {config.group_by} '{group}' (no new data or no requests)")
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def prediction_drift(ref: inputs.Reference, current: dict[str, pd.DataFrame], first_batch: pd.DataFrame | None,
                     config: MonitoringConfig, messages: list[str]) -> pd.DataFrame:
    """Score distributions of each sample (overall and per group) vs the reference scores."""
    if ref.scores is not None and ref.frame is not None:
        ref_frame, ref_scores, against = ref.frame, ref.scores, "test-period scores"
    elif first_batch is not None and len(first_batch):
        ref_frame, ref_scores, against = first_batch, first_batch["score"].to_numpy(), "first batch"
    else:
        messages.append("no reference scores (no model/training set and no earlier batch): prediction drift skipped")
        return pd.DataFrame()
    p, rows = config.prediction, []
    for name, frame in current.items():
        groups = [(drift.ALL, np.ones(len(ref_frame), bool), np.ones(len(frame), bool))]
        by = config.group_by
        if by and by in frame.columns and by in ref_frame.columns:
            for value in sorted(set(frame[by].dropna().astype(str))):
                groups.append((value, (ref_frame[by].astype(str) == value).to_numpy(),
                               (frame[by].astype(str) == value).to_numpy()))
        for group, ref_mask, cur_mask in groups:
            row = drift.compare_scores(ref_scores[ref_mask], frame["score"].to_numpy()[cur_mask], p.psi_alert,
                                       p.ks_pvalue, p.ks_min_statistic, config.drift.bins, config.min_rows,
                                       config.drift.min_rows_per_bin)
            rows.append({"sample": name, "group": group, "against": against, **row})
    return pd.DataFrame(rows)


def batch_history(paths: list[Path], ref_scores: np.ndarray | None, config: MonitoringConfig,
                  messages: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """Per batch run: sizes, mean score, share at risk, score PSI; the scored rows of all runs
    (for realised performance); the first run's scored active rows (fallback reference)."""
    rows, scored, first = [], [], None
    for path in paths:
        results = inputs.read_batch(path, messages)
        if results is None or results.empty:
            rows.append({"file": path.name, "customers": 0})
            continue
        ok = results[results["status"] == "ok"]
        active = ok[ok["is_active"].fillna(False).astype(bool)] if "is_active" in ok.columns else ok
        if first is None and len(active):
            first = pd.DataFrame({"score": active["score"].to_numpy(), "client_id": active["client_id"].to_numpy()})
        psi = drift.psi_numeric(ref_scores, active["score"].to_numpy(), config.drift.bins) \
            if ref_scores is not None and len(active) else float("nan")
        rows.append({
            "file": path.name,
            "as_of_at": pd.Timestamp(results["as_of_at"].iloc[0]),
            "model_version": ", ".join(sorted(set(ok["model_version"].astype(str)))),
            "customers": len(results),
            "scored": len(ok),
            "no_features": int((results["status"] == "no_features").sum()),
            "active": len(active),
            "mean_score_active": float(active["score"].mean()) if len(active) else float("nan"),
            "share_at_risk_active": float(active["decision"].astype(bool).mean()) if len(active) else float("nan"),
            "score_psi": psi,
        })
        scored.append(pd.DataFrame({
            "customer_id": ok["customer_id"].astype(str).to_numpy(),
            "scored_for": pd.to_datetime(ok["as_of_at"], utc=True).to_numpy(),
            "score": ok["score"].to_numpy(dtype="float64"),
            "model_version": ok["model_version"].astype(str).to_numpy(),
            "source": "batch",
        }))
    scored_all = pd.concat(scored, ignore_index=True) if scored else pd.DataFrame()
    return pd.DataFrame(rows), scored_all, first


def version_metrics(settings: Settings, model_name: str, versions: set[str], metric: str) -> tuple[dict, dict]:
    """Each version's stored test-period metric and its threshold (unreadable versions skipped)."""
    values, thresholds = {}, {}
    for version in sorted(versions):
        try:
            meta = registry.read_metadata(settings.registry_dir, model_name, version)
            values[version] = float(meta["metrics"]["test"]["xgboost"][metric]["value"])
            thresholds[version] = float(meta["threshold"])
        except (registry.RegistryError, KeyError, TypeError, ValueError):
            continue
    return values, thresholds


def serving_scores(log: pd.DataFrame) -> pd.DataFrame:
    """Serving log rows as scores to judge against labels: `scored_for` is the time the features
    were read for (`request_at`; logs written before it was recorded fall back to `logged_at`)."""
    when = log["request_at"].fillna(log["logged_at"]) if "request_at" in log else log["logged_at"]
    return pd.DataFrame({
        "customer_id": log["customer_id"].astype(str).to_numpy(),
        "scored_for": when.to_numpy(),
        "score": log["score"].to_numpy(dtype="float64"),
        "model_version": log["model_version"].astype(str).to_numpy(),
        "source": "serving",
    })


def realised_performance(settings: Settings, config: MonitoringConfig, scored: pd.DataFrame,
                         log: pd.DataFrame | None, messages: list[str]) -> pd.DataFrame:
    """Matured labels joined to past batch scores and serving requests, judged per label as-of."""
    labels = inputs.read_labels(settings, messages)
    if labels is None:
        return pd.DataFrame()
    frames = [scored] if len(scored) else []
    if log is not None and len(log):
        frames.append(serving_scores(log))
    if not frames:
        messages.append("no past scores to join labels to: realised performance not computed")
        return pd.DataFrame()
    perf = config.performance
    tables = []
    for frame in frames:
        matched = performance.match_labels(frame, labels, perf.label_match_days)
        if matched.empty:
            messages.append(f"{frame['source'].iloc[0]}: no score has a matured label yet "
                            f"(labels need 60 days of outcome): realised performance not computed")
            continue
        values, thresholds = version_metrics(settings, config.model_name, set(matched["model_version"]), perf.metric)
        realised = performance.realised_metrics(matched, thresholds, group="label_as_of_at")
        tables.append(performance.judge(realised, values, perf.metric, perf.max_drop, perf.min_rows))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def read_history(path: Path) -> pd.DataFrame:
    """Previous runs' key numbers (one JSON object per line); unreadable lines are skipped."""
    if not path.exists():
        return pd.DataFrame()
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return pd.DataFrame(rows)


def _fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def alerts_of(f: Findings) -> list[dict[str, str]]:
    """Every crossed threshold as {check, subject, detail}."""
    alerts = []
    if len(f.feature_drift):
        for r in f.feature_drift[f.feature_drift["status"] == "drift"].itertuples():
            test = f"KS D {_fmt(r.statistic)}" if r.test == "KS" else f"Cramér's V {_fmt(r.effect)}"
            alerts.append({"check": "feature drift", "subject": f"{r.sample}/{r.group}/{r.feature}",
                           "detail": f"PSI {_fmt(r.psi)}, {test}, p {r.p_value:.1e}"})
    for name, sample in f.samples.items():
        for feature, count in sample.missing_features.items():
            alerts.append({"check": "schema", "subject": f"{name}/{feature}",
                           "detail": f"missing from {count} logged rows"})
    if len(f.prediction_drift):
        for r in f.prediction_drift[f.prediction_drift["status"] == "drift"].itertuples():
            alerts.append({"check": "prediction drift", "subject": f"{r.sample}/{r.group}",
                           "detail": f"score PSI {_fmt(r.psi)}, KS D {_fmt(r.ks_statistic)}, mean "
                                     f"{_fmt(r.mean_reference)} -> {_fmt(r.mean_current)}"})
    if len(f.performance):
        metric = f.config.performance.metric
        for r in f.performance[f.performance["status"] == "alert"].to_dict("records"):
            alerts.append({"check": "performance", "subject": f"{r['source']}/{pd.Timestamp(r['label_as_of_at']).date()}",
                           "detail": f"realised {metric} {_fmt(r[metric])} vs training {_fmt(r['training'])}"})
    age = freshness.age_days(f.newest_feature_at, f.now)
    if f.newest_feature_at is not None and age > f.config.freshness.max_feature_age_days:
        alerts.append({"check": "freshness", "subject": "features",
                       "detail": f"newest feature row {f.newest_feature_at:%Y-%m-%d %H:%M} is {age:.1f} days old"})
    for r in f.freshness[f.freshness["status"] == "stale"].itertuples() if len(f.freshness) else []:
        alerts.append({"check": "freshness", "subject": f"client {r.client_id}", "detail": r.problem})
    for a in (f.consistency or {}).get("alerts", []):
        alerts.append({"check": "consistency", "subject": f"{a['feature_service']}/{a['feature']}",
                       "detail": f"online/offline mismatch rate {_fmt(a['mismatch_rate'], 4)} "
                                 f"({a['mismatches']} of {a['compared']} logged predictions)"})
    return alerts


def consistency_section(settings: Settings, config: MonitoringConfig, messages: list[str]) -> dict[str, Any] | None:
    """The consistency check's summary (monitoring.consistency), or None with a message."""
    from monitoring import consistency
    from parity.features.consistency import breaches

    c = config.consistency
    try:
        found = consistency.run(settings, c, config.model_name)
    except Exception as err:  # noqa: BLE001 — any failure is a message in the report, never a crash
        messages.append(f"consistency check not run: {type(err).__name__}: {err}")
        return None
    messages.extend(f"consistency: {note}" for note in found.notes)
    return consistency.summary(found, c, breaches(found, c.max_mismatch_rate, c.min_rows))


def collect(settings: Settings, config: MonitoringConfig, now: datetime | None = None) -> Findings:
    """Run every check; never raises for missing or bad inputs (they become messages)."""
    now = now or datetime.now(timezone.utc)
    messages: list[str] = []
    ref = inputs.load_reference(settings, config.model_name, config.reference, messages)
    since = now - timedelta(days=config.serving_window_days)
    log = inputs.read_serving_log(settings, messages, since)
    batches = inputs.list_batches(settings)
    samples = {
        "batch": inputs.batch_sample(batches[-1] if batches else None, ref.features, messages),
        "serving": inputs.serving_sample(log, ref.features, since, messages),
    }
    population = settings.churn_population
    current = {name: rows for name, s in samples.items()
               if (rows := current_rows(s, population, config, messages)) is not None}
    history_table, scored, first = batch_history(batches, ref.scores, config, messages)
    loaded = freshness.newest_loaded(settings.published_dir, messages)
    raw = freshness.raw_files(settings.raw_dir, settings.clients, messages,
                              freshness.declared_raw_files(settings.dbt_manifest_path))
    findings = Findings(
        now=now,
        data_dir=settings.data_dir,
        config=config,
        population=population,
        reference=ref,
        samples=samples,
        current=current,
        feature_drift=feature_drift(ref, current, config, messages),
        prediction_drift=prediction_drift(ref, current, first, config, messages),
        performance=realised_performance(settings, config, scored, log, messages),
        newest_feature_at=freshness.newest_feature_at(settings.marts_dir, messages),
        freshness=freshness.freshness_table(raw, loaded, now, config.freshness),
        batches=history_table,
        history=read_history(settings.data_dir.joinpath(*REPORT_DIR) / "history.jsonl"),
        messages=messages,
        consistency=consistency_section(settings, config, messages),
        event_lag=event_lag.lag_table(settings.data_dir, now, config.serving_window_days, messages),
    )
    findings.reviews = reviews.review_findings(
        settings.console_dir, settings.data_dir / "scores", "scores_",
        lambda: inputs.read_labels(settings, []),  # a missing mart is already said by realised performance
        config.performance.label_match_days, messages)
    findings.alerts = alerts_of(findings)
    return findings


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return jsonable(frame.to_dict("records")) if len(frame) else []


def summary(f: Findings) -> dict[str, Any]:
    """The JSON summary: status, alerts, messages and every table."""
    ref = f.reference
    return jsonable({
        "status": f.status,
        "generated_at": datetime.now(timezone.utc),
        "now": f.now,
        "data_dir": f.data_dir,
        "alerts": f.alerts,
        "messages": f.messages,
        "reference": {"description": ref.description, "path": ref.path,
                      "model_version": getattr(ref.model, "version", None),
                      "rows": None if ref.frame is None else len(ref.frame)},
        "samples": {name: {"description": s.description, "rows": None if s.frame is None else len(s.frame),
                           "compared_rows": len(f.current[name]) if name in f.current else 0,
                           "missing_features": s.missing_features} for name, s in f.samples.items()},
        "feature_drift": _records(f.feature_drift),
        "prediction_drift": _records(f.prediction_drift),
        "performance": _records(f.performance),
        "freshness": {"newest_feature_at": f.newest_feature_at,
                      "feature_age_days": freshness.age_days(f.newest_feature_at, f.now),
                      "clients": _records(f.freshness)},
        "batches": _records(f.batches),
        "event_lag": _records(f.event_lag),
        "retrain": f.retrain,
        "reviews": {name: _records(table) for name, table in f.reviews.items()},
        "consistency": None if f.consistency is None else
        {k: v for k, v in f.consistency.items() if k not in ("over_time", "config")},
        "config": f.config.as_dict(),
        "population": {"feature": f.population.feature, "min_purchases": f.population.min_purchases},
    })


def history_entry(f: Findings) -> dict[str, Any]:
    """The few numbers kept per run for the trend plot."""
    entry: dict[str, Any] = {"generated_at": datetime.now(timezone.utc).isoformat(), "now": f.now.isoformat(),
                             "status": f.status, "alerts": len(f.alerts)}
    if len(f.feature_drift):
        for name, part in f.feature_drift.groupby("sample"):
            entry[f"max_psi_{name}"] = jsonable(float(part["psi"].max()))
    if len(f.prediction_drift):
        for r in f.prediction_drift[f.prediction_drift["group"] == drift.ALL].itertuples():
            entry[f"mean_score_{r.sample}"] = jsonable(r.mean_current)
    return entry


def write(f: Findings) -> tuple[Path, Path]:
    """report.html + summary.json under <data>/reports/monitoring/; appends to history.jsonl."""
    from monitoring.report import render

    out = f.data_dir.joinpath(*REPORT_DIR)
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary(f), indent=2, sort_keys=True) + "\n")
    tmp.replace(summary_path)
    report_path = out / "report.html"
    tmp = out / ".report.html.tmp"
    tmp.write_text(render(f))
    tmp.replace(report_path)
    with open(out / "history.jsonl", "a") as handle:
        handle.write(json.dumps(history_entry(f)) + "\n")
    return report_path, summary_path
