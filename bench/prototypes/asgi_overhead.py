"""PROTOTYPE (evidence for a product proposal): the per-request cost of FastAPI choices that
serving/app.py makes, on a trivial endpoint shaped like /v1/predict (a pydantic body of one
customer, a JSON answer), served by uvicorn exactly like `python -m serving`.

    python -m bench.prototypes.asgi_overhead VARIANT PORT   # one server (used by proposals.py)

Variants: sync endpoint (threadpool hop) vs async; with and without an `@app.middleware("http")`
(Starlette BaseHTTPMiddleware, as serving's `observe`) vs a pure ASGI middleware doing the same
timing.
"""

# no `from __future__ import annotations`: FastAPI must resolve the local pydantic classes at runtime

import sys
import time
from typing import Any

VARIANTS = ("sync, BaseHTTPMiddleware (today)", "sync, no middleware", "async, BaseHTTPMiddleware",
            "async, pure ASGI middleware")


def build(variant: str) -> Any:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field

    class Customer(BaseModel):
        model_config = ConfigDict(extra="forbid")
        customer_id: str = Field(min_length=1, max_length=200)
        request_at: str | None = None

    class Body(BaseModel):
        model_config = ConfigDict(extra="forbid")
        customers: list[Customer] = Field(min_length=1, max_length=1000)

    app = FastAPI()
    seen: list[float] = []

    if "BaseHTTPMiddleware" in variant:
        @app.middleware("http")
        async def observe(request: Any, call_next: Any) -> Any:
            started = time.perf_counter()
            response = await call_next(request)
            seen.append(time.perf_counter() - started)
            return response

    if variant.startswith("sync"):
        @app.post("/v1/predict")
        def predict(body: Body) -> JSONResponse:
            return JSONResponse({"predictions": [{"customer_id": c.customer_id, "score": 0.5} for c in body.customers]})
    else:
        @app.post("/v1/predict")
        async def predict(body: Body) -> JSONResponse:
            return JSONResponse({"predictions": [{"customer_id": c.customer_id, "score": 0.5} for c in body.customers]})

    if "pure ASGI" in variant:
        inner = app

        async def timed(scope: dict, receive: Any, send: Any) -> None:
            started = time.perf_counter()
            await inner(scope, receive, send)
            seen.append(time.perf_counter() - started)

        return timed
    return app


def main(argv: list[str]) -> int:
    import uvicorn

    variant, port = VARIANTS[int(argv[0])], int(argv[1])
    uvicorn.run(build(variant), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
