"""Operations view: prediction volume, status rates and latency from the prediction log, and the
latency heat-map (hour of day x request size) as inline SVG. Pure: a frame in, numbers out."""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np
import pandas as pd

SIZES = ((1, 1, "1"), (2, 10, "2-10"), (11, 100, "11-100"), (101, 10**9, "101+"))
CELL_W, CELL_H, LEFT, TOP = 24, 26, 60, 18


def summary(requests: pd.DataFrame) -> dict[str, Any]:
    """Totals over the window: requests, predictions, status rates, latency percentiles (ms)."""
    if not len(requests):
        return {"requests": 0}
    predictions = int(requests["customers"].sum())
    latency = requests["latency_ms"].to_numpy(dtype="float64")
    return {"requests": len(requests), "predictions": predictions,
            "ok_rate": requests["ok"].sum() / predictions, "stale_rate": requests["stale"].sum() / predictions,
            "unknown_rate": requests["unknown"].sum() / predictions,
            "p50": float(np.percentile(latency, 50)), "p95": float(np.percentile(latency, 95)),
            "p99": float(np.percentile(latency, 99)), "since": requests["at"].min(), "until": requests["at"].max()}


def by_day(requests: pd.DataFrame) -> pd.DataFrame:
    """Per UTC day: requests, predictions, unknown and stale shares, latency p50/p95/p99."""
    if not len(requests):
        return pd.DataFrame()
    day = requests["at"].dt.floor("D")
    grouped = requests.groupby(day)
    out = pd.DataFrame({"requests": grouped.size(), "predictions": grouped["customers"].sum(),
                        "unknown_rate": grouped["unknown"].sum() / grouped["customers"].sum(),
                        "stale_rate": grouped["stale"].sum() / grouped["customers"].sum(),
                        "p50": grouped["latency_ms"].quantile(0.5), "p95": grouped["latency_ms"].quantile(0.95),
                        "p99": grouped["latency_ms"].quantile(0.99)})
    return out.reset_index(names="day").sort_values("day", ascending=False)


def size_label(customers: int) -> str:
    """The request-size bucket a request of `customers` customers falls in."""
    return next(label for low, high, label in SIZES if low <= customers <= high)


def heatmap(requests: pd.DataFrame) -> list[list[tuple[int, float | None]]]:
    """p95 latency (ms) and request count per (size bucket, UTC hour of day): rows = SIZES."""
    cells = [[(0, None) for _ in range(24)] for _ in SIZES]
    if not len(requests):
        return cells
    size = requests["customers"].map(size_label)
    hour = requests["at"].dt.hour
    for (label, h), part in requests.groupby([size, hour])["latency_ms"]:
        row = [s[2] for s in SIZES].index(label)
        cells[row][int(h)] = (len(part), float(part.quantile(0.95)))
    return cells


def heatmap_svg(cells: list[list[tuple[int, float | None]]]) -> str:
    """The heat-map as SVG: darker = slower p95; empty cells blank; a tooltip per cell."""
    values = [v for row in cells for _, v in row if v is not None]
    if not values:
        return ""
    low, high = min(values), max(values)
    width, height = LEFT + 24 * CELL_W + 4, TOP + len(SIZES) * CELL_H + 22
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" viewBox="0 0 {width} {height}" role="img" '
             'aria-label="p95 latency by hour of day and request size">']
    for r, (_, _, label) in enumerate(SIZES):
        y = TOP + r * CELL_H
        parts.append(f'<text x="{LEFT - 6}" y="{y + CELL_H / 2 + 4:.0f}" text-anchor="end" class="axis">{label}</text>')
        for h, (count, p95) in enumerate(cells[r]):
            x = LEFT + h * CELL_W
            if p95 is None:
                parts.append(f'<rect x="{x}" y="{y}" width="{CELL_W - 2}" height="{CELL_H - 2}" class="empty"/>')
                continue
            share = 0.0 if high == low else (p95 - low) / (high - low)
            light = 92 - 57 * share  # 92% (fast) .. 35% (slow) lightness of one hue
            tip = f"{h:02d}:00 UTC, {label} customers: p95 {p95:.1f} ms over {count} requests"
            parts.append(f'<rect x="{x}" y="{y}" width="{CELL_W - 2}" height="{CELL_H - 2}" '
                         f'fill="hsl(18, 85%, {light:.0f}%)"><title>{escape(tip)}</title></rect>')
    for h in range(0, 24, 3):
        parts.append(f'<text x="{LEFT + h * CELL_W + CELL_W / 2:.0f}" y="{height - 6}" text-anchor="middle" '
                     f'class="axis">{h:02d}</text>')
    parts.append(f'<text x="{LEFT}" y="12" class="axis">p95 latency {low:.1f} ms (light) to {high:.1f} ms (dark)'
                 '; rows: customers per request, columns: hour of day (UTC)</text></svg>')
    return "".join(parts)


def status_counts(samples: list[tuple[dict[str, str], float]], path: str = "/v1/predict") -> dict[str, Any]:
    """HTTP answers of `path` by class from the request counter's samples (labels path, status):
    total, 4xx, 5xx and the error rate (5xx: the service failed; 4xx: the caller's request)."""
    counts = {"total": 0, "client_errors": 0, "server_errors": 0}
    for labels, value in samples:
        if labels.get("path") != path:
            continue
        counts["total"] += int(value)
        status = str(labels.get("status", ""))
        if status.startswith("4"):
            counts["client_errors"] += int(value)
        elif status.startswith("5"):
            counts["server_errors"] += int(value)
    total = counts["total"]
    return {**counts, "client_error_rate": counts["client_errors"] / total if total else None,
            "server_error_rate": counts["server_errors"] / total if total else None}


def drift_rows(summary: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The drift alerts of a monitoring summary (feature and prediction drift, schema)."""
    if not summary:
        return []
    return [a for a in summary.get("alerts") or [] if a.get("check") in ("feature drift", "prediction drift", "schema")]
