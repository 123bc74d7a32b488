"""The serving hot path's shortcuts give exactly what the registry's model API gives."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from parity.models.loaded import load_version
from parity.models.registry import current_version
from serving.log import PredictionLog
from serving.predict import score_and_explain

pytestmark = pytest.mark.data


def test_score_and_explain_equals_xgboost(trained_data):
    """Serving's scores are xgboost's own, bit for bit (numpy trees), TreeSHAP to float32 rounding."""
    import xgboost as xgb

    from parity.models.loaded import apply_calibrator

    model = load_version(trained_data.registry_dir, "churn", current_version(trained_data.registry_dir, "churn"), nthread=1)
    assert model.forest is not None and model.explainer is not None, model.unsupported
    for n in (1, 2, 13, 200):
        matrix = np.random.default_rng(n).normal(size=(n, len(model.spec.columns))) * 40
        matrix[0, ::2] = np.nan
        scores, contribs = score_and_explain(model, matrix)
        data = xgb.DMatrix(matrix, feature_names=list(model.spec.columns))
        np.testing.assert_array_equal(scores, apply_calibrator(model.calibrator, model.booster.predict(data)))
        np.testing.assert_allclose(contribs, model.booster.predict(data, pred_contribs=True), rtol=0, atol=1e-5)
        unexplained, none = score_and_explain(model, matrix, explain=False)
        assert none is None
        np.testing.assert_array_equal(unexplained, scores)
        np.testing.assert_array_equal(model.predict_proba(matrix)[:, 1], scores)


def test_a_spec_that_does_not_match_the_model_is_refused(trained_data):
    model = load_version(trained_data.registry_dir, "churn", current_version(trained_data.registry_dir, "churn"), nthread=1)
    columns = tuple(reversed(model.spec.columns))
    with pytest.raises(ValueError, match="differ"):
        dataclasses.replace(model, spec=dataclasses.replace(model.spec, columns=columns))


def test_prediction_log_writes_every_record_on_close_without_waking_per_record(tmp_path):
    log = PredictionLog(tmp_path, flush_seconds=3600, flush_rows=10**9)
    records = [{"request_id": f"r{i}", "customer_id": f"c{i}", "status": "ok"} for i in range(25)]
    log.append(records[0])
    log.extend(records[1:])
    time.sleep(0.05)
    assert log.written == 0  # nothing written before a flush is due
    log.close()
    assert log.written == 25
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path)
    assert sorted(table.column("request_id").to_pylist()) == sorted(r["request_id"] for r in records)


def test_prediction_log_flushes_when_enough_rows_wait(tmp_path):
    log = PredictionLog(tmp_path, flush_seconds=3600, flush_rows=10)
    log.extend([{"request_id": f"r{i}", "status": "ok"} for i in range(12)])
    deadline = time.monotonic() + 30
    while log.written < 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert log.written == 12
    log.close()
