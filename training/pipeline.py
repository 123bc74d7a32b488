"""Thin wiring of a training run: dataset -> split -> models -> evaluation -> registry -> report."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from parity.config import Settings, dbt_vars
from parity.features.feature_store import FeatureStoreError, data_end, open_store
from parity.features.retrieval import service_schema
from parity.models import registry
from parity.models.loaded import load_version
from parity.models.prepare import PrepareSpec, prepare
from training import artefacts, clients, dataset, evaluate, models, report, split
from training.config import TrainingConfig
from training.errors import TrainingError

STEPS = 8


class Progress:
    """Numbered step lines and tqdm bars on stderr (silent when disabled)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.done, self.started = enabled, 0, time.perf_counter()

    def step(self, message: str) -> None:
        """Announce the next step."""
        self.done += 1
        if self.enabled:
            elapsed = time.perf_counter() - self.started
            print(f"[{self.done}/{STEPS}] {message} ({elapsed:.1f}s)", file=sys.stderr)

    def bar(self, total: int, desc: str) -> tqdm:
        """A progress bar for a counted loop."""
        return tqdm(total=total, desc=desc, disable=not self.enabled, file=sys.stderr, leave=False)


@dataclass
class Fitted:
    """The prepare spec, the prepared periods and every fitted candidate."""

    spec: PrepareSpec
    x_test: pd.DataFrame
    candidates: list[models.Candidate]
    leakage_auc: dict[str, float]
    monotone: dict[str, float]

    @property
    def production(self) -> models.Candidate:
        """The model that gets registered (xgboost)."""
        return next(c for c in self.candidates if c.key == models.PRODUCTION)


@dataclass
class Evaluation:
    """Test-period results: comparison, paired difference, segments, fairness, contributions."""

    comparison: pd.DataFrame
    table: pd.DataFrame
    difference: dict[str, Any]
    segments: pd.DataFrame
    fairness: pd.DataFrame
    contributions: pd.DataFrame


@dataclass
class TrainingResult:
    """What a run produced (the CLI prints it; tests inspect it)."""

    version: str
    promoted: bool
    current: str | None
    table: pd.DataFrame
    comparison: pd.DataFrame
    threshold: float
    difference: dict[str, Any]
    fairness: pd.DataFrame
    metadata: dict[str, Any]
    report_path: Path
    dataset_path: Path
    entry_dir: Path


def load_training_frame(
    settings: Settings, store: Any, config: TrainingConfig, dataset_path: Path | None
) -> tuple[pd.DataFrame, dict[str, Any], Path]:
    """Retrieve (and save) the training set, or reload a saved one verified by its fingerprint."""
    if dataset_path is not None:
        frame, print_ = dataset.load_dataset(Path(dataset_path))
        if print_["service"] != config.service:
            raise TrainingError(
                f"saved dataset is for service '{print_['service']}', config says '{config.service}'"
            )
        return frame, print_, Path(dataset_path)
    labels = dataset.read_labels(settings.marts_dir / "churn_labels.parquet")
    try:
        observed_until = data_end(settings, store)
    except FeatureStoreError as err:
        raise TrainingError(str(err)) from None
    dataset.check_labels(labels, observed_until)
    frame = dataset.retrieve(store, dataset.entity_frame(labels), config.service)
    print_ = dataset.fingerprint(frame, config.service)
    return frame, print_, dataset.save_dataset(frame, print_, settings.data_dir / "training")


def fit_all(
    splits: split.Splits,
    features: tuple[tuple[str, str], ...],
    config: TrainingConfig,
    progress: Progress,
) -> Fitted:
    """Prepare spec on train, leakage screen, CV-tuned candidates, monotonicity check."""
    spec = models.fit_spec_for(splits.train, features, config)
    x_train, x_valid, x_test = (prepare(p, spec) for p in (splits.train, splits.valid, splits.test))
    y_train = splits.train[dataset.LABEL].to_numpy()
    y_valid = splits.valid[dataset.LABEL].to_numpy()
    leakage_auc = evaluate.check_feature_leakage(
        x_train, y_train, spec.sources, config.leakage.max_single_feature_auc
    )
    folds = split.rolling_folds(splits.train, config.cv)
    keys = [k for k in ("logistic_regression", "random_forest", "xgboost") if k in config.models]
    candidates = [models.fit_baseline(splits.valid, splits.test, config)]
    total = sum(len(models.grid(config.models[key])) for key in keys) * len(folds)
    with progress.bar(total, f"CV fits ({len(folds)} rolling folds)") as bar:
        for key in keys:
            data = (splits.train, x_train, x_valid, x_test, y_valid, folds, features, config)
            candidates.append(models.fit_candidate(key, *data, bar.update))
    fitted = Fitted(spec, x_test, candidates, leakage_auc, {})
    production = fitted.production
    fitted.monotone = evaluate.check_monotone(
        splits.test,
        splits.train,
        spec,
        lambda x: models.calibrated_scores(production.estimator, production.calibrator, x),
        config.models[production.key].monotone_constraints,
    )
    return fitted


def evaluate_all(
    splits: split.Splits, fitted: Fitted, config: TrainingConfig, progress: Progress
) -> Evaluation:
    """Comparison with bootstrap CIs, paired xgboost-vs-as-is difference, segments, contributions."""
    boot, costs = config.bootstrap, config.costs
    comparison, draws = evaluate.compare(splits.test, fitted.candidates, boot, costs, config.seed)
    difference = evaluate.paired_difference(
        draws, splits.test, fitted.candidates, "xgboost", "as is", "PR-AUC", boot.confidence, costs
    )
    progress.step("segment metrics and disparate impact")
    segments = evaluate.segment_table(
        splits.test, fitted.production, config.segments, boot, costs, config.seed
    )
    booster = fitted.production.estimator.get_booster()
    x_test = fitted.x_test
    shap = booster.predict(_dmatrix(x_test), pred_contribs=True)
    return Evaluation(
        comparison=comparison,
        table=evaluate.comparison_table(comparison),
        difference=difference,
        segments=segments,
        fairness=evaluate.disparate_impact(segments, config.segments),
        contributions=evaluate.feature_contributions(
            shap, fitted.spec.columns, fitted.spec.sources
        ),
    )


def register(
    settings: Settings,
    config: TrainingConfig,
    features: tuple[tuple[str, str], ...],
    splits: split.Splits,
    fitted: Fitted,
    results: Evaluation,
    fingerprint: dict[str, Any],
    saved: Path,
    composition: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    """Write the registry entry atomically and check that the stored copy scores identically."""
    manifest = settings.dbt_manifest_path
    metadata = artefacts.build_metadata(
        config=config,
        features=features,
        spec=fitted.spec,
        production=fitted.production,
        candidates=fitted.candidates,
        window=splits.window(),
        purged=splits.purged,
        fingerprint=fingerprint,
        dataset_file=saved.name,
        manifest_sha256=registry.sha256_file(manifest) if manifest.exists() else "unknown",
        git_commit=registry.git_commit(settings.project_root),
        comparison=results.comparison,
        difference=results.difference,
        fairness=results.fairness,
        leakage_auc=fitted.leakage_auc,
        monotone=fitted.monotone,
        contributions=results.contributions,
    )
    metadata["clients"] = {**composition, "warnings": clients.warnings(composition)}
    card = report.model_card(
        metadata, results.table, results.fairness,
        population_days=settings.churn_population.days,
        horizon_days=int(dbt_vars(settings.project_root)["churn_horizon_days"]),
    )
    files = artefacts.entry_files(fitted.production, metadata, card)
    version = registry.write_version(settings.registry_dir, config.model_name, files)
    loaded = load_version(settings.registry_dir, config.model_name, version)
    if not np.array_equal(loaded.predict_proba(fitted.x_test)[:, 1], fitted.production.test_scores):
        raise TrainingError(f"{version}: the registry copy does not reproduce the evaluated scores")
    return version, metadata


def run(
    settings: Settings,
    config: TrainingConfig,
    dataset_path: Path | None = None,
    auto_promote: bool | None = None,
) -> TrainingResult:
    """One training run end to end; returns the registered version and its evaluation.

    Promotion rule: the new version becomes current only when no version is current yet (and
    `auto_promote`, default config.auto_promote_first, allows it); otherwise use `promote`.
    """
    progress = Progress(config.progress)
    progress.step("opening the feature store and reading the feature service")
    store = open_store(settings)
    features = dataset.service_features(store, config.service)

    progress.step("building the training set (labels -> point-in-time features)")
    frame, fingerprint, saved = load_training_frame(settings, store, config, dataset_path)
    composition = clients.composition(frame, settings.clients, [name for name, _ in features])
    for warning in clients.warnings(composition):  # loud even without progress output
        print(f"WARNING: {warning}", file=sys.stderr)

    progress.step(f"splitting {len(frame)} rows by as-of time; tuning and fitting the models")
    splits = split.time_split(frame, config.split)
    fitted = fit_all(splits, features, config, progress)

    progress.step(f"bootstrapping {config.bootstrap.reps} resamples of the test period")
    results = evaluate_all(splits, fitted, config, progress)

    progress.step("writing the registry entry")
    version, metadata = register(
        settings, config, features, splits, fitted, results, fingerprint, saved, composition
    )
    entry = settings.registry_dir / config.model_name / version

    progress.step("writing the report")
    report_path = report.write_report(
        settings.data_dir / "reports" / "training" / version,
        version=version,
        metadata=metadata,
        test=splits.test,
        candidates=fitted.candidates,
        long=results.comparison,
        table=results.table,
        segments=results.segments,
        fairness=results.fairness,
        contributions=results.contributions,
        created_at=json.loads((entry / registry.CREATED_FILE).read_text())["created_at"],
    )

    progress.step("promotion rule")
    auto = config.auto_promote_first if auto_promote is None else auto_promote
    promoted = auto and registry.current_version(settings.registry_dir, config.model_name) is None
    if promoted:
        def live(name: str) -> Any:
            return service_schema(store, name).features

        registry.promote(settings.registry_dir, config.model_name, version, live)
    return TrainingResult(
        version=version,
        promoted=promoted,
        current=registry.current_version(settings.registry_dir, config.model_name),
        table=results.table,
        comparison=results.comparison,
        threshold=fitted.production.threshold,
        difference=results.difference,
        fairness=results.fairness,
        metadata=metadata,
        report_path=report_path,
        dataset_path=saved,
        entry_dir=entry,
    )


def _dmatrix(prepared: pd.DataFrame) -> Any:
    import xgboost as xgb

    return xgb.DMatrix(prepared.to_numpy(dtype="float64"), feature_names=list(prepared.columns))
