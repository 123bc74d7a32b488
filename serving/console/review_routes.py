"""The review queue page and its decisions (registered on the console's router)."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from parity import reviews
from parity.config import Settings
from serving.console import auth, data, views
from serving.console.routes import (
    PAGE_SIZE,
    _page,
    _settings,
    form_of,
    record,
    redirect_with,
    router,
    session_of,
)


@lru_cache(maxsize=4)
def _flagged(path: Path, mtime: float) -> pd.DataFrame:
    """A batch's flagged customers (cached per file version: batch files are replaced, not edited)."""
    return data.flagged(path)


_COSTS: dict[tuple[Path, str, str], dict[str, float]] = {}  # registry versions never change once written


def _costs(registry_dir: Path, model: str, version: str) -> dict[str, float] | None:
    """A version's costs; None while unreadable (not cached, so a repaired registry is seen)."""
    key = (registry_dir, model, version)
    if key not in _COSTS:
        costs = data.model_costs(registry_dir, model, version)
        if costs is None:
            return None
        _COSTS[key] = costs
    return _COSTS[key]


def _batch(settings: Settings) -> tuple[pd.DataFrame, str | None, str | None]:
    """(flagged rows, batch as-of text, problem) of the latest batch run."""
    path = data.latest_batch(settings)
    if path is None:
        return pd.DataFrame(), None, f"no batch scores under {settings.scores_dir}: run `make score`"
    try:
        frame = _flagged(path, path.stat().st_mtime)
    except Exception as err:  # a file replaced while read, or unreadable: say so
        return pd.DataFrame(), None, f"{path}: {err}"
    as_of = path.stem.removeprefix(data.SCORES_GLOB.split("*")[0])
    return frame, as_of, None


def _queue(settings: Settings, client: str, session: auth.Session) -> dict[str, Any]:
    """Everything the review page shows, for the clients the key may see (runs in a worker
    thread: file and SQLite reads)."""
    frame, as_of, problem = _batch(settings)
    if problem:
        return {"problem": problem}
    seen = list(session.visible(frame["client_id"].unique()))
    frame = frame[frame["client_id"].isin(seen)]
    costs = {v: _costs(settings.registry_dir, m, v)
             for m, v in frame[["model_name", "model_version"]].drop_duplicates().itertuples(index=False)}
    decided = reviews.decisions(settings.console_dir, as_of)
    decided = decided[decided["client_id"].isin(seen)]
    everything = reviews.decisions(settings.console_dir)
    pending, reviewed = views.review_queue(frame, costs, decided)
    if client:
        pending, reviewed = pending[pending["client_id"] == client], reviewed[reviewed["client_id"] == client]
    segments = frame[["customer_id", "segment_name"]].fillna({"segment_name": "no segment"})
    return {"problem": None, "as_of": as_of, "flagged": len(frame), "pending_total": len(pending),
            "pending": pending, "reviewed": reviewed.head(PAGE_SIZE), "reviewed_total": len(reviewed),
            "rates": reviews.override_rates(decided),
            "segment_rates": reviews.override_rates(decided.merge(segments, on="customer_id", how="left"),
                                                  by="segment_name"),
            "all_rates": reviews.override_rates(everything[everything["client_id"].isin(seen)]),
            "costs": costs, "missing_costs": sorted(v for v, c in costs.items() if c is None),
            "monitored": _monitored_reviews(settings, session)}


def _monitored_reviews(settings: Settings, session: auth.Session) -> dict[str, Any]:
    """The last monitoring run's review section (override rates, who was right); only for keys
    that see every client (its tables mix clients)."""
    if session.clients is not None:
        return {"problem": "monitoring's review tables span every client: shown to keys that see them all"}
    summary, problem = data.monitoring_summary(settings)
    if summary is None:
        return {"problem": problem}
    if "reviews" not in summary:
        return {"problem": "the last monitoring run predates review monitoring: run `make monitor`"}
    tables = {name: pd.DataFrame(rows) for name, rows in summary["reviews"].items()}
    return {"problem": None, "generated_at": summary.get("generated_at"), **tables}


@router.get("/review", response_class=HTMLResponse)
async def review(request: Request, client: str = "", page: int = 1, done: str = "", error: str = "") -> Response:
    session = session_of(request, "review")
    settings = _settings(request)
    await record(request, session.who, "view_review_queue", client=client)
    queue = await run_in_threadpool(_queue, settings, client, session)
    page = max(1, page)
    if not queue["problem"]:
        pages = max(1, math.ceil(queue["pending_total"] / PAGE_SIZE))
        page = min(page, pages)
        queue["rows"] = queue["pending"].iloc[(page - 1) * PAGE_SIZE: page * PAGE_SIZE].to_dict("records")
        queue["pages"] = pages
        queue["reviewed_rows"] = queue["reviewed"].to_dict("records")
    return _page(request, "review.html", session, q=queue, client=client, page=page, done=done, error=error,
                 reasons=reviews.OVERRIDE_REASONS)


def _decide(settings: Settings, session: auth.Session, form: dict[str, str]) -> str:
    """Record the form's decision against the latest batch's own row; the customer decided."""
    frame, as_of, problem = _batch(settings)
    if problem:
        raise reviews.DecisionError(problem)
    if form.get("batch_as_of") != as_of:
        raise reviews.DecisionError(f"a newer batch ({as_of}) replaced the one on your page: decide again on it")
    row = frame[frame["customer_id"] == form.get("customer_id", "")]
    if not len(row) or not session.sees(row.iloc[0]["client_id"]):
        raise reviews.DecisionError(f"{form.get('customer_id')!r} is not flagged in batch {as_of}")
    r = row.iloc[0]
    decision = reviews.Decision(
        customer_id=r["customer_id"], client_id=r["client_id"], batch_as_of=as_of,
        model_version=r["model_version"], score=float(r["score"]), action=form.get("action", ""),
        reason=form.get("reason") or None, note=form.get("note") or None)
    reviews.record_decision(settings.console_dir, session.who, session.key_name, decision)
    reviews.record_action(settings.console_dir, session.who, "review_decision", customer_id=decision.customer_id,
                        batch_as_of=as_of, action=decision.action, reason=decision.reason)
    return decision.customer_id


@router.post("/review")
async def decide(request: Request) -> Response:
    session = session_of(request, "review")
    form = await form_of(request)
    back = {"client": form.get("client", ""), "page": form.get("page", "")}
    if not auth.csrf_ok(session, form.get("csrf")):
        return redirect_with("/console/review", **back, error="the form expired: reload the page and decide again")
    try:
        customer = await run_in_threadpool(_decide, _settings(request), session, form)
    except reviews.DecisionError as err:
        return redirect_with("/console/review", **back, error=str(err))
    return redirect_with("/console/review", **back, done=customer)
