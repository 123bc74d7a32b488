"""Stale features in the service: the limit (dbt's `vars.max_feature_age_days`, read once) and the
client watermarks, re-read when the `client_watermarks` mart changes (`parity.features.freshness`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from parity.features.freshness import (
    STALE,
    WATERMARKS_FILE,
    Watermarks,
    age_days,
    client_of,
    read_watermarks,
    stale_detail,
    verdict,
)


class WatermarkCache:
    """The client watermarks, re-read at most every `check_seconds` when the file changed."""

    def __init__(self, marts_dir: Path, check_seconds: float = 5.0):
        self.marts_dir, self.check_seconds = marts_dir, check_seconds
        self._lock = threading.Lock()
        self._checked = 0.0
        self.current = read_watermarks(marts_dir)

    def get(self) -> Watermarks:
        """The watermarks (a stat of the mart every few seconds; a re-read only when it changed)."""
        now = time.monotonic()
        if now - self._checked < self.check_seconds:
            return self.current
        with self._lock:
            if now - self._checked >= self.check_seconds:
                self._checked = now
                try:
                    mtime = (self.marts_dir / WATERMARKS_FILE).stat().st_mtime
                except OSError:
                    mtime = None
                if mtime != self.current.source_mtime:
                    self.current = read_watermarks(self.marts_dir)
        return self.current


def judge(ids: Sequence[str], times: Sequence[datetime], event_at: Sequence[datetime | None],
          found: Sequence[bool], limit: timedelta, watermarks: Watermarks) -> tuple[list[dict | None], list[int]]:
    """Per customer the freshness fields of its answer (features_at, feature_age_days,
    watermark_at; None for an unknown customer), and the rows whose features are too old to score
    (their fields also carry status 'stale_features' and a detail sentence)."""
    fields: list[dict | None] = [None] * len(ids)
    stale: list[int] = []
    # judged once per distinct (request time, feature time) and client: a request's customers
    # share one request time and a few snapshot times, so the per-customer work is a dict
    ages: dict[tuple[datetime, datetime | None], tuple[float | None, bool]] = {}
    marks: dict[str, datetime | None] = {}
    for i, ok in enumerate(found):
        if not ok:
            continue
        pair = (times[i], event_at[i])
        judged = ages.get(pair)
        if judged is None:
            age = age_days(*pair)
            judged = ages[pair] = (age, verdict(age, limit) == STALE)
        client = client_of(ids[i])
        watermark = marks[client] if client in marks else marks.setdefault(client, watermarks.of(client))
        age = judged[0]
        if judged[1]:
            fields[i] = {"features_at": pair[1], "feature_age_days": age, "watermark_at": watermark,
                         "status": STALE, "detail": stale_detail(age, limit, watermark)}
            stale.append(i)
        else:
            fields[i] = {"features_at": pair[1], "feature_age_days": age, "watermark_at": watermark}
    return fields, stale
