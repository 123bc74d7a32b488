"""monitoring.reviews: override rates by segment of the decided batch, and who was right once labels mature."""

from __future__ import annotations

import math

import pandas as pd

from monitoring import reviews as monitored
from parity import reviews

B1, B2 = "20260101T000000Z", "20260201T000000Z"


def _decide(folder, customer, batch, action, reason=None, note=None):
    reviews.record_decision(folder, "Ann (key k)", "k", reviews.Decision(
        customer, customer.split(":")[0], batch, "v0001", 0.7, action, reason, note))


def _labels(rows):
    return pd.DataFrame([{"customer_id": c, "as_of_at": pd.Timestamp(t, tz="UTC"), "is_churned": y} for c, t, y in rows])


def test_who_was_right_counts_matured_labels_per_action(tmp_path):
    _decide(tmp_path, "acme:1", B1, "approve")                          # churned: both right
    _decide(tmp_path, "acme:2", B1, "override", "already_contacted")   # stayed: reviewer right
    _decide(tmp_path, "acme:3", B1, "model_wrong", note="moved")       # churned: model right
    _decide(tmp_path, "acme:4", B2, "override", "not_worth_it")        # no matured label yet
    labels = _labels([("acme:1", "2026-01-01", 1), ("acme:2", "2026-01-01", 0), ("acme:3", "2026-01-01T12:00", 1),
                      ("acme:4", "2026-03-30", 0)])  # too far from B2 to match
    table = monitored.outcomes(reviews.decisions(tmp_path), labels, tolerance_days=1).set_index("action")
    assert table.loc["all", ["decisions", "with_label", "churned"]].tolist() == [4, 3, 2]
    assert table.loc["all", "model_right_rate"] == 2 / 3 and table.loc["all", "reviewer_right_rate"] == 2 / 3
    assert table.loc["approve", "reviewer_right_rate"] == 1.0
    assert table.loc["override", ["decisions", "with_label", "reviewer_right_rate"]].tolist() == [2, 1, 1.0]
    assert table.loc["model_wrong", "reviewer_right_rate"] == 0.0
    no_labels = monitored.outcomes(reviews.decisions(tmp_path), None, 1).set_index("action")
    assert no_labels.loc["all", "with_label"] == 0 and math.isnan(no_labels.loc["all", "model_right_rate"])


def test_findings_take_the_segment_from_the_batch_each_decision_was_taken_on(tmp_path):
    console, scores = tmp_path / "console", tmp_path / "scores"
    scores.mkdir()
    pd.DataFrame({"customer_id": ["acme:1", "bolt:1"], "segment_name": ["loyal", "lapsing"]}).to_parquet(
        scores / f"scores_{B1}.parquet")
    _decide(console, "acme:1", B1, "approve")
    _decide(console, "bolt:1", B1, "override", "already_contacted")
    _decide(console, "bolt:2", B2, "override", "already_contacted")  # its batch file is gone
    messages: list[str] = []
    found = monitored.review_findings(console, scores, "scores_", lambda: None, 1, messages)
    by_segment = found["by_segment"].set_index("segment_name")
    assert by_segment.loc["lapsing", "overridden"] == 1 and by_segment.loc["loyal", "approved"] == 1
    assert by_segment.loc["no segment", "overridden"] == 1
    assert any(B2 in m for m in messages)
    by_client = found["by_client"].set_index("client_id")
    assert by_client.loc["bolt", "override_rate"] == 1.0 and by_client.loc["all", "decisions"] == 3
    empty: list[str] = []
    assert monitored.review_findings(tmp_path / "none", scores, "scores_", lambda: None, 1, empty)["by_client"].empty
    assert "no review decision" in empty[0]
