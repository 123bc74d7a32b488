"""Reasons in plain words: a prepared column, its value and its contribution's sign -> a sentence.

"no purchase for 47 days (raises risk)". Numeric values are read from the retrieval frame (before
imputation), so a missing value says "unknown" instead of quoting the training median the model
was fed; one-hot and missing-indicator columns speak about their level. Unknown columns fall back
to "<column> = <value>", so a new feature never breaks an export.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from parity.models.prepare import MISSING_SUFFIX, OTHER, PrepareSpec, column_name


def _n(value: float, one: str, many: str | None = None) -> str:
    count = round(value)
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _money(value: float) -> str:
    return f"${value:,.0f}"


def _tenure(days: float) -> str:
    if days < 60:
        return f"customer for {_n(days, 'day')}"
    if days < 730:
        return f"customer for {_n(days / 30.44, 'month')}"
    return f"customer for {days / 365.25:.1f} years"


def _trend(value: float) -> str:
    if value < 0:
        return f"{_n(-value, 'purchase')} fewer than in the previous 30 days"
    if value > 0:
        return f"{_n(value, 'purchase')} more than in the previous 30 days"
    return "as many purchases as in the previous 30 days"


# feature -> (sentence for a known value, sentence when the value is missing)
NUMERIC: dict[str, tuple[Callable[[float], str], str]] = {
    "days_since_last_purchase": (lambda v: f"no purchase for {v:.0f} days", "no purchase in the past year"),
    "purchase_count_30d": (lambda v: f"{_n(v, 'purchase')} in the last 30 days", "purchases in the last 30 days unknown"),
    "purchase_count_90d": (lambda v: f"{_n(v, 'purchase')} in the last 90 days", "purchases in the last 90 days unknown"),
    "purchase_count_365d": (lambda v: f"{_n(v, 'purchase')} in the last 12 months", "purchases in the last 12 months unknown"),
    "purchase_trend_30d": (_trend, "purchase trend unknown"),
    "spend_30d": (lambda v: f"spent {_money(v)} in the last 30 days", "spend in the last 30 days unknown"),
    "spend_90d": (lambda v: f"spent {_money(v)} in the last 90 days", "spend in the last 90 days unknown"),
    "spend_365d": (lambda v: f"spent {_money(v)} in the last 12 months", "spend in the last 12 months unknown"),
    "avg_basket_90d": (lambda v: f"average basket of {_money(v)} over the last 90 days", "no purchase in the last 90 days"),
    "refund_count_90d": (lambda v: f"{_n(v, 'refund')} in the last 90 days", "refunds unknown"),
    "refund_rate_90d": (lambda v: f"refunds on {v:.0%} of purchases in the last 90 days", "refund rate unknown"),
    "category_count_90d": (lambda v: f"bought from {_n(v, 'category', 'categories')} in the last 90 days", "categories bought unknown"),
    "tenure_days": (_tenure, "signup date unknown"),
    "birth_year": (lambda v: f"born in {v:.0f}", "birth year unknown"),
    "overdue_ratio_365d": (lambda v: f"{v:.1f} usual gaps between purchases without buying", "usual purchase rhythm unknown"),
}
# missing indicator = 0, where "<feature> known" would be unclear
KNOWN: dict[str, str] = {
    "days_since_last_purchase": "bought in the past year",
    "avg_basket_90d": "bought in the last 90 days",
}
# categorical feature -> (is level, is not level, the noun for __other__)
CATEGORICAL: dict[str, tuple[str, str, str]] = {
    "client_id": ("customer of {}", "not a customer of {}", "client"),
    "country": ("lives in {}", "does not live in {}", "country"),
    "acquisition_channel": ("acquired via {}", "not acquired via {}", "acquisition channel"),
}


def _number(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def describe(feature: str, column: str, value: float | None, level: str | None) -> str:
    """One prepared column's value in words (without the risk direction)."""
    human = feature.replace("_", " ")
    if column.endswith(MISSING_SUFFIX) and column == column_name(feature) + MISSING_SUFFIX:
        if value:
            return NUMERIC[feature][1] if feature in NUMERIC else f"{human} unknown"
        return KNOWN.get(feature, f"{human} known")
    if level is not None:
        is_level, is_not, noun = CATEGORICAL.get(feature, (f"{human} is {{}}", f"{human} is not {{}}", human))
        if level == OTHER:
            return f"uncommon or unknown {noun}" if value else f"common {noun}"
        words = level.replace("_", " ")
        return (is_level if value else is_not).format(words)
    known, missing = NUMERIC.get(feature, (lambda v: f"{human} = {v:g}", f"{human} unknown"))
    return missing if value is None else known(value)


def direction(contribution: float) -> str:
    """'raises risk' for a positive log-odds contribution, 'lowers risk' otherwise."""
    return "raises risk" if contribution > 0 else "lowers risk"


def _levels(spec: PrepareSpec) -> dict[str, tuple[str, str]]:
    """prepared column -> (source feature, level) for one-hot columns."""
    out = {}
    for feature, levels in spec.levels:
        for level in levels + (OTHER,):
            out[column_name(feature, level)] = (feature, level)
    return out


def reasons(
    raw: pd.DataFrame,
    prepared: pd.DataFrame,
    contributions: pd.DataFrame,
    spec: PrepareSpec,
    top_k: int,
) -> list[list[str]]:
    """Top-k reasons per row (largest |contribution| first; zero contributions are skipped)."""
    columns = list(spec.columns)
    values = prepared[columns].to_numpy(dtype="float64")
    contribs = contributions[columns].to_numpy(dtype="float64")
    one_hot = _levels(spec)
    source = dict(zip(spec.columns, spec.sources))
    indicators = {column_name(f) + MISSING_SUFFIX: f for f in spec.missing_indicators}
    order = np.argsort(-np.abs(contribs), axis=1, kind="stable")[:, :top_k]
    out: list[list[str]] = []
    for row, picks in enumerate(order):
        sentences = []
        for j in picks:
            contribution = contribs[row, j]
            if contribution == 0:
                continue
            column = columns[j]
            feature = source[column]
            if column in one_hot:
                text = describe(feature, column, values[row, j], one_hot[column][1])
            elif column in indicators:
                text = describe(feature, column, values[row, j], None)
            else:
                missing_column = column + MISSING_SUFFIX
                is_missing = missing_column in prepared.columns and prepared[missing_column].iat[row] == 1
                if feature in raw.columns and column == column_name(feature):
                    value = _number(raw[feature].iat[row])
                else:  # a derived column: the prepared value, unless it was imputed
                    value = None if is_missing else _number(values[row, j])
                text = describe(feature, column, value, None)
            sentences.append(f"{text} ({direction(contribution)})")
        out.append(sentences)
    return out


def column_reason(spec: PrepareSpec, column: str, value: float | None, contribution: float) -> str:
    """One explained column as a sentence, from what /v1/predict returns per contribution: the
    prepared column, its value (the customer's own for a raw feature, else the prepared value)
    and its log-odds contribution. A column the spec does not know speaks as '<column> = <value>'."""
    source = dict(zip(spec.columns, spec.sources))
    one_hot = _levels(spec)
    feature = source.get(column, column)
    level = one_hot[column][1] if column in one_hot else None
    return f"{describe(feature, column, _number(value), level)} ({direction(contribution)})"
