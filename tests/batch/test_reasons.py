"""Reasons in plain words: code tests on small in-memory frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from batch.reasons import describe, direction, reasons
from parity.models.prepare import fit_spec, prepare

FEATURES = (("client_id", "String"), ("days_since_last_purchase", "Float64"), ("avg_basket_90d", "Float64"),
            ("purchase_count_30d", "Int64"))


@pytest.fixture
def frames():
    raw = pd.DataFrame({
        "client_id": ["acme", "bolt", "acme", "cora"],
        "days_since_last_purchase": [47.4, np.nan, 3.0, 120.0],
        "avg_basket_90d": [40.0, np.nan, 12.5, 99.0],
        "purchase_count_30d": pd.array([1, 0, 4, 0], dtype="Int64"),
    })
    spec = fit_spec(raw, FEATURES)
    return raw, spec, prepare(raw, spec)


@pytest.mark.parametrize("feature, column, value, level, expected", [
    ("days_since_last_purchase", "days_since_last_purchase", 47.4, None, "no purchase for 47 days"),
    ("days_since_last_purchase", "days_since_last_purchase", None, None, "no purchase in the past year"),
    ("purchase_count_30d", "purchase_count_30d", 1.0, None, "1 purchase in the last 30 days"),
    ("purchase_count_30d", "purchase_count_30d", 3.0, None, "3 purchases in the last 30 days"),
    ("purchase_trend_30d", "purchase_trend_30d", -2.0, None, "2 purchases fewer than in the previous 30 days"),
    ("spend_365d", "spend_365d", 1234.4, None, "spent $1,234 in the last 12 months"),
    ("refund_rate_90d", "refund_rate_90d", 0.25, None, "refunds on 25% of purchases in the last 90 days"),
    ("tenure_days", "tenure_days", 400.0, None, "customer for 13 months"),
    ("country", "country=DE", 1.0, "DE", "lives in DE"),
    ("country", "country=DE", 0.0, "DE", "does not live in DE"),
    ("acquisition_channel", "acquisition_channel=paid_search", 1.0, "paid_search", "acquired via paid search"),
    ("country", "country=__other__", 1.0, "__other__", "uncommon or unknown country"),
    ("birth_year", "birth_year__missing", 1.0, None, "birth year unknown"),
    ("days_since_last_purchase", "days_since_last_purchase__missing", 1.0, None, "no purchase in the past year"),
    ("days_since_last_purchase", "days_since_last_purchase__missing", 0.0, None, "bought in the past year"),
    ("refund_rate_90d", "refund_rate_90d__missing", 0.0, None, "refund rate 90d known"),
    ("brand_new_feature", "brand_new_feature", 2.5, None, "brand new feature = 2.5"),
])
def test_describe_speaks_plain_words(feature, column, value, level, expected):
    assert describe(feature, column, value, level) == expected


def test_direction_follows_the_contribution_sign():
    assert direction(0.3) == "raises risk" and direction(-0.01) == "lowers risk"


def test_top_reasons_are_ordered_by_absolute_contribution_and_skip_zeros(frames):
    raw, spec, prepared = frames
    contributions = pd.DataFrame(0.0, index=prepared.index, columns=list(spec.columns))
    contributions.loc[0, "days_since_last_purchase"] = 0.9
    contributions.loc[0, "client_id=acme"] = -0.4
    contributions.loc[0, "avg_basket_90d"] = 0.1
    contributions.loc[0, "purchase_count_30d"] = 0.05
    contributions.loc[1, "days_since_last_purchase__missing"] = -0.2  # only one non-zero
    texts = reasons(raw, prepared, contributions, spec, top_k=3)
    assert texts[0] == [
        "no purchase for 47 days (raises risk)",
        "customer of acme (lowers risk)",
        "average basket of $40 over the last 90 days (raises risk)",
    ]
    assert texts[1] == ["no purchase in the past year (lowers risk)"]
    assert texts[2] == [] and texts[3] == []


def test_a_missing_value_is_described_as_missing_not_as_the_imputed_median(frames):
    raw, spec, prepared = frames
    median = dict(spec.impute)["avg_basket_90d"]
    assert prepared.loc[1, "avg_basket_90d"] == median == 40.0  # the model was fed the median
    contributions = pd.DataFrame(0.0, index=prepared.index, columns=list(spec.columns))
    contributions.loc[1, "avg_basket_90d"] = 0.5
    assert reasons(raw, prepared, contributions, spec, top_k=3)[1] == [
        "no purchase in the last 90 days (raises risk)"
    ]
