"""POST /v1/events over a real HTTP server: per-item verdicts, scope and limits, and pushed events
changing the features /v1/predict uses (read back from the prediction log)."""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime, timedelta, timezone

import duckdb
import httpx
import pytest

from parity.config import load_settings
from serving.keys import hash_key
from serving.smoke import wait_ready
from tests.serving.test_app import KEY, Service, body
from tests.serving.test_lifecycle import _config

pytestmark = [pytest.mark.data, pytest.mark.server]


@pytest.fixture(scope="module")
def private(trained_data, tmp_path_factory):
    """The trained data's build and models, with a copy of its Feast store (pushes write it)."""
    root = tmp_path_factory.mktemp("events_serving")
    for name in ("raw", "published", "registry"):
        (root / name).symlink_to((trained_data.data_dir / name).resolve(), target_is_directory=True)
    shutil.copytree((trained_data.data_dir / "feast").resolve(), root / "feast")
    return load_settings(root)


@pytest.fixture(scope="module")
def service(private, tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "keys.yaml"
    keys.write_text(f"keys:\n  - {{name: acme-pusher, sha256: {hash_key('acme-push')}, clients: [acme], roles: [push]}}\n"
                    f"  - {{name: scorer, sha256: {hash_key('score-only')}, clients: '*', roles: [score]}}\n")
    config = _config(tmp_path_factory.mktemp("config"), api_keys_file=str(keys), log_flush_seconds=0.2,
                     max_body_bytes=200_000)
    svc = Service(private, config_path=config)
    wait_ready(svc.base)
    yield svc
    svc.stop()


def _customer(settings, client: str) -> str:
    return duckdb.connect().execute(
        f"select customer_id from read_parquet('{settings.marts_dir}/customer_features_weekly.parquet') "
        "where client_id = ? order by customer_id limit 1", [client]).fetchone()[0]


def _event(event_id: str, customer: str, **fields) -> dict:
    event = {"event_id": event_id, "customer_id": customer, "transaction_type": "purchase", "amount": 30,
             "currency": "USD", "category": "toys",
             "transacted_at": (datetime.now(timezone.utc) - timedelta(minutes=5)).replace(microsecond=0).isoformat()}
    return {**event, **fields}


def _logged_features(settings, request_id: str, timeout: float = 20.0) -> dict:
    """The features the prediction log recorded for a request (after the writer's compaction)."""
    deadline = time.monotonic() + timeout
    folder = settings.data_dir / "serving" / "predictions"
    while time.monotonic() < deadline:
        if any(folder.rglob("*.parquet")):
            rows = duckdb.connect().execute(
                f"select features from read_parquet('{folder}/**/*.parquet', hive_partitioning=false) "
                "where request_id = ?", [request_id]).fetchall()
            if rows:
                return json.loads(rows[0][0])
        time.sleep(0.2)
    raise AssertionError(f"request {request_id} not in the prediction log after {timeout} s")


def _lag_count(base: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("parity_event_online_lag_seconds_count"))


def test_pushed_events_change_the_features_predict_uses(service, private):
    customer = _customer(private, "acme")
    before = service.client.post("/v1/predict", json=body([customer], service.at))
    assert before.status_code == 200 and before.json()["predictions"][0]["status"] == "ok"
    features_before = _logged_features(private, before.json()["request_id"])
    lags = _lag_count(service.base)
    pushed = service.client.post("/v1/events", json={"events": [
        _event("srv-1", customer), _event("srv-2", customer, amount=12.5),
        _event("srv-3", customer, amount="ten"), {"event_id": "srv-4"}]})
    assert pushed.status_code == 200, pushed.text
    answer = pushed.json()
    assert (answer["accepted"], answer["rejected"]) == (2, 2)
    assert [r["status"] for r in answer["results"]] == ["accepted", "accepted", "rejected", "rejected"]
    assert answer["results"][2]["errors"] == [{"field": "amount", "reason": "wrong_type",
                                               "detail": answer["results"][2]["errors"][0]["detail"]}]
    assert answer["results"][3]["index"] == 3 and answer["results"][3]["errors"][0]["reason"] == "missing_customer_id"
    deadline = time.monotonic() + 30
    while _lag_count(service.base) < lags + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _lag_count(service.base) == lags + 2, "the accepted events never reached the online store"
    after = service.client.post("/v1/predict", json=body([customer], service.at))
    assert after.status_code == 200
    prediction = after.json()["predictions"][0]
    assert prediction["status"] == "ok"  # the snapshot's age still decides, and it is fresh at request_at
    assert prediction["features_at"] == before.json()["predictions"][0]["features_at"]
    features_after = _logged_features(private, after.json()["request_id"])
    assert features_after["purchase_count_30d"] >= 2 and features_after["spend_30d"] >= 42.5
    assert features_after["days_since_last_purchase"] != features_before["days_since_last_purchase"]
    assert features_after["tenure_days"] == features_before["tenure_days"]
    metrics = httpx.get(f"{service.base}/metrics").text
    assert 'parity_event_online_lag_seconds_bucket{client="acme",le="+Inf"}' in metrics
    assert 'parity_events_total{status="rejected"} 2.0' in metrics


def test_events_are_scoped_and_limited_like_predict(service, private):
    acme, bolt = _customer(private, "acme"), _customer(private, "bolt")
    pusher = httpx.Client(base_url=service.base, headers={"X-API-Key": "acme-push"})
    scorer = httpx.Client(base_url=service.base, headers={"X-API-Key": "score-only"})
    assert pusher.post("/v1/events", json={"events": [_event("sc-1", acme)]}).status_code == 200
    mixed = pusher.post("/v1/events", json={"events": [_event("sc-2", acme), _event("sc-3", bolt)]})
    assert mixed.status_code == 403 and "['bolt']" in mixed.json()["detail"]
    assert scorer.post("/v1/events", json={"events": [_event("sc-4", acme)]}).status_code == 403  # no push role
    assert httpx.post(f"{service.base}/v1/events", json={"events": []}).status_code == 401
    assert service.client.post("/v1/events", json={"events": []}).status_code == 422
    assert service.client.post("/v1/events", json={"events": [_event("x", acme)] * 1001}).status_code in (413, 422)
    huge = {"events": [_event(f"h-{i}", acme, category="x" * 300) for i in range(800)]}
    assert service.client.post("/v1/events", json=huge).status_code == 413
    # nothing of a refused request reached the log
    log = (private.data_dir / "events" / "log.jsonl").read_text()
    assert "sc-2" not in log and "sc-4" not in log and "h-0" not in log and "sc-1" in log


def test_api_key_is_never_in_the_event_log(private):
    assert KEY not in (private.data_dir / "events" / "log.jsonl").read_text()


def _as_written(key: str) -> str:
    """The key as a client's file may write it: blanks, the prefix in capitals, the id's case flipped."""
    client, source = key.split(":", 1)
    return f" {client.upper()}:{source.swapcase()} "


def test_predict_and_events_take_a_key_as_the_client_writes_it(service, private):
    """'cora:cr-00025' names the customer staging keys 'cora:CR-00025' (the client's declared id
    rule, vars.parsing.<client>.customer_id) in /v1/predict, /v1/events and key scopes alike."""
    cora, acme = _customer(private, "cora"), _customer(private, "acme")
    messy = _as_written(cora)
    assert messy.strip() != cora
    scored = service.client.post("/v1/predict", json=body([messy], service.at))
    assert scored.status_code == 200, scored.text
    [prediction] = scored.json()["predictions"]
    assert (prediction["customer_id"], prediction["status"]) == (cora, "ok")
    # two spellings of one customer in one request: refused like the same key twice
    twice = service.client.post("/v1/predict", json=body([cora, messy], service.at))
    assert twice.status_code == 422 and cora in twice.text
    pushed = service.client.post("/v1/events", json={"events": [_event("nm-srv-1", messy)]})
    assert pushed.status_code == 200 and pushed.json()["results"][0]["status"] == "accepted", pushed.text
    assert pushed.json()["results"][0]["customer_id"] == cora
    # a key scoped to acme pushes acme's customers however their prefix is written
    pusher = httpx.Client(base_url=service.base, headers={"X-API-Key": "acme-push"})
    scoped = pusher.post("/v1/events", json={"events": [_event("nm-srv-2", _as_written(acme))]})
    assert scoped.status_code == 200 and scoped.json()["results"][0]["customer_id"] == acme, scoped.text
