"""Case service: proactive incidents from the detector, and case queries for the API.

Business rules for this slice (DOMAIN.md, "Resolution and closure"):

- One open case per dedup key (the database enforces it with a partial unique
  index). Opening again returns the same reference: idempotent.
- Restoration solves the case and starts a monitoring window (24 h P1, 72 h P2 by
  default). A new outage that starts inside the window puts the same case back to
  work (``recurred``). A closed case is never reopened: the next outage for its key
  opens a new case whose ``recurrence_of`` points at it.
- Every change writes a timeline entry (``case_events``) in the same transaction.
- Upstream outages (``open_upstream_incident``): one internal incident per node
  outage (no customer; the affected NTUs in ``affected``) and one case per affected
  customer linked to it (``parent_case_id``), all in one transaction, idempotent by
  dedup key. Restoring the upstream incident solves its linked customer cases.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.cases import lifecycle, repository, store
from caseapi.cases.actions import CaseActions
from caseapi.cases.enums import (
    WORKING_STATUSES,
    CaseEventKind,
    CasePriority,
    CaseSource,
    CaseStatus,
    CaseType,
    EscalationLevel,
)
from caseapi.cases.models import Case, CaseEvent
from caseapi.cases.repository import CaseFilters
from caseapi.cases.sla import SlaSettings
from caseapi.cases.snapshot import ChangePriority, Recur, Restore, Tick
from caseapi.core.database import decode_cursor, encode_cursor, session_scope
from caseapi.core.errors import CaseNotFoundError
from caseapi.core.timers import TICKER_ACTOR
from caseapi.ntus import repository as ntu_repository
from nms.clock import Clock
from nms.outage import IncidentOpen, UpstreamOpen

DEFAULT_MONITORING_WINDOW_P1: Final = timedelta(hours=24)
DEFAULT_MONITORING_WINDOW_P2: Final = timedelta(hours=72)
MAX_PAGE_SIZE: Final = 500
DETECTOR_ACTOR: Final = "detector"
ACTIVE_CONTRACT: Final = "active"

# A creator that loses the race for a dedup key (or a reference) gets an
# IntegrityError; the retry then finds the winner's case. Two is enough: after one
# loss the winner's row is committed and visible.
_CREATE_ATTEMPTS: Final = 3

_CURSOR_KEYS: Final = {"id": int}


@dataclass(frozen=True, slots=True)
class CasePage:
    """One page of a case listing."""

    items: list[Case]
    count: int
    next_cursor: str | None


class CaseService(CaseActions):
    """Records proactive incidents and answers case queries.

    Implements ``nms.outage.CaseSink``; both sink calls are idempotent by dedup key.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        monitoring_window_p1: timedelta = DEFAULT_MONITORING_WINDOW_P1,
        monitoring_window_p2: timedelta = DEFAULT_MONITORING_WINDOW_P2,
        sla: SlaSettings | None = None,
    ) -> None:
        """Create the service.

        Args:
            sessionmaker: Session factory (``caseapi.core.database.make_sessionmaker``).
            clock: Source of "now" for every stored timestamp.
            monitoring_window_p1: How long a solved P1 case is watched for recurrence.
            monitoring_window_p2: The same for P2 (and P3, which the detector never
                opens but support may set).
            sla: The other SLA defaults (first response, unassigned flag, repair
                times, waiting-customer reminder and auto-close); DOMAIN.md's when
                omitted. Its monitoring windows are replaced by the two above.
        """
        for name, window in (("p1", monitoring_window_p1), ("p2", monitoring_window_p2)):
            if window <= timedelta(0):
                raise ValueError(f"monitoring_window_{name} must be positive, got {window}")
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._sla = replace(
            sla or SlaSettings(),
            monitoring_window_p1=monitoring_window_p1,
            monitoring_window_p2=monitoring_window_p2,
        )

    @property
    def sla(self) -> SlaSettings:
        """The SLA defaults this service applies."""
        return self._sla

    @property
    def clock(self) -> Clock:
        """The clock every stored timestamp comes from."""
        return self._clock

    # -- CaseSink ---------------------------------------------------------------

    async def open_incident(self, request: IncidentOpen) -> str:
        """Return the reference of the open case for ``request.dedup_key``.

        Creates a ``new`` proactive incident when no case is open; reopens a solved
        case when this outage started inside its monitoring window; otherwise
        returns the open case unchanged.

        Raises:
            ValueError: A timestamp in ``request`` is naive.
            DatabaseUnavailableError: The database cannot be reached.
        """
        _require_aware(outage_start=request.outage_start, detected_at=request.detected_at)
        for attempt in range(1, _CREATE_ATTEMPTS + 1):
            try:
                async with session_scope(self._sessionmaker, write=True) as session:
                    ref = await self._open_incident(session, request)
                    await session.commit()
                    return ref
            except IntegrityError:
                # Lost the race to another creator (only possible on PostgreSQL, where
                # writers do not queue up front); its case is committed now.
                if attempt == _CREATE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def open_upstream_incident(self, request: UpstreamOpen) -> str:
        """Return the reference of the open upstream incident for ``request.dedup_key``.

        Creates it (P1, no customer) when none is open, adds ``request.affected`` to
        its affected NTUs, and opens (or finds) one case per affected customer,
        keyed ``<dedup_key>:customer:<id>`` and linked to it. Race-safe and
        idempotent like ``open_incident``.

        Raises:
            ValueError: A timestamp in ``request`` is naive.
            DatabaseUnavailableError: The database cannot be reached.
        """
        _require_aware(outage_start=request.outage_start, detected_at=request.detected_at)
        for attempt in range(1, _CREATE_ATTEMPTS + 1):
            try:
                async with session_scope(self._sessionmaker, write=True) as session:
                    ref = await self._open_upstream(session, request)
                    await session.commit()
                    return ref
            except IntegrityError:
                if attempt == _CREATE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def restore_incident(self, *, dedup_key: str, restored_at: datetime) -> str | None:
        """Mark the open case for ``dedup_key`` solved; return its reference, if any.

        An upstream incident's linked customer cases are solved with it.

        ``restored_at`` earlier than the case's outage start is clamped to it (and
        the reported value kept in the timeline). A case that is already solved (or
        further along) is left alone, so calling twice is harmless.

        Raises:
            ValueError: ``restored_at`` is naive.
            DatabaseUnavailableError: The database cannot be reached.
        """
        _require_aware(restored_at=restored_at)
        async with session_scope(self._sessionmaker, write=True) as session:
            case = await repository.get_open_case_by_dedup_key(session, dedup_key=dedup_key)
            if case is None:
                return None
            if case.status in WORKING_STATUSES:
                await self._solve(session, case, restored_at)
                linked = await repository.list_linked_cases(
                    session, parent_id=case.id, dedup_prefix=f"{dedup_key}:customer:"
                )
                for child in linked:
                    if child.status in WORKING_STATUSES:
                        await self._solve(session, child, restored_at)
                await session.commit()
            return case.ref

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

        Args:
            filters: What to match.
            cursor: ``next_cursor`` of the previous page, or ``None`` for the first.
            limit: Page size, 1 to ``MAX_PAGE_SIZE``.

        Raises:
            InvalidCursorError: ``cursor`` was not issued by this service.
        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
        before_id = None
        if cursor is not None:
            before_id = decode_cursor(cursor, keys=_CURSOR_KEYS)["id"]
        async with session_scope(self._sessionmaker) as session:
            # One extra row tells whether another page exists.
            items = await repository.list_cases(
                session, filters=filters, before_id=before_id, limit=limit + 1
            )
            count = await repository.count_cases(session, filters=filters)
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            next_cursor = encode_cursor({"id": items[-1].id})
        return CasePage(items=items, count=count, next_cursor=next_cursor)

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

    # -- rules ------------------------------------------------------------------

    async def _open_upstream(self, session: AsyncSession, request: UpstreamOpen) -> str:
        merged: dict[str, str] = {}
        parent_ref = await self._open_incident(
            session,
            IncidentOpen(
                dedup_key=request.dedup_key,
                priority="P1",
                ntu_id=request.node_id,
                customer_id=None,
                service_id=None,
                site=request.site,
                outage_start=request.outage_start,
                detected_at=request.detected_at,
                summary=request.summary,
            ),
        )
        parent = await repository.get_open_case_by_dedup_key(session, dedup_key=request.dedup_key)
        assert parent is not None
        assert parent.ref == parent_ref
        for item in parent.affected or []:
            merged[item["ntu"]] = item["customer"]
        for affected in request.affected:
            merged[affected.ntu_id] = affected.customer_id
        by_customer: dict[str, list[str]] = {}
        for ntu_id, customer_id in sorted(merged.items()):
            by_customer.setdefault(customer_id, []).append(ntu_id)
        affected_rows = [{"ntu": n, "customer": c} for n, c in sorted(merged.items())]
        if parent.affected != affected_rows:
            parent.affected = affected_rows
            parent.summary = (
                f"{request.summary}: {len(merged)} NTUs of {len(by_customer)} customers unreachable"
            )
        for customer_id, ntu_ids in sorted(by_customer.items()):
            key = f"{request.dedup_key}:customer:{customer_id}"
            await self._open_incident(
                session,
                IncidentOpen(
                    dedup_key=key,
                    priority="P1",
                    ntu_id=ntu_ids[0] if len(ntu_ids) == 1 else None,
                    customer_id=customer_id,
                    service_id=None,
                    site=None,
                    outage_start=request.outage_start,
                    detected_at=request.detected_at,
                    summary=f"Upstream outage ({parent.ref}): {len(ntu_ids)} of your NTUs "
                    f"unreachable: {', '.join(ntu_ids)}",
                ),
            )
            child = await repository.get_open_case_by_dedup_key(session, dedup_key=key)
            assert child is not None
            if child.parent_case_id != parent.id:
                child.parent_case_id = parent.id
            summary = (
                f"Upstream outage ({parent.ref}): {len(ntu_ids)} of your NTUs unreachable: "
                f"{', '.join(ntu_ids)}"
            )
            if child.summary != summary:
                child.summary = summary
        await session.flush()
        return parent.ref

    async def _open_incident(self, session: AsyncSession, request: IncidentOpen) -> str:
        now = self._clock.now()
        case = await repository.get_open_case_by_dedup_key(session, dedup_key=request.dedup_key)
        if case is not None and await self._catch_up(session, case, request, now):
            case = None  # its window had ended: closed now, the new outage gets a new case
        if case is not None:
            await self._recur(session, case, request, now)
            return case.ref
        if request.supersedes is not None:
            lower = await repository.get_open_case_by_dedup_key(
                session, dedup_key=request.supersedes
            )
            if lower is not None and await self._upgrade(session, lower, request, now):
                return lower.ref

        last = await repository.get_last_case_by_dedup_key(session, dedup_key=request.dedup_key)
        recurrence_of = last if last is not None and last.status is CaseStatus.CLOSED else None
        customer = None
        if request.customer_id is not None:
            customer = await ntu_repository.get_customer(session, customer_id=request.customer_id)
        parent = None
        if request.parent_key is not None:
            parent = await repository.get_last_case_by_dedup_key(
                session, dedup_key=request.parent_key
            )
        # Expired or unpaid contracts get no support, but the outage is still recorded
        # for the NOC, flagged. A customer missing from the inventory is not flagged:
        # that is an inventory problem, not a contract decision.
        no_support = customer is not None and customer.contract_status != ACTIVE_CONTRACT
        case = Case(
            ref=await repository.next_case_ref(session, year=now.year),
            type=CaseType.INCIDENT,
            priority=CasePriority(request.priority),
            status=CaseStatus.NEW,
            source=CaseSource.PROACTIVE,
            dedup_key=request.dedup_key,
            ntu_id=request.ntu_id,
            customer_id=request.customer_id,
            service_id=request.service_id,
            site=request.site,
            summary=request.summary,
            outage_start=request.outage_start,
            detected_at=request.detected_at,
            reopen_count=0,
            recurrence_of=recurrence_of.id if recurrence_of is not None else None,
            parent_case_id=parent.id if parent is not None else None,
            no_support=no_support,
            created_by=DETECTOR_ACTOR,
            created_at=now,
            updated_at=now,
        )
        await self.start_clocks(session, case, now=now)
        data: dict[str, Any] = {
            "status": CaseStatus.NEW.value,
            "priority": case.priority.value,
            "dedup_key": request.dedup_key,
            "outage_start": _iso(request.outage_start),
            "detected_at": _iso(request.detected_at),
            "no_support": no_support,
        }
        if recurrence_of is not None:
            data["recurrence_of"] = recurrence_of.ref
        if parent is not None:
            data["parent"] = parent.ref
        await repository.add_event(
            session, case=case, at=now, kind=CaseEventKind.OPENED, actor=DETECTOR_ACTOR, data=data
        )
        return case.ref

    async def start_clocks(self, session: AsyncSession, case: Case, *, now: datetime) -> None:
        """Insert the new ``case`` with its SLA deadlines set from its policy."""
        case.version = 1
        case.escalation_level = EscalationLevel.L1
        policy = await store.policy_for(session, case, self._sla)
        for name, value in lifecycle.initial_deadlines(
            created_at=now, priority=case.priority, policy=policy
        ).items():
            setattr(case, name, value)
        await repository.add_case(session, case=case)
        case.next_due_at = lifecycle.next_due_at(await store.load_snapshot(session, case))
        await session.flush()

    async def _catch_up(
        self, session: AsyncSession, case: Case, request: IncidentOpen, now: datetime
    ) -> bool:
        """Do what a late ticker has not done yet; return whether ``case`` is finished.

        A new outage that starts after a solved case's monitoring window must be
        judged as if the ticker had already acted on the window's end (it may run
        late, or not at all for a while): the case goes to ``rfo_pending`` (where
        the outage puts it back to work) or closes (and the outage opens a new case
        linked to it). Without this the outage would be swallowed by the solved case.
        """
        until = case.monitoring_until
        if case.status is not CaseStatus.SOLVED or until is None:
            return False
        if request.outage_start < until or now < until:
            return False  # inside the window: a recurrence (or not due yet)
        policy = await store.policy_for(session, case, self._sla)
        down = await store.ntu_is_down(session, case)
        await store.apply_event(
            session, case, Tick(actor=TICKER_ACTOR, ntu_down=down), now=now, policy=policy
        )
        return case.status.is_terminal

    async def _recur(
        self, session: AsyncSession, case: Case, request: IncidentOpen, now: datetime
    ) -> None:
        # Judged by when the new outage started, not when it was detected: the down
        # timer makes detection lag by minutes, and an outage that began inside the
        # window is a recurrence even if confirmed just after it. An outage that began
        # before the restoration is the old one (a duplicate or late message).
        previous = {
            "restored_at": _iso(case.restored_at),
            "solved_at": _iso(case.solved_at),
            "monitoring_until": _iso(case.monitoring_until),
        }
        event = Recur(
            outage_start=request.outage_start,
            actor=DETECTOR_ACTOR,
            data={
                "priority": request.priority,
                "outage_start": _iso(request.outage_start),
                "detected_at": _iso(request.detected_at),
                "previous": previous,
            },
        )
        policy = await store.policy_for(session, case, self._sla)
        await store.apply_event(session, case, event, now=now, policy=policy)

    async def _upgrade(
        self, session: AsyncSession, case: Case, request: IncidentOpen, now: datetime
    ) -> bool:
        """A degraded (P2) case whose NTU went down becomes the P1 case, in place.

        Returns ``False`` (nothing upgraded) when the P2 case's monitoring window had
        ended before this outage began: the late window end closes it, and the down
        outage gets a case of its own.
        """
        if await self._catch_up(session, case, request, now):
            return False
        if case.status in (CaseStatus.SOLVED, CaseStatus.RFO_PENDING):
            # The degradation had been solved; going down is a new outage on it,
            # judged by the window it was solved under (P2's). After the priority
            # change the window would be P1's, which may already have ended.
            await self._recur(session, case, request, now)
        policy = await store.policy_for(session, case, self._sla)
        old_key = case.dedup_key
        event = ChangePriority(
            priority=CasePriority(request.priority), actor=DETECTOR_ACTOR, reason="NTU went down"
        )
        await store.apply_event(session, case, event, now=now, policy=policy)
        case.dedup_key = request.dedup_key
        await session.flush()
        await repository.add_event(
            session,
            case=case,
            at=now,
            kind=CaseEventKind.PRIORITY_CHANGED,
            actor=DETECTOR_ACTOR,
            data={"dedup_key": {"from": old_key, "to": request.dedup_key}},
        )
        return True

    async def _solve(self, session: AsyncSession, case: Case, restored_at: datetime) -> None:
        now = self._clock.now()
        reported = restored_at
        if case.outage_start is not None and restored_at < case.outage_start:
            restored_at = case.outage_start
        policy = await store.policy_for(session, case, self._sla)
        outcome = await store.apply_event(
            session,
            case,
            Restore(restored_at=restored_at, actor=DETECTOR_ACTOR),
            now=now,
            policy=policy,
        )
        if reported != restored_at and outcome.entries:
            # Clock skew between probe hosts, or a late message: never let the
            # impact end before it started, but keep what was reported.
            event = (await repository.list_events(session, case_id=case.id))[-1]
            event.data = {
                **event.data,
                "reported_restored_at": _iso(reported),
                "clamped_to_outage_start": True,
            }
            await session.flush()


def _require_aware(**timestamps: datetime) -> None:
    for name, value in timestamps.items():
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
