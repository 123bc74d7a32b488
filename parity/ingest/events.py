"""The event log: pushed transactions, judged by the staging rules and appended durably.

An event is one transaction as JSON (`FIELDS`): the customer's platform key
'<client>:<customer id>' (as /v1/predict takes it), an event id (a later event with the same id
is a correction, as in a drop), purchase or refund, amount in the currency's units, currency,
category and the event time with a UTC offset. Intake (`judge`) runs the compiled SQL of the
staging model `stg_events__transactions` (parity.ingest.fresh_plan) on the batch, with the
intake time as the build time, so an event is refused for exactly the reasons the build would
quarantine it (codes and texts: dbt `vars.quarantine_reasons`); intake adds what only it can say:
fields the event format does not have, an id repeated within the request, a customer the
warehouse does not know (`orphan_customer`) and an exact re-send of an accepted event
(`duplicate`, accepted once). Accepted events are appended to `<data>/events/log.jsonl` with their
`accepted_at` and fsynced before anyone is told (`EventLog.append`); dbt reads the log as the
source `events` (`stg_events__transactions`), so the next build includes them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from parity.config import PROJECT_ROOT
from parity.customer_keys import customer_keys, pattern_sentence, strip_blanks
from parity.ingest.fresh_plan import (
    EVENTS_MODEL,
    INSTANT_PARAMETER,
    Plan,
    Statements,
    chain_sql,
    fill,
    run_sql,
)

EVENTS_TABLE = "events"  # the source_table of pushed events in the reconciliation
FIELDS = ("event_id", "customer_id", "transaction_type", "amount", "currency", "category", "transacted_at")
ACCEPTED_AT = "accepted_at"
# which event field a staging reason is about (record-level reasons name no field)
REASON_FIELDS = {
    "missing_transaction_id": "event_id", "malformed_transaction_id": "event_id",
    "missing_customer_id": "customer_id", "malformed_customer_id": "customer_id", "test_account": "customer_id",
    "unknown_client": "customer_id", "orphan_customer": "customer_id",
    "missing_offset": "transacted_at", "offset_out_of_range": "transacted_at", "unparseable_date": "transacted_at",
    "date_out_of_range": "transacted_at", "future_date": "transacted_at", "ambiguous_date": "transacted_at",
    "unknown_transaction_type": "transaction_type", "wrong_type": "amount", "non_finite_amount": "amount",
    "ambiguous_amount": "amount", "unparseable_amount": "amount", "negative_amount": "amount",
    "zero_amount": "amount", "absurd_amount": "amount", "unknown_currency": "currency",
}
# reasons only intake gives (never a build: such events never reach the log)
INTAKE_REASONS = {
    "not_an_object": "the event is not a JSON object",
    "unknown_field": "a field the event format does not have (fields: " + ", ".join(FIELDS) + ")",
    "duplicate_event_id": "the same event_id appears earlier in this request",
}


def events_dir(data_dir: Path) -> Path:
    return data_dir / "events"


def event_log_path(data_dir: Path) -> Path:
    """The log dbt reads (source `events`, dbt_project/models/events)."""
    return events_dir(data_dir) / "log.jsonl"


def ensure_event_log(settings: Any) -> Path:
    """The event log, created empty when absent (dbt reads it as a source in every build)."""
    path = event_log_path(settings.data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(exist_ok=True)
    return path


def event_customer_key(value: Any, project_root: Path = PROJECT_ROOT) -> str | None:
    """The customer key staging gives an event's `customer_id` (stg_events__transactions: trimmed,
    the client prefix lower-cased, the id normalised by its client's declared rule,
    parity.customer_keys), None when it names no '<client>:<id>'.
    Governance finds a customer's lines in the log with it (tests/parity/governance/test_forget.py:
    an event staging accepted for the customer, spelled ' ACME:<id>', is found and erased)."""
    if not isinstance(value, str):
        return None
    client, sep, source = strip_blanks(value).partition(":")
    if not (sep and client and strip_blanks(source)):
        return None
    return customer_keys(project_root).canonical(f"{client.lower()}:{source}")


def line_names_customer(raw: bytes, key: str, project_root: Path = PROJECT_ROOT) -> bool:
    """Whether a log line is the customer's event: its customer_id keyed as staging keys it; a
    line that is not a JSON object (never appended by intake) when it holds the key's text."""
    if key.partition(":")[2].lower().encode("utf-8") not in raw.lower():
        return False  # intake writes the id unescaped (in any case the client's rule folds): not this customer
    try:
        event = json.loads(raw)
    except ValueError:
        return key.encode("utf-8") in raw
    if not isinstance(event, dict):
        return key.encode("utf-8") in raw
    return event_customer_key(event.get("customer_id"), project_root) == key


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open file is still the one at `path` (a rewrite renames a new file over it)."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def rewrite_log(path: Path, drop: Callable[[bytes], bool]) -> int:
    """Rewrite the log without the lines `drop` selects (governance's erasure), atomically: a new
    file renamed over it while holding the appenders' lock, so no append is lost (an `EventLog`
    holding the old file notices the rename when it next takes the lock and reopens the path).
    Returns how many lines were removed; the file is left untouched when none is."""
    while True:
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not _same_file(fd, path):
                continue  # replaced while we waited: lock the file now at the path
            with os.fdopen(os.dup(fd), "rb") as handle:
                data = handle.read()
            lines = data.split(b"\n")  # the last item: b"" after a final newline, else a torn line
            kept = [line for line in lines[:-1] if not drop(line)]
            tail = lines[-1] if lines[-1] and not drop(lines[-1]) else b""
            removed = len(lines) - 1 - len(kept) + (1 if lines[-1] and not tail else 0)
            if not removed:
                return 0
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as out:
                out.write(b"".join(line + b"\n" for line in kept) + tail)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, os.fstat(fd).st_mode & 0o777)
            os.replace(tmp, path)
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)  # the rename itself is durable
            finally:
                os.close(folder)
            return removed
        finally:
            os.close(fd)  # releases the lock


@dataclass
class Verdict:
    """What intake says about one event of a request."""

    index: int
    event_id: Any
    customer_id: Any
    status: str  # accepted | duplicate | rejected
    errors: list[dict[str, Any]] = field(default_factory=list)
    line: str | None = None  # the log line of an accepted event
    transacted_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "event_id": self.event_id, "customer_id": self.customer_id,
                "status": self.status, "errors": self.errors}


def _error(reason: str, reasons: Mapping[str, str], field_name: str | None = None, detail: str | None = None) -> dict:
    text = reasons.get(reason) or INTAKE_REASONS.get(reason) or reason
    return {"field": field_name if field_name is not None else REASON_FIELDS.get(reason), "reason": reason,
            "detail": detail or text}


def _detail(reason: str, customer: str | None, client: str | None) -> str | None:
    """The customer-specific text of a customer-id reason (None: the reason's general text)."""
    if reason == "orphan_customer":
        return f"no customer record for {customer!r} (the key as the client's files key it)"
    expected = customer_keys().expected_form(client or "")
    if reason == "malformed_customer_id" and expected is not None:
        return pattern_sentence(client, expected)
    return None


def content_key(event: Mapping[str, Any]) -> str:
    """What makes two sends of an event the same event (its fields, not its accept time)."""
    return hashlib.sha256(json.dumps({k: event.get(k) for k in FIELDS}, sort_keys=True).encode()).hexdigest()


def _shape(index: int, item: Any, accepted_at: str, reasons: Mapping[str, str]) -> Verdict:
    """The format checks before staging: an object, known fields, finite JSON."""
    if not isinstance(item, dict):
        return Verdict(index, None, None, "rejected", [_error("not_an_object", reasons)])
    verdict = Verdict(index, item.get("event_id"), item.get("customer_id"), "accepted")
    unknown = sorted(k for k in item if k not in FIELDS)
    if unknown:
        verdict.status = "rejected"
        verdict.errors = [_error("unknown_field", reasons, k) for k in unknown[:10]]
        return verdict
    try:
        verdict.line = json.dumps({**{k: item[k] for k in FIELDS if k in item}, ACCEPTED_AT: accepted_at},
                                  allow_nan=False, ensure_ascii=False)
    except ValueError:
        verdict.status, verdict.errors = "rejected", [_error("non_finite_amount", reasons)]
    except TypeError as err:  # cannot happen with parsed JSON; said rather than raised
        verdict.status, verdict.errors = "rejected", [_error("not_an_object", reasons, detail=str(err))]
    return verdict


def judge(con: duckdb.DuckDBPyConnection, plan: Plan, items: Sequence[Any], accepted_at: datetime,
          reasons: Mapping[str, str], known: Mapping[str, str]) -> list[Verdict]:
    """Every item's verdict (request order). `con` has the published warehouse attached; `known`:
    '<client>:<event id>' -> content key of the events already in the log."""
    return judge_many(con, plan, [items], [accepted_at], reasons, known)[0]


def judge_many(con: duckdb.DuckDBPyConnection, plan: Plan, requests: Sequence[Sequence[Any]],
               accepted_at: Sequence[datetime], reasons: Mapping[str, str],
               known: Mapping[str, str], statements: Statements | None = None) -> list[list[Verdict]]:
    """`judge` for several requests at once (one staging run; the serving intake's group commit),
    each with its own accept time, judged as if one after the other: an event accepted by an
    earlier request of the batch is known to the later ones. `statements`: the connection's
    prepared chains (the staging SQL is planned once per connection, not per batch)."""
    verdicts = [[_shape(i, item, at.isoformat(), reasons) for i, item in enumerate(items)]
                for items, at in zip(requests, accepted_at, strict=True)]
    staged = [v for group in verdicts for v in group if v.status == "accepted"]
    if not staged:
        return verdicts
    instant = max(accepted_at).isoformat()  # no event arrives after its own intake
    batch = fill(con, "intake__batch", "raw_line", [v.line for v in staged])
    with_sql, view = chain_sql(plan, EVENTS_MODEL, {}, {plan.events_source: batch}, INSTANT_PARAMETER, "intake__")
    rows = run_sql(con, f"{with_sql} select line_number, quarantine_reason, customer_id, client_id, transaction_id, "
                        f"transacted_at from {view} order by line_number", instant, statements).fetchall()
    customers = plan.nodes["int_customers_deduplicated"].relation
    ids = [r[2] for r in rows if r[1] is None]
    existing = {r[0] for r in con.execute(
        f"select customer_id from {customers} where customer_id in (select unnest(?))", [ids]).fetchall()}
    if len(rows) != len(staged):  # every line is one record: anything else is a defect here
        raise RuntimeError(f"staging returned {len(rows)} rows for {len(staged)} events")
    judged = dict(zip(map(id, staged), rows))
    known = dict(known)
    for group in verdicts:
        seen: dict[str, int] = {}
        for verdict in group:
            if id(verdict) in judged:
                _finish(verdict, judged[id(verdict)], existing, seen, known, reasons)
    return verdicts


def _finish(verdict: Verdict, row: tuple, existing: set[str], seen: dict[str, int], known: dict[str, str],
            reasons: Mapping[str, str]) -> None:
    """A staged event's verdict: the staging reason, then what only intake can say."""
    _, reason, customer, client, event_id, transacted_at = row
    if reason is None and customer not in existing:
        reason = "orphan_customer"
    if reason is not None:
        verdict.status, verdict.errors = "rejected", [_error(reason, reasons, detail=_detail(reason, customer, client))]
        return
    key = f"{client}:{event_id}"
    if key in seen:
        verdict.status = "rejected"
        verdict.errors = [_error("duplicate_event_id", reasons, "event_id",
                                 f"event_id {event_id!r} is also at index {seen[key]} of this request")]
        return
    seen[key] = verdict.index
    verdict.customer_id, verdict.transacted_at = customer, transacted_at
    content = content_key(json.loads(verdict.line))
    if known.get(key) == content:
        verdict.status = "duplicate"  # a re-send of an accepted event: accepted once
    else:
        known[key] = content


class EventLog:
    """Append-only JSON-lines log with a lock per append (several processes may push) and fsync
    before returning; a torn last line (a crash mid-append: never acknowledged) is cut on open."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self._offset = 0
        self.known: dict[str, str] = {}  # '<client>:<event id>' -> content key of the newest version
        with self._locked():
            self._repair()
            self._catch_up()

    def _lock(self) -> None:
        """Take the appenders' lock on the file now at the path; after a rewrite (governance's
        erasure renamed a new log over the old one) reopen it and index it afresh."""
        while True:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            if _same_file(self._fd, self.path):
                return
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            self._offset, self.known = 0, {}

    def _locked(self) -> Any:
        log = self

        class _Lock:
            def __enter__(self) -> None:
                log._lock()

            def __exit__(self, *exc: Any) -> None:
                fcntl.flock(log._fd, fcntl.LOCK_UN)

        return _Lock()

    def _repair(self) -> None:
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        with open(self.path, "rb") as fh:
            fh.seek(max(0, size - 65536))
            tail = fh.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        keep = size - len(tail) + cut + 1 if cut >= 0 else (0 if size <= 65536 else None)
        if keep is None:
            raise RuntimeError(f"{self.path}: the last line is longer than 64 KiB and unterminated")
        os.truncate(self.path, keep)

    def _catch_up(self) -> None:
        """Index the lines appended since the last look (by this or another process)."""
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break
                self._offset += len(raw)
                try:
                    event = json.loads(raw)
                    customer, event_id = strip_blanks(str(event.get("customer_id", ""))), strip_blanks(str(event.get("event_id", "")))
                    self.known[f"{customer.split(':', 1)[0].lower()}:{event_id}"] = content_key(event)
                except (ValueError, AttributeError):
                    continue  # judged again (and quarantined) by the build

    def refresh(self) -> Mapping[str, str]:
        """The index, after reading what other processes appended."""
        with self._locked():
            self._catch_up()
        return self.known

    def append(self, lines: Sequence[str]) -> None:
        """Append the lines and fsync: durable when this returns."""
        if not lines:
            return
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        with self._locked():
            self._catch_up()
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")
            os.fsync(self._fd)
            self._catch_up()

    def close(self) -> None:
        os.close(self._fd)
