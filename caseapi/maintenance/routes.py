"""HTTP routes for maintenance windows: parse, check the role, call the service.

Who may do what (tenancy is the service's: a window that covers none of a
customer's NTUs is a 404 for that customer):

- read (list, get): every role; customers only windows covering their NTUs, with
  the scope reduced to those NTUs (``?customer=`` another customer: 403).
- announce, edit, cancel, complete: staff (engineer, noc, admin).

Changes honour ``If-Match`` (the ``ETag`` from ``GET``); a stale one is 412.
Mount with ``app.include_router(router)``; the service is
``app.state.maintenance_service`` when set, else built once from the app's
sessionmaker and the case service's clock with default rules.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from caseapi.api.openapi import errors
from caseapi.auth.deps import CurrentPrincipal, StaffPrincipal
from caseapi.auth.errors import CustomerMismatchError
from caseapi.maintenance.enums import MaintenanceKind, MaintenanceState
from caseapi.maintenance.errors import MaintenancePreconditionError
from caseapi.maintenance.schemas import (
    MaintenanceComplete,
    MaintenanceCreate,
    MaintenanceCustomerView,
    MaintenancePublic,
    MaintenanceScope,
    MaintenancesPublic,
    MaintenanceUpdate,
)
from caseapi.maintenance.service import MaintenanceDraft, MaintenanceService, MaintenanceView

router = APIRouter(prefix="/v1/maintenances", tags=["maintenance"])

IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=100)]
_ETAG: Final = re.compile(r'^(?:W/)?"v(\d+)"$')
MAX_LIMIT: Final = 500


def get_maintenance_service(request: Request) -> MaintenanceService:
    """Return the app's maintenance service, building the default one on first use."""
    state = request.app.state
    service: MaintenanceService | None = getattr(state, "maintenance_service", None)
    if service is None:
        service = MaintenanceService(
            sessionmaker=state.sessionmaker, clock=state.case_service.clock
        )
        state.maintenance_service = service
    return service


async def _maintenance_service_dependency(request: Request) -> MaintenanceService:
    # A coroutine: FastAPI runs a plain function dependency in a worker thread.
    return get_maintenance_service(request)


MaintenanceServiceDep = Annotated[MaintenanceService, Depends(_maintenance_service_dependency)]


def _if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.match(value.strip())
    if match is None:
        raise MaintenancePreconditionError(f"If-Match {value!r} is not an ETag this API issued")
    return int(match.group(1))


def to_public(view: MaintenanceView) -> MaintenancePublic | MaintenanceCustomerView:
    """Shape a service view for its caller (customers: own NTUs only, no staff fields)."""
    window = view.window
    common = {
        "ref": window.ref,
        "title": window.title,
        "description": window.description,
        "kind": MaintenanceKind(window.kind),
        "emergency": window.kind == MaintenanceKind.EMERGENCY,
        "behaviour": window.behaviour,
        "state": view.state,
        "starts_at": window.starts_at,
        "ends_at": window.ends_at,
        "cancelled_at": window.cancelled_at,
        "completed_at": window.completed_at,
        "actual_impact": window.actual_impact,
    }
    if view.customer_view:
        # Never another customer's ids: the customer's covered NTUs and nothing else.
        scope = MaintenanceScope(ntus=sorted(view.covered))
        return MaintenanceCustomerView.model_validate({**common, "scope": scope})
    return MaintenancePublic.model_validate(
        {
            **common,
            "scope": MaintenanceScope(
                ntus=window.scope_ntus,
                nodes=window.scope_nodes,
                customers=window.scope_customers,
                services=window.scope_services,
            ),
            "version": window.version,
            "affected_ntu_count": len(view.covered),
            "created_by": window.created_by,
            "created_at": window.created_at,
            "updated_by": window.updated_by,
            "updated_at": window.updated_at,
            "cancelled_by": window.cancelled_by,
            "completed_by": window.completed_by,
        }
    )


def _response(view: MaintenanceView, *, status: int = 200) -> JSONResponse:
    body = to_public(view).model_dump(mode="json")
    return JSONResponse(body, status_code=status, headers={"ETag": f'"v{view.window.version}"'})


#: What a change may be refused with: the window's state (``code`` says which).
_STATE_ERRORS: Final = errors(
    *(
        (409, code)
        for code in (
            "maintenance_cancelled",
            "maintenance_started",
            "maintenance_ended",
            "maintenance_not_started",
            "maintenance_completed",
        )
    )
)
_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {"model": MaintenancePublic | MaintenanceCustomerView}
}


@router.post("", status_code=201, response_model=MaintenancePublic)
async def create_maintenance(
    body: MaintenanceCreate, principal: StaffPrincipal, service: MaintenanceServiceDep
) -> JSONResponse:
    """Announce a maintenance window (planned needs the notice period; emergency may start now)."""
    draft = MaintenanceDraft.of(body)
    return _response(await service.create(principal=principal, draft=draft), status=201)


@router.get("", responses=errors(CustomerMismatchError))
async def list_maintenances(
    principal: CurrentPrincipal,
    service: MaintenanceServiceDep,
    state: Annotated[list[MaintenanceState] | None, Query()] = None,
    ntu: Annotated[str | None, Query(max_length=64)] = None,
    customer: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> MaintenancesPublic:
    """List maintenance windows (customers: those covering their NTUs), by start time."""
    views, count = await service.list_windows(
        principal=principal, states=state or (), ntu=ntu, customer=customer, limit=limit
    )
    return MaintenancesPublic(data=[to_public(view) for view in views], count=count)


@router.get("/{ref}", response_model=None, responses=_RESPONSES)
async def get_maintenance(
    ref: str, principal: CurrentPrincipal, service: MaintenanceServiceDep
) -> JSONResponse:
    """Get one maintenance window by its reference (with its ETag)."""
    return _response(await service.get(principal=principal, ref=ref))


@router.patch("/{ref}", response_model=MaintenancePublic, responses=_STATE_ERRORS)
async def update_maintenance(
    ref: str,
    body: MaintenanceUpdate,
    principal: StaffPrincipal,
    service: MaintenanceServiceDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Change a window: anything before it starts, then only ends_at and actual_impact."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if changes.get("scope") is not None:
        changes["scope"] = body.scope.model_dump() if body.scope else None
    view = await service.update(
        principal=principal, ref=ref, changes=changes, if_match=_if_match(if_match)
    )
    return _response(view)


@router.post("/{ref}/cancel", response_model=MaintenancePublic, responses=_STATE_ERRORS)
async def cancel_maintenance(
    ref: str, principal: StaffPrincipal, service: MaintenanceServiceDep, if_match: IfMatch = None
) -> JSONResponse:
    """Cancel a window that has not ended."""
    view = await service.cancel(principal=principal, ref=ref, if_match=_if_match(if_match))
    return _response(view)


@router.post("/{ref}/complete", response_model=MaintenancePublic, responses=_STATE_ERRORS)
async def complete_maintenance(
    ref: str,
    body: MaintenanceComplete,
    principal: StaffPrincipal,
    service: MaintenanceServiceDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Complete a started window with its real impact (a running window ends now)."""
    view = await service.complete(
        principal=principal,
        ref=ref,
        actual_impact=body.actual_impact,
        if_match=_if_match(if_match),
    )
    return _response(view)
