"""Blanks are trimmed alike on Spark and DuckDB (macros/engine.sql `trim_text`): Spark's own
trim() strips U+0020 only, DuckDB's every Unicode space separator, so a value with a no-break,
em or ideographic space around it staged differently on the scale profile. Uses the scale
group's one pair of builds (tests/scale/conftest.py `engines`): the corpus plants cora's good
transaction with U+00A0 / U+2003 / U+3000 around its values and acme's id ending in U+00A0."""

from __future__ import annotations

import json
import re

import pytest

from parity.ingest import warehouse
from tests.data.corpus import ROW_CASES
from tests.parity.test_trim_text import duckdb_blank_set

pytestmark = [pytest.mark.scale, pytest.mark.data, pytest.mark.timeout(1800)]  # setup pays the Spark build


def _planted(number: int) -> str:
    return f"CX-{number:03d}"


def _records(frame) -> list[dict]:
    """Rows as dicts, a missing value as None whatever pandas made of it."""
    return [{k: (None if v is None or v != v else v) for k, v in row.items()} for row in frame.to_dict("records")]


def test_values_with_unicode_spaces_around_them_stage_alike_on_both_engines(engines, sample_period) -> None:
    settings, _ = engines
    cases = {c.name: _planted(i) for i, c in enumerate(ROW_CASES)}
    got = {}
    for engine, folder in (("spark", settings.published_dir), ("duckdb", sample_period["duckdb"])):
        got[engine] = _records(warehouse.query(
            None, "select customer_id, transaction_type, currency, category, amount_local, quarantine_reason "
                  "from staging.stg_cora__transactions where transaction_id = "
                  f"'{cases['unicode_spaces_around_values']}'", folder=folder))
        acme = _records(warehouse.query(
            None, "select customer_id, quarantine_reason from staging.stg_acme__transactions "
                  f"where transaction_id = '{cases['nbsp_around_id']}'", folder=folder))
        assert acme == [{"customer_id": "acme:AC-990001", "quarantine_reason": None}], (engine, acme)
    assert got["spark"] == got["duckdb"] == [{
        "customer_id": "cora:CR-99001", "transaction_type": "purchase", "currency": "GBP", "category": "books",
        "amount_local": 12.5, "quarantine_reason": None}], got


def test_spark_s_trim_text_strips_exactly_what_duckdb_s_trim_strips(engines) -> None:
    """The expression the Spark build ran (from its manifest), on Spark, for every character up to
    U+3000 and the whitespace-like ones beyond, on both ends and each end alone."""
    from pyspark.sql import SparkSession

    settings, _ = engines
    manifest = json.loads((settings.published_dir / "run" / "manifest.json").read_text())
    code = manifest["nodes"]["model.parity.stg_cora__transactions"]["compiled_code"]
    literals = set(re.findall(r"trim\(BOTH '((?:\\u[0-9a-f]{4})+)' from ", code))
    assert len(literals) == 1, literals  # one set, as the macro writes it
    literal = literals.pop()
    blanks = duckdb_blank_set()
    assert literal.encode().decode("unicode_escape") == blanks
    running = SparkSession.getActiveSession()  # the run's own session if one is up (Feast's)
    spark = running or SparkSession.builder.master("local[1]").appName("parity-trim-check").getOrCreate()
    candidates = [chr(c) for c in range(1, 0x3001)] + ["\u202f", "\u205f", "\u3000", "\u200b", "\ufeff", "\u2028"]
    frame = spark.createDataFrame([(ch,) for ch in candidates], "ch string")
    frame.createOrReplaceTempView("parity_trim_candidates")
    rows = spark.sql(
        f"select ch, trim(BOTH '{literal}' from concat(ch, 'x', ch)) as both_ends, "
        f"trim(LEADING '{literal}' from concat(ch, 'x')) as leading, "
        f"trim(TRAILING '{literal}' from concat('x', ch)) as trailing from parity_trim_candidates").collect()
    if running is None:
        spark.stop()  # the next test that needs Spark configures its own
    stripped = sorted({r.ch for r in rows if r.both_ends == "x"})
    assert "".join(stripped) == "".join(sorted(blanks))
    assert all((r.leading == "x") == (r.trailing == "x") == (r.both_ends == "x") for r in rows)
