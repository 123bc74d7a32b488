"""The console's pure view functions and stores, on small in-memory data."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from parity import reviews
from parity.models.prepare import fit_spec, prepare
from parity.models.reasons import reasons as export_reasons
from serving.console import svg, views

FEATURES = (("client_id", "String"), ("days_since_last_purchase", "Float64"), ("spend_30d", "Float64"))
COSTS = {"false_positive": 10.0, "false_negative": 40.0}


def test_reasons_read_like_the_batch_exports_for_the_same_contributions():
    raw = pd.DataFrame({"client_id": ["acme", "bolt", "acme"], "days_since_last_purchase": [47.4, np.nan, 3.0],
                        "spend_30d": [0.0, 12.0, 99.5]})
    spec = fit_spec(raw, FEATURES)
    prepared = prepare(raw, spec)
    rng = np.random.default_rng(3)
    contribs = pd.DataFrame(rng.normal(size=(3, len(spec.columns))), columns=list(spec.columns))
    expected = export_reasons(raw, prepared, contribs, spec, top_k=len(spec.columns))
    for row in range(3):
        # what /v1/predict returns: prepared column, the raw value for a raw feature (None when
        # missing) else the prepared value, largest |contribution| first
        order = np.argsort(-contribs.iloc[row].abs().to_numpy(), kind="stable")
        top = []
        for j in order:
            column = spec.columns[j]
            value = raw[column].iat[row] if column in raw.columns else prepared[column].iat[row]
            top.append({"feature": column, "value": None if pd.isna(value) else value,
                        "contribution": float(contribs.iat[row, j])})
        shown = views.reasons(top, spec)
        assert [r.sentence for r in shown] == expected[row]
    assert views.reasons([{"feature": "x", "value": 1.5, "contribution": -0.2}], None)[0].sentence == "x = 1.5 (lowers risk)"


@pytest.mark.parametrize("value, text", [(None, "n/a"), (float("nan"), "n/a"), (3, "3"), (1964.0, "1964"),
                                         (97.4936, "97.494"), ("DE", "DE"), (True, "yes"),
                                         (datetime(2026, 6, 1, 7, 5), "2026-06-01 07:05")])
def test_values_are_printed_plainly(value, text):
    assert views.fmt_value(value) == text


def test_expected_value_is_zero_at_the_cost_break_even():
    # p x 40 - (1 - p) x 10 = 0 at p = 0.2: flags above it are worth acting on
    assert views.expected_value(0.2, COSTS) == pytest.approx(0.0)
    assert views.expected_value(0.9, COSTS) == pytest.approx(35.0)


def _flagged() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["acme:1", "acme:2", "bolt:1", "bolt:2"], "client_id": ["acme", "acme", "bolt", "bolt"],
                         "score": [0.5, 0.9, 0.7, 0.95], "model_version": ["v0001", "v0001", "v0001", "v0009"],
                         "segment_name": ["a", "b", "a", None]})


def test_queue_orders_pending_by_expected_value_and_sets_decided_aside(tmp_path):
    folder = tmp_path / "console"
    for customer, action, reason, note in [("acme:2", "approve", None, None),
                                           ("bolt:1", "override", "already_contacted", None),
                                           ("bolt:1", "approve", None, "changed my mind")]:
        client = customer.split(":")[0]
        reviews.record_decision(folder, "Ann (key k)", "k", reviews.Decision(customer, client, "B1", "v0001", 0.5,
                                                                         action, reason, note))
    decided = reviews.decisions(folder, "B1")
    assert len(decided) == 3 and decided["is_latest"].tolist() == [True, False, True]
    # v0009's costs are unknown: its row goes last, without an expected value
    pending, reviewed = views.review_queue(_flagged(), {"v0001": COSTS, "v0009": None}, decided)
    assert pending["customer_id"].tolist() == ["acme:1", "bolt:2"]
    assert np.isnan(pending["expected_value"].iloc[1])
    assert dict(zip(reviewed["customer_id"], reviewed["action"])) == {"acme:2": "approve", "bolt:1": "approve"}
    rates = reviews.override_rates(decided).set_index("client_id")
    assert rates.loc["all", "decisions"] == 2 and rates.loc["all", "override_rate"] == 0.0


def test_override_rate_counts_overrides_and_model_wrong_per_group():
    decided = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "client_id": ["acme", "acme", "acme", "bolt"],
                            "action": ["approve", "override", "model_wrong", "approve"], "is_latest": True})
    rates = reviews.override_rates(decided).set_index("client_id")
    assert rates.loc["acme", "override_rate"] == pytest.approx(2 / 3)
    assert rates.loc["bolt", "override_rate"] == 0.0
    assert rates.loc["all", ["decisions", "approved", "overridden", "model_wrong"]].tolist() == [4, 2, 1, 1]
    assert reviews.override_rates(decided.iloc[0:0]).empty


@pytest.mark.parametrize("action, reason, note, message", [
    ("delete", None, None, "action must be one of"),
    ("override", None, None, "needs a reason from the list"),
    ("override", "made_up", None, "needs a reason from the list"),
    ("override", "other", "  ", "needs a note"),
    ("model_wrong", None, None, "needs a note"),
])
def test_bad_decisions_are_refused_naming_the_field(tmp_path, action, reason, note, message):
    with pytest.raises(reviews.DecisionError, match=message):
        reviews.record_decision(tmp_path, "Ann", "k", reviews.Decision("acme:1", "acme", "B1", "v1", 0.5, action, reason, note))
    assert reviews.decisions(tmp_path).empty


def test_the_store_only_appends(tmp_path):
    decision = reviews.Decision("acme:1", "acme", "B1", "v1", 0.5, "approve", None, None)
    reviews.record_decision(tmp_path, "Ann", "k", decision)
    reviews.record_decision(tmp_path, "Bob", "k2", decision)
    reviews.record_action(tmp_path, "Ann", "customer_lookup", customer_id="acme:1")
    con = sqlite3.connect(tmp_path / reviews.FILE)
    assert con.execute("select who from review_decisions order by id").fetchall() == [("Ann",), ("Bob",)]
    assert reviews.actions(tmp_path)["action"].tolist() == ["customer_lookup"]


def test_history_chart_draws_each_source_and_the_threshold():
    frame = pd.DataFrame({"at": pd.to_datetime(["2026-05-01", "2026-05-08", "2026-05-09"], utc=True),
                          "score": [0.2, 0.4, np.nan], "model_version": "v0001",
                          "status": ["ok", "ok", "stale_features"], "source": ["batch", "online", "online"]})
    points = views.history_points(frame)
    assert [(p.source, p.score) for p in points] == [("batch", 0.2), ("online", 0.4)]  # unscored rows left out
    chart = svg.score_history(points, 0.3)
    assert chart.count("<rect") == 1 and chart.count("<circle") == 1 and "decision threshold 0.300" in chart
    assert svg.score_history([], 0.3) == ""


def test_health_reports_each_client_even_when_not_built():
    recon = pd.DataFrame({"client_id": ["acme"], "source_table": ["customers"], "raw_rows": [3], "unaccounted_rows": [0]})
    quarantine = pd.DataFrame({"client_id": ["acme"], "source_table": ["customers"], "quarantine_reason": ["test_account"],
                               "n_rows": [1]})
    at = datetime(2026, 6, 1, tzinfo=timezone.utc)
    acme, bolt = views.health_by_client(["acme", "bolt"], recon, quarantine, {"acme": at})
    assert acme["built"] and acme["unaccounted_rows"] == 0 and acme["watermark_at"] == at
    assert acme["quarantine"][0]["quarantine_reason"] == "test_account"
    assert not bolt["built"] and bolt["watermark_at"] is None and bolt["unaccounted_rows"] is None


def test_training_report_files_stay_inside_the_versions_report_folder(tmp_path):
    from parity.config import load_settings
    from serving.console import data

    settings = load_settings(tmp_path)
    folder = settings.reports_dir / "training" / "v0001"
    folder.mkdir(parents=True)
    (folder / "report.html").write_text("<html></html>")
    (folder / "pr_curves.png").write_bytes(b"png")
    (folder / "notes.json").write_text("{}")
    (settings.reports_dir / "training" / "secret.html").write_text("no")
    assert data.training_report(settings, "v0001") == (folder / "report.html").resolve()
    assert data.training_report(settings, "v0001", "pr_curves.png") is not None
    for name in ("notes.json", "../secret.html", "missing.png", "/etc/hostname"):
        assert data.training_report(settings, "v0001", name) is None
    assert data.training_report(settings, "v0002") is None


def _requests() -> pd.DataFrame:
    at = pd.to_datetime(["2026-06-01 09:10", "2026-06-01 09:20", "2026-06-01 09:30", "2026-06-02 14:00"], utc=True)
    return pd.DataFrame({"request_id": list("abcd"), "at": at, "customers": [1, 1, 50, 200],
                         "latency_ms": [2.0, 4.0, 8.0, 30.0], "ok": [1, 0, 48, 200], "stale": [0, 1, 0, 0],
                         "unknown": [0, 0, 2, 0]})


def test_operations_summary_rates_and_percentiles_per_request():
    from serving.console import operations

    s = operations.summary(_requests())
    assert (s["requests"], s["predictions"]) == (4, 252)
    assert s["unknown_rate"] == pytest.approx(2 / 252) and s["stale_rate"] == pytest.approx(1 / 252)
    assert s["p50"] == pytest.approx(6.0)  # per request, not per customer: 200 customers count once
    days = operations.by_day(_requests())
    assert days["requests"].tolist() == [1, 3] and days["p50"].tolist() == [30.0, 4.0]
    assert operations.summary(_requests().iloc[0:0]) == {"requests": 0}


def test_latency_heatmap_cells_by_request_size_and_hour():
    from serving.console import operations

    cells = operations.heatmap(_requests())
    assert cells[0][9] == (2, pytest.approx(3.9))  # two one-customer requests at 09h: p95 of 2 and 4 ms
    assert cells[2][9] == (1, 8.0) and cells[3][14] == (1, 30.0)
    assert sum(count for row in cells for count, _ in row) == 4
    chart = operations.heatmap_svg(cells)
    assert chart.count("<title>") == 3 and "p95 30.0 ms over 1 requests" in chart
    assert operations.heatmap_svg(operations.heatmap(_requests().iloc[0:0])) == ""
    assert [operations.size_label(n) for n in (1, 2, 10, 11, 100, 101, 1000)] == [
        "1", "2-10", "2-10", "11-100", "11-100", "101+", "101+"]


def test_status_counts_split_the_predict_answers_by_class():
    from serving.console import operations

    samples = [({"path": "/v1/predict", "status": "200"}, 90.0), ({"path": "/v1/predict", "status": "422"}, 6.0),
               ({"path": "/v1/predict", "status": "503"}, 4.0), ({"path": "/health", "status": "500"}, 7.0)]
    counts = operations.status_counts(samples)
    assert (counts["total"], counts["client_errors"], counts["server_errors"]) == (100, 6, 4)
    assert counts["server_error_rate"] == 0.04 and counts["client_error_rate"] == 0.06
    assert operations.status_counts([])["server_error_rate"] is None


def test_score_history_reads_log_and_batch_and_reports_an_unreadable_file(tmp_path):
    from parity.config import load_settings
    from serving.console import data

    settings = load_settings(tmp_path)
    day = settings.predictions_dir / "date=2026-06-01"
    day.mkdir(parents=True)
    at = pd.Timestamp("2026-06-01T10:00", tz="UTC")
    pd.DataFrame({"customer_id": ["acme:1", "acme:2"], "role": ["primary", "primary"], "score": [0.2, 0.9],
                  "model_version": ["v1", "v1"], "status": ["ok", "ok"], "request_at": [at, at],
                  "logged_at": [at, at]}).to_parquet(day / "part-1.parquet")
    settings.scores_dir.mkdir(parents=True)
    pd.DataFrame({"customer_id": ["acme:1"], "score": [0.3], "model_version": ["v1"], "status": ["ok"],
                  "as_of_at": [at - pd.Timedelta(days=7)]}).to_parquet(settings.scores_dir / "scores_20260525.parquet")
    history = data.score_history(settings, "acme:1")
    assert history.problem is None
    assert list(history.frame["source"]) == ["batch", "online"] and list(history.frame["score"]) == [0.3, 0.2]
    (day / "part-2.parquet").write_bytes(b"not parquet")  # a damaged part: said on the page, not a 500
    broken = data.score_history(settings, "acme:1")
    assert "part-2.parquet" in broken.problem and list(broken.frame["source"]) == ["batch", "online"]


def test_the_history_index_follows_the_log_parts_added_rewritten_and_removed(tmp_path):
    """The in-memory index (serving/console/history.py) never shows what the log no longer holds."""
    from serving.console.history import LogIndex

    def part(path, customers, score):
        at = pd.Timestamp("2026-06-01T10:00", tz="UTC")
        n = len(customers)
        tmp = path.with_name(path.name + ".tmp")  # replaced as the log and an erasure write parts
        pd.DataFrame({"customer_id": customers, "role": ["primary"] * (n - 1) + ["shadow"], "score": [score] * n,
                      "model_version": ["v1"] * n, "status": ["ok"] * n, "request_at": [at] * n,
                      "logged_at": [at] * n}).to_parquet(tmp)
        tmp.replace(path)

    day = tmp_path / "date=2026-06-01"
    day.mkdir()
    part(day / "part-1.parquet", ["acme:1", "acme:2", "acme:1"], 0.1)  # the last row is a shadow model's
    index = LogIndex(tmp_path)
    assert list(index.history("acme:1", 10)[0]["score"]) == [0.1]
    part(day / "part-2.parquet", ["acme:1", "acme:9"], 0.2)  # a new part is read at the next lookup
    assert sorted(index.history("acme:1", 10)[0]["score"]) == [0.1, 0.2]
    part(day / "part-1.parquet", ["acme:2", "acme:3"], 0.3)  # rewritten without acme:1 (an erasure)
    assert list(index.history("acme:1", 10)[0]["score"]) == [0.2]
    (day / "part-2.parquet").unlink()  # removed (retention)
    assert index.history("acme:1", 10)[0].empty and list(index.history("acme:2", 10)[0]["score"]) == [0.3]
