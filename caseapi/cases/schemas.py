"""HTTP shapes for cases (Pydantic lives only at the edge)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from caseapi.cases.enums import CaseEventKind, CasePriority, CaseSource, CaseStatus, CaseType
from caseapi.cases.models import Case, CaseEvent


class CasePublic(BaseModel):
    """A case as the API shows it; ``recurrence_of`` is the reference of the earlier case."""

    model_config = ConfigDict(frozen=True)

    ref: str
    type: CaseType
    priority: CasePriority
    status: CaseStatus
    source: CaseSource
    dedup_key: str | None
    ntu_id: str | None
    customer_id: str | None
    service_id: str | None
    site: str | None
    summary: str
    outage_start: datetime | None
    detected_at: datetime | None
    restored_at: datetime | None
    solved_at: datetime | None
    monitoring_until: datetime | None
    reopen_count: int
    recurrence_of: str | None
    no_support: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_case(cls, case: Case) -> CasePublic:
        """Build from a ``Case`` loaded with ``previous_case``."""
        previous = case.previous_case if case.recurrence_of is not None else None
        return cls(
            ref=case.ref,
            type=case.type,
            priority=case.priority,
            status=case.status,
            source=case.source,
            dedup_key=case.dedup_key,
            ntu_id=case.ntu_id,
            customer_id=case.customer_id,
            service_id=case.service_id,
            site=case.site,
            summary=case.summary,
            outage_start=case.outage_start,
            detected_at=case.detected_at,
            restored_at=case.restored_at,
            solved_at=case.solved_at,
            monitoring_until=case.monitoring_until,
            reopen_count=case.reopen_count,
            recurrence_of=previous.ref if previous is not None else None,
            no_support=case.no_support,
            created_at=case.created_at,
            updated_at=case.updated_at,
        )


class CasesPublic(BaseModel):
    """One page of cases; ``count`` is the number matching the filters on all pages."""

    data: list[CasePublic]
    count: int
    next_cursor: str | None


class CaseEventPublic(BaseModel):
    """One timeline entry."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    at: datetime
    kind: CaseEventKind
    actor: str
    data: dict[str, Any]

    @classmethod
    def from_event(cls, event: CaseEvent) -> CaseEventPublic:
        """Build from a ``CaseEvent``."""
        return cls.model_validate(event)


class CaseTimelinePublic(BaseModel):
    """The timeline of one case, oldest entry first."""

    ref: str
    data: list[CaseEventPublic]
    count: int
