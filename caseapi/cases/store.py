"""Between the pure lifecycle and the database: load a snapshot, store an outcome.

``insert_case`` is the one way a case comes to exist (the detector's incidents and
people's requests alike): reference, status ``new``, initial SLA deadlines, the
``opened`` entry. ``apply_event`` is the one way a case changes on behalf of
someone: the caller holds the case row (locked) inside its write transaction; this
runs ``lifecycle.step``, writes the snapshot back, syncs commitments, appends the
timeline entries and outbox rows, bumps ``version`` and recomputes ``next_due_at``
for the ticker.

``record_event`` writes a timeline entry with what it tells the customer
(``caseapi.cases.notices``); every entry goes through it.

``mark_rfo_published``, ``on_customer_reply`` and ``on_staff_reply`` are the hooks
other domains (RFO, comments) call inside their own transactions; they never build
lifecycle events themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.auth.principal import Principal
from caseapi.auth.tenancy import ensure_visible
from caseapi.cases import lifecycle, notices, repository
from caseapi.cases.config import DEFAULT_SLA
from caseapi.cases.enums import CaseEventKind, CaseStatus, EscalationLevel
from caseapi.cases.errors import CaseValidationError
from caseapi.cases.models import Case, CaseCommitment, CaseEvent
from caseapi.cases.sla import SlaSettings
from caseapi.cases.snapshot import (
    CaseSnapshot,
    Commitment,
    CustomerReply,
    Event,
    Outcome,
    Respond,
    RfoPublished,
    SlaPolicy,
)
from caseapi.core.bulk import bulk_insert
from caseapi.core.errors import CaseNotFoundError
from caseapi.customers import repository as customer_repository
from caseapi.customers.models import Customer
from caseapi.notifications.models import Notification
from caseapi.ntus import repository as ntu_repository
from caseapi.ntus.models import Ntu
from caseapi.oncall import service as staff_alerts
from caseapi.oncall import store as oncall_store
from caseapi.teams.assign import facts_from, team_for_new_case
from caseapi.teams.repository import routing_rules
from caseapi.teams.routing import route

#: Snapshot fields stored as ``cases`` columns of the same name.
_CASE_FIELDS: Final = tuple(f.name for f in fields(CaseSnapshot) if f.name != "commitments")

#: ``ntu_states.status`` values meaning "the NTU is not (yet) up".
NTU_DOWN_STATUSES: Final = frozenset({"down", "suspect", "recovering", "unreachable"})


def _commitment(row: CaseCommitment) -> Commitment:
    return Commitment(
        id=row.id,
        kind=row.kind,
        due_at=row.due_at,
        note=row.note,
        set_by=row.set_by,
        met_at=row.met_at,
        missed_at=row.missed_at,
    )


async def case_for(
    session: AsyncSession, principal: Principal, ref: str, *, lock: bool = False
) -> Case:
    """Case ``ref`` if ``principal`` may see it, locked for update when ``lock``.

    Another customer's case answers exactly as a missing one (tenancy).

    Raises:
        CaseNotFoundError: No such case, or another customer's.
    """
    if lock:
        case = await repository.lock_case_by_ref(session, ref=ref)
    else:
        case = await repository.get_case_by_ref(session, ref=ref)
    if case is None:
        raise CaseNotFoundError(ref)
    ensure_visible(principal, case.customer_id, CaseNotFoundError(ref))
    return case


async def load_snapshot(session: AsyncSession, case: Case) -> CaseSnapshot:
    """The lifecycle's view of ``case`` (with its commitments)."""
    return snapshot_of(case, await repository.list_commitments(session, case_id=case.id))


def snapshot_of(case: Case, commitments: Sequence[CaseCommitment]) -> CaseSnapshot:
    """The lifecycle's view of ``case`` whose commitment rows (oldest first) are known."""
    values = {name: getattr(case, name) for name in _CASE_FIELDS}
    return CaseSnapshot(**values, commitments=tuple(_commitment(row) for row in commitments))


async def policy_for(session: AsyncSession, case: Case, settings: SlaSettings) -> SlaPolicy:
    """The SLA policy of ``case``: settings refined by its contract and service order."""
    customer = None
    if case.customer_id is not None:
        customer = await customer_repository.get_customer(session, customer_id=case.customer_id)
    ntu = None
    if case.ntu_id is not None:
        row = await ntu_repository.get_ntu(session, ntu_id=case.ntu_id)
        ntu = row.ntu if row is not None else None
    return policy_of(settings, customer, ntu)


def policy_of(settings: SlaSettings, customer: Customer | None, ntu: Ntu | None) -> SlaPolicy:
    """The SLA policy of a case of ``customer`` on ``ntu`` (either may be unknown)."""
    return settings.policy(
        customer_attributes=customer.attributes if customer is not None else None,
        ntu_attributes=ntu.attributes if ntu is not None else None,
    )


async def ntu_is_down(session: AsyncSession, case: Case) -> bool:
    """Whether the case's NTU is down (or not yet confirmed up) right now."""
    if case.ntu_id is None:
        return False
    return await repository.ntu_status(session, ntu_id=case.ntu_id) in NTU_DOWN_STATUSES


async def insert_case(
    session: AsyncSession,
    case: Case,
    *,
    sla: SlaSettings,
    now: datetime,
    actor: str,
    data: Mapping[str, Any],
) -> Case:
    """Create ``case`` in the caller's transaction and write its ``opened`` entry.

    The caller fills in what the case is about (type, priority, source, customer,
    NTU, summary, links); this gives it its reference, status ``new`` at L1 and the
    initial SLA deadlines of its policy, inserts it (a lost race for its dedup key
    raises ``IntegrityError`` here) and records ``opened`` by ``actor`` with
    ``status``, ``priority`` and ``data``. With routing rules stored (an organisation
    file), the first matching rule's team takes it: ``team_id`` and an internal
    ``team_assigned`` entry.
    """
    ref = await repository.next_case_ref(session, year=now.year)
    _prepare_new(case, ref=ref, policy=await policy_for(session, case, sla), now=now, actor=actor)
    await repository.add_case(session, case=case)
    case.next_due_at = lifecycle.next_due_at(await load_snapshot(session, case))
    await session.flush()
    await record_event(
        session,
        case=case,
        at=now,
        kind=CaseEventKind.OPENED,
        actor=actor,
        data={"status": case.status.value, "priority": case.priority.value, **data},
    )
    await _assign_team(session, case, now=now)
    return case


def _prepare_new(case: Case, *, ref: str, policy: SlaPolicy, now: datetime, actor: str) -> None:
    """What every new case starts with: its reference, ``new`` at L1, its SLA deadlines."""
    case.ref = ref
    case.status = CaseStatus.NEW
    case.version = 1
    case.escalation_level = EscalationLevel.L1
    case.reopen_count = 0
    case.created_by = actor
    case.created_at = now
    case.updated_at = now
    deadlines = lifecycle.initial_deadlines(created_at=now, priority=case.priority, policy=policy)
    for name, value in deadlines.items():
        setattr(case, name, value)


async def insert_cases(
    session: AsyncSession,
    new: Sequence[tuple[Case, Mapping[str, Any]]],
    *,
    sla: SlaSettings,
    now: datetime,
    actor: str,
) -> list[CaseEvent]:
    """``insert_case`` for many cases at once: the same rows, in a few statements.

    Each ``(case, data)`` gets what ``insert_case`` gives one case: a reference (taken
    in order, in one counter update), status ``new`` at L1, the SLA deadlines of its
    own policy, its ``opened`` entry with ``data``, the customer's notification and
    the staff alerts of that entry, and its team from the routing rules (with its
    ``team_assigned`` entry). The inserts go in one statement per table (a lost race
    for a dedup key raises ``IntegrityError`` at the first flush, as for one case);
    only an organisation's on-call (staff alerts), when it has one, still runs case
    by case.

    Returns the ``opened`` entries, in the order of ``new``.
    """
    if not new:
        return []
    cases = [case for case, _ in new]
    customers = await customer_repository.get_customers(
        session, customer_ids=[c.customer_id for c in cases if c.customer_id is not None]
    )
    ntus = await ntu_repository.get_ntus(
        session, ntu_ids=[c.ntu_id for c in cases if c.ntu_id is not None]
    )
    alerts = await oncall_store.configured(session)
    rules = await routing_rules(session)
    refs = await repository.next_case_refs(session, year=now.year, count=len(cases))
    assigned: list[tuple[Case, str]] = []
    for case, ref in zip(cases, refs, strict=True):
        customer = customers.get(case.customer_id) if case.customer_id is not None else None
        ntu = ntus.get(case.ntu_id) if case.ntu_id is not None else None
        _prepare_new(case, ref=ref, policy=policy_of(sla, customer, ntu), now=now, actor=actor)
        # A new case has no commitments: its snapshot is its columns (load_snapshot's
        # query would find none).
        values = {name: getattr(case, name) for name in _CASE_FIELDS}
        case.next_due_at = lifecycle.next_due_at(CaseSnapshot(**values, commitments=()))
        if rules and not alerts:
            # Routed before the insert: without staff alerts nothing reads the team
            # between the ``opened`` entry and ``team_assigned`` (which follows it).
            team = route(rules, facts_from(case, ntu=ntu, customer=customer))
            if team is not None:
                case.team_id = team
                assigned.append((case, team))
    session.add_all(cases)
    await session.flush()
    events = [
        CaseEvent(
            case_id=case.id,
            at=now,
            kind=CaseEventKind.OPENED,
            actor=actor,
            data={"status": case.status.value, "priority": case.priority.value, **data},
        )
        for case, data in new
    ]
    if alerts:
        session.add_all(events)  # the staff alerts name their entry by its id
        await session.flush()
    else:
        await bulk_insert(session, CaseEvent, events)
    notes = [notices.notification_for(case=c, event=e) for c, e in zip(cases, events, strict=True)]
    await bulk_insert(session, Notification, [n for n in notes if n is not None])
    if alerts:
        # The organisation's on-call: case by case, in the order ``insert_case`` keeps.
        for case, event in zip(cases, events, strict=True):
            await staff_alerts.on_case_event(session, case=case, event=event)
            await _assign_team(session, case, now=now)
    elif assigned:
        routed = [
            CaseEvent(
                case_id=case.id,
                at=now,
                kind=CaseEventKind.TEAM_ASSIGNED,
                actor="system",
                data={"team": team, "by": "routing"},
            )
            for case, team in assigned
        ]
        await bulk_insert(session, CaseEvent, routed)
        # ``team_assigned`` tells no customer; asked all the same, as record_event does.
        notes = [
            notices.notification_for(case=c, event=e)
            for (c, _), e in zip(assigned, routed, strict=True)
        ]
        await bulk_insert(session, Notification, [n for n in notes if n is not None])
    return events


async def _assign_team(session: AsyncSession, case: Case, *, now: datetime) -> None:
    team = await team_for_new_case(session, case)
    if team is not None:
        case.team_id = team
        await session.flush()
        await record_event(
            session,
            case=case,
            at=now,
            kind=CaseEventKind.TEAM_ASSIGNED,
            actor="system",
            data={"team": team, "by": "routing"},
        )


async def record_event(
    session: AsyncSession,
    *,
    case: Case,
    at: datetime,
    kind: CaseEventKind,
    actor: str,
    data: Mapping[str, Any] | None = None,
) -> CaseEvent:
    """Append a timeline entry to ``case`` and queue what its customer is told of it.

    The notification row is written in the same transaction as the change (a
    transactional outbox): a change and its notice are stored together or not at all.
    """
    event = await repository.add_event(
        session, case=case, at=at, kind=kind, actor=actor, data=dict(data or {})
    )
    await notices.on_case_event(session, case=case, event=event)
    # Staff alerts (on-call, escalation) in the same transaction: exactly once per event.
    await staff_alerts.on_case_event(session, case=case, event=event)
    return event


async def apply_event(
    session: AsyncSession,
    case: Case,
    event: Event,
    *,
    now: datetime,
    policy: SlaPolicy,
) -> Outcome:
    """Run ``event`` through the lifecycle and store the outcome on ``case``.

    Raises:
        CaseRuleError: The lifecycle refused the event (nothing is written).
        ValueError: A bad argument (nothing is written).
    """
    before = await load_snapshot(session, case)
    outcome = lifecycle.step(before, event, now, policy)
    if not outcome.entries and outcome.snapshot == before:
        return outcome
    await store_outcome(session, case, before, outcome, now=now)
    return outcome


async def apply_request(
    session: AsyncSession,
    case: Case,
    event: Event,
    *,
    now: datetime,
    sla: SlaSettings,
    field: str = "request",
) -> Outcome:
    """``apply_event`` for a person's request, under the case's own SLA policy.

    A bad argument (``ValueError``: a commitment due in the past, an ETR not in the
    future) is the caller's mistake: it becomes a 422 naming ``field``.

    Raises:
        CaseRuleError: The lifecycle refused the event (nothing is written).
        CaseValidationError: A bad argument (nothing is written).
    """
    policy = await policy_for(session, case, sla)
    try:
        return await apply_event(session, case, event, now=now, policy=policy)
    except ValueError as exc:
        raise CaseValidationError(field, str(exc)) from exc


async def store_outcome(
    session: AsyncSession, case: Case, before: CaseSnapshot, outcome: Outcome, *, now: datetime
) -> None:
    """Write ``outcome`` (computed from ``before``) to ``case`` and its side tables."""
    await write_snapshot(session, case, before, outcome, now=now)
    for entry in outcome.entries:
        await record_event(
            session, case=case, at=now, kind=entry.kind, actor=entry.actor, data=dict(entry.data)
        )
    for note in outcome.notifications:
        await repository.add_notification(
            session, case=case, kind=note.kind, at=now, data=dict(note.data)
        )
    await session.flush()


async def write_snapshot(
    session: AsyncSession, case: Case, before: CaseSnapshot, outcome: Outcome, *, now: datetime
) -> None:
    """The part of ``store_outcome`` that changes ``case`` and its commitments (not
    flushed; its timeline entries and outbox rows are the caller's)."""
    after = outcome.snapshot
    for name in _CASE_FIELDS:
        value = getattr(after, name)
        if getattr(case, name) != value:
            setattr(case, name, value)
    old = {c.id: c for c in before.commitments if c.id is not None}
    for commitment in after.commitments:
        if commitment.id is None:
            session.add(
                CaseCommitment(
                    case_id=case.id,
                    kind=commitment.kind,
                    due_at=commitment.due_at,
                    note=commitment.note,
                    set_by=commitment.set_by,
                    created_at=now,
                    met_at=commitment.met_at,
                    missed_at=commitment.missed_at,
                )
            )
        elif old.get(commitment.id) != commitment:
            row = await session.get(CaseCommitment, commitment.id)
            assert row is not None
            row.met_at = commitment.met_at
            row.missed_at = commitment.missed_at
    case.next_due_at = lifecycle.next_due_at(after)
    case.version += 1
    case.updated_at = now


async def mark_rfo_published(
    session: AsyncSession, *, case_id: int, at: datetime, actor: str
) -> None:
    """Record that the case's RFO was published at ``at`` (in the caller's transaction).

    Sets ``rfo_published_at`` (the first publication counts; corrections change
    nothing here) and closes an ``rfo_pending`` case, or a solved one whose
    monitoring window has passed. Timeline entries are dated ``at``.

    Raises:
        CaseNotFoundError: No case has id ``case_id``.
    """
    case = await repository.lock_case_by_id(session, case_id=case_id)
    if case is None:
        raise CaseNotFoundError(str(case_id))
    # Closing needs no durations: the window end is already stored on the case.
    policy = DEFAULT_SLA.policy()
    await apply_event(session, case, RfoPublished(at=at, actor=actor), now=at, policy=policy)


async def on_customer_reply(
    session: AsyncSession,
    *,
    case_id: int,
    at: datetime,
    actor: str,
    sla: SlaSettings = DEFAULT_SLA,
) -> None:
    """Record a customer's reply (public comment) in the caller's transaction.

    A case waiting on the customer goes back to ``in_progress`` and its repair clock
    resumes (``sla``: the settings its policy comes from, for its business-hours
    calendar); in any other open status the reply is only noted on the timeline.
    Replies on finished cases are ignored (comments there are the comment module's
    business).

    Raises:
        CaseNotFoundError: No case has id ``case_id``.
    """
    case = await repository.lock_case_by_id(session, case_id=case_id)
    if case is None:
        raise CaseNotFoundError(str(case_id))
    if case.status.is_terminal:
        return
    # The case's own policy: resuming re-places the repair deadline on its calendar.
    policy = await policy_for(session, case, sla)
    await apply_event(session, case, CustomerReply(actor=actor), now=at, policy=policy)


async def on_staff_reply(session: AsyncSession, *, case_id: int, at: datetime, actor: str) -> None:
    """Record support's public reply to the customer in the caller's transaction.

    The first one is the case's first response (DOMAIN.md: within 30 minutes): it
    sets ``first_responded_at`` and stops the first-response clock. Every reply is an
    update to the customer: it meets the pending ``next_update`` commitments still
    due. Replies on finished cases change nothing here.

    Raises:
        CaseNotFoundError: No case has id ``case_id``.
    """
    case = await repository.lock_case_by_id(session, case_id=case_id)
    if case is None:
        raise CaseNotFoundError(str(case_id))
    if case.status.is_terminal:
        return
    # Responding needs no durations: it only stamps the time.
    policy = DEFAULT_SLA.policy()
    await apply_event(session, case, Respond(actor=actor), now=at, policy=policy)
