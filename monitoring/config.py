"""Monitoring configuration: `config.yaml` loaded once into typed, frozen settings.

Every default value lives in monitoring/config.yaml (with its reason); the models below only name
and type the keys (see parity.yaml_config).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from parity import yaml_config
from parity.yaml_config import ConfigModel

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")
REFERENCES = ("test_period", "all")


class MonitoringError(RuntimeError):
    """Monitoring cannot run at all (bad config, unreadable registry); exit status 2."""


class DriftConfig(ConfigModel):
    """Thresholds of the per-feature drift statistics."""

    bins: int
    psi_warn: float
    psi_alert: float
    ks_pvalue: float
    ks_min_statistic: float
    chi2_pvalue: float
    cramers_v_min: float
    min_rows_per_bin: int
    smoothing: float


class PredictionConfig(ConfigModel):
    """Thresholds of the score-distribution comparison."""

    psi_alert: float
    ks_pvalue: float
    ks_min_statistic: float


class PerformanceConfig(ConfigModel):
    """Realised performance on matured labels."""

    metric: str
    max_drop: float
    min_rows: int
    label_match_days: float


class FreshnessConfig(ConfigModel):
    """Maximum ages (days) before data counts as stale."""

    max_feature_age_days: float
    max_raw_file_age_days: float
    max_loaded_at_age_days: float
    max_client_lag_days: float


class RetrainConfig(ConfigModel):
    """How `--retrain` trains and when it promotes."""

    metric: str
    min_improvement: float
    training_config: str | None
    training_overrides: dict[str, Any]


class ConsistencyConfig(ConfigModel):
    """Online/offline consistency from the prediction log (monitoring.consistency)."""

    max_mismatch_rate: float
    min_rows: int
    max_rows: int
    chunk_rows: int
    include_batch: bool
    relative_tolerance: float
    absolute_tolerance: float
    max_examples: int


class MonitoringConfig(ConfigModel):
    """Every tunable of `python -m monitoring`."""

    model_name: str
    reference: str
    group_by: str | None
    serving_window_days: float
    max_rows: int
    seed: int
    min_rows: int
    drift: DriftConfig
    prediction: PredictionConfig
    performance: PerformanceConfig
    freshness: FreshnessConfig
    retrain: RetrainConfig
    consistency: ConsistencyConfig
    alert_exit_code: int


merge = yaml_config.merge


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> MonitoringConfig:
    """monitoring/config.yaml, then the file at `path` (only what differs), then `overrides`; validated."""
    config = yaml_config.load(MonitoringConfig, DEFAULT_CONFIG, MonitoringError, "monitoring config", path, overrides)
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
    c = config.consistency
    if not 0 <= c.max_mismatch_rate <= 1 or c.max_rows < 1 or c.chunk_rows < 1 or c.min_rows < 0:
        problems.append("consistency: need 0 <= max_mismatch_rate <= 1, max_rows >= 1, chunk_rows >= 1, min_rows >= 0")
    if config.min_rows < 2 or config.max_rows < config.min_rows:
        problems.append("need 2 <= min_rows <= max_rows")
    if problems:
        raise MonitoringError(f"invalid monitoring config {path or DEFAULT_CONFIG}: " + "; ".join(problems))
    return config
