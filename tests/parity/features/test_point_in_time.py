"""Feast's point-in-time training frames equal an independent pandas oracle computed from the
staged transactions, at times just before and after feature updates and late-arriving rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from parity.features.feature_store import open_store
from parity.features.retrieval import training_frame
from tests.data.oracle import DAY, CustomerOracle, load
from tests.data.test_feature_oracle import _around, _visible

pytestmark = pytest.mark.data
HOUR = pd.Timedelta(hours=1)
CHECKED = ["purchase_count_30d", "purchase_count_90d", "purchase_count_365d", "spend_30d",
           "spend_90d", "spend_365d", "refund_count_90d", "category_count_90d", "tenure_days"]


@pytest.fixture(scope="module")
def cases(feature_data):
    """(customer, time) pairs around late arrivals and corrections, with the snapshot in force."""
    wh = load(feature_data)
    v = wh.versions
    late = v[(v["transaction_type"] == "purchase") & (v["loaded_at"] - v["transacted_at"] > 7 * DAY)]
    fixes = v[v["version_number"] == 2]
    rows = []
    for frame in (late.groupby("client_id").head(3), fixes.groupby("client_id").head(3)):
        for r in frame.itertuples():
            around = _around(wh, r.client_id, r.loaded_at)
            if not around or not _visible(wh, r.customer_id, *around):
                continue
            before, after = around
            # an hour after the snapshot before the arrival, just after the arrival (the old
            # snapshot is still in force), exactly at the next snapshot and an hour after it
            for t in (before + HOUR, r.loaded_at + HOUR, after, after + HOUR):
                snapshots = wh.snapshots(r.client_id)
                in_force = snapshots[snapshots <= t][-1]  # Feast: latest row <= t within TTL
                rows.append({"customer_id": r.customer_id, "event_timestamp": t, "snapshot": in_force})
    frame = pd.DataFrame(rows).drop_duplicates(["customer_id", "event_timestamp"]).reset_index(drop=True)
    assert frame["customer_id"].nunique() >= 6, "too few late rows/corrections to test"
    return wh, frame


def test_training_frame_matches_oracle_around_late_rows_and_corrections(feature_data, cases):
    wh, entity_df = cases
    got = training_frame(open_store(feature_data), entity_df[["customer_id", "event_timestamp"]], "churn_v1")
    changed = 0
    for i, row in entity_df.iterrows():
        oracle = CustomerOracle(wh, row["customer_id"])
        want = oracle.features(row["snapshot"])
        actual = got.iloc[i]
        assert actual["customer_id"] == row["customer_id"]
        for name in CHECKED:
            assert np.isclose(float(actual[name]), float(want[name]), rtol=1e-9, atol=1e-9), (
                row["customer_id"], row["event_timestamp"], name, actual[name], want[name])
        last = want["last_purchase_at"]
        expected_days = np.nan if pd.isna(last) else (row["event_timestamp"] - last) / DAY
        assert np.isclose(actual["days_since_last_purchase"], expected_days, rtol=1e-9, equal_nan=True)
        first = wh.snapshots(wh.client_of(row["customer_id"]))[0]
        before = oracle.features(row["snapshot"] - 7 * DAY) if row["snapshot"] - 7 * DAY >= first else None
        changed += before is not None and before["purchase_count_365d"] != want["purchase_count_365d"]
    assert changed > 0, "no case where the feature value changes across a snapshot: vacuous test"


def test_leaking_arrival_time_would_be_caught(feature_data, cases):
    """Guard: an oracle that ignores arrival time disagrees with Feast on some late row."""
    wh, entity_df = cases
    got = training_frame(open_store(feature_data), entity_df[["customer_id", "event_timestamp"]], "churn_v1")
    differs = 0
    for i, row in entity_df.iterrows():
        versions = wh.versions[wh.versions["customer_id"] == row["customer_id"]].copy()
        versions["loaded_at"] = versions["transacted_at"]  # pretend everything arrived on time
        leaky = CustomerOracle(wh, row["customer_id"], versions).features(row["snapshot"])
        differs += int(leaky["purchase_count_365d"] != got.iloc[i]["purchase_count_365d"])
    assert differs > 0
