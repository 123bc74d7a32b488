"""parity.models.prepare: one preparation for training and serving, learned on training rows only.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from parity.models.prepare import OTHER, PrepareError, PrepareSpec, fit_spec, prepare

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


def test_a_feature_null_on_every_row_becomes_a_constant_column():
    # a single-client project whose client never sends tenure or country: not a crash
    nulls = frame(tenure_days=pd.array([None] * 4, dtype="Int64"), country=[None] * 4)
    spec = fit_spec(nulls, FEATURES, derived=["overdue_ratio_365d"])
    assert dict(spec.levels)["country"] == ()
    x = prepare(nulls, spec)
    for column in ("tenure_days", "tenure_days__missing", f"country={OTHER}"):
        assert x[column].nunique() == 1, column
    assert x["tenure_days__missing"].eq(1.0).all() and x[f"country={OTHER}"].eq(1.0).all()
    # scored later with values it never saw: still prepared, no error
    assert prepare(frame(), spec).shape == x.shape


def test_missing_columns_are_named():
    spec = fit_spec(frame(), FEATURES)
    with pytest.raises(PrepareError, match=r"lacks feature column\(s\) \['country'\]"):
        prepare(frame().drop(columns=["country"]), spec)
    with pytest.raises(PrepareError, match="unknown derived"):
        fit_spec(frame(), FEATURES, derived=["magic"])
    with pytest.raises(PrepareError, match="empty"):
        fit_spec(frame().iloc[:0], FEATURES)
    with pytest.raises(PrepareError, match="not numeric"):
        prepare(frame(tenure_days=["x", "y", "z", "w"]), spec)


@pytest.mark.data
def test_offline_and_online_frames_prepare_to_the_same_matrix(feature_data):
    from parity.features.feature_store import materialized_until, open_store
    from parity.features.retrieval import online_frame, service_schema, training_frame

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


def _reference_matrix(columns, spec) -> np.ndarray:
    """The column-by-column prepare_matrix this module had before the compiled plan: the
    compiled one must give the very same matrix."""
    from parity.models.prepare import DERIVED, MISSING_SUFFIX, _floats, _text, column_name

    impute, indicators, levels = dict(spec.impute), set(spec.missing_indicators), dict(spec.levels)
    out: dict[str, np.ndarray] = {}

    def fill(name, values):
        missing = np.isnan(values)
        out[column_name(name)] = np.where(missing, impute[name], values)
        if name in indicators:
            out[column_name(name) + MISSING_SUFFIX] = missing.astype("float64")

    for name, _ in spec.features:
        if name in levels:
            text = np.array([OTHER if v is None else v for v in _text(columns[name])], dtype=object)
            text = np.where(np.isin(text, list(levels[name])), text, OTHER)
            for level in levels[name] + (OTHER,):
                out[column_name(name, level)] = (text == level).astype("float64")
            continue
        fill(name, _floats(columns[name], name))
    for name in spec.derived:
        with np.errstate(invalid="ignore", divide="ignore"):
            values = DERIVED[name].recipe(*(_floats(columns[c], c) for c in DERIVED[name].inputs))
        fill(name, np.where(np.isfinite(values), values, np.nan))
    return np.column_stack([out[c] for c in spec.columns])


@pytest.mark.parametrize("rows", [0, 1, 7, 300])
def test_compiled_prepare_equals_the_column_by_column_reference(rows):
    from parity.models.prepare import prepare_matrix

    rng = np.random.default_rng(rows)
    train = pd.DataFrame({
        "country": rng.choice(["DE", "FR", "GB", None], 200),
        "birth_year": pd.array(np.where(rng.random(200) < 0.2, None, rng.integers(1950, 2005, 200)), dtype="Int64"),
        "tenure_days": pd.array(rng.integers(1, 900, 200), dtype="Int64"),
        "purchase_count_365d": pd.array(rng.integers(0, 30, 200), dtype="Int64"),
        "days_since_last_purchase": np.where(rng.random(200) < 0.3, np.nan, rng.uniform(0, 365, 200)),
    })
    spec = fit_spec(train, FEATURES, derived=["overdue_ratio_365d"])
    # serving-style lists with every kind of missing value and unseen levels
    lists = {
        "country": list(rng.choice(["DE", "FR", "NL", "__other__", None], rows)),
        "birth_year": [None if k % 5 == 0 else int(v) for k, v in enumerate(rng.integers(1950, 2005, rows))],
        "tenure_days": [int(v) for v in rng.integers(1, 900, rows)],
        "purchase_count_365d": [pd.NA if k % 7 == 3 else int(v) for k, v in enumerate(rng.integers(0, 30, rows))],
        "days_since_last_purchase": [[np.nan, np.inf, None, 12.5][k % 4] if k % 3 == 0 else float(v)
                                     for k, v in enumerate(rng.uniform(0, 365, rows))],
    }
    expected = _reference_matrix(lists, spec) if rows else np.empty((0, len(spec.columns)))
    got = prepare_matrix(lists, spec)
    assert got.shape == (rows, len(spec.columns))
    np.testing.assert_array_equal(got, expected)
    if rows:
        as_frame = pd.DataFrame({k: pd.array(v, dtype="object") for k, v in lists.items()})
        np.testing.assert_array_equal(prepare_matrix(as_frame, spec), expected)


def test_a_non_numeric_value_names_its_column_in_the_compiled_path():
    from parity.models.prepare import prepare_matrix

    spec = fit_spec(frame(), FEATURES)
    lists = {name: list(frame()[name].astype(object)) for name, _ in FEATURES}
    lists["tenure_days"] = [1, "many", 3, 4]
    with pytest.raises(PrepareError, match="tenure_days"):
        prepare_matrix(lists, spec)
