"""Shared fixtures: small generated drops, built once per session with the real dbt and Feast."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from parity.config import QUARANTINE_SAMPLE_DAYS_ENV, Settings, load_settings

# A fixed end date keeps every generated drop (and so every test) reproducible.
TEST_END_DATE = date(2026, 6, 1)
TEST_SCALE = 0.3

# Quarantine samples older than vars.quarantine_sample_days are blanked by every build, measured
# from the build's (wall-clock) time: the test drops, ending TEST_END_DATE, would lose every sample
# as the calendar moves on. Test builds keep them (tests of the rule set the period themselves).
os.environ.setdefault(QUARANTINE_SAMPLE_DAYS_ENV, "none")


def generate_raw(data_dir: Path, scale: float = TEST_SCALE, seed: int = 7, **kwargs) -> Settings:
    """Generate raw drops into `data_dir/raw` and return settings for that data folder."""
    from parity.ingest.datagen import generate

    generate(data_dir / "raw", seed=seed, scale=scale, end_date=TEST_END_DATE, **kwargs)
    return load_settings(data_dir)


def build(settings: Settings, select: str | None = None, allow: frozenset[str] = frozenset(),
          dbt_args: tuple[str, ...] = ()):
    """`python -m parity build` in-process (pre-flight, dbt build into a new build folder,
    guards, publish); raises BuildFailed with dbt's output on error."""
    from parity.ingest.build_config import load_build_config
    from parity.ingest.pipeline import run_build

    return run_build(settings, load_build_config(), select=select, capture=True, allow=allow,
                     dbt_args=dbt_args)


@pytest.fixture(scope="session")
def built_data(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Raw drops generated and built by dbt (warehouse + Parquet marts)."""
    settings = generate_raw(tmp_path_factory.mktemp("built"))
    build(settings)
    return settings


@pytest.fixture(scope="session")
def feature_data(built_data: Settings) -> Settings:
    """`built_data` plus a Feast registry applied and the online store materialized."""
    from parity.features.feature_store import apply, materialize

    apply(built_data)
    materialize(built_data)
    os.environ["PARITY_DATA_DIR"] = str(built_data.data_dir)
    return built_data


@pytest.fixture(scope="session")
def redis_feature_data(built_data: Settings, tmp_path_factory: pytest.TempPathFactory):
    """`built_data`'s marts applied to a Feast store with the scale profile's online store and
    registry — Redis and a PostgreSQL SQL registry, real servers on loopback from parity.services,
    stopped by PID — and materialized; the embedded DuckDB offline store (no JVM)."""
    import dataclasses
    import shutil
    import tempfile

    import yaml

    from parity import services
    from parity.features.feature_store import apply, materialize

    if shutil.which("redis-server") is None or not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        pytest.skip("redis-server or PostgreSQL not installed (Debian packages redis-server, postgresql; "
                    ".ci/run installs them)")
    root = Path(tempfile.mkdtemp(prefix="parity-redis-"))
    root.chmod(0o755)  # PostgreSQL runs as its own user when we are root: it must reach its folder
    try:
        endpoints = services.up(root / "services")
        data = root / "data"
        data.mkdir()
        (data / "published").symlink_to(built_data.published_dir.resolve())
        config = yaml.safe_load(built_data.feature_store_yaml.read_text())
        config["online_store"] = {"type": "redis", "connection_string": f"{services.HOST}:{endpoints['redis'].port}"}
        config["registry"] = {"registry_type": "sql", "cache_ttl_seconds": 60,
                              "path": f"postgresql+psycopg://{services.DATABASE}@{services.HOST}:"
                                      f"{endpoints['postgres'].port}/{services.DATABASE}"}
        (root / "feature_store.redis.yaml").write_text(yaml.safe_dump(config))
        settings = dataclasses.replace(built_data, data_dir=data, feast_config=str(root / "feature_store.redis.yaml"))
        before = os.environ.get("PARITY_DATA_DIR")
        apply(settings)
        materialize(settings)
        if before is not None:  # open_store points PARITY_DATA_DIR at this folder: put it back
            os.environ["PARITY_DATA_DIR"] = before
        yield settings
    finally:
        services.down(root / "services")
        shutil.rmtree(root, ignore_errors=True)


# Session fixtures that build data (dbt build, Feast, training): a test using one, directly or
# through another fixture, must carry the `data` marker so `make test-fast` leaves it out.
DATA_FIXTURES = ("built_data", "drift_data")
# Marked groups left out of `make test` (skipped with this reason) and run by their own make
# target in .ci/run: `scale` needs Spark/Redis/PostgreSQL; `heavy` holds the multi-build checks
# (several dbt builds or the whole benchmark each) that would push the default suite over budget.
SEPARATE_GROUPS = {
    "scale": "scale group: run with `pytest -m scale` / `make test-scale` (needs Java)",
    "heavy": "heavy group (several builds): run with `pytest -m heavy` / `make test-heavy`",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a test that builds data without the `data` marker (the fast suite would build it)."""
    unmarked = [
        f"{item.nodeid} (uses {', '.join(f for f in DATA_FIXTURES if f in item.fixturenames)})"
        for item in items
        if any(f in getattr(item, "fixturenames", ()) for f in DATA_FIXTURES)
        and item.get_closest_marker("data") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests that build data need @pytest.mark.data (or pytestmark = pytest.mark.data):\n  "
            + "\n  ".join(unmarked)
        )
    # the separately run groups (.ci/run runs each after the default suite) run only when a
    # marker expression names them
    markexpr = config.getoption("markexpr") or ""
    for group, reason in SEPARATE_GROUPS.items():
        if group not in markexpr:
            skip = pytest.mark.skip(reason=reason)
            for item in items:
                if item.get_closest_marker(group) is not None:
                    item.add_marker(skip)
