"""customer_features_weekly equals an independent pandas oracle, point in time.

A sample of customers (always including ones with late-arriving rows and with corrections) is
recomputed at every one of their snapshots; late rows and corrections are then checked at the
snapshot just before their arrival (not counted / old value) and just after (counted / new value).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from parity.config import Settings
from tests.data.oracle import (
    ANCHOR,
    DAY,
    WEEK,
    CustomerOracle,
    Warehouse,
    load,
    mismatches,
    read_mart,
    spine,
)

pytestmark = pytest.mark.data

SAMPLE_SIZE = 40
PICKS_PER_CLIENT = 2


@pytest.fixture(scope="module")
def wh(built_data: Settings) -> Warehouse:
    return load(built_data)


@pytest.fixture(scope="module")
def mart(built_data: Settings) -> pd.DataFrame:
    return read_mart(built_data, "customer_features_weekly").set_index(
        ["customer_id", "snapshot_at"]).sort_index()


def _around(wh: Warehouse, client_id: str,
            arrival: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The client's last snapshot before an arrival and its first one at or after it."""
    snapshots = wh.snapshots(client_id)
    before, after = snapshots[snapshots < arrival], snapshots[snapshots >= arrival]
    return (before[-1], after[0]) if len(before) and len(after) else None


def _visible(wh: Warehouse, customer_id: str, *times: pd.Timestamp) -> bool:
    return all(t in spine(wh, customer_id) for t in times)


@pytest.fixture(scope="module")
def late_rows(wh: Warehouse) -> pd.DataFrame:
    """Purchases that arrived > 7 days after they happened, with a snapshot in between."""
    v = wh.versions
    single = v.groupby(["client_id", "transaction_id"])["version_number"].transform("max") == 1
    cand = v[single & (v["transaction_type"] == "purchase")
             & (v["loaded_at"] - v["transacted_at"] > 7 * DAY)].copy()
    picks = []
    for row in cand.sort_values(["client_id", "loaded_at"]).itertuples():
        around = _around(wh, row.client_id, row.loaded_at)
        if around and around[0] >= row.transacted_at and _visible(wh, row.customer_id, *around):
            picks.append({**row._asdict(), "before": around[0], "after": around[1]})
    return pd.DataFrame(picks).groupby("client_id").head(PICKS_PER_CLIENT)


@pytest.fixture(scope="module")
def corrections(wh: Warehouse) -> pd.DataFrame:
    """Purchases corrected once (version 2), with a snapshot between the two arrivals."""
    v = wh.versions
    n = v.groupby(["client_id", "transaction_id"])["version_number"].transform("max")
    two = v[(n == 2)].sort_values(["client_id", "transaction_id", "version_number"])
    picks = []
    for (client, tid), pair in two.groupby(["client_id", "transaction_id"]):
        first, second = pair.iloc[0], pair.iloc[1]
        if not (pair["transaction_type"] == "purchase").all():
            continue
        around = _around(wh, client, second["loaded_at"])
        if (around and around[0] >= max(first["loaded_at"], first["transacted_at"])
                and _visible(wh, first["customer_id"], *around)):
            picks.append({"client_id": client, "transaction_id": tid,
                          "customer_id": first["customer_id"],
                          "old_usd": first["amount_usd"], "new_usd": second["amount_usd"],
                          "corrected_at": second["loaded_at"],
                          "before": around[0], "after": around[1]})
    return pd.DataFrame(picks).groupby("client_id").head(PICKS_PER_CLIENT)


@pytest.fixture(scope="module")
def sample(wh: Warehouse, late_rows: pd.DataFrame, corrections: pd.DataFrame) -> list[str]:
    chosen = set(late_rows["customer_id"]) | set(corrections["customer_id"])
    rng = np.random.default_rng(2024)
    with_tx = wh.versions["customer_id"].unique()
    others = sorted(set(with_tx) - chosen)
    n_more = max(SAMPLE_SIZE - len(chosen), 0)
    chosen |= set(rng.choice(others, size=min(n_more, len(others)), replace=False))
    # and one customer without any accepted transaction, if there is one
    quiet = sorted(set(wh.customers.index) - set(with_tx))
    return sorted(chosen) + quiet[:1]


def test_picks_cover_every_client(built_data: Settings, wh: Warehouse, late_rows: pd.DataFrame,
                                  corrections: pd.DataFrame, sample: list[str]) -> None:
    """The sample really contains late rows and corrections of every client (else vacuous)."""
    clients = set(wh.customers["client_id"])
    assert set(late_rows["client_id"]) == clients
    # corrections of every client whose drop can carry them (ids; dune's log has none)
    correcting = {c for c in clients if json.loads((built_data.raw_dir / c / "_manifest.json")
                                                   .read_text())["defects"].get("late_correction")}
    assert len(correcting) >= 3
    assert set(corrections["client_id"]) == correcting
    assert set(wh.customers.loc[sample, "client_id"]) == clients
    assert len(sample) >= SAMPLE_SIZE


def test_snapshot_times_follow_each_clients_timeline(wh: Warehouse, mart: pd.DataFrame) -> None:
    """Every client's rows lie on its own grid, end at its own end, never after its watermark."""
    rows = mart.reset_index()[["client_id", "snapshot_at"]].drop_duplicates()
    assert set(rows["client_id"]) == set(wh.timelines)
    for client, times in rows.groupby("client_id")["snapshot_at"]:
        tl = wh.timelines[client]
        assert times.max() == tl.end <= tl.watermark_at, client
        assert set(times) == set(tl.snapshots), client
        assert (times == times.dt.floor("D")).all()  # midnight UTC
        # on the fixed grid (anchor + 7k days, the same instants in every build), the newest
        # grid point at or before the watermark
        assert ((times - ANCHOR) % WEEK == pd.Timedelta(0)).all(), client
        assert tl.watermark_at - WEEK < tl.end, client


def test_client_watermarks_mart_equals_the_oracle(built_data: Settings, wh: Warehouse) -> None:
    marks = read_mart(built_data, "client_watermarks").set_index("client_id")
    assert set(marks.index) == set(wh.timelines)
    for client, tl in wh.timelines.items():
        row = marks.loc[client]
        assert row["watermark_at"] == tl.watermark_at, client
        assert row["n_snapshots"] == len(tl.snapshots), client
        assert (row["first_snapshot_at"], row["last_snapshot_at"]) == (tl.snapshots[0], tl.end)
        versions = wh.versions[wh.versions["client_id"] == client]
        assert row["newest_loaded_at"] == versions["loaded_at"].max()
        assert row["newest_transacted_at"] == versions["transacted_at"].max()


def test_mart_equals_oracle_for_sampled_customers(wh: Warehouse, mart: pd.DataFrame,
                                                  sample: list[str]) -> None:
    checked, failures = 0, []
    for customer_id in sample:
        oracle = CustomerOracle(wh, customer_id)
        expected_times = spine(wh, customer_id)
        rows = mart.loc[customer_id] if customer_id in mart.index.get_level_values(0) else None
        got_times = pd.DatetimeIndex([]) if rows is None else rows.index
        assert list(got_times) == list(expected_times), f"{customer_id}: snapshot spine differs"
        for t in expected_times:
            bad = mismatches(oracle.features(t), rows.loc[t])
            failures += [f"{customer_id} @ {t}: {b}" for b in bad]
            checked += 1
    assert checked > 40 * 20, checked
    assert not failures, "\n".join(failures[:30])


def test_late_row_counts_only_from_its_arrival(wh: Warehouse, mart: pd.DataFrame,
                                               late_rows: pd.DataFrame) -> None:
    for row in late_rows.itertuples():
        without = CustomerOracle(wh, row.customer_id, wh.versions[
            (wh.versions["customer_id"] == row.customer_id)
            & (wh.versions["transaction_id"] != row.transaction_id)])
        before = mart.loc[(row.customer_id, row.before)]
        after = mart.loc[(row.customer_id, row.after)]
        # before its arrival the row is invisible although it had already happened ...
        assert row.transacted_at <= row.before < row.loaded_at <= row.after
        assert before["purchase_count_365d"] == without.features(row.before)["purchase_count_365d"]
        assert before["spend_365d"] == pytest.approx(without.features(row.before)["spend_365d"],
                                                     rel=1e-9, abs=1e-9)
        # ... and from the first snapshot after its arrival it counts, exactly once
        assert after["purchase_count_365d"] == without.features(row.after)["purchase_count_365d"] + 1
        assert after["spend_365d"] == pytest.approx(
            without.features(row.after)["spend_365d"] + row.amount_usd, rel=1e-9, abs=1e-9)


def test_correction_replaces_the_old_value_only_from_its_arrival(
        wh: Warehouse, mart: pd.DataFrame, corrections: pd.DataFrame) -> None:
    for row in corrections.itertuples():
        assert not np.isclose(row.old_usd, row.new_usd)
        without = CustomerOracle(wh, row.customer_id, wh.versions[
            (wh.versions["customer_id"] == row.customer_id)
            & (wh.versions["transaction_id"] != row.transaction_id)])
        for t, amount in ((row.before, row.old_usd), (row.after, row.new_usd)):
            got, base = mart.loc[(row.customer_id, t)], without.features(t)
            # the transaction counts once, with the value known at t
            assert got["purchase_count_365d"] == base["purchase_count_365d"] + 1, (row, t)
            assert got["spend_365d"] == pytest.approx(base["spend_365d"] + amount,
                                                      rel=1e-9, abs=1e-9), (row, t)


def test_oracle_sees_leakage_if_arrival_is_ignored(wh: Warehouse, mart: pd.DataFrame,
                                                   late_rows: pd.DataFrame) -> None:
    """Guard against a vacuous oracle: pretending late rows arrived on time changes the value."""
    row = late_rows.iloc[0]
    versions = wh.versions[wh.versions["customer_id"] == row["customer_id"]].copy()
    versions["loaded_at"] = versions["transacted_at"]
    leaky = CustomerOracle(wh, row["customer_id"], versions).features(row["before"])
    assert mismatches(leaky, mart.loc[(row["customer_id"], row["before"])])
