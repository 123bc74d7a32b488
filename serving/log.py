"""The prediction log: every prediction appended to Parquet by a background writer.

Requests only append records to an in-memory buffer (never blocking on disk); a writer thread
flushes batches to `<data>/serving/predictions/date=YYYY-MM-DD/part-*.parquet` every few seconds
or rows. `close()` (called on shutdown, including SIGTERM through uvicorn's lifespan) drains the
queue, so nothing is lost on a clean shutdown. Records hold the pseudonymous customer key and
feature values only — no PII reaches features.
"""

from __future__ import annotations

import collections
import itertools
import os
import threading
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


class PredictionLog:
    """Buffered, durable prediction log with a background writer.

    A request appends to an in-memory deque (atomic, no lock) and never wakes the writer: a
    queue whose `get` the writer blocks on hands the GIL to that thread on every record, which
    cost ~0.4 ms per request. The writer wakes every `flush_seconds`, or at once when
    `flush_rows` records are waiting, and writes what has accumulated.
    """

    def __init__(self, folder: Path, flush_seconds: float = 2.0, flush_rows: int = 5000):
        self.folder = folder
        self.flush_seconds, self.flush_rows = flush_seconds, flush_rows
        self._buffer: collections.deque[tuple[Any, ...]] = collections.deque()
        self._wake = threading.Event()
        self._closing = False
        self._counter = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, record: dict[str, Any]) -> None:
        """Queue one record, a dict by SCHEMA field name (missing fields are null; non-blocking)."""
        self.extend_rows([tuple(record.get(name) for name in FIELDS)])

    def extend(self, records: list[dict[str, Any]]) -> None:
        """Queue records given as dicts by SCHEMA field name (non-blocking)."""
        self.extend_rows([tuple(record.get(name) for name in FIELDS) for record in records])

    def extend_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Queue records given as tuples in SCHEMA order: the request path's form (cheaper to build
        than dicts, and the writer turns them into columns without a per-field lookup)."""
        self._buffer.extend(rows)
        if len(self._buffer) >= self.flush_rows:
            self._wake.set()

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        if not batch:
            return
        now = datetime.now(timezone.utc)
        folder = self.folder / f"date={now:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{now:%H%M%S}-{self._prefix}-{next(self._counter):06d}.parquet"
        tmp = folder / f".{name}.tmp"
        # column by column: pa.array holds the GIL while it converts, and a column of one type
        # converts several times faster than Table.from_pylist's dict-per-row walk
        columns = [pa.array(values, type=field.type) for values, field in zip(zip(*batch), SCHEMA)]
        pq.write_table(pa.Table.from_arrays(columns, schema=SCHEMA), tmp, coerce_timestamps="us")
        os.replace(tmp, folder / name)  # readers never see a half-written part
        self.written += len(batch)

    def _drain(self) -> list[tuple[Any, ...]]:
        """Everything appended so far, in order (popleft is atomic against concurrent appends)."""
        batch = []
        for _ in range(len(self._buffer)):
            batch.append(self._buffer.popleft())
        return batch

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            closing = self._closing  # read before draining: records appended before close() are kept
            self._write(self._drain())
            if closing:
                return

    def close(self, timeout: float = 30.0) -> None:
        """Flush everything queued so far and stop the writer."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout=timeout)
