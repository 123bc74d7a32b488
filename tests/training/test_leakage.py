"""Leakage: a feature that peeks at the outcome is caught; honest features pass."""

from __future__ import annotations

import numpy as np
import pytest

from parity.models.prepare import fit_spec, prepare
from training import dataset, split
from training.config import load_config
from training.errors import LeakageError
from training.evaluate import check_feature_leakage

pytestmark = pytest.mark.data  # the training period comes from the session's built data


@pytest.fixture(scope="module")
def train_period(feature_data):
    from parity.features.feature_store import open_store
    from tests.training.conftest import keep_data_dir_env

    with keep_data_dir_env():
        store = open_store(feature_data)
        labels = dataset.read_labels(feature_data.marts_dir / "churn_labels.parquet")
        frame = dataset.retrieve(store, dataset.entity_frame(labels), "churn_v1")
        features = dataset.service_features(store, "churn_v1")
    return split.time_split(frame, load_config().split).train, features


def _check(train, features):
    spec = fit_spec(train, features, derived=["overdue_ratio_365d"])
    return check_feature_leakage(
        prepare(train, spec), train["is_churned"].to_numpy(), spec.sources, 0.97
    )


def test_honest_features_pass_the_single_feature_screen(train_period):
    train, features = train_period
    aucs = _check(train, features)
    assert set(aucs) >= {"days_since_last_purchase", "purchase_count_30d"}
    assert max(aucs.values()) < 0.97


def test_a_feature_derived_from_the_label_is_caught(train_period):
    train, features = train_period
    rng = np.random.default_rng(0)
    # "refunds in the next 60 days": mostly the label, a little noise
    leaky = train.assign(future_activity=train["is_churned"] * 10.0 + rng.normal(0, 1, len(train)))
    with pytest.raises(LeakageError, match="future_activity"):
        _check(leaky, (*features, ("future_activity", "Float64")))


def test_a_leaked_category_is_caught_through_its_one_hot_columns(train_period):
    train, features = train_period
    leaky = train.assign(outcome_code=np.where(train["is_churned"] == 1, "gone", "active"))
    with pytest.raises(LeakageError, match="outcome_code"):
        _check(leaky, (*features, ("outcome_code", "String")))
