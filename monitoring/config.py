"""Monitoring configuration: `config.yaml` loaded once into typed, frozen settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parity import yaml_config

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")
REFERENCES = ("test_period", "all")


class MonitoringError(RuntimeError):
    """Monitoring cannot run at all (bad config, unreadable registry); exit status 2."""


@dataclass(frozen=True)
class PopulationConfig:
    """Which current rows belong to the model's training population."""

    feature: str | None = "purchase_count_90d"
    min: float = 1.0


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds of the per-feature drift statistics."""

    bins: int = 10
    psi_warn: float = 0.10
    psi_alert: float = 0.25
    ks_pvalue: float = 0.01
    ks_min_statistic: float = 0.20
    chi2_pvalue: float = 0.01
    cramers_v_min: float = 0.20
    min_rows_per_bin: int = 20
    smoothing: float = 0.5


@dataclass(frozen=True)
class PredictionConfig:
    """Thresholds of the score-distribution comparison."""

    psi_alert: float = 0.25
    ks_pvalue: float = 0.01
    ks_min_statistic: float = 0.20


@dataclass(frozen=True)
class PerformanceConfig:
    """Realised performance on matured labels."""

    metric: str = "PR-AUC"
    max_drop: float = 0.05
    min_rows: int = 100
    label_match_days: float = 3.5


@dataclass(frozen=True)
class FreshnessConfig:
    """Maximum ages (days) before data counts as stale."""

    max_feature_age_days: float = 8.0
    max_raw_file_age_days: float = 8.0
    max_loaded_at_age_days: float = 8.0
    max_client_lag_days: float = 3.0


@dataclass(frozen=True)
class RetrainConfig:
    """How `--retrain` trains and when it promotes."""

    metric: str = "PR-AUC"
    min_improvement: float = 0.0
    training_config: str | None = None
    training_overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MonitoringConfig:
    """Every tunable of `python -m monitoring`."""

    model_name: str = "churn"
    reference: str = "test_period"
    population: PopulationConfig = field(default_factory=PopulationConfig)
    group_by: str | None = "client_id"
    serving_window_days: float = 7.0
    max_rows: int = 20000
    seed: int = 42
    min_rows: int = 50
    drift: DriftConfig = field(default_factory=DriftConfig)
    prediction: PredictionConfig = field(default_factory=PredictionConfig)
    performance: PerformanceConfig = field(default_factory=PerformanceConfig)
    freshness: FreshnessConfig = field(default_factory=FreshnessConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    alert_exit_code: int = 3

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (recorded in the JSON summary)."""
        return dataclasses.asdict(self)


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `overrides` into a copy of `base` (see parity.yaml_config.merge)."""
    return yaml_config.merge(base, overrides)


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> MonitoringConfig:
    """Read the YAML config (default monitoring/config.yaml), apply overrides, validate."""
    path = Path(path) if path else DEFAULT_CONFIG
    data = yaml_config.read_yaml(path, MonitoringError, "monitoring config")
    config = yaml_config.build(MonitoringConfig, merge(data, overrides or {}), MonitoringError, "monitoring config")
    problems = []
    if config.reference not in REFERENCES:
        problems.append(f"reference must be one of {list(REFERENCES)}, got {config.reference!r}")
    d = config.drift
    if not 0 < d.psi_warn <= d.psi_alert:
        problems.append("drift: need 0 < psi_warn <= psi_alert")
    if d.bins < 2:
        problems.append("drift.bins must be >= 2")
    for name, p in (("drift.ks_pvalue", d.ks_pvalue), ("drift.chi2_pvalue", d.chi2_pvalue),
                    ("prediction.ks_pvalue", config.prediction.ks_pvalue)):
        if not 0 < p < 1:
            problems.append(f"{name} must be in (0, 1)")
    if config.min_rows < 2 or config.max_rows < config.min_rows:
        problems.append("need 2 <= min_rows <= max_rows")
    if problems:
        raise MonitoringError(f"invalid monitoring config {path}: " + "; ".join(problems))
    return config
