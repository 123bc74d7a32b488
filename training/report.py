"""The training report (HTML + PNG plots) and the model card (Markdown).

Pages are templates in training/templates (the shared look, tables and plot saving are
parity.report's); this module computes the plots and the values the pages show.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from parity.report import pyplot, render, save_png
from training.dataset import LABEL
from training.models import AS_IS, Candidate

# per-segment metrics shown as 'value [low, high]' (counts without decimals)
SEGMENT_METRICS = ("precision", "recall", "F1", "PR-AUC", "ROC-AUC", "lift@top decile", "TP", "FP", "TN", "FN")
COLORS = {
    "as is": "#7f7f7f",
    "logistic regression": "#1f77b4",
    "random forest": "#2ca02c",
    "xgboost": "#d62728",
}


def plot_pr_curves(y: np.ndarray, candidates: Sequence[Candidate], path: Path) -> str:
    """Precision-recall curves of every model on the test period."""
    from sklearn.metrics import precision_recall_curve

    plt = pyplot()
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
    return save_png(fig, path)


def plot_lift(y: np.ndarray, candidates: Sequence[Candidate], path: Path) -> str:
    """Cumulative lift by share of customers contacted (highest scores first)."""
    plt = pyplot()
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
    return save_png(fig, path)


def plot_calibration(y: np.ndarray, candidates: Sequence[Candidate], path: Path) -> str:
    """Reliability diagram of the calibrated models (quantile bins) on the test period."""
    from sklearn.calibration import calibration_curve

    plt = pyplot()
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
    return save_png(fig, path)


def plot_intervals(
    long: pd.DataFrame, path: Path, metrics: Sequence[str] = ("PR-AUC", "ROC-AUC", "F1")
) -> str:
    """Point estimates with bootstrap CIs per model for the headline metrics."""
    plt = pyplot()
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
    return save_png(fig, path)


def plot_contributions(contributions: pd.DataFrame, path: Path) -> str:
    """Global importance: mean |TreeSHAP contribution| per feature (xgboost pred_contribs)."""
    plt = pyplot()
    part = contributions.iloc[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(part) + 1.2))
    ax.barh(part["feature"], part["mean_abs_contribution"], color=COLORS["xgboost"])
    ax.set(
        xlabel="mean |contribution| (log-odds), test period",
        title="xgboost global feature contributions",
    )
    return save_png(fig, path)


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
    window = metadata["training_window"]
    cv = pd.DataFrame(
        [
            {
                "params": str(r["params"]),
                "mean PR-AUC": r["mean_pr_auc"],
                "folds": ", ".join(f"{v:.3f}" for v in r["fold_pr_auc"]),
            }
            for r in metadata["model"]["cv"]
        ]
    )
    context = {
        "title": f"Churn model {version}",
        "heading": f"Churn model {version} — training report",
        "m": metadata,
        "created_at": created_at,
        "diff": metadata["metrics"]["xgboost_vs_as_is"],
        "window": window,
        "comparison": table,
        "segments": segment_display(segments, SEGMENT_METRICS),
        "fairness": fairness,
        "flagged": fairness[fairness["flagged"]]["dimension"].tolist(),
        "contributions": contributions,
        "periods": pd.DataFrame({k: window[k] for k in ("train", "valid", "test")}).T,
        "cv": cv,
        "images": images,
    }
    return render("training", "training_report.html", context)


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


def model_card(
    metadata: dict[str, Any],
    table: pd.DataFrame,
    fairness: pd.DataFrame,
    *,
    population_days: int,
    horizon_days: int,
) -> str:
    """MODEL_CARD.md (no timestamps: part of the deterministic registry entry). The churn
    definition's windows come from the dbt vars (churn_activity_days, churn_horizon_days)."""
    constraints = ", ".join(
        f"`{k}`: {v:+d}" for k, v in metadata["model"]["monotone_constraints"].items()
    )
    context = {
        "m": metadata,
        "table": table,
        "window": metadata["training_window"],
        "diff": metadata["metrics"]["xgboost_vs_as_is"],
        "flagged": [r["dimension"] for r in metadata["fairness"] if r["flagged"]],
        "constraints": constraints,
        "population_days": population_days,
        "horizon_days": horizon_days,
    }
    return render("training", "model_card.md", context)
