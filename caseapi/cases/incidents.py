"""Incidents from the detector: open, recur, upgrade, restore, and the NTU status.

Business rules (DOMAIN.md, "Resolution and closure"):

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

The people-facing work on cases (API, tenancy, queries) is ``CaseService``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.cases import repository, restorations, store
from caseapi.cases.config import DEFAULT_SLA
from caseapi.cases.contract import NTU_KEY_PREFIX, IncidentOpen, IncidentRestore, UpstreamOpen
from caseapi.cases.enums import (
    WORKING_STATUSES,
    CaseEventKind,
    CasePriority,
    CaseSource,
    CaseStatus,
    CaseType,
)
from caseapi.cases.models import Case
from caseapi.cases.sla import SlaSettings
from caseapi.cases.snapshot import ChangePriority, Recur, Tick
from caseapi.cases.ticker import TICKER_ACTOR
from caseapi.clock import Clock
from caseapi.core.database import session_scope
from caseapi.core.transaction import write_retrying
from caseapi.customers import repository as customer_repository
from caseapi.customers.models import Customer
from caseapi.ntus.status import NtuStatusUpdate, save_statuses
from caseapi.reports import recorder
from caseapi.reports.availability import OutageCause, OutageKind

DETECTOR_ACTOR: Final = "detector"
ACTIVE_CONTRACT: Final = "active"


class IncidentService:
    """Records the detector's incidents; implements ``caseapi.incidents.IncidentSink``.

    Every call is idempotent by dedup key.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        sla: SlaSettings | None = None,
    ) -> None:
        """Create the service.

        Args:
            sessionmaker: Session factory (``caseapi.database.make_sessionmaker``).
            clock: Source of "now" for every stored timestamp.
            sla: SLA durations (``CaseSettings.sla()``); the defaults when omitted.
        """
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._sla = sla or DEFAULT_SLA

    @property
    def sla(self) -> SlaSettings:
        """The SLA durations this service applies."""
        return self._sla

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

        async def work(session: AsyncSession) -> str:
            return await self._open_incident(session, request)

        return await write_retrying(self._sessionmaker, work)

    async def open_incidents(self, requests: Sequence[IncidentOpen]) -> list[str]:
        """``open_incident`` for every request; returns the references in request order.

        All in one transaction (a mass outage opens thousands of cases in one
        detector cycle), with the same rules, rows and idempotency as one call per
        request: a request whose key an earlier one in the batch opened or found
        gets that case. The new cases are inserted together (a few statements per
        table, not one per case). If another writer wins a race for one of the
        keys, the batch is rolled back and run again (it then finds the winner's
        case); should that keep failing, every request is retried in a
        transaction of its own.

        Raises:
            ValueError: A timestamp in a request is naive (nothing is written).
            DatabaseUnavailableError: The database cannot be reached.
        """
        for request in requests:
            _require_aware(outage_start=request.outage_start, detected_at=request.detected_at)
        if not requests:
            return []

        async def work(session: AsyncSession) -> list[str]:
            return await self._open_many(session, requests)

        try:
            return await write_retrying(self._sessionmaker, work)
        except IntegrityError:
            return [await self.open_incident(request) for request in requests]

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

        async def work(session: AsyncSession) -> str:
            return await self._open_upstream(session, request)

        return await write_retrying(self._sessionmaker, work)

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
            ref = await restorations.restore_one(
                session,
                dedup_key,
                restored_at,
                sla=self._sla,
                now=self._clock.now(),
                actor=DETECTOR_ACTOR,
            )
            await session.commit()
            return ref

    async def restore_incidents(self, requests: Sequence[IncidentRestore]) -> list[str | None]:
        """``restore_incident`` for every request; the references in request order.

        All in one transaction (a mass outage ends for thousands of NTUs in one
        detector cycle), with the same rules, rows and idempotency as one call per
        request: the NTUs' cases are solved together (``restorations.solve_many``:
        a few statements per table, not a few per case); an upstream incident (with
        its linked customer cases) is restored as one call would. A key twice in the
        batch gets the answer of its first request (the second changes nothing, as
        a second call would not). Should the transaction hit a conflict (an
        ``IntegrityError``) on every try, each request is retried in a transaction
        of its own.

        Raises:
            ValueError: A ``restored_at`` is naive (nothing is written).
            DatabaseUnavailableError: The database cannot be reached.
        """
        for request in requests:
            _require_aware(restored_at=request.restored_at)
        if not requests:
            return []

        async def work(session: AsyncSession) -> list[str | None]:
            return await self._restore_many(session, requests)

        try:
            return await write_retrying(self._sessionmaker, work)
        except IntegrityError:
            return [
                await self.restore_incident(dedup_key=r.dedup_key, restored_at=r.restored_at)
                for r in requests
            ]

    async def open_incident_refs(self) -> dict[str, str]:
        """Dedup key -> reference of every NTU incident still being worked (not solved).

        A detector adopts them at start-up: a case committed just before a crash,
        whose NTU state was not saved yet, is then still restored when the NTU
        comes back.
        """
        async with session_scope(self._sessionmaker) as session:
            return await repository.working_refs_by_dedup_key(session, prefix=NTU_KEY_PREFIX)

    async def report_ntu_status(self, updates: Sequence[NtuStatusUpdate]) -> None:
        """Store the public status of the NTUs in ``updates``, in one transaction.

        Raises:
            DatabaseUnavailableError: The database cannot be reached.
        """
        if not updates:
            return
        async with session_scope(self._sessionmaker, write=True) as session:
            await self.write_ntu_status(session, updates)
            await session.commit()

    def writes_to(self, sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
        """Whether this service's database is ``sessionmaker``'s: a detector on the
        same database may then write its statuses in its own transaction
        (``write_ntu_status``)."""
        return sessionmaker is self._sessionmaker

    async def write_ntu_status(
        self, session: AsyncSession, updates: Sequence[NtuStatusUpdate]
    ) -> None:
        """``report_ntu_status`` in the caller's transaction (on this service's
        database; the caller commits)."""
        if not updates:
            return
        await save_statuses(session, updates)
        await recorder.record_statuses(session, updates)

    # -- rules ------------------------------------------------------------------

    async def _restore_many(
        self, session: AsyncSession, requests: Sequence[IncidentRestore]
    ) -> list[str | None]:
        return await restorations.restore_many(
            session, requests, sla=self._sla, now=self._clock.now(), actor=DETECTOR_ACTOR
        )

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
            summary = (
                f"Upstream outage ({parent.ref}): {len(ntu_ids)} of your NTUs unreachable: "
                f"{', '.join(ntu_ids)}"
            )
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
                    summary=summary,
                ),
            )
            child = await repository.get_open_case_by_dedup_key(session, dedup_key=key)
            assert child is not None
            if child.parent_case_id != parent.id:
                child.parent_case_id = parent.id
            if child.summary != summary:
                child.summary = summary
            if child.status in WORKING_STATUSES:
                await recorder.ensure_open(
                    session,
                    case_id=child.id,
                    case_ref=child.ref,
                    customer_id=customer_id,
                    ntu_ids=ntu_ids,
                    kind=OutageKind.DOWN,
                    cause=OutageCause.UPSTREAM,
                    start=request.outage_start,
                )
        await session.flush()
        return parent.ref

    async def _open_many(
        self, session: AsyncSession, requests: Sequence[IncidentOpen]
    ) -> list[str]:
        """The rules of ``_open_incident`` for each request, the new cases in bulk.

        A request whose key has no open case (and no P2 to upgrade, no upstream
        incident to link) opens a brand-new case: those are inserted together
        (``store.insert_cases``, with their outage intervals). A request whose
        case is still being worked is a repeat: its reference, and its outage
        history made sure of, together with the others (``_record_repeats``). Any
        other request (a solved case for its key: a recurrence, or its window's
        late end; an upgrade; a link) runs ``_open_incident`` as one call would. A
        key twice in the batch gets the case its first request opened or found.
        """
        keys = [r.dedup_key for r in requests]
        keys += [r.supersedes for r in requests if r.supersedes is not None]
        taken = await repository.open_cases_by_dedup_key(session, dedup_keys=keys)
        refs: dict[str, str] = {}
        fresh: dict[str, IncidentOpen] = {}
        repeats: list[tuple[Case, IncidentOpen]] = []
        for request in requests:
            key = request.dedup_key
            if key in refs or key in fresh:
                continue
            case = taken.get(key)
            if case is not None and case.status in WORKING_STATUSES:
                # Still being worked: the same outage (a retry, a late message).
                repeats.append((case, request))
                refs[key] = case.ref
            elif (
                case is not None
                or (request.supersedes is not None and request.supersedes in taken)
                or request.parent_key is not None
            ):
                refs[key] = await self._open_incident(session, request)
            else:
                fresh[key] = request
        await _record_repeats(session, repeats)
        if fresh:
            for key, ref in (await self._insert_new(session, list(fresh.values()))).items():
                refs[key] = ref
        return [refs[request.dedup_key] for request in requests]

    async def _insert_new(
        self, session: AsyncSession, requests: Sequence[IncidentOpen]
    ) -> dict[str, str]:
        """Open a new case for each request (no case of its key is being worked)."""
        now = self._clock.now()
        last = await repository.last_cases_by_dedup_key(
            session, dedup_keys=[r.dedup_key for r in requests]
        )
        customers = await customer_repository.get_customers(
            session, customer_ids=[r.customer_id for r in requests if r.customer_id is not None]
        )
        new: list[tuple[Case, dict[str, Any]]] = []
        for request in requests:
            previous = last.get(request.dedup_key)
            recurrence_of = (
                previous if previous is not None and previous.status is CaseStatus.CLOSED else None
            )
            customer = customers.get(request.customer_id) if request.customer_id else None
            case, data = _new_case(
                request, recurrence_of=recurrence_of, parent=None, customer=customer
            )
            new.append((case, data))
        await store.insert_cases(session, new, sla=self._sla, now=now, actor=DETECTOR_ACTOR)
        await recorder.ensure_open_many(
            session,
            [
                _own_interval(case, request)
                for (case, _), request in zip(new, requests, strict=True)
                if _records_own(case, request)
            ],
        )
        return {case.dedup_key or "": case.ref for case, _ in new}

    async def _open_incident(self, session: AsyncSession, request: IncidentOpen) -> str:
        now = self._clock.now()
        case = await repository.get_open_case_by_dedup_key(session, dedup_key=request.dedup_key)
        if case is not None and await self._catch_up(session, case, request, now):
            case = None  # its window had ended: closed now, the new outage gets a new case
        if case is not None:
            await self._recur(session, case, request, now)
            await _record_open(session, case, request)
            return case.ref
        if request.supersedes is not None:
            lower = await repository.get_open_case_by_dedup_key(
                session, dedup_key=request.supersedes
            )
            if lower is not None and await self._upgrade(session, lower, request, now):
                await _record_open(session, lower, request)
                return lower.ref

        last = await repository.get_last_case_by_dedup_key(session, dedup_key=request.dedup_key)
        recurrence_of = last if last is not None and last.status is CaseStatus.CLOSED else None
        customer = None
        if request.customer_id is not None:
            customer = await customer_repository.get_customer(
                session, customer_id=request.customer_id
            )
        parent = None
        if request.parent_key is not None:
            parent = await repository.get_last_case_by_dedup_key(
                session, dedup_key=request.parent_key
            )
        case, data = _new_case(
            request, recurrence_of=recurrence_of, parent=parent, customer=customer
        )
        await store.insert_case(
            session, case, sla=self._sla, now=now, actor=DETECTOR_ACTOR, data=data
        )
        await _record_open(session, case, request)
        return case.ref

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
        await store.record_event(
            session,
            case=case,
            at=now,
            kind=CaseEventKind.PRIORITY_CHANGED,
            actor=DETECTOR_ACTOR,
            data={"dedup_key": {"from": old_key, "to": request.dedup_key}},
        )
        return True


def _new_case(
    request: IncidentOpen,
    *,
    recurrence_of: Case | None,
    parent: Case | None,
    customer: Customer | None,
) -> tuple[Case, dict[str, Any]]:
    """The new proactive incident for ``request``, and the data of its ``opened`` entry."""
    # Expired or unpaid contracts get no support, but the outage is still recorded
    # for the NOC, flagged. A customer missing from the inventory is not flagged:
    # that is an inventory problem, not a contract decision.
    no_support = customer is not None and customer.contract_status != ACTIVE_CONTRACT
    case = Case(
        type=CaseType.INCIDENT,
        priority=CasePriority(request.priority),
        source=CaseSource.PROACTIVE,
        dedup_key=request.dedup_key,
        ntu_id=request.ntu_id,
        customer_id=request.customer_id,
        service_id=request.service_id,
        site=request.site,
        summary=request.summary,
        outage_start=request.outage_start,
        detected_at=request.detected_at,
        recurrence_of=recurrence_of.id if recurrence_of is not None else None,
        parent_case_id=parent.id if parent is not None else None,
        no_support=no_support,
    )
    data: dict[str, Any] = {
        "dedup_key": request.dedup_key,
        "outage_start": _iso(request.outage_start),
        "detected_at": _iso(request.detected_at),
        "no_support": no_support,
    }
    if recurrence_of is not None:
        data["recurrence_of"] = recurrence_of.ref
    if parent is not None:
        data["parent"] = parent.ref
    return case, data


async def _record_repeats(
    session: AsyncSession, repeats: Sequence[tuple[Case, IncidentOpen]]
) -> None:
    """``_open_incident`` for requests whose case is still being worked, in bulk.

    For such a case the lifecycle's ``Recur`` changes nothing (the same outage), so
    what is left of one call is ``_record_open``: a P1 ends the case's open
    degraded intervals at its outage start, and the case's own interval is made sure
    of.
    """
    own = [(case, request) for case, request in repeats if _records_own(case, request)]
    downs = {case.id: request.outage_start for case, request in own if request.priority == "P1"}
    await recorder.close_cases(session, downs, kind=OutageKind.DEGRADED)
    await recorder.ensure_open_many(session, [_own_interval(c, r) for c, r in own])


def _records_own(case: Case, request: IncidentOpen) -> bool:
    """Whether ``case`` (being worked) keeps an outage history of its NTU's own."""
    return (
        case.status in WORKING_STATUSES
        and case.ntu_id is not None
        and request.dedup_key.startswith(NTU_KEY_PREFIX)
    )


def _own_interval(case: Case, request: IncidentOpen) -> recorder.IntervalOpen:
    assert case.ntu_id is not None
    return recorder.IntervalOpen(
        case_id=case.id,
        case_ref=case.ref,
        customer_id=case.customer_id,
        ntu_id=case.ntu_id,
        kind=OutageKind.DOWN if request.priority == "P1" else OutageKind.DEGRADED,
        cause=OutageCause.OWN,
        start=request.outage_start,
        service_id=case.service_id,
        site=case.site,
    )


async def _record_open(session: AsyncSession, case: Case, request: IncidentOpen) -> None:
    """The outage history of an NTU's own incident: the interval this outage opens.

    Only while the case is being worked (a late or duplicate open of a restored
    outage opens nothing). An upgrade from P2 ends the degraded interval where the
    outage starts.
    """
    if not _records_own(case, request) or case.ntu_id is None:
        return
    kind = OutageKind.DOWN if request.priority == "P1" else OutageKind.DEGRADED
    if kind is OutageKind.DOWN:
        await recorder.close_case(
            session, case_id=case.id, at=request.outage_start, kind=OutageKind.DEGRADED
        )
    await recorder.ensure_open(
        session,
        case_id=case.id,
        case_ref=case.ref,
        customer_id=case.customer_id,
        ntu_ids=[case.ntu_id],
        kind=kind,
        cause=OutageCause.OWN,
        start=request.outage_start,
        service_id=case.service_id,
        site=case.site,
    )


def _require_aware(**timestamps: datetime) -> None:
    for name, value in timestamps.items():
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
