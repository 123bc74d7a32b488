"""Thin wiring of the batch jobs: score every customer at an as-of time; train the segments model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from batch import outputs, score
from batch.config import BatchConfig, BatchError
from parity import reviews
from parity.config import ProjectConfigError, Settings
from parity.features.feature_store import (
    FeatureStoreError,
    materialized_until,
    open_store,
    require_applied,
)
from parity.features.freshness import max_feature_age, newest_feature_times, read_watermarks
from parity.features.retrieval import service_schema, training_frame
from parity.models import loaded, registry, segments

CUSTOMERS_SQL = """
select customer_id, client_id, source_customer_id, first_loaded_at
from intermediate.int_customers_deduplicated
"""


@dataclass
class ScoreRun:
    """What `run_score` produced (the CLI prints it; tests inspect it)."""

    as_of: datetime
    as_of_source: str
    results: pd.DataFrame
    results_path: Path
    exports: dict[str, list[Path]]
    model_version: str
    segments_version: str | None
    messages: list[str] = field(default_factory=list)


def default_as_of(settings: Settings) -> tuple[datetime, str]:
    """The online store's materialization time (so batch == online), else now."""
    try:
        return materialized_until(settings), "online store materialization time"
    except FeatureStoreError:
        return datetime.now(timezone.utc), "now (the online store was never materialized)"


def read_customers(settings: Settings) -> pd.DataFrame:
    """Canonical customers from the warehouse (int_customers_deduplicated)."""
    import duckdb

    from parity.ingest import warehouse

    where = warehouse.location(settings.published_dir)
    if not warehouse.exists(settings.published_dir):
        raise BatchError(f"warehouse {where} does not exist: run `make build` first")
    try:
        return warehouse.query(settings, CUSTOMERS_SQL)
    except duckdb.Error as err:
        raise BatchError(f"cannot read customers from {where}: {err}") from None


def _segments_model(settings: Settings, config: BatchConfig, messages: list[str]) -> Any | None:
    try:
        model = segments.load_current(settings.registry_dir, config.segments.model_name)
    except (registry.RegistryError, segments.SegmentError, ValueError) as err:
        messages.append(f"segments model unreadable, segments left empty: {err}")
        return None
    if model is None:
        messages.append(
            "no segments model is current: segments left empty (run `python -m batch segments train`)"
        )
    return model


def run_score(
    settings: Settings,
    config: BatchConfig,
    as_of: datetime | None = None,
    scored_at: datetime | None = None,
) -> ScoreRun:
    """Score every customer known at `as_of` with the current model; write results and exports."""
    messages: list[str] = []
    if as_of is None:
        as_of, source = default_as_of(settings)
    else:
        source = "--as-of"
    as_of = pd.Timestamp(as_of).tz_convert("UTC").to_pydatetime()
    try:
        model = loaded.load_current(settings, config.model_name)
        limit = max_feature_age(settings.project_root)
    except (registry.RegistryError, ProjectConfigError) as err:
        raise BatchError(str(err)) from None
    customers = score.customers_at(read_customers(settings), as_of)
    if customers.empty:
        raise BatchError(f"no customer was known at {as_of.isoformat()}: nothing to score")
    try:
        require_applied(settings)
        store = open_store(settings)
        entities = score.entity_frame(customers, as_of)
        frame = training_frame(store, entities, model.feature_service)
        features_at = newest_feature_times(store, model.feature_service, list(entities["customer_id"]), as_of)
        seg_model = _segments_model(settings, config, messages)
        seg_frame = None
        if seg_model is not None and seg_model.feature_service != model.feature_service:
            seg_frame = training_frame(store, entities, seg_model.feature_service)
    except FeatureStoreError as err:
        raise BatchError(str(err)) from None
    watermarks = read_watermarks(settings.marts_dir)
    if watermarks.problem:
        messages.append(f"client watermarks unknown: {watermarks.problem}")
    results = score.score_customers(
        customers,
        frame,
        model,
        as_of=as_of,
        scored_at=scored_at or datetime.now(timezone.utc),
        top_k=config.top_reasons,
        segments=seg_model,
        segment_frame=seg_frame,
        population=settings.churn_population,
        features_at=features_at,
        max_age=limit,
        watermarks=watermarks,
    )
    missing = int((results["status"] == score.NO_FEATURES).sum())
    if missing:
        messages.append(
            f"{missing} customer(s) have no features at {as_of.isoformat()}: kept with status "
            "'no_features' and no score"
        )
    stale = results[results["status"] == score.STALE_FEATURES]
    if len(stale):
        by_client = ", ".join(f"{c} {n}" for c, n in stale.groupby("client_id").size().items())
        messages.append(
            f"{len(stale)} customer(s) have features older than {limit.total_seconds() / 86400:g} "
            f"day(s) at {as_of.isoformat()} ({by_client}): kept with status 'stale_features' and no score"
        )
    path = outputs.write_results(results, settings.data_dir / "scores", as_of)
    # one file per listed client (vars.clients), even with no customer scored
    unlisted = sorted(set(results["client_id"].dropna().astype(str)) - set(settings.clients))
    if unlisted:
        messages.append(f"customers of {', '.join(unlisted)} (not in vars.clients) are not exported: "
                        "rebuild (`make build`) after changing the client list")
    exports = outputs.write_exports(
        outputs.with_reviews(results, review_decisions(settings, as_of)), settings.data_dir / "exports", as_of, list(settings.clients), config.export_formats,
    )
    return ScoreRun(
        as_of=as_of,
        as_of_source=source,
        results=results,
        results_path=path,
        exports=exports,
        model_version=model.version,
        segments_version=getattr(seg_model, "version", None),
        messages=messages,
    )


def review_decisions(settings: Settings, as_of: datetime) -> pd.DataFrame:
    """Each customer's review decision that counts at `as_of` (refused, not skipped, when the
    console's records are unreadable: an export silently missing overrides would look right)."""
    try:
        decided = reviews.decisions(settings.console_dir)
    except Exception as err:
        raise BatchError(f"cannot read review decisions in {settings.console_dir / reviews.FILE}: {err}") from None
    return reviews.latest_per_customer(decided, outputs.stamp(as_of))


def training_set_path(settings: Settings, model_name: str = "churn") -> Path:
    """The saved training set of the current churn model (else the newest one saved)."""
    try:
        current = registry.current_version(settings.registry_dir, model_name)
        if current:
            meta = registry.read_metadata(settings.registry_dir, model_name, current)
            path = settings.data_dir / "training" / meta["feature_service"] / meta["data_fingerprint"]["file"]
            if path.exists():
                return path
    except (registry.RegistryError, KeyError, OSError):
        pass
    saved = sorted((settings.data_dir / "training").glob("*/dataset-*.parquet"), key=lambda p: p.stat().st_mtime)
    if not saved:
        raise BatchError(
            f"no saved training set under {settings.data_dir / 'training'}: run `make train` first"
        )
    return saved[-1]


def run_segments_train(settings: Settings, config: BatchConfig) -> tuple[str, segments.SegmentModel]:
    """Fit the segments model on the churn training set, register it and make it current."""
    path = training_set_path(settings, config.model_name)
    sidecar = path.with_suffix(".json")
    service = json.loads(sidecar.read_text())["service"] if sidecar.exists() else path.parent.name
    frame = pd.read_parquet(path)
    try:
        require_applied(settings)
        store = open_store(settings)
        features = service_schema(store, service).features
    except FeatureStoreError as err:
        raise BatchError(str(err)) from None
    missing = [name for name, _ in features if name not in frame.columns]
    if missing:
        raise BatchError(
            f"training set {path} lacks feature(s) {missing} of the live service '{service}': "
            "retrain (`make train`) first"
        )
    cfg = config.segments
    try:
        model = segments.fit(
            frame,
            features,
            service,
            columns=cfg.columns,
            k=cfg.k,
            seed=cfg.seed,
            log1p=cfg.log1p,
            max_rows=cfg.max_rows,
            n_init=cfg.n_init,
            min_level_count=cfg.min_level_count,
            fill=cfg.fill,
        )
    except (segments.SegmentError, ValueError) as err:
        raise BatchError(f"cannot fit segments: {err}") from None
    import sklearn

    extra = {
        "algorithm": f"scikit-learn {sklearn.__version__} StandardScaler + KMeans "
        f"(k={cfg.k}, n_init={cfg.n_init}, random_state={cfg.seed}); assignment in numpy",
        "training_data": {"file": path.name, "rows_available": len(frame),
                          "rows_used": min(len(frame), cfg.max_rows or len(frame))},
        "config": config.as_dict()["segments"],
    }
    def live(name: str):
        return service_schema(store, name).features

    try:
        version = segments.register(
            settings.registry_dir, model, features, live, extra, name=cfg.model_name
        )
    except registry.RegistryError as err:
        raise BatchError(str(err)) from None
    return version, segments.load_version(settings.registry_dir, version, cfg.model_name)
