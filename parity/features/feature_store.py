"""Feast operations on the platform's feature repo: open, apply, materialize."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from parity.config import Settings


class FeatureStoreError(RuntimeError):
    """A Feast step cannot run; the message says which make target fixes it."""


def store_config(settings: Settings) -> dict[str, Any]:
    """The profile's feature_store*.yaml as Feast reads it (${VARS} resolved with the profile's
    values), without importing Feast."""
    import yaml

    path = settings.feature_store_yaml
    values = {**os.environ, **settings.feast_env()}
    text = path.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return yaml.safe_load(text) or {}


@contextmanager
def feast_environment(settings: Settings, **extra: str) -> Iterator[None]:
    """The values the profile's feature_store*.yaml names, in this process's environment while
    Feast reads the file (it resolves ${VARS} from there), then put back — so one process can
    open stores of several data folders. PARITY_DATA_DIR stays set (as it always has)."""
    values = {**settings.feast_env(), **extra}
    os.environ["PARITY_DATA_DIR"] = values.pop("PARITY_DATA_DIR")
    os.environ.setdefault("FEAST_USAGE", "False")
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def require_services(settings: Settings) -> None:
    """Fail clearly when the profile's PostgreSQL registry or Redis online store does not answer
    (the embedded profile has neither: nothing to check)."""
    config = store_config(settings)
    registry, online = config.get("registry") or {}, config.get("online_store") or {}
    if isinstance(registry, dict) and registry.get("registry_type") == "sql":
        import sqlalchemy

        try:
            postgres = registry["path"].startswith("postgresql")
            engine = sqlalchemy.create_engine(registry["path"], connect_args={"connect_timeout": 5} if postgres else {})
            with engine.connect():
                pass
            engine.dispose()
        except Exception as err:  # any driver's failure to connect means the same thing here
            where = registry["path"].rsplit("@", 1)[-1]
            raise FeatureStoreError(f"the Feast SQL registry at {where} does not answer ({type(err).__name__}): "
                                    "run `make services-up` (or set PARITY_REGISTRY_URL)") from None
    if online.get("type") == "redis":
        import redis

        from parity.features.online_redis import connect

        try:
            connect({**online, "connection_string": f"{online.get('connection_string')},socket_connect_timeout=5"}).ping()
        except (redis.RedisError, ValueError) as err:
            raise FeatureStoreError(f"the Redis online store at {online.get('connection_string')} does not answer "
                                    f"({type(err).__name__}): run `make services-up` (or set PARITY_REDIS_CONNECTION)") from None


def open_store(settings: Settings) -> Any:
    """A FeatureStore on the repo with the profile's feature_store*.yaml (${VARS} resolved)."""
    require_services(settings)
    with feast_environment(settings):
        from feast import FeatureStore

        settings.feast_dir.mkdir(parents=True, exist_ok=True)
        return FeatureStore(repo_path=str(settings.feature_repo_dir), fs_yaml_file=settings.feature_store_yaml)


def registry_kind(settings: Settings) -> str:
    """`file` (the embedded profile's registry.db) or `sql` (the scale profile's PostgreSQL)."""
    registry = store_config(settings).get("registry")
    return registry.get("registry_type", "file") if isinstance(registry, dict) else "file"


def registry_path(settings: Settings) -> Path:
    """The file registry's path (the embedded profile; a SQL registry has none)."""
    return settings.feast_dir / "registry.db"


def require_applied(settings: Settings) -> None:
    """Fail clearly when `make apply` has never run for this data folder (and profile)."""
    if registry_kind(settings) == "file":
        if not registry_path(settings).exists():
            raise FeatureStoreError(f"Feast registry {registry_path(settings)} does not exist: run `make apply` first")
        return
    from parity.features.online_manifest import manifest_path

    # a SQL registry lives in its database; this data folder records an apply by the serving manifest
    if not manifest_path(settings.feast_dir).exists():
        raise FeatureStoreError(f"no Feast apply recorded in {settings.feast_dir} for profile "
                                f"'{settings.profile}': run `make services-up` and `make apply` first")


def replace_moved_sources(settings: Settings) -> list[str]:
    """Remove from a SQL registry the batch sources (FileSource, SparkSource) registered with
    another class than the profile's offline store uses; returns their names.

    Feast's SQL registry compares a source being applied with the stored one by reading the stored
    proto with the new object's class (`type(obj).from_proto`): a registry moved from FileSource
    to SparkSource (the same registry applied with the DuckDB, then the Spark offline store)
    failed with an AssertionError in `SparkSource.from_proto` (issue 16), and the reverse move in
    `FileSource.from_proto`. Apply registers them again with the new class right after; a feature
    view keeps its own copy of its source, so nothing reads the registry's row in between. The
    file registry replaces sources by name and needs none of this."""
    if registry_kind(settings) != "sql":
        return []
    from feast import FileSource
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

    from parity.features.feast_definitions import source_class

    wanted = source_class((store_config(settings).get("offline_store") or {}).get("type", "duckdb"))
    store = open_store(settings)
    project = store.config.project
    moved = [s.name for s in store.registry.list_data_sources(project=project, allow_cache=False)
             if isinstance(s, (FileSource, SparkSource)) and type(s) is not wanted]
    for name in moved:
        store.registry.delete_data_source(name, project, commit=True)
    return sorted(moved)


def apply(settings: Settings) -> dict[str, list[str]]:
    """`feast apply` on the repo: register derived views, services; delete removed objects."""
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    from parity.features.feast_definitions import check_parquet_schema, load_manifest, mart_specs

    problems = [p for spec in mart_specs(load_manifest(settings.dbt_manifest_path)) for p in check_parquet_schema(spec)]
    if problems:
        raise FeatureStoreError("the feature marts do not match their dbt declarations:\n  - " + "\n  - ".join(problems))
    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    moved = replace_moved_sources(settings)
    if moved:
        print(f"registry: {len(moved)} batch source(s) registered with another source class removed before "
              f"apply (re-registered now): {', '.join(moved)}")
    repo = settings.feature_repo_dir
    # the repo's modules import each other by bare name (Feast puts the repo on sys.path too)
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    # Feast imports repo modules with importlib: drop cached ones so the manifest is re-read
    for path in repo.glob("*.py"):
        sys.modules.pop(path.stem, None)
    cwd = os.getcwd()
    # the repo's modules read the settings from the environment: the caller's profile and config
    with feast_environment(settings, PARITY_PROFILE=settings.profile, PARITY_FEAST_CONFIG=settings.feast_config):
        config = load_repo_config(repo, settings.feature_store_yaml)
        try:
            apply_total(config, repo, skip_source_validation=False)
        finally:
            os.chdir(cwd)  # Feast's apply_total chdirs into the repo and never comes back
    store = open_store(settings)
    # Feast's `plan` creates only its own SQLite layout: a store with its own tables (the wide
    # store) creates them here, and drops those of removed views
    online = store._get_provider().online_store
    if hasattr(online, "table_name"):
        online.update(store.config, tables_to_delete=[], tables_to_keep=store.list_feature_views(),
                      entities_to_delete=[], entities_to_keep=store.list_entities(), partial=False)
    # what serving needs to read features without importing Feast (parity.features.online_manifest)
    from parity.features.online_manifest import write_manifest

    write_manifest(store, registry_path(settings), settings.feature_store_yaml, settings.feast_dir)
    return {
        "feature_views": sorted(v.name for v in store.list_feature_views()),
        "on_demand_feature_views": sorted(v.name for v in store.list_on_demand_feature_views()),
        "feature_services": sorted(s.name for s in store.list_feature_services()),
    }


def data_end(settings: Settings, store: Any | None = None) -> datetime:
    """The newest event timestamp over all batch feature sources (the data's 'now')."""
    import duckdb

    from parity.features.materialization import source_sql

    store = store or open_store(settings)
    newest = None
    for view in store.list_feature_views():
        ts = view.batch_source.timestamp_field
        value = duckdb.connect().execute(f"select max({ts}) from {source_sql(view)}").fetchone()[0]
        if value is not None and (newest is None or value > newest):
            newest = value
    if newest is None:
        raise FeatureStoreError("no feature rows found: run `make build` first")
    return newest.astimezone(timezone.utc)


def materialize(settings: Settings, end: datetime | None = None) -> dict[str, Any]:
    """Load into the online store every feature row that appeared, changed or vanished since the
    last run, whatever its event time (see `parity.features.materialization`).

    Per view and client, the newest row of each entity over the client's own TTL window is
    loaded when the client's rows differ from what the last run loaded; entities no client
    loads any more are deleted. Rerunning without new data reports "up to date" and writes
    nothing. `end` ignores rows after it (default: none ignored).
    """
    from parity.features.materialization import (
        describe,
        materialize_view,
        read_marker,
        write_marker,
    )

    require_applied(settings)
    store = open_store(settings)
    marker = read_marker(settings.feast_dir)
    recorded = marker.get("views", {})
    views, ran, details = {}, {}, {}
    for view in store.list_feature_views():
        done, views[view.name] = materialize_view(store, view, recorded.get(view.name, {}), end)
        ran[view.name], details[view.name] = describe(done), done
        # recorded after each view: a failure later still keeps what was done (never more)
        write_marker(settings.feast_dir, {"views": {**recorded, **views}})
    write_marker(settings.feast_dir, {"views": views})  # views no longer defined are forgotten
    if not any(entry["parts"] for entry in views.values()):
        raise FeatureStoreError("no feature rows found: run `make build` first")
    from parity.features.fresh import reapply_pushed

    # pushed fresh values newer than the snapshot just written stay online (README "Fresh events")
    pushed = reapply_pushed(settings)
    return {"end": materialized_until(settings), "views": ran, "details": details, "pushed_reapplied": pushed}


def materialized_until(settings: Settings) -> datetime:
    """End of the latest materialization over all views (the time online values are 'as of')."""
    require_applied(settings)
    store = open_store(settings)
    ends = [iv[1] for v in store.list_feature_views() for iv in v.materialization_intervals]
    if not ends:
        raise FeatureStoreError("the online store was never materialized: run `make materialize`")
    end = max(ends)
    return end if end.tzinfo else end.replace(tzinfo=timezone.utc)
