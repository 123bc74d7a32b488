"""A window over the prediction log opens only the day folders it reaches (parity.prediction_log)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from parity import prediction_log
from serving.log import SCHEMA, LogRow

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=timezone.utc)


def write_part(folder: Path, written: datetime, logged: list[datetime], tag: str, role: str = "primary") -> Path:
    """A log part as serving/log.py writes it: the real SCHEMA, in the folder of the day it is
    written (records logged up to then, possibly on earlier days)."""
    rows = [LogRow(f"{tag}-{i}", at, at - timedelta(minutes=1), f"acme:AC-{i:06d}", "v0001", role,
                   "ok" if i % 3 else "stale_features", 0.1 * (i % 10), bool(i % 2), 5.0 + i, '{"spend_30d": 1.5}')
            for i, at in enumerate(logged)]
    day = folder / f"date={written:%Y-%m-%d}"
    day.mkdir(parents=True, exist_ok=True)
    path = day / f"part-{written:%H%M%S}-{tag}.parquet"
    pq.write_table(pa.Table.from_pylist([r._asdict() for r in rows], schema=SCHEMA), path, coerce_timestamps="us")
    return path


def corrupt_part(folder: Path, day: str, tag: str) -> Path:
    """A part no reader can open: a reader that touches it fails (or says so)."""
    path = folder / f"date={day}" / f"part-000000-{tag}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not parquet")
    return path


def test_a_window_skips_day_folders_that_ended_before_it(tmp_path):
    since = NOW - timedelta(days=7)  # 2026-06-23 12:00
    old = write_part(tmp_path, datetime(2026, 6, 22, 23, 0, tzinfo=timezone.utc), [NOW - timedelta(days=8)], "old")
    damaged = corrupt_part(tmp_path, "2026-06-01", "bad")
    # written on the window's first day: holds records logged before `since` as well, so it is read
    first = write_part(tmp_path, datetime(2026, 6, 23, 13, 0, tzinfo=timezone.utc),
                       [since - timedelta(hours=2), since + timedelta(minutes=30)], "first")
    # compacted after a restart on 06-25: holds a record logged days earlier, before the window
    late = write_part(tmp_path, datetime(2026, 6, 25, 8, 0, tzinfo=timezone.utc), [NOW - timedelta(days=9)], "late")
    loose = tmp_path / "legacy.parquet"  # outside any day folder: nothing known, always read
    loose.write_bytes(pq.read_table(first).to_pandas().to_parquet())
    (tmp_path / "date=2026-06-29").mkdir()
    (tmp_path / "date=2026-06-29" / ".part-x.parquet.tmp").write_bytes(b"")  # a part being written
    assert prediction_log.parts(tmp_path, logged_since=since) == sorted([first, late, loose])
    assert prediction_log.parts(tmp_path) == sorted([old, damaged, first, late, loose])
    assert prediction_log.parts(tmp_path / "missing", logged_since=since) == []
    # a day folder ending exactly at the window's start holds nothing logged in it
    assert prediction_log.parts(tmp_path, logged_since=datetime(2026, 6, 23, tzinfo=timezone.utc)) == sorted(
        [first, late, loose])
    assert prediction_log.day_end("date=2026-02-30") is None and prediction_log.day_end("x") is None
