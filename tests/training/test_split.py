"""Time splits: ordered periods, purged label windows, rolling folds, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config import CVConfig, SplitConfig
from training.errors import DataError, LeakageError
from training.split import Splits, assert_no_leakage, rolling_folds, time_split

SPLIT = SplitConfig(test_fraction=0.2, valid_fraction=0.2)


def label_frame(n_dates: int = 20, per_date: int = 40, seed: int = 0) -> pd.DataFrame:
    """Synthetic labels: an as-of time every 28 days, 60-day label windows, ~20% positives."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-01-05", periods=n_dates, freq="28D", tz="UTC")
    at = np.repeat(dates, per_date)
    return pd.DataFrame(
        {
            "customer_id": [f"acme:{i % (per_date * 2)}" for i in range(len(at))],
            "event_timestamp": at,
            "is_churned": (rng.uniform(size=len(at)) < 0.2).astype("int64"),
            "label_window_end_at": at + pd.Timedelta(days=60),
        }
    )


def test_periods_are_ordered_and_label_windows_never_reach_a_later_period():
    frame = label_frame()
    splits = time_split(frame, SPLIT)
    test_start, valid_start = splits.test.event_timestamp.min(), splits.valid.event_timestamp.min()
    assert splits.train.event_timestamp.max() < valid_start < test_start
    assert splits.train.label_window_end_at.max() <= valid_start
    assert splits.train.label_window_end_at.max() <= test_start
    assert splits.valid.label_window_end_at.max() <= test_start
    assert (
        splits.test.event_timestamp.nunique() == 4
        and splits.test.event_timestamp.max() == frame.event_timestamp.max()
    )
    # 60-day windows span two 28-day steps: the last two as-of times before each boundary are purged
    assert splits.purged == {"train": 80, "valid": 80}
    assert len(splits.train) + len(splits.valid) + len(splits.test) + 160 == len(frame)


def test_the_leakage_assertion_catches_overlapping_periods_and_late_label_windows():
    splits = time_split(label_frame(), SPLIT)
    assert_no_leakage(splits)  # the real split passes
    late = splits.train.copy()
    late.loc[late.index[-1], "label_window_end_at"] = (
        splits.test.event_timestamp.min() + pd.Timedelta(days=1)
    )
    with pytest.raises(LeakageError, match="label window"):
        assert_no_leakage(Splits(late, splits.valid, splits.test))
    overlapping = pd.concat([splits.train, splits.test.iloc[:1]])
    with pytest.raises(LeakageError, match="overlap in time"):
        assert_no_leakage(Splits(overlapping, splits.valid, splits.test))


def test_a_single_class_period_is_a_clear_error():
    frame = label_frame()
    frame.loc[frame.event_timestamp < frame.event_timestamp.quantile(0.5), "is_churned"] = 0
    with pytest.raises(DataError, match="train period has only class 0"):
        time_split(frame, SPLIT)


def test_too_few_as_of_times_is_a_clear_error():
    with pytest.raises(DataError, match="too few"):
        time_split(label_frame(n_dates=2), SPLIT)


def test_everything_purged_is_a_clear_error():
    # one as-of time per period: training windows all reach into validation
    with pytest.raises(DataError, match="train period is empty"):
        time_split(label_frame(n_dates=3), SplitConfig(test_fraction=0.3, valid_fraction=0.3))


def test_rolling_folds_expand_and_fit_only_on_windows_closed_before_the_fold():
    train = time_split(label_frame(), SPLIT).train
    folds = rolling_folds(train, CVConfig(folds=3, dates_per_fold=1))
    assert len(folds) == 3
    held_dates = []
    for fit, held in folds:
        first = train.event_timestamp.iloc[held].min()
        assert train.event_timestamp.iloc[fit].max() < first
        assert train.label_window_end_at.iloc[fit].max() <= first
        held_dates.append(first)
        assert train.event_timestamp.iloc[held].nunique() == 1
    assert held_dates == sorted(held_dates) and len(set(held_dates)) == 3
    assert len(folds[0][0]) < len(folds[1][0]) < len(folds[2][0])


def test_no_usable_fold_is_a_clear_error():
    train = time_split(label_frame(), SPLIT).train
    with pytest.raises(DataError, match="no usable CV fold"):
        rolling_folds(train.assign(is_churned=0), CVConfig(folds=2, dates_per_fold=1))
