"""The training report (HTML + PNG plots) and the model card (Markdown)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.dataset import LABEL
from training.models import AS_IS, Candidate

COLORS = {
    "as is": "#7f7f7f",
    "logistic regression": "#1f77b4",
    "random forest": "#2ca02c",
    "xgboost": "#d62728",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    _pyplot().close(fig)
    return path.name


def plot_pr_curves(y: np.ndarray, candidates: Sequence[Candidate], path: Path) -> str:
    """Precision-recall curves of every model on the test period."""
    from sklearn.metrics import precision_recall_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for c in candidates:
        precision, recall, _ = precision_recall_curve(y, np.nan_to_num(c.test_scores, posinf=1e12))
        ax.plot(recall, precision, label=c.name, color=COLORS.get(c.name))
    ax.axhline(y.mean(), ls=":", color="black", lw=1, label=f"base rate {y.mean():.3f}")
    ax.set(
        xlabel="recall",
        ylabel="precision",
        title="Precision-recall, test period",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def plot_lift(y: np.ndarray, candidates: Sequence[Candidate], path: Path) -> str:
    """Cumulative lift by share of customers contacted (highest scores first)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    share = np.arange(1, len(y) + 1) / len(y)
    for c in candidates:
        order = np.argsort(-np.nan_to_num(c.test_scores, posinf=1e12), kind="stable")
        lift = np.cumsum(y[order]) / np.arange(1, len(y) + 1) / y.mean()
        ax.plot(share, lift, label=c.name, color=COLORS.get(c.name))
    ax.axhline(1.0, ls=":", color="black", lw=1)
    ax.axvline(0.1, ls="--", color="grey", lw=0.8)
    ax.set(
        xlabel="share of customers contacted",
        ylabel="lift over random",
        title="Cumulative lift, test period",
        xlim=(0, 1),
        ylim=(0, None),
    )
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_calibration(y: np.ndarray, candidates: Sequence[Candidate], path: Path) -> str:
    """Reliability diagram of the calibrated models (quantile bins) on the test period."""
    from sklearn.calibration import calibration_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], ls=":", color="black", lw=1, label="perfect")
    for c in candidates:
        if c.key == AS_IS:
            continue
        observed, predicted = calibration_curve(y, c.test_scores, n_bins=10, strategy="quantile")
        ax.plot(predicted, observed, marker="o", ms=3, label=c.name, color=COLORS.get(c.name))
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed churn rate",
        title="Calibration, test period",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_intervals(
    long: pd.DataFrame, path: Path, metrics: Sequence[str] = ("PR-AUC", "ROC-AUC", "F1")
) -> str:
    """Point estimates with bootstrap CIs per model for the headline metrics."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2))
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        part = long[long["metric"] == metric].reset_index(drop=True)
        for i, row in part.iterrows():
            ax.errorbar(
                row["value"],
                i,
                xerr=[[row["value"] - row["ci_low"]], [row["ci_high"] - row["value"]]],
                fmt="o",
                color=COLORS.get(row["model"]),
                capsize=3,
            )
        ax.set_yticks(range(len(part)), part["model"])
        ax.invert_yaxis()
        ax.set_title(f"{metric} (95% CI)")
    return _save(fig, path)


def plot_contributions(contributions: pd.DataFrame, path: Path) -> str:
    """Global importance: mean |TreeSHAP contribution| per feature (xgboost pred_contribs)."""
    plt = _pyplot()
    part = contributions.iloc[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(part) + 1.2))
    ax.barh(part["feature"], part["mean_abs_contribution"], color=COLORS["xgboost"])
    ax.set(
        xlabel="mean |contribution| (log-odds), test period",
        title="xgboost global feature contributions",
    )
    return _save(fig, path)


def _table(frame: pd.DataFrame, **kwargs: Any) -> str:
    return frame.to_html(
        border=0, classes="t", na_rep="–", float_format=lambda v: f"{v:.3f}", **kwargs
    )


def segment_display(segments: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Segment rows with 'value [low, high]' cells for the chosen metrics."""
    shown = segments[["dimension", "segment", "rows", "prevalence", "decision_rate"]].copy()
    for metric in metrics:
        counts = metric in ("TP", "FP", "TN", "FN")
        fmt = "{:.0f}" if counts else "{:.3f}"
        shown[metric] = [
            (fmt.format(v) if np.isfinite(v) else "–")
            + (f" [{fmt.format(lo)}, {fmt.format(hi)}]" if np.isfinite(lo) else "")
            for v, (lo, hi) in zip(segments[metric], segments[f"{metric} ci"])
        ]
    return shown


CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table.t{border-collapse:collapse;font-size:13px;margin:.5em 0 1.5em}table.t td,table.t th{padding:3px 8px;
border-bottom:1px solid #ddd;text-align:right}table.t th{background:#f4f4f4}h2{margin-top:1.6em}
.flag{color:#b00;font-weight:bold}img{max-width:100%;margin:.5em 0}code{background:#f4f4f4;padding:1px 4px}"""


def render_html(
    *,
    version: str,
    metadata: dict[str, Any],
    table: pd.DataFrame,
    segments: pd.DataFrame,
    fairness: pd.DataFrame,
    contributions: pd.DataFrame,
    images: dict[str, str],
    created_at: str,
) -> str:
    """The report page (tables inline, plots linked as PNG files next to it)."""
    e = html.escape
    diff = metadata["metrics"]["xgboost_vs_as_is"]
    window = metadata["training_window"]
    periods = pd.DataFrame({k: window[k] for k in ("train", "valid", "test")}).T
    cv_rows = pd.DataFrame(
        [
            {
                "params": str(r["params"]),
                "mean PR-AUC": r["mean_pr_auc"],
                "folds": ", ".join(f"{v:.3f}" for v in r["fold_pr_auc"]),
            }
            for r in metadata["model"]["cv"]
        ]
    )
    flagged = fairness[fairness["flagged"]]["dimension"].tolist()
    seg_metrics = [
        "precision",
        "recall",
        "F1",
        "PR-AUC",
        "ROC-AUC",
        "lift@top decile",
        "TP",
        "FP",
        "TN",
        "FN",
    ]
    parts = [
        (
            f"<!doctype html><html><head><meta charset='utf-8'><title>Churn model {e(version)}</title>"
            f"<style>{CSS}</style></head><body>"
        ),
        f"<h1>Churn model {e(version)} — training report</h1>",
        (
            f"<p>Created {e(created_at)} · feature service <code>{e(metadata['feature_service'])}</code> · "
            f"git {e(metadata['git_commit'][:12])} · dbt manifest sha256 {e(metadata['dbt_manifest_sha256'][:12])} · "
            f"data sha256 {e(metadata['data_fingerprint']['sha256'][:12])} ({metadata['data_fingerprint']['rows']} rows)</p>"
        ),
        "<h2>Model comparison on the held-out test period</h2>",
        (
            f"<p>Point estimate [{metadata['metrics']['confidence']:.0%} CI: {e(metadata['metrics']['bootstrap'])}]. "
            "Thresholds were chosen on the validation period to minimise expected cost "
            f"(FP = {metadata['costs']['false_positive']:g}, FN = {metadata['costs']['false_negative']:g}); "
            f"probabilities calibrated on validation ({e(metadata['calibration']['method'])}). "
            "“as is” ranks by days since the last purchase and flags customers with no purchase for N days.</p>"
        ),
        _table(table),
        (
            f"<p>xgboost − as is, PR-AUC: <b>{diff['difference']:+.3f}</b> "
            f"[{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}] (paired bootstrap; "
            f"{'excludes' if diff['excludes_zero'] else 'includes'} 0); the two models' own intervals "
            f"{'overlap' if diff['marginal_cis_overlap'] else 'do not overlap'}.</p>"
        ),
        (
            f"<p>Production model: xgboost, threshold <b>{metadata['threshold']:.4f}</b> on calibrated probability; "
            f"as-is rule N = {metadata['baselines']['as is']['threshold']:.1f} days.</p>"
        ),
        f"<img src='{images['intervals']}' alt='metric intervals'>",
        f"<img src='{images['pr']}' alt='PR curves'><img src='{images['lift']}' alt='lift curve'>",
        f"<img src='{images['calibration']}' alt='calibration curve'>",
        "<h2>Per-segment metrics (xgboost, test period)</h2>",
        "<p>Age band = as-of year − birth year. Decision rate = share flagged for action.</p>",
        _table(segment_display(segments, seg_metrics), index=False),
        "<h2>Disparate impact of decisions</h2>",
        (
            f"<p>min/max positive-decision rate across segments with ≥ {metadata['config']['segments']['min_rows']} rows; "
            f"flagged below {metadata['config']['segments']['disparate_impact_threshold']}. "
            "prevalence_ratio is the same ratio of observed churn rates: a gap that mirrors a churn-rate gap "
            "needs review, not automatic correction.</p>"
        ),
        (
            f"<p class='flag'>Flagged: {e(', '.join(flagged))}</p>"
            if flagged
            else "<p>No dimension flagged.</p>"
        ),
        _table(fairness, index=False),
        "<h2>Global feature contributions (xgboost TreeSHAP, pred_contribs)</h2>",
        f"<img src='{images['contributions']}' alt='feature contributions'>",
        _table(contributions, index=False),
        "<h2>Data and splits</h2>",
        f"<p>Purged rows (label window reaching the next period): {e(str(window['purged_rows']))}.</p>",
        _table(periods),
        "<h2>Hyperparameter search (xgboost, rolling time-based CV on the training period)</h2>",
        _table(cv_rows, index=False),
        "<h2>Checks</h2>",
        (
            f"<p>Monotone constraints (max violation when sweeping the feature on real test rows): "
            f"{e(str(metadata['checks']['monotone_max_violation']))}. Single-feature train ROC-AUC (leakage screen, "
            f"limit {metadata['config']['leakage']['max_single_feature_auc']}): "
            f"{e(str(metadata['checks']['single_feature_train_auc']))}.</p>"
        ),
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(
    out_dir: Path,
    *,
    version: str,
    metadata: dict[str, Any],
    test: pd.DataFrame,
    candidates: Sequence[Candidate],
    long: pd.DataFrame,
    table: pd.DataFrame,
    segments: pd.DataFrame,
    fairness: pd.DataFrame,
    contributions: pd.DataFrame,
    created_at: str,
) -> Path:
    """Write report.html and its PNG plots into `out_dir`; returns the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    y = test[LABEL].to_numpy().astype(float)
    images = {
        "pr": plot_pr_curves(y, candidates, out_dir / "pr_curves.png"),
        "lift": plot_lift(y, candidates, out_dir / "lift.png"),
        "calibration": plot_calibration(y, candidates, out_dir / "calibration.png"),
        "intervals": plot_intervals(long, out_dir / "comparison.png"),
        "contributions": plot_contributions(contributions, out_dir / "contributions.png"),
    }
    page = render_html(
        version=version,
        metadata=metadata,
        table=table,
        segments=segments,
        fairness=fairness,
        contributions=contributions,
        images=images,
        created_at=created_at,
    )
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def model_card(metadata: dict[str, Any], table: pd.DataFrame, fairness: pd.DataFrame) -> str:
    """MODEL_CARD.md (no timestamps: part of the deterministic registry entry)."""
    window = metadata["training_window"]
    features = "\n".join(
        f"| {i + 1} | `{name}` | {dtype} |" for i, (name, dtype) in enumerate(metadata["features"])
    )
    diff = metadata["metrics"]["xgboost_vs_as_is"]
    flagged = [r["dimension"] for r in metadata["fairness"] if r["flagged"]]
    fairness_rows = "\n".join(
        f"| {r['dimension']} | {_ratio(r['ratio'])} | {'**yes**' if r['flagged'] else 'no'} | "
        f"{r['lowest']} | {r['highest']} |"
        for r in metadata["fairness"]
    )
    table_md = (
        "| metric | " + " | ".join(table.columns) + " |\n|---|" + "---|" * len(table.columns) + "\n"
    )
    table_md += "\n".join(
        f"| {metric} | " + " | ".join(row) + " |" for metric, row in table.iterrows()
    )
    constraints = ", ".join(
        f"`{k}`: {v:+d}" for k, v in metadata["model"]["monotone_constraints"].items()
    )
    return f"""# Model card: {metadata["model_name"]} (xgboost, feature service `{metadata["feature_service"]}`)

## Intended use
Scores active customers (at least one purchase in the last 90 days) of our clients by the risk that
they make **no purchase in the next 60 days**, so that account teams can target retention offers.
Decision: act when the calibrated churn probability is >= **{metadata["threshold"]:.4f}**, the threshold with
the lowest expected cost on the validation period (false positive = {metadata["costs"]["false_positive"]:g},
false negative = {metadata["costs"]["false_negative"]:g}). Not for credit, pricing or any decision about a person
beyond an optional retention offer; not validated for customers without purchase history.

## Model
- xgboost {metadata["model"]["library_version"]}, params `{metadata["model"]["params"]}`, selected by
  {metadata["model"]["selected_by"]}.
- Monotone constraints: {constraints}.
- Calibration: {metadata["calibration"]["method"]}, fitted on the validation period.
- Input: the feature service below, prepared by `parity.models.prepare.prepare` with the stored spec
  (one-hot of string features over training levels, training-median imputation, derived
  {metadata["prepare_spec"]["derived"]}).

## Data
- Labels: `churn_labels` mart; features point-in-time from Feast (`{metadata["feature_service"]}`).
- Train as-of {window["train"]["as_of_min"][:10]} .. {window["train"]["as_of_max"][:10]} ({window["train"]["rows"]} rows),
  validation {window["valid"]["as_of_min"][:10]} .. {window["valid"]["as_of_max"][:10]} ({window["valid"]["rows"]}),
  test {window["test"]["as_of_min"][:10]} .. {window["test"]["as_of_max"][:10]} ({window["test"]["rows"]}).
  Rows whose 60-day label window reaches the next period were dropped: {window["purged_rows"]}.
- Data fingerprint sha256 `{metadata["data_fingerprint"]["sha256"]}`; dbt manifest sha256
  `{metadata["dbt_manifest_sha256"]}`; git commit `{metadata["git_commit"]}`.

## Features (order and types are checked on promotion)
| # | feature | type |
|---|---|---|
{features}

## Evaluation (test period, {metadata["metrics"]["confidence"]:.0%} bootstrap CIs)
{table_md}

xgboost − as is, PR-AUC: {diff["difference"]:+.3f} [{diff["ci_low"]:+.3f}, {diff["ci_high"]:+.3f}] (paired bootstrap; the two models' own intervals {"overlap" if diff["marginal_cis_overlap"] else "do not overlap"}).

## Fairness (disparate impact of decisions, min/max rate; flagged below {metadata["config"]["segments"]["disparate_impact_threshold"]})
| dimension | ratio | flagged | lowest | highest |
|---|---|---|---|---|
{fairness_rows}

{"Flagged dimensions: " + ", ".join(flagged) + ". Review before use: decision-rate gaps can mirror real churn-rate gaps (see the report), but they still mean unequal treatment." if flagged else "No dimension flagged."}

## Limitations
- Trained on synthetic data for three clients; a new client, country or channel maps to `__other__`.
- A label is "no purchase in 60 days", not an account closure; seasonality beyond the training window is unseen.
- Calibration holds for the validation period's churn rate; recalibrate when the base rate moves.
"""
