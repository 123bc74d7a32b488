"""Batch configuration: `config.yaml` loaded once into typed, frozen settings.

Every default value lives in batch/config.yaml (with its reason); the models below only name and
type the keys (see parity.yaml_config).
"""

from __future__ import annotations

from pathlib import Path

from parity import yaml_config
from parity.yaml_config import ConfigModel

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")
EXPORT_FORMATS = ("csv", "parquet")


class BatchError(RuntimeError):
    """Batch scoring or segment training cannot run; the CLI prints the message and exits 2."""


class SegmentsConfig(ConfigModel):
    """How the segments model is fitted and where it is registered."""

    model_name: str
    k: int
    seed: int
    n_init: int
    max_rows: int
    min_level_count: int
    columns: tuple[str, ...]
    log1p: tuple[str, ...]
    fill: dict[str, float]


class BatchConfig(ConfigModel):
    """Every tunable of `python -m batch`."""

    model_name: str
    top_reasons: int
    export_formats: tuple[str, ...]
    segments: SegmentsConfig


def load_config(path: str | Path | None = None) -> BatchConfig:
    """batch/config.yaml, then the file at `path` (only what differs); checks types cannot express."""
    config = yaml_config.load(BatchConfig, DEFAULT_CONFIG, BatchError, "batch config", path)
    problems = []
    from batch.score import REASON_COLUMNS  # the results table's reason columns

    if not 0 <= config.top_reasons <= len(REASON_COLUMNS):
        problems.append(
            f"top_reasons must be between 0 and {len(REASON_COLUMNS)} (the results have columns "
            f"{', '.join(REASON_COLUMNS)}), got {config.top_reasons}"
        )
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
        raise BatchError(f"invalid batch config {path or DEFAULT_CONFIG}: " + "; ".join(problems))
    return config
