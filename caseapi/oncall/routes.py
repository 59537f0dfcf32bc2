"""``/v1/alerts``: acknowledging staff alerts (by a staff key, or by the link in the message)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from caseapi.api.openapi import errors
from caseapi.auth.deps import StaffPrincipal
from caseapi.core.deps import RowId
from caseapi.oncall.ack import AckResult, AlertAckService
from caseapi.oncall.errors import AlertLinkExpiredError, AlertNotFoundError, AlertNotPendingError

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


class AlertAcked(BaseModel):
    """An acknowledged staff alert (staff only: never shown to customers)."""

    id: int
    case_id: int | None
    kind: str
    status: str
    acked_by: str
    acked_at: datetime

    @classmethod
    def of(cls, result: AckResult) -> AlertAcked:
        return cls(
            id=result.id,
            case_id=result.case_id,
            kind=result.kind,
            status=result.status,
            acked_by=result.acked_by,
            acked_at=result.acked_at,
        )


async def get_alert_ack_service(request: Request) -> AlertAckService:
    """``app.state.alert_ack_service``, built by ``create_app``."""
    service: AlertAckService = request.app.state.alert_ack_service
    return service


AckServiceDep = Annotated[AlertAckService, Depends(get_alert_ack_service)]


@router.post("/{alert_id}/ack", responses=errors(AlertNotFoundError, AlertNotPendingError))
async def ack_alert(
    alert_id: RowId, principal: StaffPrincipal, service: AckServiceDep
) -> AlertAcked:
    """Acknowledge a staff alert: nobody else is alerted for it."""
    return AlertAcked.of(await service.ack_by_id(alert_id, actor=principal.actor))


@router.get(
    "/ack",
    responses=errors(AlertNotFoundError, AlertNotPendingError, AlertLinkExpiredError),
)
async def ack_alert_by_link(
    service: AckServiceDep,
    token: Annotated[str, Query(min_length=10, max_length=120, pattern=r"^\d+\.[A-Za-z0-9_-]+$")],
) -> AlertAcked:
    """Acknowledge a staff alert with the link in its message (no login; works once)."""
    return AlertAcked.of(await service.ack_by_token(token))
