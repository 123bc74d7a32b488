"""parity.prepare: one preparation for training and serving, learned on training rows only.

(Tests of parity/prepare.py live here because tests/parity/ belongs to the platform team's files;
move to tests/parity/test_prepare.py when convenient.)
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from parity.prepare import OTHER, PrepareError, PrepareSpec, fit_spec, prepare

FEATURES = (
    ("country", "String"),
    ("birth_year", "Int64"),
    ("tenure_days", "Int64"),
    ("purchase_count_365d", "Int64"),
    ("days_since_last_purchase", "Float64"),
)


def frame(**columns) -> pd.DataFrame:
    base = {
        "customer_id": ["a", "b", "c", "d"],
        "country": ["DE", "DE", "FR", None],
        "birth_year": pd.array([1980, None, 1990, 2000], dtype="Int64"),
        "tenure_days": pd.array([400, 100, 30, 700], dtype="Int64"),
        "purchase_count_365d": pd.array([10, 4, 1, 0], dtype="Int64"),
        "days_since_last_purchase": [5.0, 20.0, 3.0, np.nan],
    }
    base.update(columns)
    return pd.DataFrame(base)


def test_columns_levels_and_imputation_come_from_the_training_frame():
    spec = fit_spec(frame(), FEATURES, derived=["overdue_ratio_365d"], min_level_count=1)
    assert spec.columns == (
        "country=DE",
        "country=FR",
        f"country={OTHER}",
        "birth_year",
        "birth_year__missing",
        "tenure_days",
        "purchase_count_365d",
        "days_since_last_purchase",
        "days_since_last_purchase__missing",
        "overdue_ratio_365d",
        "overdue_ratio_365d__missing",
    )
    assert dict(spec.impute)["birth_year"] == 1990.0  # median of the training rows
    # serving-time rows: an unseen level, a missing value, in a different row order
    new = frame(
        country=["US", "FR", None, "DE"],
        birth_year=pd.array([None, 1970, 1971, 1972], dtype="Int64"),
    )
    x = prepare(new, spec)
    assert x.dtypes.eq("float64").all() and list(x.columns) == list(spec.columns)
    assert x.loc[0, ["country=DE", "country=FR", f"country={OTHER}"]].tolist() == [0, 0, 1]
    assert x.loc[2, f"country={OTHER}"] == 1
    assert (x.loc[0, "birth_year"], x.loc[0, "birth_year__missing"]) == (1990.0, 1.0)
    assert x.loc[1, "birth_year"] == 1970.0
    # overdue ratio = days x purchases per observed day (tenure capped at 365)
    assert x.loc[0, "overdue_ratio_365d"] == pytest.approx(5.0 * 10 / 365)
    assert x.loc[2, "overdue_ratio_365d"] == pytest.approx(3.0 * 1 / 30)


def test_rare_levels_fold_into_other():
    spec = fit_spec(frame(), FEATURES, min_level_count=2)
    assert dict(spec.levels)["country"] == ("DE",)
    assert prepare(frame(), spec)[f"country={OTHER}"].tolist() == [0, 0, 1, 1]


def test_spec_round_trips_through_json_and_prepares_identically():
    spec = fit_spec(frame(), FEATURES, derived=["overdue_ratio_365d"])
    loaded = PrepareSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert loaded == spec
    pd.testing.assert_frame_equal(prepare(frame(), loaded), prepare(frame(), spec))


def test_all_null_and_missing_columns_are_named():
    with pytest.raises(PrepareError, match=r"\['tenure_days'\] are null on every training row"):
        fit_spec(frame(tenure_days=pd.array([None] * 4, dtype="Int64")), FEATURES)
    spec = fit_spec(frame(), FEATURES)
    with pytest.raises(PrepareError, match=r"lacks feature column\(s\) \['country'\]"):
        prepare(frame().drop(columns=["country"]), spec)
    with pytest.raises(PrepareError, match="unknown derived"):
        fit_spec(frame(), FEATURES, derived=["magic"])
    with pytest.raises(PrepareError, match="empty"):
        fit_spec(frame().iloc[:0], FEATURES)
    with pytest.raises(PrepareError, match="not numeric"):
        prepare(frame(tenure_days=["x", "y", "z", "w"]), spec)


def test_offline_and_online_frames_prepare_to_the_same_matrix(feature_data):
    from parity.feature_store import materialized_until, open_store
    from parity.retrieval import online_frame, service_schema, training_frame

    store = open_store(feature_data)
    schema = service_schema(store, "churn_v1")
    at = materialized_until(feature_data)
    ids = sorted(
        pd.read_parquet(feature_data.marts_dir / "churn_labels.parquet").customer_id.unique()
    )[:25]
    offline = training_frame(
        store, pd.DataFrame({"customer_id": ids, "event_timestamp": at}), "churn_v1"
    )
    spec = fit_spec(offline, schema.features, derived=["overdue_ratio_365d"])
    online = online_frame(store, ids + ["acme:AC-999999"], "churn_v1", request_at=at)
    x_online = prepare(online, spec)
    pd.testing.assert_frame_equal(x_online.iloc[:-1], prepare(offline, spec))
    assert np.isfinite(x_online.to_numpy()).all()  # an unknown customer is imputed, not NaN
