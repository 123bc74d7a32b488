"""The one place that knows paths and tunables; everything else receives values from here."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# libyaml's scanner with PyYAML's safe constructors (same values): dbt_project.yml in ~1 ms instead
# of ~10 ms with the pure-Python scanner — it is read at every start of every process, serving too
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ProjectConfigError(ValueError):
    """dbt_project.yml is missing, unreadable or declares an invalid business rule."""


@cache
def dbt_vars(project_root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The ``vars`` of dbt_project.yml: the one home of the business rules Python also needs.

    Read as plain YAML (the rules Python reads are literals, not Jinja), cached per project root.
    """
    path = project_root / "dbt_project" / "dbt_project.yml"
    try:
        project = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ProjectConfigError(f"{path}: cannot read the dbt project ({err})") from err
    found = project.get("vars") or {}
    if not isinstance(found, dict):
        raise ProjectConfigError(f"{path}: `vars` must be a mapping")
    return found


def project_clients(project_root: Path = PROJECT_ROOT) -> tuple[str, ...]:
    """The onboarded clients: ``vars.clients`` in dbt_project.yml, the only list of them."""
    clients = dbt_vars(project_root).get("clients")
    if not isinstance(clients, list) or not clients or not all(
        isinstance(c, str) and c.isidentifier() for c in clients
    ):
        raise ProjectConfigError(
            f"{project_root / 'dbt_project' / 'dbt_project.yml'}: `vars.clients` must be a non-empty "
            f"list of client names (letters, digits, underscores); got {clients!r}"
        )
    return tuple(clients)


@dataclass(frozen=True)
class ChurnPopulation:
    """Who the churn model is for: customers with at least one purchase in the `days` days up to
    the as-of time, as known then. Labels exist only for them (churn_labels.sql reads the same
    var), so training, batch's `is_active` and monitoring's comparisons all use this."""

    days: int
    min_purchases: int = 1  # "at least one purchase" is the definition, not a tunable

    @property
    def feature(self) -> str:
        """The weekly mart's purchase count over that window (the column churn_labels.sql tests)."""
        return f"purchase_count_{self.days}d"


def churn_population(project_root: Path = PROJECT_ROOT) -> ChurnPopulation:
    """The churn population from ``vars.churn_activity_days`` in dbt_project.yml, its one home."""
    days = dbt_vars(project_root).get("churn_activity_days")
    if not isinstance(days, int) or isinstance(days, bool) or days <= 0:
        raise ProjectConfigError(
            f"{project_root / 'dbt_project' / 'dbt_project.yml'}: `vars.churn_activity_days` must be "
            f"a positive whole number of days; got {days!r}"
        )
    return ChurnPopulation(days)


# Overrides vars.quarantine_sample_days for a run (dbt reads it too: macros/retention.sql); `none`
# keeps every sample. The tests set `none`: their drops end 2026-06-01, older than the period.
QUARANTINE_SAMPLE_DAYS_ENV = "PARITY_QUARANTINE_SAMPLE_DAYS"


def quarantine_sample_days(project_root: Path = PROJECT_ROOT) -> int | None:
    """Days a quarantined record's redacted text is kept: ``vars.quarantine_sample_days`` in
    dbt_project.yml, its one home (every build blanks older samples; `make retention` too)."""
    override = os.environ.get(QUARANTINE_SAMPLE_DAYS_ENV, "").strip()
    if override:
        where = QUARANTINE_SAMPLE_DAYS_ENV
        days = None if override.lower() in ("none", "null") else yaml.safe_load(override)
    else:
        where = f"{project_root / 'dbt_project' / 'dbt_project.yml'}: `vars.quarantine_sample_days`"
        days = dbt_vars(project_root).get("quarantine_sample_days")
    if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days < 0):
        raise ProjectConfigError(f"{where} must be a whole number of days >= 0 or null; got {days!r}")
    return days


# The profiles: which engines run the same project. `embedded` (the default): dbt on DuckDB, Feast's
# DuckDB offline store, SQLite online store and file registry. `scale`: dbt-spark, Feast's Spark
# offline store, Redis online store and a PostgreSQL SQL registry (README "Scale-out profile").
# Per profile: (dbt target in profiles.yml, Feast config in feature_repo/).
PROFILES: dict[str, tuple[str, str]] = {
    "embedded": ("duckdb", "feature_store.yaml"),
    "scale": ("spark", "feature_store.scale.yaml"),
}


def _profile_from_env() -> str:
    return os.environ.get("PARITY_PROFILE") or "embedded"


@dataclass(frozen=True)
class Settings:
    """Paths of every artefact the platform reads or writes, all under ``data_dir``, and the
    profile (engines) they are read and written with."""

    data_dir: Path
    project_root: Path = PROJECT_ROOT
    # PARITY_PROFILE: `embedded` (default) or `scale`; it chooses the dbt target and Feast config
    profile: str = field(default_factory=_profile_from_env)
    # the dbt target (profiles.yml): the profile's, unless PARITY_DBT_TARGET names another
    dbt_target: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    # PARITY_FEAST_CONFIG: another Feast config than the profile's (a cluster's own, or a test's)
    feast_config: str = field(default_factory=lambda: os.environ.get("PARITY_FEAST_CONFIG", ""))

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ProjectConfigError(f"PARITY_PROFILE={self.profile!r} is not a profile (known: {', '.join(PROFILES)})")
        if not self.dbt_target:
            chosen = os.environ.get("PARITY_DBT_TARGET") or PROFILES[self.profile][0]
            object.__setattr__(self, "dbt_target", chosen)

    @property
    def is_scale(self) -> bool:
        """Whether the scale-out profile (Spark, Redis, PostgreSQL) is selected."""
        return self.profile == "scale"

    @property
    def feature_store_yaml(self) -> Path:
        """The Feast configuration of the profile (stores and registry are chosen there only)."""
        if self.feast_config:
            return Path(self.feast_config).resolve()
        return self.feature_repo_dir / PROFILES[self.profile][1]

    @property
    def services_dir(self) -> Path:
        """The local Redis and PostgreSQL of the scale profile (`make services-up`, parity.services)."""
        return self.data_dir / "services"

    def feast_env(self) -> dict[str, str]:
        """The variables the profile's feature_store*.yaml names: the data folder, and for the
        scale profile the Redis connection, registry URL and Spark master. Each may be set in the
        environment (a real cluster); otherwise they point at `make services-up`'s services."""
        env = {"PARITY_DATA_DIR": str(self.data_dir)}
        if not self.is_scale and not self.feast_config:
            return env
        from parity.services import DATABASE, DEFAULT_PORTS, HOST, read_state

        state = read_state(self.services_dir)
        ports = {name: str((state.get(name) or {}).get("port") or port) for name, port in DEFAULT_PORTS.items()}
        env["PARITY_REDIS_CONNECTION"] = os.environ.get("PARITY_REDIS_CONNECTION") or f"{HOST}:{ports['redis']}"
        env["PARITY_REGISTRY_URL"] = os.environ.get("PARITY_REGISTRY_URL") or (
            f"postgresql+psycopg://{DATABASE}@{HOST}:{ports['postgres']}/{DATABASE}")
        env["PARITY_SPARK_MASTER"] = os.environ.get("PARITY_SPARK_MASTER") or "local[2]"
        # the address executors reach the driver at: loopback for local[2], the host's on a cluster
        env["PARITY_SPARK_DRIVER_HOST"] = os.environ.get("PARITY_SPARK_DRIVER_HOST") or "127.0.0.1"
        return env

    @property
    def clients(self) -> tuple[str, ...]:
        """The onboarded clients, derived from dbt's ``vars.clients`` (never listed in Python)."""
        return project_clients(self.project_root)

    @property
    def churn_population(self) -> ChurnPopulation:
        """The churn population, derived from dbt's ``vars.churn_activity_days``."""
        return churn_population(self.project_root)

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def builds_dir(self) -> Path:
        """Every build writes its own folder here (parity.ingest.builds); only a passed one is published."""
        return self.data_dir / "builds"

    @property
    def published_dir(self) -> Path:
        """The published build: a symlink to ``builds/<id>``, replaced atomically by a new build."""
        return self.data_dir / "published"

    @property
    def marts_dir(self) -> Path:
        return self.published_dir / "marts"

    @property
    def warehouse_path(self) -> Path:
        return self.published_dir / "warehouse.duckdb"

    @property
    def dbt_project_dir(self) -> Path:
        return self.project_root / "dbt_project"

    @property
    def dbt_target_dir(self) -> Path:
        """The published build's dbt target (its manifest names the published mart paths)."""
        return self.published_dir / "target"

    @property
    def dbt_manifest_path(self) -> Path:
        return self.dbt_target_dir / "manifest.json"

    @property
    def feature_repo_dir(self) -> Path:
        return self.project_root / "feature_repo"

    @property
    def feast_dir(self) -> Path:
        """The Feast folder of the profile (serving manifest, materialization marker; the embedded
        profile's registry and online store too): `feast`, or `feast-<profile>` so that switching
        profiles on one data folder never mixes their records."""
        return self.data_dir / ("feast" if self.profile == "embedded" else f"feast-{self.profile}")

    @property
    def registry_dir(self) -> Path:
        return self.data_dir / "registry"

    @property
    def scores_dir(self) -> Path:
        """Batch results, one ``scores_<as-of>.parquet`` per as-of time (``python -m batch score``)."""
        return self.data_dir / "scores"

    @property
    def predictions_dir(self) -> Path:
        """The service's prediction log (Parquet parts per day)."""
        return self.data_dir / "serving" / "predictions"

    @property
    def reports_dir(self) -> Path:
        """Training reports (``training/<version>``) and the monitoring report (``monitoring``)."""
        return self.data_dir / "reports"

    @property
    def console_dir(self) -> Path:
        """The console's own records: review decisions and its action log."""
        return self.data_dir / "console"

    def env(self) -> dict[str, str]:
        """Environment for subprocesses (dbt, feast) so they resolve the same paths."""
        env = dict(os.environ)
        env.update(self.feast_env())
        env["PARITY_PROFILE"] = self.profile
        if self.feast_config:
            env["PARITY_FEAST_CONFIG"] = self.feast_config
        env["PARITY_DBT_TARGET"] = self.dbt_target
        env["DBT_LOG_PATH"] = str(self.data_dir / "dbt" / "logs")
        env["DBT_TARGET_PATH"] = str(self.dbt_target_dir)
        # dbt writes to PARITY_BUILD_DIR only when a build sets it (extra_env); otherwise the
        # profile and mart_location resolve to the published build
        env.pop("PARITY_BUILD_DIR", None)
        env.pop("PARITY_WAREHOUSE_DIR", None)  # likewise (parity.ingest.warehouse.run_dbt)
        env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        env.setdefault("FEAST_USAGE", "False")
        # customers erased on request: staging suppresses them on every run (parity/suppression.py)
        from parity import suppression

        env.pop(suppression.ENV, None)  # never another data folder's list
        env.update(suppression.dbt_env(self.data_dir))
        env.update(self.extra_env)
        return env


def load_settings(data_dir: str | Path | None = None) -> Settings:
    """Settings from the environment (PARITY_DATA_DIR, default ``<project>/data``)."""
    chosen = data_dir or os.environ.get("PARITY_DATA_DIR") or PROJECT_ROOT / "data"
    return Settings(data_dir=Path(chosen).resolve())
