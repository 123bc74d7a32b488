"""Fresh events in the monitoring report: per client, how long a pushed event took from being
accepted to being readable online (the service's lag log, <data>/events/lag.jsonl, written by
parity.features.push), and how many events never got a fresh row (online after the next build)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from parity.features.fresh import lag_log_path


def lag_table(data_dir: Path, now: datetime, window_days: float, messages: list[str]) -> pd.DataFrame:
    """Per client over the window: events, online, not online, lag median / p99 / max (s), newest push."""
    path = lag_log_path(data_dir)
    if not path.exists():
        return pd.DataFrame()
    try:
        frame = pd.read_json(path, lines=True, dtype={"client_id": str})
    except ValueError as err:
        messages.append(f"{path}: unreadable lag log ({err}): event lag not reported")
        return pd.DataFrame()
    if frame.empty:
        return frame
    frame["accepted_at"] = pd.to_datetime(frame["accepted_at"], utc=True, format="ISO8601")
    frame = frame[frame["accepted_at"] >= pd.Timestamp(now - timedelta(days=window_days))]
    if frame.empty:
        return pd.DataFrame()
    rows = []
    for client, group in frame.groupby("client_id"):
        lags = group["lag_seconds"].dropna()
        rows.append({"client_id": client, "events": len(group), "online": len(lags),
                     "not_online": int(group["lag_seconds"].isna().sum()),
                     "lag_median_s": float(lags.median()) if len(lags) else None,
                     "lag_p99_s": float(lags.quantile(0.99)) if len(lags) else None,
                     "lag_max_s": float(lags.max()) if len(lags) else None,
                     "newest_accepted_at": group["accepted_at"].max()})
    return pd.DataFrame(rows)
