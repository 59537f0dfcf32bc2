"""The case lifecycle as a pure state machine: ``step(case, event, now, policy)``.

How it works: a ``CaseSnapshot`` is everything the rules need to know about one case
(status, SLA deadlines, commitments). ``step`` applies one ``Event`` at time ``now``
and returns an ``Outcome``: the new snapshot, the timeline entries to write and the
notifications to record. Nothing here touches a database or a clock; the case
service loads a snapshot, calls ``step`` and stores the outcome in one transaction,
and the ticker does the same with ``Tick`` for every case whose ``next_due_at``
has come.

Statuses::

    new -> in_progress <-> waiting_customer | waiting_supplier -> solved
    solved --(window ends)--> rfo_pending (RFO owed) | closed
    rfo_pending --(RFO published)--> closed
    solved | rfo_pending --(recurrence / customer reopen)--> in_progress
    any open status -> cancelled | merged;  closed, cancelled, merged are terminal

Cancelling: support may cancel any case in a working status (``Cancel`` or a
``Transition`` to cancelled). Its customer may cancel a reactive request of its own
(``Cancel`` with ``by_customer``) but not a proactive incident (the detector's own,
or one linked to an upstream incident): support closes those once the service is
restored, with the RFO the customer is owed.

SLA clocks are absolute deadlines. A missed one (first response, time to repair, a
commitment) raises the escalation level one step, L1 -> L2 -> L3 (L3 is the ceiling).
Waiting on the customer pauses the repair clock: on resume its deadline moves by the
pause.

First response and the unassigned flag are two clocks. The first response is
support's first word to the customer: only ``Respond`` (a public staff comment, see
``caseapi.cases.store.on_staff_reply``) and ``SetEtr`` stop its clock; both are
updates to the customer and meet the pending ``next_update`` commitments. Taking,
assigning, a status change or a commitment say nothing to the customer and leave it
running. Taking or assigning stops the unassigned flag; a case back in a queue (its
assignee cleared, or handed off to a level with nobody named) re-arms it
``unassigned_after`` from then.

The estimated time of restoration (``SetEtr``) belongs to an incident still being
worked: a general request, or a case already restored (solved or further), refuses
one (``EtrNotAllowedError``). Setting, changing or clearing it is an update to the
customer: it is the first response if none was given, and it meets every pending
``next_update`` commitment still due (one already overdue is the ticker's to mark
missed, as a late update does not keep the promise).

Escalation rule of the ticker: one ``Tick`` raises the level at most one step, however
many deadlines it finds missed. Each missed deadline is still recorded on its own
(``sla_breached`` / ``commitment_missed``), and the one ``escalated`` entry lists them
all under ``missed``. Deadlines missed together are one failure to act, and the next
level (L2) must get the case before the one above it (L3): jumping L1 -> L3 in one
tick would skip L2 without anyone at L2 having seen the case. A deadline missed in a
later tick raises the level again. Explicit escalations (``Escalate``, ``HandOff``)
are not limited by this rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

from caseapi.cases.enums import (
    TERMINAL_STATUSES,
    WORKING_STATUSES,
    CaseEventKind,
    CasePriority,
    CaseStatus,
    CaseType,
    CommitmentKind,
    EscalationLevel,
    NotificationKind,
    RootCauseCategory,
)
from caseapi.cases.errors import (
    CancelNotAllowedError,
    EscalationNotAllowedError,
    EtrNotAllowedError,
    InvalidTransitionError,
    ReopenNotAllowedError,
)
from caseapi.cases.snapshot import (
    Assign,
    Cancel,
    CaseSnapshot,
    ChangePriority,
    CustomerReply,
    Entry,
    Escalate,
    Event,
    HandOff,
    MeetCommitment,
    Notify,
    Outcome,
    Recur,
    Reopen,
    Respond,
    Restore,
    RfoPublished,
    SetCommitment,
    SetEtr,
    SlaPolicy,
    Tick,
    Transition,
)

S = CaseStatus
_OPEN_ENDS: Final = frozenset({S.CANCELLED, S.MERGED})

#: Every status change the lifecycle can make, whoever asks. Guards (below) refine it.
TRANSITIONS: Final[Mapping[CaseStatus, frozenset[CaseStatus]]] = {
    S.NEW: frozenset({S.IN_PROGRESS, S.WAITING_CUSTOMER, S.WAITING_SUPPLIER, S.SOLVED})
    | _OPEN_ENDS,
    S.IN_PROGRESS: frozenset({S.WAITING_CUSTOMER, S.WAITING_SUPPLIER, S.SOLVED}) | _OPEN_ENDS,
    # -> closed only by the auto-close timer (no reply from the customer).
    S.WAITING_CUSTOMER: frozenset(
        {S.IN_PROGRESS, S.WAITING_SUPPLIER, S.SOLVED, S.RFO_PENDING, S.CLOSED}
    )
    | _OPEN_ENDS,
    S.WAITING_SUPPLIER: frozenset({S.IN_PROGRESS, S.WAITING_CUSTOMER, S.SOLVED}) | _OPEN_ENDS,
    S.SOLVED: frozenset({S.IN_PROGRESS, S.RFO_PENDING, S.CLOSED}),
    S.RFO_PENDING: frozenset({S.IN_PROGRESS, S.CLOSED}),
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
    S.MERGED: frozenset(),
}

#: What an engineer may ask for with ``Transition``; the rest happen through their
#: own events (window end, RFO publication, auto-close, recurrence, reopen).
MANUAL_TRANSITIONS: Final[Mapping[CaseStatus, frozenset[CaseStatus]]] = {
    S.NEW: TRANSITIONS[S.NEW],
    S.IN_PROGRESS: TRANSITIONS[S.IN_PROGRESS],
    S.WAITING_CUSTOMER: TRANSITIONS[S.WAITING_CUSTOMER] - {S.CLOSED, S.RFO_PENDING},
    S.WAITING_SUPPLIER: TRANSITIONS[S.WAITING_SUPPLIER],
    # Closing by hand is allowed once the close guard holds (the ticker may lag).
    S.SOLVED: frozenset({S.IN_PROGRESS, S.CLOSED}),
    S.RFO_PENDING: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
    S.MERGED: frozenset(),
}


# -- pure helpers ----------------------------------------------------------------------


def initial_deadlines(
    *, created_at: datetime, priority: CasePriority, policy: SlaPolicy
) -> dict[str, datetime | None]:
    """SLA deadlines of a case created at ``created_at``."""
    ttr = policy.ttr.get(priority)
    return {
        "first_response_due_at": created_at + policy.first_response,
        "unassigned_due_at": created_at + policy.unassigned_after,
        "ttr_due_at": None if ttr is None else created_at + ttr,
    }


def close_blockers(case: CaseSnapshot, now: datetime) -> list[str]:
    """Why ``case`` may not close at ``now``; empty when it may."""
    blockers = []
    if case.status not in (S.SOLVED, S.RFO_PENDING):
        blockers.append(f"the case is {case.status.value}, not solved")
    if case.monitoring_until is not None and now < case.monitoring_until:
        blockers.append(f"the monitoring window runs until {case.monitoring_until.isoformat()}")
    if case.rfo_required and case.rfo_published_at is None:
        blockers.append("the RFO is not published")
    return blockers


def next_due_at(case: CaseSnapshot) -> datetime | None:
    """The earliest deadline the ticker must act on, or ``None``."""
    if case.status in TERMINAL_STATUSES:
        return None
    due: list[datetime | None] = [c.due_at for c in case.commitments if c.pending]
    if case.status in WORKING_STATUSES:
        if case.first_responded_at is None and case.first_response_breached_at is None:
            due.append(case.first_response_due_at)
        if case.assignee is None and case.unassigned_flagged_at is None:
            due.append(case.unassigned_due_at)
        if case.ttr_breached_at is None and case.paused_at is None:
            due.append(case.ttr_due_at)
    if case.status is S.SOLVED:
        due.append(case.monitoring_until)
    if case.status is S.WAITING_CUSTOMER:
        if case.reminder_sent_at is None:
            due.append(case.reminder_due_at)
        due.append(case.auto_close_due_at)
    return min((d for d in due if d is not None), default=None)


class _Step:
    """Accumulates one step's changes; keeps ``step`` readable."""

    def __init__(self, case: CaseSnapshot, now: datetime, policy: SlaPolicy) -> None:
        self.case = case
        self.now = now
        self.policy = policy
        self.entries: list[Entry] = []
        self.notifications: list[Notify] = []

    def set(self, **changes: Any) -> None:
        self.case = replace(self.case, **changes)

    def log(self, kind: CaseEventKind, actor: str, /, **data: Any) -> None:
        self.entries.append(Entry(kind=kind, actor=actor, data=data))

    def outcome(self) -> Outcome:
        return Outcome(self.case, tuple(self.entries), tuple(self.notifications))

    def escalate(self, actor: str, reason: str, **extra: Any) -> None:
        old = self.case.escalation_level
        new = old.raised()
        if new is old:
            return
        self.set(escalation_level=new)
        self.log(
            CaseEventKind.ESCALATED,
            actor,
            **{"from": old.value, "to": new.value},
            reason=reason,
            **extra,
        )

    def move(
        self, to: CaseStatus, actor: str, reason: str, kind: CaseEventKind, **extra: Any
    ) -> None:
        """Change status with the side effects of leaving and entering states."""
        case, now = self.case, self.now
        old = case.status
        if to not in TRANSITIONS[old]:
            raise InvalidTransitionError(old.value, to.value, "not allowed by the lifecycle")
        if old is S.WAITING_CUSTOMER:
            self._resume()
        if old in (S.SOLVED, S.RFO_PENDING) and to is S.IN_PROGRESS:
            ttr = self.policy.ttr.get(self.case.priority)
            # A new outage gets its own repair time.
            self.set(
                reopen_count=self.case.reopen_count + 1,
                solved_at=None,
                restored_at=None,
                monitoring_until=None,
                ttr_due_at=None if ttr is None else now + ttr,
                ttr_breached_at=None,
            )
        if to is S.WAITING_CUSTOMER:
            self.set(
                waiting_since=now,
                paused_at=now,
                reminder_due_at=now + self.policy.reminder_after,
                auto_close_due_at=now + self.policy.close_after,
            )
        if to is S.SOLVED:
            window = self.policy.monitoring_window[self.case.priority]
            self.set(
                solved_at=now,
                restored_at=self.case.restored_at or now,
                monitoring_until=now + window,
            )
        if to in TERMINAL_STATUSES:
            self.set(closed_at=now)
        self.set(status=to)
        data: dict[str, Any] = {"from": old.value, "to": to.value}
        if reason:
            data["reason"] = reason
        if to is S.SOLVED:
            data["restored_at"] = _iso(self.case.restored_at)
            data["monitoring_until"] = _iso(self.case.monitoring_until)
        self.log(kind, actor, **data, **extra)

    def _resume(self) -> None:
        case = self.case
        changes: dict[str, Any] = {
            "paused_at": None,
            "waiting_since": None,
            "reminder_due_at": None,
            "reminder_sent_at": None,
            "auto_close_due_at": None,
            "auto_close_held_at": None,
        }
        if case.paused_at is not None and case.ttr_due_at is not None:
            # max(): a clock never runs backwards here, but a pause is never negative.
            changes["ttr_due_at"] = case.ttr_due_at + max(self.now - case.paused_at, timedelta(0))
        self.set(**changes)

    def requeue(self) -> None:
        """The case is back in a queue: the unassigned flag re-arms from now."""
        self.set(
            unassigned_due_at=self.now + self.policy.unassigned_after,
            unassigned_flagged_at=None,
        )

    def respond(self, actor: str) -> None:
        if self.case.first_responded_at is None:
            self.set(first_responded_at=self.now)
            self.log(CaseEventKind.FIRST_RESPONSE, actor)

    def update_customer(self, actor: str) -> None:
        """Support told the customer something: first response, promised updates met."""
        self.respond(actor)
        kept = []
        for c in self.case.commitments:
            if c.pending and c.kind is CommitmentKind.NEXT_UPDATE and c.due_at >= self.now:
                c = replace(c, met_at=self.now)
                self.log(
                    CaseEventKind.COMMITMENT_MET,
                    actor,
                    kind=c.kind.value,
                    due_at=_iso(c.due_at),
                    late=False,
                )
            kept.append(c)
        self.set(commitments=tuple(kept))


def step(case: CaseSnapshot, event: Event, now: datetime, policy: SlaPolicy) -> Outcome:
    """Apply ``event`` to ``case`` at ``now``.

    Raises:
        InvalidTransitionError: The event is not allowed in the case's status.
        CancelNotAllowedError: A customer cancelling a proactive incident.
        EscalationNotAllowedError: A customer escalation with nothing missed.
        ReopenNotAllowedError: A reopen outside the monitoring window.
        EtrNotAllowedError: An ETR on a general request or a case no longer worked.
        ValueError: A commitment or ETR in the past, or an unknown commitment id.
    """
    handler = _HANDLERS[type(event)]
    run = _Step(case, now, policy)
    if case.status in TERMINAL_STATUSES and not isinstance(event, Tick | RfoPublished | SetEtr):
        raise InvalidTransitionError(case.status.value, _target(event), "the case is finished")
    handler(run, event)
    return run.outcome()


def _target(event: Event) -> str:
    if isinstance(event, Cancel):
        return S.CANCELLED.value
    return event.to.value if isinstance(event, Transition) else type(event).__name__.lower()


def _transition(run: _Step, event: Event) -> None:
    assert isinstance(event, Transition)
    case, to = run.case, event.to
    if to not in MANUAL_TRANSITIONS[case.status]:
        raise InvalidTransitionError(case.status.value, to.value, "not allowed by the lifecycle")
    if to is S.CLOSED:
        blockers = close_blockers(case, run.now)
        if blockers:
            raise InvalidTransitionError(case.status.value, to.value, "; ".join(blockers))
        run.move(to, event.actor, event.reason, CaseEventKind.CLOSED)
        return
    if to is S.SOLVED:
        run.set(
            resolution_method=event.resolution_method,
            root_cause_category=event.root_cause_category,
            resolution=event.resolution,
        )
    kind = CaseEventKind.REOPENED if to is S.IN_PROGRESS and case.status is S.SOLVED else None
    extra: dict[str, Any] = {}
    if to is S.MERGED and event.merged_into:
        extra["merged_into"] = event.merged_into
    if to is S.SOLVED:
        extra["resolution_method"] = event.resolution_method
        extra["root_cause_category"] = _value(event.root_cause_category)
    run.move(to, event.actor, event.reason, kind or CaseEventKind.STATUS_CHANGED, **extra)


def _restore(run: _Step, event: Event) -> None:
    assert isinstance(event, Restore)
    if run.case.status not in WORKING_STATUSES:
        return  # already solved or further: a repeated message changes nothing
    restored_at = event.restored_at
    run.set(restored_at=restored_at)
    run.move(S.SOLVED, event.actor, "", CaseEventKind.RESTORED)


def _recur(run: _Step, event: Event) -> None:
    assert isinstance(event, Recur)
    case = run.case
    if case.status is S.SOLVED:
        inside = case.restored_at is not None and case.monitoring_until is not None
        if not (inside and case.restored_at <= event.outage_start < case.monitoring_until):  # type: ignore[operator]
            return
    elif case.status is not S.RFO_PENDING:
        return  # still being worked: the same outage
    run.move(
        S.IN_PROGRESS,
        event.actor,
        "recurrence",
        CaseEventKind.RECURRED,
        **event.data,
        reopen_count=case.reopen_count + 1,
    )


def _reopen(run: _Step, event: Event) -> None:
    assert isinstance(event, Reopen)
    case = run.case
    if case.status is not S.SOLVED or case.monitoring_until is None:
        raise ReopenNotAllowedError(
            f"only a solved case can be reopened; this one is {case.status}"
        )
    if run.now >= case.monitoring_until:
        raise ReopenNotAllowedError(
            f"the monitoring window ended at {case.monitoring_until.isoformat()}"
        )
    run.move(S.IN_PROGRESS, event.actor, event.reason or "reopened", CaseEventKind.REOPENED)


def _customer_reply(run: _Step, event: Event) -> None:
    assert isinstance(event, CustomerReply)
    run.log(CaseEventKind.CUSTOMER_REPLIED, event.actor)
    if run.case.status is S.WAITING_CUSTOMER:
        run.move(S.IN_PROGRESS, event.actor, "customer replied", CaseEventKind.STATUS_CHANGED)


def _cancel(run: _Step, event: Event) -> None:
    assert isinstance(event, Cancel)
    if event.by_customer and run.case.proactive:
        raise CancelNotAllowedError(
            "proactive incidents are closed by support after the service is restored; "
            "write a comment on the case if you no longer need it"
        )
    run.move(S.CANCELLED, event.actor, event.reason, CaseEventKind.STATUS_CHANGED)


def _respond(run: _Step, event: Event) -> None:
    assert isinstance(event, Respond)
    run.update_customer(event.actor)


def _assign(run: _Step, event: Event) -> None:
    assert isinstance(event, Assign)
    previous = run.case.assignee
    if event.assignee is None:
        if previous is None:
            return
        run.set(assignee=None)
        run.log(CaseEventKind.ASSIGNED, event.actor, assignee=None, previous=previous)
        run.requeue()
        return
    run.set(assignee=event.assignee)
    run.log(CaseEventKind.ASSIGNED, event.actor, assignee=event.assignee, previous=previous)
    if run.case.status is S.NEW:
        run.move(S.IN_PROGRESS, event.actor, "assigned", CaseEventKind.STATUS_CHANGED)


def _hand_off(run: _Step, event: Event) -> None:
    assert isinstance(event, HandOff)
    old, old_assignee = run.case.escalation_level, run.case.assignee
    level = event.to_level if event.to_level.rank > old.rank else old
    # Without an assignee the case goes to the level's queue: nobody owns it now.
    run.set(escalation_level=level, assignee=event.assignee)
    run.log(
        CaseEventKind.HANDED_OFF,
        event.actor,
        **{"from": old.value, "to": level.value},
        assignee=event.assignee,
        summary=dict(event.summary),
    )
    requeued = old_assignee is not None or level is not old
    if event.assignee is None and requeued and run.case.status in WORKING_STATUSES:
        run.requeue()


def _escalate(run: _Step, event: Event) -> None:
    assert isinstance(event, Escalate)
    case = run.case
    if event.by_customer:
        missed = case.missed_deadlines
        if not missed:
            raise EscalationNotAllowedError(
                "no commitment has been missed: escalation opens once first response, "
                "time to repair or a promised update is overdue",
                missed=[],
            )
        if case.escalation_level is EscalationLevel.L3:
            raise EscalationNotAllowedError("the case is already at the highest level (L3)")
    elif case.escalation_level is EscalationLevel.L3:
        raise EscalationNotAllowedError("the case is already at the highest level (L3)")
    run.escalate(event.actor, event.reason or ("customer request" if event.by_customer else ""))


def _set_commitment(run: _Step, event: Event) -> None:
    assert isinstance(event, SetCommitment)
    commitment = event.commitment
    if commitment.due_at <= run.now:
        raise ValueError("a commitment must be due in the future")
    run.set(commitments=(*run.case.commitments, commitment))
    run.log(
        CaseEventKind.COMMITMENT_SET,
        event.actor,
        kind=commitment.kind.value,
        due_at=_iso(commitment.due_at),
        note=commitment.note,
    )


def _meet_commitment(run: _Step, event: Event) -> None:
    assert isinstance(event, MeetCommitment)
    found = [c for c in run.case.commitments if c.id == event.commitment_id]
    if not found:
        raise ValueError(f"no commitment {event.commitment_id} on this case")
    target = found[0]
    if target.met_at is not None:
        return
    met = replace(target, met_at=run.now)
    run.set(commitments=tuple(met if c is target else c for c in run.case.commitments))
    run.log(
        CaseEventKind.COMMITMENT_MET,
        event.actor,
        kind=target.kind.value,
        due_at=_iso(target.due_at),
        late=target.missed_at is not None,
    )


def _change_priority(run: _Step, event: Event) -> None:
    assert isinstance(event, ChangePriority)
    case = run.case
    if event.priority is case.priority:
        return
    ttr = run.policy.ttr.get(event.priority)
    changes: dict[str, Any] = {"priority": event.priority}
    if case.ttr_breached_at is None:
        # Keep any pause already credited: shift by the same offset from creation.
        credited = (
            case.ttr_due_at - case.created_at - run.policy.ttr[case.priority]  # type: ignore[operator]
            if case.ttr_due_at is not None and run.policy.ttr.get(case.priority) is not None
            else timedelta(0)
        )
        changes["ttr_due_at"] = None if ttr is None else case.created_at + ttr + credited
    if case.solved_at is not None and case.status is S.SOLVED:
        changes["monitoring_until"] = case.solved_at + run.policy.monitoring_window[event.priority]
    run.set(**changes)
    run.log(
        CaseEventKind.PRIORITY_CHANGED,
        event.actor,
        **{"from": case.priority.value, "to": event.priority.value},
        reason=event.reason,
        ttr_due_at=_iso(run.case.ttr_due_at),
    )


def _rfo_published(run: _Step, event: Event) -> None:
    assert isinstance(event, RfoPublished)
    case = run.case
    if case.rfo_published_at is None:
        run.set(rfo_published_at=event.at)
        run.log(CaseEventKind.RFO_PUBLISHED, event.actor, at=_iso(event.at))
    if case.status in (S.SOLVED, S.RFO_PENDING) and not close_blockers(run.case, run.now):
        run.move(S.CLOSED, event.actor, "RFO published", CaseEventKind.CLOSED)


def etr_refusal(case: CaseSnapshot) -> str | None:
    """Why ``case`` takes no estimated time of restoration; ``None`` when it does."""
    if case.type is not CaseType.INCIDENT:
        return "a general request has no service restoration to estimate"
    if case.status not in WORKING_STATUSES:
        return f"the case is {case.status.value}: a restored service has no ETR"
    return None


def _set_etr(run: _Step, event: Event) -> None:
    assert isinstance(event, SetEtr)
    refusal = etr_refusal(run.case)
    if refusal is not None:
        raise EtrNotAllowedError(
            refusal, case_status=run.case.status.value, case_type=run.case.type.value
        )
    if event.etr is not None and event.etr <= run.now:
        raise ValueError(
            f"must be in the future: {event.etr.isoformat()} is not after "
            f"the current time {run.now.isoformat()}"
        )
    previous = run.case.etr
    run.set(etr=event.etr)
    data: dict[str, Any] = {"etr": _iso(event.etr), "previous": _iso(previous), "note": event.note}
    if event.from_parent is not None:
        data["from_parent"] = event.from_parent
    run.log(CaseEventKind.ETR_SET, event.actor, **data)
    run.update_customer(event.actor)


def _tick(run: _Step, event: Event) -> None:
    assert isinstance(event, Tick)
    now, actor = run.now, event.actor
    if run.case.status in TERMINAL_STATUSES:
        return
    missed: list[str] = []  # every deadline this tick finds missed; one escalation step
    commitments = []
    for c in run.case.commitments:
        if c.pending and c.due_at <= now:
            c = replace(c, missed_at=now)
            run.log(
                CaseEventKind.COMMITMENT_MISSED, actor, kind=c.kind.value, due_at=_iso(c.due_at)
            )
            missed.append(f"commitment missed: {c.kind.value}")
        commitments.append(c)
    run.set(commitments=tuple(commitments))
    case = run.case
    if case.status in WORKING_STATUSES:
        missed.extend(_tick_working(run, actor))
    if missed:
        # The module docstring's rule: one step per tick, whatever was missed.
        run.escalate(actor, "; ".join(missed), missed=missed)
    case = run.case
    if case.status is S.SOLVED and case.monitoring_until and now >= case.monitoring_until:
        if case.rfo_required and case.rfo_published_at is None:
            run.move(S.RFO_PENDING, actor, "monitoring window ended", CaseEventKind.STATUS_CHANGED)
        else:
            run.move(S.CLOSED, actor, "monitoring window ended", CaseEventKind.CLOSED)
    if run.case.status is S.WAITING_CUSTOMER:
        _tick_waiting(run, event)


def _tick_working(run: _Step, actor: str) -> list[str]:
    """Record the working-status deadlines due at ``now``; return the missed ones."""
    case, now = run.case, run.now
    missed: list[str] = []
    due = case.first_response_due_at
    if (
        due
        and due <= now
        and case.first_responded_at is None
        and not case.first_response_breached_at
    ):
        run.set(first_response_breached_at=now)
        run.log(CaseEventKind.SLA_BREACHED, actor, clock="first_response", due_at=_iso(due))
        missed.append("first response overdue")
    due = case.unassigned_due_at
    if due and due <= now and case.assignee is None and case.unassigned_flagged_at is None:
        run.set(unassigned_flagged_at=now)
        run.log(CaseEventKind.UNASSIGNED_FLAGGED, actor, due_at=_iso(due))
    due = case.ttr_due_at
    if due and due <= now and case.paused_at is None and case.ttr_breached_at is None:
        run.set(ttr_breached_at=now)
        run.log(CaseEventKind.SLA_BREACHED, actor, clock="time_to_repair", due_at=_iso(due))
        missed.append("time to repair exceeded")
    return missed


def _tick_waiting(run: _Step, event: Tick) -> None:
    case, now, actor = run.case, run.now, event.actor
    if case.reminder_due_at and case.reminder_sent_at is None and case.reminder_due_at <= now:
        run.set(reminder_sent_at=now)
        run.log(CaseEventKind.REMINDER_SENT, actor, waiting_since=_iso(case.waiting_since))
        run.notifications.append(
            Notify(
                NotificationKind.WAITING_CUSTOMER_REMINDER,
                {
                    "waiting_since": _iso(case.waiting_since),
                    "closes_at": _iso(case.auto_close_due_at),
                },
            )
        )
    case = run.case
    if case.auto_close_due_at is None or case.auto_close_due_at > now:
        return
    if case.type is CaseType.INCIDENT and event.ntu_down:
        # DOMAIN.md: never auto-close an incident while its NTU is still down.
        if case.auto_close_held_at is None:
            run.log(CaseEventKind.AUTO_CLOSE_HELD, actor, reason="the NTU is still down")
        run.set(auto_close_held_at=now, auto_close_due_at=now + run.policy.auto_close_recheck)
        return
    target = S.RFO_PENDING if case.rfo_required and case.rfo_published_at is None else S.CLOSED
    kind = CaseEventKind.CLOSED if target is S.CLOSED else CaseEventKind.STATUS_CHANGED
    run.move(target, actor, "no reply from the customer", kind)
    run.notifications.append(Notify(NotificationKind.CASE_AUTO_CLOSED, {"status": target.value}))


_HANDLERS: Final[Mapping[type, Callable[[_Step, Any], None]]] = {
    Transition: _transition,
    Restore: _restore,
    Recur: _recur,
    Reopen: _reopen,
    CustomerReply: _customer_reply,
    Cancel: _cancel,
    Respond: _respond,
    Assign: _assign,
    HandOff: _hand_off,
    Escalate: _escalate,
    SetCommitment: _set_commitment,
    MeetCommitment: _meet_commitment,
    ChangePriority: _change_priority,
    RfoPublished: _rfo_published,
    SetEtr: _set_etr,
    Tick: _tick,
}


def _value(value: RootCauseCategory | None) -> str | None:
    return None if value is None else value.value


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
