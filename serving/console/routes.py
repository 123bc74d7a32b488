"""The console's HTTP routes: login, customer, review queue, models, data health.

Pages are Jinja2 templates rendered on the server; forms post back and redirect (no JavaScript
needed). The customer page asks the service's own /v1/predict in-process (httpx over ASGI, with
the session's key), so what a reviewer reads is exactly what the API answers — same features,
model, freshness verdict, logging and key checks — and nothing is recomputed here.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount

from parity import reviews
from parity.config import Settings
from parity.models.prepare import PrepareSpec
from serving.console import auth, data, svg, views
from serving.console.errors import FormError, LoginRequired, NotAllowed

log = logging.getLogger("serving.console")
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["fmt"] = views.fmt_value
router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 50
# pages hold customer data: never cached; only this origin's files, no script, no framing
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
MAX_FORM_BYTES = 16_384  # a console form is a few fields; anything larger is refused unread


async def form_of(request: Request) -> dict[str, str]:
    """The posted url-encoded form (the first value of each field), read with a size cap.

    Parsed here with the standard library: the console's forms are plain url-encoded fields, and
    FastAPI's Form() needs python-multipart, which the service does not otherwise depend on."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise FormError("expected an application/x-www-form-urlencoded form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError(f"form larger than {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as err:
        raise FormError("form is not UTF-8") from err
    return {name: values[0] for name, values in fields.items()}


def _state(request: Request) -> Any:
    return request.app.state.parity


def _settings(request: Request) -> Settings:
    return _state(request).settings


def _folder(request: Request) -> Path:
    return _settings(request).console_dir


def _sessions(request: Request) -> auth.Sessions:
    return request.app.state.console_sessions


def session_of(request: Request, page: str | None = None) -> auth.Session:
    """The signed-in reviewer, or LoginRequired (back to this page after logging in); NotAllowed
    when the key lacks the role `page` needs (auth.PAGE_ROLES)."""
    now = datetime.now(timezone.utc)
    session = _sessions(request).get(_state(request).keys, request.cookies.get(auth.COOKIE), now)
    if session is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if page is not None and not session.may(auth.PAGE_ROLES[page]):
        raise NotAllowed(f"key '{session.key_name}' lacks the role '{auth.PAGE_ROLES[page]}' this page needs")
    return session


async def record(request: Request, who: str, action: str, /, **detail: Any) -> None:
    """Log a console action (in a worker thread: the SQLite write syncs to disk)."""
    await run_in_threadpool(reviews.record_action, _folder(request), who, action, **detail)


def _page(request: Request, name: str, session: auth.Session | None, **context: Any) -> HTMLResponse:
    base = {"session": session, "csrf": auth.csrf_token(session) if session else None,
            "clients": session.visible(_safe_clients(_settings(request))) if session else (),
            "nav": name.removesuffix(".html"), "page_roles": auth.PAGE_ROLES}
    response = templates.TemplateResponse(request, name, {**base, **context})
    response.headers.update(PAGE_HEADERS)
    return response


def _safe_clients(settings: Settings) -> tuple[str, ...]:
    try:
        return settings.clients
    except ValueError:
        return ()


def _safe_next(path: str | None) -> str:
    """Only a console path (never another site) after login."""
    return path if path and path.startswith("/console") and not path.startswith("//") else "/console/customer"


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    session_of(request)
    return RedirectResponse("/console/customer", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    return _page(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    now = datetime.now(timezone.utc)
    form = await form_of(request)
    next = form.get("next", "")
    try:
        session = _sessions(request).login(_state(request).keys, form.get("api_key", ""), form.get("name", ""), now)
    except auth.LoginError as err:
        await record(request, "anonymous", "login_refused", reason=str(err))
        response = _page(request, "login.html", None, next=_safe_next(next), error=str(err))
        response.status_code = 401
        return response
    await record(request, session.who, "login")
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(auth.COOKIE, session.token, max_age=int(auth.SESSION_TTL.total_seconds()), httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/console")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = session_of(request)
    if auth.csrf_ok(session, (await form_of(request)).get("csrf")):
        _sessions(request).logout(session.token)
        await record(request, session.who, "logout")
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/console")
    return response


_SPECS: dict[tuple[Path, str, str], PrepareSpec] = {}  # registry versions never change once written


def _spec(registry_dir: Path, model: str, version: str) -> PrepareSpec | None:
    """A version's preparation spec (to word its reasons); None while unreadable (not cached)."""
    from parity.models.registry import read_metadata

    key = (registry_dir, model, version)
    if key not in _SPECS:
        try:
            _SPECS[key] = PrepareSpec.from_dict(read_metadata(registry_dir, model, version)["prepare_spec"])
        except Exception:  # reasons then show the plain column and value
            return None
    return _SPECS[key]


async def _predict(request: Request, session: auth.Session, key: str, at: datetime | None) -> tuple[int, dict]:
    """The service's own /v1/predict for one customer, in-process (same app, same checks, logged)."""
    import httpx  # here, not at import: ~0.1 s of the service's cold start for a page few open

    body = {"customers": [{"customer_id": key, **({"request_at": at.isoformat()} if at else {})}]}
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.internal") as client:
        answer = await client.post("/v1/predict", json=body, headers={"X-API-Key": session.key})
    return answer.status_code, answer.json()


def _online_features(request: Request, key: str, at: datetime) -> tuple[list[tuple[str, Any]], str | None]:
    """The customer's online feature values, read by the service's own reader (as predict reads)."""
    reader = getattr(_state(request), "reader", None)
    if reader is None:
        return [], "the online store is not open"
    try:
        columns = reader.read_columns([key], [at])
    except Exception as err:
        return [], f"online store unreachable: {err}"
    return views.feature_rows(columns, [name for name, _ in reader.schema.features]), None


def _parse_at(text: str | None) -> datetime | None:
    if not text:
        return None
    at = datetime.fromisoformat(text.strip())
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


@router.get("/customer", response_class=HTMLResponse)
async def customer(request: Request, client: str = "", id: str = "", at: str = "") -> Response:
    session = session_of(request, "customer")
    settings = _settings(request)
    context: dict[str, Any] = {"client": client, "id": id.strip(), "at": at, "error": None, "result": None}
    if not (client or id):
        return _page(request, "customer.html", session, **context)
    if client not in session.visible(_safe_clients(settings)) or not id.strip():
        context["error"] = "choose a client and enter the customer's id"
        return _page(request, "customer.html", session, **context)
    try:
        request_at = _parse_at(at)
    except ValueError:
        context["error"] = f"'as of' must be an ISO date or time (e.g. 2026-06-01T00:00); got {at!r}"
        return _page(request, "customer.html", session, **context)
    key = f"{client}:{id.strip()}"
    await record(request, session.who, "customer_lookup", customer_id=key, request_at=request_at)
    status, answer = await _predict(request, session, key, request_at)
    if status != 200:
        context["error"] = f"the prediction service answered {status}: {answer.get('detail', answer)}"
        return _page(request, "customer.html", session, **context)
    prediction, model = answer["predictions"][0], answer["model"]
    unknown = prediction["status"] in ("unknown_customer", "malformed_customer_id")
    if unknown:  # a partial or mistyped id: offer matches
        matches = await run_in_threadpool(data.find_customers, settings, client, id)
        context["matches"] = matches.frame.to_dict("records")
        context["matches_problem"] = matches.problem
    spec = _spec(settings.registry_dir, model["name"], prediction["model_version"])
    features, feature_problem = ([], None)
    if not unknown:
        features, feature_problem = _online_features(request, key, request_at or datetime.now(timezone.utc))
    history = await run_in_threadpool(data.score_history, settings, key)
    chart = svg.score_history(views.history_points(history.frame), model.get("threshold"))
    context["result"] = {
        "key": key, "prediction": prediction, "model": model, "request_id": answer.get("request_id"),
        "status_words": views.STATUS_WORDS.get(prediction["status"], prediction["status"]),
        "reasons": views.reasons(prediction.get("contributions") or [], spec),
        "features": features, "feature_problem": feature_problem,
        "history": history.frame.iloc[::-1].head(20).to_dict("records"), "history_problem": history.problem,
        "history_count": len(history.frame), "chart": chart,
    }
    return _page(request, "customer.html", session, **context)


def routes(app: FastAPI) -> list[Any]:
    """The console's routes and static files (for `serving.console.install`, which serves them
    from the first /console request on), and its session store on the app."""
    # the other pages register themselves on `router` when imported
    from serving.console import models_routes, ops_routes, review_routes  # noqa: F401

    app.state.console_sessions = auth.Sessions()
    return [*router.routes, Mount("/console/static", StaticFiles(directory=str(HERE / "static")), name="console-static")]


def not_allowed_page(request: Request, exc: NotAllowed) -> Response:
    """The 403 page for a key that lacks a page's role."""
    response = _page(request, "denied.html", session_of(request), reason=str(exc))
    response.status_code = 403
    return response


def redirect_with(path: str, **params: Any) -> RedirectResponse:
    """A 303 back to a console page with query parameters (post/redirect/get)."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return RedirectResponse(f"{path}?{query}" if query else path, status_code=303)
