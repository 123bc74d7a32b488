"""A project with one client (`vars.clients: [acme]`) builds, materializes, trains and serves; the
other clients' raw files are neither needed nor read, and training reports its clients."""

from __future__ import annotations

import dataclasses
import re
import shutil
import signal

import duckdb
import httpx
import pytest

from parity.config import PROJECT_ROOT, project_clients
from parity.features.feature_store import apply, materialize, materialized_until
from parity.features.parity_check import run_parity
from parity.ingest.preflight import sources_from_manifest
from serving.smoke import free_port, start_service, wait_ready
from tests.conftest import build, generate_raw
from tests.training.conftest import keep_data_dir_env, small_config
from training import pipeline

pytestmark = [pytest.mark.data, pytest.mark.server]


@pytest.fixture(scope="module")
def single_client(tmp_path_factory):
    """A copy of the dbt project and feature repo listing acme only, with acme's raw files only."""
    root = tmp_path_factory.mktemp("single")
    for folder in ("dbt_project", "feature_repo"):
        shutil.copytree(PROJECT_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("target", "logs", "__pycache__"))
    project = root / "dbt_project" / "dbt_project.yml"
    text = project.read_text()
    listed = re.compile(r"^  clients: \[[^\]]*\]\n", re.M)
    assert len(listed.findall(text)) == 1, "vars.clients is expected on one line of dbt_project.yml"
    project.write_text(listed.sub("  clients: [acme]\n", text))
    settings = dataclasses.replace(generate_raw(root / "data"), project_root=root)
    for other in set(project_clients(PROJECT_ROOT)) - {"acme"}:  # no longer listed: its drops are gone too
        shutil.rmtree(settings.raw_dir / other)
    with keep_data_dir_env():
        build(settings)
        apply(settings)
        materialize(settings)
    return settings


def test_only_the_listed_client_is_built_and_online(single_client):
    import json

    settings = single_client
    assert settings.clients == ("acme",)
    sources = sources_from_manifest(json.loads(settings.dbt_manifest_path.read_text()))
    # the pre-flight never asks for bolt's files (the fresh-events log is every client's source)
    assert {s.client for s in sources} - {"events"} == {"acme"}
    clients = duckdb.connect().execute(
        f"select distinct client_id from read_parquet('{settings.marts_dir}/customer_features_weekly.parquet')").fetchall()
    assert clients == [("acme",)]
    with keep_data_dir_env():
        report = run_parity(settings, sample_times=2)
    assert report.ok, report.summary()


def test_single_client_with_an_all_null_feature_trains_and_reports_it(single_client, capsys):
    settings = single_client
    mart = settings.marts_dir / "customer_features_weekly.parquet"
    con = duckdb.connect()
    con.execute("set TimeZone='UTC'")
    # acme stops sending countries: a String feature null on every row (Arrow `null` in pandas)
    con.execute(f"copy (select * replace (cast(null as varchar) as country) from read_parquet('{mart}')) "
                f"to '{mart}.tmp' (format parquet)")
    (settings.marts_dir / "customer_features_weekly.parquet.tmp").replace(mart)
    with keep_data_dir_env():
        materialize(settings)
        assert run_parity(settings, sample_times=2).ok
        result = pipeline.run(settings, small_config())
    composition = result.metadata["clients"]
    assert list(composition["trained_on"]) == ["acme"] and composition["trained_on"]["acme"]["positives"] > 0
    assert composition["features_null_on_every_row"] == ["country"]
    assert "country" in capsys.readouterr().err

    # and it serves: the registered model scores acme's customers over HTTP
    with keep_data_dir_env():
        at = materialized_until(settings).isoformat()
    ids = [r[0] for r in duckdb.connect().execute(
        f"select distinct customer_id from read_parquet('{mart}') order by 1 limit 5").fetchall()]
    port = free_port()
    proc = start_service(str(settings.data_dir), port, "k1")
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        response = httpx.post(f"http://127.0.0.1:{port}/v1/predict", timeout=30, headers={"Authorization": "Bearer k1"},
                              json={"customers": [{"customer_id": i, "request_at": at} for i in ids]})
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["status"] for p in predictions] == ["ok"] * 5, predictions
    assert all(0.0 <= p["score"] <= 1.0 for p in predictions)
