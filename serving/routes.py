"""The service's routes, at module level: each takes the running `State` as a dependency
(`get_state`); `/v1/predict` checks, reads features, calls `serving.answer.answer` (a plain
function) and logs before it answers."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from parity.customer_keys import customer_keys
from parity.features.online import EVENT_AT, FOUND
from serving.answer import answer
from serving.customer_ids import canonical_ids
from serving.freshness import judge
from serving.guard import key_problem, offered_key
from serving.log import LogUnavailable
from serving.schemas import PredictRequest, PredictResponse, parse_predict_body, utc_times
from serving.state import (
    ServiceUnavailable,
    State,
    Unauthorized,
    check_key,
    check_request_times,
    check_scope,
    open_reader,
    store_problem,
)

router = APIRouter()
_bearer = HTTPBearer(auto_error=False)
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_state(request: Request) -> State:
    """The running service's state (create_app puts it on the app); async: no thread-pool hop."""
    return request.app.state.parity


# async dependencies and endpoints run on the event loop: no thread-pool hop per request
async def authorised(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_bearer),
                     api_key: str | None = Depends(_api_key_header)) -> None:
    """The routes' own key check (the guard middleware refused bad keys before the body)."""
    check_key(request.app.state.parity, creds, api_key)


class OrjsonResponse(Response):
    """JSON body encoded by orjson (~8x faster than json.dumps on a 100-customer answer; NaN ->
    null instead of an error)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


_ids = random.Random()  # seeded from os.urandom once; request ids need uniqueness, not secrecy
# forked workers (serving/workers.py) would otherwise draw the same id sequence
os.register_at_fork(after_in_child=_ids.seed)


def request_id() -> str:
    """A random UUID4 as 32 hex digits, without an os.urandom call per request (~0.2 ms here)."""
    return uuid.UUID(int=_ids.getrandbits(128), version=4).hex


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"])
def readyz(state: State = Depends(get_state)) -> JSONResponse:
    """Ready when a model is loaded, the feature registry is applied and the online store answers."""
    problems, notes = [], []
    if state.draining:
        problems.append("shutting down (SIGTERM): finishing in-flight requests")
    if state.plog is not None:
        if state.plog.problem():
            problems.append(f"predictions cannot be logged: {state.plog.problem()}")
        elif state.plog.last_error:  # the records are safe in the write-ahead log meanwhile
            notes.append(f"prediction log compaction failing ({state.plog.backlog} records waiting, "
                         f"retrying): {state.plog.last_error}")
    active = state.slot.active if state.slot else None
    if active is None or active.primary is None:
        problems.append(active.error if active else "starting")
    elif state.slot.problem:  # still serving the loaded model: ready, but say what is wrong
        notes.append(f"serving {active.primary.version}, but {state.slot.problem}")
    if state.reader is None:
        open_reader(state)
    store = store_problem(state, force=True) if state.reader is not None else None
    if state.reader is None:  # (also when a re-created store file could not be reopened)
        problems.append(state.reader_error or "feature store not ready")
    else:
        if store:
            problems.append(store)
        if state.reader.fallback_reason:  # ready, but reading through Feast (no/stale manifest)
            notes.append(f"online features read through Feast: {state.reader.fallback_reason}")
        try:
            state.reader.read_columns(["__readyz__"], datetime.now(timezone.utc))
        except Exception as err:
            problems.append(f"online store unreachable: {err}")
    worker = state.events_worker  # POST /v1/events (serving/events.py): events stay durable meanwhile
    if worker is not None and worker.last_error:
        notes.append(f"pushed events are logged but their online update fails: {worker.last_error}")
    marks = state.watermarks.get() if state.watermarks else None
    if marks is not None and marks.problem:  # ready: staleness is judged by feature age alone
        notes.append(f"client watermarks unknown: {marks.problem}")
    body = {"status": "ready" if not problems else "not ready", "problems": problems,
            "registry_problem": state.slot.problem if state.slot else None,
            "model_version": getattr(active.primary, "version", None) if active else None,
            "feature_reader": getattr(state.reader, "kind", None), "notes": notes}
    return JSONResponse(body, status_code=200 if not problems else 503)


@router.get("/metrics", tags=["health"], response_class=PlainTextResponse)
def metrics(state: State = Depends(get_state)) -> PlainTextResponse:
    """Prometheus metrics."""
    from prometheus_client import CONTENT_TYPE_LATEST

    from serving.workers import merged_exposition  # every worker's metrics, labelled by worker

    return PlainTextResponse(merged_exposition(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/model", tags=["model"], dependencies=[Depends(authorised)], response_model=dict)
def model_info(state: State = Depends(get_state)) -> dict[str, Any]:
    """Metadata of the current model (and of the canary/shadow candidates)."""
    active = state.slot.active
    if active.primary is None:
        raise ServiceUnavailable(active.error)
    meta = active.primary.metadata
    return {
        "name": active.primary.model,
        "version": active.primary.version,
        "threshold": active.primary.threshold,
        "feature_service": active.primary.feature_service,
        "metadata": {k: v for k, v in meta.items() if k not in ("prepare_spec",)},
        "canary": {"version": getattr(active.canary, "version", None), "share": state.config.canary_share},
        "shadow": {"version": getattr(active.shadow, "version", None)},
        "segments": {"version": getattr(state.segments.active.primary, "version", None)},
    }


# The body is read by the route itself (serving.schemas.parse_predict_body, same 422 errors) and the
# key checked without FastAPI dependencies: the request body and security stay documented here
_PREDICT_OPENAPI = {
    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}},
                    "required": True},
    "security": [{"HTTPBearer": []}, {"APIKeyHeader": []}],
}


def document_predict_body(app: Any) -> None:
    """Add PredictRequest (and the models it uses) to the app's OpenAPI components: the route
    refers to it, but FastAPI lists only the models of parameters it parses itself. The schemas
    are FastAPI's own, from a throwaway app whose route takes the body as a parameter."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = generate().setdefault("components", {}).setdefault("schemas", {})
            probe = FastAPI()

            @probe.post("/")
            def _body(body: PredictRequest) -> None:
                """Only documents the body."""

            for name, definition in probe.openapi()["components"]["schemas"].items():
                if name not in ("HTTPValidationError", "ValidationError"):  # 422 is documented as ours
                    schemas.setdefault(name, definition)
        return app.openapi_schema

    app.openapi = openapi


@router.post("/v1/predict", tags=["model"], response_model=PredictResponse, openapi_extra=_PREDICT_OPENAPI,
             responses={401: {"description": "Missing/invalid API key"}, 403: {"description": "Key lacks role or scope"},
                        413: {"description": "Body too large"}, 422: {"description": "Invalid request"},
                        503: {"description": "Model, feature registry, online store or log not ready"}})
async def predict(request: Request) -> Response:
    """Score 1..1000 customers: calibrated churn score, decision, top-k TreeSHAP contributions."""
    content, rid = await predict_json(request.app.state.parity, request.scope, await request.body())
    return Response(content, media_type="application/json", headers={"X-Request-ID": rid})


def malformed_ids(ids: Sequence[str], found: Sequence[bool], project_root: Path) -> dict[int, str] | None:
    """Position -> why, for each key not found whose id breaks its client's declared pattern
    (looked at only for keys not found: the usual request pays nothing)."""
    if all(found):
        return None
    keys = customer_keys(project_root)
    why = {i: keys.malformed(ids[i]) for i, ok in enumerate(found) if not ok}
    return {i: text for i, text in why.items() if text is not None}


async def predict_json(state: State, scope: dict[str, Any], raw: bytes) -> tuple[bytes, str]:
    """`/v1/predict` from the request's ASGI scope and body: the JSON answer and its request id.
    Raises the exceptions the app's handlers answer (401/403/422/503). Called by the route and by
    `serving.fast_path.PredictFastPath`, which serves the route without FastAPI's routing."""
    started = time.perf_counter()
    key = scope.get("state", {}).get("api_key")
    if key is None:  # not through GuardMiddleware (which puts the accepted key there): check here
        key, problem = key_problem(offered_key(scope["headers"]), state.keys)
        if problem:
            raise Unauthorized(problem)
    content_type = next((v.decode("latin-1") for n, v in scope["headers"] if n == b"content-type"), None)
    ids, requested = parse_predict_body(raw, content_type)
    rid = request_id()
    active = state.slot.active
    if active.primary is None:
        raise ServiceUnavailable(active.error)
    if state.reader is None:
        open_reader(state)
        if state.reader is None:
            raise ServiceUnavailable(state.reader_error)
    if store_problem(state):  # e.g. an empty store: every customer would look unknown
        raise ServiceUnavailable(state.store_problem)
    now = datetime.now(timezone.utc)
    ids = canonical_ids(ids, state.settings.project_root)
    check_scope(state, key, ids)
    times = utc_times(requested, now)
    check_request_times(times, now, state.config)
    # the collector paused for the request's work: it allocates ~100 objects per customer that
    # live until the answer, so gen-0 collections kept scanning (and promoting) them — ~13 per
    # 500-customer request; refcounting frees them all, and the next allocation after the
    # request collects what is left (cycles included)
    paused = gc.isenabled()
    gc.disable()
    try:
        try:
            frame = state.reader.read_columns(ids, times)
            found, event_at = frame.pop(FOUND), frame.pop(EVENT_AT)
        except Exception as err:
            raise ServiceUnavailable(f"online store unreachable: {err}") from err
        fresh, stale = judge(ids, times, event_at, found, state.max_age, state.watermarks.get())
        result = answer(active, state.segments.active.primary if state.segments else None, frame,
                        [n for n, _ in state.reader.schema.features], ids, times, found, fresh, stale, rid,
                        started, state.config.top_k, state.config.canary_share, state.metrics,
                        malformed_ids(ids, found, state.settings.project_root))
        try:  # durable before the answer is sent: nothing answered goes unlogged
            sequence = state.plog.extend_columns(result.columns)
            if state.plog.sync == "fsync":
                await asyncio.to_thread(state.plog.sync_to, sequence)
        except LogUnavailable as err:
            raise ServiceUnavailable(f"predictions cannot be logged: {err}") from err
    finally:
        if paused:
            gc.enable()
    # PredictResponse's shape as plain dicts: building and dumping the pydantic models cost
    # ~1 ms per 100 customers (tests validate responses against PredictResponse), and
    # json.dumps another 0.8 ms
    response = {
        "request_id": rid,
        "model": {"name": active.primary.model, "version": active.primary.version,
                  "threshold": active.primary.threshold, "feature_service": active.primary.feature_service},
        "predictions": result.predictions,
    }
    return orjson.dumps(response), rid
