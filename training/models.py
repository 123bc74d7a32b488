"""Candidate models: the "as is" rule, logistic regression, random forest, monotone xgboost.

Each learned model is tuned by rolling time-based CV on the training period, refitted on the
whole training period, calibrated on the validation period (Platt scaling or isotonic regression
on its probabilities, exported as plain parameters) and given the cost-minimising threshold there.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from parity.models.loaded import PLATT_EPS, apply_calibrator, logit_clipped
from parity.models.prepare import PrepareSpec, fit_spec, prepare
from training.config import ModelConfig, TrainingConfig
from training.dataset import LABEL
from training.errors import ConfigError, TrainingError
from training.metrics import average_precision, choose_threshold

AS_IS = "as_is"
DISPLAY = {
    AS_IS: "as is",
    "logistic_regression": "logistic regression",
    "random_forest": "random forest",
    "xgboost": "xgboost",
}
PRODUCTION = "xgboost"


@dataclass
class Candidate:
    """One compared model: its tuned params, fitted estimator, calibration, scores and threshold."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)
    cv: list[dict[str, Any]] = field(default_factory=list)
    estimator: Any = None
    calibrator: dict[str, Any] | None = None
    valid_scores: np.ndarray | None = None
    test_scores: np.ndarray | None = None
    threshold: float = float("nan")
    valid_cost: float = float("nan")

    @property
    def name(self) -> str:
        """Display name used in tables."""
        return DISPLAY[self.key]

    def test_decisions(self) -> np.ndarray:
        """1 where the test score reaches the validation threshold."""
        return (self.test_scores >= self.threshold).astype("float64")


def monotone_vector(columns: Sequence[str], constraints: dict[str, int]) -> tuple[int, ...]:
    """Per prepared column constraint (-1, 0, +1); every constrained feature must be a column."""
    unknown = sorted(name for name, sign in constraints.items() if sign and name not in columns)
    if unknown:
        raise ConfigError(f"monotone constraint on unknown prepared column(s) {unknown}")
    return tuple(int(constraints.get(column, 0)) for column in columns)


def build(key: str, params: dict[str, Any], columns: Sequence[str], config: TrainingConfig) -> Any:
    """An unfitted estimator for a model key with the given params."""
    if key == "logistic_regression":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(
            StandardScaler(), LogisticRegression(random_state=config.seed, **params)
        )
    if key == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(random_state=config.seed, n_jobs=config.n_jobs, **params)
    if key == "xgboost":
        from xgboost import XGBClassifier

        constraints = config.models[key].monotone_constraints
        # fixed seed + fixed thread count + hist: byte-identical models on rerun
        return XGBClassifier(
            random_state=config.seed,
            n_jobs=config.n_jobs,
            objective="binary:logistic",
            monotone_constraints=monotone_vector(columns, constraints),
            **params,
        )
    raise ConfigError(f"unknown model {key!r}")


def fit(
    key: str, params: dict[str, Any], x: pd.DataFrame, y: np.ndarray, config: TrainingConfig
) -> Any:
    """Build and fit; predictions are then single-threaded where threads would reorder float sums."""
    estimator = build(key, params, list(x.columns), config).fit(x, y)
    if key == "random_forest":
        # the forest sums per-tree probabilities in thread-completion order: not bit-reproducible
        estimator.set_params(n_jobs=1)
    return estimator


def grid(model: ModelConfig) -> list[dict[str, Any]]:
    """Parameter combinations: params overridden by each point of the grid (sorted keys)."""
    keys = sorted(model.grid)
    combos = itertools.product(*(model.grid[k] for k in keys)) if keys else [()]
    return [{**model.params, **dict(zip(keys, values))} for values in combos]


def raw_scores(estimator: Any, prepared: pd.DataFrame) -> np.ndarray:
    """Uncalibrated positive-class probability."""
    return estimator.predict_proba(prepared)[:, 1].astype("float64")


def cv_search(
    key: str,
    train: pd.DataFrame,
    folds: list[tuple[np.ndarray, np.ndarray]],
    features: Sequence[tuple[str, str]],
    config: TrainingConfig,
    progress: Callable[[int], None] = lambda n: None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Best params by mean PR-AUC over rolling folds (the prepare spec is refitted per fold)."""
    prepared = []
    for fit_rows, held_rows in folds:
        fit_frame, held_frame = train.iloc[fit_rows], train.iloc[held_rows]
        spec = fit_spec(
            fit_frame, features, config.features.derived, config.features.min_level_count,
            config.features.fill,
        )
        prepared.append(
            (
                prepare(fit_frame, spec),
                fit_frame[LABEL].to_numpy(),
                prepare(held_frame, spec),
                held_frame[LABEL].to_numpy(),
            )
        )
    results = []
    for params in grid(config.models[key]):
        scores = []
        for x_fit, y_fit, x_held, y_held in prepared:
            estimator = fit(key, params, x_fit, y_fit, config)
            scores.append(average_precision(y_held, raw_scores(estimator, x_held)))
            progress(1)
        results.append(
            {"params": params, "fold_pr_auc": scores, "mean_pr_auc": float(np.mean(scores))}
        )
    best = max(results, key=lambda r: r["mean_pr_auc"])  # first best wins: deterministic
    return best["params"], results


def fit_calibrator(raw_valid: np.ndarray, y_valid: np.ndarray, method: str) -> dict[str, Any]:
    """Fit a calibrator on validation probabilities and export it as JSON parameters.

    platt: logistic regression of the label on logit(p) (Platt scaling on the model's log-odds),
    strictly increasing, so rankings (PR-AUC, ROC-AUC, lift) are unchanged. isotonic: scikit-learn's
    IsotonicRegression, a step function that can tie scores. Both read the model's probability, so
    every model (and the registry) applies them the same way.
    """
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    raw_valid = np.asarray(raw_valid, dtype="float64")
    if method == "isotonic":
        fitted = IsotonicRegression(
            y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip"
        ).fit(raw_valid, y_valid)
        params = {
            "method": "isotonic",
            "x": fitted.X_thresholds_.tolist(),
            "y": fitted.y_thresholds_.tolist(),
        }
        reference = fitted.predict(raw_valid)
    elif method == "platt":
        log_odds = logit_clipped(raw_valid, PLATT_EPS)[:, None]
        fitted = LogisticRegression(C=np.inf).fit(log_odds, y_valid)
        params = {
            "method": "platt",
            "a": float(fitted.coef_[0, 0]),
            "b": float(fitted.intercept_[0]),
            "eps": PLATT_EPS,
        }
        reference = fitted.predict_proba(log_odds)[:, 1]
    else:
        raise ConfigError(f"unknown calibration method {method!r}")
    params = json.loads(
        json.dumps({**params, "input": "probability", "fitted_on": "validation period"})
    )
    # the exported parameters (what the registry stores) must reproduce the fitted object
    if not np.allclose(apply_calibrator(params, raw_valid), reference, rtol=0, atol=1e-9):
        raise TrainingError(
            f"exported {method} calibrator does not reproduce scikit-learn's output"
        )
    return params


def calibrated_scores(
    estimator: Any, calibrator: dict[str, Any], prepared: pd.DataFrame
) -> np.ndarray:
    """Calibrated churn probability of a fitted model."""
    return apply_calibrator(calibrator, raw_scores(estimator, prepared))


def fit_candidate(
    key: str,
    train: pd.DataFrame,
    x_train: pd.DataFrame,
    x_valid: pd.DataFrame,
    x_test: pd.DataFrame,
    y_valid: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    features: Sequence[tuple[str, str]],
    config: TrainingConfig,
    progress: Callable[[int], None] = lambda n: None,
) -> Candidate:
    """Tune by CV, refit on train, calibrate and pick the threshold on validation, score test."""
    params, cv = cv_search(key, train, folds, features, config, progress)
    estimator = fit(key, params, x_train, train[LABEL].to_numpy(), config)
    calibrator = fit_calibrator(raw_scores(estimator, x_valid), y_valid, config.calibration)
    valid_scores = calibrated_scores(estimator, calibrator, x_valid)
    threshold, cost = choose_threshold(
        y_valid, valid_scores, config.costs.false_positive, config.costs.false_negative
    )
    return Candidate(
        key,
        params,
        cv,
        estimator,
        calibrator,
        valid_scores,
        calibrated_scores(estimator, calibrator, x_test),
        threshold,
        cost,
    )


def baseline_scores(frame: pd.DataFrame, feature: str) -> np.ndarray:
    """The "as is" score: the raw feature; missing (no purchase on record) ranks highest."""
    if feature not in frame.columns:
        raise ConfigError(f"baseline feature '{feature}' is not in the feature service")
    values = pd.to_numeric(frame[feature]).to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isnan(values), np.inf, values)


def fit_baseline(valid: pd.DataFrame, test: pd.DataFrame, config: TrainingConfig) -> Candidate:
    """The business rule "no purchase for N days", N chosen on validation by the same costs."""
    y_valid = valid[LABEL].to_numpy()
    valid_scores = baseline_scores(valid, config.baseline.feature)
    threshold, cost = choose_threshold(
        y_valid, valid_scores, config.costs.false_positive, config.costs.false_negative
    )
    return Candidate(
        AS_IS,
        {"feature": config.baseline.feature, "N": threshold},
        [],
        None,
        None,
        valid_scores,
        baseline_scores(test, config.baseline.feature),
        threshold,
        cost,
    )


def fit_spec_for(
    train: pd.DataFrame, features: Sequence[tuple[str, str]], config: TrainingConfig
) -> PrepareSpec:
    """The prepare spec fitted on the training period only."""
    return fit_spec(
        train, features, config.features.derived, config.features.min_level_count, config.features.fill
    )
