"""The one place that knows paths and tunables; everything else receives values from here."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Paths of every artefact the platform reads or writes, all under ``data_dir``."""

    data_dir: Path
    project_root: Path = PROJECT_ROOT
    clients: tuple[str, ...] = ("acme", "bolt", "cora")
    dbt_target: str = "duckdb"
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def marts_dir(self) -> Path:
        return self.data_dir / "marts"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def dbt_project_dir(self) -> Path:
        return self.project_root / "dbt_project"

    @property
    def dbt_target_dir(self) -> Path:
        return self.data_dir / "dbt" / "target"

    @property
    def dbt_manifest_path(self) -> Path:
        return self.dbt_target_dir / "manifest.json"

    @property
    def feature_repo_dir(self) -> Path:
        return self.project_root / "feature_repo"

    @property
    def feast_dir(self) -> Path:
        return self.data_dir / "feast"

    @property
    def registry_dir(self) -> Path:
        return self.data_dir / "registry"

    def env(self) -> dict[str, str]:
        """Environment for subprocesses (dbt, feast) so they resolve the same paths."""
        env = dict(os.environ)
        env["PARITY_DATA_DIR"] = str(self.data_dir)
        env["PARITY_DBT_TARGET"] = self.dbt_target
        env["DBT_LOG_PATH"] = str(self.data_dir / "dbt" / "logs")
        env["DBT_TARGET_PATH"] = str(self.dbt_target_dir)
        env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        env.setdefault("FEAST_USAGE", "False")
        env.update(self.extra_env)
        return env


def load_settings(data_dir: str | Path | None = None) -> Settings:
    """Settings from the environment (PARITY_DATA_DIR, default ``<project>/data``)."""
    chosen = data_dir or os.environ.get("PARITY_DATA_DIR") or PROJECT_ROOT / "data"
    return Settings(data_dir=Path(chosen).resolve())
