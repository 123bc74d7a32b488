"""`POST /v1/events`: pushed transactions in, fresh features online within seconds.

Authenticated and client-scoped like /v1/predict (role `push`, serving/keys.py; a key scoped to
some clients pushing an event of another client gets 403 for the whole request). The body
`{"events": [...]}` holds 1..`MAX_EVENTS` events and is capped by `max_body_bytes` like every
/v1 body. Each event gets a verdict (accepted, duplicate or rejected with index, field, reason
and detail: parity.ingest.events); the accepted ones are durable in the event log before the
answer is sent. The affected customers' fresh features are then recomputed and written online
by a background worker (parity.features.push.UpdateWorker); the accept -> readable lag is the
histogram `parity_event_online_lag_seconds{client}` on /metrics.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from prometheus_client import Counter, Gauge, Histogram
from pydantic import BaseModel, ConfigDict, Field

from parity.customer_keys import customer_keys
from parity.features.freshness import client_of
from serving.routes import OrjsonResponse, authorised, get_state, request_id
from serving.state import ServiceUnavailable, State, check_scope

MAX_EVENTS = 1000
LAG_BUCKETS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)
router = APIRouter()
_open_lock = threading.Lock()


class EventsRequest(BaseModel):
    """1..MAX_EVENTS events; each is judged on its own (a bad event never fails the others)."""

    model_config = ConfigDict(extra="forbid")
    events: list[Any] = Field(min_length=1, max_length=MAX_EVENTS, description=(
        "Transactions: {event_id, customer_id '<client>:<id>', transaction_type purchase|refund, amount (JSON "
        "number), currency, category, transacted_at (ISO-8601 with offset)}."))


class EventMetrics:
    """The event path's metrics, on the service's registry."""

    def __init__(self, registry: Any, state: State):
        self.events = Counter("parity_events_total", "Pushed events by verdict (accepted, duplicate, rejected)",
                              ["status"], registry=registry)
        self.lag = Histogram("parity_event_online_lag_seconds", "Pushed event accepted -> its customer's fresh "
                             "features readable online, by client", ["client"], buckets=LAG_BUCKETS, registry=registry)
        self.not_online = Counter("parity_events_not_online_total", "Accepted events whose customer got no fresh "
                                  "row (e.g. no timeline yet): in the log, online after the next build", ["client"],
                                  registry=registry)
        Gauge("parity_events_pending_updates", "Accepted events whose online update has not finished",
              registry=registry).set_function(lambda: state.events_worker.pending if state.events_worker else 0)


class IntakeBatcher:
    """Group commit: the requests waiting while a batch is judged are judged together next (one
    staging run, one fsync), each keeping its own verdicts and accept time."""

    def __init__(self, pusher: Any, max_events: int = 10 * MAX_EVENTS):
        self.pusher, self.max_events = pusher, max_events
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    async def submit(self, items: list[Any]) -> tuple[list[Any], datetime]:
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((items, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            count = len(batch[0][0])
            while not self._queue.empty() and count < self.max_events:
                batch.append(self._queue.get_nowait())
                count += len(batch[-1][0])
            try:
                results = await asyncio.to_thread(self.pusher.intake_many, [items for items, _ in batch])
            except Exception as err:  # every waiting request is told (nothing was appended)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)


def install(app: Any, state: State) -> None:
    """Add the route and its metrics to the app."""
    state.event_metrics = EventMetrics(state.metrics.registry, state)
    app.include_router(router)


def _pusher(state: State) -> Any:
    """The process's Pusher and update worker, opened on first use (503 with the reason if not)."""
    if state.pusher is not None:
        return state.pusher
    from parity.features.push import Pusher, UpdateWorker
    from parity.ingest.fresh_plan import PlanError

    with _open_lock:
        if state.pusher is None:
            try:
                pusher = Pusher(state.settings)
                pusher.context.ensure()
            except (PlanError, OSError) as err:
                raise ServiceUnavailable(f"events cannot be accepted: {err}") from err
            metrics = state.event_metrics

            def observed(update: Any, events: list[tuple[str, datetime]]) -> None:
                done = set(update.customers)
                for customer, accepted_at in events:
                    if customer in done:
                        metrics.lag.labels(client_of(customer)).observe(
                            (update.online_at - accepted_at).total_seconds())
                    else:
                        metrics.not_online.labels(client_of(customer)).inc()

            state.events_worker = UpdateWorker(pusher, observed)
            state.events_intake = IntakeBatcher(pusher)
            state.pusher = pusher
    return state.pusher


@router.post("/v1/events", tags=["events"], dependencies=[Depends(authorised)],
             responses={401: {"description": "Missing/invalid API key"}, 403: {"description": "Key lacks role or scope"},
                        413: {"description": "Body too large"}, 422: {"description": "Invalid request"},
                        503: {"description": "No published build with fresh events, or the log cannot be written"}})
async def push_events(body: EventsRequest, request: Request, state: State = Depends(get_state)) -> OrjsonResponse:
    """Accept transactions: a verdict per event; accepted ones are durable, then online within seconds."""
    rid = request_id()
    ids = [e["customer_id"] for e in body.events if isinstance(e, dict) and isinstance(e.get("customer_id"), str)]
    check_scope(state, request.scope.get("state", {}).get("api_key"),
                customer_keys(state.settings.project_root).canonical_many(ids))
    _pusher(state)
    try:
        verdicts, accepted_at = await state.events_intake.submit(body.events)
    except OSError as err:  # the log could not be written: nothing was accepted
        raise ServiceUnavailable(f"event log cannot be written: {err}") from err
    state.events_worker.submit([(v.customer_id, accepted_at) for v in verdicts if v.status == "accepted"])
    counts = {s: sum(v.status == s for v in verdicts) for s in ("accepted", "duplicate", "rejected")}
    for status, n in counts.items():
        if n:
            state.event_metrics.events.labels(status).inc(n)
    return OrjsonResponse({"request_id": rid, "accepted_at": accepted_at.isoformat(), **counts,
                           "results": [v.as_dict() for v in verdicts]}, headers={"X-Request-ID": rid})
