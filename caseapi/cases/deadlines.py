"""What the ticker's ``Tick`` does to a case: the clocks of the lifecycle.

Missed commitments and SLA deadlines (one escalation step per tick, see
``caseapi.cases.lifecycle``), the unassigned flag, the end of the monitoring window,
and on a case waiting on the customer the reminder and the auto-close (held while
an incident's NTU is still down).
"""

from __future__ import annotations

from dataclasses import replace

from caseapi.cases.enums import (
    TERMINAL_STATUSES,
    WORKING_STATUSES,
    CaseEventKind,
    CaseType,
    NotificationKind,
)
from caseapi.cases.machine import Run, S, iso
from caseapi.cases.snapshot import (
    Event,
    Notify,
    Tick,
)


def tick(run: Run, event: Event) -> None:
    assert isinstance(event, Tick)
    now, actor = run.now, event.actor
    if run.case.status in TERMINAL_STATUSES:
        return
    missed: list[str] = []  # every deadline this tick finds missed; one escalation step
    commitments = []
    for c in run.case.commitments:
        if c.pending and c.due_at <= now:
            c = replace(c, missed_at=now)
            run.log(CaseEventKind.COMMITMENT_MISSED, actor, kind=c.kind.value, due_at=iso(c.due_at))
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


def _tick_working(run: Run, actor: str) -> list[str]:
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
        run.log(CaseEventKind.SLA_BREACHED, actor, clock="first_response", due_at=iso(due))
        missed.append("first response overdue")
    due = case.unassigned_due_at
    if due and due <= now and case.assignee is None and case.unassigned_flagged_at is None:
        run.set(unassigned_flagged_at=now)
        run.log(CaseEventKind.UNASSIGNED_FLAGGED, actor, due_at=iso(due))
    due = case.ttr_due_at
    if due and due <= now and case.paused_at is None and case.ttr_breached_at is None:
        run.set(ttr_breached_at=now)
        run.log(CaseEventKind.SLA_BREACHED, actor, clock="time_to_repair", due_at=iso(due))
        missed.append("time to repair exceeded")
    return missed


def _tick_waiting(run: Run, event: Tick) -> None:
    case, now, actor = run.case, run.now, event.actor
    if case.reminder_due_at and case.reminder_sent_at is None and case.reminder_due_at <= now:
        run.set(reminder_sent_at=now)
        run.log(CaseEventKind.REMINDER_SENT, actor, waiting_since=iso(case.waiting_since))
        run.notifications.append(
            Notify(
                NotificationKind.WAITING_CUSTOMER_REMINDER,
                {
                    "waiting_since": iso(case.waiting_since),
                    "closes_at": iso(case.auto_close_due_at),
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
