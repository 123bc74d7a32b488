"""parity.reviews: which decision counts for an export, and override rates (real SQLite file)."""

from __future__ import annotations

from parity import reviews


def _decide(folder, customer, batch, action, reason=None, note=None):
    reviews.record_decision(folder, "Ann (key k)", "k", reviews.Decision(
        customer, customer.split(":")[0], batch, "v0001", 0.7, action, reason, note))


def test_latest_per_customer_takes_the_newest_decision_on_the_newest_batch_not_after_the_export(tmp_path):
    _decide(tmp_path, "acme:1", "20260101T000000Z", "approve")
    _decide(tmp_path, "acme:1", "20260108T000000Z", "override", "already_contacted")
    _decide(tmp_path, "acme:1", "20260108T000000Z", "approve", note="changed my mind")  # counts for that batch
    _decide(tmp_path, "acme:2", "20260108T000000Z", "override", "not_worth_it")
    _decide(tmp_path, "acme:3", "20260115T000000Z", "model_wrong", note="moved away")  # a later batch
    decided = reviews.decisions(tmp_path)

    latest = reviews.latest_per_customer(decided, "20260108T000000Z").set_index("customer_id")
    assert sorted(latest.index) == ["acme:1", "acme:2"]  # acme:3's decision is on scores after this export
    assert latest.loc["acme:1", "action"] == "approve" and latest.loc["acme:1", "batch_as_of"] == "20260108T000000Z"
    assert latest.loc["acme:2", ["action", "reason"]].tolist() == ["override", "not_worth_it"]
    early = reviews.latest_per_customer(decided, "20260105T000000Z")
    assert early[["customer_id", "action"]].values.tolist() == [["acme:1", "approve"]]
    assert reviews.latest_per_customer(decided, "20251231T000000Z").empty
    assert reviews.latest_per_customer(reviews.decisions(tmp_path / "none"), "20260108T000000Z").empty


def test_override_rates_per_segment_name_missing_segments_are_grouped(tmp_path):
    _decide(tmp_path, "acme:1", "B", "approve")
    _decide(tmp_path, "acme:2", "B", "override", "already_contacted")
    decided = reviews.decisions(tmp_path).assign(segment_name=["loyal", None])
    rates = reviews.override_rates(decided, by="segment_name").set_index("segment_name")
    assert rates.loc["loyal", "override_rate"] == 0.0 and rates.loc["none", "override_rate"] == 1.0
    assert rates.loc["all", "decisions"] == 2
