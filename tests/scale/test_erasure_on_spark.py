"""Erasure on Spark (issue 19): the suppression list, joined in staging from its file, turns an
erased customer's records into the same tombstones on Spark as on DuckDB (the `scale` group:
one more dbt-on-Spark build of small generated drops, without the corruption corpus)."""

from __future__ import annotations

import pytest

from parity import suppression
from parity.governance.customer import key_sha256
from parity.ingest import cross_engine, warehouse
from tests.conftest import generate_raw

pytestmark = [pytest.mark.scale, pytest.mark.data, pytest.mark.timeout(1800)]  # setup pays the Spark build


def _erasure_figures(folder, key: str) -> tuple[int, int, int]:
    """(erased rows, unaccounted rows, the customer's rows in the weekly mart) of a build."""
    with warehouse.connect(folder) as con:
        erased, unaccounted = con.execute("select sum(erased_rows), sum(abs(unaccounted_rows)) "
                                          "from marts.reconciliation").fetchone()
        held = con.execute("select count(*) from marts.customer_features_weekly where customer_id = ?",
                           [key]).fetchone()[0]
    return int(erased or 0), int(unaccounted or 0), held


def test_an_erased_customer_is_tombstoned_alike_on_both_engines(tmp_path_factory):
    settings = generate_raw(tmp_path_factory.mktemp("erase-spark"), scale=0.02, seed=21)
    root = settings.data_dir / "cross_engine"
    cross_engine.build_on(settings, "duckdb", root / "before")
    with warehouse.connect(root / "before") as con:
        key = con.execute("select customer_id from marts.customer_features_weekly where client_id = 'acme' "
                          "group by 1 order by count(*) desc, 1 limit 1").fetchone()[0]
    suppression.add(settings.data_dir, key_sha256(key))
    cross_engine.build_on(settings, "spark", root / "spark")
    cross_engine.build_on(settings, "duckdb", root / "duckdb")
    spark, duck = _erasure_figures(root / "spark", key), _erasure_figures(root / "duckdb", key)
    assert spark == duck and spark[0] > 0 and spark[1:] == (0, 0), (spark, duck)
    diffs = cross_engine.compare(root / "duckdb", root / "spark")
    assert all(d.identical for d in diffs), cross_engine.report(diffs)
