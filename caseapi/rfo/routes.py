"""HTTP routes for a case's RFO: read (JSON or Markdown), edit the draft, publish."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from caseapi.api.openapi import errors
from caseapi.auth.deps import CaseParticipant, StaffPrincipal
from caseapi.core.deps import OptionalVersion
from caseapi.rfo.errors import RfoIncompleteError, RfoPublishedError, RfoRuleError
from caseapi.rfo.render import render_markdown
from caseapi.rfo.schemas import RfoFormat, RfoPublic, RfoUpdate
from caseapi.rfo.service import RfoService, RfoView

router = APIRouter(prefix="/v1/cases", tags=["rfo"])

MARKDOWN = "text/markdown; charset=utf-8"


def get_rfo_service(request: Request) -> RfoService:
    """Return the RFO service built by ``create_app``."""
    service: RfoService = request.app.state.rfo_service
    return service


RfoServiceDep = Annotated[RfoService, Depends(get_rfo_service)]


def to_public(view: RfoView) -> RfoPublic:
    """Shape a service view for the API."""
    row = view.row
    return RfoPublic(
        case_ref=view.case_ref,
        version=view.version,
        status="published" if view.published else "draft",
        saved=row is not None,
        root_cause_category=row.root_cause_category if row else None,
        root_cause=row.root_cause if row else None,
        corrective_actions=row.corrective_actions if row else None,
        preventive_actions=row.preventive_actions if row else None,
        preventive_not_applicable=row.preventive_not_applicable if row else None,
        facts=view.facts,
        created_at=row.created_at if row else None,
        created_by=row.created_by if row else None,
        updated_at=row.updated_at if row else None,
        updated_by=row.updated_by if row else None,
        published_at=row.published_at if row else None,
        published_by=row.published_by if row else None,
    )


@router.get(
    "/{ref}/rfo",
    response_model=RfoPublic,
    responses={200: {"content": {"text/markdown": {}}}},
)
async def get_rfo(
    ref: str,
    principal: CaseParticipant,
    service: RfoServiceDep,
    version: OptionalVersion = None,
    format: Annotated[RfoFormat, Query()] = RfoFormat.JSON,
) -> RfoPublic | Response:
    """Get a case's RFO as JSON or Markdown; customers get the latest published version."""
    public = to_public(await service.get_rfo(principal=principal, ref=ref, version=version))
    if format is RfoFormat.MD:
        return Response(render_markdown(public.model_dump(mode="json")), media_type=MARKDOWN)
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
