"""The case lifecycle as a pure state machine: ``step(case, event, now, policy)``.

How it works: a ``CaseSnapshot`` is everything the rules need to know about one case
(status, SLA deadlines, commitments). ``step`` applies one ``Event`` at time ``now``
and returns an ``Outcome``: the new snapshot, the timeline entries to write and the
notifications to record. Nothing here touches a database or a clock; the case
service loads a snapshot, calls ``step`` and stores the outcome in one transaction,
and the ticker does the same with ``Tick`` for every case whose ``next_due_at``
has come.

In three modules: this one has ``step`` and the handlers of people's and the
detector's events; ``caseapi.cases.machine`` the transition tables, the pure helpers
and the ``Run`` accumulator they share; ``caseapi.cases.deadlines`` what ``Tick``
does (SLA clocks, commitments, window end, reminders, auto-close).

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

from caseapi.cases.deadlines import tick
from caseapi.cases.enums import (
    TERMINAL_STATUSES,
    WORKING_STATUSES,
    CaseEventKind,
    CasePriority,
    CaseSource,
    CaseType,
    EscalationLevel,
)
from caseapi.cases.errors import (
    CancelNotAllowedError,
    EscalationNotAllowedError,
    EtrNotAllowedError,
    InvalidTransitionError,
    ReopenNotAllowedError,
)
from caseapi.cases.machine import (
    AT_HIGHEST_LEVEL,
    MANUAL_TRANSITIONS,
    TRANSITIONS,
    Run,
    S,
    close_blockers,
    customer_escalation_refusal,
    etr_refusal,
    initial_deadlines,
    iso,
    next_customer_deadline,
    next_due_at,
    value_of,
)
from caseapi.cases.snapshot import (
    Assign,
    Cancel,
    CaseSnapshot,
    ChangePriority,
    CustomerReply,
    Escalate,
    Event,
    HandOff,
    MeetCommitment,
    Outcome,
    Reclassify,
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

__all__ = [
    "MANUAL_TRANSITIONS",
    "TRANSITIONS",
    "close_blockers",
    "customer_escalation_refusal",
    "etr_refusal",
    "initial_deadlines",
    "next_customer_deadline",
    "next_due_at",
    "step",
]


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
    run = Run(case, now, policy)
    if case.status in TERMINAL_STATUSES and not isinstance(event, Tick | RfoPublished | SetEtr):
        raise InvalidTransitionError(case.status.value, _target(event), "the case is finished")
    handler(run, event)
    return run.outcome()


def _target(event: Event) -> str:
    if isinstance(event, Cancel):
        return S.CANCELLED.value
    return event.to.value if isinstance(event, Transition) else type(event).__name__.lower()


def _transition(run: Run, event: Event) -> None:
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
        extra["root_cause_category"] = value_of(event.root_cause_category)
    run.move(to, event.actor, event.reason, kind or CaseEventKind.STATUS_CHANGED, **extra)


def _restore(run: Run, event: Event) -> None:
    assert isinstance(event, Restore)
    if run.case.status not in WORKING_STATUSES:
        return  # already solved or further: a repeated message changes nothing
    restored_at = event.restored_at
    run.set(restored_at=restored_at)
    run.move(S.SOLVED, event.actor, "", CaseEventKind.RESTORED)


def _recur(run: Run, event: Event) -> None:
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


def _reopen(run: Run, event: Event) -> None:
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


def _customer_reply(run: Run, event: Event) -> None:
    assert isinstance(event, CustomerReply)
    run.log(CaseEventKind.CUSTOMER_REPLIED, event.actor)
    if run.case.status is S.WAITING_CUSTOMER:
        run.move(S.IN_PROGRESS, event.actor, "customer replied", CaseEventKind.STATUS_CHANGED)


def _cancel(run: Run, event: Event) -> None:
    assert isinstance(event, Cancel)
    if event.by_customer and run.case.proactive:
        raise CancelNotAllowedError(
            "proactive incidents are closed by support after the service is restored; "
            "write a comment on the case if you no longer need it"
        )
    run.move(S.CANCELLED, event.actor, event.reason, CaseEventKind.STATUS_CHANGED)


def _respond(run: Run, event: Event) -> None:
    assert isinstance(event, Respond)
    run.update_customer(event.actor)


def _assign(run: Run, event: Event) -> None:
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


def _hand_off(run: Run, event: Event) -> None:
    assert isinstance(event, HandOff)
    old, old_assignee = run.case.escalation_level, run.case.assignee
    level = event.to_level if event.to_level.rank > old.rank else old
    old_team = run.case.team_id
    team = event.team if event.team is not None else old_team
    # Without an assignee the case goes to the level's (or team's) queue: nobody owns
    # it now.
    run.set(escalation_level=level, assignee=event.assignee, team_id=team)
    extra = {} if event.team is None else {"team": team, "from_team": old_team}
    run.log(
        CaseEventKind.HANDED_OFF,
        event.actor,
        **{"from": old.value, "to": level.value},
        assignee=event.assignee,
        summary=dict(event.summary),
        **extra,
    )
    requeued = old_assignee is not None or level is not old or team != old_team
    if event.assignee is None and requeued and run.case.status in WORKING_STATUSES:
        run.requeue()


def _reclassify(run: Run, event: Event) -> None:
    assert isinstance(event, Reclassify)
    case = run.case
    if event.type is CaseType.INCIDENT and event.subject is not None:
        raise ValueError("only general requests have a subject")
    if event.type is CaseType.GENERAL_REQUEST and event.subject is None:
        raise ValueError("a general request needs a subject")
    if case.source is CaseSource.PROACTIVE and event.type is not CaseType.INCIDENT:
        raise ValueError("a proactive case is an incident (the detector saw an outage)")
    if event.type is not case.type:
        run.set(type=event.type)
        run.log(
            CaseEventKind.TYPE_CHANGED,
            event.actor,
            **{"from": case.type.value, "to": event.type.value},
            reason=event.reason,
        )
    if event.subject is not case.subject:
        run.set(subject=event.subject)
        run.log(
            CaseEventKind.SUBJECT_CHANGED,
            event.actor,
            **{
                "from": case.subject.value if case.subject else None,
                "to": event.subject.value if event.subject else None,
            },
            reason=event.reason,
        )
    # The priority the new type allows; deadlines follow it (as on a priority change).
    if event.type is CaseType.GENERAL_REQUEST and run.case.priority is not CasePriority.P3:
        _change_priority(run, ChangePriority(CasePriority.P3, event.actor, event.reason))
    elif event.type is CaseType.INCIDENT and run.case.priority is CasePriority.P3:
        _change_priority(run, ChangePriority(CasePriority.P2, event.actor, event.reason))


def _escalate(run: Run, event: Event) -> None:
    assert isinstance(event, Escalate)
    case = run.case
    if event.by_customer:
        refusal = customer_escalation_refusal(case)
        if refusal is not None:
            if case.missed_deadlines:
                raise EscalationNotAllowedError(refusal)
            raise EscalationNotAllowedError(refusal, missed=[])
    elif case.escalation_level is EscalationLevel.L3:
        raise EscalationNotAllowedError(AT_HIGHEST_LEVEL)
    run.escalate(event.actor, event.reason or ("customer request" if event.by_customer else ""))


def _set_commitment(run: Run, event: Event) -> None:
    assert isinstance(event, SetCommitment)
    commitment = event.commitment
    if commitment.due_at <= run.now:
        raise ValueError("a commitment must be due in the future")
    run.set(commitments=(*run.case.commitments, commitment))
    run.log(
        CaseEventKind.COMMITMENT_SET,
        event.actor,
        kind=commitment.kind.value,
        due_at=iso(commitment.due_at),
        note=commitment.note,
    )


def _meet_commitment(run: Run, event: Event) -> None:
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
        due_at=iso(target.due_at),
        late=target.missed_at is not None,
    )


def _change_priority(run: Run, event: Event) -> None:
    assert isinstance(event, ChangePriority)
    case = run.case
    if event.priority is case.priority:
        return
    ttr = run.policy.ttr.get(event.priority)
    old_ttr = run.policy.ttr.get(case.priority)
    changes: dict[str, Any] = {"priority": event.priority}
    if case.ttr_breached_at is None:
        # Keep any pause already credited: shift by the same offset from the deadline
        # the old priority had without pauses (in real time; 24x7 it is exact).
        credited = (
            case.ttr_due_at - run.policy.due(case.priority, case.created_at, old_ttr)
            if case.ttr_due_at is not None and old_ttr is not None
            else timedelta(0)
        )
        changes["ttr_due_at"] = (
            None if ttr is None else run.policy.due(event.priority, case.created_at, ttr) + credited
        )
    if case.solved_at is not None and case.status is S.SOLVED:
        changes["monitoring_until"] = case.solved_at + run.policy.monitoring_window[event.priority]
    run.set(**changes)
    run.log(
        CaseEventKind.PRIORITY_CHANGED,
        event.actor,
        **{"from": case.priority.value, "to": event.priority.value},
        reason=event.reason,
        ttr_due_at=iso(run.case.ttr_due_at),
    )


def _rfo_published(run: Run, event: Event) -> None:
    assert isinstance(event, RfoPublished)
    case = run.case
    if case.rfo_published_at is None:
        run.set(rfo_published_at=event.at)
        run.log(CaseEventKind.RFO_PUBLISHED, event.actor, at=iso(event.at))
    if case.status in (S.SOLVED, S.RFO_PENDING) and not close_blockers(run.case, run.now):
        run.move(S.CLOSED, event.actor, "RFO published", CaseEventKind.CLOSED)


def _set_etr(run: Run, event: Event) -> None:
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
    data: dict[str, Any] = {"etr": iso(event.etr), "previous": iso(previous), "note": event.note}
    if event.from_parent is not None:
        data["from_parent"] = event.from_parent
    run.log(CaseEventKind.ETR_SET, event.actor, **data)
    run.update_customer(event.actor)


_HANDLERS: Final[Mapping[type, Callable[[Run, Any], None]]] = {
    Transition: _transition,
    Restore: _restore,
    Recur: _recur,
    Reopen: _reopen,
    CustomerReply: _customer_reply,
    Cancel: _cancel,
    Respond: _respond,
    Assign: _assign,
    HandOff: _hand_off,
    Reclassify: _reclassify,
    Escalate: _escalate,
    SetCommitment: _set_commitment,
    MeetCommitment: _meet_commitment,
    ChangePriority: _change_priority,
    RfoPublished: _rfo_published,
    SetEtr: _set_etr,
    Tick: tick,
}
