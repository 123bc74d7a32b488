"""A partial build on Spark (`make score` with PROFILE=scale) registers every raw file first: a
missing raw folder, client folder or file is a clear error naming the path before any JVM starts
(it was a bare Java trace from dbt's on-run-start hook)."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from parity.config import Settings, load_settings
from parity.ingest import builds
from parity.ingest.build_config import load_build_config
from parity.ingest.pipeline import BuildFailed, run_build

# scale: dbt parses the Spark target, so dbt-spark (the `scale` extra) must be installed; no JVM starts
pytestmark = [pytest.mark.data, pytest.mark.scale]


def _spark_copy(settings: Settings, to) -> Settings:
    """A private copy of the data folder (raw drops and the published build) for the Spark target."""
    shutil.copytree(settings.data_dir, to, symlinks=True, ignore=shutil.ignore_patterns("build.lock", "feast*"))
    return dataclasses.replace(load_settings(to), dbt_target="spark")


def _partial(settings: Settings) -> str:
    with pytest.raises(BuildFailed) as failed:
        run_build(settings, load_build_config(), select="path:models/scores", capture=True)
    return str(failed.value)


def test_a_spark_partial_build_names_the_missing_raw_path_before_spark_starts(built_data, tmp_path):
    settings = _spark_copy(built_data, tmp_path / "data")
    published = builds.published(settings).path
    client = sorted(p for p in settings.raw_dir.iterdir() if p.is_dir())[0]
    shutil.rmtree(client)
    message = _partial(settings)
    assert f"its folder {client} does not exist" in message and "even for `--select path:models/scores`" in message
    shutil.rmtree(settings.raw_dir)
    message = _partial(settings)
    assert f"the raw folder {settings.raw_dir} does not exist" in message
    assert "Traceback" not in message and "java" not in message.lower()
    assert builds.published(settings).path == published  # nothing published
    # nothing of Spark ran: no metastore, no warehouse in any new build folder
    assert not list(settings.builds_dir.glob("*/spark"))
