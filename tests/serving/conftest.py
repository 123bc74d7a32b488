"""Serving fixtures: a private data folder with two small trained model versions."""

from __future__ import annotations

import pytest

from parity.config import Settings
from tests.training.conftest import keep_data_dir_env, private_data_dir, small_config


@pytest.fixture(scope="session")
def trained_data(feature_data: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """v0001 (current, promoted by the first training) and v0002 (an approved candidate, other seed)."""
    from training.pipeline import run

    with keep_data_dir_env():
        settings = private_data_dir(feature_data, tmp_path_factory.mktemp("serving"))
        run(settings, small_config())
        second = run(settings, small_config(seed=7), auto_promote=False)
        # approved (acknowledging its flagged items), so tests may promote it or serve it as a canary
        from parity.models import approvals, registry

        meta = registry.read_metadata(settings.registry_dir, "churn", second.version)
        approvals.record(registry.model_dir(settings.registry_dir, "churn"), second.version, meta,
                         "test reviewer", list(approvals.flagged_items(meta)))
    return settings
