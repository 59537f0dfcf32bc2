"""NTU pages: ``/ntus`` (the fleet, by id, filtered) and ``/ntus/{ntu_id}`` (its state,
latest probe figures and its cases). The same reads as ``GET /v1/ntus``."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from caseapi.cases.repository import CaseFilters
from caseapi.core.database import session_scope
from caseapi.core.errors import NtuNotFoundError
from caseapi.ntus import repository
from caseapi.rfo.facts import probe_figures
from caseapi.web.deps import StaffPage
from caseapi.web.render import render
from caseapi.web.workspace.common import cases

router = APIRouter(include_in_schema=False)

PAGE_SIZE: Final = 100
STATUSES: Final = ("up", "suspect", "down", "recovering", "unreachable", "unknown")


@router.get("/ntus", response_class=HTMLResponse)
async def ntu_list(
    request: Request,
    web: StaffPage,
    customer: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """The NTUs by id with their status, a page at a time."""
    customer = customer or None
    status = status or None
    async with session_scope(request.app.state.sessionmaker) as session:
        rows = await repository.list_ntus(
            session, customer_id=customer, status=status, after_id=after, limit=PAGE_SIZE + 1
        )
        total = await repository.count_ntus(session, customer_id=customer, status=status)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    context = {
        "rows": rows,
        "total": total,
        "customer": customer,
        "status": status,
        "statuses": STATUSES,
        "next_after": rows[-1].ntu.id if more and rows else None,
    }
    return render(request, "workspace/ntus.html", context)


@router.get("/ntus/{ntu_id}", response_class=HTMLResponse)
async def ntu_page(request: Request, web: StaffPage, ntu_id: str) -> HTMLResponse:
    """One NTU: state, latest probe figures, its cases (newest first)."""
    async with session_scope(request.app.state.sessionmaker) as session:
        row = await repository.get_ntu(session, ntu_id=ntu_id)
    if row is None:
        raise NtuNotFoundError(ntu_id)
    page = await cases(request).list_cases(filters=CaseFilters(ntu_id=ntu_id), limit=50)
    context = {
        "row": row,
        "probe": probe_figures(row.state),
        "cases": page.items,
        "case_count": page.count,
    }
    return render(request, "workspace/ntu.html", context)
