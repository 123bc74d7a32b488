"""Feast operations on the platform's feature repo: open, apply, materialize."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from parity.config import Settings


class FeatureStoreError(RuntimeError):
    """A Feast step cannot run; the message says which make target fixes it."""


def open_store(settings: Settings) -> Any:
    """A FeatureStore on the repo, resolving ${PARITY_DATA_DIR} in feature_store.yaml."""
    os.environ["PARITY_DATA_DIR"] = str(settings.data_dir)
    os.environ.setdefault("FEAST_USAGE", "False")
    from feast import FeatureStore

    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    return FeatureStore(repo_path=str(settings.feature_repo_dir))


def registry_path(settings: Settings) -> Path:
    return settings.feast_dir / "registry.db"


def require_applied(settings: Settings) -> None:
    """Fail clearly when `make apply` has never run for this data folder."""
    if not registry_path(settings).exists():
        raise FeatureStoreError(f"Feast registry {registry_path(settings)} does not exist: run `make apply` first")


def apply(settings: Settings) -> dict[str, list[str]]:
    """`feast apply` on the repo: register derived views, services; delete removed objects."""
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    from parity.features.feast_definitions import check_parquet_schema, load_manifest, mart_specs

    problems = [p for spec in mart_specs(load_manifest(settings.dbt_manifest_path)) for p in check_parquet_schema(spec)]
    if problems:
        raise FeatureStoreError("the feature marts do not match their dbt declarations:\n  - " + "\n  - ".join(problems))
    os.environ["PARITY_DATA_DIR"] = str(settings.data_dir)
    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    repo = settings.feature_repo_dir
    config = load_repo_config(repo, repo / "feature_store.yaml")
    # the repo's modules import each other by bare name (Feast puts the repo on sys.path too)
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    # Feast imports repo modules with importlib: drop cached ones so the manifest is re-read
    for path in repo.glob("*.py"):
        sys.modules.pop(path.stem, None)
    cwd = os.getcwd()
    try:
        apply_total(config, repo, skip_source_validation=False)
    finally:
        os.chdir(cwd)  # Feast's apply_total chdirs into the repo and never comes back
    store = open_store(settings)
    # what serving needs to read features without importing Feast (parity.features.online_manifest)
    from parity.features.online_manifest import write_manifest

    write_manifest(store, registry_path(settings), repo / "feature_store.yaml", settings.feast_dir)
    return {
        "feature_views": sorted(v.name for v in store.list_feature_views()),
        "on_demand_feature_views": sorted(v.name for v in store.list_on_demand_feature_views()),
        "feature_services": sorted(s.name for s in store.list_feature_services()),
    }


def data_end(settings: Settings, store: Any | None = None) -> datetime:
    """The newest event timestamp over all batch feature sources (the data's 'now')."""
    import duckdb

    store = store or open_store(settings)
    newest = None
    for view in store.list_feature_views():
        path, ts = view.batch_source.path, view.batch_source.timestamp_field
        value = duckdb.connect().execute(f"select max({ts}) from read_parquet('{path}')").fetchone()[0]
        if value is not None and (newest is None or value > newest):
            newest = value
    if newest is None:
        raise FeatureStoreError("no feature rows found: run `make build` first")
    return newest.astimezone(timezone.utc)


def materialize(settings: Settings, end: datetime | None = None) -> dict[str, Any]:
    """Load the latest feature rows into the online store, incrementally and idempotently.

    The first run back-fills an explicit range (earliest TTL window before the data's end);
    later runs continue from where the last one stopped. The end defaults to just after the
    newest feature row, so rerunning without new data changes nothing.
    """
    require_applied(settings)
    store = open_store(settings)
    end = end or data_end(settings, store) + timedelta(seconds=1)
    ran = {}
    for view in store.list_feature_views():
        intervals = view.materialization_intervals
        last_end = max((iv[1] for iv in intervals), default=None)
        if last_end is not None and last_end >= end:
            ran[view.name] = "up to date"
            continue
        start = last_end if last_end is not None else end - view.ttl - timedelta(seconds=1)
        store.materialize(start_date=start, end_date=end, feature_views=[view.name])
        ran[view.name] = f"{start.isoformat()} -> {end.isoformat()}"
    return {"end": end, "views": ran}


def materialized_until(settings: Settings) -> datetime:
    """End of the latest materialization over all views (the time online values are 'as of')."""
    require_applied(settings)
    store = open_store(settings)
    ends = [iv[1] for v in store.list_feature_views() for iv in v.materialization_intervals]
    if not ends:
        raise FeatureStoreError("the online store was never materialized: run `make materialize`")
    end = max(ends)
    return end if end.tzinfo else end.replace(tzinfo=timezone.utc)
