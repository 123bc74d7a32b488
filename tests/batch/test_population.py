"""batch.score.is_active: the churn population comes from parity.config (the dbt var), not batch."""

from __future__ import annotations

import numpy as np
import pandas as pd

from batch.score import is_active
from parity.config import ChurnPopulation, churn_population


def test_active_follows_the_population_window_and_minimum():
    frame = pd.DataFrame({"purchase_count_30d": [0, 1, 2, None], "purchase_count_90d": [5, 5, 5, 5]})
    found = np.array([True, True, True, False])
    active = is_active(frame, found, ChurnPopulation(days=30, min_purchases=2))
    assert active.tolist() == [False, False, True, pd.NA]


def test_the_project_population_is_the_dbt_var():
    population = churn_population()
    frame = pd.DataFrame({population.feature: [0, 1]})
    assert is_active(frame, np.array([True, True]), population).tolist() == [False, True]
    assert is_active(frame, np.array([True, True]), None).tolist() == [pd.NA, pd.NA]
