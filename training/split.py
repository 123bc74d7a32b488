"""Time-respecting splits: train on earlier as-of times, validate later, test on the latest.

A label at as-of time t looks 60 days ahead, longer than the 28 days between as-of times, so a
row's outcome window can overlap the next period. Rows whose window ends after the next period
starts are purged from the earlier period: the model never learns from outcomes that happen
inside the period it is validated or tested on. Splits are by time, so they cannot be stratified;
each period must contain both classes instead (checked), and the bootstrap stratifies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from parity.features.retrieval import TIME_COLUMN
from training.config import CVConfig, SplitConfig
from training.dataset import LABEL, LABEL_END
from training.errors import DataError, LeakageError


@dataclass(frozen=True)
class Splits:
    """The three periods plus how many rows purging removed from each."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    purged: dict[str, int] = field(default_factory=dict)

    def window(self) -> dict[str, dict[str, object]]:
        """As-of range, rows and positives of each period (for metadata and the report)."""
        return {
            name: describe(frame)
            for name, frame in (("train", self.train), ("valid", self.valid), ("test", self.test))
        }


def describe(frame: pd.DataFrame) -> dict[str, object]:
    """As-of range, label-window end, rows and positives of one period."""
    return {
        "as_of_min": frame[TIME_COLUMN].min().isoformat(),
        "as_of_max": frame[TIME_COLUMN].max().isoformat(),
        "label_window_end_max": frame[LABEL_END].max().isoformat(),
        "as_of_times": int(frame[TIME_COLUMN].nunique()),
        "rows": len(frame),
        "positives": int(frame[LABEL].sum()),
    }


def period_sizes(n_dates: int, config: SplitConfig) -> tuple[int, int, int]:
    """Number of as-of times in (train, valid, test); each at least one."""
    n_test = max(1, round(n_dates * config.test_fraction))
    n_valid = max(1, round(n_dates * config.valid_fraction))
    n_train = n_dates - n_test - n_valid
    if n_train < 1:
        raise DataError(
            f"only {n_dates} as-of time(s): too few for a train, validation and test period"
        )
    return n_train, n_valid, n_test


def purge(frame: pd.DataFrame, before: pd.Timestamp) -> tuple[pd.DataFrame, int]:
    """Drop rows whose label window ends after `before` (the next period's first as-of time)."""
    keep = frame[LABEL_END] <= before
    return frame[keep], int((~keep).sum())


def require_both_classes(frame: pd.DataFrame, name: str) -> None:
    """DataError unless the period has rows of both classes."""
    if frame.empty:
        raise DataError(f"the {name} period is empty (after purging overlapping label windows)")
    counts = frame[LABEL].value_counts()
    if len(counts) < 2:
        only = int(counts.index[0])
        raise DataError(
            f"the {name} period has only class {only} ({len(frame)} rows): cannot train or evaluate"
        )


def time_split(frame: pd.DataFrame, config: SplitConfig) -> Splits:
    """Split by as-of time into train < valid < test, purging overlapping label windows."""
    dates = np.sort(frame[TIME_COLUMN].unique())
    n_train, n_valid, _ = period_sizes(len(dates), config)
    valid_start, test_start = pd.Timestamp(dates[n_train]), pd.Timestamp(dates[n_train + n_valid])
    at = frame[TIME_COLUMN]
    train, purged_train = purge(frame[at < valid_start], valid_start)
    valid, purged_valid = purge(frame[(at >= valid_start) & (at < test_start)], test_start)
    test = frame[at >= test_start]
    splits = Splits(
        train=train.reset_index(drop=True),
        valid=valid.reset_index(drop=True),
        test=test.reset_index(drop=True),
        purged={"train": purged_train, "valid": purged_valid},
    )
    for name in ("train", "valid", "test"):
        require_both_classes(getattr(splits, name), name)
    assert_no_leakage(splits)
    return splits


def assert_no_leakage(splits: Splits) -> None:
    """LeakageError unless periods are strictly ordered and no earlier label window reaches a later period."""
    train_max, valid_min = splits.train[TIME_COLUMN].max(), splits.valid[TIME_COLUMN].min()
    valid_max, test_min = splits.valid[TIME_COLUMN].max(), splits.test[TIME_COLUMN].min()
    if not train_max < valid_min < test_min or not valid_max < test_min:
        raise LeakageError(
            f"periods overlap in time: train max {train_max}, valid {valid_min}..{valid_max}, test min {test_min}"
        )
    if splits.train[LABEL_END].max() > valid_min:
        raise LeakageError(
            f"a training label window ends {splits.train[LABEL_END].max()}, after validation starts {valid_min}"
        )
    if splits.train[LABEL_END].max() > test_min or splits.valid[LABEL_END].max() > test_min:
        raise LeakageError(
            f"a training/validation label window ends after the test period starts {test_min}"
        )
    shared = set(zip(splits.train["customer_id"], splits.train[TIME_COLUMN])) & set(
        zip(splits.test["customer_id"], splits.test[TIME_COLUMN])
    )
    if shared:
        raise LeakageError(f"{len(shared)} (customer, as-of) rows are both in train and test")


def rolling_folds(train: pd.DataFrame, config: CVConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds over the training period: (fit rows, validation rows) index arrays.

    Fold k validates on the k-th block of the last `folds * dates_per_fold` as-of times and fits on
    earlier rows whose label window ends before that block starts. Folds without both classes on
    either side are skipped.
    """
    dates = np.sort(train[TIME_COLUMN].unique())
    block = config.dates_per_fold
    starts = [len(dates) - block * (config.folds - k) for k in range(config.folds)]
    folds = []
    for start in starts:
        if start < 1:
            continue
        first, last = pd.Timestamp(dates[start]), pd.Timestamp(dates[start + block - 1])
        at = train[TIME_COLUMN]
        fit = np.flatnonzero(((at < first) & (train[LABEL_END] <= first)).to_numpy())
        held = np.flatnonzero(((at >= first) & (at <= last)).to_numpy())
        if (
            len(fit)
            and len(held)
            and train[LABEL].iloc[fit].nunique() == 2
            and train[LABEL].iloc[held].nunique() == 2
        ):
            folds.append((fit, held))
    if not folds:
        raise DataError(
            f"no usable CV fold in the training period ({len(dates)} as-of times, "
            f"{config.folds} folds of {block}): lower cv.folds or use more history"
        )
    return folds
