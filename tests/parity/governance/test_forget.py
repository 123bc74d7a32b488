"""`forget`: a planted customer is erased from every place, a rebuild does not bring them back,
reconciliation balances with erased rows counted, parity has 0 mismatches."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone

import duckdb
import pandas as pd
import pytest

from parity import reviews, suppression
from parity.config import load_settings
from parity.governance import trace as tracing
from parity.governance.customer import parse_customer
from parity.governance.forget import forget
from tests.conftest import build
from tests.training.conftest import keep_data_dir_env

pytestmark = pytest.mark.data


def _plant(settings, key: str, other: str) -> None:
    """Outputs the platform writes after a build, holding the customer and one other customer."""
    from serving.log import SCHEMA

    # (batch's own scores/ files are read by dbt and need its full schema: covered by trace's
    # generic Parquet rule, as these client exports are)
    rows = pd.DataFrame({"customer_id": [key, other, key], "score": [0.9, 0.1, 0.8]})
    (settings.data_dir / "exports" / "acme").mkdir(parents=True)
    rows.to_parquet(settings.data_dir / "exports" / "acme" / "scores_x.parquet", index=False)
    rows.to_csv(settings.data_dir / "exports" / "acme" / "scores_x.csv", index=False)
    now = pd.Timestamp.now(tz="UTC")
    log = pd.DataFrame({"request_id": ["r1", "r2"], "logged_at": [now] * 2, "request_at": [now] * 2,
                        "customer_id": [key, other], "model_version": ["v0001"] * 2, "role": ["primary"] * 2,
                        "status": ["ok"] * 2, "score": [0.5, 0.4], "decision": [True, False],
                        "latency_ms": [1.0, 1.0], "features": ["{}", "{}"]})
    part = settings.data_dir / "serving" / "predictions" / "date=2026-06-01"
    part.mkdir(parents=True)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(log, schema=SCHEMA, preserve_index=False), part / "part-1.parquet")
    training = settings.data_dir / "training" / "churn_v1"
    training.mkdir(parents=True)
    rows.to_parquet(training / "dataset-abc.parquet", index=False)
    (training / "dataset-abc.json").write_text(json.dumps({"sha256": "abc", "rows": 3}))
    (settings.registry_dir / "churn" / "v0001").mkdir(parents=True)
    (settings.registry_dir / "churn" / "v0001" / "metadata.json").write_text(
        json.dumps({"data_fingerprint": {"sha256": "abc"}}))
    decision = reviews.Decision(key, key.split(":")[0], "2026-06-01", "v0001", 0.9, "approve", None, None)
    reviews.record_decision(settings.console_dir, "ann", "k1", decision)
    reviews.record_action(settings.console_dir, "ann", "lookup", customer_id=key)
    (settings.data_dir / "reports" / "monitoring").mkdir(parents=True)
    (settings.data_dir / "reports" / "monitoring" / "summary.json").write_text(json.dumps({"example": key}))


@pytest.fixture
def private_copy(built_data, tmp_path):
    """A copy of the session's built data (the erasure rewrites it), with its own Feast store."""
    from parity.features.feature_store import apply, materialize

    root = tmp_path / "data"
    shutil.copytree(built_data.data_dir, root, symlinks=True, ignore=shutil.ignore_patterns("feast", "*.lock"))
    settings = load_settings(root)
    with keep_data_dir_env():
        apply(settings)
        materialize(settings)
        yield settings


def _event(event_id: str, customer: str, clock) -> dict:
    at = (clock() - timedelta(hours=2)).replace(microsecond=0).isoformat()  # whole seconds, as online
    return {"event_id": event_id, "customer_id": customer, "transaction_type": "purchase", "amount": 19.5,
            "currency": "USD", "category": "books", "transacted_at": at}


def test_forget_erases_everywhere_and_a_rebuild_keeps_it_erased(private_copy):
    from parity.features.push import Pusher

    settings = private_copy
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        key, other = [r[0] for r in con.execute(
            "select distinct customer_id from marts.customer_features_weekly where client_id = 'acme' "
            "order by 1 desc limit 2").fetchall()]
        newest = con.execute("select max(snapshot_at) from marts.customer_features_weekly "
                             "where client_id = 'acme'").fetchone()[0]
    customer = parse_customer(key, settings.clients)
    _plant(settings, key, other)
    # fresh events (the log, the pushed rows and the online store), by a pusher that stays open
    # through the erasure as a running service's would; the key spelled as a client might send it
    # (a clock two days after the newest snapshot: the test data ends months ago, and a snapshot
    # older than the view's TTL is stale online and offline alike)
    newest = newest if newest.tzinfo else newest.replace(tzinfo=timezone.utc)
    offset = newest + timedelta(days=2) - datetime.now(timezone.utc)
    pusher = Pusher(settings, clock=lambda: datetime.now(timezone.utc) + offset)
    clock = pusher.clock
    verdicts, update = pusher.push([_event("fe-1", key, clock), _event("fe-2", other, clock),
                                    _event("fe-3", " ACME:" + key[5:], clock)])
    assert [v.status for v in verdicts] == ["accepted"] * 3 and update is not None and key in update.customers
    before = tracing.trace(settings, customer)
    areas = {p.area for p in before.places}
    assert {"raw", "warehouse", "parquet", "csv", "online_store", "sqlite", "mention", "events"} <= areas
    for folder in ("exports", "serving/predictions", "training", "console", "reports/monitoring", "events/pushed"):
        assert any(f"/{folder}/" in p.location for p in before.places), folder
    assert [(p.rows, p.detail) for p in before.places if p.area == "events"] == [(2, "lines 1, 3")]
    assert not any(p.area == "raw" and "/events/" in p.location for p in before.places)

    def rebuild(s):
        return build(s).build.name

    def refresh(s):
        from parity.features.feature_store import apply, materialize

        # the copied build's manifest named the session folder's marts; the rebuild's names this
        # folder's (in a real data folder both are <data>/published/marts: materialize only)
        apply(s)
        materialize(s)

    with keep_data_dir_env():
        report = forget(settings, customer, "tester", rebuild, refresh)
    assert report.after is not None and report.after.held_rows == 0, report.after.summary()
    assert report.after.problems == [] and report.not_erased == []
    assert report.models_trained_with == ["churn/v0001"]
    assert [p.area for p in report.after.places] and all(p.area == "raw" for p in report.after.places)
    assert suppression.keys(settings.data_dir) == [customer.key_sha256]
    # other customers' rows are kept
    assert pd.read_parquet(settings.data_dir / "exports" / "acme" / "scores_x.parquet")["customer_id"].tolist() == [other]
    assert pd.read_csv(settings.data_dir / "exports" / "acme" / "scores_x.csv")["customer_id"].tolist() == [other]
    # the rebuild read the raw files, which still hold the customer: suppressed, counted, balanced
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        recon = con.execute("select sum(erased_rows), sum(abs(unaccounted_rows)) from marts.reconciliation "
                            "where client_id = 'acme'").fetchone()
        quarantined = con.execute("select count(*) from quarantine.quarantine_acme where "
                                  "quarantine_reason = 'erased_on_request'").fetchone()[0]
    raw_lines = sum(len(v) for v in report.raw_lines.values())
    assert recon == (raw_lines, 0) and quarantined == 0
    assert [p.name for p in settings.builds_dir.iterdir()] == [report.build]
    # the open pusher appends to the rewritten log; the erased customer's events are refused now
    log = settings.data_dir / "events" / "log.jsonl"
    verdicts, _ = pusher.push([_event("fe-4", other, clock), _event("fe-5", key, clock),
                               _event("fe-6", f" ACME:{key[5:].lower()}", clock)])  # as a file may write it
    assert [v.status for v in verdicts] == ["accepted", "rejected", "rejected"], [v.as_dict() for v in verdicts]
    assert {e["reason"] for v in verdicts[1:] for e in v.errors} == {"erased_on_request"}
    assert [json.loads(line)["event_id"] for line in log.read_text().splitlines()] == ["fe-2", "fe-4"]
    pusher.close()
    pushed = pd.read_parquet(settings.data_dir / "events" / "pushed")
    assert key not in set(pushed["customer_id"]) and other in set(pushed["customer_id"])
    assert tracing.trace(settings, customer).held_rows == 0
    from parity.features.parity_check import run_parity

    with keep_data_dir_env():
        parity = run_parity(settings, sample_times=2)
    assert parity.ok, parity.summary()
