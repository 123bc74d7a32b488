"""The durable prediction log on real files: write-ahead segments, recovery after a process
died, a failed compaction retried with nothing lost, a failed append refused (503 upstream)."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest

from serving.log import WAL_DIR, LogUnavailable, PredictionLog, read_segment


def _rows(prefix: str, n: int) -> list[dict]:
    now = datetime.now(timezone.utc)
    return [{"request_id": f"{prefix}{i}", "logged_at": now, "customer_id": f"c{i}", "status": "ok", "score": 0.5}
            for i in range(n)]


def _logged(folder) -> list[str]:
    parts = list(folder.glob("date=*/*.parquet"))
    return sorted(r for p in parts for r in pq.read_table(p).column("request_id").to_pylist())


def _wait(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_records_are_in_the_write_ahead_segment_before_any_compaction(tmp_path):
    log = PredictionLog(tmp_path, flush_seconds=3600, flush_rows=10**9)
    log.extend(_rows("a", 3))
    log.extend(_rows("b", 2))
    segments = list((tmp_path / WAL_DIR).glob("*.wal"))
    assert len(segments) == 1 and _logged(tmp_path) == []
    batches, torn = read_segment(segments[0])
    assert torn == 0 and sum(b.num_rows for b in batches) == 5
    log.close()
    assert _logged(tmp_path) == sorted(["a0", "a1", "a2", "b0", "b1"])
    assert list((tmp_path / WAL_DIR).glob("*.wal")) == []  # compacted: segments deleted


def test_segments_of_a_dead_process_are_recovered_at_start_torn_tail_skipped(tmp_path):
    dead = PredictionLog(tmp_path, flush_seconds=3600, flush_rows=10**9)
    dead.extend(_rows("x", 4))
    segment = next((tmp_path / WAL_DIR).glob("*.wal"))
    with open(segment, "ab") as f:
        f.write(b"PLG1\x00\x10\x00\x00partial")  # a frame cut short
    # the process "dies": its lock goes with its file descriptor, nothing is compacted
    os.close(dead._segment.fd)
    dead._closing = True
    live = PredictionLog(tmp_path, flush_seconds=3600, flush_rows=10**9)
    assert live.recovered == 4 and live.torn_bytes == 15
    assert _logged(tmp_path) == ["x0", "x1", "x2", "x3"]
    assert segment.exists() is False
    live.close()


def test_a_live_processs_segment_is_never_taken_by_another_start(tmp_path):
    first = PredictionLog(tmp_path, flush_seconds=3600, flush_rows=10**9)
    first.extend(_rows("f", 2))
    second = PredictionLog(tmp_path, flush_seconds=3600, flush_rows=10**9)
    assert second.recovered == 0
    second.close()
    first.close()
    assert _logged(tmp_path) == ["f0", "f1"]


def test_a_failed_compaction_is_retried_and_loses_nothing(tmp_path):
    log = PredictionLog(tmp_path, flush_seconds=0.05, flush_rows=10**9)
    blocker = tmp_path / f"date={datetime.now(timezone.utc):%Y-%m-%d}"
    blocker.write_text("a file where the day's folder goes")  # mkdir fails, even for root
    log.extend(_rows("e", 3))
    _wait(lambda: log.write_errors >= 2)
    assert log.written == 0 and log.backlog == 3 and log.last_error and log.problem() is None
    log.extend(_rows("g", 2))  # appends still work: the records are in the write-ahead log
    blocker.unlink()
    _wait(lambda: log.written == 5)
    assert log.last_error is None and log.backlog == 0
    log.close()
    assert _logged(tmp_path) == ["e0", "e1", "e2", "g0", "g1"]
    assert list((tmp_path / WAL_DIR).glob("*.wal")) == []


def test_a_failed_append_is_refused_and_the_next_goes_to_a_fresh_segment(tmp_path):
    log = PredictionLog(tmp_path, flush_seconds=3600, flush_rows=10**9)
    log.extend(_rows("ok", 1))
    good = log._segment
    full = os.open("/dev/full", os.O_WRONLY)  # every write fails with ENOSPC
    saved, good.fd = good.fd, full
    with pytest.raises(LogUnavailable, match="No space left"):
        log.extend(_rows("lost", 2))
    assert "No space left" in log.problem()
    good.fd = saved
    os.close(full)
    log.extend(_rows("next", 1))  # a new segment: nothing is appended after a failed frame
    assert log._segment is not good
    log.close()
    assert _logged(tmp_path) == ["next0", "ok0"]


def test_backlog_limit_refuses_appends_until_the_writer_catches_up(tmp_path):
    log = PredictionLog(tmp_path, flush_seconds=3600, flush_rows=10**9, max_backlog_rows=5)
    log.extend(_rows("a", 5))
    with pytest.raises(LogUnavailable, match="limit 5"):
        log.extend(_rows("b", 1))
    assert log.problem()
    log.close()
    assert _logged(tmp_path) == [f"a{i}" for i in range(5)]


def test_fsync_mode_group_commits(tmp_path):
    log = PredictionLog(tmp_path, flush_seconds=3600, flush_rows=10**9, sync="fsync")
    first = log.extend_rows([("r1",) + (None,) * 10])
    second = log.extend_rows([("r2",) + (None,) * 10])
    log.sync_to(first)  # one fsync covers both frames
    assert log._synced == second
    log.sync_to(second)
    log.close()
    assert _logged(tmp_path) == ["r1", "r2"]


def test_record_batches_equal_pyarrow_arrays_of_the_same_values():
    import math
    import random
    from datetime import timedelta

    import pyarrow as pa

    from serving.log import SCHEMA
    from serving.log_batch import record_batch

    rng = random.Random(5)
    base = datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=timezone.utc)
    stamps = [None, base, base.replace(tzinfo=None), base - timedelta(days=20000, microseconds=1),
              base.astimezone(timezone(timedelta(hours=-7)))]
    strings = [None, "", "acme:AC-000001", "ünïcødé ✓", '{"spend_30d": 1.5, "x": null}']
    numbers = [None, 0.0, -1.25, 1e300, math.nan, math.inf, 3]
    rows = []
    for _ in range(300):
        rows.append(tuple(rng.choice(stamps) if f.type.id == pa.timestamp("us").id
                          else rng.choice(numbers) if f.type == pa.float64()
                          else rng.choice([None, True, False]) if f.type == pa.bool_()
                          else rng.choice(strings) for f in SCHEMA))
    for n in (1, 7, 300):
        got = record_batch(rows[:n], SCHEMA)
        expected = pa.RecordBatch.from_arrays([pa.array(v, type=f.type) for v, f in zip(zip(*rows[:n]), SCHEMA)],
                                              schema=SCHEMA)
        got.validate(full=True)
        # NaN != NaN in equals(): compare the IPC bytes (values, validity and NaN bits alike)
        assert got.serialize().to_pybytes() == expected.serialize().to_pybytes(), n


def test_the_service_mode_compacts_after_the_answer_not_inside_the_appending_request(tmp_path):
    """wake_after_answers: a full buffer does not wake the writer from `extend`; `after_answer`
    does (records or time due), and the records were durable all along."""
    log = PredictionLog(tmp_path, flush_seconds=3600, flush_rows=3, wake_after_answers=True)
    log.extend(_rows("a", 5))  # past flush_rows
    time.sleep(0.2)  # (a writer woken by extend would have compacted by now)
    assert log.written == 0 and log.backlog == 5 and _logged(tmp_path) == []
    log.after_answer()
    _wait(lambda: log.written == 5)
    log.extend(_rows("b", 1))  # below flush_rows, flush_seconds not reached: not due
    log.after_answer()
    time.sleep(0.2)
    assert log.written == 5 and log.backlog == 1
    log.flush_seconds = 0.0  # time due
    log.after_answer()
    _wait(lambda: log.written == 6)
    log.close()
    assert _logged(tmp_path) == ["a0", "a1", "a2", "a3", "a4", "b0"]
