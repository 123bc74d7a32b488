"""The monitoring report: one self-contained HTML file (tables + PNG plots embedded as base64).

The page is monitoring/templates/monitoring_report.html (the shared look, tables and plot encoding
are parity.report's); this module draws the plots and picks what the page shows.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from monitoring import drift
from monitoring.freshness import age_days
from parity.report import png_data_uri, pyplot
from parity.report import render as render_page

COLORS = {"reference": "#7f7f7f", "batch": "#1f77b4", "serving": "#d62728"}
MAX_DISTRIBUTIONS = 6

def plot_psi(table: pd.DataFrame, warn: float, alert: float) -> str:
    """PSI per feature: overall per sample (bars) and the worst group (markers)."""
    plt = pyplot()
    features = list(dict.fromkeys(table["feature"]))
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(features) + 1.5))
    samples = list(dict.fromkeys(table["sample"]))
    height = 0.8 / max(len(samples), 1)
    y = np.arange(len(features))
    for k, sample in enumerate(samples):
        part = table[table["sample"] == sample]
        overall = part[part["group"] == drift.ALL].set_index("feature")["psi"].reindex(features)
        worst = part.groupby("feature")["psi"].max().reindex(features)
        offset = (k - (len(samples) - 1) / 2) * height
        ax.barh(y + offset, overall.fillna(0), height=height, color=COLORS.get(sample), alpha=0.8,
                label=f"{sample}: all customers")
        ax.scatter(worst, y + offset, marker="|", s=120, color="black", zorder=3,
                   label="worst group" if k == 0 else None)
    ax.axvline(warn, ls=":", color="orange", label=f"warn {warn:g}")
    ax.axvline(alert, ls="--", color="red", label=f"alert {alert:g}")
    ax.set_yticks(y, features)
    ax.invert_yaxis()
    ax.set(xlabel="PSI vs training reference", title="Feature drift (PSI)")
    ax.legend(fontsize=8, loc="lower right")
    return png_data_uri(fig)


def _column(frame: pd.DataFrame, feature: str, group: str, by: str | None) -> pd.Series:
    """A feature's values, restricted to one group (all rows for the 'all' group)."""
    if group != drift.ALL and by and by in frame.columns:
        frame = frame[frame[by].astype(str) == group]
    return frame[feature] if feature in frame.columns else pd.Series(dtype=float)


def plot_distributions(f: Any) -> str:
    """Reference vs current distributions of the most shifted (feature, group) pairs."""
    table = f.feature_drift.dropna(subset=["psi"])
    if table.empty:
        return ""
    ranked = table.sort_values("psi", ascending=False).drop_duplicates(["feature"]).head(MAX_DISTRIBUTIONS)
    plt = pyplot()
    cols = 3
    rows = int(np.ceil(len(ranked) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    dtypes = dict(f.reference.features)
    by = f.config.group_by
    for ax, r in zip(axes.ravel(), ranked.itertuples()):
        series = {"reference": _column(f.reference.frame, r.feature, r.group, by)}
        series.update({name: _column(frame, r.feature, r.group, by) for name, frame in f.current.items()})
        if drift.is_categorical(dtypes.get(r.feature, "")):
            shares = pd.DataFrame({k: v.astype(object).fillna(drift.MISSING).astype(str).value_counts(normalize=True)
                                   for k, v in series.items()}).fillna(0).head(12)
            shares.plot.bar(ax=ax, color=[COLORS.get(c) for c in shares.columns], legend=False)
            ax.set_ylabel("share")
        else:
            values = {k: pd.to_numeric(v, errors="coerce").dropna().to_numpy(dtype=float) for k, v in series.items()}
            pooled = np.concatenate([v for v in values.values() if len(v)]) if any(len(v) for v in values.values()) else np.zeros(1)
            lo, hi = np.quantile(pooled, [0.01, 0.99])
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 30)
            for name, v in values.items():
                if len(v):
                    ax.hist(np.clip(v, lo, hi), bins=bins, density=True, histtype="step", lw=1.6,
                            color=COLORS.get(name), label=name)
            ax.set_ylabel("density")
        ax.set_title(f"{r.feature} ({r.group}) PSI {r.psi:.2f}", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(ranked):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    return png_data_uri(fig)


def plot_scores(f: Any) -> str:
    """Score distributions: reference (test period) vs batch vs serving."""
    series = {}
    if f.reference.scores is not None:
        series["reference"] = f.reference.scores
    for name, frame in f.current.items():
        series[name] = frame["score"].to_numpy(dtype=float)
    series = {k: v[np.isfinite(v)] for k, v in series.items() if len(v)}
    if not series:
        return ""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bins = np.linspace(0, 1, 41)
    for name, values in series.items():
        ax.hist(values, bins=bins, density=True, histtype="step", lw=1.8, color=COLORS.get(name),
                label=f"{name} (n={len(values)}, mean {values.mean():.3f})")
    ax.set(xlabel="calibrated churn score", ylabel="density", title="Prediction distribution")
    ax.legend(fontsize=8)
    return png_data_uri(fig)


def plot_trend(f: Any, history: pd.DataFrame) -> str:
    """Over batch as-of times: mean score, share at risk, score PSI, realised metric; over monitor runs: max PSI."""
    batches = f.batches.dropna(subset=["as_of_at"]) if "as_of_at" in f.batches.columns else pd.DataFrame()
    has_history = len(history) and any(c.startswith("max_psi_") for c in history.columns)
    if batches.empty and not has_history:
        return ""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    if len(batches):
        batches = batches.sort_values("as_of_at")
        x = pd.to_datetime(batches["as_of_at"])
        left.plot(x, batches["mean_score_active"], marker="o", label="mean score (active)")
        left.plot(x, batches["share_at_risk_active"], marker="s", label="share at risk (active)")
        left.plot(x, batches["score_psi"], marker="^", label="score PSI vs reference")
        perf = f.performance
        metric = f.config.performance.metric
        if len(perf) and metric in perf.columns:
            done = perf[perf["source"] == "batch"].dropna(subset=[metric])
            if len(done):
                left.plot(pd.to_datetime(done["label_as_of_at"]), done[metric], marker="D", ls="none",
                          color="black", label=f"realised {metric}")
        left.axhline(f.config.prediction.psi_alert, ls="--", color="red", lw=0.8)
        left.set(title="Batch runs by as-of time", ylim=(0, None))
        left.legend(fontsize=7)
        left.tick_params(axis="x", labelrotation=30, labelsize=7)
    else:
        left.text(0.5, 0.5, "no batch runs yet", ha="center", va="center")
        left.axis("off")
    if has_history:
        h = history.copy()
        h["generated_at"] = pd.to_datetime(h["generated_at"])
        for column in [c for c in h.columns if c.startswith("max_psi_")]:
            right.plot(h["generated_at"], h[column], marker="o", label=column.replace("max_psi_", "max PSI "))
        right.axhline(f.config.drift.psi_alert, ls="--", color="red", lw=0.8)
        right.set(title="Monitor runs: worst feature PSI")
        right.legend(fontsize=7)
        right.tick_params(axis="x", labelrotation=30, labelsize=7)
    else:
        right.text(0.5, 0.5, "first monitor run", ha="center", va="center")
        right.axis("off")
    return png_data_uri(fig)


def _consistency(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the report shows of the consistency check: counts and the per-feature table."""
    if summary is None:
        return None
    table = pd.DataFrame(summary["features"])
    if len(table):
        alerting = {(a["feature_service"], a["feature"]) for a in summary["alerts"]}
        table.insert(0, "status", ["alert" if (r.feature_service, r.feature) in alerting else "ok"
                                   for r in table.itertuples()])
        table = table[["status", "feature_service", "feature", "type", "compared", "mismatches", "mismatch_rate",
                       "missing_offline", "missing_logged", "smape"]]
    return {"status": summary["status"], "checked": summary["checked_rows"], "statuses": summary["statuses"],
            "throughput": summary["throughput_rows_per_second"], "table": table}


def render(f: Any) -> str:
    """The whole report as one HTML string."""
    from monitoring.pipeline import history_entry

    cfg = f.config
    age = age_days(f.newest_feature_at, f.now)
    table = f.feature_drift
    computed = bool(len(table))
    history = pd.concat([f.history, pd.DataFrame([history_entry(f)])], ignore_index=True)
    plots = {
        "psi": plot_psi(table, cfg.drift.psi_warn, cfg.drift.psi_alert) if computed else "",
        "distributions": plot_distributions(f) if computed else "",
        "scores": plot_scores(f),
        "trend": plot_trend(f, history),
    }
    context = {
        "title": "Parity monitoring",
        "heading": "Parity monitoring report",
        "f": f,
        "cfg": cfg,
        "model_version": str(getattr(f.reference.model, "version", "none")),
        "alerts": pd.DataFrame(f.alerts),
        "newest_feature": "unknown" if f.newest_feature_at is None
        else f"{f.newest_feature_at:%Y-%m-%d %H:%M} UTC ({age:.1f} days old)",
        "samples": "; ".join(f"{name}: {s.description}" for name, s in f.samples.items()),
        "drift_all": table[table["group"] == drift.ALL] if computed else None,
        "drift_flagged": table[(table["group"] != drift.ALL) & table["status"].isin(["warn", "drift", "skipped"])]
        if computed else None,
        "plots": plots,
        "retrain": None if f.retrain is None else json.dumps(f.retrain, indent=2, default=str),
        "consistency": _consistency(f.consistency),
        "settings": json.dumps(cfg.as_dict(), indent=2),
    }
    return render_page("monitoring", "monitoring_report.html", context)
