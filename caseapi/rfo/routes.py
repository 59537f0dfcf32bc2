"""HTTP routes for a case's RFO: read (JSON, Markdown or PDF), edit the draft, publish."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from caseapi.api.openapi import errors
from caseapi.auth.deps import CaseParticipant, StaffPrincipal
from caseapi.core.deps import OptionalVersion
from caseapi.rfo.errors import (
    RfoIncompleteError,
    RfoNotPublishedError,
    RfoPublishedError,
    RfoRuleError,
)
from caseapi.rfo.pdf import PDF_MEDIA_TYPE, published_pdf
from caseapi.rfo.render import render_markdown
from caseapi.rfo.schemas import RfoFormat, RfoPublic, RfoUpdate, to_public
from caseapi.rfo.service import RfoService

router = APIRouter(prefix="/v1/cases", tags=["rfo"])

MARKDOWN = "text/markdown; charset=utf-8"


async def get_rfo_service(request: Request) -> RfoService:
    """Return the RFO service built by ``create_app``."""
    service: RfoService = request.app.state.rfo_service
    return service


RfoServiceDep = Annotated[RfoService, Depends(get_rfo_service)]


def wants_pdf(format: RfoFormat | None, accept: str | None) -> bool:
    """PDF when asked by ``format=pdf``, or by ``Accept`` when ``format`` is not given."""
    if format is not None:
        return format is RfoFormat.PDF
    media = [part.split(";")[0].strip().lower() for part in (accept or "").split(",")]
    return PDF_MEDIA_TYPE in media and "application/json" not in media


async def pdf_response(
    ref: str, principal: CaseParticipant, service: RfoService, version: int | None
) -> Response:
    """The published RFO of ``ref`` as a PDF download (the API's and the portal's)."""
    published = await service.get_published(principal=principal, ref=ref, version=version)
    # A few pages take tens of milliseconds of CPU: off the event loop.
    name, data = await asyncio.to_thread(published_pdf, published)
    return Response(
        data,
        media_type=PDF_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/{ref}/rfo",
    response_model=RfoPublic,
    responses={
        200: {
            "content": {
                "text/markdown": {},
                PDF_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            }
        },
        # The PDF is made of published versions only (staff may read drafts as JSON).
        **errors(RfoNotPublishedError),
    },
)
async def get_rfo(
    ref: str,
    principal: CaseParticipant,
    service: RfoServiceDep,
    request: Request,
    version: OptionalVersion = None,
    format: Annotated[RfoFormat | None, Query()] = None,
) -> RfoPublic | Response:
    """Get a case's RFO as JSON, Markdown or PDF (the PDF of published versions only)."""
    # Accept is read here rather than declared: OpenAPI ignores a declared Accept.
    if wants_pdf(format, request.headers.get("accept")):
        return await pdf_response(ref, principal, service, version)
    view = await service.get_rfo(principal=principal, ref=ref, version=version)
    public = to_public(view)
    if format is RfoFormat.MD:
        markdown = render_markdown(public.model_dump(mode="json"), zone=view.timezone)
        return Response(markdown, media_type=MARKDOWN)
    return public


@router.put("/{ref}/rfo", responses=errors(RfoPublishedError, RfoRuleError))
async def update_rfo(
    ref: str, body: RfoUpdate, principal: StaffPrincipal, service: RfoServiceDep
) -> RfoPublic:
    """Edit the RFO draft (a published version starts a new draft version)."""
    changes = body.model_dump(exclude_unset=True)
    if changes.get("root_cause_category") is not None:
        changes["root_cause_category"] = str(changes["root_cause_category"])
    view = await service.update_draft(principal=principal, ref=ref, changes=changes)
    return to_public(view)


@router.post("/{ref}/rfo/publish", responses=errors(RfoIncompleteError, RfoRuleError))
async def publish_rfo(ref: str, principal: StaffPrincipal, service: RfoServiceDep) -> RfoPublic:
    """Publish the RFO draft: it becomes immutable and visible to the customer."""
    return to_public(await service.publish(principal=principal, ref=ref))
