"""A registered model loaded for scoring: the xgboost booster, its calibrator and prepare spec.

Reads entries through `parity.models.registry` (storage, checksums, the `current` pointer); never
executes a pickle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from parity.config import Settings
from parity.models.prepare import PrepareSpec, prepare
from parity.models.registry import (
    CALIBRATOR_FILE,
    FORMAT,
    METADATA_FILE,
    MODEL_FILE,
    RegistryError,
    current_version,
    entry_dir,
    verified_files,
)
from parity.pandas_lazy import is_frame

if TYPE_CHECKING:
    import pandas as pd

CALIBRATION_METHODS = ("isotonic", "platt")
PLATT_EPS = 1e-7


def logit_clipped(p: np.ndarray, eps: float) -> np.ndarray:
    """log(p / (1 - p)) with p clipped to [eps, 1 - eps] (a tree model can output exactly 0 or 1)."""
    p = np.clip(np.asarray(p, dtype="float64"), eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)


def apply_calibrator(params: Mapping[str, Any], scores: np.ndarray) -> np.ndarray:
    """Calibrated probabilities from raw model probabilities (isotonic knots or Platt a, b)."""
    scores = np.asarray(scores, dtype="float64")
    if params["method"] == "isotonic":  # = IsotonicRegression(out_of_bounds="clip").predict
        return np.interp(scores, np.asarray(params["x"], float), np.asarray(params["y"], float))
    if params["method"] == "platt":  # logistic regression on the model's log-odds
        z = params["a"] * logit_clipped(scores, params["eps"]) + params["b"]
        return 1.0 / (1.0 + np.exp(-z))
    raise RegistryError(
        f"unknown calibration method {params['method']!r}; known: {CALIBRATION_METHODS}"
    )


@dataclass
class LoadedModel:
    """A registered model ready to score prepared rows (see `parity.models.prepare.prepare`)."""

    model: str
    version: str
    metadata: dict[str, Any]
    spec: PrepareSpec
    calibrator: dict[str, Any]
    booster: Any
    nthread: int = -1

    @property
    def threshold(self) -> float:
        """Decision threshold on calibrated probability (chosen on validation by cost)."""
        return float(self.metadata["threshold"])

    @property
    def feature_service(self) -> str:
        """The feature service the model was trained on (serve from the same one)."""
        return str(self.metadata["feature_service"])

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`parity.models.prepare.prepare` with this model's spec."""
        return prepare(frame, self.spec)

    def _matrix(self, prepared: pd.DataFrame | np.ndarray) -> Any:
        import xgboost as xgb

        if is_frame(prepared):
            if tuple(prepared.columns) != self.spec.columns:
                raise ValueError("prepared frame columns differ from the model's prepare spec")
            prepared = prepared.to_numpy(dtype="float64")
        prepared = np.asarray(prepared, dtype="float64")
        if prepared.ndim != 2 or prepared.shape[1] != len(self.spec.columns):
            raise ValueError(
                f"expected a matrix with {len(self.spec.columns)} columns, got {prepared.shape}"
            )
        # DMatrix construction has its own thread pool: a busy machine makes the default
        # (all cores) spin for ~15 ms on a one-row matrix; use the booster's thread count.
        return xgb.DMatrix(prepared, feature_names=list(self.spec.columns), nthread=self.nthread)

    def raw_proba(self, prepared: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Uncalibrated xgboost churn probability."""
        return self.booster.predict(self._matrix(prepared))

    def predict_proba(self, prepared: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2): [P(stays), P(churns)] as in scikit-learn."""
        churn = apply_calibrator(self.calibrator, self.raw_proba(prepared))
        return np.column_stack([1.0 - churn, churn])

    def predict(self, prepared: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Decisions (1 = act on churn risk): calibrated probability >= threshold."""
        return (self.predict_proba(prepared)[:, 1] >= self.threshold).astype("int64")

    def score_and_explain(self, prepared: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated churn probabilities and TreeSHAP contributions (last column = bias) from
        one DMatrix: the serving hot path."""
        matrix = self._matrix(prepared)
        churn = apply_calibrator(self.calibrator, self.booster.predict(matrix))
        return churn, self.booster.predict(matrix, pred_contribs=True)

    def contributions(self, prepared: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """TreeSHAP contributions (xgboost pred_contribs) in log-odds, one column per input + bias."""
        values = self.booster.predict(self._matrix(prepared), pred_contribs=True)
        import pandas as pd

        index = prepared.index if is_frame(prepared) else None
        return pd.DataFrame(values, columns=list(self.spec.columns) + ["bias"], index=index)


def load_version(
    registry_dir: Path, model: str, version: str, nthread: int | None = None
) -> LoadedModel:
    """Load and verify one version (checksums, format, calibrator) without executing any pickle."""
    import xgboost as xgb

    contents = verified_files(entry_dir(registry_dir, model, version))
    metadata = json.loads(contents[METADATA_FILE])
    if metadata.get("format") != FORMAT:
        raise RegistryError(
            f"{model}/{version} has registry format {metadata.get('format')!r}, expected {FORMAT}"
        )
    calibrator = json.loads(contents[CALIBRATOR_FILE])
    if (
        calibrator.get("method") not in CALIBRATION_METHODS
        or calibrator.get("input", "probability") != "probability"
    ):
        raise RegistryError(
            f"{model}/{version} has an unsupported calibrator "
            f"({calibrator.get('method')!r} over {calibrator.get('input')!r})"
        )
    booster = xgb.Booster()
    booster.load_model(bytearray(contents[MODEL_FILE]))
    if nthread:
        booster.set_param({"nthread": nthread})
    spec = PrepareSpec.from_dict(metadata["prepare_spec"])
    return LoadedModel(model, version, metadata, spec, calibrator, booster, nthread or -1)


def load_current_from(registry_dir: Path, model: str = "churn") -> LoadedModel:
    """Load the version the `current` pointer names."""
    version = current_version(registry_dir, model)
    if version is None:
        raise RegistryError(
            f"no current '{model}' model in {registry_dir}: train one (`make train`) or promote a version"
        )
    return load_version(registry_dir, model, version)


def load_current(settings: Settings, model: str = "churn") -> LoadedModel:
    """The current model of the platform's registry (what serving scores with)."""
    return load_current_from(settings.registry_dir, model)
