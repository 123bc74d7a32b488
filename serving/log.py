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
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
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
# datetimes as str(value), as json.dumps(..., default=str) wrote them before orjson
_FEATURES_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_SERIALIZE_NUMPY


def features_json(columns: Mapping[str, Sequence[Any]], rows: Sequence[int], names: Sequence[str]) -> dict[int, str]:
    """The log's `features` value of each given row: its feature values as a JSON object (online
    values are plain str/int/float/None/datetime; NaN -> null), by row.

    Built in the request (orjson: ~1 µs per row): building it in the log writer held the GIL
    for ~70 ms per 5000-row flush and showed up as the p99 of concurrent requests.
    """
    table = list(zip(*(columns[name] for name in names)))  # one tuple per row
    dumps, options = orjson.dumps, _FEATURES_OPTIONS
    return {i: dumps(dict(zip(names, table[i])), default=str, option=options).decode() for i in rows}


class PredictionLog:
    """Buffered, durable prediction log with a background writer.

    A request turns its records into one Arrow record batch (~0.04 ms for 1 record, 0.12 ms for
    100) and appends it to an in-memory deque (atomic) without waking the writer: a queue whose
    `get` the writer blocks on hands the GIL to that thread on every record, which cost ~0.4 ms
    per request. The writer wakes every `flush_seconds`, or at once when `flush_rows` records
    are waiting, and writes what has accumulated. Converting in the request keeps the writer's
    own work (Parquet encoding, file I/O) in pyarrow code that releases the GIL: converting 500
    records there held the GIL ~0.5 ms, and the requests running meanwhile waited for it.
    """

    def __init__(self, folder: Path, flush_seconds: float = 2.0, flush_rows: int = 5000):
        self.folder = folder
        self.flush_seconds, self.flush_rows = flush_seconds, flush_rows
        self._buffer: collections.deque[pa.RecordBatch] = collections.deque()
        self._pending = 0  # records queued and not yet drained (under _count_lock)
        self._count_lock = threading.Lock()
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
        than dicts; converted to Arrow column by column, no per-field lookup)."""
        if not rows:
            return
        columns = [pa.array(values, type=field.type) for values, field in zip(zip(*rows), SCHEMA)]
        self._buffer.append(pa.RecordBatch.from_arrays(columns, schema=SCHEMA))
        with self._count_lock:
            self._pending += len(rows)
            due = self._pending >= self.flush_rows
        if due:
            self._wake.set()

    def _write(self, batches: list[pa.RecordBatch]) -> None:
        if not batches:
            return
        now = datetime.now(timezone.utc)
        folder = self.folder / f"date={now:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{now:%H%M%S}-{self._prefix}-{next(self._counter):06d}.parquet"
        tmp = folder / f".{name}.tmp"
        table = pa.Table.from_batches(batches, schema=SCHEMA)
        pq.write_table(table, tmp, coerce_timestamps="us")
        os.replace(tmp, folder / name)  # readers never see a half-written part
        self.written += table.num_rows

    def _drain(self) -> list[pa.RecordBatch]:
        """Everything appended so far, in order (popleft is atomic against concurrent appends)."""
        batches = []
        for _ in range(len(self._buffer)):
            batches.append(self._buffer.popleft())
        with self._count_lock:
            self._pending -= sum(batch.num_rows for batch in batches)
        return batches

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
