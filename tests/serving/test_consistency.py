"""`make consistency` on a real served run: a real server logs predictions, the check recomputes
the offline point-in-time features of each and finds them equal; a mart rewritten after serving
is caught naming the changed feature, and the exit code follows the threshold."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from monitoring.consistency import main
from parity.config import Settings, load_settings
from serving.smoke import wait_ready
from tests.serving.test_app import Service, _ids, body

pytestmark = [pytest.mark.data, pytest.mark.server]
MART = "customer_features_weekly.parquet"


@pytest.fixture(scope="module")
def served(trained_data: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A data folder of its own (the session's build, Feast store and models; its own prediction
    log) where a real server answered known, unknown and stale customers."""
    root = tmp_path_factory.mktemp("consistency")
    for name in ("raw", "published", "feast", "registry"):
        (root / name).symlink_to(trained_data.data_dir / name, target_is_directory=True)
    settings = load_settings(root)
    svc = Service(settings)
    wait_ready(svc.base)
    ids = _ids(settings, 40)
    try:
        fresh = svc.client.post("/v1/predict", json=body(ids[:30] + ["acme:AC-999999"], svc.at))
        stale = svc.client.post("/v1/predict", json=body(ids[30:], None))  # now: the test drop ended long ago
        assert fresh.status_code == stale.status_code == 200, fresh.text + stale.text
    finally:
        assert svc.stop() in (0, -15)  # SIGTERM: graceful shutdown compacts the log into Parquet parts
    statuses = [p["status"] for r in (fresh, stale) for p in r.json()["predictions"]]
    return {"settings": settings, "statuses": statuses}


def _summary(settings: Settings) -> dict:
    return json.loads((settings.data_dir / "reports" / "consistency" / "summary.json").read_text())


def test_a_served_run_has_no_mismatch(served):
    settings = served["settings"]
    assert main(["--data-dir", str(settings.data_dir)]) == 0
    s = _summary(settings)
    ok = served["statuses"].count("ok")
    assert ok >= 25 and s["checked_rows"] == ok
    # unknown and stale answers are counted apart, never compared
    assert s["statuses"] == {status: served["statuses"].count(status) for status in set(served["statuses"])}
    assert s["statuses"].get("unknown_customer") == 1 and s["statuses"].get("stale_features") == 10
    features = {r["feature"]: r for r in s["features"]}
    assert len(features) == 17 and {r["type"] for r in features.values()} <= {"Float64", "Int64", "String"}
    assert all(r["compared"] == ok and r["mismatches"] == 0 for r in features.values()), features
    assert s["status"] == "ok" and s["alerts"] == [] and s["throughput_rows_per_second"] > 0
    assert "Per feature" in (settings.data_dir / "reports" / "consistency" / "report.html").read_text()


@pytest.fixture
def rewritten_mart(served, tmp_path: Path):
    """The published mart rewritten after serving (one feature rounded); restored afterwards."""
    mart = served["settings"].marts_dir / MART
    backup = tmp_path / "backup.parquet"
    shutil.copy(mart, backup)
    con = duckdb.connect()
    con.execute("set TimeZone='UTC'")
    tmp = tmp_path / "skewed.parquet"
    con.execute(f"copy (select * replace (round(spend_90d, 1) as spend_90d) from read_parquet('{mart}')) "
                f"to '{tmp}' (format parquet)")
    shutil.copy(tmp, mart)
    yield mart
    shutil.copy(backup, mart)


def test_a_mart_rewritten_after_serving_is_caught_naming_the_feature(served, rewritten_mart, capsys):
    settings = served["settings"]
    assert main(["--data-dir", str(settings.data_dir)]) == 3
    out = capsys.readouterr().out
    s = _summary(settings)
    assert s["status"] == "alert"
    assert [a["feature"] for a in s["alerts"]] == ["spend_90d"] and "spend_90d" in out
    skewed = next(r for r in s["features"] if r["feature"] == "spend_90d")
    assert skewed["value_mismatches"] > 0 and skewed["smape"] > 0
    assert all(e["feature"] == "spend_90d" for e in s["examples"]) and s["examples"]
    over_time = [r for r in s["over_time"] if r["feature"] == "spend_90d"]
    assert sum(r["mismatches"] for r in over_time) == skewed["mismatches"]
    # the exit code follows the configured threshold
    rate = skewed["mismatch_rate"]
    assert main(["--data-dir", str(settings.data_dir), "--set", f"consistency.max_mismatch_rate={rate}"]) == 0
    assert main(["--data-dir", str(settings.data_dir), "--set",
                 f"consistency.max_mismatch_rate={rate * 0.99}"]) == 3


def test_what_real_logs_hold_is_counted_not_mistaken(served, tmp_path: Path):
    """A log part written by hand next to the served one: integers logged as floats and a feature
    the service lacks / lacks a feature (another model's list), and a model version the registry
    does not know."""
    import orjson
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from serving.log import SCHEMA

    source = served["settings"]
    for name in ("raw", "published", "feast", "registry"):
        (tmp_path / name).symlink_to(source.data_dir / name, target_is_directory=True)
    shutil.copytree(source.predictions_dir, tmp_path / "serving" / "predictions")
    settings = load_settings(tmp_path)
    log = pd.read_parquet(source.predictions_dir)
    ok = log[(log["status"] == "ok") & (log["role"] == "primary")].head(3).reset_index(drop=True)
    floats = {k: float(v) if isinstance(v, int) else v for k, v in orjson.loads(ok.loc[0, "features"]).items()}
    other = orjson.loads(ok.loc[1, "features"])
    other.pop("spend_30d")
    other["loyalty_tier"] = "gold"
    rows = ok.assign(request_id=["hand-1", "hand-2", "hand-3"], model_version=[ok.loc[0, "model_version"],
                     ok.loc[1, "model_version"], "v9999"],
                     features=[orjson.dumps(floats).decode(), orjson.dumps(other).decode(), ok.loc[2, "features"]])
    part = settings.predictions_dir / "date=2026-01-01" / "part-hand.parquet"
    part.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(rows[SCHEMA.names], schema=SCHEMA, preserve_index=False), part)

    assert main(["--data-dir", str(settings.data_dir)]) == 3
    s = _summary(settings)
    by = {(r["feature"], r["type"]): r for r in s["features"]}
    assert by[("loyalty_tier", "not_offline")]["compared"] == 1
    assert by[("spend_30d", "not_logged")]["compared"] == 1
    assert {a["feature"] for a in s["alerts"]} == {"loyalty_tier", "spend_30d"}  # floats for ints are no mismatch
    assert all(r["mismatches"] == 0 for r in s["features"] if r["type"] in ("Int64", "Float64", "String"))
    assert s["checked_rows"] == served["statuses"].count("ok") + 2
    assert any("v9999" in note and "not compared" in note for note in s["notes"])
