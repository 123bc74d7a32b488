"""The monitoring report's pushed-event lag per client, from the service's lag log."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from monitoring.event_lag import lag_table


def test_lag_per_client_over_the_window(tmp_path):
    now = datetime(2026, 12, 2, 12, tzinfo=timezone.utc)
    lines = [{"client_id": "acme", "accepted_at": (now - timedelta(minutes=i)).isoformat(),
              "online_at": now.isoformat(), "lag_seconds": 0.1 * (i + 1)} for i in range(10)]
    lines.append({"client_id": "acme", "accepted_at": now.isoformat(), "online_at": None, "lag_seconds": None})
    lines.append({"client_id": "bolt", "accepted_at": (now - timedelta(days=40)).isoformat(),
                  "online_at": now.isoformat(), "lag_seconds": 9.0})  # outside the window
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "lag.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    messages: list[str] = []
    table = lag_table(tmp_path, now, 30, messages)
    assert messages == [] and list(table["client_id"]) == ["acme"]
    row = table.iloc[0]
    assert (row["events"], row["online"], row["not_online"]) == (11, 10, 1)
    assert abs(row["lag_median_s"] - 0.55) < 1e-9 and abs(row["lag_max_s"] - 1.0) < 1e-9


def test_no_lag_log_is_an_empty_table(tmp_path):
    assert lag_table(tmp_path, datetime.now(timezone.utc), 30, []).empty
