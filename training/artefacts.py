"""What a registry entry holds: model bytes, calibrator, metadata (all deterministic content)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import sklearn
import xgboost

from parity.jsonable import jsonable
from parity.models.prepare import PrepareSpec
from parity.models.registry import (
    CALIBRATOR_FILE,
    CARD_FILE,
    FORMAT,
    METADATA_FILE,
    MODEL_FILE,
    dumps,
)
from training.config import TrainingConfig
from training.models import Candidate


def metrics_dict(long: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """{model: {metric: {value, ci_low, ci_high}}} from the long comparison table."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for row in long.itertuples(index=False):
        out.setdefault(row.model, {})[row.metric] = {
            "value": row.value,
            "ci_low": row.ci_low,
            "ci_high": row.ci_high,
        }
    return jsonable(out)


def build_metadata(
    *,
    config: TrainingConfig,
    features: Sequence[tuple[str, str]],
    spec: PrepareSpec,
    production: Candidate,
    candidates: Sequence[Candidate],
    window: dict[str, Any],
    purged: dict[str, int],
    fingerprint: dict[str, Any],
    dataset_file: str,
    manifest_sha256: str,
    git_commit: str,
    comparison: pd.DataFrame,
    difference: dict[str, Any],
    fairness: pd.DataFrame,
    leakage_auc: dict[str, float],
    monotone: dict[str, float],
    contributions: pd.DataFrame,
) -> dict[str, Any]:
    """metadata.json: everything needed to reproduce, audit and serve the model (no timestamps).

    Over 80 lines on purpose: one dict literal, so the file's whole layout reads in one place.
    """
    xgb_config = config.models[production.key]
    return jsonable(
        {
            "format": FORMAT,
            "model_name": config.model_name,
            "feature_service": config.service,
            "features": [[name, dtype] for name, dtype in features],
            "prepare_spec": spec.to_dict(),
            "training_window": {**window, "purged_rows": purged},
            "data_fingerprint": {**fingerprint, "file": dataset_file},
            "dbt_manifest_sha256": manifest_sha256,
            "git_commit": git_commit,
            "model": {
                "library": "xgboost",
                "library_version": xgboost.__version__,
                "params": production.params,
                "monotone_constraints": dict(xgb_config.monotone_constraints),
                "selected_by": "rolling time-based CV, mean PR-AUC",
                "cv": production.cv,
            },
            "calibration": {
                "method": production.calibrator["method"],
                "fitted_on": "validation period",
                "via": f"scikit-learn {sklearn.__version__} "
                + (
                    "LogisticRegression on logit(p) (Platt)"
                    if production.calibrator["method"] == "platt"
                    else "IsotonicRegression on p"
                ),
            },
            "threshold": production.threshold,
            "threshold_rule": "minimum expected cost FP*false_positive + FN*false_negative on the validation period "
            "(calibrated probability >= threshold -> act)",
            "costs": {
                "false_positive": config.costs.false_positive,
                "false_negative": config.costs.false_negative,
            },
            "validation_cost": production.valid_cost,
            "metrics": {
                "test": metrics_dict(comparison),
                "confidence": config.bootstrap.confidence,
                "bootstrap": f"{config.bootstrap.reps} paired percentile-bootstrap resamples of "
                + (
                    "customers, stratified by ever-churned"
                    if config.bootstrap.unit == "customer"
                    else "rows, stratified by label"
                ),
                "xgboost_vs_as_is": difference,
            },
            "baselines": {
                c.name: {
                    "params": c.params,
                    "threshold": c.threshold,
                    "validation_cost": c.valid_cost,
                }
                for c in candidates
                if c.key != production.key
            },
            "fairness": fairness.to_dict(orient="records"),
            "checks": {"single_feature_train_auc": leakage_auc, "monotone_max_violation": monotone},
            "global_contributions": dict(
                zip(contributions["feature"], contributions["mean_abs_contribution"])
            ),
            "seed": config.seed,
            "config": config.as_dict(),
        }
    )


def entry_files(production: Candidate, metadata: dict[str, Any], card: str) -> dict[str, bytes]:
    """The registry entry's files: xgboost JSON, calibrator JSON, metadata JSON, model card."""
    booster = production.estimator.get_booster()
    return {
        MODEL_FILE: bytes(booster.save_raw(raw_format="json")),
        CALIBRATOR_FILE: dumps(production.calibrator),
        METADATA_FILE: dumps(metadata),
        CARD_FILE: card.encode(),
    }
