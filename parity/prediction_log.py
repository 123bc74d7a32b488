"""Which parts of the prediction log a time window needs, from the log's folder layout.

The service (serving/log.py) writes each Parquet part into the folder of the UTC day it *writes*
the part, `date=YYYY-MM-DD/part-*.parquet`, after every record in it was logged: a part's
records were all logged on or before its folder's day (a part compacted after a restart may
hold records of earlier days, never of later ones). So a folder whose day ended at or before a
window's start holds no record logged in the window and is not opened; the readers still filter
on `logged_at`. Parts outside any `date=` folder are always read (nothing is known of them).
Retention (parity/governance/retention.py) deletes by the same day folders.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

DAY_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})\Z")


def day_end(folder_name: str) -> datetime | None:
    """The end (UTC) of a `date=YYYY-MM-DD` folder's day; None for any other name."""
    match = DAY_PARTITION.match(folder_name)
    if not match:
        return None
    try:
        day = date.fromisoformat(match.group(1))
    except ValueError:  # date=2026-02-30: not the writer's, so not pruned
        return None
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=timezone.utc)


def parts(folder: Path, logged_since: datetime | None = None) -> list[Path]:
    """The log's Parquet parts (sorted; hidden files left out) that may hold a
    record logged at or after `logged_since` (None: every part)."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.rglob("*.parquet"):
        if path.name.startswith("."):
            continue
        if logged_since is not None:
            ends = [end for p in path.relative_to(folder).parts[:-1] if (end := day_end(p)) is not None]
            if ends and min(ends) <= logged_since:
                continue
        found.append(path)
    return sorted(found)
