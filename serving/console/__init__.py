"""The console: server-rendered pages for the people who act on the scores, under /console.

Customer lookup (through the service's own /v1/predict), review queue (human decisions on the
latest batch's flagged customers, stored append-only by `parity.reviews`), models (registry
versions, metrics, fairness, model cards), data health (reconciliation, quarantine, watermarks,
monitoring alerts) and operations (volume, latency, heat-map). Behind the API's keys and roles
(`serving.keys`): a login form turns a key into an HttpOnly session cookie (a random token).
Every asset is served from ./static; charts are inline SVG drawn on the server.

It imports `parity` and `serving` only (never training or batch: the import direction holds).
`install(app)` is the whole hook into serving/app.py.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.routing import BaseRoute, Match, NoMatchFound, Router


def install(app: Any) -> None:
    """Serve the console's pages under /console, loaded by the first request there: its imports
    (Jinja2, pandas, the pages) were ~0.35 s of the service's cold start, before /readyz."""
    from fastapi.responses import HTMLResponse, RedirectResponse

    from serving.console.errors import FormError, LoginRequired, NotAllowed

    async def _login_required(request: Any, exc: LoginRequired) -> Any:
        return RedirectResponse(f"/console/login?next={quote(exc.next_path, safe='')}", status_code=303)

    async def _bad_form(request: Any, exc: FormError) -> Any:
        from html import escape

        return HTMLResponse(f"<p>Bad form: {escape(str(exc))}</p>", status_code=400)

    async def _not_allowed(request: Any, exc: NotAllowed) -> Any:
        from serving.console.routes import not_allowed_page  # loaded: only its pages raise this

        return not_allowed_page(request, exc)

    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(NotAllowed, _not_allowed)
    app.add_exception_handler(FormError, _bad_form)
    app.router.routes.append(_LazyConsole(app))


class _LazyConsole(BaseRoute):
    """Every /console path: the console's own routes, imported on the first such request and
    matched as the app's own routes were (same scope: `request.app` is the service, a path no
    page has is the app's 404, a wrong method its 405)."""

    def __init__(self, app: Any):
        self.app: Any = app
        self.inner: Router | None = None

    def matches(self, scope: dict[str, Any]) -> tuple[Match, dict[str, Any]]:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/console" or path.startswith("/console/")):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        if self.inner is None:
            raise NoMatchFound(name, path_params)
        return self.inner.url_path_for(name, **path_params)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.inner is None:
            from serving.console.routes import routes

            self.inner = Router(routes=routes(self.app))
        await self.inner(scope, receive, send)
