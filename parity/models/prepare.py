"""The one feature-preparation step shared by training and serving.

A retrieval frame (`parity.features.retrieval.training_frame` or `online_frame`) becomes a float64 matrix
in a fixed column order: String features are one-hot encoded over the levels seen in training
(anything else, nulls included, goes to `<feature>=__other__`), numeric features are imputed with
training medians (plus a `<feature>__missing` indicator where training had nulls), and a few named,
fixed derived features are appended. Everything learned lives in a `PrepareSpec`, which is fitted
on the training period only, stored in the model's registry metadata and read back by serving:
`prepare(frame, PrepareSpec.from_dict(metadata["prepare_spec"]))`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from parity.pandas_lazy import is_frame, is_series, na

if TYPE_CHECKING:
    import pandas as pd

SPEC_FORMAT = 1
OTHER = "__other__"
MISSING_SUFFIX = "__missing"
CATEGORICAL_TYPES = ("String",)
NUMERIC_TYPES = ("Int64", "Float64", "Bool")
# xgboost refuses these characters in feature names
_FORBIDDEN = str.maketrans({"[": "(", "]": ")", "<": "(", ",": ";"})


class PrepareError(ValueError):
    """The frame or the spec cannot be prepared; the message names the column."""


@dataclass(frozen=True)
class Derived:
    """A fixed derived feature: a name, its input features and a vectorised recipe."""

    inputs: tuple[str, ...]
    recipe: Callable[..., np.ndarray]
    description: str


def _overdue_ratio(
    days_since_last_purchase: np.ndarray, purchase_count_365d: np.ndarray, tenure_days: np.ndarray
) -> np.ndarray:
    # purchases per day over the observable part of the year; nondecreasing in recency
    observed_days = np.clip(np.fmin(tenure_days, 365.0), 1.0, None)
    return days_since_last_purchase * (purchase_count_365d / observed_days)


# What a missing value of a numeric feature MEANS, where the median would be wrong: no purchase
# in the 365-day window is "365+ days since the last purchase", not a typical recency. Applied by
# every spec (churn model, segments); a config's `fill` can override or add entries.
DOMAIN_FILL: dict[str, float] = {"days_since_last_purchase": 365.0}

# Recipes are code, not data: a spec names them and serving runs this same code.
DERIVED: dict[str, Derived] = {
    "overdue_ratio_365d": Derived(
        inputs=("days_since_last_purchase", "purchase_count_365d", "tenure_days"),
        recipe=_overdue_ratio,
        description="days since the last purchase x purchases per day over the last "
        "min(tenure, 365) days: how many usual purchase gaps the customer is overdue",
    ),
}


@dataclass(frozen=True)
class PrepareSpec:
    """Everything `prepare` needs, learned on the training period (JSON-serialisable)."""

    features: tuple[tuple[str, str], ...]
    levels: tuple[tuple[str, tuple[str, ...]], ...]
    numeric: tuple[str, ...]
    derived: tuple[str, ...]
    impute: tuple[tuple[str, float], ...]
    missing_indicators: tuple[str, ...]
    columns: tuple[str, ...]
    sources: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (lists and dicts only)."""
        return {
            "format": SPEC_FORMAT,
            "features": [[name, dtype] for name, dtype in self.features],
            "levels": {name: list(levels) for name, levels in self.levels},
            "numeric": list(self.numeric),
            "derived": list(self.derived),
            "impute": {name: value for name, value in self.impute},
            "missing_indicators": list(self.missing_indicators),
            "columns": list(self.columns),
            "sources": list(self.sources),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrepareSpec:
        """Inverse of `to_dict`; refuses unknown formats and unknown derived recipes."""
        if data.get("format") != SPEC_FORMAT:
            raise PrepareError(f"prepare spec format {data.get('format')!r} is not {SPEC_FORMAT}")
        unknown = [name for name in data["derived"] if name not in DERIVED]
        if unknown:
            raise PrepareError(f"prepare spec uses unknown derived feature(s) {unknown}")
        features = tuple((name, dtype) for name, dtype in data["features"])
        return cls(
            features=features,
            levels=tuple(
                (name, tuple(data["levels"][name]))
                for name, _ in features
                if name in data["levels"]
            ),
            numeric=tuple(data["numeric"]),
            derived=tuple(data["derived"]),
            impute=tuple((name, float(data["impute"][name])) for name in sorted(data["impute"])),
            missing_indicators=tuple(data["missing_indicators"]),
            columns=tuple(data["columns"]),
            sources=tuple(data["sources"]),
        )


def column_name(feature: str, level: str | None = None) -> str:
    """Name of a prepared column: `feature` or `feature=level` (xgboost-safe characters)."""
    return (feature if level is None else f"{feature}={level}").translate(_FORBIDDEN)


def _numeric(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column as float64 with NaN for every kind of missing value (pd.NA, None, inf)."""
    import pandas as pd

    try:
        values = pd.to_numeric(frame[name], errors="raise").to_numpy(
            dtype="float64", na_value=np.nan
        )
    except (TypeError, ValueError) as err:
        raise PrepareError(f"feature '{name}' is not numeric: {err}") from None
    return np.where(np.isfinite(values), values, np.nan)


def _derive(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Evaluate a named derived feature on raw (not imputed) inputs."""
    recipe = DERIVED[name]
    with np.errstate(invalid="ignore", divide="ignore"):
        values = recipe.recipe(*(_numeric(frame, column) for column in recipe.inputs))
    return np.where(np.isfinite(values), values, np.nan)


def _require(frame: Mapping[str, Any] | pd.DataFrame, names: Sequence[str]) -> None:
    have = frame.columns if is_frame(frame) else frame
    missing = [name for name in names if name not in have]
    if missing:
        raise PrepareError(f"frame lacks feature column(s) {missing}")


def fit_spec(
    frame: pd.DataFrame,
    features: Sequence[tuple[str, str]],
    derived: Sequence[str] = (),
    min_level_count: int = 1,
    fill: Mapping[str, float] | None = None,
) -> PrepareSpec:
    """Learn levels, medians and missing indicators from a training frame (training rows only).

    `fill` gives a domain value for a missing numeric feature instead of the training median
    (e.g. days_since_last_purchase: 365 = "no purchase in the 365-day window"); a feature named
    there always gets a missing indicator, even if training never saw it missing.
    """
    fill = {**DOMAIN_FILL, **(fill or {})}
    fill = {name: value for name, value in fill.items() if name in {n for n, _ in features}}
    if frame.empty:
        raise PrepareError("cannot fit a prepare spec on an empty frame")
    names = [name for name, _ in features]
    _require(frame, names)
    # A feature null on every training row (a client that never sends the field, a single-client
    # project) is no error: it becomes a constant column (no level / the median of nothing, 0,
    # with its missing indicator) that carries no information; training reports it by name.
    unknown_types = [
        f"{name}:{dtype}"
        for name, dtype in features
        if dtype not in CATEGORICAL_TYPES + NUMERIC_TYPES
    ]
    if unknown_types:
        raise PrepareError(f"no preparation rule for feature type(s) {unknown_types}")
    unknown = [name for name in derived if name not in DERIVED]
    if unknown:
        raise PrepareError(f"unknown derived feature(s) {unknown}; known: {sorted(DERIVED)}")
    for name in derived:
        absent = [column for column in DERIVED[name].inputs if column not in names]
        if absent:
            raise PrepareError(f"derived feature '{name}' needs {absent}, which the service lacks")

    levels, numeric, impute, indicators, columns, sources = [], [], {}, [], [], []
    for name, dtype in features:
        if dtype in CATEGORICAL_TYPES:
            counts = frame[name].dropna().astype(str).value_counts()
            kept = tuple(
                sorted(
                    level for level, n in counts.items() if n >= min_level_count and level != OTHER
                )
            )
            levels.append((name, kept))
            for level in kept + (OTHER,):
                columns.append(column_name(name, level))
                sources.append(name)
            continue
        numeric.append(name)
        values = _numeric(frame, name)
        columns.append(column_name(name))
        sources.append(name)
        impute[name] = float(fill[name]) if name in fill else _median(values)
        if np.isnan(values).any() or name in fill:
            indicators.append(name)
            columns.append(column_name(name) + MISSING_SUFFIX)
            sources.append(name)
    for name in derived:
        values = _derive(frame, name)  # null on every row when an input is: constant, as above
        impute[name] = _median(values)
        columns.append(column_name(name))
        sources.append(name)
        if np.isnan(values).any():
            indicators.append(name)
            columns.append(column_name(name) + MISSING_SUFFIX)
            sources.append(name)
    if len(set(columns)) != len(columns):
        raise PrepareError(
            f"prepared column names collide: {sorted(c for c in columns if columns.count(c) > 1)}"
        )
    return PrepareSpec(
        features=tuple((name, dtype) for name, dtype in features),
        levels=tuple(levels),
        numeric=tuple(numeric),
        derived=tuple(derived),
        impute=tuple(sorted(impute.items())),
        missing_indicators=tuple(indicators),
        columns=tuple(columns),
        sources=tuple(sources),
    )


def _median(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(np.median(finite)) if len(finite) else 0.0


def _text(values: Any) -> list[str | None]:
    """A categorical column (Series or sequence) as str-or-None values."""
    if is_series(values):
        values = values.astype(object).where(values.notna(), None).to_numpy()
    missing = na()
    return [None if v is None or v is missing or v != v else str(v) for v in values]


def _floats(values: Any, name: str) -> np.ndarray:
    """A numeric column (Series or sequence) as float64 with NaN for every kind of missing value."""
    if is_series(values):
        return _numeric(values.to_frame(name), name)
    missing = na()
    try:
        array = np.array([np.nan if v is None or v is missing else v for v in values], dtype="float64")
    except (TypeError, ValueError) as err:
        raise PrepareError(f"feature '{name}' is not numeric: {err}") from None
    return np.where(np.isfinite(array), array, np.nan)


@dataclass(frozen=True)
class _Plan:
    """A spec compiled to output column positions, once per spec (`_plan`)."""

    width: int
    numeric: tuple[str, ...]  # numeric features (spec order): rows of the raw block
    numeric_fill: np.ndarray  # their imputed values
    numeric_column: np.ndarray  # their output columns
    indicator_row: np.ndarray  # raw-block rows with a missing indicator...
    indicator_column: np.ndarray  # ... and the indicator's output column
    categorical: tuple[tuple[str, dict[str, int], int], ...]  # feature, level -> column, other column
    derived: tuple[tuple[Derived, tuple[str, ...], int, float, int], ...]  # recipe, inputs, column, fill, indicator (-1: none)


def _plan(spec: PrepareSpec) -> _Plan:
    plan = _PLANS.get(id(spec))
    if plan is None or plan[0] is not spec:
        plan = (spec, _compile(spec))
        if len(_PLANS) > 64:
            _PLANS.clear()
        _PLANS[id(spec)] = plan  # keyed by identity and holding the spec: an id is never reused while cached
    return plan[1]


_PLANS: dict[int, tuple[PrepareSpec, _Plan]] = {}


def _compile(spec: PrepareSpec) -> _Plan:
    impute = dict(spec.impute)
    indicators = set(spec.missing_indicators)
    levels = dict(spec.levels)
    names: list[str] = []
    numeric, fills, numeric_columns, indicator_rows, indicator_columns = [], [], [], [], []
    categorical = []
    for name, _ in spec.features:
        if name in levels:
            index = {}
            for level in levels[name]:
                index[level] = len(names)
                names.append(column_name(name, level))
            categorical.append((name, index, len(names)))
            names.append(column_name(name, OTHER))
            continue
        if name not in impute:
            raise PrepareError(f"prepare spec has no imputed value for feature '{name}'")
        numeric_columns.append(len(names))
        names.append(column_name(name))
        fills.append(impute[name])
        if name in indicators:
            indicator_rows.append(len(numeric))
            indicator_columns.append(len(names))
            names.append(column_name(name) + MISSING_SUFFIX)
        numeric.append(name)
    derived = []
    for name in spec.derived:
        column = len(names)
        names.append(column_name(name))
        indicator = -1
        if name in indicators:
            indicator = len(names)
            names.append(column_name(name) + MISSING_SUFFIX)
        derived.append((DERIVED[name], DERIVED[name].inputs, column, impute[name], indicator))
    if tuple(names) != spec.columns:
        raise PrepareError(f"prepared columns {names} differ from the spec's {list(spec.columns)}")
    return _Plan(
        width=len(names),
        numeric=tuple(numeric),
        numeric_fill=np.asarray(fills, dtype="float64"),
        numeric_column=np.asarray(numeric_columns, dtype=np.intp),
        indicator_row=np.asarray(indicator_rows, dtype=np.intp),
        indicator_column=np.asarray(indicator_columns, dtype=np.intp),
        categorical=tuple(categorical),
        derived=tuple(derived),
    )


def _float_block(columns: Mapping[str, Any], names: Sequence[str], n: int) -> np.ndarray:
    """(len(names), n) float64, NaN for every kind of missing value: one conversion for plain
    sequences (serving's online read), column by column for pandas (and to name a bad column)."""
    if not names:
        return np.empty((0, n))
    if not is_frame(columns):
        missing = na()
        try:
            block = np.array([[np.nan if v is None or v is missing else v for v in columns[name]] for name in names],
                             dtype="float64")
        except (TypeError, ValueError):
            block = None  # find and name the column below
        if block is not None and block.shape == (len(names), n):
            return np.where(np.isfinite(block), block, np.nan)
    return np.vstack([_floats(columns[name], name) for name in names]) if n else np.empty((len(names), 0))


def prepare_matrix(columns: Mapping[str, Any], spec: PrepareSpec) -> np.ndarray:
    """The model input as a float64 matrix in `spec.columns` order.

    `columns` maps feature names to equal-length columns: a DataFrame (retrieval frames) or a
    dict of plain sequences (serving's online read, no pandas on the hot path). `prepare` is this
    function plus column labels, so both paths run the same code. The spec is compiled to column
    positions once (`_plan`), so a one-row request costs a few numpy calls, not a few per column.
    """
    _require(columns, [name for name, _ in spec.features])
    plan = _plan(spec)
    if plan.width == 0:
        return np.empty((0, 0))
    n = len(columns) if is_frame(columns) else len(columns[spec.features[0][0]])
    out = np.zeros((n, plan.width))
    raw = _float_block(columns, plan.numeric, n)
    missing = np.isnan(raw)
    out[:, plan.numeric_column] = np.where(missing, plan.numeric_fill[:, None], raw).T
    out[:, plan.indicator_column] = missing[plan.indicator_row].T
    for name, index, other in plan.categorical:
        hot = np.fromiter((index.get(OTHER if v is None else v, other) for v in _text(columns[name])), np.intp, n)
        out[np.arange(n), hot] = 1.0
    position = {name: k for k, name in enumerate(plan.numeric)}
    for recipe, inputs, column, fill, indicator in plan.derived:
        with np.errstate(invalid="ignore", divide="ignore"):
            values = recipe.recipe(*(raw[position[c]] if c in position else _floats(columns[c], c) for c in inputs))
        values = np.where(np.isfinite(values), values, np.nan)
        absent = np.isnan(values)
        out[:, column] = np.where(absent, fill, values)
        if indicator >= 0:
            out[:, indicator] = absent
    return out


def prepare(frame: pd.DataFrame | Mapping[str, Any], spec: PrepareSpec) -> pd.DataFrame:
    """The model input: float64 columns in `spec.columns` order, one row per frame row."""
    matrix = prepare_matrix(frame, spec)
    import pandas as pd

    index = frame.index if is_frame(frame) else None
    return pd.DataFrame(matrix, index=index, columns=list(spec.columns))


