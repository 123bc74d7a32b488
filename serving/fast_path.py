"""`POST /v1/predict` served without FastAPI's routing: a pure ASGI middleware, innermost of the
app's own (after GuardMiddleware's key and body-size checks, inside ObserveMiddleware's metrics),
hands the request straight to `serving.routes.predict_json`.

Starlette's exception middleware, the router's match over every route, FastAPI's request
handling (dependency solving, a scratch Response for dependency headers, the endpoint wrapper)
were ~0.15-0.2 ms of a one-customer request, which is ~1 ms of server CPU in all. The route
itself stays declared in `serving.routes` (its OpenAPI document, and the same answer for an app
built without this middleware); errors are answered by the app's own exception handlers, so
401/403/422/503 bodies are the ones the route gives. Any other method or path goes on to FastAPI
(e.g. GET /v1/predict -> 405, /v1/predict/ -> its redirect).
"""

from __future__ import annotations

import inspect
from typing import Any

from starlette.requests import ClientDisconnect, Request

from serving.routes import predict_json

PATH = "/v1/predict"


class _Route:
    """The matched route as ObserveMiddleware reads it (`scope["route"].path`)."""

    path = PATH


_ROUTE = _Route()


class PredictFastPath:
    """Pure ASGI: POST /v1/predict -> `predict_json`, other requests -> the app."""

    def __init__(self, app: Any, fastapi_app: Any):
        self.app, self.fastapi_app = app, fastapi_app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = _ROUTE  # what ObserveMiddleware labels its metrics with, as when routed
        try:
            raw = await _body(receive)
            content, rid = await predict_json(self.fastapi_app.state.parity, scope, raw)
        except ClientDisconnect:
            return  # nobody to answer
        except Exception as exc:
            handler = _handler(self.fastapi_app.exception_handlers, exc)
            if handler is None:  # unexpected: the app's 500 answer, from Starlette's error middleware
                raise
            response = handler(Request(scope, receive), exc)
            if inspect.isawaitable(response):
                response = await response
            await response(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(content)).encode()),
                                (b"content-type", b"application/json"), (b"x-request-id", rid.encode())]})
        await send({"type": "http.response.body", "body": content})


async def _body(receive: Any) -> bytes:
    """The whole request body (GuardMiddleware replays it as one message)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _handler(handlers: dict[Any, Any], exc: Exception) -> Any:
    """The app's handler for the exception's class (nearest in its MRO), as Starlette looks it
    up; None for `Exception` itself, which Starlette's error middleware answers (500)."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
