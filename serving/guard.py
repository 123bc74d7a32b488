"""Limits before work: on `/v1/*` the API key is checked before any byte of the body is read,
and the body is read with a size limit, so an unauthenticated or oversized request costs no
memory (uvicorn stops reading the socket while the app does not consume the body)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from serving.keys import ROUTE_ROLES, ApiKey, authenticate

PROTECTED = "/v1/"


def offered_key(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The key a request offers: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""
    bearer = api_key = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                bearer = credentials.strip()
        elif name == b"x-api-key" and value:
            api_key = value.decode("latin-1")
    return bearer or api_key


def key_problem(offered: str | None, keys: Sequence[ApiKey]) -> tuple[ApiKey | None, str | None]:
    """The accepted key, or why the offered one is refused (hashes compared in constant time)."""
    if not offered or not keys:
        return None, "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
    found = authenticate(keys, offered)
    return (found, None) if found else (None, "invalid API key")


class BodyTooLarge(Exception):
    """The request body exceeds the configured limit (HTTP 413)."""


class GuardMiddleware:
    """Pure ASGI: 401 before the body, 403 for a key without the route's role, 413 beyond
    `max_body_bytes` (declared or streamed). The accepted key is `scope["state"]["api_key"]`."""

    def __init__(self, app: Any, keys: Callable[[], Sequence[ApiKey]], max_body_bytes: int,
                 on_denied: Callable[[str], None] | None = None):
        self.app, self.keys, self.max_body_bytes = app, keys, max_body_bytes
        self.on_denied = on_denied or (lambda reason: None)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED):
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        key, problem = key_problem(offered_key(headers), self.keys())
        if problem:
            self.on_denied("invalid_key" if problem.startswith("invalid") else "missing_key")
            await _reply(send, 401, problem, [(b"www-authenticate", b"Bearer")])
            return
        role = ROUTE_ROLES.get(scope["path"].rstrip("/"))
        if role and role not in key.roles:
            self.on_denied("role")
            await _reply(send, 403, f"key '{key.name}' lacks the role '{role}'")
            return
        scope.setdefault("state", {})["api_key"] = key
        declared = next((v for n, v in headers if n == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _reply(send, 413, self._too_large())
            return
        try:
            body = await self._read(receive)
        except BodyTooLarge:
            await _reply(send, 413, self._too_large())
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body_bytes} bytes (max_body_bytes)"

    async def _read(self, receive: Any) -> bytes:
        """The whole body, refusing it as soon as it passes the limit (chunked bodies included)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


async def _reply(send: Any, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = orjson.dumps({"detail": detail})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
