"""Governance configuration: `config.yaml` next to this module, typed (see parity.yaml_config)."""

from __future__ import annotations

from pathlib import Path

from parity import yaml_config
from parity.yaml_config import ConfigModel

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")


class GovernanceError(RuntimeError):
    """A governance command cannot run; the CLI prints the message and exits 2."""


class RiskConfig(ConfigModel):
    """Who owns a decision model and how often its risk register is reviewed."""

    owner: str
    review_every_days: int
    purpose: str


class RetentionConfig(ConfigModel):
    """Days each kind of record is kept (None: forever). Quarantine samples: dbt's
    `vars.quarantine_sample_days` (the builds apply it; parity.config.quarantine_sample_days)."""

    prediction_log_days: int | None
    review_decisions_days: int | None
    old_builds_days: int | None


class PrivacyConfig(ConfigModel):
    """Minimum group size and the differential-privacy budget per client."""

    min_group_size: int
    epsilon_budget_per_client: float
    default_epsilon: float


class GovernanceConfig(ConfigModel):
    """Every tunable of parity.governance."""

    risk: RiskConfig
    retention: RetentionConfig
    privacy: PrivacyConfig


def load_config(path: str | Path | None = None) -> GovernanceConfig:
    """config.yaml, then the file at `path` (only what differs); refuses negative periods."""
    config = yaml_config.load(GovernanceConfig, DEFAULT_CONFIG, GovernanceError, "governance config", path)
    days = {k: v for k, v in config.retention.model_dump().items() if v is not None and v < 0}
    if days or config.privacy.min_group_size < 1 or config.privacy.epsilon_budget_per_client <= 0:
        raise GovernanceError(f"invalid governance config {path or DEFAULT_CONFIG}: retention days must be >= 0 "
                              f"({days}), privacy.min_group_size >= 1, epsilon budget > 0")
    return config
