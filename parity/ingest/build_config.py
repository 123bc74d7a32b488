"""The build's tunables (how many build folders to keep, the guard thresholds): ``build.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from parity import yaml_config

CONFIG_PATH = Path(__file__).with_name("build.yaml")


class BuildConfigError(ValueError):
    """build.yaml is unreadable or holds an invalid value."""


@dataclass(frozen=True)
class GuardConfig:
    """Per-client limits on how far a new build may move from the published one."""

    raw_rows_max_change: float = 0.5
    quarantine_ratio_max_increase: float = 0.05
    customers_lost_max: float = 0.05
    feature_rows_max_change: float = 0.25


@dataclass(frozen=True)
class BuildConfig:
    """Everything `python -m parity build` is tuned by."""

    keep_builds: int = 3
    guards: GuardConfig = field(default_factory=GuardConfig)


def load_build_config(path: Path = CONFIG_PATH) -> BuildConfig:
    """The build config from `path`, with defaults for missing keys and range checks."""
    data = yaml_config.read_yaml(path, BuildConfigError, "build config")
    config = yaml_config.build(BuildConfig, data, BuildConfigError, "build config")
    if not isinstance(config.keep_builds, int) or config.keep_builds < 2:
        raise BuildConfigError(f"{path}: keep_builds must be an integer >= 2 (published + previous)")
    for name, value in vars(config.guards).items():
        if not isinstance(value, (int, float)) or value < 0:
            raise BuildConfigError(f"{path}: guards.{name} must be a number >= 0, got {value!r}")
    return config
