"""The running service's state (built at start-up, read by the routes) and the checks a request
passes before any work: key, client scope, request times, store health."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials

from parity.config import Settings
from parity.features.freshness import client_of
from serving.config import ServingConfig
from serving.freshness import WatermarkCache
from serving.guard import key_problem
from serving.keys import ApiKey
from serving.log import PredictionLog
from serving.metrics import Metrics
from serving.models import ModelSlot

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
    pusher: Any = None  # parity.features.push.Pusher, opened by the first POST /v1/events (serving.events)
    events_worker: Any = None
    events_intake: Any = None  # serving.events.IntakeBatcher
    event_metrics: Any = None


def open_reader(state: State) -> None:
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


def store_problem(state: State, force: bool = False) -> str | None:
    """Why the online store cannot answer (deleted file, no rows), checked at most every 2 s on
    the request path; a store file re-created since it was opened is reopened first."""
    now = time.monotonic()
    if not force and now - state.store_checked < 2.0:
        return state.store_problem
    state.store_checked = now
    reader = state.reader
    if reader is not None and getattr(reader, "file_replaced", lambda: False)():
        log.warning("online store file was re-created: reopening it")
        open_reader(state)
        reader = state.reader
    health = getattr(reader, "health", None)  # the Feast reader cannot say: judged by its reads
    state.store_problem = health() if health else None
    return state.store_problem


def check_key(state: State, bearer: HTTPAuthorizationCredentials | None, api_key: str | None) -> None:
    """The routes' own check (GuardMiddleware refuses a bad key before the body; this keeps the
    security scheme in the OpenAPI document and protects a route mounted without the guard)."""
    _, problem = key_problem((bearer.credentials if bearer else None) or api_key, state.keys)
    if problem:
        raise Unauthorized(problem)


class Forbidden(Exception):
    """The key may not do this (client scope): HTTP 403."""


def check_scope(state: State, key: ApiKey | None, ids: list[str]) -> None:
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


def check_request_times(times: list[datetime], now: datetime, config: ServingConfig) -> None:
    """422 for a request_at outside [now - request_at_past_days, now + request_at_future_days]:
    features are read "as of" it, and a year-0001 time scored garbage and broke the monitor."""
    low, high = now - timedelta(days=config.request_at_past_days), now + timedelta(days=config.request_at_future_days)
    errors = [{"loc": ("body", "customers", k, "request_at"), "type": "value_error",
               "msg": f"{t.isoformat()} is outside [now - {config.request_at_past_days:g} days, "
                      f"now + {config.request_at_future_days:g} days]", "input": t.isoformat()}
              for k, t in enumerate(times) if not low <= t <= high]
    if errors:
        raise RequestValidationError(errors[:20])
