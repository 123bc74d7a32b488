"""The prediction service: FastAPI app over the online store and the model registry."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import signal
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Gauge

from parity.config import Settings
from parity.features.freshness import client_of, max_feature_age
from parity.features.online import EVENT_AT, FOUND
from serving.config import ServingConfig
from serving.freshness import WatermarkCache, judge
from serving.guard import GuardMiddleware, key_problem
from serving.keys import ApiKey, load_keys, plain_keys
from serving.log import LogUnavailable, PredictionLog, features_json
from serving.metrics import Metrics, create_metrics, watch_log
from serving.models import ModelSlot, canary_bucket
from serving.predict import score_columns
from serving.schemas import PredictRequest, PredictResponse

log = logging.getLogger("serving")


class ServiceUnavailable(Exception):
    """A dependency (online store, feature registry, model) is not ready: HTTP 503."""


class Unauthorized(Exception):
    """Missing or invalid API key: HTTP 401."""


@dataclass
class State:
    """Everything the endpoints use, built at start-up."""

    settings: Settings
    config: ServingConfig
    metrics: Metrics
    reader: Any = None
    reader_error: str | None = None
    slot: ModelSlot | None = None
    plog: PredictionLog | None = None
    segments: ModelSlot | None = None
    max_age: Any = None  # timedelta: dbt's vars.max_feature_age_days
    watermarks: WatermarkCache | None = None
    keys: list[ApiKey] = field(default_factory=list)
    store_problem: str | None = None
    store_checked: float = 0.0
    draining: bool = False  # SIGTERM received: not ready, every answer closes its connection
    in_flight: int = 0
    last_done: float = 0.0  # time.monotonic() of the latest finished request
    started_at: float = field(default_factory=time.time)


def _open_reader(state: State) -> None:
    """Open the online reader for the current model's feature service: straight from SQLite with
    the serving manifest (no Feast import), else through Feast's provider (`parity.features.online.open_reader`)."""
    from parity.features.online import open_reader

    primary = state.slot.active.primary if state.slot else None
    service = primary.feature_service if primary else "churn_v1"
    try:
        state.reader = open_reader(state.settings, service)
        state.reader_error = None
    except Exception as err:  # any failure here means "not ready", never a crash
        state.reader, state.reader_error = None, f"feature store not ready: {err}"


def _store_problem(state: State, force: bool = False) -> str | None:
    """Why the online store cannot answer (deleted file, no rows), checked at most every 2 s on
    the request path; a store file re-created since it was opened is reopened first."""
    now = time.monotonic()
    if not force and now - state.store_checked < 2.0:
        return state.store_problem
    state.store_checked = now
    reader = state.reader
    if reader is not None and getattr(reader, "file_replaced", lambda: False)():
        log.warning("online store file was re-created: reopening it")
        _open_reader(state)
        reader = state.reader
    health = getattr(reader, "health", None)  # the Feast reader cannot say: judged by its reads
    state.store_problem = health() if health else None
    return state.store_problem


def _load_segments(registry_dir: Any, model: str, version: str, nthread: int | None = None) -> Any:
    """ModelSlot loader for the segments model (plain JSON: no threads to set)."""
    from parity.models.segments import load_version

    return load_version(registry_dir, version, model)


def _add_segments(model: Any, frame: Any, rows: list[int], results: list[dict[str, Any] | None]) -> None:
    """segment_id / segment_name of the scored rows; a segments problem never fails a prediction."""
    try:
        ids = model.assign(_subset(frame, rows))
    except ValueError as err:  # e.g. the segments model needs a feature this service lacks
        log.warning("segments not assigned (%s/%s): %s", model.feature_service, model.version, err)
        return
    for j, i in enumerate(rows):
        results[i]["segment_id"] = int(ids[j])
        results[i]["segment_name"] = model.names[int(ids[j])]


class _OrjsonResponse(Response):
    """JSON body encoded by orjson (~8x faster than json.dumps on a 100-customer answer; NaN ->
    null instead of an error)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _subset(columns: dict[str, list[Any]], rows: list[int]) -> dict[str, list[Any]]:
    """The given rows of a column dict (the online read), in order (the columns themselves when
    that is every row: the usual request, every customer known and no canary)."""
    if rows and len(rows) == rows[-1] + 1 == len(next(iter(columns.values()), ())):
        return columns  # rows are ascending and distinct, so this is 0..n-1
    return {name: [values[i] for i in rows] for name, values in columns.items()}


class ObserveMiddleware:
    """Request counts and latency by route, as a pure ASGI middleware (Starlette's
    BaseHTTPMiddleware, behind `@app.middleware`, cost ~0.5 ms per request)."""

    def __init__(self, app: Any, metrics: Metrics, state: State):
        self.app, self.metrics, self.state = app, metrics, state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]  # an exception escaping the app becomes a 500 outside this middleware

        state = self.state

        async def send_observed(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                if state.draining:  # the client reconnects elsewhere instead of reusing this one
                    message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        state.in_flight += 1
        try:
            await self.app(scope, receive, send_observed)
        finally:
            state.in_flight -= 1
            state.last_done = time.monotonic()
            route = scope.get("route")  # set on this scope by the router once matched
            path = route.path if route is not None else "unmatched"
            self.metrics.requests.labels(path, str(status[0])).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - started)


_ids = random.Random()  # seeded from os.urandom once; request ids need uniqueness, not secrecy


def _request_id() -> str:
    """A random UUID4 as 32 hex digits, without an os.urandom call per request (~0.2 ms here)."""
    return uuid.UUID(int=_ids.getrandbits(128), version=4).hex


def _check_key(state: State, bearer: HTTPAuthorizationCredentials | None, api_key: str | None) -> None:
    """The routes' own check (GuardMiddleware refuses a bad key before the body; this keeps the
    security scheme in the OpenAPI document and protects a route mounted without the guard)."""
    _, problem = key_problem((bearer.credentials if bearer else None) or api_key, state.keys)
    if problem:
        raise Unauthorized(problem)


class Forbidden(Exception):
    """The key may not do this (client scope): HTTP 403."""


def _check_scope(state: State, key: ApiKey | None, ids: list[str]) -> None:
    """403 for the whole request when a customer belongs to a client outside the key's scope
    (per request, so a client never learns which of another client's ids exist)."""
    if key is None or key.clients is None:
        return
    outside = sorted({client_of(i) for i in ids if not key.may_score(client_of(i))})
    if outside:
        state.metrics.denied.labels("client_scope").inc()
        log.warning("key '%s' refused: customers of client(s) %s outside its scope", key.name, outside)
        raise Forbidden(f"key '{key.name}' may score customers of {sorted(key.clients)} only; "
                        f"this request names customers of {outside}")


def _check_request_times(times: list[datetime], now: datetime, config: ServingConfig) -> None:
    """422 for a request_at outside [now - request_at_past_days, now + request_at_future_days]:
    features are read "as of" it, and a year-0001 time scored garbage and broke the monitor."""
    low, high = now - timedelta(days=config.request_at_past_days), now + timedelta(days=config.request_at_future_days)
    errors = [{"loc": ("body", "customers", k, "request_at"), "type": "value_error",
               "msg": f"{t.isoformat()} is outside [now - {config.request_at_past_days:g} days, "
                      f"now + {config.request_at_future_days:g} days]", "input": t.isoformat()}
              for k, t in enumerate(times) if not low <= t <= high]
    if errors:
        raise RequestValidationError(errors[:20])


def create_app(settings: Settings, config: ServingConfig) -> FastAPI:
    """Build the app; start-up opens the store, loads the model and starts the log writer."""
    # read before serving: a bad limit in dbt_project.yml stops the start with the file named
    state = State(settings=settings, config=config, metrics=create_metrics(),
                  max_age=max_feature_age(settings.project_root),
                  keys=plain_keys(config.api_keys) + (load_keys(Path(config.api_keys_file))
                                                      if config.api_keys_file else []))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.slot = ModelSlot(settings.registry_dir, config.model, config.canary_version, config.shadow_version)
        state.slot.start(config.reload_check_seconds)
        # optional: with no current segments model, predictions carry segment_id = null
        state.segments = ModelSlot(settings.registry_dir, config.segments_model, loader=_load_segments)
        state.segments.start(config.reload_check_seconds)
        _open_reader(state)
        state.watermarks = WatermarkCache(settings.marts_dir)
        state.plog = PredictionLog(settings.data_dir / "serving" / "predictions",
                                   config.log_flush_seconds, config.log_flush_rows,
                                   sync=config.log_sync, max_backlog_rows=config.log_max_backlog_rows)
        watch_log(state.metrics, state.plog)
        Gauge("parity_model_pointer_ok", "1 while the registry's current pointer names a loadable model, "
              "else 0 (the loaded model keeps serving)", registry=state.metrics.registry
              ).set_function(lambda: 0 if state.slot.problem else 1)
        # start-up objects leave the collector's generations: fewer long GC pauses. No full
        # collection first (~0.1 s of cold start for little garbage); `python -m serving` starts
        # with the collector disabled, so turn it (back) on here.
        gc.freeze()
        gc.enable()
        try:
            signal.signal(signal.SIGHUP, lambda *_: (state.slot.trigger(), state.segments.trigger()))
        except ValueError:  # not the main thread (e.g. a test client): polling still reloads
            pass
        yield
        state.slot.stop()
        state.segments.stop()
        state.plog.close()

    app = FastAPI(
        title="Parity prediction API",
        version="1",
        description="Churn predictions from Feast online features, with TreeSHAP explanations.",
        lifespan=lifespan,
    )
    app.state.parity = state
    bearer = HTTPBearer(auto_error=False)
    api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)

    # async dependencies and endpoints run on the event loop: no thread-pool hop per request
    async def authorised(creds: HTTPAuthorizationCredentials | None = Depends(bearer),
                         api_key: str | None = Depends(api_key_header)) -> None:
        _check_key(state, creds, api_key)

    # Starlette runs the last added outermost: Observe sees the guard's 401/413 answers too
    app.add_middleware(GuardMiddleware, keys=lambda: state.keys, max_body_bytes=config.max_body_bytes,
                       on_denied=lambda reason: state.metrics.denied.labels(reason).inc())
    app.add_middleware(ObserveMiddleware, metrics=state.metrics, state=state)

    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, exc: Unauthorized):
        return JSONResponse({"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden):
        return JSONResponse({"detail": str(exc)}, status_code=403)

    @app.exception_handler(ServiceUnavailable)
    async def _unavailable(request: Request, exc: ServiceUnavailable):
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = []
        for err in exc.errors():
            loc = list(err.get("loc", ()))
            if err.get("type") == "json_invalid":
                field = "body"
                message = f"malformed JSON at character {loc[-1]}: {err.get('msg', 'invalid')}"
            else:
                field = ".".join(str(p) for p in (loc[1:] if loc[:1] == ["body"] else loc)) or "body"
                message = err.get("msg", "invalid")
            errors.append({"field": field, "message": message, "type": err.get("type")})
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"detail": summary, "errors": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"detail": "internal error; see the service log"}, status_code=500)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
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
            _open_reader(state)
        store = _store_problem(state, force=True) if state.reader is not None else None
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
        marks = state.watermarks.get() if state.watermarks else None
        if marks is not None and marks.problem:  # ready: staleness is judged by feature age alone
            notes.append(f"client watermarks unknown: {marks.problem}")
        body = {"status": "ready" if not problems else "not ready", "problems": problems,
                "registry_problem": state.slot.problem if state.slot else None,
                "model_version": getattr(active.primary, "version", None) if active else None,
                "feature_reader": getattr(state.reader, "kind", None), "notes": notes}
        return JSONResponse(body, status_code=200 if not problems else 503)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus metrics."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return PlainTextResponse(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/model", tags=["model"], dependencies=[Depends(authorised)], response_model=dict)
    def model_info() -> dict[str, Any]:
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

    @app.post("/v1/predict", tags=["model"], dependencies=[Depends(authorised)], response_model=PredictResponse,
              responses={401: {"description": "Missing/invalid API key"}, 422: {"description": "Invalid request"},
                         503: {"description": "Model, feature registry or online store not ready"}})
    async def predict(body: PredictRequest, request: Request) -> Response:
        """Score 1..1000 customers: calibrated churn score, decision, top-k TreeSHAP contributions."""
        started = time.perf_counter()
        request_id = _request_id()
        active = state.slot.active
        if active.primary is None:
            raise ServiceUnavailable(active.error)
        if state.reader is None:
            _open_reader(state)
            if state.reader is None:
                raise ServiceUnavailable(state.reader_error)
        if _store_problem(state):  # e.g. an empty store: every customer would look unknown
            raise ServiceUnavailable(state.store_problem)
        now = datetime.now(timezone.utc)
        ids = [c.customer_id for c in body.customers]
        _check_scope(state, request.scope.get("state", {}).get("api_key"), ids)
        times = [c.request_at or now for c in body.customers]
        _check_request_times(times, now, state.config)
        try:
            frame = state.reader.read_columns(ids, times)
            found, event_at = frame.pop(FOUND), frame.pop(EVENT_AT)
        except Exception as err:
            raise ServiceUnavailable(f"online store unreachable: {err}") from err

        results: list[dict[str, Any] | None] = [None] * len(ids)
        fresh, stale = judge(ids, times, event_at, found, state.max_age, state.watermarks.get())
        present = [i for i, ok in enumerate(found) if ok]
        if stale:
            skipped = set(stale)
            known = [i for i in present if i not in skipped]
        else:
            known = present
        arms: dict[str, tuple[Any, list[int]]] = {"primary": (active.primary, [])}
        if active.canary is not None and state.config.canary_share > 0:
            arms["canary"] = (active.canary, [])
        for i in known:
            use_canary = "canary" in arms and canary_bucket(ids[i]) < state.config.canary_share
            arms["canary" if use_canary else "primary"][1].append(i)
        records = []
        feature_names = [n for n, _ in state.reader.schema.features]
        for role, (model, rows) in arms.items():
            if not rows:
                continue
            scored = score_columns(model, _subset(frame, rows), state.config.top_k)
            scores, decisions = scored.scores.tolist(), scored.decisions.tolist()
            for j, i in enumerate(rows):
                # the field order of schemas.Prediction (the response is built as plain JSON)
                results[i] = {"customer_id": ids[i], "status": "ok", "score": scores[j], "decision": decisions[j],
                              "model_version": model.version, "contributions": scored.top[j],
                              "segment_id": None, "segment_name": None, **fresh[i], "detail": None}
                records.append((i, role, model.version, "ok", scores[j], decisions[j]))
            state.metrics.scores.observe_many(model.version, scored.scores)
            state.metrics.predictions.labels(model.version, role).inc(len(rows))
        segments = state.segments.active.primary if state.segments else None
        if segments is not None and known:
            _add_segments(segments, frame, known, results)
        if active.shadow is not None and known:
            shadow = score_columns(active.shadow, _subset(frame, known), 0)
            for j, i in enumerate(known):
                records.append((i, "shadow", active.shadow.version, "ok", float(shadow.scores[j]), bool(shadow.decisions[j])))
            state.metrics.predictions.labels(active.shadow.version, "shadow").inc(len(known))
        for i in stale:  # too old to score: the answer says so, with the ages (never a score)
            results[i] = {"customer_id": ids[i], "status": fresh[i]["status"], "score": None, "decision": None,
                          "model_version": active.primary.version, "contributions": [],
                          "segment_id": None, "segment_name": None, "features_at": fresh[i]["features_at"],
                          "feature_age_days": fresh[i]["feature_age_days"],
                          "watermark_at": fresh[i]["watermark_at"], "detail": fresh[i]["detail"]}
            records.append((i, "primary", active.primary.version, fresh[i]["status"], None, None))
        if stale:
            state.metrics.stale.inc(len(stale))
        for i, ok in enumerate(found):
            if not ok:
                results[i] = {"customer_id": ids[i], "status": "unknown_customer", "score": None, "decision": None,
                              "model_version": active.primary.version, "contributions": [],
                              "segment_id": None, "segment_name": None, "features_at": None,
                              "feature_age_days": None, "watermark_at": None, "detail": None}
                state.metrics.unknown.inc()
                records.append((i, "primary", active.primary.version, "unknown_customer", None, None))
        latency = (time.perf_counter() - started) * 1000
        logged_at = datetime.now(timezone.utc)
        features = features_json(frame, present, feature_names)
        # serving.log.SCHEMA order: request_id, logged_at, request_at, customer_id, model_version,
        # role, status, score, decision, latency_ms, features. Durable before the answer is sent.
        try:
            sequence = state.plog.extend_rows([
                (request_id, logged_at, times[i], ids[i], version, role, status, score, decision, latency,
                 features.get(i))
                for i, role, version, status, score, decision in records])
            if state.plog.sync == "fsync":
                await asyncio.to_thread(state.plog.sync_to, sequence)
        except LogUnavailable as err:  # nothing answered goes unlogged
            raise ServiceUnavailable(f"predictions cannot be logged: {err}") from err
        # PredictResponse's shape as plain dicts: building and dumping the pydantic models cost
        # ~1 ms per 100 customers (tests validate responses against PredictResponse), and
        # json.dumps another 0.8 ms
        response = {
            "request_id": request_id,
            "model": {"name": active.primary.model, "version": active.primary.version,
                      "threshold": active.primary.threshold, "feature_service": active.primary.feature_service},
            "predictions": results,
        }
        return _OrjsonResponse(response, headers={"X-Request-ID": request_id})

    from serving.console import install as install_console

    install_console(app)  # the console's pages under /console (serving/console/)
    return app
