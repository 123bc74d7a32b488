"""Limits before work, over a real uvicorn process: the key is checked before the body is read,
bodies are capped while streamed, and request_at is bounded."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from serving.smoke import wait_ready
from tests.serving.test_app import KEY, Service

pytestmark = [pytest.mark.data, pytest.mark.server]
BIG = 60 * 1024 * 1024


@pytest.fixture(scope="module")
def guarded(trained_data, tmp_path_factory):
    from tests.serving.test_lifecycle import _copy_with_registry

    settings = _copy_with_registry(trained_data, trained_data, tmp_path_factory.mktemp("guard") / "data")
    svc = Service(settings)
    wait_ready(svc.base)
    yield svc
    svc.stop()


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def _post_big_without_key(port: int, out: list) -> None:
    """Headers announcing 60 MB, the answer read before any body byte, then the 60 MB pushed."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {BIG}\r\n\r\n".encode())
        answer = sock.recv(4096).decode("latin-1")
        chunk = b"{" * (1024 * 1024)
        sent = 0
        try:
            for _ in range(BIG // len(chunk)):
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server closed the connection: it never reads the body
            pass
        out.append((answer.split("\r\n", 1)[0], sent))


def test_unauthenticated_60mb_bodies_are_refused_before_reading_them(guarded):
    before = _rss_kb(guarded.proc.pid)
    results: list = []
    threads = [threading.Thread(target=_post_big_without_key, args=(guarded.port, results)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    growth_mb = (_rss_kb(guarded.proc.pid) - before) / 1024
    print(f"\n4 x 60 MB without a key: {[r[0] for r in results]}, RSS growth {growth_mb:.1f} MB, "
          f"bytes the client got to send {[r[1] for r in results]}")
    assert [r[0] for r in results] == ["HTTP/1.1 401 Unauthorized"] * 4
    assert growth_mb < 50
    metrics = httpx.get(f"{guarded.base}/metrics").text
    assert 'parity_denied_requests_total{reason="missing_key"} 4.0' in metrics


def test_the_key_is_checked_before_the_body_is_parsed(guarded):
    bare = httpx.Client(base_url=guarded.base)
    malformed = bare.post("/v1/predict", content=b'{"customers": [', headers={"Content-Type": "application/json"})
    assert malformed.status_code == 401 and malformed.headers["www-authenticate"] == "Bearer"
    wrong = bare.post("/v1/predict", content=b"{", headers={"X-API-Key": "wrong"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "invalid API key"


def test_bodies_over_the_limit_are_413_declared_or_streamed(guarded):
    client = httpx.Client(base_url=guarded.base, headers={"Authorization": f"Bearer {KEY}"})
    declared = client.post("/v1/predict", content=b" " * (2 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert declared.status_code == 413 and "max_body_bytes" in declared.json()["detail"]

    def chunks():  # no Content-Length: chunked transfer, the limit applies while reading
        for _ in range(40):
            yield b" " * 65536

    streamed = client.post("/v1/predict", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    ok = client.post("/v1/predict", json={"customers": [{"customer_id": "acme:nobody"}]})
    assert ok.status_code == 200  # the service is unharmed


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00Z", "2999-01-01T00:00:00Z"])
def test_request_at_outside_the_window_is_422_naming_the_customer(guarded, at):
    client = httpx.Client(base_url=guarded.base, headers={"Authorization": f"Bearer {KEY}"})
    response = client.post("/v1/predict", json={"customers": [{"customer_id": "acme:x"},
                                                               {"customer_id": "acme:y", "request_at": at}]})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "customers.1.request_at"
    assert "outside" in response.json()["detail"]


def test_a_client_scoped_key_scores_only_its_clients_customers(trained_data, tmp_path):
    from serving.keys import hash_key
    from tests.serving.test_app import body
    from tests.serving.test_lifecycle import _config

    keys = tmp_path / "keys.yaml"
    keys.write_text(f"keys:\n  - {{name: acme-crm, sha256: {hash_key('acme-secret')}, clients: [acme], roles: [score]}}\n"
                    f"  - {{name: auditor, sha256: {hash_key('read-secret')}, clients: '*', roles: [read_model]}}\n")
    svc = Service(trained_data, config_path=_config(tmp_path, api_keys_file=str(keys), log_flush_seconds=0.2))
    try:
        wait_ready(svc.base)
        acme = httpx.Client(base_url=svc.base, headers={"X-API-Key": "acme-secret"})
        auditor = httpx.Client(base_url=svc.base, headers={"X-API-Key": "read-secret"})
        ok = acme.post("/v1/predict", json=body(["acme:AC-000001"], svc.at))
        assert ok.status_code == 200
        mixed = acme.post("/v1/predict", json=body(["acme:AC-000001", "bolt:b-00001"], svc.at))
        assert mixed.status_code == 403 and "['bolt']" in mixed.json()["detail"] and "acme-secret" not in mixed.text
        assert acme.get("/v1/model").status_code == 403  # no read_model role
        assert auditor.get("/v1/model").status_code == 200
        assert auditor.post("/v1/predict", json=body(["acme:AC-000001"], svc.at)).status_code == 403
        assert svc.client.post("/v1/predict", json=body(["acme:AC-000001"], svc.at)).status_code == 200  # env key
        metrics = httpx.get(f"{svc.base}/metrics").text
        assert 'parity_denied_requests_total{reason="client_scope"} 1.0' in metrics
        assert 'parity_denied_requests_total{reason="role"} 2.0' in metrics
    finally:
        svc.stop()
