"""The build applies the quarantine-sample retention itself, so a rebuild never brings back what
`make retention` blanked: the same period (dbt var `quarantine_sample_days`), the same cutoff."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from parity.config import QUARANTINE_SAMPLE_DAYS_ENV
from parity.governance.config import RetentionConfig
from parity.governance.retention import apply_retention
from parity.ingest.warehouse import query
from tests.conftest import build, generate_raw

pytestmark = [pytest.mark.data, pytest.mark.heavy]

BUILD_TIME = datetime(2026, 6, 2, 15, 30, tzinfo=timezone.utc)  # the test drops end 2026-06-01
DAYS = 30
CUTOFF = datetime(2026, 5, 3, tzinfo=timezone.utc)  # 30 whole days back from the start of the build's day


def test_a_build_blanks_samples_older_than_the_period_and_keeps_every_row(tmp_path, monkeypatch):
    monkeypatch.delenv(QUARANTINE_SAMPLE_DAYS_ENV, raising=False)  # the dbt var, not the tests' override
    settings = generate_raw(tmp_path, scale=0.05)
    args = ("--vars", json.dumps({"build_time": BUILD_TIME.isoformat(), "quarantine_sample_days": DAYS}))
    folder = build(settings, dbt_args=args).build
    cutoff = CUTOFF
    union = " union all ".join(f"select '{c}' as client, source_table, source_file, line_number, raw_record, "
                               f"loaded_at from quarantine.quarantine_{c}" for c in settings.clients)
    q = query(None, f"select * from ({union})", folder=folder)
    old = q[q["loaded_at"] < cutoff]
    new = q[q["loaded_at"] >= cutoff]
    assert len(old) > 0 and len(new) > 0  # the period cuts through the drops: both sides exist
    assert old["raw_record"].isna().all(), old.head().to_string()
    assert new["raw_record"].notna().sum() > 0
    # the blanked rows' text still exists in staging: the rule, not missing text, blanked them
    staged = query(None, "select source_file, line_number, raw_record from staging.stg_acme__transactions "
                         "where quarantine_reason is not null", folder=folder)
    old_acme = old[(old["client"] == "acme") & (old["source_table"] == "transactions")]
    joined = old_acme.merge(staged, on=["source_file", "line_number"], suffixes=("", "_staged"))
    assert len(joined) > 0 and joined["raw_record_staged"].notna().all()
    # nothing lost: every row is still counted with its reason
    rec = query(None, "select * from marts.reconciliation", folder=folder)
    assert (rec["unaccounted_rows"] == 0).all() and rec["quarantined_rows"].sum() == len(q)
    # `make retention` at the build's time finds nothing more to blank: one period, one cutoff
    config = RetentionConfig(prediction_log_days=None, review_decisions_days=None, old_builds_days=None)
    assert apply_retention(settings, config, DAYS, now=BUILD_TIME).deleted == []
