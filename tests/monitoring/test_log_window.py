"""Monitoring reads the prediction log's features only from the drift window's day folders; older
parts give realised performance their score columns only."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from monitoring import inputs
from parity.config import load_settings
from tests.parity.test_prediction_log import NOW, corrupt_part, write_part


def test_drift_reads_only_the_window_and_performance_keeps_older_scores(tmp_path):
    settings = load_settings(tmp_path)
    log = settings.predictions_dir
    since = NOW - timedelta(days=7)
    for back in (90, 30, 8, 7, 2):
        written = NOW - timedelta(days=back)
        write_part(log, written, [written - timedelta(hours=h) for h in (0, 5, 11)], f"d{back}")
    everything = pd.concat([pd.read_parquet(p) for p in sorted(log.rglob("*.parquet"))], ignore_index=True)
    scored = everything[(everything["status"] == "ok") & everything["role"].isin(inputs.SCORED_ROLES)]
    messages: list[str] = []
    got = inputs.read_serving_log(settings, messages, since)
    assert messages == []
    # every scored row is there for realised performance, with the columns it uses
    key = ["request_id", "customer_id"]
    assert sorted(map(tuple, got[key].to_numpy())) == sorted(map(tuple, scored[key].to_numpy()))
    merged = got.merge(scored, on=key, suffixes=("", "_written"))
    assert (merged["score"] == merged["score_written"]).all()
    assert (merged["request_at"] == pd.to_datetime(merged["request_at_written"], utc=True)).all()
    # the features JSON was read from the window's day folders only
    from_window = merged["request_id"].str.startswith(("d7-", "d2-"))
    assert merged.loc[from_window, "features"].notna().all() and from_window.any()
    assert merged.loc[~from_window, "features"].isna().all() and (~from_window).any()
    # the drift sample is what a read of the whole log gives for the window
    features = [("spend_30d", "Float64")]
    sample = inputs.serving_sample(got, features, since, [])
    recent = scored[pd.to_datetime(scored["logged_at"], utc=True) >= since]
    assert sample.frame is not None and len(sample.frame) == len(recent)
    assert sorted(sample.frame["customer_id"]) == sorted(recent["customer_id"])
    # an unreadable part is still named, wherever it is
    bad = corrupt_part(log, (NOW - timedelta(days=60)).strftime("%Y-%m-%d"), "bad")
    messages = []
    inputs.read_serving_log(settings, messages, since)
    assert any(str(bad) in m for m in messages)


def test_only_old_parts_still_give_performance_its_scores(tmp_path):
    settings = load_settings(tmp_path)
    write_part(settings.predictions_dir, NOW - timedelta(days=30), [NOW - timedelta(days=30)] * 3, "old")
    messages: list[str] = []
    got = inputs.read_serving_log(settings, messages, NOW - timedelta(days=7))
    assert got is not None and len(got) == 2 and got["features"].isna().all()  # i % 3 == 0 is stale
    sample = inputs.serving_sample(got, [("spend_30d", "Float64")], NOW - timedelta(days=7), messages)
    assert sample.frame is None and any("no scored serving requests since" in m for m in messages)
