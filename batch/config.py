"""Batch configuration: `config.yaml` loaded once into typed, frozen settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
        return json_ready(dataclasses.asdict(self))


def json_ready(value: Any) -> Any:
    """Tuples -> lists, recursively."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise BatchError(f"{where or 'batch config'} must be a mapping")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise BatchError(f"unknown key(s) {unknown} in {where or 'batch config'}; known: {sorted(names)}")
    values = {}
    for name, value in data.items():
        if cls is BatchConfig and name == "segments":
            values[name] = _build(SegmentsConfig, value or {}, "segments")
        elif isinstance(value, list):
            values[name] = tuple(value)
        else:
            values[name] = value
    return cls(**values)


def load_config(path: str | Path | None = None) -> BatchConfig:
    """Read the YAML config (default batch/config.yaml) and check the values types cannot."""
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise BatchError(f"cannot read batch config {path}: {err}") from None
    config = _build(BatchConfig, data, "")
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
