"""The prediction log: every prediction appended to Parquet by a background writer.

Requests only put a record on an in-memory queue (never blocking on disk); a writer thread
flushes batches to `<data>/serving/predictions/date=YYYY-MM-DD/part-*.parquet` every few seconds
or rows. `close()` (called on shutdown, including SIGTERM through uvicorn's lifespan) drains the
queue, so nothing is lost on a clean shutdown. Records hold the pseudonymous customer key and
feature values only — no PII reaches features.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("logged_at", pa.timestamp("us", tz="UTC")),
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


class PredictionLog:
    """Buffered, durable prediction log with a background writer."""

    def __init__(self, folder: Path, flush_seconds: float = 2.0, flush_rows: int = 5000):
        self.folder = folder
        self.flush_seconds, self.flush_rows = flush_seconds, flush_rows
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._counter = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, record: dict[str, Any]) -> None:
        """Queue one record (non-blocking)."""
        self._queue.put(record)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        if not batch:
            return
        now = datetime.now(timezone.utc)
        folder = self.folder / f"date={now:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{now:%H%M%S}-{self._prefix}-{next(self._counter):06d}.parquet"
        tmp = folder / f".{name}.tmp"
        pq.write_table(pa.Table.from_pylist(batch, schema=SCHEMA), tmp, coerce_timestamps="us")
        os.replace(tmp, folder / name)  # readers never see a half-written part
        self.written += len(batch)

    def _run(self) -> None:
        batch: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.flush_seconds
        while True:
            timeout = max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = ...
            if item is None:  # close(): drain what is left and stop
                self._write(batch)
                return
            if item is not ...:
                batch.append(item)
            if len(batch) >= self.flush_rows or time.monotonic() >= deadline:
                self._write(batch)
                batch = []
                deadline = time.monotonic() + self.flush_seconds

    def close(self, timeout: float = 30.0) -> None:
        """Flush everything queued so far and stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout=timeout)
