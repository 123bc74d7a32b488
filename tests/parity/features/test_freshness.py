"""The freshness rule's inputs: the limit from dbt's vars (validated) and the client watermarks
mart (absent or unreadable: reported, never fatal)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parity.config import ProjectConfigError, dbt_vars
from parity.features.freshness import WATERMARKS_FILE, max_feature_age, read_watermarks, verdict


def test_watermarks_absent_or_unreadable_are_reported_not_fatal(tmp_path):
    missing = read_watermarks(tmp_path)
    assert missing.by_client == {} and "does not exist" in missing.problem
    (tmp_path / WATERMARKS_FILE).write_text("not parquet")
    broken = read_watermarks(tmp_path)
    assert broken.by_client == {} and "cannot read" in broken.problem


def test_the_limit_comes_from_dbt_vars_and_is_validated(tmp_path):
    assert max_feature_age() == timedelta(days=float(dbt_vars()["max_feature_age_days"]))
    for bad in ("0", "-3", "seven", "[]"):
        root = tmp_path / f"p{abs(hash(bad))}"
        (root / "dbt_project").mkdir(parents=True)
        (root / "dbt_project" / "dbt_project.yml").write_text(f"vars:\n  max_feature_age_days: {bad}\n")
        with pytest.raises(ProjectConfigError, match="max_feature_age_days"):
            max_feature_age(root)


def test_watermarks_are_read_by_client_in_utc(tmp_path):
    pq.write_table(pa.table({
        "client_id": ["acme", "bolt", None],
        "watermark_at": pa.array([datetime(2026, 5, 1, tzinfo=timezone.utc), None, datetime(2026, 1, 1)],
                                 pa.timestamp("us", tz="UTC")),
        "last_snapshot_at": pa.array([None, None, None], pa.timestamp("us", tz="UTC")),
    }), tmp_path / WATERMARKS_FILE)
    marks = read_watermarks(tmp_path)
    assert marks.problem is None and marks.by_client == {"acme": datetime(2026, 5, 1, tzinfo=timezone.utc)}
    assert marks.of("bolt") is None and marks.of("acme").tzinfo is not None


def test_verdict_is_stale_only_past_the_limit():
    limit = timedelta(days=7)
    assert verdict(7.0, limit) == "ok" and verdict(7.0001, limit) == "stale_features"
    assert verdict(None, limit) == "ok" and verdict(-1.0, limit) == "ok"
