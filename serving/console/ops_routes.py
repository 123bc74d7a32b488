"""The data health and operations pages (registered on the console's router)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from parity.config import Settings
from serving.console import auth, data, views
from serving.console.routes import _page, _safe_clients, _settings, record, router, session_of


def _health(settings: Settings, session: auth.Session) -> dict[str, Any]:
    recon, quarantine, marks = data.reconciliation(settings), data.quarantine(settings), data.watermarks(settings)
    summary, summary_problem = data.monitoring_summary(settings)
    by_client = dict(zip(marks.frame["client_id"], marks.frame["watermark_at"])) if len(marks.frame) else {}
    clients = session.visible(_safe_clients(settings))
    return {"clients": views.health_by_client(clients, recon.frame, quarantine.frame, by_client),
            "problems": [p for p in (recon.problem, quarantine.problem, marks.problem) if p],
            "monitoring": summary, "monitoring_problem": summary_problem}


@router.get("/health", response_class=HTMLResponse)
async def health(request: Request) -> Response:
    session = session_of(request, "health")
    settings = _settings(request)
    await record(request, session.who, "view_data_health")
    return _page(request, "health.html", session, **(await run_in_threadpool(_health, settings, session)))


def _operations(settings: Settings, days: int) -> dict[str, Any]:
    from serving.console import operations

    served = data.served_requests(settings, days)
    summary, _ = data.monitoring_summary(settings)
    return {"days": days, "problem": served.problem, "summary": operations.summary(served.frame),
            "daily": operations.by_day(served.frame).to_dict("records"),
            "heatmap": operations.heatmap_svg(operations.heatmap(served.frame)),
            "monitoring": summary, "watermarks": data.watermarks(settings)}


@router.get("/operations", response_class=HTMLResponse)
async def operations_page(request: Request, days: int = 14) -> Response:
    session = session_of(request, "operations")
    settings = _settings(request)
    await record(request, session.who, "view_operations", days=days)
    return _page(request, "operations.html", session, **(await run_in_threadpool(_operations, settings,
                                                                                 min(max(days, 1), 366))))
