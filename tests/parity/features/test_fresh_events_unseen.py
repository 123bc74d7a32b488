"""Fresh events on shapes the existing tests do not push: an event id re-sent for another customer
(a correction that moves the purchase), a correction of a pushed amount in a later push, events
dated before the customer's signup, a few hours or decades ahead, and customers the warehouse does
not hold. Reuses test_fresh_events' copy of the session's materialized data (its own copy: the
pushes here never reach the other module's store)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.parity.features.test_fresh_events import (  # noqa: F401
    _event,
    _mart,
    _sample,
    _unknown_customer,
    copied,
    pusher,
)

pytestmark = pytest.mark.data

FRESH = ("purchase_count_30d", "spend_30d")


def _online(settings, customers: list[str]) -> dict[str, list]:
    from parity.features.online import open_reader

    return open_reader(settings, "churn_v1").read_columns(customers, datetime.now(timezone.utc))


def _recomputed(pushing, customers: list[str]) -> dict[str, dict]:
    """What the mart's own SQL gives these customers now, over the warehouse and the event log."""
    from parity.features.fresh import fresh_mart, recompute

    con, plan = pushing.update_context.ensure()
    table = recompute(con, plan, customers, datetime.now(timezone.utc), pushing.log.path, fresh_mart(plan))
    return {row["customer_id"]: row for row in table.to_pylist()}


def test_a_correction_in_a_later_push_replaces_the_amount(copied, pusher):  # noqa: F811
    customer = _sample(copied, 3)["customer_id"].iloc[2]
    before = _recomputed(pusher, [customer])[customer]  # the fresh values now, before any push
    first, _ = pusher.push([_event("cx-1", customer, amount=40.0)])
    again, update = pusher.push([_event("cx-1", customer, amount=10.0)])  # same id, new amount
    assert first[0].status == "accepted" and again[0].status == "accepted"
    assert update is not None and update.customers == (customer,)
    after = _online(copied, [customer])
    assert after["purchase_count_30d"][0] == before["purchase_count_30d"] + 1  # one purchase, not two
    assert after["spend_30d"][0] == pytest.approx((before["spend_30d"] or 0.0) + 10.0)


def test_event_times_before_signup_ahead_and_unknown_customers(copied, pusher):  # noqa: F811
    sample = _sample(copied, 4)
    customer = sample["customer_id"].iloc[3]
    client = customer.split(":")[0]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    signup = _mart(copied, "select min(snapshot_at) as t from MART where customer_id = ?", [customer])["t"].iloc[0]
    items = [
        _event("tm-1", customer, transacted_at=(signup - timedelta(days=400)).isoformat()),  # before signup
        _event("tm-2", customer, transacted_at="2099-01-01T00:00:00+00:00"),                 # decades ahead
        _event("tm-3", customer, transacted_at=(now + timedelta(hours=3)).isoformat()),      # a skewed clock
        _event("tm-4", _unknown_customer(copied, client)),                                     # not in the warehouse
        _event("tm-5", f"{client}:"),                                                         # no id after the client
        _event("tm-6", customer, transacted_at="1989-12-31T23:59:59+00:00"),                 # before 1990
    ]
    verdicts, update = pusher.push(items)
    got = {v.index: (v.status, [(e["field"], e["reason"]) for e in v.errors]) for v in verdicts}
    assert got[1] == ("rejected", [("transacted_at", "future_date")])
    assert got[3] == ("rejected", [("customer_id", "orphan_customer")])
    assert got[4][0] == "rejected" and got[4][1][0][0] == "customer_id"
    assert got[5] == ("rejected", [("transacted_at", "date_out_of_range")])
    # before signup: a late purchase like any other (no drop rule refuses it); three hours ahead:
    # within future_tolerance_hours of its arrival, accepted, but not yet visible at the instant
    assert got[0][0] == "accepted" and got[2][0] == "accepted"
    assert update is not None and update.customers == (customer,)
    online = _online(copied, [customer])
    assert online["days_since_last_purchase"][0] is None or online["days_since_last_purchase"][0] >= 0
    for name in FRESH:  # online is what the mart's SQL says now
        assert online[name][0] == pytest.approx(_recomputed(pusher, [customer])[customer][name])


def test_an_event_moved_to_another_customer_leaves_the_first_customer_online(copied, pusher):  # noqa: F811
    sample = _sample(copied, 6)
    first, second = sample["customer_id"].iloc[4], sample["customer_id"].iloc[5]
    assert first.split(":")[0] == second.split(":")[0]
    moved = _event("mv-1", first, amount=55.0)
    assert pusher.push([moved])[0][0].status == "accepted"
    assert _online(copied, [first])["spend_30d"][0] == pytest.approx(_recomputed(pusher, [first])[first]["spend_30d"])
    verdicts, update = pusher.push([{**moved, "customer_id": second}])  # the same event, now the other's
    assert verdicts[0].status == "accepted"
    assert update is not None and set(update.customers) == {first, second}  # the previous owner recomputed too
    truth = _recomputed(pusher, [first, second])
    online = _online(copied, [first, second])
    assert online["spend_30d"][1] == pytest.approx(truth[second]["spend_30d"])
    assert online["spend_30d"][0] == pytest.approx(truth[first]["spend_30d"])  # no longer counts 55.0


def test_an_event_id_of_the_warehouse_pushed_for_another_customer_recomputes_its_owner(copied, pusher):  # noqa: F811
    from parity.features.fresh import staged_models

    sample = _sample(copied, 6)
    owner, other = sample["customer_id"].iloc[0], sample["customer_id"].iloc[1]
    assert owner.split(":")[0] == other.split(":")[0]
    con, plan = pusher.update_context.ensure()
    union = " union all ".join(f"select customer_id, transaction_id from {r}" for r in staged_models(plan).values())
    row = con.execute(f"select transaction_id from ({union}) where customer_id = ? and transaction_id is not null "
                      "order by transaction_id limit 1", [owner]).fetchone()
    assert row is not None, f"{owner} has no warehouse transaction"
    verdicts, update = pusher.push([_event(row[0], other, amount=7.0)])  # the owner's id, now the other's
    assert verdicts[0].status == "accepted"
    assert update is not None and set(update.customers) == {owner, other}
    truth = _recomputed(pusher, [owner, other])
    online = _online(copied, [owner, other])
    for name in FRESH:
        assert online[name] == pytest.approx([truth[owner][name], truth[other][name]])


def _messy(key: str) -> str:
    """The key as a client's file might write it: prefix in capitals, blanks, the id's case flipped."""
    client, source = key.split(":", 1)
    return f" {client.upper()}: {source.swapcase()} "


def test_an_event_id_written_as_the_client_writes_it_is_its_customer(copied, pusher):  # noqa: F811
    """'cora:cr-00025' is the customer staging keys 'cora:CR-00025' from cora's files (each client's
    declared id rule, vars.parsing.<client>.customer_id): accepted for that customer, not refused as
    an orphan; an id that breaks the client's pattern is refused naming the expected form."""
    sample = _sample(copied, 1)
    items = [_event(f"nm-{k}", _messy(key)) for k, key in enumerate(sample["customer_id"])]
    clients = list(sample["client_id"])
    items.append(_event("nm-bad", f"{clients[0]}:not-an-id"))
    verdicts, update = pusher.push(items)
    got = [(v.status, v.customer_id) for v in verdicts[:-1]]
    assert got == [("accepted", key) for key in sample["customer_id"]], [v.errors for v in verdicts]
    assert update is not None and set(update.customers) == set(sample["customer_id"])
    bad = verdicts[-1]
    assert bad.status == "rejected" and [(e["field"], e["reason"]) for e in bad.errors] == [
        ("customer_id", "malformed_customer_id")]
    from parity.customer_keys import customer_keys

    assert customer_keys().expected_form(clients[0]) in bad.errors[0]["detail"]
    truth = _recomputed(pusher, list(sample["customer_id"]))
    online = _online(copied, list(sample["customer_id"]))
    for k, key in enumerate(sample["customer_id"]):
        assert online["spend_30d"][k] == pytest.approx(truth[key]["spend_30d"])


def test_ids_the_generator_never_writes(copied, pusher):  # noqa: F811
    """Unicode lookalikes, tabs and no-break spaces around a key (a tab is not trimmed, a space
    separator is, as SQL's trim() does and parity.customer_keys mirrors), the same event id twice in one
    request (spelled differently), a numeric event id and a timestamp without offset: each gets
    its own verdict, none is keyed to a customer it does not name."""
    sample = _sample(copied, 1)
    customer = sample["customer_id"].iloc[0]
    client, source = customer.split(":", 1)
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in source)  # 'ＡＣ-０…'
    items = [
        _event("ux-1", f"{client}:{fullwidth}"),                   # lookalike digits/letters
        _event("ux-2", f"\t{customer}"),                           # a tab is not a blank
        _event("ux-3", f"\u00a0{customer}\u3000"),                # space separators are trimmed (SQL trim)
        _event("ux-4", customer),
        _event(" ux-4 ", _messy(customer)),                        # the same id, trimmed, again
        _event(12345, customer),                                   # a JSON number as the id
        _event("ux-6", customer, transacted_at="2026-05-01T10:00:00"),
    ]
    verdicts, _ = pusher.push(items)
    got = [(v.status, [e["reason"] for e in v.errors]) for v in verdicts]
    assert got[0] == ("rejected", ["malformed_customer_id"])
    assert got[1] == ("rejected", ["malformed_customer_id"])
    assert got[2] == ("accepted", []) and verdicts[2].customer_id == customer
    assert got[3] == ("accepted", [])
    assert got[4] == ("rejected", ["duplicate_event_id"])
    assert got[5][0] == "accepted" and verdicts[5].customer_id == customer
    assert got[6] == ("rejected", ["missing_offset"])
    assert all(v.customer_id == customer for v in verdicts if v.status == "accepted")
