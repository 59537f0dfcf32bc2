"""The queue pages: ``/cases`` and its live fragment ``/cases/fragment``.

A queue (``caseapi.cases.queues``) combined with the page's filters and text search
(the same ``q`` as ``GET /v1/cases``), sorted, one page at a time; the navigation
shows every queue's count (one query for all of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from caseapi.cases.enums import CasePriority, CaseStatus, CaseType, EscalationLevel
from caseapi.cases.queues import Queue, QueueCounts, queue_filters
from caseapi.cases.repository import QUEUE_ORDERS, CaseFilters
from caseapi.cases.search import MAX_SEARCH_LENGTH, SearchSyntaxError, parse_search
from caseapi.core.base import ACTOR_LENGTH
from caseapi.web.deps import StaffPage
from caseapi.web.render import render
from caseapi.web.session import WebSession
from caseapi.web.workspace.common import cases

router = APIRouter(include_in_schema=False)

PAGE_SIZE: Final = 50
ORDERS: Final = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "priority": "Priority",
    "due": "Next deadline",
    "updated": "Last updated",
}


@dataclass(frozen=True, slots=True)
class QueueQuery:
    """What a queue page was asked for (kept in links, the form and the fragment)."""

    queue: Queue
    priority: CasePriority | None
    status: CaseStatus | None
    customer: str | None
    ntu: str | None
    assignee: str | None
    type: CaseType | None
    level: EscalationLevel | None
    q: str | None
    sort: str
    page: int

    def params(self, **changes: Any) -> dict[str, str]:
        values: dict[str, Any] = {
            "queue": self.queue,
            "priority": self.priority,
            "status": self.status,
            "customer": self.customer,
            "ntu": self.ntu,
            "assignee": self.assignee,
            "type": self.type,
            "level": self.level,
            "q": self.q,
            "sort": self.sort if self.sort != "newest" else None,
            "page": self.page if self.page > 1 else None,
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    def url(self, path: str = "/cases", **changes: Any) -> str:
        query = urlencode(self.params(**changes))
        return f"{path}?{query}" if query else path


def _blank(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


async def queue_query(
    queue: QueueParam = Queue.ALL,
    priority: Annotated[CasePriority | Blank | None, Query()] = None,
    status: Annotated[CaseStatus | Blank | None, Query()] = None,
    customer: Text64 = None,
    ntu: Text64 = None,
    assignee: Annotated[str | None, Query(max_length=ACTOR_LENGTH)] = None,
    type: Annotated[CaseType | Blank | None, Query()] = None,
    level: Annotated[EscalationLevel | Blank | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=MAX_SEARCH_LENGTH)] = None,
    sort: Annotated[str, Query(max_length=16)] = "newest",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> QueueQuery:
    """The queue page's query string (``/cases`` and its live fragment)."""
    return QueueQuery(
        queue=queue,
        priority=priority or None,
        status=status or None,
        customer=_blank(customer),
        ntu=_blank(ntu),
        assignee=_blank(assignee),
        type=type or None,
        level=level or None,
        q=_blank(q),
        sort=sort if sort in QUEUE_ORDERS else "newest",
        page=page,
    )


QueueQueryDep = Annotated[QueueQuery, Depends(queue_query)]


QueueParam = Annotated[Queue, Query()]
#: What the filter form sends for "any".
Blank = Literal[""]
Text64 = Annotated[str | None, Query(max_length=64)]


async def _context(request: Request, web: WebSession, query: QueueQuery) -> dict[str, Any]:
    service = cases(request)
    now = service.clock.now()
    me = web.principal.name
    error = None
    search = None
    if query.q is not None:
        try:
            search = parse_search(query.q)
        except SearchSyntaxError as exc:
            error = f"Search: {exc}"
    base = CaseFilters(
        statuses=(query.status,) if query.status else (),
        priorities=(query.priority,) if query.priority else (),
        types=(query.type,) if query.type else (),
        escalation_levels=(query.level,) if query.level else (),
        customer_id=query.customer,
        ntu_id=query.ntu,
        assignee=query.assignee,
        search=search,
        internal_text=search is not None,
    )
    soon = service.at_risk_within
    filters = queue_filters(query.queue, assignee=me, now=now, base=base, at_risk_within=soon)
    if error is not None:
        filters = None
    page = await service.queue_page(
        filters=filters,
        order=query.sort,
        offset=(query.page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
        counts=QueueCounts(assignee=me, now=now, at_risk_within=soon),
    )
    return {
        "query": query,
        "queues": list(Queue),
        "counts": page.counts,
        "page": page,
        "now": now,
        "error": error,
        "orders": ORDERS,
        "priorities": list(CasePriority),
        "statuses": list(CaseStatus),
        "types": list(CaseType),
        "levels": list(EscalationLevel),
        "pages": max(1, -(-page.count // PAGE_SIZE)),
        "fragment_url": query.url("/cases/fragment"),
    }


@router.get("/cases", response_class=HTMLResponse)
async def queue_page(
    request: Request,
    web: StaffPage,
    query: QueueQueryDep,
) -> HTMLResponse:
    """The queues: the chosen one's cases, filtered and sorted, and every queue's count."""
    context = await _context(request, web, query)
    return render(request, "workspace/queues.html", context)


@router.get("/cases/fragment", response_class=HTMLResponse)
async def queue_fragment(
    request: Request,
    web: StaffPage,
    query: QueueQueryDep,
) -> HTMLResponse:
    """The live part of ``/cases`` (the counts and the table), for ``live.js``."""
    context = await _context(request, web, query)
    return render(request, "workspace/_queue_live.html", context)
