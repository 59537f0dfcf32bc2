"""The lifecycle's tables and the accumulator its handlers share.

``TRANSITIONS`` / ``MANUAL_TRANSITIONS`` say which status changes exist; the pure
helpers (``initial_deadlines``, ``close_blockers``, ``next_due_at``, ``etr_refusal``,
``customer_escalation_refusal``)
answer questions about a snapshot; ``Run`` collects one step's changes, timeline
entries and notifications. The rules themselves are ``caseapi.cases.lifecycle``'s
(people's and the detector's events) and ``caseapi.cases.deadlines``' (the ticker's).
"""

from __future__ import annotations

from collections.abc import Mapping
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
    RootCauseCategory,
)
from caseapi.cases.errors import (
    InvalidTransitionError,
)
from caseapi.cases.snapshot import (
    CaseSnapshot,
    Entry,
    Notify,
    Outcome,
    SlaPolicy,
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
        "first_response_due_at": policy.due(priority, created_at, policy.first_response),
        "unassigned_due_at": policy.due(priority, created_at, policy.unassigned_after),
        "ttr_due_at": None if ttr is None else policy.due(priority, created_at, ttr),
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


class Run:
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
                ttr_due_at=None if ttr is None else self.policy.due(self.case.priority, now, ttr),
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
            data["restored_at"] = iso(self.case.restored_at)
            data["monitoring_until"] = iso(self.case.monitoring_until)
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
            calendar = self.policy.calendars.get(case.priority)
            if calendar is not None and case.ttr_due_at > case.paused_at:
                # Business hours: what was left of the repair time at the pause runs
                # again from now, in open time (closed hours of the pause cost nothing).
                left = self.policy.elapsed(case.priority, case.paused_at, case.ttr_due_at)
                changes["ttr_due_at"] = self.policy.due(case.priority, self.now, left)
            else:
                # max(): a clock never runs backwards here, but a pause is never negative.
                pause = max(self.now - case.paused_at, timedelta(0))
                changes["ttr_due_at"] = case.ttr_due_at + pause
        self.set(**changes)

    def requeue(self) -> None:
        """The case is back in a queue: the unassigned flag re-arms from now."""
        self.set(
            unassigned_due_at=self.policy.due(
                self.case.priority, self.now, self.policy.unassigned_after
            ),
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
                    due_at=iso(c.due_at),
                    late=False,
                )
            kept.append(c)
        self.set(commitments=tuple(kept))


def etr_refusal(case: CaseSnapshot) -> str | None:
    """Why ``case`` takes no estimated time of restoration; ``None`` when it does."""
    if case.type is not CaseType.INCIDENT:
        return "a general request has no service restoration to estimate"
    if case.status not in WORKING_STATUSES:
        return f"the case is {case.status.value}: a restored service has no ETR"
    return None


#: Why a customer may not escalate yet (the API's 409 and the portal's explanation).
NOTHING_MISSED: Final = (
    "no commitment has been missed: escalation opens once first response, "
    "time to repair or a promised update is overdue"
)
AT_HIGHEST_LEVEL: Final = "the case is already at the highest level (L3)"


def customer_escalation_refusal(case: CaseSnapshot) -> str | None:
    """Why the customer may not escalate ``case`` now; ``None`` when it may.

    A customer escalates only once a promise was broken (``missed_deadlines``), and
    not past L3. Shared by the lifecycle (``Escalate``) and the pages that offer the
    button, so both say the same.
    """
    if case.status in TERMINAL_STATUSES:
        return "the case is finished"
    if not case.missed_deadlines:
        return NOTHING_MISSED
    if case.escalation_level is EscalationLevel.L3:
        return AT_HIGHEST_LEVEL
    return None


def next_customer_deadline(case: CaseSnapshot) -> datetime | None:
    """The earliest pending promise whose miss would let the customer escalate.

    The parts of ``missed_deadlines`` not yet missed: a pending commitment, the first
    response and the time to repair while they still run (not paused).
    """
    if case.status in TERMINAL_STATUSES:
        return None
    due: list[datetime | None] = [c.due_at for c in case.commitments if c.pending]
    if case.status in WORKING_STATUSES:
        if case.first_responded_at is None and case.first_response_breached_at is None:
            due.append(case.first_response_due_at)
        if case.ttr_breached_at is None and case.paused_at is None:
            due.append(case.ttr_due_at)
    return min((d for d in due if d is not None), default=None)


def value_of(value: RootCauseCategory | None) -> str | None:
    return None if value is None else value.value


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
