"""``GET /v1/audit``: the audit log, for admins only (everyone else: 403)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from caseapi.audit.enums import AuditAction, AuditTarget
from caseapi.audit.repository import AuditFilters
from caseapi.audit.schemas import AuditEventPublic, AuditEventsPublic
from caseapi.audit.service import MAX_PAGE_SIZE, AuditService
from caseapi.auth.deps import AdminPrincipal
from caseapi.cases.errors import CaseValidationError
from caseapi.cases.schemas import QueryTime
from caseapi.core.base import ACTOR_LENGTH

router = APIRouter(prefix="/v1/audit", tags=["audit"])


async def get_audit_service(request: Request) -> AuditService:
    """``app.state.audit_service``, built by ``create_app``."""
    service: AuditService = request.app.state.audit_service
    return service


AuditServiceDep = Annotated[AuditService, Depends(get_audit_service)]


def parse_target(value: str) -> tuple[AuditTarget, str | None]:
    """``case:CS-2026-000001`` -> (case, ``CS-2026-000001``); ``case`` -> (case, None).

    Raises:
        CaseValidationError: The type part is not a target type (names ``target``).
    """
    kind, _, ident = value.partition(":")
    try:
        target = AuditTarget(kind)
    except ValueError:
        kinds = ", ".join(t.value for t in AuditTarget)
        raise CaseValidationError(
            "target", f"{kind!r} is not a target type; use TYPE or TYPE:ID with TYPE one of {kinds}"
        ) from None
    return target, (ident or None)


@router.get("")
async def list_audit_events(
    principal: AdminPrincipal,
    service: AuditServiceDep,
    actor: Annotated[str | None, Query(max_length=ACTOR_LENGTH)] = None,
    action: Annotated[list[AuditAction] | None, Query()] = None,
    target: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    customer: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[QueryTime | None, Query()] = None,
    before: Annotated[QueryTime | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> AuditEventsPublic:
    """List recorded actions, newest first; repeat ``action`` to match any of several."""
    if since and before and before <= since:
        raise CaseValidationError(
            "before", "must be later than since", others={"since": "must be earlier than before"}
        )
    target_type, target_id = parse_target(target) if target is not None else (None, None)
    filters = AuditFilters(
        actor=actor,
        actions=tuple(action or ()),
        target_type=target_type,
        target_id=target_id,
        customer_id=customer,
        since=since,
        before=before,
    )
    page = await service.list_events(filters=filters, cursor=cursor, limit=limit)
    return AuditEventsPublic(
        data=[AuditEventPublic.from_event(event) for event in page.items],
        count=page.count,
        next_cursor=page.next_cursor,
    )
