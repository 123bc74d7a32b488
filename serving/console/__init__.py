"""The console: server-rendered pages for the people who act on the scores, under /console.

Customer lookup (through the service's own /v1/predict), review queue (human decisions on the
latest batch's flagged customers, stored append-only by `parity.reviews`), models (registry
versions, metrics, fairness, model cards), data health (reconciliation, quarantine, watermarks,
monitoring alerts) and operations (volume, latency, heat-map). Behind the API's keys and roles
(`serving.keys`): a login form turns a key into an HttpOnly session cookie (a random token).
Every asset is served from ./static; charts are inline SVG drawn on the server.

It imports `parity` and `serving` only (never training or batch: the import direction holds).
`install(app)` is the whole hook into serving/app.py.
"""

from __future__ import annotations

from typing import Any


def install(app: Any) -> None:
    """Mount the console's pages and static files on the FastAPI app."""
    from serving.console.routes import install as _install

    _install(app)
