"""`--retrain`: train a candidate (never auto-promoted), then promote it only if it beats the
current model on the same held-out rows.

Stored test metrics of two versions come from different test periods once new data arrived, so
they are not compared directly: both models are re-scored on the candidate's test period (the
latest as-of times of the fresh training set) and compared on one metric there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from monitoring.config import RetrainConfig
from parity.config import Settings
from parity.features.retrieval import TIME_COLUMN
from parity.models import loaded, registry

LABEL = "is_churned"


@dataclass
class RetrainOutcome:
    """The candidate, both models' metric on the same rows and the promotion decision."""

    candidate: str
    current: str | None
    metric: str
    period: dict[str, Any]
    candidate_value: float
    current_value: float | None
    promoted: bool
    reason: str
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the summary."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in self.__dict__.items()}


def metric_value(metric: str, y: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """One training metric (training.metrics definitions) on rows as they are."""
    from training.metrics import point_metrics

    values = point_metrics(y, scores, (scores >= threshold).astype("float64"), 1.0, 1.0)
    if metric not in values:
        raise ValueError(f"unknown metric {metric!r}; known: {sorted(values)}")
    return float(values[metric])


def held_out_rows(frame: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
    """Rows of a training set inside the model's held-out test period."""
    start = pd.Timestamp(metadata["training_window"]["test"]["as_of_min"])
    times = pd.to_datetime(frame[TIME_COLUMN], utc=True)
    return frame[times >= start].reset_index(drop=True)


def decide(
    candidate_value: float, current_value: float | None, min_improvement: float
) -> tuple[bool, str]:
    """Promote when nothing is current or the candidate is better by more than min_improvement."""
    if current_value is None:
        return True, "no model was current"
    if not np.isfinite(candidate_value):
        return False, "the candidate's metric is undefined on the test period"
    if not np.isfinite(current_value) or candidate_value > current_value + min_improvement:
        return True, f"candidate beats current by {candidate_value - current_value:+.4f} (> {min_improvement:+.4f})"
    return False, f"candidate does not beat current ({candidate_value - current_value:+.4f} <= {min_improvement:+.4f})"


def retrain(settings: Settings, config: RetrainConfig, model_name: str = "churn") -> RetrainOutcome:
    """Train (auto_promote=False), compare on the candidate's test period, promote if better."""
    from parity.features.feature_store import open_store
    from parity.features.retrieval import service_schema
    from training import dataset
    from training.config import load_config as load_training_config
    from training.pipeline import run

    training_config = load_training_config(
        config.training_config, {"model_name": model_name, **dict(config.training_overrides)}
    )
    result = run(settings, training_config, auto_promote=False)
    candidate = loaded.load_version(settings.registry_dir, model_name, result.version)
    frame, _ = dataset.load_dataset(result.dataset_path)
    held_out = held_out_rows(frame, candidate.metadata)
    y = held_out[LABEL].to_numpy(dtype="float64")
    notes: list[str] = []
    cand_scores = candidate.predict_proba(candidate.prepare(held_out))[:, 1]
    cand_value = metric_value(config.metric, y, cand_scores, candidate.threshold)
    current_version = registry.current_version(settings.registry_dir, model_name)
    current_value = None
    if current_version is not None and current_version != result.version:
        try:
            current = loaded.load_version(settings.registry_dir, model_name, current_version)
            cur_scores = current.predict_proba(current.prepare(held_out))[:, 1]
            current_value = metric_value(config.metric, y, cur_scores, current.threshold)
        except (registry.RegistryError, ValueError, KeyError) as err:  # unreadable, or needs other features
            notes.append(f"current {current_version} cannot be scored on the new test period: {err}")
            current_value = float("nan")
        else:
            seen = pd.Timestamp(current.metadata["training_window"]["valid"]["label_window_end_max"])
            if seen > pd.Timestamp(candidate.metadata["training_window"]["test"]["as_of_min"]):
                notes.append(
                    f"current {current_version} saw outcomes up to {seen.date()}, inside the new test "
                    "period: its value there is optimistic (a bar the candidate must clear anyway)"
                )
    promoted, reason = decide(cand_value, current_value, config.min_improvement)
    if current_value is not None and not np.isfinite(current_value):
        promoted, reason = False, "current model could not be evaluated; promote by hand if intended"
    if promoted:
        store = open_store(settings)
        try:
            registry.promote(
                settings.registry_dir, model_name, result.version, lambda name: service_schema(store, name).features
            )
        except registry.PromotionError as err:  # no recorded approval (parity.models.approvals): a person decides
            promoted, reason = False, f"{reason}; not promoted: {err}"
    window = candidate.metadata["training_window"]["test"]
    return RetrainOutcome(
        candidate=result.version,
        current=current_version,
        metric=config.metric,
        period={"as_of_min": window["as_of_min"], "as_of_max": window["as_of_max"], "rows": len(held_out)},
        candidate_value=cand_value,
        current_value=current_value,
        promoted=promoted,
        reason=reason,
        notes=notes,
    )
