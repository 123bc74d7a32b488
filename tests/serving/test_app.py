"""The prediction API over a real HTTP server (uvicorn in a child process) on loopback."""

from __future__ import annotations

import concurrent.futures as cf
import signal
import statistics
import time

import duckdb
import httpx
import numpy as np
import pandas as pd
import pytest

from parity.features.feature_store import materialized_until, open_store
from parity.features.retrieval import service_schema, training_frame
from parity.models.loaded import load_version
from parity.models.registry import current_version
from serving.smoke import free_port, start_service, wait_ready

pytestmark = [pytest.mark.data, pytest.mark.server]
KEY = "test-key-123"


def _ids(settings, n: int) -> list[str]:
    return [r[0] for r in duckdb.connect().execute(
        f"select distinct customer_id from read_parquet('{settings.marts_dir}/customer_features_weekly.parquet') "
        f"order by customer_id limit {n}").fetchall()]


def as_of(settings) -> str:
    """A request time the test data's features are fresh at: the materialization time (the test
    drop ends on a fixed date, so "now" finds every customer's features stale)."""
    from parity.features.feature_store import materialized_until
    from tests.training.conftest import keep_data_dir_env

    with keep_data_dir_env():  # opening the store sets PARITY_DATA_DIR
        return materialized_until(settings).isoformat()


def body(ids, at: str | None) -> dict:
    """A /v1/predict body for `ids` at request time `at` (None: the server's now)."""
    return {"customers": [{"customer_id": i} if at is None else {"customer_id": i, "request_at": at} for i in ids]}


class Service:
    """A running `python -m serving` child process."""

    def __init__(self, settings, config_path=None, keys=KEY):
        try:
            self.at = as_of(settings)
        except Exception:  # no Feast registry or never materialized: the test expects a 503
            self.at = None
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        if config_path:
            import os
            import subprocess
            import sys

            env = {**os.environ, "PARITY_DATA_DIR": str(settings.data_dir), "PARITY_API_KEYS": keys}
            self.proc = subprocess.Popen([sys.executable, "-m", "serving", "--config", str(config_path),
                                          "--port", str(self.port), "--log-level", "warning"], env=env)
        else:
            self.proc = start_service(str(settings.data_dir), self.port, keys, {"PARITY_SERVE_PORT": str(self.port)})
        self.client = httpx.Client(base_url=self.base, timeout=30, headers={"Authorization": f"Bearer {KEY}"})

    def stop(self) -> int:
        self.client.close()
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def service(trained_data):
    svc = Service(trained_data)
    wait_ready(svc.base)
    yield svc
    svc.stop()


def predict(svc, ids, **headers):
    return svc.client.post("/v1/predict", json=body(ids, svc.at), headers=headers)


def test_health_ready_metrics_are_open(service):
    bare = httpx.Client(base_url=service.base)
    assert bare.get("/healthz").json() == {"status": "ok"}
    ready = bare.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert "parity_requests_total" in bare.get("/metrics").text
    assert bare.get("/openapi.json").json()["paths"]["/v1/predict"]


def test_auth(service, trained_data):
    ids = _ids(trained_data, 1)
    bare = httpx.Client(base_url=service.base)
    request = body(ids[:1], service.at)
    assert bare.post("/v1/predict", json=request).status_code == 401
    assert bare.post("/v1/predict", json=request, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert bare.post("/v1/predict", json=request, headers={"X-API-Key": KEY}).status_code == 200
    assert bare.post("/v1/predict", json=request, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert bare.get("/v1/model").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"customers": [', "body"),
        ({"customers": []}, "customers"),
        ({"customers": [{"customer_id": 5}]}, "customers.0.customer_id"),
        ({"customers": [{"customer_id": "acme:AC-000001"}, {"customer_id": "acme:AC-000001"}]}, "duplicate"),
        ({"customers": [{"customer_id": f"acme:AC-{i:06d}"} for i in range(1001)]}, "customers"),
        ({"customers": [{"customer_id": "acme:AC-000001", "request_at": "yesterday"}]}, "request_at"),
        ({"clients": []}, "customers"),
    ],
)
def test_bad_input_is_422_naming_the_field(service, body, field):
    if isinstance(body, str):
        response = service.client.post("/v1/predict", content=body, headers={"Content-Type": "application/json"})
    else:
        response = service.client.post("/v1/predict", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert "Traceback" not in response.text


def test_unknown_customers_are_marked_and_others_answered(service, trained_data):
    ids = _ids(trained_data, 3)
    answer = predict(service, [ids[0], "bolt:b-99999999", ids[1]]).json()
    statuses = [p["status"] for p in answer["predictions"]]
    assert statuses == ["ok", "unknown_customer", "ok"]
    unknown = answer["predictions"][1]
    assert unknown["score"] is None and unknown["decision"] is None and unknown["contributions"] == []
    ok = answer["predictions"][0]
    assert 0.0 <= ok["score"] <= 1.0 and len(ok["contributions"]) == 5
    assert ok["decision"] == (ok["score"] >= answer["model"]["threshold"])
    metrics = httpx.get(f"{service.base}/metrics").text
    unknown_count = [float(line.split()[-1]) for line in metrics.splitlines()
                     if line.startswith("parity_unknown_customers_total ")]
    assert unknown_count and unknown_count[0] >= 1.0


def test_online_score_equals_model_on_offline_point_in_time_features(service, trained_data):
    """Parity extends to predictions: same model on offline PIT features at T gives the same score."""
    store = open_store(trained_data)
    as_of = materialized_until(trained_data)
    ids = _ids(trained_data, 40)
    answer = service.client.post("/v1/predict", json={"customers": [
        {"customer_id": i, "request_at": as_of.isoformat()} for i in ids]}).json()
    model = load_version(trained_data.registry_dir, "churn", answer["model"]["version"])
    offline = training_frame(store, pd.DataFrame({"customer_id": ids, "event_timestamp": as_of}), model.feature_service)
    expected = model.predict_proba(model.prepare(offline))[:, 1]
    online = np.array([p["score"] for p in answer["predictions"]])
    np.testing.assert_allclose(online, expected, rtol=0, atol=1e-9)


def test_model_endpoint_matches_registry(service, trained_data):
    info = service.client.get("/v1/model").json()
    assert info["version"] == current_version(trained_data.registry_dir, "churn")
    store = open_store(trained_data)
    assert [f[0] for f in info["metadata"]["features"]] == service_schema(store, info["feature_service"]).names


def test_bounded_load_16_clients_no_errors(service, trained_data):
    ids = _ids(trained_data, 200)
    latencies, errors = [], 0

    def worker(w: int) -> tuple[list[float], int]:
        lat, err = [], 0
        with httpx.Client(base_url=service.base, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as c:
            for k in range(25):
                chunk = [ids[(w * 25 + k) % len(ids)]]
                t0 = time.perf_counter()
                r = c.post("/v1/predict", json=body(chunk, service.at))
                lat.append(time.perf_counter() - t0)
                err += r.status_code != 200 or r.json()["predictions"][0]["status"] != "ok"
        return lat, err

    with cf.ThreadPoolExecutor(16) as pool:
        for lat, err in pool.map(worker, range(16)):
            latencies += lat
            errors += err
    latencies.sort()
    p50, p99 = statistics.median(latencies), latencies[int(0.99 * len(latencies)) - 1]
    print(f"\nload: {len(latencies)} requests, 16 clients, p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, errors {errors}")
    assert errors == 0 and len(latencies) == 400
