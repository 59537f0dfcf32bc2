"""HTTP routes for case comments (customers and staff; not ``service`` callers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from caseapi.api.openapi import errors
from caseapi.auth.deps import CaseParticipant, RateLimiterDep, charge_customer
from caseapi.comments.errors import CommentRefusedError
from caseapi.comments.schemas import CommentCreate, CommentPublic, CommentsPublic
from caseapi.comments.service import CommentService
from caseapi.ratelimit.service import Limit

router = APIRouter(prefix="/v1/cases", tags=["comments"])


async def get_comment_service(request: Request) -> CommentService:
    """Return the comment service built by ``create_app``."""
    service: CommentService = request.app.state.comment_service
    return service


CommentServiceDep = Annotated[CommentService, Depends(get_comment_service)]


@router.post("/{ref}/comments", status_code=201, responses=errors(CommentRefusedError))
async def add_comment(
    ref: str,
    body: CommentCreate,
    principal: CaseParticipant,
    service: CommentServiceDep,
    limiter: RateLimiterDep,
) -> CommentPublic:
    """Add a public or internal comment to a case; customers may post public ones only."""
    await charge_customer(limiter, Limit.COMMENTS_PER_CUSTOMER, principal)
    comment = await service.add_comment(
        principal=principal, ref=ref, body=body.body, visibility=body.visibility
    )
    return CommentPublic.from_comment(comment)


@router.get("/{ref}/comments")
async def list_comments(
    ref: str, principal: CaseParticipant, service: CommentServiceDep
) -> CommentsPublic:
    """List a case's comments, oldest first, each with its attachments (ids and names);
    customers see public ones only."""
    views = await service.list_comments(principal=principal, ref=ref)
    return CommentsPublic(
        ref=ref,
        data=[CommentPublic.from_comment(v.comment, v.attachments) for v in views],
        count=len(views),
    )
