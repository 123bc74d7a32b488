"""The scale group's shared fixture: one drop built and published on Spark, and built on DuckDB
beside it (the session's only dbt-on-Spark full build; every scale test module reuses it)."""

from __future__ import annotations

import dataclasses

import pytest

from parity.config import Settings
from parity.ingest import cross_engine
from tests.conftest import build, generate_raw
from tests.data.test_corpus import plant


@pytest.fixture(scope="session")
def engines(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[cross_engine.TableDiff]]:
    """The drops built and published on Spark (the real pipeline: pre-flight, dbt build, publish)
    and built on DuckDB beside them; every table compared."""
    settings = generate_raw(tmp_path_factory.mktemp("engines"), scale=0.05, seed=13)
    plant(settings)
    spark = dataclasses.replace(settings, dbt_target="spark")
    build(spark)
    duck = settings.data_dir / "cross_engine" / "duckdb"
    cross_engine.build_on(settings, "duckdb", duck)
    return spark, cross_engine.compare(duck, settings.published_dir)
