"""Stale features over the real server and online store: a customer whose newest feature row is
older than dbt's `vars.max_feature_age_days` at request time gets `stale_features` (the row's
time, its age and the client's watermark), never a score."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parity.config import Settings, load_settings
from parity.features.freshness import WATERMARKS_FILE, max_feature_age
from serving.schemas import PredictResponse
from serving.smoke import wait_ready
from tests.serving.test_app import Service, body

pytestmark = [pytest.mark.data, pytest.mark.server]
WATERMARK = datetime(2026, 5, 30, tzinfo=timezone.utc)


def _overlay(source: Path, target: Path, inside: tuple[str, ...]) -> None:
    """`target` reads `source` through symlinks, except along the path `inside` (real folders),
    whose last folder links each file but the client watermarks (the test writes its own)."""
    target.mkdir(parents=True, exist_ok=True)
    for child in source.iterdir():
        if child.name in ("serving", WATERMARKS_FILE):
            continue
        if inside and child.name == inside[0] and child.is_dir():
            _overlay(child, target / child.name, inside[1:])
        else:
            (target / child.name).symlink_to(child, target_is_directory=child.is_dir())


@pytest.fixture(scope="module")
def with_watermarks(trained_data: Settings, tmp_path_factory) -> Settings:
    """The trained data folder with a private marts folder holding a client_watermarks mart
    (the interface dbt's `client_watermarks` model writes) that knows acme only."""
    root = tmp_path_factory.mktemp("fresh")
    shared_marts = trained_data.marts_dir.resolve()
    inside = trained_data.marts_dir.relative_to(trained_data.data_dir).parts
    _overlay(trained_data.data_dir, root, inside)
    settings = load_settings(root)
    assert settings.marts_dir.resolve() != shared_marts and not settings.marts_dir.is_symlink()
    pq.write_table(pa.table({
        "client_id": ["acme"],
        "watermark_at": pa.array([WATERMARK], pa.timestamp("us", tz="UTC")),
        "n_snapshots": pa.array([1], pa.int64()),
    }), settings.marts_dir / WATERMARKS_FILE)
    return settings


def _two_clients(settings: Settings) -> list[str]:
    """Three customers of acme (which has a watermark) and three of bolt (which has none)."""
    return [r[0] for r in duckdb.connect().execute(
        f"select customer_id from (select distinct customer_id from read_parquet("
        f"'{settings.marts_dir}/customer_features_weekly.parquet')) where customer_id like 'acme:%' "
        "or customer_id like 'bolt:%' qualify row_number() over (partition by split_part(customer_id, ':', 1) "
        "order by customer_id) <= 3 order by customer_id").fetchall()]


def _newest_rows(settings: Settings, ids: list[str], at: datetime) -> dict[str, datetime]:
    rows = duckdb.connect().execute(
        f"select customer_id, max(snapshot_at) from read_parquet('{settings.marts_dir}/customer_features_weekly.parquet') "
        "where snapshot_at <= ? group by 1", [at]).fetchall()
    return {k: pd.Timestamp(t).tz_convert("UTC") for k, t in rows if k in set(ids)}


def test_stale_features_are_reported_with_age_and_watermark_never_scored(with_watermarks):
    settings = with_watermarks
    limit = max_feature_age()
    svc = Service(settings)
    try:
        wait_ready(svc.base)
        ids = _two_clients(settings)
        fresh = svc.client.post("/v1/predict", json=body(ids + ["acme:AC-999999"], svc.at)).json()
        PredictResponse.model_validate(fresh)
        predictions = fresh["predictions"]
        assert [p["status"] for p in predictions] == ["ok"] * len(ids) + ["unknown_customer"]
        # the event time the online read returns is the customer's newest snapshot in the mart
        newest = _newest_rows(settings, ids, datetime.fromisoformat(svc.at))
        for p in predictions[:-1]:
            assert pd.Timestamp(p["features_at"]) == newest[p["customer_id"]]
            age = (pd.Timestamp(svc.at) - newest[p["customer_id"]]).total_seconds() / 86400
            assert p["feature_age_days"] == pytest.approx(age)
            acme = p["customer_id"].startswith("acme:")
            assert (pd.Timestamp(p["watermark_at"]) == WATERMARK) if acme else p["watermark_at"] is None
        assert predictions[-1]["features_at"] is None and predictions[-1]["feature_age_days"] is None

        # just inside and just past the limit, counted from each customer's own row
        first = newest[ids[0]]
        inside, past = first + limit - timedelta(hours=1), first + limit + timedelta(hours=1)
        request = {"customers": [{"customer_id": ids[0], "request_at": inside.isoformat()},
                                 {"customer_id": ids[1], "request_at": (newest[ids[1]] + limit + timedelta(hours=1)).isoformat()}]}
        near = svc.client.post("/v1/predict", json=request).json()["predictions"]
        assert near[0]["status"] == "ok" and near[0]["score"] is not None
        assert near[1]["status"] == "stale_features"
        stale = svc.client.post("/v1/predict", json=body(ids, past.isoformat())).json()
        PredictResponse.model_validate(stale)
        for p in stale["predictions"]:
            assert p["status"] == "stale_features", p
            assert p["score"] is None and p["decision"] is None and p["contributions"] == []
            assert p["segment_id"] is None and p["feature_age_days"] > limit.total_seconds() / 86400
            assert "not scored" in p["detail"]
            if p["customer_id"].startswith("acme:"):
                assert WATERMARK.date().isoformat() in p["detail"]
            else:
                assert "watermark is unknown" in p["detail"]
        metrics = httpx.get(f"{svc.base}/metrics").text
        counted = [float(line.split()[-1]) for line in metrics.splitlines()
                   if line.startswith("parity_stale_features_total ")]
        assert counted == [len(ids) + 1]
    finally:
        assert svc.stop() in (0, -15)
    log = pd.read_parquet(settings.data_dir / "serving" / "predictions")
    stale_rows = log[log["status"] == "stale_features"]
    assert len(stale_rows) == len(ids) + 1 and stale_rows["score"].isna().all()
    assert stale_rows["features"].notna().all()  # what was not scored on is kept for the monitor
