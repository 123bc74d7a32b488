"""What the serving process loads: no Feast, no xgboost, no scipy, no scikit-learn, no pandas and no
pydantic.v1 (nor the console's pages before a /console request); the same scores and explanations
as xgboost's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from parity.models.loaded import load_version
from parity.models.registry import current_version

pytestmark = pytest.mark.data

# `python -m serving`'s start-up in a fresh interpreter (app, lifespan: the model loads), then one
# prediction and the readiness answer; prints what got imported
_START = """
import gc, json, sys
from serving.lean import refuse_pydantic_v1
refuse_pydantic_v1()
from fastapi.testclient import TestClient
from parity.config import load_settings
from serving.app import create_app
from serving.config import load_config
app = create_app(load_settings(sys.argv[1]), load_config(None, {"PARITY_API_KEYS": "k"}))
with TestClient(app) as client:
    ready = client.get("/readyz").json()
    predicted = client.post("/v1/predict", headers={"X-API-Key": "k"},
                            json={"customers": [{"customer_id": sys.argv[2], "request_at": sys.argv[3]},
                                                {"customer_id": "nobody:1"}]}).json()
from serving.schemas import Prediction, PredictResponse
PredictResponse.model_validate(predicted)  # the plain-JSON response has the declared shape
assert all(list(p) == list(Prediction.model_fields) for p in predicted["predictions"])
print(json.dumps({"ready": ready, "statuses": [p["status"] for p in predicted["predictions"]],
                  "gc_enabled": gc.isenabled(),  # the predict route pauses the collector, then resumes it
                  "loaded": sorted(m for m in ("feast", "xgboost", "scipy", "sklearn", "pandas", "serving.console.routes",
                                               "pyarrow.compute", "pydantic.v1") if sys.modules.get(m) is not None)}))
"""

# scores and TreeSHAP of a fixed matrix the way serving loads a model (serving.models), in a process
# without xgboost
_SCORE = """
import json, sys
import numpy as np
from serving.models import load_for_serving
model = load_for_serving(__import__("pathlib").Path(sys.argv[1]), "churn", sys.argv[2], nthread=1)
matrix = np.array(json.loads(sys.argv[3]), dtype="float64")
scores, contribs = model.score_and_explain(matrix)
print(json.dumps({"scores": scores.tolist(), "contribs": contribs.tolist(),
                  "imported": sorted(m for m in ("xgboost", "scipy", "sklearn") if m in sys.modules)}))
"""


def _run(code: str, *args: str, data_dir) -> dict:
    env = {**os.environ, "PARITY_DATA_DIR": str(data_dir), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _known_customer(settings) -> str:
    import duckdb

    return duckdb.connect().execute(
        f"select min(customer_id) from read_parquet('{settings.marts_dir}/customer_features_weekly.parquet')"
    ).fetchone()[0]


def test_serving_process_never_imports_feast_xgboost_scipy_sklearn_or_pandas(trained_data):
    from tests.serving.test_app import as_of

    out = _run(_START, str(trained_data.data_dir), _known_customer(trained_data), as_of(trained_data),
               data_dir=trained_data.data_dir)
    assert out["ready"]["status"] == "ready" and out["ready"]["feature_reader"] == "sqlite", out["ready"]
    assert out["statuses"] == ["ok", "unknown_customer"]
    assert out["gc_enabled"] is True
    assert out["loaded"] == []


def test_serving_scores_without_xgboost_what_xgboost_scores(trained_data):
    import xgboost as xgb

    from parity.models.loaded import apply_calibrator

    version = current_version(trained_data.registry_dir, "churn")
    model = load_version(trained_data.registry_dir, "churn", version, nthread=1)
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(7, len(model.spec.columns))) * 50
    matrix[0, :] = np.nan
    out = _run(_SCORE, str(trained_data.registry_dir), version, json.dumps(np.where(np.isnan(matrix), None, matrix).tolist()),
               data_dir=trained_data.data_dir)
    assert out["imported"] == []
    data = xgb.DMatrix(matrix, feature_names=list(model.spec.columns))
    np.testing.assert_array_equal(np.array(out["scores"]), apply_calibrator(model.calibrator, model.booster.predict(data)))
    np.testing.assert_allclose(np.array(out["contribs"]), model.booster.predict(data, pred_contribs=True), rtol=0, atol=1e-5)
