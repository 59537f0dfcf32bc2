"""HTTP routes for cases: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from caseapi.api.deps import CaseServiceDep
from caseapi.cases.enums import CasePriority, CaseStatus
from caseapi.cases.repository import CaseFilters
from caseapi.cases.schemas import CaseEventPublic, CasePublic, CasesPublic, CaseTimelinePublic
from caseapi.cases.service import MAX_PAGE_SIZE

router = APIRouter(prefix="/v1/cases", tags=["cases"])


@router.get("")
async def list_cases(
    service: CaseServiceDep,
    status: Annotated[list[CaseStatus] | None, Query()] = None,
    priority: Annotated[list[CasePriority] | None, Query()] = None,
    ntu: Annotated[str | None, Query(max_length=64)] = None,
    updated_since: Annotated[AwareDatetime | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> CasesPublic:
    """List cases, newest first; repeat status or priority to match any of several."""
    filters = CaseFilters(
        statuses=status or (),
        priorities=priority or (),
        ntu_id=ntu,
        updated_since=updated_since,
    )
    page = await service.list_cases(filters=filters, cursor=cursor, limit=limit)
    return CasesPublic(
        data=[CasePublic.from_case(case) for case in page.items],
        count=page.count,
        next_cursor=page.next_cursor,
    )


@router.get("/{ref}")
async def get_case(ref: str, service: CaseServiceDep) -> CasePublic:
    """Get one case by its reference."""
    return CasePublic.from_case(await service.get_case(ref))


@router.get("/{ref}/timeline")
async def get_case_timeline(ref: str, service: CaseServiceDep) -> CaseTimelinePublic:
    """Get the timeline of one case, oldest entry first."""
    events = await service.get_timeline(ref)
    return CaseTimelinePublic(
        ref=ref, data=[CaseEventPublic.from_event(event) for event in events], count=len(events)
    )
