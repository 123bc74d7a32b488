"""Realised performance: scores whose 60-day outcome has since matured, against the labels.

A label (customer, as-of t) matches a score (customer, time s) when |t - s| <= tolerance (labels
exist every 4th weekly snapshot; batch runs may sit a second after a snapshot). Metrics use the
training code's definitions (training.metrics), so the realised PR-AUC is comparable with the
test-period PR-AUC stored in the model's metadata.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.metrics import point_metrics

REPORTED = ("PR-AUC", "ROC-AUC", "precision", "recall")


def match_labels(scored: pd.DataFrame, labels: pd.DataFrame, tolerance_days: float) -> pd.DataFrame:
    """Scored rows (customer_id, scored_for, score, ...) with the nearest label within tolerance."""
    if scored.empty or labels.empty:
        return scored.iloc[0:0].assign(is_churned=pd.Series(dtype="float64"))
    left = scored.copy()
    left["scored_for"] = pd.to_datetime(left["scored_for"], utc=True).astype("datetime64[us, UTC]")
    right = labels.rename(columns={"as_of_at": "label_as_of_at"}).copy()
    right["label_as_of_at"] = right["label_as_of_at"].astype("datetime64[us, UTC]")
    right["scored_for"] = right["label_as_of_at"]
    merged = pd.merge_asof(
        left.sort_values("scored_for"),
        right.sort_values("scored_for"),
        on="scored_for",
        by="customer_id",
        direction="nearest",
        tolerance=pd.Timedelta(days=tolerance_days),
    )
    return merged[merged["is_churned"].notna()].reset_index(drop=True)


def realised_metrics(
    matched: pd.DataFrame, threshold_of: dict[str, float], group: str = "scored_for"
) -> pd.DataFrame:
    """Per group (as-of time or day): rows, positives and REPORTED metrics at each model's threshold."""
    rows = []
    for key, part in matched.groupby(group, sort=True):
        y = part["is_churned"].to_numpy(dtype="float64")
        scores = part["score"].to_numpy(dtype="float64")
        versions = part["model_version"].astype(str)
        thresholds = versions.map(lambda v: threshold_of.get(v, np.nan)).to_numpy(dtype="float64")
        decision = scores >= thresholds
        row: dict[str, Any] = {
            group: key,
            "source": part["source"].iloc[0],
            "model_version": ", ".join(sorted(set(versions))),
            "rows": len(part),
            "positives": int(y.sum()),
        }
        if 0 < y.sum() < len(y):
            values = point_metrics(y, scores, decision.astype("float64"), 1.0, 1.0)
            row.update({name: values[name] for name in REPORTED})
        else:
            row.update({name: float("nan") for name in REPORTED})
        rows.append(row)
    return pd.DataFrame(rows)


def judge(
    realised: pd.DataFrame, training_of: dict[str, float], metric: str, max_drop: float, min_rows: int
) -> pd.DataFrame:
    """Adds the scoring model's test-period value, the difference and a status to each row."""
    if realised.empty:
        return realised
    out = realised.copy()
    out["training"] = out["model_version"].map(lambda v: training_of.get(v, np.nan)).astype("float64")
    out["difference"] = out[metric] - out["training"]
    too_few = out["rows"] < min_rows
    out["status"] = np.where(too_few, "too few labels", np.where(out["difference"] < -max_drop, "alert", "ok"))
    out.loc[out[metric].isna() & ~too_few, "status"] = "one class only"
    return out
