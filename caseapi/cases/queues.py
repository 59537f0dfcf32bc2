"""The engineers' work queues: which cases each queue holds, and each case's next deadline.

Pure definitions over ``CaseFilters`` (the repository turns them into SQL): the
console's queue pages and their counts ask the case service with these, so a queue
means the same wherever it is shown.

- ``mine``: open cases assigned to the reader; ``unassigned``: still worked (new,
  in progress, waiting), nobody assigned
- ``at_risk``: still worked, a clock (first response, repair time) or a promise falls
  due within ``cases.at_risk_within`` (15 min by default) and has not been missed yet
- ``breached``: open, a clock or a promise already missed
- ``waiting_customer`` / ``waiting_supplier`` / ``rfo_pending``: by status
- ``monitoring``: solved, the monitoring window still running
- ``escalated``: open, above L1
- ``all``: every case
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any, Final

from sqlalchemy import String, bindparam

from caseapi.cases.config import DEFAULT_AT_RISK_WITHIN
from caseapi.cases.enums import WORKING_STATUSES, CaseStatus
from caseapi.cases.models import Case, CaseCommitment
from caseapi.cases.repository import Bound, CaseFilters, CountQuery, count_query
from caseapi.core.base import UTCDateTime

#: How soon a deadline must come for its case to be "at risk".
#: ``cases.at_risk_within``'s default; the service passes the setting.
AT_RISK_WITHIN: Final = DEFAULT_AT_RISK_WITHIN


class Queue(StrEnum):
    MINE = "mine"
    UNASSIGNED = "unassigned"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    WAITING_CUSTOMER = "waiting_customer"
    WAITING_SUPPLIER = "waiting_supplier"
    MONITORING = "monitoring"
    RFO_PENDING = "rfo_pending"
    ESCALATED = "escalated"
    ALL = "all"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS: Final = {
    Queue.MINE: "Mine",
    Queue.UNASSIGNED: "Unassigned",
    Queue.AT_RISK: "SLA at risk",
    Queue.BREACHED: "SLA breached",
    Queue.WAITING_CUSTOMER: "Waiting on customer",
    Queue.WAITING_SUPPLIER: "Waiting on supplier",
    Queue.MONITORING: "In monitoring window",
    Queue.RFO_PENDING: "RFO pending",
    Queue.ESCALATED: "Escalated",
    Queue.ALL: "All",
}


def queue_filters(
    queue: Queue,
    *,
    assignee: str,
    now: datetime,
    at_risk_within: timedelta = AT_RISK_WITHIN,
    base: CaseFilters | None = None,
) -> CaseFilters | None:
    """The filters of ``queue`` for the engineer ``assignee`` at ``now``, combined
    with ``base`` (the page's own filters); ``None`` when they exclude each other (a
    status filter naming another status than a status queue's)."""
    return _queue_filters(
        queue, assignee=assignee, now=now, at_risk_before=now + at_risk_within, base=base
    )


def _queue_filters(
    queue: Queue,
    *,
    assignee: str | Bound,
    now: datetime | Bound,
    at_risk_before: datetime | Bound,
    base: CaseFilters | None = None,
) -> CaseFilters | None:
    filters = base or CaseFilters()
    match queue:
        case Queue.MINE:
            return replace(filters, open_only=True, assignee=assignee)
        case Queue.UNASSIGNED:
            working = _within(filters, WORKING_STATUSES)
            return None if working is None else replace(working, unassigned=True)
        case Queue.AT_RISK:
            return replace(filters, sla_due_before=at_risk_before)
        case Queue.BREACHED:
            return replace(filters, sla_breached=True)
        case Queue.WAITING_CUSTOMER:
            return _narrowed(filters, CaseStatus.WAITING_CUSTOMER)
        case Queue.WAITING_SUPPLIER:
            return _narrowed(filters, CaseStatus.WAITING_SUPPLIER)
        case Queue.RFO_PENDING:
            return _narrowed(filters, CaseStatus.RFO_PENDING)
        case Queue.MONITORING:
            return replace(filters, monitoring_at=now)
        case Queue.ESCALATED:
            return replace(filters, open_only=True, escalated=True)
        case Queue.ALL:
            return filters


#: Every queue but ``all`` holds open cases only: their counts need scan no other
#: (``IN`` over the open statuses, which the status index finds).
OPEN_CASES: Final = CaseFilters(statuses=tuple(s for s in CaseStatus if not s.is_terminal))


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """Every queue's count for the engineer ``assignee`` at ``now`` (the navigation
    of the queue pages; ``CaseService.queue_page``)."""

    assignee: str
    now: datetime
    at_risk_within: timedelta = AT_RISK_WITHIN

    def params(self) -> dict[str, Any]:
        """The values of ``count_queries``' bound filters."""
        return {
            "me": self.assignee,
            "now": self.now,
            "at_risk_before": self.now + self.at_risk_within,
        }


class CountsCache:
    """The queue counts last read for each engineer, reused while no case changed.

    Twenty engineers with the queue page open ask for every queue's count each time
    they look, and the live refresh asks again after every change; the counts pass
    over every open case. A read is reused while the cases' change marker
    (``caseapi.cases.board.change_marker``: any case created or changed moves it)
    is the one it was read under, and for at most ``ttl``: what the marker cannot
    see, time passing (a deadline coming within the at-risk horizon, a monitoring
    window ending), is at most that old. Bounded: the oldest reader is dropped.
    """

    def __init__(self, *, ttl: timedelta, size: int = 256) -> None:
        self._ttl = ttl
        self._size = size
        self._reads: dict[tuple[str, timedelta], tuple[object, datetime, dict[str, int]]] = {}

    def get(self, counts: QueueCounts, marker: object) -> dict[str, int] | None:
        """The counts of ``counts``' engineer if read under ``marker`` within ``ttl``."""
        found = self._reads.get((counts.assignee, counts.at_risk_within))
        if found is None:
            return None
        read_marker, read_at, counted = found
        if read_marker != marker or not read_at <= counts.now < read_at + self._ttl:
            return None
        return counted

    def put(self, counts: QueueCounts, marker: object, counted: dict[str, int]) -> None:
        key = (counts.assignee, counts.at_risk_within)
        self._reads.pop(key, None)
        if len(self._reads) >= self._size:
            del self._reads[next(iter(self._reads))]
        self._reads[key] = (marker, counts.now, counted)


@cache
def count_queries(dialect: str) -> tuple[CountQuery, ...]:
    """The statements counting every queue, built once (a page view only binds
    ``QueueCounts.params``): two passes, the open queues over the open cases, and
    ``all``."""
    named = {
        queue.value: filters
        for queue in Queue
        if queue is not Queue.ALL
        and (
            filters := _queue_filters(
                queue,
                assignee=bindparam("me", type_=String()),
                now=bindparam("now", type_=UTCDateTime()),
                at_risk_before=bindparam("at_risk_before", type_=UTCDateTime()),
            )
        )
        is not None
    }
    return (
        count_query(named, within=OPEN_CASES, dialect=dialect),
        count_query({Queue.ALL.value: CaseFilters()}, dialect=dialect),
    )


def _narrowed(filters: CaseFilters, status: CaseStatus) -> CaseFilters | None:
    return _within(filters, frozenset({status}))


def _within(filters: CaseFilters, statuses: frozenset[CaseStatus]) -> CaseFilters | None:
    # A status filter on top of a queue of some statuses: ``None`` (no case) when they
    # share none (an empty status list would mean "any").
    allowed = statuses & set(filters.statuses) if filters.statuses else statuses
    if not allowed:
        return None
    return replace(filters, statuses=tuple(s for s in CaseStatus if s in allowed))


@dataclass(frozen=True, slots=True)
class Deadline:
    """The next SLA deadline of a case: what is due and when."""

    what: str
    at: datetime

    def overdue(self, now: datetime) -> bool:
        return self.at <= now


def next_deadline(case: Case, commitments: Iterable[CaseCommitment] = ()) -> Deadline | None:
    """The earliest clock or promise of ``case`` still owed (overdue ones included).

    Only cases still worked have one: a solved case's clocks have stopped.
    """
    if case.status not in WORKING_STATUSES:
        return None
    due: list[Deadline] = []
    if case.first_responded_at is None and case.first_response_due_at is not None:
        due.append(Deadline("first response", case.first_response_due_at))
    if case.paused_at is None and case.ttr_due_at is not None:
        due.append(Deadline("time to repair", case.ttr_due_at))
    for commitment in commitments:
        if commitment.case_id == case.id and commitment.met_at is None:
            due.append(Deadline(commitment.note or commitment.kind.value, commitment.due_at))
    return min(due, key=lambda deadline: deadline.at, default=None)
