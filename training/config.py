"""Training configuration: `config.yaml` loaded once into typed, frozen settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parity import yaml_config
from parity.jsonable import jsonable
from training.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")
MODEL_KEYS = ("logistic_regression", "random_forest", "xgboost")


@dataclass(frozen=True)
class SplitConfig:
    """Shares of the distinct as-of times held out for test (latest) and validation (before it)."""

    test_fraction: float = 0.2
    valid_fraction: float = 0.2


@dataclass(frozen=True)
class CVConfig:
    """Rolling-origin CV inside the training period."""

    folds: int = 3
    dates_per_fold: int = 1


@dataclass(frozen=True)
class CostConfig:
    """Cost of one false positive and one false negative."""

    false_positive: float = 10.0
    false_negative: float = 40.0


@dataclass(frozen=True)
class BootstrapConfig:
    """Bootstrap resamples for confidence intervals."""

    reps: int = 1000
    segment_reps: int = 200
    confidence: float = 0.95
    unit: str = "customer"


@dataclass(frozen=True)
class LeakageConfig:
    """Thresholds of the leakage checks."""

    max_single_feature_auc: float = 0.97


@dataclass(frozen=True)
class FeatureConfig:
    """Feature preparation choices recorded in the prepare spec."""

    min_level_count: int = 20
    derived: tuple[str, ...] = ()
    # domain fill values for missing numeric features (instead of the training median)
    fill: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BaselineConfig:
    """The "as is" business rule: a single raw feature used as the score."""

    feature: str = "days_since_last_purchase"


@dataclass(frozen=True)
class ModelConfig:
    """One candidate model: fixed params, a small CV grid, monotone constraints (xgboost)."""

    params: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    monotone_constraints: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SegmentConfig:
    """Segment columns for the per-segment table and the disparate-impact check."""

    columns: tuple[str, ...] = ("client_id", "country", "acquisition_channel", "age_band")
    age_band_edges: tuple[int, ...] = (30, 45, 60)
    min_rows: int = 50
    disparate_impact_threshold: float = 0.8


@dataclass(frozen=True)
class TrainingConfig:
    """Every tunable of a training run."""

    seed: int = 42
    model_name: str = "churn"
    service: str = "churn_v1"
    n_jobs: int = 2
    progress: bool = True
    split: SplitConfig = SplitConfig()
    cv: CVConfig = CVConfig()
    costs: CostConfig = CostConfig()
    calibration: str = "platt"
    bootstrap: BootstrapConfig = BootstrapConfig()
    leakage: LeakageConfig = LeakageConfig()
    features: FeatureConfig = FeatureConfig()
    baseline: BaselineConfig = BaselineConfig()
    models: dict[str, ModelConfig] = field(default_factory=dict)
    segments: SegmentConfig = SegmentConfig()
    auto_promote_first: bool = True

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for metadata and the report)."""
        return jsonable(dataclasses.asdict(self))


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `overrides` into a copy of `base` (see parity.yaml_config.merge)."""
    return yaml_config.merge(base, overrides)


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """`["bootstrap.reps=200", ...]` -> nested overrides (values parsed as YAML)."""
    return yaml_config.parse_assignments(assignments, ConfigError)


def validate(config: TrainingConfig) -> TrainingConfig:
    """Range checks that the types alone do not express."""
    problems = []
    unknown_models = sorted(set(config.models) - set(MODEL_KEYS))
    if unknown_models:
        raise ConfigError(f"unknown model(s) {unknown_models}; known: {list(MODEL_KEYS)}")
    if not 0 < config.split.test_fraction < 1 or not 0 < config.split.valid_fraction < 1:
        problems.append("split fractions must be in (0, 1)")
    if config.split.test_fraction + config.split.valid_fraction >= 1:
        problems.append("split.test_fraction + split.valid_fraction must leave a training period")
    if config.calibration not in ("platt", "isotonic"):
        problems.append(f"calibration must be platt or isotonic, got {config.calibration!r}")
    if config.costs.false_positive <= 0 or config.costs.false_negative <= 0:
        problems.append("costs must be positive")
    if config.cv.folds < 1 or config.cv.dates_per_fold < 1:
        problems.append("cv.folds and cv.dates_per_fold must be >= 1")
    if config.bootstrap.reps < 10 or not 0 < config.bootstrap.confidence < 1:
        problems.append("bootstrap.reps must be >= 10 and confidence in (0, 1)")
    if config.bootstrap.unit not in ("customer", "row"):
        problems.append(f"bootstrap.unit must be customer or row, got {config.bootstrap.unit!r}")
    if "xgboost" not in config.models:
        problems.append("models.xgboost is required: it is the production model")
    bad = {
        k: v
        for k, v in config.models.get("xgboost", ModelConfig()).monotone_constraints.items()
        if v not in (-1, 0, 1)
    }
    if bad:
        problems.append(f"monotone constraints must be -1, 0 or 1: {bad}")
    if problems:
        raise ConfigError("invalid training config: " + "; ".join(problems))
    return config


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainingConfig:
    """Read the YAML config (default training/config.yaml), apply overrides, validate."""
    path = Path(path) if path else DEFAULT_CONFIG
    data = yaml_config.read_yaml(path, ConfigError, "training config")
    return validate(yaml_config.build(TrainingConfig, merge(data, overrides or {}), ConfigError, "config"))
