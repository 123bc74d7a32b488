"""churn_labels equals an independent pandas oracle, for every customer and label time.

Who is labelled is decided on what was known at as_of (>= 1 purchase in the 90 days before, by
arrival); whether they churned is judged on the current transaction versions (what we know now).
"""

from __future__ import annotations

import pandas as pd
import pytest

from parity.config import Settings, churn_population
from tests.data.oracle import (
    CHURN_HORIZON_DAYS,
    DAY,
    CustomerOracle,
    Warehouse,
    label_times,
    load,
    read_mart,
    spine,
)

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def wh(built_data: Settings) -> Warehouse:
    return load(built_data)


@pytest.fixture(scope="module")
def labels(built_data: Settings) -> pd.DataFrame:
    return read_mart(built_data, "churn_labels")


@pytest.fixture(scope="module")
def features(built_data: Settings) -> pd.DataFrame:
    return read_mart(built_data, "customer_features_weekly")


def expected_labels(wh: Warehouse) -> pd.DataFrame:
    """The oracle's labels for every customer, plus who would be labelled if arrival were ignored."""
    times = {client: label_times(wh, client) for client in wh.timelines}
    groups = dict(tuple(wh.versions.groupby("customer_id")))
    empty = wh.versions.iloc[:0]
    rows = []
    for customer_id in wh.customers.index:
        versions = groups.get(customer_id, empty)
        oracle = CustomerOracle(wh, customer_id, versions)
        arrived_on_time = versions.assign(loaded_at=versions["transacted_at"],
                                          superseded_at=pd.NaT)
        naive = CustomerOracle(wh, customer_id, arrived_on_time)
        visible = set(spine(wh, customer_id))
        for t in times.get(wh.client_of(customer_id), []):
            if t not in visible:
                continue
            active = oracle.features(t)["purchase_count_90d"] >= 1
            naive_active = naive.features(t)["purchase_count_90d"] >= 1
            if active or naive_active:
                rows.append({"customer_id": customer_id, "as_of_at": t, "is_active": active,
                             "is_active_if_arrival_ignored": naive_active,
                             "is_churned": int(oracle.future_purchases(t, CHURN_HORIZON_DAYS) == 0)})
    return pd.DataFrame(rows, columns=["customer_id", "as_of_at", "is_active",
                                       "is_active_if_arrival_ignored", "is_churned"])


@pytest.fixture(scope="module")
def expected(wh: Warehouse) -> pd.DataFrame:
    return expected_labels(wh)


def test_label_times_have_a_fully_observed_window(labels: pd.DataFrame, wh: Warehouse) -> None:
    """Per client: labels at every 4th point of the fixed grid (from the anchor), windows ending <= its watermark."""
    assert len(labels) > 0
    assert (labels["label_window_end_at"] == labels["as_of_at"] + CHURN_HORIZON_DAYS * DAY).all()
    assert set(labels["client_id"]) == set(wh.timelines)
    for client, times in labels.groupby("client_id")["as_of_at"]:
        allowed = label_times(wh, client)
        assert (times + CHURN_HORIZON_DAYS * DAY <= wh.timelines[client].watermark_at).all()
        assert set(times) <= set(allowed), client  # every 4th weekly snapshot of its grid only
        # the newest snapshot that still has a full window is labelled; none after it
        assert times.max() == max(allowed), client
    assert set(labels["is_churned"]) == {0, 1}
    assert not labels.duplicated(["customer_id", "as_of_at"]).any()


def test_labels_equal_the_oracle_for_every_customer(labels: pd.DataFrame,
                                                    expected: pd.DataFrame) -> None:
    want = expected[expected["is_active"]].set_index(["customer_id", "as_of_at"])["is_churned"]
    got = labels.set_index(["customer_id", "as_of_at"])["is_churned"]
    missing = want.index.difference(got.index)
    extra = got.index.difference(want.index)
    assert missing.empty, f"{len(missing)} active customers not labelled, e.g. {list(missing[:5])}"
    assert extra.empty, f"{len(extra)} labels for inactive customers, e.g. {list(extra[:5])}"
    diff = want[want != got.reindex(want.index)]
    assert diff.empty, f"{len(diff)} labels differ from the oracle, e.g. {diff.head().to_dict()}"
    assert want.nunique() == 2 and len(want) > 100


def test_activity_is_judged_on_what_was_known_at_as_of(labels: pd.DataFrame,
                                                        expected: pd.DataFrame) -> None:
    """Customers whose only recent purchase had not yet arrived at as_of are not labelled."""
    only_late = expected[~expected["is_active"] & expected["is_active_if_arrival_ignored"]]
    assert len(only_late) > 0, "the sample drop has no such case: the test would be vacuous"
    labelled = set(zip(labels["customer_id"], labels["as_of_at"]))
    leaked = [k for k in zip(only_late["customer_id"], only_late["as_of_at"]) if k in labelled]
    assert not leaked, leaked[:5]


def test_every_label_is_backed_by_an_active_feature_row(labels: pd.DataFrame,
                                                        features: pd.DataFrame) -> None:
    joined = labels.merge(features, left_on=["customer_id", "as_of_at"],
                          right_on=["customer_id", "snapshot_at"], how="left",
                          suffixes=("", "_feature"))
    assert joined["snapshot_at"].notna().all()
    population = churn_population()  # dbt var churn_activity_days, as churn_labels.sql
    assert (joined[population.feature] >= population.min_purchases).all()
    assert (joined["client_id"] == joined["client_id_feature"]).all()
