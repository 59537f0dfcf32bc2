"""Maintenance pages: the list, the announcement form and one window (cancel, complete).

The form's times are read in the reader's zone; the POST calls
``MaintenanceService.create`` as ``POST /v1/maintenances`` does, and its refusals
(the notice rule, an unknown scope id, an end before the start) are shown on the form
with the API's status and what was typed kept.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from caseapi.core.durations import format_duration
from caseapi.maintenance.enums import MaintenanceBehaviour, MaintenanceKind, MaintenanceState
from caseapi.maintenance.schemas import MaintenanceComplete, MaintenanceCreate
from caseapi.maintenance.service import MaintenanceDraft
from caseapi.web.deps import StaffForm, StaffPage
from caseapi.web.render import render
from caseapi.web.session import WebSession
from caseapi.web.workspace.common import (
    FORM_ERRORS,
    form_of,
    is_form_error,
    local_to_utc,
    maintenance,
    refusal,
)

router = APIRouter(include_in_schema=False)

SCOPES = ("ntus", "nodes", "customers", "services")
LIST_LIMIT = 200


def _ids(text: str | None) -> list[str]:
    return [part for part in re.split(r"[\s,]+", text or "") if part]


@router.get("/maintenance", response_class=HTMLResponse)
async def maintenance_list(
    request: Request,
    web: StaffPage,
    state: Annotated[MaintenanceState | None, Query()] = None,
) -> HTMLResponse:
    """Maintenance windows by start time (``?state=`` one state)."""
    views, count = await maintenance(request).list_windows(
        principal=web.principal, states=(state,) if state else (), limit=LIST_LIMIT
    )
    context = {"views": views, "count": count, "state": state, "states": list(MaintenanceState)}
    return render(request, "workspace/maintenance_list.html", context)


async def _render_form(
    request: Request, form: dict[str, str], *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    context: dict[str, Any] = {
        "form": form,
        "error": error,
        "kinds": list(MaintenanceKind),
        "behaviours": list(MaintenanceBehaviour),
        "notice": format_duration(maintenance(request).rules.planned_notice),
    }
    return render(request, "workspace/maintenance_new.html", context, status_code=status)


@router.get("/maintenance/new", response_class=HTMLResponse)
async def maintenance_form(request: Request, web: StaffPage) -> HTMLResponse:
    """The announcement form."""
    return await _render_form(request, {})


@router.post("/maintenance/new")
async def maintenance_create(request: Request, web: StaffForm) -> Response:
    """Announce the window; 303 to its page."""
    form = await form_of(request)
    try:
        body = MaintenanceCreate.model_validate(
            {
                "title": form.get("title", ""),
                "description": form.get("description", ""),
                "kind": form.get("kind", ""),
                "behaviour": form.get("behaviour") or MaintenanceBehaviour.MUTE.value,
                "starts_at": _when(form, "starts_at", web),
                "ends_at": _when(form, "ends_at", web),
                "scope": {name: _ids(form.get(f"scope_{name}")) for name in SCOPES},
            }
        )
        draft = MaintenanceDraft.of(body)
        view = await maintenance(request).create(principal=web.principal, draft=draft)
    except FORM_ERRORS as exc:
        status, message = refusal(exc)
        return await _render_form(request, form, error=message, status=status)
    return RedirectResponse(f"/maintenance/{view.window.ref}", status_code=303)


def _when(form: dict[str, str], name: str, web: WebSession) -> object:
    value = form.get(name, "").strip()
    if not value:
        raise ValueError(f"{name}: give a date and time")
    try:
        return local_to_utc(value, web.timezone)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


async def _render_window(
    request: Request,
    web: WebSession,
    ref: str,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    view = await maintenance(request).get(principal=web.principal, ref=ref)
    context = {"view": view, "window": view.window, "error": error, "form": form or {}}
    return render(request, "workspace/maintenance.html", context, status_code=status)


@router.get("/maintenance/{ref}", response_class=HTMLResponse)
async def maintenance_page(request: Request, web: StaffPage, ref: str) -> HTMLResponse:
    """One window: its times, scope, state; cancel or complete it."""
    return await _render_window(request, web, ref)


@router.post("/maintenance/{ref}/cancel")
async def maintenance_cancel(request: Request, web: StaffForm, ref: str) -> Response:
    """Cancel a window that has not ended."""
    try:
        await maintenance(request).cancel(principal=web.principal, ref=ref)
    except Exception as exc:
        if not is_form_error(exc):
            raise
        status, message = refusal(exc)
        return await _render_window(request, web, ref, error=message, status=status)
    return RedirectResponse(f"/maintenance/{ref}", status_code=303)


@router.post("/maintenance/{ref}/complete")
async def maintenance_complete(request: Request, web: StaffForm, ref: str) -> Response:
    """Complete a started window with its real impact."""
    form = await form_of(request)
    try:
        body = MaintenanceComplete.model_validate({"actual_impact": form.get("actual_impact", "")})
        await maintenance(request).complete(
            principal=web.principal, ref=ref, actual_impact=body.actual_impact
        )
    except Exception as exc:
        if not is_form_error(exc):
            raise
        status, message = refusal(exc)
        return await _render_window(request, web, ref, error=message, form=form, status=status)
    return RedirectResponse(f"/maintenance/{ref}", status_code=303)
