"""The prediction log: every answered prediction is on disk before its answer is sent.

A request's records are one Arrow record batch, appended (one `write` call, length-framed IPC
bytes) to a write-ahead segment `<data>/serving/predictions/_wal/<process>-<n>.wal` before the
response goes out: once `write` returns, the kernel holds the bytes, so killing the process
(`kill -9`) loses nothing answered. With `sync="fsync"` the segment is also fsynced before the
answer (group commit: one fsync covers every request appended meanwhile), which survives a
power loss too. A writer thread compacts the buffered batches into Parquet parts
(`date=YYYY-MM-DD/part-*.parquet`) every few seconds or rows, then deletes the segment they came
from; at start-up, segments left by a dead process are compacted first (`recover`). A write
error never kills the writer: a failed compaction is retried with back-off (the records stay in
memory and in their segment), and a failed append raises `LogUnavailable`, which the service
answers with 503 — nothing answered goes unlogged. Records hold the pseudonymous customer key
and feature values only — no PII reaches features.
"""

from __future__ import annotations

import collections
import fcntl
import itertools
import logging
import os
import struct
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from serving.log_batch import record_batch_columns

log = logging.getLogger("serving.log")

SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("logged_at", pa.timestamp("us", tz="UTC")),
        ("request_at", pa.timestamp("us", tz="UTC")),  # the time the features were read for
        ("customer_id", pa.string()),
        ("model_version", pa.string()),
        ("role", pa.string()),  # primary | canary | shadow
        ("status", pa.string()),
        ("score", pa.float64()),
        ("decision", pa.bool_()),
        ("latency_ms", pa.float64()),
        ("features", pa.string()),  # JSON of the feature values used
    ]
)
FIELDS = tuple(SCHEMA.names)


class LogRow(NamedTuple):
    """One log record, built by field name; a tuple in SCHEMA order (what `extend_rows` takes)."""

    request_id: str
    logged_at: datetime
    request_at: datetime
    customer_id: str
    model_version: str
    role: str
    status: str
    score: float | None
    decision: bool | None
    latency_ms: float
    features: str | None


if LogRow._fields != FIELDS:  # the two declarations of the log's columns must not drift
    raise ImportError(f"serving.log.LogRow fields {LogRow._fields} differ from SCHEMA {FIELDS}")


WAL_DIR = "_wal"  # ignored by Parquet dataset readers (leading underscore)
_FRAME = struct.Struct("<4sI")  # magic, length of the IPC record batch that follows
_MAGIC = b"PLG1"
SYNC_MODES = ("write", "fsync")
_FAILED_FOR = 5.0  # seconds a failed append keeps /readyz not ready (requests retry it meanwhile)


class LogUnavailable(RuntimeError):
    """Records cannot be made durable: the request must not be answered (HTTP 503)."""


def read_segment(path: Path) -> tuple[list[pa.RecordBatch], int]:
    """The record batches of a write-ahead segment and the bytes after the last whole frame
    (a torn tail from a write cut short: skipped, reported by the caller)."""
    data = path.read_bytes()
    batches, pos = [], 0
    while pos + _FRAME.size <= len(data):
        magic, size = _FRAME.unpack_from(data, pos)
        end = pos + _FRAME.size + size
        if magic != _MAGIC or end > len(data):
            break
        batches.append(pa.ipc.read_record_batch(pa.py_buffer(data[pos + _FRAME.size:end]), SCHEMA))
        pos = end
    return batches, len(data) - pos


class _Segment:
    """One open write-ahead file, locked (flock) so recovery never takes a live process's."""

    def __init__(self, path: Path):
        self.path = path
        # created and locked under another name, then renamed: another worker's recovery (which
        # takes every unlocked *.wal) never sees it unlocked
        fresh = path.with_suffix(".new")
        self.fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(fresh, path)
        self.rows = 0
        self.broken = False

    def close(self, delete: bool) -> None:
        os.close(self.fd)  # releases the lock
        if delete:
            self.path.unlink(missing_ok=True)


class PredictionLog:
    """Durable prediction log: write-ahead segments per request, Parquet parts by a writer thread.

    A request turns its records into one Arrow record batch (~0.04 ms for 1 record, 0.12 ms for
    100), appends its IPC bytes to the current segment and the batch to an in-memory deque
    (under one lock, so a compaction takes exactly the batches of the segments it deletes). The
    writer wakes every `flush_seconds`, or at once when `flush_rows` records wait.

    With `wake_after_answers` (the service) the appending request never wakes the writer: the
    service calls `after_answer` once its answer is sent, which wakes it when `flush_rows` records
    wait or `flush_seconds` passed since the last compaction; its own timer then only runs every
    2 x `flush_seconds` (for an idle service). A compaction (2-7 ms of CPU, partly holding the
    GIL) thus starts between requests instead of inside the one that filled the buffer: under
    the benchmark's load, requests overlapping a compaction took 2-7x the median.
    """

    def __init__(self, folder: Path, flush_seconds: float = 2.0, flush_rows: int = 5000,
                 sync: str = "write", max_backlog_rows: int = 1_000_000, wake_after_answers: bool = False):
        if sync not in SYNC_MODES:
            raise ValueError(f"log sync must be one of {SYNC_MODES}, got {sync!r}")
        self.folder, self.sync = folder, sync
        self.flush_seconds, self.flush_rows, self.max_backlog_rows = flush_seconds, flush_rows, max_backlog_rows
        self.wal_dir = folder / WAL_DIR
        self._buffer: collections.deque[pa.RecordBatch] = collections.deque()
        self._retry: list[pa.RecordBatch] = []  # drained batches a failed compaction keeps
        self._done: list[_Segment] = []  # segments closed for appends (under _lock)
        self._compacting: list[_Segment] = []  # the writer's: segments whose batches it holds
        self._pending = 0  # records appended and not yet in a Parquet part (under _lock)
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._appended = self._synced = 0  # frames appended / fsynced (fsync mode's group commit)
        self._wake = threading.Event()
        self.wake_after_answers = wake_after_answers
        self._flushed_at = time.monotonic()  # when the writer last compacted (or started)
        self._closing = False
        self._counter = itertools.count()
        self._prefix = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.written = self.write_errors = 0
        self.recovered = self.torn_bytes = 0
        self.last_error: str | None = None  # the latest compaction error (None once one succeeds)
        self.append_error: str | None = None  # why the latest append failed
        self._failed_at = 0.0
        self.wal_dir.mkdir(parents=True, exist_ok=True)
        self.recover()
        self._segment = self._new_segment()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- request side

    def append(self, record: dict[str, Any]) -> None:
        """Log one record, a dict by SCHEMA field name (missing fields are null)."""
        self.extend_rows([tuple(record.get(name) for name in FIELDS)])

    def extend(self, records: list[dict[str, Any]]) -> None:
        """Log records given as dicts by SCHEMA field name."""
        self.extend_rows([tuple(record.get(name) for name in FIELDS) for record in records])

    def extend_rows(self, rows: list[tuple[Any, ...]]) -> int:
        """Log records given as tuples in SCHEMA order (the request path's form); durable against
        the process dying once this returns. Returns the frame's sequence number (for `sync_to`);
        raises LogUnavailable when the records cannot be written."""
        if not rows:
            return self._appended
        return self.extend_columns([list(values) for values in zip(*rows)])

    def extend_columns(self, columns: list[list[Any]]) -> int:
        """`extend_rows` with the records given column by column (lists in SCHEMA order, equal
        lengths): the request path builds its records this way, without a tuple per record."""
        n = len(columns[0]) if columns else 0
        if not n:
            return self._appended
        batch = record_batch_columns(columns, SCHEMA)
        payload = batch.serialize()
        frame = _FRAME.pack(_MAGIC, payload.size) + payload.to_pybytes()
        with self._lock:
            if self._pending + n > self.max_backlog_rows:
                raise self._fail(f"{self._pending} records wait for compaction (limit "
                                 f"{self.max_backlog_rows}): {self.last_error or 'writer behind'}")
            try:
                if self._segment.broken:
                    self._replace_segment()
                written = os.write(self._segment.fd, frame)
                if written != len(frame):  # a short write leaves a torn frame recovery skips
                    raise OSError(f"short write ({written} of {len(frame)} bytes)")
            except OSError as err:
                self._segment.broken = True  # nothing more after a torn frame: the next append starts a new one
                raise self._fail(f"cannot append to {self._segment.path}: {err}") from err
            self._buffer.append(batch)
            self._segment.rows += n
            self._pending += n
            self._appended += 1
            sequence = self._appended
            due = self._pending >= self.flush_rows
        if due and not self.wake_after_answers:
            self._wake.set()
        return sequence

    def after_answer(self) -> None:
        """Wake the writer if a compaction is due (records or time); the service calls it once an
        answer is sent. Cheap: two comparisons when nothing is due."""
        if self._pending and (self._pending >= self.flush_rows
                              or time.monotonic() - self._flushed_at >= self.flush_seconds):
            self._wake.set()

    def _replace_segment(self) -> None:
        """A fresh segment for appends after a failed one (under _lock); the old one keeps its
        whole frames, compacted with the others."""
        fresh = self._new_segment()
        self._done.append(self._segment)
        self._segment = fresh

    def sync_to(self, sequence: int) -> None:
        """fsync mode: return once frame `sequence` is on stable storage (one fsync serves every
        frame appended before it started: group commit). No-op in write mode."""
        if self.sync != "fsync":
            return
        with self._sync_lock:
            if self._synced >= sequence:
                return
            with self._lock:
                upto, fd = self._appended, self._segment.fd
            try:
                os.fsync(fd)
            except OSError as err:
                raise self._fail(f"cannot fsync the prediction log: {err}") from err
            self._synced = max(self._synced, upto)

    # ---------------------------------------------------------------- health

    @property
    def backlog(self) -> int:
        """Records appended and not yet in a Parquet part."""
        return self._pending

    def problem(self) -> str | None:
        """Why answered predictions cannot be logged now (None: they can): a backlog at its
        limit, or an append that failed in the last `_FAILED_FOR` seconds."""
        if self._pending >= self.max_backlog_rows:
            return f"{self._pending} records wait for compaction (limit {self.max_backlog_rows}): {self.last_error}"
        if self.append_error and time.monotonic() - self._failed_at < _FAILED_FOR:
            return self.append_error
        return None

    def _fail(self, message: str) -> LogUnavailable:
        self.append_error, self._failed_at = message, time.monotonic()
        return LogUnavailable(message)

    # ---------------------------------------------------------------- writer side

    def _new_segment(self) -> _Segment:
        return _Segment(self.wal_dir / f"{self._prefix}-{next(self._counter):06d}.wal")

    def _write_part(self, batches: list[pa.RecordBatch]) -> int:
        now = datetime.now(timezone.utc)
        folder = self.folder / f"date={now:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{now:%H%M%S}-{self._prefix}-{next(self._counter):06d}.parquet"
        tmp = folder / f".{name}.tmp"
        table = pa.Table.from_batches(batches, schema=SCHEMA)
        try:
            pq.write_table(table, tmp, coerce_timestamps="us")
            os.replace(tmp, folder / name)  # readers never see a half-written part
        finally:
            tmp.unlink(missing_ok=True)
        return table.num_rows

    def _rotate(self) -> list[pa.RecordBatch]:
        """Everything appended so far; later appends go to a fresh segment (the old one is
        deleted once its batches are in a part). Nothing is taken if a fresh one cannot open."""
        if not self._buffer:
            return []
        fresh = self._new_segment()  # an OSError here leaves everything as it was
        with self._lock:
            batches = [self._buffer.popleft() for _ in range(len(self._buffer))]
            self._compacting += [*self._done, self._segment]
            self._done, self._segment = [], fresh
        return batches

    def _flush(self) -> None:
        """Compact what waits into one part; on error keep it (memory and segments) for a retry."""
        try:
            self._retry += self._rotate()
            if not self._retry:
                return
            rows = self._write_part(self._retry)
        except Exception as err:  # any error: keep the records, retry later, never die
            self.write_errors += 1
            self.last_error = f"{type(err).__name__}: {err}"
            log.error("prediction log: cannot write a Parquet part (%d records kept, retrying): %s",
                      sum(b.num_rows for b in self._retry) + len(self._buffer), err)
            raise
        segments, self._compacting, self._retry = self._compacting, [], []
        self.last_error = None
        for segment in segments:  # a crash before this line logs these records twice, never zero times
            segment.close(delete=True)
        with self._lock:
            self._pending -= rows
        self.written += rows

    def _run(self) -> None:
        delay = 0.0
        while True:
            self._wake.wait(delay or (2 * self.flush_seconds if self.wake_after_answers else self.flush_seconds))
            self._wake.clear()
            self._flushed_at = time.monotonic()
            closing = self._closing  # read before draining: records appended before close() are kept
            try:
                self._flush()
                delay = 0.0
            except Exception:
                delay = min(max(delay * 2, 0.2), 10.0)  # back off up to 10 s between attempts
                if closing:
                    return  # the segments stay on disk: the next start recovers them
                continue
            if closing:
                return

    def recover(self) -> int:
        """Compact the segments of dead processes (those no live process locks) into one part and
        delete them; on error they stay for the next start. Returns the records recovered."""
        held, batches = [], []
        try:
            for path in sorted(self.wal_dir.glob("*.wal")):
                try:
                    fd = os.open(path, os.O_RDONLY)
                except FileNotFoundError:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:  # a live process writes it
                    os.close(fd)
                    continue
                if os.fstat(fd).st_nlink == 0:  # another worker's recovery just took and deleted it
                    os.close(fd)
                    continue
                held.append((path, fd))
                found, torn = read_segment(path)
                if torn:
                    log.warning("prediction log: %s ends with %d torn bytes (a write cut short): skipped", path, torn)
                self.torn_bytes += torn
                batches += found
            if batches:
                self.recovered = self._write_part(batches)
                log.warning("prediction log: recovered %d records from %d segment(s) of a process that "
                            "did not shut down cleanly", self.recovered, len(held))
            for path, _ in held:
                path.unlink(missing_ok=True)
        except Exception as err:  # never fatal: the segments stay for the next start
            self.last_error = f"recovery failed, segments kept: {type(err).__name__}: {err}"
            log.error("prediction log: %s", self.last_error)
        finally:
            for _, fd in held:
                os.close(fd)
        return self.recovered

    def close(self, timeout: float = 30.0) -> None:
        """Compact everything logged so far and stop the writer; segments it could not compact
        stay on disk for the next start's `recover`."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout=timeout)
        if self._thread.is_alive():
            return
        with self._lock:
            for segment in [*self._compacting, *self._done]:
                segment.close(delete=False)
            self._compacting, self._done = [], []
            self._segment.close(delete=self._segment.rows == 0)
