"""Training set: label checks, point-in-time retrieval, fingerprinted and reloadable."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from training import dataset
from training.errors import DataError


def labels(n_dates: int = 3, per_date: int = 12, churned: float = 0.25) -> pd.DataFrame:
    dates = pd.date_range("2026-01-04", periods=n_dates, freq="28D", tz="UTC")
    rows = []
    for d in dates:
        for i in range(per_date):
            rows.append(
                {
                    "customer_id": f"acme:AC-{i:06d}",
                    "client_id": "acme",
                    "is_churned": int(i < per_date * churned),
                    "as_of_at": d,
                    "label_window_end_at": d + pd.Timedelta(days=60),
                }
            )
    return pd.DataFrame(rows)


OBSERVED = datetime(2026, 12, 31, tzinfo=timezone.utc)


def test_good_labels_pass():
    dataset.check_labels(labels(), OBSERVED)


def test_empty_labels_are_refused():
    with pytest.raises(DataError, match="labels mart is empty"):
        dataset.check_labels(labels().iloc[:0], OBSERVED)


def test_label_windows_beyond_the_data_are_refused():
    frame = labels()
    last_end = frame.label_window_end_at.max()
    with pytest.raises(DataError, match="window ending after the data ends"):
        dataset.check_labels(frame, last_end.to_pydatetime() - pd.Timedelta(days=1))


def test_a_window_without_any_observed_purchase_is_refused():
    frame = labels()
    outage = frame.as_of_at == frame.as_of_at.max()
    frame.loc[outage, "is_churned"] = 1
    with pytest.raises(DataError, match="no purchase at all was observed"):
        dataset.check_labels(frame, OBSERVED)


def test_non_binary_or_null_labels_are_refused():
    frame = labels()
    frame.loc[0, "is_churned"] = 2
    with pytest.raises(DataError, match="0/1"):
        dataset.check_labels(frame, OBSERVED)
    frame = labels().astype({"client_id": object})
    frame.loc[0, "client_id"] = None
    with pytest.raises(DataError, match="nulls"):
        dataset.check_labels(frame, OBSERVED)


def test_missing_labels_mart_names_the_make_target(tmp_path):
    with pytest.raises(DataError, match="make build"):
        dataset.read_labels(tmp_path / "churn_labels.parquet")


@pytest.mark.data
def test_retrieval_gives_point_in_time_features_with_the_labels(feature_data):
    from parity.features.feature_store import open_store
    from parity.features.retrieval import service_schema

    store = open_store(feature_data)
    mart = dataset.read_labels(feature_data.marts_dir / "churn_labels.parquet")
    sample = mart.sort_values(["as_of_at", "customer_id"]).iloc[::25].reset_index(drop=True)
    frame = dataset.retrieve(store, dataset.entity_frame(sample), "churn_v1")
    names = service_schema(store, "churn_v1").names
    assert list(frame.columns) == [
        "customer_id",
        "event_timestamp",
        *names,
        "is_churned",
        "label_window_end_at",
    ]
    assert len(frame) == len(sample)
    # request-time recency is measured at the label's as-of time, never after it
    assert (frame["days_since_last_purchase"].dropna() >= 0).all()
    assert (frame["client_id"] == frame["customer_id"].str.split(":").str[0]).all()
    with pytest.raises(DataError, match="feature service 'churn_v9'"):
        dataset.retrieve(store, dataset.entity_frame(sample), "churn_v9")


def test_fingerprint_ignores_row_order_but_not_values_and_save_load_round_trips(tmp_path):
    entities = dataset.entity_frame(labels())
    entities["spend_30d"] = range(len(entities))
    print_ = dataset.fingerprint(entities, "churn_v1")
    assert print_["rows"] == len(entities) and print_["positives"] == int(entities.is_churned.sum())
    assert (
        dataset.fingerprint(entities.sample(frac=1, random_state=1), "churn_v1")["sha256"]
        == print_["sha256"]
    )
    changed = entities.copy()
    changed.loc[3, "spend_30d"] = 99
    assert dataset.fingerprint(changed, "churn_v1")["sha256"] != print_["sha256"]

    path = dataset.save_dataset(entities, print_, tmp_path)
    assert path.name == f"dataset-{print_['sha256'][:12]}.parquet"
    _frame, again = dataset.load_dataset(path)
    assert again == print_
    changed.to_parquet(path, index=False)  # someone edits the saved set
    with pytest.raises(DataError, match="does not match its fingerprint"):
        dataset.load_dataset(path)


def test_fingerprint_does_not_depend_on_values_hidden_under_nulls():
    import numpy as np

    base = dataset.entity_frame(labels(n_dates=1, per_date=3))
    hidden_a = pd.arrays.IntegerArray(np.array([1, 99, 3]), np.array([False, True, False]))
    hidden_b = pd.arrays.IntegerArray(np.array([1, 0, 3]), np.array([False, True, False]))
    shown = pd.array([1, 0, 3], dtype="Int64")
    a = dataset.fingerprint(base.assign(tenure_days=hidden_a), "churn_v1")["sha256"]
    assert a == dataset.fingerprint(base.assign(tenure_days=hidden_b), "churn_v1")["sha256"]
    assert a != dataset.fingerprint(base.assign(tenure_days=shown), "churn_v1")["sha256"]
