"""The build's tunables (how many build folders to keep, the guard thresholds).

Every value lives in ``parity/ingest/build.yaml`` with its reason; the models below only name and
type the keys (see parity.yaml_config).
"""

from __future__ import annotations

from pathlib import Path

from parity import yaml_config
from parity.yaml_config import ConfigModel

CONFIG_PATH = Path(__file__).with_name("build.yaml")


class BuildConfigError(ValueError):
    """build.yaml is unreadable or holds an invalid value."""


class GuardConfig(ConfigModel):
    """Per-client limits on how far a new build may move from the published one."""

    raw_rows_max_change: float
    quarantine_ratio_max_increase: float
    customers_lost_max: float
    feature_rows_max_change: float


class BuildConfig(ConfigModel):
    """Everything `python -m parity build` is tuned by."""

    keep_builds: int
    guards: GuardConfig


def load_build_config(path: Path = CONFIG_PATH) -> BuildConfig:
    """The build config from `path`, type- and range-checked."""
    config = yaml_config.load(BuildConfig, CONFIG_PATH, BuildConfigError, "build config", path)
    if config.keep_builds < 2:
        raise BuildConfigError(f"{path}: keep_builds must be >= 2 (the published and the previous build)")
    for name, value in config.guards.model_dump().items():
        if value < 0:
            raise BuildConfigError(f"{path}: guards.{name} must be >= 0, got {value!r}")
    return config
