"""`python -m monitoring` on generated data with bolt's last 8 weeks shifted (datagen --drift-client)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from batch.config import load_config as load_batch_config
from batch.pipeline import run_score
from batch.score import to_arrow
from monitoring.__main__ import main
from parity.config import load_settings
from parity.features.feature_store import materialized_until, open_store
from parity.features.freshness import age_days, max_feature_age, verdict
from parity.features.online import EVENT_AT, OnlineReader
from parity.models.loaded import load_current
from parity.models.registry import current_version
from tests.batch.fixtures import DRIFT_CLIENT, private_copy
from tests.training.conftest import SMALL

pytestmark = pytest.mark.data
NOW = "2026-06-01T12:00:00Z"  # half a day after the test drops' end (tests/conftest.py TEST_END_DATE)
NOW_DT = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)


def write_serving_log(settings, drop_feature: str | None = None, n: int | None = None) -> int:
    """A prediction log as the service writes it (serving.log.SCHEMA), from the online store; returns
    how many of its rows were scored (stale ones are logged without a score)."""
    from parity.jsonable import features_json
    from serving.log import SCHEMA

    model = load_current(settings)
    reader = OnlineReader(open_store(settings), model.feature_service)
    ids = sorted(pd.read_parquet(settings.marts_dir / "customer_features_weekly.parquet",
                                 columns=["customer_id"])["customer_id"].unique())[:n]
    at = materialized_until(settings)
    frame = reader.read(ids, at)
    scores = model.predict_proba(model.prepare(frame))[:, 1]
    names = [name for name, _ in reader.schema.features]
    # the features column exactly as the service writes it: its encoder on its own online read
    logged = features_json(reader.read_columns(ids, at), range(len(ids)), names)
    # as the service answers: a customer whose newest features are older than the limit (a client
    # behind the others, e.g. the monthly demo client) gets stale_features and no score
    limit = max_feature_age(settings.project_root)
    statuses = [verdict(age_days(at, t), limit) for t in reader.read_columns(ids, at)[EVENT_AT]]
    rows = []
    for i, cid in enumerate(ids):
        snapshot = json.loads(logged[i])
        snapshot.pop(drop_feature, None)
        ok = statuses[i] == "ok"
        rows.append({"request_id": f"r{i // 100}", "logged_at": NOW_DT - timedelta(hours=1), "customer_id": cid,
                     "model_version": model.version, "role": "primary", "status": statuses[i],
                     "score": float(scores[i]) if ok else None,
                     "decision": bool(scores[i] >= model.threshold) if ok else None, "latency_ms": 2.0,
                     "features": json.dumps(snapshot)})
    folder = settings.data_dir / "serving" / "predictions" / "date=2026-06-01"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), folder / "part-0.parquet")
    return sum(status == "ok" for status in statuses)  # the scored rows monitoring compares


class Tags(HTMLParser):
    """Counts start tags and collects img sources and headings."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.images: list[str] = []
        self.headings: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag == "img":
            self.images.append(dict(attrs).get("src", ""))
        self._in_heading = tag in ("h1", "h2", "h3")

    def handle_data(self, data):
        if self._in_heading and data.strip():
            self.headings.append(data.strip())
            self._in_heading = False


@pytest.fixture(scope="module")
def monitored(drift_data, tmp_path_factory):
    """Batch at the materialization time + one backfilled at a labelled as-of time, serving logs,
    then `python -m monitoring --now NOW`."""
    settings = private_copy(drift_data, tmp_path_factory.mktemp("monitor"))
    model = load_current(settings)
    labelled = pd.Timestamp(model.metadata["training_window"]["test"]["as_of_max"]).to_pydatetime()
    run_score(settings, load_batch_config(), as_of=labelled)
    run_score(settings, load_batch_config())
    logged = write_serving_log(settings)
    code = main(["--data-dir", str(settings.data_dir), "--now", NOW])
    out = settings.data_dir / "reports" / "monitoring"
    summary = json.loads((out / "summary.json").read_text())
    return {"settings": settings, "code": code, "summary": summary, "report": out / "report.html",
            "logged": logged, "labelled": labelled}


def test_the_shifted_client_is_flagged_and_the_others_are_not(monitored):
    assert monitored["code"] == 3
    summary = monitored["summary"]
    assert summary["status"] == "alert"
    drifted = {(r["sample"], r["group"], r["feature"]) for r in summary["feature_drift"] if r["status"] == "drift"}
    for sample in ("batch", "serving"):
        assert (sample, DRIFT_CLIENT, "avg_basket_90d") in drifted
        assert (sample, DRIFT_CLIENT, "purchase_count_30d") in drifted
    assert {group for _, group, _ in drifted} == {DRIFT_CLIENT}
    bolt = next(r for r in summary["feature_drift"] if r["sample"] == "batch" and r["group"] == DRIFT_CLIENT
                and r["feature"] == "avg_basket_90d")
    assert bolt["p_value"] < 0.01 and bolt["psi"] >= 0.25
    checks = {(a["check"], a["subject"]) for a in summary["alerts"]}
    assert ("feature drift", f"batch/{DRIFT_CLIENT}/avg_basket_90d") in checks


def test_serving_and_batch_samples_are_compared_on_the_training_population(monitored):
    samples = monitored["summary"]["samples"]
    assert samples["serving"]["rows"] == monitored["logged"]
    assert 0 < samples["batch"]["compared_rows"] < samples["batch"]["rows"]
    assert any("outside the training population" in m for m in monitored["summary"]["messages"])
    prediction = {(r["sample"], r["group"]): r for r in monitored["summary"]["prediction_drift"]}
    assert prediction[("batch", "all")]["against"] == "test-period scores"
    # serving scores come from the same features at the same time: the same distribution as batch
    assert abs(prediction[("batch", "all")]["mean_current"] - prediction[("serving", "all")]["mean_current"]) < 0.02


def test_realised_performance_on_the_backfilled_batch(monitored):
    rows = [r for r in monitored["summary"]["performance"] if r["source"] == "batch"]
    assert len(rows) == 1 and pd.Timestamp(rows[0]["label_as_of_at"]) == pd.Timestamp(monitored["labelled"])
    model = load_current(monitored["settings"])
    assert rows[0]["training"] == pytest.approx(model.metadata["metrics"]["test"]["xgboost"]["PR-AUC"]["value"])
    assert 0 < rows[0]["PR-AUC"] <= 1 and rows[0]["rows"] > 50
    assert rows[0]["status"] in ("ok", "alert")


def test_the_report_renders_tables_and_embedded_plots(monitored):
    parser = Tags()
    parser.feed(monitored["report"].read_text())
    assert parser.counts.get("table", 0) >= 6
    pngs = [src for src in parser.images if src.startswith("data:image/png;base64,") and len(src) > 1000]
    assert len(pngs) >= 4  # PSI bars, distributions, scores, trend
    for heading in ("Alerts", "Freshness", "Feature drift", "Prediction drift", "Realised performance",
                    "Online/offline consistency", "Trend"):
        assert heading in parser.headings
    assert f"batch/{DRIFT_CLIENT}/avg_basket_90d" in monitored["report"].read_text()
    # the consistency section re-checked the logged batch and serving rows against offline retrieval
    consistency = monitored["summary"]["consistency"]
    assert consistency["checked_rows"] > monitored["logged"] and len(consistency["features"]) >= 17


def test_bad_inputs_give_messages_not_crashes(drift_data, tmp_path):
    """No serving log, then: empty latest batch, a client whose files stopped, a feature missing
    from the serving log."""
    settings = private_copy(drift_data, tmp_path / "d", copies=("raw",))
    report = settings.data_dir / "reports" / "monitoring"
    code = main(["--data-dir", str(settings.data_dir), "--now", NOW])
    first = json.loads((report / "summary.json").read_text())
    # nothing to compare; every client is fresh except a monthly deliverer whose last drop is
    # weeks old at NOW (its manifest's last_drop_at; its next drop is overdue): only that is said
    overdue = {f"client {c}" for c in settings.clients if json.loads(
        (settings.raw_dir / c / "_manifest.json").read_text()).get("last_drop_at")}
    assert {(a["check"], a["subject"]) for a in first["alerts"]} == {("freshness", s) for s in overdue}
    assert code == (3 if overdue else 0)
    messages = first["messages"]
    assert any("no serving logs" in m for m in messages)
    assert any("no batch scores yet" in m for m in messages)

    scores = settings.data_dir / "scores"
    scores.mkdir()
    empty = run_score_frame_empty()
    pq.write_table(to_arrow(empty), scores / "scores_20260601T000001Z.parquet")
    stale = NOW_DT - timedelta(days=20)
    for path in (settings.raw_dir / "cora").iterdir():
        os.utime(path, (stale.timestamp(), stale.timestamp()))
    write_serving_log(settings, drop_feature="avg_basket_90d", n=200)

    assert main(["--data-dir", str(settings.data_dir), "--now", NOW]) == 3
    summary = json.loads((report / "summary.json").read_text())
    messages = summary["messages"]
    assert any("scores_20260601T000001Z.parquet is empty (0 customers)" in m for m in messages)
    assert any("feature 'avg_basket_90d' is missing from 200 of 200 recent serving log rows" in m for m in messages)
    alerts = {(a["check"], a["subject"]): a["detail"] for a in summary["alerts"]}
    assert "newest raw file 20.0 days old" in alerts[("freshness", "client cora")]
    assert ("schema", "serving/avg_basket_90d") in alerts
    skipped = [r for r in summary["feature_drift"] if r["feature"] == "avg_basket_90d" and r["sample"] == "serving"]
    assert skipped and all(r["status"] == "skipped" for r in skipped)
    assert "<img" in (report / "report.html").read_text()


def run_score_frame_empty() -> pd.DataFrame:
    """A results frame with the batch schema and no rows."""
    from batch.score import SCHEMA

    return SCHEMA.empty_table().to_pandas()


def test_an_empty_data_folder_still_gets_a_report(tmp_path):
    assert main(["--data-dir", str(tmp_path), "--now", NOW]) == 3  # every client: no raw files
    summary = json.loads((tmp_path / "reports" / "monitoring" / "summary.json").read_text())
    text = " ".join(summary["messages"])
    for expected in ("no training set", "no serving logs", "no batch scores", "labels mart"):
        assert expected in text
    assert {a["subject"] for a in summary["alerts"]} == {f"client {c}" for c in load_settings(tmp_path).clients}


def _config(tmp_path: Path, min_improvement: float) -> Path:
    path = tmp_path / f"monitoring-{min_improvement}.yaml"
    path.write_text(yaml.safe_dump({"retrain": {"training_overrides": SMALL, "min_improvement": min_improvement}}))
    return path


def test_retrain_promotes_only_a_better_model(drift_data, tmp_path, capsys):
    settings = private_copy(drift_data, tmp_path / "d", copies=("registry", "training"))
    assert current_version(settings.registry_dir, "churn") == "v0001"
    # same data and seed: the candidate equals the current model, so it does not beat it
    main(["--data-dir", str(settings.data_dir), "--now", NOW, "--retrain", "--config", str(_config(tmp_path, 0.0))])
    retrain = json.loads((settings.data_dir / "reports/monitoring/summary.json").read_text())["retrain"]
    assert retrain["candidate"] == "v0002" and retrain["current"] == "v0001"
    assert retrain["candidate_value"] == retrain["current_value"] and not retrain["promoted"]
    assert current_version(settings.registry_dir, "churn") == "v0001"
    assert "not promoted" in capsys.readouterr().out
    # a bar the candidate clears (min_improvement -1): better, but a decision model becomes current
    # only with a recorded approval (parity.models.approvals), so it waits for one
    main(["--data-dir", str(settings.data_dir), "--now", NOW, "--retrain", "--config", str(_config(tmp_path, -1.0))])
    retrain = json.loads((settings.data_dir / "reports/monitoring/summary.json").read_text())["retrain"]
    assert retrain["candidate"] == "v0003" and not retrain["promoted"] and "make approve VERSION=v0003" in retrain["reason"]
    assert current_version(settings.registry_dir, "churn") == "v0001"
    from parity.models import approvals, registry

    folder = registry.model_dir(settings.registry_dir, "churn")
    meta = registry.read_metadata(settings.registry_dir, "churn", "v0003")
    approvals.record(folder, "v0003", meta, "risk officer", list(approvals.flagged_items(meta)))
    registry.promote(settings.registry_dir, "churn", "v0003", lambda name: registry.read_metadata(
        settings.registry_dir, "churn", "v0003")["features"])
    assert current_version(settings.registry_dir, "churn") == "v0003"


def test_serving_scores_are_judged_at_their_request_time():
    from monitoring.pipeline import serving_scores

    logged = pd.Timestamp("2026-11-28T12:00:00Z")
    log = pd.DataFrame({
        "customer_id": ["acme:A", "acme:B"], "score": [0.2, 0.7], "model_version": ["v1", "v1"],
        "logged_at": [logged, logged],
        "request_at": [pd.Timestamp("2026-09-01T00:00:00Z"), pd.NaT],  # B: an older log without it
    })
    got = serving_scores(log)
    assert list(got["scored_for"]) == [pd.Timestamp("2026-09-01T00:00:00Z"), logged]
    assert list(serving_scores(log.drop(columns="request_at"))["scored_for"]) == [logged, logged]
