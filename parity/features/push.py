"""Pushing events: intake into the event log, then the affected customers' fresh features online.

`Pusher.intake` judges a batch (parity.ingest.events.judge: the staging model's compiled SQL),
appends the accepted events to the log (fsync) and returns a verdict per event. `Pusher.update`
recomputes the fresh features of the given customers with the mart's compiled SQL at one
instant (parity.features.fresh.recompute), writes them online and appends the pushed rows to the
offline history. `UpdateWorker` runs updates in a thread, coalescing every customer accepted
since the last update into one recompute (serving answers the push once it is durable; the
online update follows within the lag `/metrics` reports).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa

from parity.config import dbt_vars
from parity.features.fresh import (
    FreshContext,
    OnlineWriter,
    Update,
    append_history,
    append_lags,
    fresh_mart,
    open_writer,
    recompute,
)
from parity.ingest.events import EventLog, Verdict, event_log_path, judge_many

log = logging.getLogger("parity.features.push")


def client_of(customer_id: str) -> str:
    return customer_id.split(":", 1)[0]


class Pusher:
    """The event log, the published build's plan and the online writer, for one process."""

    def __init__(self, settings: Any, clock: Callable[[], datetime] | None = None, index_pairs: bool = True):
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(timezone.utc))  # tests shift it to a snapshot's week
        self.context = FreshContext(settings.published_dir)  # intake
        # updates on their own connection: a recompute never holds up the next intake
        self.update_context = FreshContext(settings.published_dir, index_pairs=index_pairs)
        self.log = EventLog(event_log_path(settings.data_dir))
        self.reasons: Mapping[str, str] = dbt_vars(settings.project_root).get("quarantine_reasons") or {}
        self._writers: dict[tuple[Any, str], OnlineWriter] = {}

    def intake(self, items: Sequence[Any]) -> tuple[list[Verdict], datetime]:
        """Judge the events and append the accepted ones durably; (verdicts, accepted_at)."""
        return self.intake_many([items])[0]

    def intake_many(self, requests: Sequence[Sequence[Any]]) -> list[tuple[list[Verdict], datetime]]:
        """Several requests judged in one staging run and appended with one fsync (group commit),
        each with its own accept time (distinct: a re-sent id in a later request is a later version)."""
        base = self.clock()
        times = [base + timedelta(microseconds=i) for i in range(len(requests))]
        with self.context.lock:
            con, plan = self.context.ensure()
            results = judge_many(con, plan, requests, times, self.reasons, self.log.refresh(), self.context.statements)
        self.log.append([v.line for group in results for v in group if v.status == "accepted" and v.line])
        return list(zip(results, times))

    def _writer(self, view: str) -> OnlineWriter:
        build = self.update_context.build
        if (build, view) not in self._writers:
            for old in self._writers.values():
                old.close()
            self._writers = {(build, view): open_writer(self.settings, view)}
        return self._writers[(build, view)]

    def update(self, events: Sequence[tuple[str, datetime]], record_lags: bool = True) -> Update:
        """Recompute and write the fresh features of the customers of these accepted events
        (customer, accepted_at) and of the previous owners of their event ids (a correction that
        moves a purchase changes both); each event's accept -> online lag goes to the lag log
        (`record_lags` False: not events, e.g. governance recomputing after an erasure)."""
        accepted: dict[str, datetime] = {}
        for customer, at in events:
            accepted[customer] = min(at, accepted.get(customer, at))
        as_of = self.clock()  # after every acceptance: all of them are in the log
        with self.update_context.lock:
            con, plan = self.update_context.ensure()
            mart = fresh_mart(plan)
            table = recompute(con, plan, list(accepted), as_of, self.log.path, mart, self.update_context.staged_log,
                              self.update_context.pairs, owners=True)
            view, columns, types = plan.views[mart], plan.fresh[mart], plan.types[mart]
            writer = self._writer(view)
        # only customers the online store holds (a snapshot row to complete): the others are
        # in the log and come online with the next build and materialization
        ids = table.column("customer_id").to_pylist()
        known = writer.known([writer.key(c) for c in ids])
        table = table.filter(pa.array([writer.key(c) in known for c in ids], pa.bool_()))
        writer.write(writer.rows(table, columns, types, as_of), columns)
        online_at = self.clock()
        history = append_history(self.settings.data_dir, view, table, columns, as_of, online_at, accepted)
        update = Update(tuple(table.column("customer_id").to_pylist()), as_of, online_at, history)
        if record_lags:
            append_lags(self.settings.data_dir, events, update)
        return update

    def served_stale(self, update: Update) -> list[str]:
        """The updated customers whose snapshot was already too old to score at the push (serving's
        rule, parity.features.freshness): online as pushed, but answered `stale_features` until a
        newer snapshot is built — e.g. a push at the real time onto data that ends months earlier."""
        from parity.features.freshness import STALE, age_days, max_feature_age, verdict

        if not update.customers:
            return []
        plan = self.update_context.plan
        writer = self._writer(plan.views[fresh_mart(plan)])
        times = writer.snapshot_times([writer.key(c) for c in update.customers])
        limit = max_feature_age(self.settings.project_root)
        return [c for c in update.customers if (at := times.get(writer.key(c))) is not None
                and verdict(age_days(update.as_of, at), limit) == STALE]

    def push(self, items: Sequence[Any]) -> tuple[list[Verdict], Update | None]:
        """Intake and update at once (the CLI's path)."""
        verdicts, accepted_at = self.intake(items)
        changed = [(v.customer_id, accepted_at) for v in verdicts if v.status == "accepted"]
        return verdicts, (self.update(changed) if changed else None)

    def close(self) -> None:
        self.context.close()
        self.update_context.close()
        self.log.close()


class UpdateWorker:
    """Updates in a background thread: each round takes every customer accepted so far."""

    def __init__(self, pusher: Pusher, on_update: Callable[[Update, list[tuple[str, datetime]]], None] | None = None):
        self.pusher, self.on_update = pusher, on_update or (lambda update, events: None)
        self._queue: queue.Queue[list[tuple[str, datetime]] | None] = queue.Queue()
        self.last_error: str | None = None
        self.pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="fresh-updates", daemon=True)
        self._thread.start()

    def submit(self, events: list[tuple[str, datetime]]) -> None:
        """Customers of accepted events, with each event's accepted_at."""
        if events:
            with self._lock:
                self.pending += len(events)
            self._queue.put(events)

    def _drain(self, first: list[tuple[str, datetime]]) -> list[tuple[str, datetime]]:
        events = list(first)
        while True:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                return events
            if more is None:
                self._queue.put(None)  # stop after this round
                return events
            events.extend(more)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            events = self._drain(first)
            try:
                update = self.pusher.update(events)
                self.last_error = None
                self.on_update(update, events)
            except Exception as err:  # the events are durable in the log: the next build has them
                self.last_error = f"{type(err).__name__}: {err}"
                log.exception("online update of %d events failed", len(events))
            finally:
                with self._lock:
                    self.pending -= len(events)

    def stop(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)


def read_events_file(path: Any) -> list[Any]:
    """The events of a file: JSON lines (one event per line), or one JSON array / {"events": [...]}.
    A line that is not JSON stays in the list as its text, so it is rejected with its index."""
    import json
    from pathlib import Path

    text = Path(path).read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        return list(json.loads(text))
    if stripped.startswith("{") and "\n" not in stripped.strip():
        data = json.loads(text)
        return list(data["events"]) if isinstance(data, dict) and isinstance(data.get("events"), list) else [data]
    items: list[Any] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except ValueError:
            items.append(line)  # not an object: rejected as such, with its index
    return items
