"""Serving configuration: one typed object loaded once from YAML + environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")


@dataclass(frozen=True)
class ServingConfig:
    """Everything the service needs besides the platform Settings."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: tuple[str, ...] = ()
    api_keys_file: str | None = None  # hashed keys with client scopes and roles (serving/keys.py)
    model: str = "churn"
    segments_model: str = "segments"
    max_customers: int = 1000
    top_k: int = 5
    reload_check_seconds: float = 1.0
    log_flush_seconds: float = 2.0
    log_flush_rows: int = 500
    log_sync: str = "write"
    log_max_backlog_rows: int = 1_000_000
    shutdown_grace_seconds: float = 5.0
    max_body_bytes: int = 1_048_576
    request_at_past_days: float = 3650.0
    request_at_future_days: float = 1.0
    canary_version: str | None = None
    canary_share: float = 0.0
    shadow_version: str | None = None
    extra: dict = field(default_factory=dict)


def load_config(path: Path | None = None, env: dict[str, str] | None = None) -> ServingConfig:
    """Read the YAML file, then apply PARITY_API_KEYS / PARITY_SERVE_HOST / PARITY_SERVE_PORT."""
    env = dict(os.environ if env is None else env)
    raw = yaml.safe_load((path or DEFAULT_CONFIG).read_text()) or {}
    canary, shadow = raw.pop("canary", {}) or {}, raw.pop("shadow", {}) or {}
    keys = [k for k in raw.pop("api_keys", []) or [] if k]
    keys += [k.strip() for k in env.get("PARITY_API_KEYS", "").split(",") if k.strip()]
    config = ServingConfig(
        **{k: v for k, v in raw.items() if k in ServingConfig.__dataclass_fields__},
        api_keys=tuple(dict.fromkeys(keys)),
        canary_version=canary.get("version"),
        canary_share=float(canary.get("share") or 0.0),
        shadow_version=shadow.get("version"),
    )
    if env.get("PARITY_SERVE_HOST"):
        config = replace(config, host=env["PARITY_SERVE_HOST"])
    if env.get("PARITY_SERVE_PORT"):
        config = replace(config, port=int(env["PARITY_SERVE_PORT"]))
    if config.log_sync not in ("write", "fsync"):
        raise ValueError(f"log_sync must be 'write' or 'fsync', got {config.log_sync!r}")
    if not 0.0 <= config.canary_share <= 1.0:
        raise ValueError(f"canary.share must be within [0, 1], got {config.canary_share}")
    return config
