"""The prediction service: `create_app` builds the FastAPI app (start-up, middleware, error
answers) around the routes of `serving.routes`."""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Gauge

from parity.config import Settings
from parity.features.freshness import max_feature_age
from serving.config import ServingConfig
from serving.events import install as install_events
from serving.fast_path import PredictFastPath
from serving.freshness import WatermarkCache
from serving.guard import GuardMiddleware
from serving.keys import load_keys, plain_keys
from serving.log import PredictionLog
from serving.metrics import Metrics, create_metrics, watch_log
from serving.models import ModelSlot
from serving.routes import document_predict_body, router
from serving.state import Forbidden, ServiceUnavailable, State, Unauthorized, open_reader
from serving.workers import start_snapshots

log = logging.getLogger("serving")


def _load_segments(registry_dir: Any, model: str, version: str, nthread: int | None = None) -> Any:
    """ModelSlot loader for the segments model (plain JSON: no threads to set)."""
    from parity.models.segments import load_version

    return load_version(registry_dir, version, model)


class ObserveMiddleware:
    """Request counts and latency by route, as a pure ASGI middleware (Starlette's
    BaseHTTPMiddleware, behind `@app.middleware`, cost ~0.5 ms per request)."""

    def __init__(self, app: Any, metrics: Metrics, state: State):
        self.app, self.metrics, self.state = app, metrics, state
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}  # (path, status) -> metric children

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
            if state.plog is not None:  # the answer is sent: a due log compaction may start now
                state.plog.after_answer()
            route = scope.get("route")  # set on this scope by the router once matched
            path = route.path if route is not None else "unmatched"
            children = self._children.get((path, status[0]))
            if children is None:  # prometheus' labels() lookup, once per (path, status)
                children = self._children[(path, status[0])] = (
                    self.metrics.requests.labels(path, str(status[0])), self.metrics.latency.labels(path))
            children[0].inc()
            children[1].observe(time.perf_counter() - started)


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
        open_reader(state)
        state.watermarks = WatermarkCache(settings.marts_dir)
        state.plog = PredictionLog(settings.data_dir / "serving" / "predictions",
                                   config.log_flush_seconds, config.log_flush_rows,
                                   sync=config.log_sync, max_backlog_rows=config.log_max_backlog_rows,
                                   wake_after_answers=True)
        watch_log(state.metrics, state.plog)
        Gauge("parity_model_pointer_ok", "1 while the registry's current pointer names a loadable model, "
              "else 0 (the loaded model keeps serving)", registry=state.metrics.registry
              ).set_function(lambda: 0 if state.slot.problem else 1)
        snapshots = threading.Event()  # multi-worker: this worker's metrics for /metrics (serving/workers.py)
        start_snapshots(state.metrics.registry, snapshots)
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
        snapshots.set()
        state.slot.stop()
        state.segments.stop()
        state.plog.close()
        if state.events_worker is not None:
            state.events_worker.stop()

    app = FastAPI(
        title="Parity prediction API",
        version="1",
        description="Churn predictions from Feast online features, with TreeSHAP explanations.",
        lifespan=lifespan,
    )
    app.state.parity = state  # what routes.get_state returns
    # Starlette runs the last added outermost: Observe sees the guard's 401/413 answers too, and
    # POST /v1/predict skips FastAPI's routing after the guard's checks (serving/fast_path.py)
    app.add_middleware(PredictFastPath, fastapi_app=app)
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

    app.include_router(router)
    document_predict_body(app)  # /v1/predict parses its own body (serving.schemas.parse_predict_body)
    install_events(app, state)  # POST /v1/events (serving/events.py)

    from serving.console import install as install_console

    install_console(app)  # the console's pages under /console (serving/console/)
    return app
