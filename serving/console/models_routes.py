"""The models page: versions, metrics, fairness, model cards, training reports, the audit log,
and promote / roll back for keys with the `admin` role (a reason is required).

Promote and roll back call the registry's own functions (`parity.models.registry.promote` /
`rollback`, what `python -m training promote|rollback` calls), with the same live feature-list
check, so every rule on moving the `current` pointer applies here too; the move is written to
the model's audit log with the reviewer's name, key and reason. The service then reloads the
model at once (its pointer watcher would within seconds anyway).
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from parity import reviews
from parity.config import Settings
from parity.models import registry
from parity.models.registry import VERSION_RE
from serving.console import auth, data, views
from serving.console.routes import (
    NotAllowed,
    _page,
    _settings,
    _state,
    form_of,
    record,
    redirect_with,
    router,
    session_of,
)

MAX_REASON = 500
AUDIT_SHOWN = 20


class MoveError(ValueError):
    """A promote / roll back form that was refused (the message is shown on the page)."""


def _live_schema(settings: Settings) -> Any:
    """The live feature services' columns, read as the training CLI reads them (Feast registry)."""
    from parity.features.feature_store import open_store
    from parity.features.retrieval import service_schema

    store = open_store(settings)
    return lambda name: service_schema(store, name).features


def _audit(settings: Settings, model: str) -> tuple[list[dict[str, Any]], str | None]:
    try:
        return list(reversed(registry.read_audit(settings.registry_dir, model)))[:AUDIT_SHOWN], None
    except (OSError, ValueError) as err:
        return [], f"audit log of {model} unreadable: {err}"


def _approvals(settings: Settings, model: str) -> dict[str, dict[str, Any]]:
    """version -> its newest recorded approval (parity.models.approvals' ledger); {} if unreadable."""
    from parity.models import approvals

    try:
        found = approvals.read_approvals(registry.model_dir(settings.registry_dir, model))
    except (OSError, ValueError, registry.RegistryError):
        return {}
    return {a["version"]: a for a in found if isinstance(a, dict) and "version" in a}


@router.get("/models", response_class=HTMLResponse)
async def models(request: Request, done: str = "", error: str = "") -> Response:
    session = session_of(request, "models")
    settings, config = _settings(request), _state(request).config
    await record(request, session.who, "view_models")
    versions, pointer, problem = await run_in_threadpool(data.model_versions, settings, config.model)
    rows = views.model_rows(versions, pointer, config.canary_version, config.shadow_version)
    approved = await run_in_threadpool(_approvals, settings, config.model)
    for row in rows:
        row["approval"] = approved.get(row["version"])
        row["has_report"] = data.training_report(settings, row["version"]) is not None
        row["card"] = await run_in_threadpool(data.model_card, settings, config.model, row["version"])
    segments, seg_pointer, seg_problem = await run_in_threadpool(data.model_versions, settings, config.segments_model)
    audit, audit_problem = await run_in_threadpool(_audit, settings, config.model)
    return _page(request, "models.html", session, model=config.model, rows=rows, pointer=pointer, problem=problem,
                 canary_share=config.canary_share, segments=segments, seg_pointer=seg_pointer, seg_problem=seg_problem,
                 audit=audit, audit_problem=audit_problem, admin=session.may("admin"), done=done, error=error)


def _reason(form: dict[str, str]) -> str:
    reason = " ".join((form.get("reason") or "").split())
    if not reason:
        raise MoveError("a reason is required (it is recorded in the model's audit log)")
    if len(reason) > MAX_REASON:
        raise MoveError(f"the reason is longer than {MAX_REASON} characters")
    return reason


def _move(request: Request, session: auth.Session, form: dict[str, str], action: str) -> str:
    """Promote the form's version or roll back; what the page confirms."""
    settings, state = _settings(request), _state(request)
    model = state.config.model
    reason = _reason(form)
    actor = f"{session.who} via console"
    try:
        live = _live_schema(settings)
        if action == "promote":
            version = form.get("version", "")
            if not VERSION_RE.match(version):
                raise MoveError(f"not a version name: {version!r}")
            pointer = registry.promote(settings.registry_dir, model, version, live, actor=actor, reason=reason)
        else:
            pointer = registry.rollback(settings.registry_dir, model, live, actor=actor, reason=reason)
    except MoveError:
        raise
    except Exception as err:  # refused by the registry (feature check, approvals, no history): say why
        raise MoveError(f"{action} refused: {err}") from None
    if state.slot is not None:
        state.slot.reload()
    reviews.record_action(settings.console_dir, session.who, f"model_{action}", model=model,
                          version=pointer["version"], reason=reason)
    return f"{model} {pointer['version']} is current ({action}: {reason})"


async def _moved(request: Request, action: str) -> Response:
    session = session_of(request, "models")
    if not session.may("admin"):
        await record(request, session.who, f"model_{action}_refused", reason="no admin role")
        raise NotAllowed(f"key '{session.key_name}' lacks the role 'admin' that {action} needs")
    form = await form_of(request)
    if not auth.csrf_ok(session, form.get("csrf")):
        return redirect_with("/console/models", error="the form expired: reload the page and try again")
    try:
        done = await run_in_threadpool(_move, request, session, form, action)
    except MoveError as err:
        return redirect_with("/console/models", error=str(err))
    return redirect_with("/console/models", done=done)


@router.post("/models/promote")
async def promote(request: Request) -> Response:
    return await _moved(request, "promote")


@router.post("/models/rollback")
async def rollback(request: Request) -> Response:
    return await _moved(request, "rollback")


def _catalogue(settings: Settings, model: str) -> dict[str, Any]:
    """Feast's features (the store's registry), the dbt manifest and the model versions."""
    from parity.docs import catalogue_rows
    from parity.features.feast_definitions import load_manifest
    from parity.features.feature_store import open_store, require_applied
    from serving.console import catalogue

    problems, features, manifest = [], [], None
    try:
        require_applied(settings)
        features = catalogue_rows(open_store(settings))
    except Exception as err:  # not applied, registry unreadable: say so
        problems.append(f"Feast registry: {err}")
    try:
        manifest = load_manifest(settings.dbt_manifest_path)
    except Exception as err:
        problems.append(f"dbt manifest: {err} (lineage not shown)")
    versions, pointer, problem = data.model_versions(settings, model)
    if problem:
        problems.append(problem)
    columns, problem = data.column_lineage(settings) if manifest is not None else (None, None)
    if problem:
        problems.append(f"column lineage: {problem} (model-level lineage only)")
    current = (pointer or {}).get("version")
    return {"features": catalogue.rows(features, manifest, versions, current, columns), "current": current,
            "problems": problems, "layers": catalogue.LAYERS}


@router.get("/catalogue", response_class=HTMLResponse)
async def catalogue_page(request: Request) -> Response:
    session = session_of(request, "catalogue")
    settings, config = _settings(request), _state(request).config
    await record(request, session.who, "view_catalogue")
    return _page(request, "catalogue.html", session, **(await run_in_threadpool(_catalogue, settings, config.model)))


@router.get("/models/{version}/report/{name}")
def training_report(request: Request, version: str, name: str) -> Response:
    session = session_of(request, "models")
    settings = _settings(request)
    path = data.training_report(settings, version, name) if VERSION_RE.match(version) else None
    if path is None:
        return HTMLResponse(f"<p>No training report file {escape(repr(name))} for version {escape(repr(version))}.</p>",
                            status_code=404)
    if name.endswith(".html"):
        reviews.record_action(settings.console_dir, session.who, "view_training_report", version=version)
    return FileResponse(path)
