"""Serving configuration: serving/config.yaml (the one home of every default) loaded through the
platform's typed loader (parity.yaml_config: unknown keys, wrong types and missing keys are refused
naming the file and key), then the environment, into one frozen object."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from parity import yaml_config
from parity.yaml_config import ConfigModel

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")
LOG_SYNC_MODES = ("write", "fsync")


class ServingConfigError(ValueError):
    """serving/config.yaml (or the file given with --config) is invalid; the message names the key."""


class CanaryFile(ConfigModel):
    version: str | None
    share: float


class ShadowFile(ConfigModel):
    version: str | None


class ServingFile(ConfigModel):
    """The keys of serving/config.yaml (names and types only; the values live in the YAML)."""

    host: str
    port: int
    api_keys: list[str]
    api_keys_file: str | None
    model: str
    segments_model: str
    top_k: int
    reload_check_seconds: float
    log_flush_seconds: float
    log_flush_rows: int
    log_sync: str
    log_max_backlog_rows: int
    max_body_bytes: int
    request_at_past_days: float
    request_at_future_days: float
    shutdown_grace_seconds: float
    canary: CanaryFile
    shadow: ShadowFile


@dataclass(frozen=True)
class ServingConfig:
    """Everything the service needs besides the platform Settings (flattened from ServingFile)."""

    host: str
    port: int
    api_keys: tuple[str, ...]
    api_keys_file: str | None
    model: str
    segments_model: str
    top_k: int
    reload_check_seconds: float
    log_flush_seconds: float
    log_flush_rows: int
    log_sync: str
    log_max_backlog_rows: int
    max_body_bytes: int
    request_at_past_days: float
    request_at_future_days: float
    shutdown_grace_seconds: float
    canary_version: str | None
    canary_share: float
    shadow_version: str | None


def load_config(path: Path | str | None = None, env: dict[str, str] | None = None) -> ServingConfig:
    """serving/config.yaml, then the file at `path` (only what differs), then PARITY_API_KEYS /
    PARITY_SERVE_HOST / PARITY_SERVE_PORT from the environment."""
    env = dict(os.environ if env is None else env)
    loaded = yaml_config.load(ServingFile, DEFAULT_CONFIG, ServingConfigError, "serving config", path)
    values = loaded.model_dump()
    canary, shadow = values.pop("canary"), values.pop("shadow")
    keys = [k for k in values.pop("api_keys") if k]
    keys += [k.strip() for k in env.get("PARITY_API_KEYS", "").split(",") if k.strip()]
    config = ServingConfig(**values, api_keys=tuple(dict.fromkeys(keys)), canary_version=canary["version"],
                           canary_share=float(canary["share"]), shadow_version=shadow["version"])
    if env.get("PARITY_SERVE_HOST"):
        config = replace(config, host=env["PARITY_SERVE_HOST"])
    if env.get("PARITY_SERVE_PORT"):
        config = replace(config, port=int(env["PARITY_SERVE_PORT"]))
    if config.log_sync not in LOG_SYNC_MODES:
        raise ServingConfigError(f"{path or DEFAULT_CONFIG}: log_sync must be one of {LOG_SYNC_MODES}, got {config.log_sync!r}")
    if not 0.0 <= config.canary_share <= 1.0:
        raise ServingConfigError(f"{path or DEFAULT_CONFIG}: canary.share must be within [0, 1], got {config.canary_share}")
    return config
