"""The scale group's shared fixture: one drop built and published on Spark, and built on DuckDB
beside it (the session's only dbt-on-Spark full build; every scale test module reuses it)."""

from __future__ import annotations

import dataclasses
import os
from datetime import date, datetime, timezone

import pytest

from parity.config import QUARANTINE_SAMPLE_DAYS_ENV, Settings
from parity.ingest import cross_engine
from tests.conftest import build, generate_raw
from tests.data.test_corpus import plant

# The quarantine-sample retention is on for this pair of builds (the test suite otherwise keeps
# every sample): a period whose cutoff falls inside the drops, so both engines blank the older
# samples (macros/retention.sql) and the comparison covers the rule's SQL too.
SAMPLES_KEPT_SINCE = date(2026, 3, 1)


@pytest.fixture(scope="session")
def sample_period() -> dict[str, object]:
    """The period the `engines` builds ran with, and the UTC days they ran on (the cutoff counts
    whole days back from the start of the build's day)."""
    return {}


@pytest.fixture(scope="session")
def engines(tmp_path_factory: pytest.TempPathFactory, sample_period) -> tuple[Settings, list[cross_engine.TableDiff]]:
    """The drops built and published on Spark (the real pipeline: pre-flight, dbt build, publish)
    and built on DuckDB beside them; every table compared."""
    settings = generate_raw(tmp_path_factory.mktemp("engines"), scale=0.05, seed=13)
    plant(settings)
    spark = dataclasses.replace(settings, dbt_target="spark")
    first = datetime.now(timezone.utc).date()
    days = (first - SAMPLES_KEPT_SINCE).days
    kept = os.environ.get(QUARANTINE_SAMPLE_DAYS_ENV)
    os.environ[QUARANTINE_SAMPLE_DAYS_ENV] = str(days)
    try:
        build(spark)
        duck = settings.data_dir / "cross_engine" / "duckdb"
        cross_engine.build_on(settings, "duckdb", duck)
    finally:
        if kept is None:
            os.environ.pop(QUARANTINE_SAMPLE_DAYS_ENV, None)
        else:
            os.environ[QUARANTINE_SAMPLE_DAYS_ENV] = kept
    sample_period.update(days=days, first_day=first, last_day=datetime.now(timezone.utc).date(), duckdb=duck)
    return spark, cross_engine.compare(duck, settings.published_dir)
