"""Case service: the people-facing work on cases and the case queries of the API.

``CaseActions`` (mixed in) holds what people do to cases (create, work, escalate),
``EtrActions`` the estimated time of restoration; this class adds the queries. The
detector's incidents are ``IncidentService``'s (``caseapi.cases.incidents``); both
create cases through ``store.insert_case`` and change them through
``store.apply_event``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final, TypeAlias

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.auth.principal import Principal
from caseapi.cases import paging, repository, store
from caseapi.cases.actions import CaseActions, is_customer_visible
from caseapi.cases.board import change_marker
from caseapi.cases.config import DEFAULT_AT_RISK_WITHIN, DEFAULT_SLA
from caseapi.cases.enums import CaseStatus
from caseapi.cases.etr import EtrActions
from caseapi.cases.incidents import IncidentService
from caseapi.cases.machine import MANUAL_TRANSITIONS, close_blockers
from caseapi.cases.models import Case, CaseCommitment, CaseEvent
from caseapi.cases.queues import (
    CountsCache,
    Deadline,
    QueueCounts,
    count_queries,
    next_deadline,
)
from caseapi.cases.repository import CaseFilters
from caseapi.cases.sla import SlaSettings
from caseapi.clock import Clock
from caseapi.comments import repository as comment_repository
from caseapi.comments.models import Comment
from caseapi.core.database import session_scope
from caseapi.core.errors import CaseNotFoundError
from caseapi.oncall.cached import TiersCache

MAX_PAGE_SIZE: Final = paging.MAX_PAGE_SIZE

#: Re-exported: the digest a case listing's cursor is bound to.
filters_fingerprint = paging.filters_fingerprint


#: One page of a case listing.
CasePage: TypeAlias = paging.Page[Case]


@dataclass(frozen=True, slots=True)
class QueueRow:
    """A case of a queue page with its next SLA deadline (``None``: no clock runs)."""

    case: Case
    deadline: Deadline | None


@dataclass(frozen=True, slots=True)
class QueuePage:
    """One page of a queue, sorted, and how many cases the queue holds in all;
    ``counts``: the other counts asked for with it (``queue_page``'s ``counts``)."""

    rows: list[QueueRow]
    count: int
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class CaseView:
    """What the console's case page reads of a case, in one transaction."""

    case: Case
    commitments: list[CaseCommitment]
    #: The upstream incident's reference, and the references of the cases linked to
    #: this one (``get_related``).
    parent: str | None
    linked: list[str]
    #: The timeline, oldest first (customers: only their entries).
    events: list[CaseEvent]
    #: The comments the reader may see, oldest first (the timeline's bodies).
    comments: list[Comment]


#: How long queue counts are reused while no case changes (``queues.CountsCache``).
COUNTS_TTL: Final = timedelta(seconds=5)


class CaseService(CaseActions, EtrActions):
    """Works cases on behalf of people and answers case queries."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        sla: SlaSettings | None = None,
        at_risk_within: timedelta = DEFAULT_AT_RISK_WITHIN,
        tiers: TiersCache | None = None,
    ) -> None:
        """Create the service.

        Args:
            sessionmaker: Session factory (``caseapi.database.make_sessionmaker``).
            clock: Source of "now" for every stored timestamp.
            sla: SLA durations (``CaseSettings.sla()``); the defaults when omitted.
            at_risk_within: A deadline due within this is "at risk"
                (``cases.at_risk_within``: the console's queue, as the alerts and the
                NOC gauge count it).
            tiers: Where the stored escalation tiers come from (a ``TiersCache`` of
                its own when omitted).
        """
        self._sessionmaker = sessionmaker
        self._clock = clock
        self.at_risk_within = at_risk_within
        self._counts = CountsCache(ttl=COUNTS_TTL)
        self._tiers = tiers or TiersCache()
        self._sla = sla = sla or DEFAULT_SLA
        self._incidents = IncidentService(sessionmaker=sessionmaker, clock=clock, sla=sla)

    def forget_tiers(self) -> None:
        """Read the stored escalation tiers again on the next read: this process has
        just stored new ones (an organisation file loaded), so reads show them at once
        instead of up to the tiers cache's TTL later."""
        self._tiers.forget()

    @property
    def sla(self) -> SlaSettings:
        """The SLA durations this service applies."""
        return self._sla

    @property
    def clock(self) -> Clock:
        """The clock every stored timestamp comes from."""
        return self._clock

    # -- queries ----------------------------------------------------------------

    async def get_case(self, ref: str) -> Case:
        """Return the case ``ref``.

        Raises:
            CaseNotFoundError: No such case.
        """
        async with session_scope(self._sessionmaker) as session:
            case = await repository.get_case_by_ref(session, ref=ref)
        if case is None:
            raise CaseNotFoundError(ref)
        return case

    async def list_cases(
        self, *, filters: CaseFilters, cursor: str | None = None, limit: int = 50
    ) -> CasePage:
        """Return one page of cases, newest first.

        A cursor is bound to the filters of the listing it came from: following it
        with other filters would silently page another listing, so it is refused.

        Args:
            filters: What to match.
            cursor: ``next_cursor`` of the previous page, or ``None`` for the first.
            limit: Page size, 1 to ``MAX_PAGE_SIZE`` (may change from page to page).

        Raises:
            InvalidCursorError: ``cursor`` was not issued by this service.
            CursorFiltersChangedError: ``cursor`` was issued for other ``filters``.
        """
        return await paging.page(
            self._sessionmaker,
            filters=filters,
            cursor=cursor,
            limit=limit,
            fetch=repository.list_cases,
            count=repository.count_cases,
            fetch_counted=repository.list_cases_counted,
        )

    async def get_timeline(self, ref: str) -> list[CaseEvent]:
        """Return the timeline of case ``ref``, oldest entry first.

        Raises:
            CaseNotFoundError: No such case.
        """
        async with session_scope(self._sessionmaker) as session:
            case = await repository.get_case_by_ref(session, ref=ref)
            if case is None:
                raise CaseNotFoundError(ref)
            return await repository.list_events(session, case_id=case.id)

    async def get_related(self, case: Case) -> tuple[str | None, list[str]]:
        """Return the reference of ``case``'s upstream incident and its linked cases'."""
        async with session_scope(self._sessionmaker) as session:
            parent = None
            if case.parent_case_id is not None:
                parent = await repository.get_case_ref_by_id(session, case_id=case.parent_case_id)
            children = await repository.list_linked_cases(session, parent_id=case.id)
        return parent, [child.ref for child in children]

    async def queue_page(
        self,
        *,
        filters: CaseFilters | None,
        order: str,
        offset: int,
        limit: int,
        counts: QueueCounts | None = None,
    ) -> QueuePage:
        """One sorted page of the cases matching ``filters`` (``None``: no case), with
        each case's next deadline, and every queue's count (``counts``, the queue
        navigation's) in the same transaction: three queries however long the page,
        and two for the counts.

        Args:
            filters: What to match (``caseapi.cases.queues.queue_filters``).
            order: A key of ``repository.QUEUE_ORDERS``.
            offset: How many cases to skip.
            limit: Page size.
            counts: Whose queues to count, at what time (none when omitted).
        """
        if order not in repository.QUEUE_ORDERS:
            raise ValueError(f"unknown order {order!r}")
        async with session_scope(self._sessionmaker) as session:
            counted: dict[str, int] = {}
            if counts is not None:
                counted = await self._queue_counts(session, counts)
            if filters is None:
                return QueuePage(rows=[], count=0, counts=counted)
            cases, count = await repository.list_sorted(
                session, filters=filters, order=order, offset=offset, limit=limit
            )
            promised = await repository.pending_commitments(
                session, case_ids=[case.id for case in cases]
            )
        rows = [QueueRow(case, next_deadline(case, promised)) for case in cases]
        return QueuePage(rows=rows, count=count, counts=counted)

    async def _queue_counts(self, session: AsyncSession, counts: QueueCounts) -> dict[str, int]:
        marker = await change_marker(session)
        counted = self._counts.get(counts, marker)
        if counted is None:
            counted = {}
            params = counts.params()
            for query in count_queries(session.get_bind().dialect.name):
                counted.update(await repository.run_counts(session, query, params))
            self._counts.put(counts, marker, counted)
        return counted

    async def case_view(self, principal: Principal, ref: str) -> CaseView:
        """Case ``ref`` with its commitments, related cases, timeline and comments, as
        ``principal`` may see them, read in one transaction.

        Raises:
            CaseNotFoundError: No such case, or another customer's.
        """
        async with session_scope(self._sessionmaker) as session:
            case = await store.case_for(session, principal, ref)
            commitments = await repository.list_commitments(session, case_id=case.id)
            parent = None
            if case.parent_case_id is not None:
                parent = await repository.get_case_ref_by_id(session, case_id=case.parent_case_id)
            linked = [c.ref for c in await repository.list_linked_cases(session, parent_id=case.id)]
            events = await repository.list_events(session, case_id=case.id)
            comments = await comment_repository.list_comments(
                session,
                case_id=case.id,
                visibilities=comment_repository.readable(customer=principal.is_customer),
            )
        if principal.is_customer:
            events = [event for event in events if is_customer_visible(event)]
        return CaseView(case, commitments, parent, linked, events, comments)

    async def allowed_transitions(self, case: Case) -> list[CaseStatus]:
        """The statuses staff may move ``case`` to now, as the lifecycle allows
        (closing only once nothing blocks it), in the lifecycle's order."""
        allowed = set(MANUAL_TRANSITIONS[case.status])
        if CaseStatus.CLOSED in allowed:
            async with session_scope(self._sessionmaker) as session:
                snapshot = await store.load_snapshot(session, case)
            if close_blockers(snapshot, self._clock.now()):
                allowed.discard(CaseStatus.CLOSED)
        return [status for status in CaseStatus if status in allowed]
