"""A registered model loaded for scoring: its trees, its calibrator and prepare spec.

The trees are read from the saved xgboost JSON by `parity.models.trees` and scored with numpy,
bit-identical to xgboost's own predictions (training checks it on its test set when it registers
a version), with TreeSHAP from `parity.models.treeshap`'s tables: serving, batch and monitoring
score without importing xgboost. A model those modules do not reproduce (`Unsupported`: e.g.
categorical splits) is scored by xgboost itself, imported then. Reads entries through
`parity.models.registry` (storage, checksums, the `current` pointer); never executes a pickle.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
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
from parity.models.trees import LOGISTIC, Forest, Unsupported
from parity.models.treeshap import TreeShap
from parity.pandas_lazy import is_frame

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("parity.models.loaded")

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
    model_json: bytes  # the registry's model.json (xgboost's own format)
    forest: Forest | None  # None: `parity.models.trees` does not reproduce it (`unsupported` says why)
    nthread: int = -1  # xgboost's threads, when xgboost scores (`forest` None)
    unsupported: str | None = None
    _booster: Any = field(default=None, repr=False, compare=False)
    _explainer: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = self.forest.feature_names if self.forest is not None else None
        if names is not None and names != tuple(self.spec.columns):
            raise ValueError(f"model {self.model}/{self.version}: booster features differ from its prepare spec")

    @property
    def threshold(self) -> float:
        """Decision threshold on calibrated probability (chosen on validation by cost)."""
        return float(self.metadata["threshold"])

    @property
    def feature_service(self) -> str:
        """The feature service the model was trained on (serve from the same one)."""
        return str(self.metadata["feature_service"])

    @property
    def booster(self) -> Any:
        """The xgboost Booster of the same JSON, loaded on first use: the scorer of a model the
        numpy trees do not cover, and the reference in tests (xgboost is imported here only)."""
        if self._booster is None:
            import xgboost as xgb

            booster = xgb.Booster()
            booster.load_model(bytearray(self.model_json))
            if self.nthread > 0:
                booster.set_param({"nthread": self.nthread})
            if booster.feature_names is not None and booster.feature_names != list(self.spec.columns):
                raise ValueError(f"model {self.model}/{self.version}: booster features differ from its prepare spec")
            self._booster = booster
        return self._booster

    @property
    def explainer(self) -> TreeShap | None:
        """The tabulated TreeSHAP of the trees (built on first use, 10-40 ms), or None when
        xgboost's own TreeSHAP must explain the model."""
        if self._explainer is None:
            shap: TreeShap | bool = False
            if self.forest is not None:
                try:
                    shap = TreeShap.from_forest(self.forest)
                except Unsupported as err:
                    log.warning("model %s/%s: xgboost's TreeSHAP explains it (%s)", self.model, self.version, err)
            self._explainer = shap
        return self._explainer or None

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`parity.models.prepare.prepare` with this model's spec."""
        return prepare(frame, self.spec)

    def _array(self, prepared: pd.DataFrame | np.ndarray) -> np.ndarray:
        if is_frame(prepared):
            if tuple(prepared.columns) != self.spec.columns:
                raise ValueError("prepared frame columns differ from the model's prepare spec")
            prepared = prepared.to_numpy(dtype="float64")
        prepared = np.asarray(prepared, dtype="float64")
        if prepared.ndim != 2 or prepared.shape[1] != len(self.spec.columns):
            raise ValueError(
                f"expected a matrix with {len(self.spec.columns)} columns, got {prepared.shape}"
            )
        return prepared

    def _dmatrix(self, matrix: np.ndarray) -> Any:
        import xgboost as xgb

        # DMatrix construction has its own thread pool: a busy machine makes the default
        # (all cores) spin for ~15 ms on a one-row matrix; use the booster's thread count.
        return xgb.DMatrix(matrix, feature_names=list(self.spec.columns), nthread=self.nthread)

    def raw_proba(self, prepared: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Uncalibrated churn probability (float32, = xgboost's predict bit for bit)."""
        matrix = self._array(prepared)
        if self.forest is not None:
            return self.forest.proba(matrix)
        return self.booster.predict(self._dmatrix(matrix))

    def predict_proba(self, prepared: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2): [P(stays), P(churns)] as in scikit-learn."""
        churn = apply_calibrator(self.calibrator, self.raw_proba(prepared))
        return np.column_stack([1.0 - churn, churn])

    def predict(self, prepared: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Decisions (1 = act on churn risk): calibrated probability >= threshold."""
        return (self.predict_proba(prepared)[:, 1] >= self.threshold).astype("int64")

    def score_and_explain(self, prepared: pd.DataFrame | np.ndarray,
                          explain: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Calibrated churn probabilities and TreeSHAP contributions (last column = bias; None
        unless `explain`): the serving hot path. The rows' split decisions are made once, for
        the score and the explanation."""
        matrix = self._array(prepared)
        shap = self.explainer if explain else None
        if self.forest is not None and (shap is not None or not explain):
            codes = self.forest.split_codes(self.forest.as_float32(matrix)) if self.forest.leaf_table is not None else None
            churn = apply_calibrator(self.calibrator, self.forest.proba(matrix, codes))
            return churn, shap.contributions(matrix, codes) if shap is not None else None
        if self.forest is not None:  # the numpy score, xgboost's TreeSHAP
            churn = apply_calibrator(self.calibrator, self.forest.proba(matrix))
            return churn, self.booster.predict(self._dmatrix(matrix), pred_contribs=True)
        data = self._dmatrix(matrix)
        churn = apply_calibrator(self.calibrator, self.booster.predict(data))
        return churn, self.booster.predict(data, pred_contribs=True) if explain else None

    def contributions(self, prepared: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """TreeSHAP contributions (= xgboost's pred_contribs) in log-odds, one column per input + bias."""
        values = self.score_and_explain(prepared)[1]
        import pandas as pd

        index = prepared.index if is_frame(prepared) else None
        return pd.DataFrame(values, columns=list(self.spec.columns) + ["bias"], index=index)


def load_version(
    registry_dir: Path, model: str, version: str, nthread: int | None = None
) -> LoadedModel:
    """Load and verify one version (checksums, format, calibrator) without executing any pickle."""
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
    spec = PrepareSpec.from_dict(metadata["prepare_spec"])
    raw = bytes(contents[MODEL_FILE])
    try:
        forest, unsupported = Forest.from_json(raw), None
        if forest.objective != LOGISTIC:
            raise Unsupported(f"objective {forest.objective} (the churn model is {LOGISTIC})")
    except Unsupported as err:
        forest, unsupported = None, str(err)
        log.warning("model %s/%s: xgboost scores it (%s)", model, version, err)
    loaded = LoadedModel(model, version, metadata, spec, calibrator, raw, forest, nthread or -1, unsupported)
    if forest is None:
        loaded.booster  # noqa: B018 - load (and check) it now, not on the first request
    return loaded


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
