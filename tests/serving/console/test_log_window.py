"""The operations page reads only the prediction-log day folders its window reaches, with the
same answer as a scan of the whole log for the requests in the window."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pandas as pd

from parity.config import load_settings
from serving.console import data
from tests.parity.test_prediction_log import NOW, corrupt_part, write_part


def _whole_log(folder, since) -> pd.DataFrame:
    """The page's query as it was: every part of the log, filtered on logged_at."""
    with duckdb.connect() as con:
        return con.execute(
            "select request_id, min(logged_at) as at, count(*) as customers, max(latency_ms) as latency_ms, "
            "count(*) filter (where status = 'ok') as ok, count(*) filter (where status = 'stale_features') as stale, "
            "count(*) filter (where status in ('unknown_customer', 'malformed_customer_id')) as unknown "
            f"from read_parquet('{folder}/**/*.parquet', union_by_name=true, hive_partitioning=false) "
            "where role <> 'shadow' and logged_at >= ? group by request_id order by 2", [since]).df()


def test_the_operations_window_opens_only_its_day_folders(tmp_path):
    settings = load_settings(tmp_path)
    log = settings.predictions_dir
    days = 14
    since = NOW - timedelta(days=days)
    for back in (40, 20, 15, 14, 10, 1):  # day folders before, at and inside the window
        written = NOW - timedelta(days=back)
        write_part(log, written, [written - timedelta(hours=h) for h in (0, 3, 13)], f"d{back}")
    write_part(log, NOW - timedelta(days=2), [NOW - timedelta(days=2)] * 2, "shadow", role="shadow")
    expected = _whole_log(log, since)
    assert len(expected) > 0 and expected["at"].min() >= since
    # parts the window cannot need are never opened: unreadable ones there change nothing
    corrupt_part(log, (NOW - timedelta(days=30)).strftime("%Y-%m-%d"), "bad")
    corrupt_part(log, (since - timedelta(days=1)).strftime("%Y-%m-%d"), "bad")
    got = data.served_requests(settings, days, now=NOW)
    assert got.problem is None
    pd.testing.assert_frame_equal(got.frame.reset_index(drop=True), expected.reset_index(drop=True),
                                  check_dtype=False)
    # one inside the window is read, and named
    inside = corrupt_part(log, (NOW - timedelta(days=3)).strftime("%Y-%m-%d"), "bad")
    assert str(inside) in (data.served_requests(settings, days, now=NOW).problem or "")


def test_no_log_and_no_request_in_the_window_are_told_apart(tmp_path):
    settings = load_settings(tmp_path)
    assert "no prediction log" in data.served_requests(settings, 14, now=NOW).problem
    write_part(settings.predictions_dir, NOW - timedelta(days=60), [NOW - timedelta(days=60)], "old")
    quiet = data.served_requests(settings, 14, now=NOW)
    assert quiet.problem is None and quiet.frame.empty


