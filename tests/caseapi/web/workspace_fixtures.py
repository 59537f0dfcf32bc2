"""Cases for the workspace page tests, opened through the case service as the API does."""

from __future__ import annotations

import re

from caseapi.auth.principal import Principal, Role
from caseapi.cases.enums import CasePriority, CaseSubject, CaseType
from caseapi.cases.schemas import CaseCreate
from caseapi.cases.service import CaseService

SEEDER = Principal(key_id=None, name="seeder", role=Role.ENGINEER, customer_id=None)


async def open_case(
    service: CaseService,
    *,
    customer: str = "cust-1",
    ntu: str | None = "ntu-1",
    summary: str = "Line down",
    priority: CasePriority | None = CasePriority.P2,
    request: bool = False,
) -> str:
    """Open a reactive case (an incident, or a general request) and return its ref."""
    draft = CaseCreate(
        type=CaseType.GENERAL_REQUEST if request else CaseType.INCIDENT,
        subject=CaseSubject.INFORMATION_REQUEST if request else None,
        summary=summary,
        customer_id=customer,
        ntu_id=ntu,
        priority=None if request else priority,
    )
    created = await service.create_case(SEEDER, draft)
    return created.case.ref


def rows(html: str) -> list[str]:
    """The references of a queue page's rows, in order."""
    return re.findall(r'data-test="case-row" data-ref="([^"]+)"', html)


def count(html: str, queue: str) -> int:
    """The count the queue navigation shows for ``queue``."""
    match = re.search(
        rf'data-test="queue-{queue}"[^>]*>[^<]*<span class="count">(\d+)</span>', html
    )
    assert match is not None, f"no count for queue {queue}"
    return int(match.group(1))
