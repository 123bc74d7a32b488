"""Batch fixtures: the session's drifted, trained data folder (see tests/batch/fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from parity.config import Settings
from tests.batch.fixtures import drift_data_dir
from tests.training.conftest import keep_data_dir_env


@pytest.fixture(scope="session")
def drift_data(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Built, materialized, churn + segments models current; read-only for tests."""
    return drift_data_dir(tmp_path_factory)


@pytest.fixture(autouse=True)
def _restore_env() -> Iterator[None]:
    with keep_data_dir_env():
        yield
