"""`forget` of the customer a correction moved an event to: the event's other owner (its previous
version's customer, now its only one) gets its fresh features recomputed online and in the pushed
history, as a push that moves an event does (parity.features.push: previous owners)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from parity.governance.customer import parse_customer
from parity.governance.forget import forget
from tests.conftest import build
from tests.parity.governance.test_forget import _event, private_copy  # noqa: F401
from tests.training.conftest import keep_data_dir_env

pytestmark = [pytest.mark.heavy, pytest.mark.data]


def _online(settings, customers: list[str]) -> dict[str, list]:
    from parity.features.online import open_reader

    return open_reader(settings, "churn_v1").read_columns(customers, datetime.now(timezone.utc))


def _truth(pusher, customers: list[str]) -> dict[str, dict]:
    """The mart's own SQL for these customers at the pusher's now, over the warehouse and the log."""
    from parity.features.fresh import fresh_mart, recompute

    con, plan = pusher.update_context.ensure()
    table = recompute(con, plan, customers, pusher.clock(), pusher.log.path, fresh_mart(plan))
    return {row["customer_id"]: row for row in table.to_pylist()}


def test_forgetting_the_new_owner_of_a_moved_event_recomputes_its_previous_owner(private_copy):  # noqa: F811
    from parity.features.push import Pusher

    settings = private_copy
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        first, second = [r[0] for r in con.execute(
            "select distinct customer_id from marts.customer_features_weekly where client_id = 'acme' "
            "order by 1 limit 2").fetchall()]
        newest = con.execute("select max(snapshot_at) from marts.customer_features_weekly "
                             "where client_id = 'acme'").fetchone()[0]
    newest = newest if newest.tzinfo else newest.replace(tzinfo=timezone.utc)
    offset = newest + timedelta(days=2) - datetime.now(timezone.utc)  # as test_forget: snapshots stay fresh

    def clock() -> datetime:
        return datetime.now(timezone.utc) + offset

    pusher = Pusher(settings, clock=clock)
    moved = {**_event("mo-1", first, clock), "amount": 55.0}
    assert pusher.push([moved])[0][0].status == "accepted"
    verdicts, update = pusher.push([{**moved, "customer_id": second}])  # the correction moves it
    assert verdicts[0].status == "accepted" and set(update.customers) == {first, second}
    without = _online(settings, [first])["spend_30d"][0] or 0.0
    assert without == pytest.approx(_truth(pusher, [first])[first]["spend_30d"] or 0.0)

    def rebuild(s):
        return build(s).build.name

    def refresh(s):
        from parity.features.feature_store import apply, materialize

        apply(s)
        materialize(s)

    with keep_data_dir_env():
        report = forget(settings, parse_customer(second, settings.clients), "tester", rebuild, refresh, clock=clock)
    assert report.after is not None and report.after.held_rows == 0, report.after.summary()
    assert first in report.recomputed
    # the correction is gone with its customer: the purchase is the first customer's again
    truth = _truth(pusher, [first])[first]["spend_30d"]
    assert truth == pytest.approx(without + 55.0)
    assert _online(settings, [first])["spend_30d"][0] == pytest.approx(truth)
    # and stays so after another materialization (it re-applies the pushed history's newest rows)
    with keep_data_dir_env():
        refresh(settings)
    assert _online(settings, [first])["spend_30d"][0] == pytest.approx(truth)
    pusher.close()
