"""Training configuration: `config.yaml` loaded once into typed, frozen settings.

Every default value lives in training/config.yaml (with its reason); the models below only name
and type the keys (see parity.yaml_config).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from parity import yaml_config
from parity.yaml_config import ConfigModel
from training.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")
MODEL_KEYS = ("logistic_regression", "random_forest", "xgboost")


class SplitConfig(ConfigModel):
    """Shares of the distinct as-of times held out for test (latest) and validation (before it)."""

    test_fraction: float
    valid_fraction: float


class CVConfig(ConfigModel):
    """Rolling-origin CV inside the training period."""

    folds: int
    dates_per_fold: int


class CostConfig(ConfigModel):
    """Cost of one false positive and one false negative."""

    false_positive: float
    false_negative: float


class BootstrapConfig(ConfigModel):
    """Bootstrap resamples for confidence intervals."""

    reps: int
    segment_reps: int
    confidence: float
    unit: str


class LeakageConfig(ConfigModel):
    """Thresholds of the leakage checks."""

    max_single_feature_auc: float


class FeatureConfig(ConfigModel):
    """Feature preparation choices recorded in the prepare spec."""

    min_level_count: int
    derived: tuple[str, ...]
    fill: dict[str, float]


class BaselineConfig(ConfigModel):
    """The "as is" business rule: a single raw feature used as the score."""

    feature: str


class ModelConfig(ConfigModel):
    """One candidate model: fixed params, a small CV grid, monotone constraints (xgboost); an
    entry in config.yaml states only the parts it uses (the others are empty)."""

    params: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    monotone_constraints: dict[str, int] = Field(default_factory=dict)


class SegmentConfig(ConfigModel):
    """Segment columns for the per-segment table and the disparate-impact check."""

    columns: tuple[str, ...]
    age_band_edges: tuple[int, ...]
    min_rows: int
    disparate_impact_threshold: float


class TrainingConfig(ConfigModel):
    """Every tunable of a training run."""

    seed: int
    model_name: str
    service: str
    n_jobs: int
    progress: bool
    split: SplitConfig
    cv: CVConfig
    costs: CostConfig
    calibration: str
    bootstrap: BootstrapConfig
    leakage: LeakageConfig
    features: FeatureConfig
    baseline: BaselineConfig
    models: dict[str, ModelConfig]
    segments: SegmentConfig
    auto_promote_first: bool


merge = yaml_config.merge


def parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
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
    """training/config.yaml, then the file at `path` (only what differs), then `overrides`; validated."""
    return validate(
        yaml_config.load(TrainingConfig, DEFAULT_CONFIG, ConfigError, "training config", path, overrides)
    )
