"""One drifted, built and trained data folder per test session, shared by tests/batch and
tests/monitoring, plus private folders over it.

Both conftests expose it as the session fixture `drift_data`; the folder is built once per
process (memoised here), not once per conftest. It is the session's small drop (scale 0.3,
seed 7, fixed end date) generated with `drift_client="bolt"` (bolt's last 8 weeks shifted), then
dbt build, Feast apply + materialize, one small training run (churn/v0001 current) and the
segments model (segments/v0001 current). Tests never write into it: they use `private_copy`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from parity.config import Settings, load_settings
from tests.conftest import build, generate_raw
from tests.training.conftest import keep_data_dir_env, small_config

DRIFT_CLIENT = "bolt"
_BUILT: dict[str, Settings] = {}
# `published` is a symlink to the shared build; a private build replaces the private link only
SHARED = ("raw", "published", "feast", "training", "registry")


def drift_data_dir(factory: pytest.TempPathFactory) -> Settings:
    """The shared drifted data folder (built on first use in this process)."""
    if "settings" not in _BUILT:
        from batch.config import load_config
        from batch.pipeline import run_segments_train
        from parity.features.feature_store import apply, materialize
        from training.pipeline import run

        with keep_data_dir_env():
            settings = generate_raw(factory.mktemp("drift"), drift_client=DRIFT_CLIENT)
            build(settings)
            apply(settings)
            materialize(settings)
            run(settings, small_config())
            run_segments_train(settings, load_config())
        _BUILT["settings"] = settings
    return _BUILT["settings"]


def private_copy(shared: Settings, root: Path, copies: tuple[str, ...] = ()) -> Settings:
    """A data folder that reads the shared one (symlinks) but writes its own scores, exports,
    reports, serving logs and builds (a build publishes by replacing the private `published`
    link); names in `copies` are copied instead (e.g. a registry to write to, raw files to age;
    `published`: a private copy of the published build, marts and warehouse to write into)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        source = shared.data_dir / name
        if not source.exists():
            continue
        if name == "published" and name in copies:
            own = root / "builds" / "copy"
            shutil.copytree(source.resolve(), own)
            (root / name).symlink_to(own.relative_to(root), target_is_directory=True)
        elif name in copies:
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / name)
        else:
            (root / name).symlink_to(source, target_is_directory=source.is_dir())
    return load_settings(root)
