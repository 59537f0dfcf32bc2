"""Restorations from the detector: one (``restore_one``), or a batch (``restore_many``).

A restoration solves the open case of its dedup key (and an upstream incident's
linked customer cases) with the lifecycle's ``Restore``; a case already solved by a
person (or further along) only has its outage history ended where the probes say.

When thousands of NTUs come back in the same detector cycle, their cases are solved
together (``IncidentService.restore_incidents``). ``solve_many`` writes for each
case exactly what ``solve_one`` writes for one - the lifecycle's
``Restore`` under the case's own SLA policy (its monitoring window), the timeline
entries with their customer notifications and staff alerts, the lifecycle's outbox
rows, the outage intervals ended at the restoration - but reads and writes each
table in a few statements for the batch instead of a few per case. Only an
organisation's on-call (staff alerts), when it has one, still runs entry by entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.cases import lifecycle, notices, repository, store
from caseapi.cases.contract import NTU_KEY_PREFIX, IncidentRestore
from caseapi.cases.enums import WORKING_STATUSES
from caseapi.cases.models import Case, CaseEvent, CaseNotification
from caseapi.cases.sla import SlaSettings
from caseapi.cases.snapshot import Restore
from caseapi.core.bulk import bulk_insert
from caseapi.customers import repository as customer_repository
from caseapi.notifications.models import Notification
from caseapi.ntus import repository as ntu_repository
from caseapi.oncall import service as staff_alerts
from caseapi.oncall import store as oncall_store
from caseapi.reports import recorder


async def restore_one(
    session: AsyncSession,
    dedup_key: str,
    restored_at: datetime,
    *,
    sla: SlaSettings,
    now: datetime,
    actor: str,
) -> str | None:
    """Restore the open case of ``dedup_key`` (and its linked customer cases); its
    reference, or ``None`` when no case of the key is open."""
    case = await repository.get_open_case_by_dedup_key(session, dedup_key=dedup_key)
    if case is None:
        return None
    if case.status in WORKING_STATUSES:
        await solve_one(session, case, restored_at, sla=sla, now=now, actor=actor)
        linked = await repository.list_linked_cases(
            session, parent_id=case.id, dedup_prefix=f"{dedup_key}:customer:"
        )
        for child in linked:
            if child.status in WORKING_STATUSES:
                await solve_one(session, child, restored_at, sla=sla, now=now, actor=actor)
    else:
        # Solved by a person before the detector saw the restoration: the
        # outage history still ends where the probes say it did.
        await recorder.close_case(session, case_id=case.id, at=restored_at)
    return case.ref


async def restore_many(
    session: AsyncSession,
    requests: Sequence[IncidentRestore],
    *,
    sla: SlaSettings,
    now: datetime,
    actor: str,
) -> list[str | None]:
    """``restore_one`` for each request, the NTUs' cases in bulk; the answers in order.

    A key with no open case answers ``None``. An NTU's case being worked is solved
    with the others (``solve_many``); one solved by a person (or further along) only
    has its outage history ended, with the others' (``recorder.close_cases``). Any
    other key (an upstream incident, whose linked customer cases are solved with it)
    runs ``restore_one``. A key twice gets the answer of its first request: the
    second changes nothing, as a second call would not.
    """
    found = await repository.open_cases_by_dedup_key(
        session, dedup_keys=[r.dedup_key for r in requests]
    )
    refs: dict[str, str | None] = {}
    solving: list[tuple[Case, datetime]] = []
    ends: dict[int, datetime] = {}
    for request in requests:
        key = request.dedup_key
        if key in refs:
            continue
        case = found.get(key)
        refs[key] = case.ref if case is not None else None
        if case is None:
            continue
        if not key.startswith(NTU_KEY_PREFIX):
            await restore_one(session, key, request.restored_at, sla=sla, now=now, actor=actor)
        elif case.status in WORKING_STATUSES:
            solving.append((case, request.restored_at))
        else:
            ends[case.id] = request.restored_at
    await solve_many(session, solving, sla=sla, now=now, actor=actor)
    await recorder.close_cases(session, ends)
    return [refs[request.dedup_key] for request in requests]


async def solve_one(
    session: AsyncSession,
    case: Case,
    restored_at: datetime,
    *,
    sla: SlaSettings,
    now: datetime,
    actor: str,
) -> None:
    """Solve ``case`` (being worked, locked by the caller): the service came back at
    ``restored_at``."""
    reported = restored_at
    restored_at = clamped(case, reported)
    policy = await store.policy_for(session, case, sla)
    outcome = await store.apply_event(
        session, case, Restore(restored_at=restored_at, actor=actor), now=now, policy=policy
    )
    await recorder.close_case(session, case_id=case.id, at=restored_at)
    if reported != restored_at and outcome.entries:
        # Clock skew between probe hosts, or a late message: never let the impact
        # end before it started, but keep what was reported.
        event = (await repository.list_events(session, case_id=case.id))[-1]
        event.data = {**event.data, **clamp_note(reported)}
        await session.flush()


def clamped(case: Case, reported: datetime) -> datetime:
    """The restoration time stored for ``case``: never before its outage started
    (clock skew between probe hosts, or a late message)."""
    if case.outage_start is not None and reported < case.outage_start:
        return case.outage_start
    return reported


def clamp_note(reported: datetime) -> dict[str, Any]:
    """What the last entry of a clamped restoration keeps of the reported time."""
    return {"reported_restored_at": reported.isoformat(), "clamped_to_outage_start": True}


async def solve_many(
    session: AsyncSession,
    items: Sequence[tuple[Case, datetime]],
    *,
    sla: SlaSettings,
    now: datetime,
    actor: str,
) -> None:
    """Restore each ``(case, restored_at)`` as ``solve_one`` does one.

    The cases are distinct, locked by the caller and being worked (a case the
    lifecycle leaves alone is written nothing but its intervals' end, as one call
    would). Reads: customers, NTUs, commitments, one query each per 500 cases. Writes:
    the cases' new values in one flush, the entries and notifications in one insert
    each, the intervals' ends in ``recorder.close_cases``.
    """
    if not items:
        return
    cases = [case for case, _ in items]
    customers = await customer_repository.get_customers(
        session, customer_ids=[c.customer_id for c in cases if c.customer_id is not None]
    )
    ntus = await ntu_repository.get_ntus(
        session, ntu_ids=[c.ntu_id for c in cases if c.ntu_id is not None]
    )
    commitments = await repository.commitments_by_case(session, case_ids=[c.id for c in cases])
    events: list[tuple[Case, CaseEvent]] = []
    clamps: list[tuple[CaseEvent, datetime]] = []
    outbox: list[CaseNotification] = []
    ends: dict[int, datetime] = {}
    for case, reported in items:
        restored_at = clamped(case, reported)
        customer = customers.get(case.customer_id) if case.customer_id is not None else None
        ntu = ntus.get(case.ntu_id) if case.ntu_id is not None else None
        policy = store.policy_of(sla, customer, ntu)
        before = store.snapshot_of(case, commitments.get(case.id, ()))
        outcome = lifecycle.step(before, Restore(restored_at=restored_at, actor=actor), now, policy)
        ends[case.id] = restored_at
        if not outcome.entries and outcome.snapshot == before:
            continue  # as ``store.apply_event``: nothing to write
        await store.write_snapshot(session, case, before, outcome, now=now)
        entries = [
            CaseEvent(case_id=case.id, at=now, kind=e.kind, actor=e.actor, data=dict(e.data))
            for e in outcome.entries
        ]
        events += [(case, event) for event in entries]
        if entries and reported != restored_at:
            clamps.append((entries[-1], reported))
        outbox += [
            CaseNotification(
                case_id=case.id, kind=note.kind, created_at=now, sent_at=None, data=dict(note.data)
            )
            for note in outcome.notifications
        ]
    await session.flush()  # the cases: one UPDATE per set of changed columns
    # What the customer is told is read off the entry as recorded, before the clamp
    # note is added (``solve_one`` adds it after ``record_event``).
    notes = [notices.notification_for(case=case, event=event) for case, event in events]
    if await oncall_store.configured(session):
        session.add_all([event for _, event in events])  # the alerts name their entry's id
        await session.flush()
        for case, event in events:
            await staff_alerts.on_case_event(session, case=case, event=event)
        for event, reported in clamps:
            event.data = {**event.data, **clamp_note(reported)}
    else:
        for event, reported in clamps:
            event.data = {**event.data, **clamp_note(reported)}
        await bulk_insert(session, CaseEvent, [event for _, event in events])
    await bulk_insert(session, Notification, [n for n in notes if n is not None])
    session.add_all(outbox)
    await recorder.close_cases(session, ends)
