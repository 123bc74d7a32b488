"""What an operator breaks, over a real uvicorn process: a garbage or dangling `current.json`
keeps the loaded model serving and is reported; a deleted or emptied online store is noticed."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time

import httpx
import pytest

from parity.models.registry import POINTER_FILE
from serving.smoke import wait_ready
from tests.serving.test_app import Service, _ids, predict
from tests.serving.test_lifecycle import _config, _copy_with_registry, _wait_status

pytestmark = [pytest.mark.data, pytest.mark.server]


def _ready_until(base: str, check, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(f"{base}/readyz", timeout=5).json()
        if check(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def _gauge(base: str, name: str) -> float:
    lines = [line for line in httpx.get(f"{base}/metrics").text.splitlines() if line.startswith(name + " ")]
    return float(lines[0].split()[-1])


def test_a_bad_pointer_keeps_the_loaded_model_and_is_reported(trained_data, feature_data, tmp_path):
    settings = _copy_with_registry(trained_data, feature_data, tmp_path / "data")
    pointer = settings.registry_dir / "churn" / POINTER_FILE
    good = pointer.read_text()
    svc = Service(settings, config_path=_config(tmp_path, reload_check_seconds=0.1))
    try:
        wait_ready(svc.base)
        ids = _ids(settings, 3)
        version = predict(svc, ids).json()["model"]["version"]
        for broken, expected in (("", "unreadable"), ("{garbage", "unreadable"),
                                 (json.dumps({**json.loads(good), "version": "v0099",
                                              "history": ["v0099"]}), "v0099")):
            pointer.write_text(broken)
            body = _ready_until(svc.base, lambda b, want=expected: want in (b["registry_problem"] or ""))
            assert body["status"] == "ready" and expected in body["registry_problem"], body
            assert any(expected in note for note in body["notes"])
            answer = predict(svc, ids)
            assert answer.status_code == 200 and answer.json()["model"]["version"] == version
            assert _gauge(svc.base, "parity_model_pointer_ok") == 0.0
        pointer.write_text(good)
        body = _ready_until(svc.base, lambda b: b["registry_problem"] is None)
        assert body["registry_problem"] is None and _gauge(svc.base, "parity_model_pointer_ok") == 1.0
    finally:
        svc.stop()


def test_a_deleted_or_emptied_online_store_is_not_ready(trained_data, feature_data, tmp_path):
    settings = _copy_with_registry(trained_data, feature_data, tmp_path / "data")
    # a private copy of the Feast folder: this test deletes its online store
    (settings.data_dir / "feast").unlink()
    shutil.copytree(feature_data.feast_dir, settings.feast_dir)
    store = settings.feast_dir / "online_store.db"
    assert store.exists()
    svc = Service(settings)
    try:
        wait_ready(svc.base)
        ids = _ids(settings, 3)
        assert predict(svc, ids).status_code == 200
        emptied = settings.feast_dir / "emptied.db"
        shutil.copy(store, emptied)
        with sqlite3.connect(emptied) as con:  # the same tables, no rows: what `make apply` creates
            for (table,) in con.execute("select name from sqlite_master where type = 'table'").fetchall():
                con.execute(f'delete from "{table}"')
        store.unlink()
        ready = _wait_status(svc.base, "/readyz", 503, timeout=30).json()
        assert any("was deleted" in p and "make apply" in p for p in ready["problems"]), ready
        time.sleep(2.1)  # the request path re-checks the store every 2 s
        refused = predict(svc, ids)
        assert refused.status_code == 503 and "was deleted" in refused.json()["detail"]
        emptied.rename(store)  # a new, empty store file at the same path
        body = _ready_until(svc.base, lambda b: any("no feature rows" in p for p in b["problems"]))
        assert body["status"] == "not ready" and any("make materialize" in p for p in body["problems"]), body
        time.sleep(2.1)
        refused = predict(svc, ids)
        assert refused.status_code == 503 and "no feature rows" in refused.json()["detail"]
    finally:
        svc.stop()
