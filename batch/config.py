"""Batch configuration: `config.yaml` loaded once into typed, frozen settings."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parity import yaml_config
from parity.jsonable import jsonable

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")
EXPORT_FORMATS = ("csv", "parquet")


class BatchError(RuntimeError):
    """Batch scoring or segment training cannot run; the CLI prints the message and exits 2."""


@dataclass(frozen=True)
class SegmentsConfig:
    """How the segments model is fitted and where it is registered."""

    model_name: str = "segments"
    k: int = 5
    seed: int = 42
    n_init: int = 10
    max_rows: int = 20000
    min_level_count: int = 20
    columns: tuple[str, ...] = ()
    log1p: tuple[str, ...] = ()
    fill: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchConfig:
    """Every tunable of `python -m batch`."""

    model_name: str = "churn"
    active_feature: str = "purchase_count_90d"
    top_reasons: int = 3
    export_formats: tuple[str, ...] = EXPORT_FORMATS
    segments: SegmentsConfig = field(default_factory=SegmentsConfig)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (recorded in the segments metadata)."""
        return jsonable(dataclasses.asdict(self))


def load_config(path: str | Path | None = None) -> BatchConfig:
    """Read the YAML config (default batch/config.yaml) and check the values types cannot."""
    path = Path(path) if path else DEFAULT_CONFIG
    data = yaml_config.read_yaml(path, BatchError, "batch config")
    config = yaml_config.build(BatchConfig, data, BatchError, "batch config")
    problems = []
    if config.top_reasons < 0:
        problems.append("top_reasons must be >= 0")
    bad = [f for f in config.export_formats if f not in EXPORT_FORMATS]
    if bad:
        problems.append(f"export_formats {bad} unknown; known: {list(EXPORT_FORMATS)}")
    if config.segments.k < 2:
        problems.append("segments.k must be >= 2")
    if not config.segments.columns:
        problems.append("segments.columns must name at least one prepared column")
    stray = [c for c in config.segments.log1p if c not in config.segments.columns]
    if stray:
        problems.append(f"segments.log1p names columns that are not clustered: {stray}")
    if problems:
        raise BatchError(f"invalid batch config {path}: " + "; ".join(problems))
    return config
