"""The tabulated TreeSHAP equals xgboost's pred_contribs, and refuses what it does not cover."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import xgboost as xgb

from parity.models.treeshap import MAX_TREE_SPLITS, TreeShap, Unsupported, check_rows


def _data(rows: int = 1500, features: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    x[:, 3] = rng.integers(0, 4, rows)  # a few distinct values: exact threshold ties
    x[rng.random(x.shape) < 0.1] = np.nan
    z = np.nan_to_num(x)
    y = (z[:, 0] + z[:, 1] * z[:, 2] - 0.5 * z[:, 3] + rng.normal(size=rows) > 0).astype(int)
    return x, y


def _train(params: dict, rounds: int = 25, **data_kw) -> tuple[xgb.Booster, np.ndarray]:
    x, y = _data(**data_kw)
    params = {"objective": "binary:logistic", "nthread": 1, **params}
    return xgb.train(params, xgb.DMatrix(x, y), rounds), x


def _xgb(booster: xgb.Booster, x: np.ndarray) -> np.ndarray:
    return booster.predict(xgb.DMatrix(x), pred_contribs=True)


@pytest.mark.parametrize("depth", [1, 2, 3, 6, 8])
def test_equals_pred_contribs(depth):
    booster, x = _train({"max_depth": depth, "eta": 0.3})
    shap = TreeShap.from_booster(booster)
    rows = np.vstack([x[:300], check_rows(shap, 200, seed=9)])
    np.testing.assert_allclose(shap.contributions(rows), _xgb(booster, rows), rtol=0, atol=1e-5)
    # trees of up to MAX_TREE_SPLITS splits use per-tree tables: the leaf tables' sums, reordered
    assert (shap.trees is not None) == (2**depth - 1 <= MAX_TREE_SPLITS)
    by_leaf = dataclasses.replace(shap, trees=None).contributions(rows)
    np.testing.assert_allclose(shap.contributions(rows), by_leaf, rtol=0, atol=1e-12)


@pytest.mark.parametrize("depth", [3, 6])  # per-tree tables at depth 3, leaf tables at 6
def test_repeated_splits_on_one_feature_and_a_regression_base_score(depth):
    # two features only: most paths split on the same feature several times
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2000, 2))
    x[rng.random(x.shape) < 0.05] = np.nan
    y = np.sin(3 * np.nan_to_num(x[:, 0])) + np.nan_to_num(x[:, 1]) ** 2
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": depth, "base_score": 3.0, "nthread": 1},
                        xgb.DMatrix(x, y), 20)
    shap = TreeShap.from_booster(booster)
    assert shap.extra, "expected paths that split on one feature more than once"
    assert (shap.trees is not None) == (depth == 3)
    rows = np.vstack([x[:300], check_rows(shap, 200, seed=2)])
    contribs = shap.contributions(rows)
    np.testing.assert_allclose(contribs, _xgb(booster, rows), rtol=0, atol=1e-5)
    margin = booster.predict(xgb.DMatrix(rows), output_margin=True)
    np.testing.assert_allclose(contribs.sum(axis=1), margin, rtol=0, atol=1e-4)  # local accuracy


def test_trees_without_splits_only_move_the_bias():
    booster, x = _train({"max_depth": 3, "gamma": 1e9})  # no split is ever worth it
    shap = TreeShap.from_booster(booster)
    contribs = shap.contributions(x[:50])
    assert np.all(contribs[:, :-1] == 0)
    np.testing.assert_allclose(contribs, _xgb(booster, x[:50]), rtol=0, atol=1e-6)


def test_shapes_and_bad_input():
    booster, x = _train({"max_depth": 2}, rounds=5)
    shap = TreeShap.from_booster(booster)
    assert shap.contributions(np.empty((0, x.shape[1]))).shape == (0, x.shape[1] + 1)
    with pytest.raises(ValueError, match="6 columns"):
        shap.contributions(np.zeros((2, 5)))


def test_the_self_check_catches_a_wrong_table():
    booster, _ = _train({"max_depth": 3})
    shap = TreeShap.from_booster(booster)
    broken = dataclasses.replace(shap, table=shap.table * 1.01, trees=None)
    with pytest.raises(Unsupported, match="differs from xgboost"):
        broken.check(booster)
    broken_trees = dataclasses.replace(shap.trees, table=shap.trees.table * 1.01)
    with pytest.raises(Unsupported, match="differs from xgboost"):
        dataclasses.replace(shap, trees=broken_trees).check(booster)


def test_refuses_models_it_does_not_cover():
    x, y = _data()
    linear = xgb.train({"booster": "gblinear", "objective": "binary:logistic", "nthread": 1}, xgb.DMatrix(x, y), 3)
    with pytest.raises(Unsupported, match="gblinear"):
        TreeShap.from_booster(linear)
    multi = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 2, "nthread": 1},
                      xgb.DMatrix(x, y + (x[:, 0] > 1)), 3)
    with pytest.raises(Unsupported, match="output"):
        TreeShap.from_booster(multi)
    frame_x = np.where(np.isnan(x[:, 3]), 0, x[:, 3]).astype(int)
    import pandas as pd

    frame = pd.DataFrame({"a": x[:, 0], "c": pd.Categorical(frame_x)})
    categorical = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "max_cat_to_onehot": 1},
                            xgb.DMatrix(frame, y, enable_categorical=True), 5)
    with pytest.raises(Unsupported, match="categorical"):
        TreeShap.from_booster(categorical)
