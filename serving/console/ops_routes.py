"""The data health and operations pages (registered on the console's router)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from parity.config import Settings
from serving.console import auth, data, views
from serving.console.routes import (
    NotAllowed,
    _page,
    _safe_clients,
    _settings,
    record,
    router,
    session_of,
)

RECENT_BUILDS = 3
SAMPLE_PAGE = 25


def _build_history(settings: Settings, clients: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    """Per client, its line of each recent build: status, reconciliation sums, guard breaches."""
    from serving.console import builds

    history: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
    for build in builds.recent_builds(settings, RECENT_BUILDS):
        recon = builds.reconciliation_of(build["path"])
        sums = recon.frame.set_index("client_id").to_dict("index") if len(recon.frame) else {}
        for client in clients:
            history[client].append({**{k: v for k, v in build.items() if k != "path"}, "sums": sums.get(client),
                                    "problem": recon.problem, "client_guards": builds.guards_of(client, build)})
    return history


def _health(settings: Settings, session: auth.Session) -> dict[str, Any]:
    recon, quarantine, marks = data.reconciliation(settings), data.quarantine(settings), data.watermarks(settings)
    summary, summary_problem = data.monitoring_summary(settings)
    by_client = dict(zip(marks.frame["client_id"], marks.frame["watermark_at"])) if len(marks.frame) else {}
    clients = session.visible(_safe_clients(settings))
    return {"clients": views.health_by_client(clients, recon.frame, quarantine.frame, by_client),
            "problems": [p for p in (recon.problem, quarantine.problem, marks.problem) if p],
            "monitoring": summary, "monitoring_problem": summary_problem,
            "history": _build_history(settings, clients)}


@router.get("/health", response_class=HTMLResponse)
async def health(request: Request) -> Response:
    session = session_of(request, "health")
    settings = _settings(request)
    await record(request, session.who, "view_data_health")
    return _page(request, "health.html", session, **(await run_in_threadpool(_health, settings, session)))


@router.get("/health/quarantine", response_class=HTMLResponse)
async def quarantine(request: Request, client: str = "", reason: str = "", page: int = 1) -> Response:
    from serving.console import builds

    session = session_of(request, "health")
    settings = _settings(request)
    if client not in session.visible(_safe_clients(settings)):
        raise NotAllowed(f"key '{session.key_name}' does not see client {client!r}")
    page = max(1, page)
    await record(request, session.who, "view_quarantine", client=client, reason=reason, page=page)
    found = await run_in_threadpool(builds.quarantine_page, settings, client, reason, (page - 1) * SAMPLE_PAGE,
                                    SAMPLE_PAGE)
    total = int(found.frame["total"].iloc[0]) if len(found.frame) else 0
    return _page(request, "quarantine.html", session, client=client, reason=reason, page=page, problem=found.problem,
                 rows=found.frame.to_dict("records"), total=total, pages=max(1, -(-total // SAMPLE_PAGE)))


def _operations(settings: Settings, days: int, metrics: Any) -> dict[str, Any]:
    from serving.console import operations

    served = data.served_requests(settings, days)
    summary, monitoring_problem = data.monitoring_summary(settings)
    consistency, consistency_problem = data.consistency_summary(settings)
    samples = [(s.labels, s.value) for m in metrics.requests.collect() for s in m.samples
               if s.name.endswith("_total")] if metrics is not None else []
    return {"days": days, "problem": served.problem, "summary": operations.summary(served.frame),
            "daily": operations.by_day(served.frame).to_dict("records"),
            "heatmap": operations.heatmap_svg(operations.heatmap(served.frame)),
            "answers": operations.status_counts(samples),
            "monitoring": summary, "monitoring_problem": monitoring_problem,
            "drift": operations.drift_rows(summary),
            "freshness": ((summary or {}).get("freshness") or {}).get("clients") or [],
            "consistency": consistency, "consistency_problem": consistency_problem,
            "watermarks": data.watermarks(settings)}


@router.get("/operations", response_class=HTMLResponse)
async def operations_page(request: Request, days: int = 14) -> Response:
    session = session_of(request, "operations")
    settings = _settings(request)
    await record(request, session.who, "view_operations", days=days)
    metrics = getattr(request.app.state.parity, "metrics", None)
    found = await run_in_threadpool(_operations, settings, min(max(days, 1), 366), metrics)
    return _page(request, "operations.html", session, **found)
