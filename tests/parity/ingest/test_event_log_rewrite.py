"""The event log rewritten without a customer (governance's erasure) while a writer holds it open:
nothing it appends afterwards is lost, and it re-indexes the new file."""

from __future__ import annotations

import json

from parity.ingest.events import EventLog, event_customer_key, line_names_customer, rewrite_log


def _line(event_id: str, customer: str) -> str:
    return json.dumps({"event_id": event_id, "customer_id": customer, "transaction_type": "purchase",
                       "amount": 1.5, "currency": "USD", "category": "x",
                       "transacted_at": "2026-01-01T00:00:00+00:00", "accepted_at": "2026-01-01T00:00:01+00:00"})


def test_the_key_is_staging_s_key_of_the_event():
    assert event_customer_key(" ACME:AC-1 ") == "acme:AC-1"
    # the id normalised by the client's declared rule (vars.parsing.<client>.customer_id), as staging does
    assert event_customer_key("acme:ac-1") == "acme:AC-1"
    assert event_customer_key("cora: cr-00025 ") == "cora:CR-00025"
    assert event_customer_key("BOLT:B-7") == "bolt:b-7"
    assert event_customer_key("zeta:Z-1") == "zeta:Z-1"  # not onboarded: as written (staging refuses it)
    assert [event_customer_key(v) for v in ("AC-1", ":AC-1", "acme:", None, 7)] == [None] * 5
    assert line_names_customer(_line("e1", "Acme:AC-1").encode(), "acme:AC-1")
    assert not line_names_customer(_line("e1", "acme:AC-10").encode(), "acme:AC-1")
    assert line_names_customer(b'{"torn": "acme:AC-1', "acme:AC-1")  # not JSON: by its text
    # the line as the client writes its ids: found for the canonical key governance erases
    assert line_names_customer(_line("e1", "cora:cr-00025").encode(), "cora:CR-00025")
    assert not line_names_customer(_line("e1", "cora:cr-000250").encode(), "cora:CR-00025")


def test_a_rewrite_under_the_lock_loses_no_append_of_an_open_writer(tmp_path):
    path = tmp_path / "events" / "log.jsonl"
    writer = EventLog(path)
    writer.append([_line("e1", "acme:AC-1"), _line("e2", "acme:AC-2"), _line("e3", "acme:AC-1")])
    mode_before = path.stat().st_mode
    removed = rewrite_log(path, lambda raw: line_names_customer(raw, "acme:AC-1"))
    assert removed == 2 and path.stat().st_mode == mode_before
    assert [json.loads(x)["event_id"] for x in path.read_text().splitlines()] == ["e2"]
    # the writer still holds the old file: its next append goes to the new one, indexed afresh
    writer.append([_line("e4", "acme:AC-2")])
    assert [json.loads(x)["event_id"] for x in path.read_text().splitlines()] == ["e2", "e4"]
    assert set(writer.refresh()) == {"acme:e2", "acme:e4"}
    assert rewrite_log(path, lambda raw: line_names_customer(raw, "acme:AC-1")) == 0
    writer.close()
    # a torn last line (never acknowledged) of the customer goes too; another's stays as it is
    path.write_bytes(path.read_bytes() + b'{"event_id": "e5", "customer_id": "acme:AC-1"')
    assert rewrite_log(path, lambda raw: line_names_customer(raw, "acme:AC-1")) == 1
    assert path.read_bytes().endswith(b"\n") and path.read_text().count("\n") == 2
