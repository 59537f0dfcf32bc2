"""HTTP routes for canned replies (staff only): CRUD, and preview / send on a case."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from caseapi.api.openapi import errors
from caseapi.auth.deps import StaffPrincipal
from caseapi.comments.schemas import CommentPublic
from caseapi.core.deps import RowId
from caseapi.replies.errors import ReplyNotFoundError, ReplyTemplateError
from caseapi.replies.render import PLACEHOLDERS
from caseapi.replies.schemas import (
    RepliesPublic,
    ReplyCreate,
    ReplyPreview,
    ReplyPublic,
    ReplyUpdate,
)
from caseapi.replies.service import ReplyService

router = APIRouter(tags=["replies"])


async def get_reply_service(request: Request) -> ReplyService:
    """Return the reply service built by ``create_app``."""
    service: ReplyService = request.app.state.reply_service
    return service


ReplyServiceDep = Annotated[ReplyService, Depends(get_reply_service)]


@router.get("/v1/replies")
async def list_replies(principal: StaffPrincipal, service: ReplyServiceDep) -> RepliesPublic:
    """List the canned replies (by language and title) and the placeholders they may use."""
    rows = await service.list_replies()
    return RepliesPublic(
        data=[ReplyPublic.from_row(r) for r in rows],
        count=len(rows),
        placeholders=dict(PLACEHOLDERS),
    )


@router.post("/v1/replies", status_code=201, responses=errors(ReplyTemplateError))
async def create_reply(
    body: ReplyCreate, principal: StaffPrincipal, service: ReplyServiceDep
) -> ReplyPublic:
    """Save a canned reply; an unknown ``${placeholder}`` is refused (422, naming it)."""
    return ReplyPublic.from_row(await service.create(principal=principal, body=body))


@router.get("/v1/replies/{reply_id}", responses=errors(ReplyNotFoundError))
async def get_reply(
    reply_id: RowId, principal: StaffPrincipal, service: ReplyServiceDep
) -> ReplyPublic:
    """Get one canned reply."""
    return ReplyPublic.from_row(await service.get_reply(reply_id))


@router.patch("/v1/replies/{reply_id}", responses=errors(ReplyNotFoundError, ReplyTemplateError))
async def update_reply(
    reply_id: RowId, body: ReplyUpdate, principal: StaffPrincipal, service: ReplyServiceDep
) -> ReplyPublic:
    """Change a canned reply's title, body, language or visibility."""
    row = await service.update(principal=principal, reply_id=reply_id, body=body)
    return ReplyPublic.from_row(row)


@router.delete("/v1/replies/{reply_id}", status_code=204, responses=errors(ReplyNotFoundError))
async def delete_reply(
    reply_id: RowId, principal: StaffPrincipal, service: ReplyServiceDep
) -> Response:
    """Delete a canned reply (a shipped example is not installed again)."""
    await service.delete(reply_id=reply_id)
    return Response(status_code=204)


@router.get("/v1/cases/{ref}/replies/{reply_id}/preview", responses=errors(ReplyNotFoundError))
async def preview_reply(
    ref: str, reply_id: RowId, principal: StaffPrincipal, service: ReplyServiceDep
) -> ReplyPreview:
    """The reply filled with the case's fields (times in the customer's zone); nothing sent."""
    return await service.preview(principal=principal, ref=ref, reply_id=reply_id)


@router.post(
    "/v1/cases/{ref}/replies/{reply_id}/send",
    status_code=201,
    responses=errors(ReplyNotFoundError),
)
async def send_reply(
    ref: str, reply_id: RowId, principal: StaffPrincipal, service: ReplyServiceDep
) -> CommentPublic:
    """Post the filled reply as a comment of its visibility (the comment path's rules:
    a public one is support's first response and reaches the customer)."""
    comment = await service.send(principal=principal, ref=ref, reply_id=reply_id)
    return CommentPublic.from_comment(comment)
