"""Training fixtures: a private data folder over the session's built data, small configs, one run."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from parity.config import Settings, load_settings
from training.config import TrainingConfig, load_config

# Small but complete: every model, CV, calibration, bootstrap and segment step runs.
SMALL: dict = {
    "progress": False,
    "bootstrap": {"reps": 30, "segment_reps": 10},
    "cv": {"folds": 2},
    "models": {
        "logistic_regression": {"grid": {"C": [1.0]}},
        "random_forest": {"params": {"n_estimators": 25}, "grid": {"min_samples_leaf": [20]}},
        "xgboost": {
            "params": {"n_estimators": 60},
            "grid": {"max_depth": [3], "n_estimators": [60]},
        },
    },
}


def small_config(**overrides) -> TrainingConfig:
    """training/config.yaml with SMALL (and then `overrides`) applied."""
    from training.config import merge

    return load_config(None, merge(SMALL, overrides))


@contextlib.contextmanager
def keep_data_dir_env() -> Iterator[None]:
    """open_store() sets PARITY_DATA_DIR; put it back so later tests see the session's data folder."""
    before = os.environ.get("PARITY_DATA_DIR")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PARITY_DATA_DIR", None)
        else:
            os.environ["PARITY_DATA_DIR"] = before


@pytest.fixture(autouse=True)
def _restore_env() -> Iterator[None]:
    with keep_data_dir_env():
        yield


def private_data_dir(feature_data: Settings, root: Path) -> Settings:
    """A data folder that reads the session's marts, dbt target and Feast store (symlinks) but
    writes its own registry, reports and saved datasets, so training tests never touch what other
    tests (e.g. serving) see under feature_data."""
    for name in ("raw", "published", "feast"):
        source = feature_data.data_dir / name
        if source.exists():
            (root / name).symlink_to(source, target_is_directory=source.is_dir())
    return load_settings(root)


@pytest.fixture
def fresh_data(feature_data: Settings, tmp_path: Path) -> Settings:
    """A private, empty-registry data folder for one test."""
    return private_data_dir(feature_data, tmp_path)


@pytest.fixture(scope="session")
def trained_once(feature_data: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two identical training runs (same seed) into one private data folder: v0001 and v0002,
    once per session; tests read it through `trained`, never write into it."""
    from training.pipeline import run

    with keep_data_dir_env():
        settings = private_data_dir(feature_data, tmp_path_factory.mktemp("trained"))
        config = small_config()
        first = run(settings, config)
        second = run(settings, config)
    return {"settings": settings, "config": config, "first": first, "second": second}


@pytest.fixture(scope="module")
def trained(trained_once: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`trained_once` (its runs' results, entries and saved datasets) with copies of its registry
    and saved datasets in a data folder of the module's own: tests promote, approve and retrain
    into the copy."""
    import shutil

    shared = trained_once["settings"]
    settings = private_data_dir(shared, tmp_path_factory.mktemp("trained_copy"))
    for name in ("registry", "training"):
        shutil.copytree(shared.data_dir / name, settings.data_dir / name)
    return {**trained_once, "settings": settings}
