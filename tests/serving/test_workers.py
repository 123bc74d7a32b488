"""Multi-worker serving (`python -m serving --workers 2`): both workers answer, a promotion under
load fails nothing and reaches every worker, every answered prediction is logged exactly once
(per-worker parts), and /metrics adds up over the workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import httpx
import pandas as pd
import pytest

from parity.models.registry import current_version, list_versions, promote
from serving.smoke import wait_ready
from tests.serving.test_app import KEY, _ids, as_of, body, free_port
from tests.serving.test_lifecycle import _config, _copy_with_registry, _live_schema

pytestmark = [pytest.mark.data, pytest.mark.server]


def _start(settings, config_path, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "PARITY_DATA_DIR": str(settings.data_dir), "PARITY_API_KEYS": KEY}
    return subprocess.Popen([sys.executable, "-m", "serving", "--config", str(config_path), "--port", str(port),
                             "--log-level", "warning", "--workers", str(workers)], env=env)


def _metric_by_worker(text: str, name: str, **labels: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                worker = sample.labels["worker"]
                out[worker] = out.get(worker, 0.0) + sample.value
    return out


def test_two_workers_promotion_under_load_log_once_and_metrics_add_up(trained_data, feature_data, tmp_path):
    settings = _copy_with_registry(trained_data, feature_data, tmp_path / "data")
    first, second = list_versions(settings.registry_dir, "churn")[:2]
    assert current_version(settings.registry_dir, "churn") == first
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(settings, _config(tmp_path, reload_check_seconds=0.2), port, workers=2)
    at = as_of(settings)
    ids = _ids(settings, 20)
    answered: list[tuple[str, str, int]] = []  # (request_id, model version, customers)
    failures: list[int] = []
    lock, stop = threading.Lock(), threading.Event()

    def hammer(offset: int) -> None:
        chosen = ids[offset:offset + 5]
        while not stop.is_set():
            # a new connection every 10 requests: each worker listens on its own socket and the
            # kernel picks one per connection (by address hash), so 4 long-lived connections
            # could all land on one worker
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
                for _ in range(10):
                    if stop.is_set():
                        break
                    response = client.post("/v1/predict", json=body(chosen, at))
                    with lock:
                        if response.status_code != 200:
                            failures.append(response.status_code)
                            continue
                        answer = response.json()
                        answered.append((answer["request_id"], answer["model"]["version"],
                                         len(answer["predictions"])))

    try:
        wait_ready(base)
        threads = [threading.Thread(target=hammer, args=(i * 5,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        promote(settings.registry_dir, "churn", second, _live_schema(settings))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # each worker polls the pointer on its own
            with lock:
                late = [v for _, v, _ in answered[-40:]]
            if late and set(late) == {second}:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        time.sleep(1.5)  # every worker's metrics snapshot is at most 1 s old
        metrics = httpx.get(base + "/metrics", timeout=10).text
    finally:
        stop.set()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0
    assert failures == [] and len(answered) > 40
    versions = [v for _, v, _ in answered]
    assert first in versions and set(versions[-20:]) == {second}, Counter(versions)

    served = _metric_by_worker(metrics, "parity_requests_total", path="/v1/predict", status="200")
    assert set(served) == {"0", "1"} and all(v > 0 for v in served.values()), served  # both workers answered
    assert sum(served.values()) == len(answered)
    assert metrics.count("# TYPE parity_requests_total counter") == 1

    parts = sorted((settings.data_dir / "serving" / "predictions").rglob("part-*.parquet"))
    log = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    answers = log[log["role"] != "shadow"]  # a row per answered customer (primary or canary arm)
    logged = Counter(answers["request_id"])
    assert set(logged) == {rid for rid, _, _ in answered}
    wrong = [(rid, n, answers[answers["request_id"] == rid][["customer_id", "role", "status"]].values.tolist())
             for rid, _, n in answered if logged[rid] != n]
    assert not wrong, wrong[:3]  # each answered customer once, none twice
    assert not answers.duplicated(["request_id", "customer_id"]).any()
    writers = {p.name.split("-")[2] for p in parts}  # part-<HHMMSS>-<pid>-<id>-<n>.parquet
    assert len(writers) >= 2, writers
    assert not list((settings.data_dir / "serving" / "predictions" / "_wal").glob("*.wal"))
