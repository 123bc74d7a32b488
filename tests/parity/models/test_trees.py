"""The numpy trees score exactly what xgboost scores (bit for bit), and refuse what they do not cover."""

from __future__ import annotations

import ctypes
import dataclasses

import numpy as np
import pytest
import xgboost as xgb

from parity.models.trees import Forest, Unsupported, sigmoid
from parity.models.treeshap import TreeShap, check_rows


def _data(rows: int = 2000, features: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)) * rng.uniform(0.01, 300, features)
    x[:, 2] = rng.integers(0, 5, rows)  # few distinct values: rows exactly on a threshold
    x[rng.random(x.shape) < 0.15] = np.nan
    z = np.nan_to_num(x / np.nanstd(x, axis=0))
    y = (z[:, 0] + z[:, 1] * z[:, 3] - 0.5 * z[:, 2] + rng.normal(size=rows) > 0.3).astype(int)
    return x, y


def _rows(booster: xgb.Booster, x: np.ndarray, seed: int = 1) -> np.ndarray:
    """Training rows, rows on/around every threshold (NaN one time in ten), extremes, infinities."""
    forest = Forest.from_json(bytes(booster.save_raw(raw_format="json")))
    around = check_rows(TreeShap.from_forest(forest), 3000, seed=seed)
    extreme = np.random.default_rng(seed).normal(size=(40, x.shape[1])) * 1e6
    extreme[:5] = np.inf
    extreme[5:10] = -np.inf
    extreme[10:15] = 1e300  # beyond float32: inf once cast, as xgboost casts
    extreme[15:20] = np.nan
    return np.vstack([x, around, extreme])


def _check_exact(booster: xgb.Booster, rows: np.ndarray) -> Forest:
    forest = Forest.from_json(bytes(booster.save_raw(raw_format="json")))
    booster.set_param({"nthread": 1})
    np.testing.assert_array_equal(forest.margin(rows), booster.inplace_predict(rows, predict_type="margin"))
    np.testing.assert_array_equal(forest.proba(rows), booster.inplace_predict(rows))
    finite = rows[~np.isinf(rows).any(axis=1) & (np.abs(np.nan_to_num(rows)) < 1e30).all(axis=1)]
    np.testing.assert_array_equal(forest.proba(finite), booster.predict(xgb.DMatrix(finite), validate_features=False))  # DMatrix refuses inf
    for n in (1, 2, 3):  # the one-row and few-row sums take other numpy paths
        np.testing.assert_array_equal(forest.proba(rows[:n]), booster.inplace_predict(rows[:n]))
    return forest


@pytest.mark.parametrize("params", [
    {"max_depth": 1},
    {"max_depth": 3, "tree_method": "hist", "subsample": 0.8, "colsample_bytree": 0.8, "min_child_weight": 5},
    {"max_depth": 3, "tree_method": "exact", "monotone_constraints": "(1,0,-1,0,0,0,0)"},
    {"max_depth": 4, "base_score": 0.9},  # a base margin far from 0
    {"max_depth": 6, "eta": 0.5},  # 63 splits per tree: walked node by node, not by codes
    {"max_depth": 8, "grow_policy": "lossguide", "max_leaves": 40, "tree_method": "hist"},
])
def test_scores_equal_xgboost_bit_for_bit(params):
    x, y = _data()
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1, "eta": 0.1, **params}, xgb.DMatrix(x, y), 150)
    forest = _check_exact(booster, _rows(booster, x))
    assert (forest.leaf_table is not None) == (forest.width <= forest.code_limit)
    walked = dataclasses.replace(forest, code_limit=0)  # the node-by-node walk of wide trees, on any model
    assert walked.leaf_table is None
    rows = _rows(booster, x, seed=2)
    np.testing.assert_array_equal(walked.proba(rows), forest.proba(rows))


def test_a_production_shaped_model_from_the_scikit_learn_api():
    """400 trees of depth 3 as training fits them (XGBClassifier, hist, monotone, named features)."""
    import pandas as pd

    x, y = _data(rows=4000, seed=5)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    model = xgb.XGBClassifier(n_estimators=400, learning_rate=0.05, max_depth=3, min_child_weight=5, subsample=0.8,
                              colsample_bytree=0.8, tree_method="hist", n_jobs=1, random_state=0,
                              monotone_constraints={"f0": 1, "f2": -1})
    model.fit(frame, y)
    rows = _rows(model.get_booster(), x, seed=3)
    forest = _check_exact(model.get_booster(), rows)
    assert forest.feature_names == tuple(frame.columns)
    expected = model.predict_proba(pd.DataFrame(rows, columns=frame.columns))[:, 1]
    np.testing.assert_array_equal(forest.proba(rows), expected)


def test_sigmoid_is_xgboosts_float32_sigmoid_with_glibcs_expf():
    """1.0f / (expf(min(-x, 88.7f)) + 1.0f) with libm's own expf, on margins where glibc's expf and
    the exactly rounded exp disagree (about 1 in 1,600) and everywhere else."""
    expf = ctypes.CDLL("libm.so.6").expf
    expf.restype, expf.argtypes = ctypes.c_float, [ctypes.c_float]
    rng = np.random.default_rng(0)
    margins = np.concatenate([rng.uniform(-20, 20, 100_000), rng.uniform(-120, 120, 20_000),
                              [0.0, -88.7, 88.7, -200.0, 200.0, 1e-30]]).astype(np.float32)
    expected = np.array([np.float32(1) / (np.float32(expf(float(min(-m, np.float32(88.7))))) + np.float32(1))
                         for m in margins.tolist()], dtype=np.float32)
    rounded = np.float32(1) / (np.exp(np.minimum(-margins, np.float32(88.7)).astype(np.float64)).astype(np.float32)
                               + np.float32(1))
    assert (rounded != expected).sum() > 10  # the case the libm fallback exists for does occur here
    np.testing.assert_array_equal(sigmoid(margins), expected)


def test_regression_margins_and_models_without_splits():
    x, y = _data()
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 3, "base_score": 3.0, "nthread": 1},
                        xgb.DMatrix(x, y * 10.0), 30)
    forest = Forest.from_json(bytes(booster.save_raw(raw_format="json")))
    rows = _rows(booster, x)
    np.testing.assert_array_equal(forest.margin(rows), booster.inplace_predict(rows))
    with pytest.raises(Unsupported, match="probabilities"):
        forest.proba(rows)
    empty = xgb.train({"objective": "binary:logistic", "nthread": 1}, xgb.DMatrix(x, y), 0)
    with pytest.raises(Unsupported, match="no trees"):  # xgboost scores it from an untransformed base_score
        Forest.from_json(bytes(empty.save_raw(raw_format="json")))
    stumps = xgb.train({"objective": "binary:logistic", "gamma": 1e9, "nthread": 1}, xgb.DMatrix(x, y), 5)
    assert Forest.from_json(bytes(stumps.save_raw(raw_format="json"))).leaf_table.size == 0  # no splits at all
    _check_exact(stumps, x[:50])


def test_bad_input_and_refusals():
    x, y = _data()
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1}, xgb.DMatrix(x, y), 3)
    forest = Forest.from_json(bytes(booster.save_raw(raw_format="json")))
    with pytest.raises(ValueError, match="7 columns"):
        forest.proba(np.zeros((2, 5)))
    assert forest.proba(np.empty((0, 7))).shape == (0,)
    with pytest.raises(Unsupported, match="not an xgboost JSON model"):
        Forest.from_json(b"{}")
    linear = xgb.train({"booster": "gblinear", "objective": "binary:logistic", "nthread": 1}, xgb.DMatrix(x, y), 3)
    with pytest.raises(Unsupported, match="gblinear"):
        Forest.from_json(bytes(linear.save_raw(raw_format="json")))
    multi = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 2, "nthread": 1},
                      xgb.DMatrix(x, y + (np.nan_to_num(x[:, 0]) > 1)), 3)
    with pytest.raises(Unsupported, match="output"):
        Forest.from_json(bytes(multi.save_raw(raw_format="json")))
    poisson = xgb.train({"objective": "count:poisson", "nthread": 1}, xgb.DMatrix(x, y), 3)
    with pytest.raises(Unsupported, match="objective 'count:poisson'"):
        Forest.from_json(bytes(poisson.save_raw(raw_format="json")))
    stopped = xgb.train({"objective": "binary:logistic", "nthread": 1}, xgb.DMatrix(x, y), 50,
                        evals=[(xgb.DMatrix(x[:300], y[:300]), "v")], early_stopping_rounds=2, verbose_eval=False)
    with pytest.raises(Unsupported, match="best_iteration"):
        Forest.from_json(bytes(stopped.save_raw(raw_format="json")))
    import pandas as pd

    frame = pd.DataFrame({"a": x[:, 0], "c": pd.Categorical(np.nan_to_num(x[:, 2]).astype(int))})
    categorical = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "max_cat_to_onehot": 1},
                            xgb.DMatrix(frame, y, enable_categorical=True), 5)
    with pytest.raises(Unsupported, match="categorical"):
        Forest.from_json(bytes(categorical.save_raw(raw_format="json")))
