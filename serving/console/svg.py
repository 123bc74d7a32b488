"""Inline SVG charts drawn on the server (no JavaScript, no CDN): the score history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28
# one style per series; the shapes differ too, so the chart reads without colour
SERIES = {"online": ("#1f6feb", "circle"), "batch": ("#b35900", "square")}


@dataclass(frozen=True)
class Point:
    """One score at a time, from a source ('online' or 'batch')."""

    at: datetime
    score: float
    source: str
    label: str


def _x(at: datetime, start: float, span: float) -> float:
    return LEFT + (at.timestamp() - start) / span * (WIDTH - LEFT - RIGHT)


def _y(score: float) -> float:
    return TOP + (1.0 - score) * (HEIGHT - TOP - BOTTOM)


def _marker(shape: str, x: float, y: float, colour: str, title: str) -> str:
    tip = f"<title>{escape(title)}</title>"
    if shape == "square":
        return f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="{colour}">{tip}</rect>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">{tip}</circle>'


def score_history(points: Sequence[Point], threshold: float | None) -> str:
    """A line chart of scores (0..1) over time with the decision threshold dashed; '' when empty."""
    if not points:
        return ""
    times = [p.at.timestamp() for p in points]
    start, end = min(times), max(times)
    span = max(end - start, 86400.0)  # a single day at least, so one point sits on the left
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'role="img" aria-label="score history, {len(points)} scores">']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _y(tick)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{tick:.2f}</text>')
    if threshold is not None and 0 <= threshold <= 1:
        y = _y(threshold)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="threshold">'
                     f'<title>decision threshold {threshold:.3f}</title></line>')
    for label, at in (("start", start), ("end", start + span)):
        x = LEFT if label == "start" else WIDTH - RIGHT
        text = datetime.fromtimestamp(at if label == "start" else end, timezone.utc).strftime("%Y-%m-%d")
        anchor = "start" if label == "start" else "end"
        parts.append(f'<text x="{x}" y="{HEIGHT - 8}" text-anchor="{anchor}" class="axis">{text}</text>')
    for source, (colour, shape) in SERIES.items():
        mine = sorted((p for p in points if p.source == source), key=lambda p: p.at)
        if len(mine) > 1:
            path = " ".join(f"{_x(p.at, start, span):.1f},{_y(p.score):.1f}" for p in mine)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        parts.extend(_marker(shape, _x(p.at, start, span), _y(p.score), colour, p.label) for p in mine)
    parts.append("</svg>")
    return "".join(parts)
