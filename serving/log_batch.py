"""The prediction log's record batches, built from numpy buffers: `pa.array` imports pandas on
its first call (pyarrow's pandas shim checks every input), ~0.15 s in the serving process, which
otherwise never imports pandas. The arrays equal `pa.array(values, type)` (nulls for None, NaN
kept as a value, timestamps in exact microseconds; a naive datetime is UTC, as pyarrow reads it)."""

from __future__ import annotations

from array import array
from datetime import datetime, timedelta, timezone
from itertools import accumulate
from typing import Any

import numpy as np
import pyarrow as pa

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
if (array("i").itemsize, array("q").itemsize, array("d").itemsize) != (4, 8, 8):  # Arrow's int32/int64/float64
    raise ImportError("serving.log_batch needs 4-byte 'i' and 8-byte 'q'/'d' arrays")
_MICROSECOND = timedelta(microseconds=1)


def record_batch(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.RecordBatch:
    """Records (tuples in schema order) as one record batch, equal to `pa.array` per column."""
    if not rows:
        return record_batch_columns([[] for _ in schema], schema)
    return record_batch_columns([list(values) for values in zip(*rows)], schema)


def record_batch_columns(columns: list[list[Any]], schema: pa.Schema) -> pa.RecordBatch:
    """Records given as one list per column (schema order, equal lengths) as one record batch."""
    unknown = [f.name for f in schema if f.type.id not in _ARRAY]
    if unknown:
        raise TypeError(f"no record batch builder for column(s) {unknown}")
    if len(columns) != len(schema) or len({len(c) for c in columns}) > 1:
        raise ValueError(f"expected {len(schema)} columns of equal length, got lengths {[len(c) for c in columns]}")
    n = len(columns[0]) if columns else 0
    arrays = [_ARRAY[field.type.id](values, field.type, n) for values, field in zip(columns, schema)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _validity(values: list[Any], n: int) -> tuple[pa.Buffer | None, int]:
    """The validity bitmap of a column (None: no nulls) and its null count."""
    if None not in values:
        return None, 0
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=n)
    return pa.py_buffer(np.packbits(valid, bitorder="little")), n - int(valid.sum())


def _strings(values: list[Any], kind: pa.DataType, n: int) -> pa.Array:
    validity, nulls = _validity(values, n)
    texts = [v or "" for v in values] if nulls else values
    joined = "".join(texts)
    if joined.isascii():  # one encode; lengths in characters are lengths in bytes
        data, lengths = joined.encode("ascii"), [len(t) for t in texts]
    else:
        encoded = [t.encode() for t in texts]
        data, lengths = b"".join(encoded), [len(b) for b in encoded]
    offsets = array("i", [0])  # int32 offsets, built without numpy's per-call overhead (~a µs each)
    offsets.extend(accumulate(lengths))
    return pa.Array.from_buffers(kind, n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)], nulls)


def _micros(value: datetime) -> int:
    """Microseconds since the epoch, exactly (a naive datetime is UTC, as pyarrow reads it)."""
    return ((value if value.tzinfo else value.replace(tzinfo=timezone.utc)) - _EPOCH) // _MICROSECOND


def _timestamps(values: list[Any], kind: pa.DataType, n: int) -> pa.Array:
    if kind.unit != "us":
        raise TypeError(f"timestamps in {kind.unit}: only microseconds are built here")
    validity, nulls = _validity(values, n)
    if n and values.count(values[0]) == n:  # one time for every record (logged_at; a request's default request_at)
        micros = array("q", [0 if values[0] is None else _micros(values[0])]) * n
    else:
        micros = array("q", [0 if v is None else _micros(v) for v in values])
    return pa.Array.from_buffers(kind, n, [validity, pa.py_buffer(micros)], nulls)


def _floats(values: list[Any], kind: pa.DataType, n: int) -> pa.Array:
    validity, nulls = _validity(values, n)
    data = array("d", [0.0 if v is None else v for v in values] if nulls else values)
    return pa.Array.from_buffers(kind, n, [validity, pa.py_buffer(data)], nulls)


def _bools(values: list[Any], kind: pa.DataType, n: int) -> pa.Array:
    validity, nulls = _validity(values, n)
    data = np.array([bool(v) for v in values] if nulls else values, dtype=bool)
    return pa.Array.from_buffers(kind, n, [validity, pa.py_buffer(np.packbits(data, bitorder="little"))], nulls)


_ARRAY = {pa.string().id: _strings, pa.timestamp("us").id: _timestamps, pa.float64().id: _floats,
          pa.bool_().id: _bools}
