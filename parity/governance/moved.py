"""Purchases an erasure gives back: an event id whose newest version (a correction pushed for the
erased customer) moved it away from another customer is that customer's again once the erased
customer's versions are gone. Their fresh features online and in the pushed history were computed
without it; `forget` recomputes them after the rebuild, as a push that moves an event recomputes
the previous owner (parity.features.push)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from parity.customer_keys import strip_blanks
from parity.governance.customer import Customer
from parity.ingest.events import event_customer_key, event_log_path
from parity.ingest.warehouse import WarehouseMissing, connect


def _log_events(settings: Any) -> list[tuple[str, str, str]]:
    """(customer key, client, event id) of each event in the log, keyed as staging keys them."""
    path = event_log_path(settings.data_dir)
    if not path.exists():
        return []
    found = []
    for raw in path.read_bytes().split(b"\n"):
        try:
            event = json.loads(raw)
        except ValueError:
            continue  # a torn line: never accepted
        if not isinstance(event, dict) or not isinstance(event.get("event_id"), (str, int)):
            continue
        key = event_customer_key(event.get("customer_id"), settings.project_root)
        if key is not None:
            found.append((key, key.partition(":")[0], strip_blanks(str(event["event_id"]))))
    return found


def other_owners(settings: Any, customer: Customer) -> list[str]:
    """The other customers named by any version of the customer's pushed event ids: in the log
    (an earlier push) or in the client's staged drop of the published build (an id of its files)."""
    events = _log_events(settings)
    mine = {(client, event_id) for key, client, event_id in events if key == customer.key}
    owners = {key for key, client, event_id in events if (client, event_id) in mine}
    ids = sorted(event_id for client, event_id in mine if client == customer.client_id)
    if ids and customer.client_id in settings.clients:
        try:
            with connect(settings.published_dir) as con:
                owners |= {r[0] for r in con.execute(
                    f"select distinct customer_id from staging.stg_{customer.client_id}__transactions "
                    "where quarantine_reason is null and transaction_id in (select unnest(?))", [ids]).fetchall()}
        except WarehouseMissing:
            pass  # no published build: nothing online was computed from one either
    owners.discard(customer.key)
    return sorted(k for k in owners if k)


def recompute_owners(settings: Any, owners: list[str], clock: Callable[[], datetime] | None = None) -> list[str]:
    """Recompute and write the owners' fresh features (online and pushed history) over the
    published build and the log; returns the customers written (those the online store holds)."""
    if not owners:
        return []
    from parity.features.push import Pusher

    pusher = Pusher(settings, clock=clock)
    try:
        now = pusher.clock()
        update = pusher.update([(owner, now) for owner in owners], record_lags=False)
    finally:
        pusher.close()
    return list(update.customers)
