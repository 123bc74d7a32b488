"""batch.score.freshness_status judges rows by serving's rule (parity.features.freshness)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from batch.score import freshness_status
from parity.features.freshness import age_days, verdict

AS_OF = datetime(2026, 6, 1, tzinfo=timezone.utc)
LIMIT = timedelta(days=7)


def test_each_row_gets_the_status_serving_would_give():
    times = [AS_OF - timedelta(days=2), AS_OF - timedelta(days=10), AS_OF - timedelta(days=7),
             AS_OF - timedelta(days=1), None, pd.NaT]
    found = np.array([True, True, True, False, False, True])
    status, ages = freshness_status(found, times, AS_OF, LIMIT)
    assert status.tolist() == ["ok", "stale_features", "ok", "stale_features", "no_features", "ok"]
    assert ages[:4].tolist() == [2.0, 10.0, 7.0, 1.0] and np.isnan(ages[4:]).all()
    for t, s in zip(times[:3], status[:3]):  # found rows: exactly serving's verdict
        assert s == verdict(age_days(AS_OF, t), LIMIT)
