"""Where /v1/predict spends its time, step by step, in-process (worker task `predict_profile`),
and what two lean variants of the same steps cost. Evidence for the product proposals; the
lean variants are checked to give the same matrix / scores as the product code.

Steps (as serving/app.py ran them before the serving manifest; the manifest's direct SQLite read
is timed next to Feast's): read_columns (Feast online_read + decode + UDF) ->
read_found's Arrow/conform/pandas -> prepare -> predict_proba (DMatrix + predict + calibration)
-> contributions (a second DMatrix + pred_contribs + DataFrame) -> top-k -> log records
(feature_snapshot + json.dumps) -> response (pydantic + model_dump + JSON encoding).
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np

from bench.measure import stats


def prepare_columns(columns: dict[str, list[Any]], spec: Any, n: int) -> np.ndarray:
    """parity.prepare.prepare on python lists straight into a float64 matrix (no pandas)."""
    from parity.prepare import DERIVED, OTHER

    levels, impute = dict(spec.levels), dict(spec.impute)
    indicators = set(spec.missing_indicators)
    blocks: list[np.ndarray] = []
    numeric: dict[str, np.ndarray] = {}

    def as_float(values: list[Any]) -> np.ndarray:
        array = np.array([np.nan if v is None else v for v in values], dtype="float64")
        return np.where(np.isfinite(array), array, np.nan)

    def fill(values: np.ndarray, name: str) -> None:
        missing = np.isnan(values)
        blocks.append(np.where(missing, impute[name], values)[:, None])
        if name in indicators:
            blocks.append(missing.astype("float64")[:, None])

    for name, _ in spec.features:
        if name in levels:
            known = levels[name]
            index = {level: k for k, level in enumerate(known)}
            block = np.zeros((n, len(known) + 1))
            for i, value in enumerate(columns[name]):
                block[i, index.get(OTHER if value is None else str(value), len(known))] = 1.0
            blocks.append(block)
            continue
        numeric[name] = as_float(columns[name])
        fill(numeric[name], name)
    for name in spec.derived:
        recipe = DERIVED[name]
        with np.errstate(invalid="ignore", divide="ignore"):
            values = recipe.recipe(*(numeric.get(c, as_float(columns[c])) for c in recipe.inputs))
        fill(np.where(np.isfinite(values), values, np.nan), name)
    return np.hstack(blocks)


def _time(fn: Callable[[], Any], reps: int) -> tuple[Any, dict[str, Any]]:
    out = fn()
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - started)
    return out, stats(samples, 1000.0)


def task_profile(args: dict[str, Any]) -> dict[str, Any]:
    import xgboost as xgb

    from parity.config import load_settings
    from parity.feature_store import open_store
    from parity.online import OnlineReader, open_reader
    from parity.registry import apply_calibrator, current_version, load_version
    from serving.predict import feature_snapshot, score_frame
    from serving.schemas import ModelInfo, Prediction, PredictResponse

    settings = load_settings(args["data_dir"])
    store = open_store(settings)
    reader = OnlineReader(store, "churn_v1")
    direct = open_reader(settings, "churn_v1")  # what serving reads with (SqliteReader unless it fell back)
    model = load_version(settings.registry_dir, "churn", current_version(settings.registry_dir, "churn"), nthread=1)
    request_at = datetime.fromisoformat(args["request_at"])
    names = [n for n, _ in reader.schema.features]
    out: dict[str, Any] = {}
    def profile_n(n: int, reps: int) -> dict[str, Any]:
        ids = args["ids"][:n]
        times = [request_at] * n
        steps: dict[str, Any] = {}
        columns, steps["read_columns"] = _time(lambda: reader.read_columns(ids, times), reps)
        _, steps[f"read_columns via the serving manifest ({direct.kind}, what serving uses)"] = _time(
            lambda: direct.read_columns(ids, times), reps)
        (frame, _), steps["OnlineReader.read_found (columns -> typed pandas frame)"] = _time(
            lambda: reader.read_found(ids, times), reps)
        prepared, steps["parity.prepare.prepare (frame in, DataFrame out)"] = _time(lambda: model.prepare(frame), reps)
        _, steps["LoadedModel.predict_proba"] = _time(
            lambda: model.predict_proba(prepared), reps)
        _, steps["LoadedModel.contributions (DataFrame out)"] = _time(
            lambda: model.contributions(prepared), reps)
        scored, steps["serving.predict.score_frame (product code at run time)"] = _time(
            lambda: score_frame(model, frame, 5), reps)
        _, steps["log records: serving.predict.feature_snapshot + json.dumps per row"] = _time(
            lambda: [json.dumps(feature_snapshot(frame, i, names)) for i in range(n)], reps)

        def respond() -> bytes:
            predictions = [Prediction(customer_id=ids[i], status="ok", score=float(scored.scores[i]),
                                      decision=bool(scored.decisions[i]), model_version=model.version,
                                      contributions=scored.top[i]) for i in range(n)]
            body = PredictResponse(request_id="x" * 32, model=ModelInfo(
                name=model.model, version=model.version, threshold=model.threshold,
                feature_service=model.feature_service), predictions=predictions)
            return json.dumps(body.model_dump(mode="json")).encode()

        _, steps["response (pydantic + model_dump + json)"] = _time(respond, reps)

        # lean variant: lists -> matrix (no Arrow/pandas), one DMatrix for proba and contributions
        matrix, steps["lean: prepare_columns (lists -> matrix)"] = _time(
            lambda: prepare_columns(columns, model.spec, n), reps)
        same_matrix = bool(np.allclose(matrix, prepared.to_numpy(dtype="float64"), equal_nan=True, rtol=0, atol=0))

        def lean_score() -> tuple[np.ndarray, np.ndarray]:
            dmatrix = xgb.DMatrix(matrix, feature_names=list(model.spec.columns))
            raw = model.booster.predict(dmatrix)
            contribs = model.booster.predict(dmatrix, pred_contribs=True)
            return apply_calibrator(model.calibrator, raw), contribs

        (lean_scores, _), steps["lean: one DMatrix -> predict + pred_contribs + calibrate"] = _time(lean_score, reps)
        _, steps["lean: inplace_predict only (no contributions)"] = _time(
            lambda: model.booster.inplace_predict(matrix), reps)

        # the one-line fix: DMatrix(..., nthread=1) (xgboost's default uses every core per call)
        stock_dmatrix = xgb.DMatrix
        xgb.DMatrix = lambda *a, **k: stock_dmatrix(*a, **{"nthread": 1, **k})
        try:
            scored_1t, steps["score_frame with every DMatrix forced to nthread=1"] = _time(lambda: score_frame(model, frame, 5), reps)
        finally:
            xgb.DMatrix = stock_dmatrix
        _, steps["score_frame again, stock DMatrix (paired check)"] = _time(lambda: score_frame(model, frame, 5), reps)

        def lean_all() -> Any:
            cols = reader.read_columns(ids, times)
            m = prepare_columns(cols, model.spec, n)
            dmatrix = stock_dmatrix(m, feature_names=list(model.spec.columns), nthread=1)
            raw = model.booster.predict(dmatrix)
            contribs = model.booster.predict(dmatrix, pred_contribs=True)[:, :-1]
            order = np.argsort(-np.abs(contribs), axis=1)[:, :5]
            return apply_calibrator(model.calibrator, raw), order

        _, steps["lean end to end: read_columns -> matrix -> one DMatrix(nthread=1) -> top-k"] = _time(lean_all, reps)
        same_scores_1t = bool(np.array_equal(scored_1t.scores, scored.scores))

        # log records and the response without pandas / pydantic (from the columns and arrays)
        def lean_log() -> list[str]:
            return [json.dumps({name: columns[name][i] for name in names}) for i in range(n)]

        _, steps["lean: log records from columns (json.dumps per row)"] = _time(lean_log, reps)
        same_log = lean_log() == [json.dumps(feature_snapshot(frame, i, names)) for i in range(n)]

        # defaults of whatever optional fields the response schema has today
        defaults = {name: field.default for name, field in Prediction.model_fields.items()
                    if not field.is_required() and name != "contributions"}

        def lean_respond() -> bytes:
            predictions = [{**defaults, "customer_id": ids[i], "status": "ok", "score": float(scored.scores[i]),
                            "decision": bool(scored.decisions[i]), "model_version": model.version,
                            "contributions": scored.top[i]} for i in range(n)]
            return json.dumps({"request_id": "x" * 32, "model": {
                "name": model.model, "version": model.version, "threshold": model.threshold,
                "feature_service": model.feature_service}, "predictions": predictions}).encode()

        _, steps["lean: response as dict + json.dumps (no pydantic)"] = _time(lean_respond, reps)
        same_response = json.loads(lean_respond()) == json.loads(respond())
        steps = {k: {"median_ms": v["median"], "p99_ms": v["p99"]} for k, v in steps.items()}
        return {
            "steps": steps,
            "lean_matrix_identical": same_matrix,
            "lean_scores_identical": bool(np.array_equal(lean_scores, scored.scores)),
            "nthread1_scores_identical": same_scores_1t,
            "lean_log_identical": same_log,
            "lean_response_identical": same_response,
        }
    for n, reps in sorted((int(k), v) for k, v in args["reps"].items()):
        out[str(n)] = profile_n(n, reps)

    # the prediction log's background flush (default every 5000 rows): Python-heavy, holds the GIL
    import tempfile
    from pathlib import Path as _Path

    from serving.log import PredictionLog

    ids100, (frame100, _) = args["ids"][:100], reader.read_found(args["ids"][:100], [request_at] * min(100, len(args["ids"])))
    record = {"request_id": "x" * 32, "logged_at": request_at, "customer_id": ids100[0], "model_version": "v0001",
              "role": "primary", "status": "ok", "score": 0.5, "decision": True, "latency_ms": 1.0,
              "features": json.dumps(feature_snapshot(frame100, 0, names))}
    columns100 = reader.read_columns(ids100, [request_at] * len(ids100))
    flushes = {}
    with tempfile.TemporaryDirectory() as tmp:
        plog = PredictionLog(_Path(tmp), flush_seconds=3600, flush_rows=10**9)
        # features already JSON (the log as first benchmarked) and as serving/app.py queues them
        # today, (columns, row, names) serialised by the writer thread (if this log version does)
        for label, features in (("features pre-serialised JSON", lambda i: record["features"]),
                                ("features as (columns, row, names), serialised in the writer",
                                 lambda i: (columns100, i % len(ids100), names))):
            try:
                _, flush = _time(lambda f=features: plog._write([{**record, "features": f(i)} for i in range(5000)]), 5)
                flushes[label] = {"median": flush["median"], "max": flush["max"]}
            except Exception as err:  # this log version does not take that record format
                flushes[label] = {"error": str(err)[:200]}
        plog.close()
    out["prediction_log_flush_5000_rows_ms"] = flushes

    out["dmatrix_under_cpu_contention"] = _contention(model, args.get("contention_reps", 300))

    # gc: the tail of a millisecond path on a heap holding Feast's registry objects
    ids = args["ids"][:1]
    gc_effect = {}
    for label in ("gc enabled", "gc.freeze() after start-up"):
        if label.startswith("gc.freeze"):
            gc.collect()
            gc.freeze()
        _, timing = _time(lambda: reader.read_found(ids, [request_at]), args["gc_reps"])
        gc_effect[label] = {"median_ms": timing["median"], "p99_ms": timing["p99"], "max_ms": timing["max"]}
    out["gc_read_found_1"] = gc_effect
    out["gc_counts_after"] = gc.get_count()
    return out


def _contention(model: Any, reps: int) -> dict[str, Any]:
    """DMatrix for one row with xgboost's default nthread (every core, OpenMP) vs nthread=1, while
    one busy-looping process per core competes for the CPU (what a shared host or a second
    worker does). Paired, interleaved; a few seconds of load, stopped afterwards."""
    import os
    import subprocess
    import sys

    import xgboost as xgb

    from bench.measure import interleaved

    row = np.zeros((1, len(model.spec.columns)))
    names = list(model.spec.columns)
    methods = {
        "DMatrix default nthread": lambda: xgb.DMatrix(row, feature_names=names),
        "DMatrix nthread=1": lambda: xgb.DMatrix(row, feature_names=names, nthread=1),
    }
    result = {}
    for label, burners in (("idle", 0), ("busy (1 spinning process per core)", os.cpu_count() or 2)):
        procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(burners)]
        try:
            times = interleaved(methods, reps=reps, warmup=10, collect=False)
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
        result[label] = {name: {"median_ms": stats(v, 1000.0)["median"], "p99_ms": stats(v, 1000.0)["p99"]}
                         for name, v in times.items()}
    return result
