"""``/v1/mail/held``: the held (and unmatched) inbound mail, for staff only."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from caseapi.api.openapi import errors
from caseapi.auth.deps import StaffPrincipal
from caseapi.core.deps import RowId
from caseapi.mail.errors import MailNotHeldError, MailNotKeptError
from caseapi.mail.held import (
    MAX_PAGE_SIZE,
    AttachRelease,
    DiscardRelease,
    HeldMailService,
    OpenCaseRelease,
    Release,
)
from caseapi.mail.inbound import InboundStatus
from caseapi.mail.matching import Reason
from caseapi.mail.repository import HeldFilters
from caseapi.mail.schemas import (
    AttachBody,
    InboundMailDetail,
    InboundMailPublic,
    InboundMailsPublic,
    OpenCaseBody,
    ReleaseBody,
)

router = APIRouter(prefix="/v1/mail/held", tags=["mail"])


async def get_held_mail_service(request: Request) -> HeldMailService:
    """``app.state.held_mail_service``, built by ``create_app``."""
    service: HeldMailService = request.app.state.held_mail_service
    return service


HeldMailServiceDep = Annotated[HeldMailService, Depends(get_held_mail_service)]


@router.get("")
async def list_held_mail(
    principal: StaffPrincipal,
    service: HeldMailServiceDep,
    reason: Annotated[Reason | None, Query()] = None,
    sender: Annotated[str | None, Query(min_length=1, max_length=320)] = None,
    status: Annotated[InboundStatus, Query()] = InboundStatus.HELD,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> InboundMailsPublic:
    """List inbound mail held for review (or of another ``status``), newest first."""
    filters = HeldFilters(
        status=status.value, reason=reason.value if reason else None, sender=sender
    )
    page = await service.list_mails(filters=filters, cursor=cursor, limit=limit)
    return InboundMailsPublic(
        data=[
            InboundMailPublic.of(m, page.refs.get(m.case_id) if m.case_id else None)
            for m in page.items
        ],
        count=page.count,
        next_cursor=page.next_cursor,
    )


@router.get(
    "/{mail_id}",
    response_model=InboundMailDetail,
    responses={200: {"content": {"message/rfc822": {}}}},
)
async def get_held_mail(
    mail_id: RowId,
    principal: StaffPrincipal,
    service: HeldMailServiceDep,
    format: Annotated[Literal["json", "eml"], Query()] = "json",
) -> InboundMailDetail | Response:
    """Show one inbound mail and its text; ``format=eml`` gives the kept raw mail."""
    view = await service.get_mail(mail_id)
    if format == "eml":
        if view.mail.raw is None:
            raise MailNotKeptError(mail_id)
        return Response(
            content=view.mail.raw,
            media_type="message/rfc822",
            headers={"Content-Disposition": f'attachment; filename="mail-{mail_id}.eml"'},
        )
    return InboundMailDetail.of_view(view)


@router.post("/{mail_id}/release", responses=errors(MailNotHeldError))
async def release_held_mail(
    mail_id: RowId,
    principal: StaffPrincipal,
    service: HeldMailServiceDep,
    body: Annotated[ReleaseBody, Body()],
) -> InboundMailDetail:
    """Attach a held mail to a case, open a case with it, or discard it."""
    request: Release
    if isinstance(body, AttachBody):
        request = AttachRelease(case=body.case, visibility=body.visibility)
    elif isinstance(body, OpenCaseBody):
        request = OpenCaseRelease(customer=body.customer)
    else:
        request = DiscardRelease(reason=body.reason)
    await service.release(principal, mail_id, request)
    return InboundMailDetail.of_view(await service.get_mail(mail_id))
