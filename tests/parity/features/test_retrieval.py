"""Retrieval helpers: same columns/dtypes offline and online, explicit misses, clear errors."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from parity.config import load_settings
from parity.features.feature_store import (
    FeatureStoreError,
    materialize,
    materialized_until,
    open_store,
    require_applied,
)
from parity.features.retrieval import online_frame, training_frame

pytestmark = pytest.mark.data


def _some_customers(settings, n=5) -> list[str]:
    mart = pd.read_parquet(settings.marts_dir / "customer_features_weekly.parquet", columns=["customer_id"])
    return sorted(mart.customer_id.unique())[:n]


def test_offline_and_online_frames_match_in_columns_order_dtypes_and_values(feature_data):
    store = open_store(feature_data)
    as_of = materialized_until(feature_data)
    ids = _some_customers(feature_data) + ["acme:AC-999999"]
    offline = training_frame(store, pd.DataFrame({"customer_id": ids, "event_timestamp": as_of}), "churn_v1")
    online = online_frame(store, ids, "churn_v1", request_at=as_of)
    assert list(offline.columns) == list(online.columns)
    assert offline.columns[:2].tolist() == ["customer_id", "event_timestamp"]
    assert (offline.dtypes == online.dtypes).all()
    assert str(online.dtypes["purchase_count_30d"]) == "Int64" and str(online.dtypes["spend_30d"]) == "float64"
    pd.testing.assert_frame_equal(offline, online)


def test_unknown_entity_gives_explicit_missing_values_not_another_entity(feature_data):
    store = open_store(feature_data)
    known = _some_customers(feature_data, 1)[0]
    frame = online_frame(store, ["cora:CR-99999", known], "churn_v1", request_at=materialized_until(feature_data))
    unknown = frame.iloc[0]
    assert unknown["customer_id"] == "cora:CR-99999"
    assert unknown.drop(["customer_id", "event_timestamp"]).isna().all()
    assert frame.iloc[1].drop(["customer_id", "event_timestamp"]).notna().any()


def test_training_frame_keeps_row_order_and_extra_columns(feature_data):
    store = open_store(feature_data)
    ids = _some_customers(feature_data, 4)[::-1]
    as_of = materialized_until(feature_data)
    entity_df = pd.DataFrame({"customer_id": ids, "event_timestamp": [as_of - timedelta(weeks=i) for i in range(4)],
                              "label": [1, 0, 1, 0]}, index=[13, 11, 12, 10])
    frame = training_frame(store, entity_df, "churn_v1")
    assert frame["customer_id"].tolist() == ids
    assert frame["label"].tolist() == [1, 0, 1, 0]
    assert frame.columns[-1] == "label"
    assert isinstance(frame.index, pd.RangeIndex) and frame.index.tolist() == [0, 1, 2, 3]
    frame.loc[0, "label"] = 7  # the result is a copy: the caller's frame is untouched
    assert entity_df["label"].tolist() == [1, 0, 1, 0]
    without_label = training_frame(store, entity_df[["customer_id", "event_timestamp"]], "churn_v1")
    pd.testing.assert_frame_equal(without_label, frame.drop(columns="label"))


def test_unknown_feature_service_says_what_to_run(feature_data):
    store = open_store(feature_data)
    with pytest.raises(FeatureStoreError, match=r"'churn_v9' is not in the registry.*churn_v1.*make apply"):
        online_frame(store, ["acme:AC-000001"], "churn_v9")


def test_registry_never_applied_says_what_to_run(tmp_path):
    with pytest.raises(FeatureStoreError, match="make apply"):
        require_applied(load_settings(tmp_path))


def test_materialize_twice_changes_nothing(feature_data):
    store = open_store(feature_data)
    ids = _some_customers(feature_data, 20)
    before_until = materialized_until(feature_data)
    before = online_frame(store, ids, "churn_v1", request_at=before_until)
    result = materialize(feature_data)
    assert set(result["views"].values()) == {"up to date"}
    assert materialized_until(feature_data) == before_until
    pd.testing.assert_frame_equal(before, online_frame(open_store(feature_data), ids, "churn_v1", request_at=before_until))
