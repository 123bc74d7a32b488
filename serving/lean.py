"""The serving process without pydantic.v1: FastAPI (0.120+) imports `pydantic.v1` for every route
field it creates — at start-up and again when each route answers its first request — only to
check that the field's model is not a pydantic-v1 model: ~30 ms of CPU (0.3 s wall under load)
for a module the service never uses."""

from __future__ import annotations

import sys

_V1 = "pydantic.v1"


def refuse_pydantic_v1() -> bool:
    """Make `import pydantic.v1` raise ImportError in this process (a `None` entry in
    `sys.modules`); FastAPI's checks catch it and answer "not a v1 model". For `python -m serving`
    only: in this process nothing else imports pydantic.v1 (FastAPI, Starlette, uvicorn, Feast and
    the project's own code use pydantic 2). No effect (False) when it is already imported."""
    if _V1 in sys.modules:
        return False
    sys.modules[_V1] = None  # type: ignore[assignment]
    return True
