"""The monitoring report: one self-contained HTML file (tables + PNG plots embedded as base64)."""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

import numpy as np
import pandas as pd

from monitoring import drift
from monitoring.freshness import age_days

COLORS = {"reference": "#7f7f7f", "batch": "#1f77b4", "serving": "#d62728"}
STATUS_COLORS = {"drift": "#f8d7da", "alert": "#f8d7da", "stale": "#f8d7da", "warn": "#fff3cd",
                 "ok": "#d4edda", "skipped": "#e2e3e5"}
MAX_DISTRIBUTIONS = 6

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}.banner{padding:.6em 1em;font-size:1.2em;font-weight:600}
.alert{background:#f8d7da}.ok{background:#d4edda}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
li{margin:.2em 0}code{background:#f4f4f4;padding:0 3px}
"""


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    """A figure as an <img> tag with a base64 PNG data URI."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, status_column: str | None = "status", digits: int = 3) -> str:
    """An HTML table; rows coloured by their status."""
    if frame is None or frame.empty:
        return "<p><em>nothing to show</em></p>"

    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            if not np.isfinite(value):
                return ""
            return f"{value:.1e}" if value != 0 and abs(value) < 10 ** -digits else f"{value:.{digits}f}"
        if isinstance(value, pd.Timestamp):
            return "" if pd.isna(value) else value.strftime("%Y-%m-%d %H:%M")
        return "" if value is None or value is pd.NA or value is pd.NaT else html.escape(str(value))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        values = dict(zip(frame.columns, row))
        color = STATUS_COLORS.get(str(values.get(status_column)), "") if status_column else ""
        style = f' style="background:{color}"' if color else ""
        body.append(f"<tr{style}>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def plot_psi(table: pd.DataFrame, warn: float, alert: float) -> str:
    """PSI per feature: overall per sample (bars) and the worst group (markers)."""
    plt = _pyplot()
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
    return _png(fig)


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
    plt = _pyplot()
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
    return _png(fig)


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
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bins = np.linspace(0, 1, 41)
    for name, values in series.items():
        ax.hist(values, bins=bins, density=True, histtype="step", lw=1.8, color=COLORS.get(name),
                label=f"{name} (n={len(values)}, mean {values.mean():.3f})")
    ax.set(xlabel="calibrated churn score", ylabel="density", title="Prediction distribution")
    ax.legend(fontsize=8)
    return _png(fig)


def plot_trend(f: Any, history: pd.DataFrame) -> str:
    """Over batch as-of times: mean score, share at risk, score PSI, realised metric; over monitor runs: max PSI."""
    batches = f.batches.dropna(subset=["as_of_at"]) if "as_of_at" in f.batches.columns else pd.DataFrame()
    has_history = len(history) and any(c.startswith("max_psi_") for c in history.columns)
    if batches.empty and not has_history:
        return ""
    plt = _pyplot()
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
    return _png(fig)


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>" if items else "<p>none</p>"


def render(f: Any) -> str:
    """The whole report as one HTML string."""
    from monitoring.pipeline import history_entry

    cfg = f.config
    model = html.escape(str(getattr(f.reference.model, "version", "none")))
    parts = [
        (f"<!doctype html><html><head><meta charset='utf-8'><title>Parity monitoring</title><style>{CSS}</style>"
         "</head><body><h1>Parity monitoring report</h1>"),
        f"<div class='banner {f.status}'>status: {f.status.upper()} — {len(f.alerts)} threshold(s) crossed</div>",
        (f"<p>evaluated at {f.now:%Y-%m-%d %H:%M} UTC · data folder <code>{html.escape(str(f.data_dir))}</code>"
         f" · model {model} · reference: {html.escape(f.reference.description or 'none')}</p>"),
    ]
    parts.append("<h2>Alerts</h2>" + _table(pd.DataFrame(f.alerts), None))
    parts.append("<h2>Messages</h2>" + _list(f.messages))

    parts.append("<h2>Freshness</h2>")
    age = age_days(f.newest_feature_at, f.now)
    newest = "unknown" if f.newest_feature_at is None else f"{f.newest_feature_at:%Y-%m-%d %H:%M} UTC ({age:.1f} days old)"
    parts.append(f"<p>newest feature row: {newest}; limit {cfg.freshness.max_feature_age_days:g} days</p>")
    parts.append(_table(f.freshness))

    parts.append("<h2>Feature drift</h2>")
    samples = "; ".join(f"{name}: {html.escape(s.description)}" for name, s in f.samples.items())
    parts.append(f"<p>{samples}. Current rows are restricted to the training population "
                 f"({html.escape(f.population.feature)} &gt;= {f.population.min_purchases}). Drift = PSI &gt;= "
                 f"{cfg.drift.psi_alert:g}, or KS p &lt; {cfg.drift.ks_pvalue:g} with D &gt;= "
                 f"{cfg.drift.ks_min_statistic:g} (chi-square p &lt; {cfg.drift.chi2_pvalue:g} with Cramér's V &gt;= "
                 f"{cfg.drift.cramers_v_min:g}); warn = PSI &gt;= {cfg.drift.psi_warn:g}.</p>")
    table = f.feature_drift
    if len(table):
        parts.append(plot_psi(table, cfg.drift.psi_warn, cfg.drift.psi_alert))
        parts.append("<h3>All customers</h3>" + _table(table[table["group"] == drift.ALL]))
        flagged = table[(table["group"] != drift.ALL) & table["status"].isin(["warn", "drift", "skipped"])]
        parts.append(f"<h3>Per {html.escape(str(cfg.group_by))} (warn, drift and skipped only)</h3>" + _table(flagged))
        parts.append("<h3>Distributions of the most shifted features</h3>" + plot_distributions(f))
    else:
        parts.append("<p><em>not computed (see messages)</em></p>")

    parts.append("<h2>Prediction drift</h2>")
    parts.append(_table(f.prediction_drift) + plot_scores(f))

    parts.append("<h2>Realised performance</h2>")
    parts.append(f"<p>Labels matured since scoring, matched within {cfg.performance.label_match_days:g} days; "
                 f"alert when {html.escape(cfg.performance.metric)} drops more than {cfg.performance.max_drop:g} "
                 f"below the model's test-period value (at least {cfg.performance.min_rows} labels).</p>")
    parts.append(_table(f.performance))

    parts.append("<h2>Trend</h2>")
    history = pd.concat([f.history, pd.DataFrame([history_entry(f)])], ignore_index=True)
    parts.append(plot_trend(f, history) or "<p><em>no batch runs and no earlier monitor runs yet</em></p>")
    parts.append("<h3>Batch runs</h3>" + _table(f.batches, None))

    if f.retrain is not None:
        parts.append("<h2>Retraining</h2><pre>" + html.escape(json.dumps(f.retrain, indent=2, default=str)) + "</pre>")
    parts.append("<h2>Settings</h2><pre>" + html.escape(json.dumps(cfg.as_dict(), indent=2)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
