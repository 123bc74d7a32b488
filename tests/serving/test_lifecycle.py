"""Model lifecycle and failure modes of the running service: 503s, hot promotion, canary,
shadow and the prediction log flush on SIGTERM."""

from __future__ import annotations

import shutil
import threading
import time

import httpx
import pandas as pd
import pytest
import yaml

from parity.config import Settings, load_settings
from parity.models.registry import current_version, list_versions, promote, rollback
from serving.smoke import wait_ready
from tests.serving.test_app import KEY, Service, _ids, body
from tests.training.conftest import private_data_dir

pytestmark = [pytest.mark.data, pytest.mark.server]


def _copy_with_registry(trained_data: Settings, feature_data: Settings, root) -> Settings:
    """A private data folder sharing the features but owning a copy of the model registry."""
    root.mkdir(parents=True, exist_ok=True)
    settings = private_data_dir(feature_data, root)
    shutil.copytree(trained_data.registry_dir, settings.registry_dir)
    return settings


def _config(tmp_path, **values) -> str:
    base = yaml.safe_load((__import__("serving.config", fromlist=["x"]).DEFAULT_CONFIG).read_text())
    for key, value in values.items():
        base[key] = value
    path = tmp_path / "serving.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def _wait_status(base: str, path: str, status: int, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(base + path, timeout=2)
            if response.status_code == status:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{path} never returned {status}")


def _live_schema(settings):
    from parity.features.feature_store import open_store
    from parity.features.retrieval import service_schema

    schema = service_schema(open_store(settings), "churn_v1")
    return lambda service: list(schema.features)


def test_no_model_promoted_gives_503_telling_the_operator(feature_data, tmp_path):
    settings = private_data_dir(feature_data, tmp_path)
    svc = Service(settings)
    try:
        ready = _wait_status(svc.base, "/readyz", 503)
        assert any("make train" in p for p in ready.json()["problems"])
        response = svc.client.post("/v1/predict", json={"customers": [{"customer_id": "acme:AC-000001"}]})
        assert response.status_code == 503 and "make train" in response.json()["detail"]
    finally:
        svc.stop()


def test_feature_registry_missing_gives_503_and_readyz_says_so(trained_data, tmp_path):
    settings = load_settings(tmp_path)
    shutil.copytree(trained_data.registry_dir, settings.registry_dir)  # a model, but no Feast registry
    svc = Service(settings)
    try:
        ready = _wait_status(svc.base, "/readyz", 503)
        assert any("make apply" in p for p in ready.json()["problems"]), ready.json()
        response = svc.client.post("/v1/predict", json={"customers": [{"customer_id": "acme:AC-000001"}]})
        assert response.status_code == 503 and "make apply" in response.json()["detail"]
        assert "Traceback" not in response.text
    finally:
        svc.stop()


def test_hot_promotion_under_concurrent_requests_fails_nothing(trained_data, feature_data, tmp_path):
    settings = _copy_with_registry(trained_data, feature_data, tmp_path / "data")
    first, second = list_versions(settings.registry_dir, "churn")[:2]
    assert current_version(settings.registry_dir, "churn") == first
    svc = Service(settings, config_path=_config(tmp_path, reload_check_seconds=0.2))
    wait_ready(svc.base)
    ids = _ids(settings, 20)
    stop, seen, failures, count = threading.Event(), set(), [], [0]

    def hammer() -> None:
        with httpx.Client(base_url=svc.base, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
            while not stop.is_set():
                response = client.post("/v1/predict", json=body(ids[:5], svc.at))
                count[0] += 1
                if response.status_code != 200:
                    failures.append(response.status_code)
                else:
                    seen.add(response.json()["model"]["version"])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        promote(settings.registry_dir, "churn", second, _live_schema(settings))
        deadline = time.monotonic() + 20
        while second not in seen and time.monotonic() < deadline:
            time.sleep(0.1)
        rollback(settings.registry_dir, "churn", _live_schema(settings))
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
        svc.stop()
    assert failures == [] and count[0] > 20
    assert {first, second} <= seen


def test_canary_split_is_deterministic_and_close_to_the_share(trained_data, feature_data, tmp_path):
    settings = _copy_with_registry(trained_data, feature_data, tmp_path / "data")
    candidate = list_versions(settings.registry_dir, "churn")[1]
    svc = Service(settings, config_path=_config(tmp_path, canary={"version": candidate, "share": 0.3},
                                                 shadow={"version": candidate}, log_flush_seconds=3600,
                                                 log_flush_rows=10**6))
    wait_ready(svc.base)
    ids = _ids(settings, 400)
    try:
        first = svc.client.post("/v1/predict", json=body(ids, svc.at)).json()
        again = svc.client.post("/v1/predict", json=body(ids[:100], svc.at)).json()
        arms = {p["customer_id"]: p["model_version"] for p in first["predictions"]}
        share = sum(v == candidate for v in arms.values()) / len(arms)
        assert 0.22 <= share <= 0.38, share
        assert all(arms[p["customer_id"]] == p["model_version"] for p in again["predictions"])
    finally:
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status shows the signal
        assert svc.stop() in (0, -15)
    log = pd.read_parquet(settings.data_dir / "serving" / "predictions")
    # every prediction is in the log after SIGTERM: 500 answered + 500 shadow scores
    assert (log["role"] != "shadow").sum() == 500
    assert (log["role"] == "shadow").sum() == 500 and set(log.loc[log.role == "shadow", "model_version"]) == {candidate}
    assert set(log.loc[log.role == "canary", "model_version"]) == {candidate}
    assert log["features"].str.contains("@").sum() == 0
    assert set(log["customer_id"]) == set(ids) and set(log["status"]) == {"ok"}
    assert log["score"].between(0, 1).all() and (log["latency_ms"] > 0).all() and log["request_id"].str.len().eq(32).all()
    # each row records the time its features were read for (the request's)
    assert (log["request_at"] == pd.Timestamp(svc.at)).all() and (log["request_at"] <= log["logged_at"]).all()
