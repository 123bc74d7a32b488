"""Serving configuration: serving/config.yaml (the one home of every default) loaded through the
platform's typed loader (parity.yaml_config: unknown keys, wrong types and missing keys are refused
naming the file and key), then the environment, into one frozen object."""

from __future__ import annotations

import os
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


class ServingConfig(ConfigModel):
    """Everything the service needs besides the platform Settings: the keys of serving/config.yaml
    (names and types only; the values live in the YAML), API keys merged with the environment's."""

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
    canary: CanaryFile
    shadow: ShadowFile

    @property
    def canary_version(self) -> str | None:
        return self.canary.version

    @property
    def canary_share(self) -> float:
        return float(self.canary.share)

    @property
    def shadow_version(self) -> str | None:
        return self.shadow.version


def load_config(path: Path | str | None = None, env: dict[str, str] | None = None) -> ServingConfig:
    """serving/config.yaml, then the file at `path` (only what differs), then PARITY_API_KEYS /
    PARITY_SERVE_HOST / PARITY_SERVE_PORT from the environment."""
    env = dict(os.environ if env is None else env)
    config = yaml_config.load(ServingConfig, DEFAULT_CONFIG, ServingConfigError, "serving config", path)
    keys = [k for k in config.api_keys if k]
    keys += [k.strip() for k in env.get("PARITY_API_KEYS", "").split(",") if k.strip()]
    update: dict[str, object] = {"api_keys": tuple(dict.fromkeys(keys))}
    if env.get("PARITY_SERVE_HOST"):
        update["host"] = env["PARITY_SERVE_HOST"]
    if env.get("PARITY_SERVE_PORT"):
        update["port"] = int(env["PARITY_SERVE_PORT"])
    config = config.model_copy(update=update)
    if config.log_sync not in LOG_SYNC_MODES:
        raise ServingConfigError(f"{path or DEFAULT_CONFIG}: log_sync must be one of {LOG_SYNC_MODES}, got {config.log_sync!r}")
    if not 0.0 <= config.canary_share <= 1.0:
        raise ServingConfigError(f"{path or DEFAULT_CONFIG}: canary.share must be within [0, 1], got {config.canary_share}")
    return config
