"""What the lifecycle works on: the case snapshot, its events and the step outcome.

All frozen dataclasses with no behaviour beyond small derived properties; the rules
live in ``caseapi.cases.lifecycle``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from caseapi.cases.calendar import Calendar, add_business_time, business_time_between
from caseapi.cases.enums import (
    CaseEventKind,
    CasePriority,
    CaseSource,
    CaseStatus,
    CaseSubject,
    CaseType,
    CommitmentKind,
    EscalationLevel,
    NotificationKind,
    RootCauseCategory,
)


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """The durations that turn events into deadlines, resolved for one case.

    ``ttr`` maps a priority to its time to repair (``None``: no repair target, as
    for P3 by default); the service resolves it from the NTU's service order.
    """

    monitoring_window: Mapping[CasePriority, timedelta]
    ttr: Mapping[CasePriority, timedelta | None]
    first_response: timedelta
    unassigned_after: timedelta
    reminder_after: timedelta
    close_after: timedelta
    #: How soon an auto-close held back by a down NTU is tried again.
    auto_close_recheck: timedelta
    #: The business-hours calendar of each priority's first response, unassigned
    #: flag and time to repair; a priority left out runs 24x7.
    calendars: Mapping[CasePriority, Calendar | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("first_response", "unassigned_after", "reminder_after", "close_after"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        if self.auto_close_recheck <= timedelta(0):
            raise ValueError("auto_close_recheck must be positive")

    def due(self, priority: CasePriority, start: datetime, duration: timedelta) -> datetime:
        """The deadline ``duration`` after ``start`` on ``priority``'s clock (24x7 or
        its calendar's open time), as an absolute instant."""
        calendar = self.calendars.get(priority)
        if calendar is None:
            return start + duration
        return add_business_time(calendar, start, duration)

    def elapsed(self, priority: CasePriority, start: datetime, end: datetime) -> timedelta:
        """How much of ``priority``'s clock ran from ``start`` to ``end`` (zero if
        ``end`` is not after ``start``)."""
        calendar = self.calendars.get(priority)
        if calendar is None:
            return max(end - start, timedelta(0))
        return business_time_between(calendar, start, end)


@dataclass(frozen=True, slots=True)
class Commitment:
    """A promise with a deadline; ``id`` is ``None`` until stored."""

    kind: CommitmentKind
    due_at: datetime
    note: str = ""
    set_by: str = ""
    id: int | None = None
    met_at: datetime | None = None
    missed_at: datetime | None = None

    @property
    def pending(self) -> bool:
        return self.met_at is None and self.missed_at is None


@dataclass(frozen=True, slots=True)
class CaseSnapshot:
    """What the rules know about one case; field names match ``cases`` columns."""

    status: CaseStatus
    type: CaseType
    priority: CasePriority
    created_at: datetime
    subject: CaseSubject | None = None
    #: Proactive unless a person opened it (api, email, phone).
    source: CaseSource = CaseSource.PROACTIVE
    #: The upstream incident this case is linked to, if any.
    parent_case_id: int | None = None
    escalation_level: EscalationLevel = EscalationLevel.L1
    assignee: str | None = None
    first_response_due_at: datetime | None = None
    first_responded_at: datetime | None = None
    first_response_breached_at: datetime | None = None
    unassigned_due_at: datetime | None = None
    unassigned_flagged_at: datetime | None = None
    ttr_due_at: datetime | None = None
    ttr_breached_at: datetime | None = None
    paused_at: datetime | None = None
    restored_at: datetime | None = None
    solved_at: datetime | None = None
    monitoring_until: datetime | None = None
    waiting_since: datetime | None = None
    reminder_due_at: datetime | None = None
    reminder_sent_at: datetime | None = None
    auto_close_due_at: datetime | None = None
    auto_close_held_at: datetime | None = None
    rfo_published_at: datetime | None = None
    closed_at: datetime | None = None
    reopen_count: int = 0
    resolution_method: str | None = None
    root_cause_category: RootCauseCategory | None = None
    resolution: str | None = None
    etr: datetime | None = None
    #: The team working the case (``caseapi.teams``); a forward changes it.
    team_id: str | None = None
    commitments: tuple[Commitment, ...] = ()

    @property
    def rfo_required(self) -> bool:
        """Every incident owes an RFO, and so does a P3 that asks for one."""
        return self.type is CaseType.INCIDENT or self.subject is CaseSubject.RFO_REQUEST

    @property
    def proactive(self) -> bool:
        """Opened by the detector: its own incident, or a customer's linked to an upstream one."""
        return self.source is CaseSource.PROACTIVE or self.parent_case_id is not None

    @property
    def missed_deadlines(self) -> list[str]:
        """The SLA promises already broken, for the customer-escalation guard."""
        missed = []
        if self.first_response_breached_at is not None:
            missed.append("first_response")
        if self.ttr_breached_at is not None:
            missed.append("time_to_repair")
        missed += [f"commitment:{c.kind.value}" for c in self.commitments if c.missed_at]
        return missed


# -- events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transition:
    """An engineer moves the case; ``solved`` takes the resolution fields."""

    to: CaseStatus
    actor: str
    reason: str = ""
    resolution_method: str | None = None
    root_cause_category: RootCauseCategory | None = None
    resolution: str | None = None
    merged_into: str | None = None


@dataclass(frozen=True, slots=True)
class Restore:
    """The NMS saw the service come back at ``restored_at``."""

    restored_at: datetime
    actor: str


@dataclass(frozen=True, slots=True)
class Recur:
    """The same outage (dedup key) started again at ``outage_start``."""

    outage_start: datetime
    actor: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reopen:
    """The customer says it is not fixed (inside the monitoring window)."""

    actor: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CustomerReply:
    """The customer answered (a public comment or an explicit reply)."""

    actor: str


@dataclass(frozen=True, slots=True)
class Cancel:
    """Withdraw the case: a customer its own reactive request, support any open case."""

    actor: str
    reason: str
    by_customer: bool


@dataclass(frozen=True, slots=True)
class Respond:
    """Support's first response to the customer (if not given yet)."""

    actor: str


@dataclass(frozen=True, slots=True)
class Assign:
    """Give the case to ``assignee`` (``take`` is assigning to oneself).

    ``None`` puts the case back in the queue (the unassigned flag re-arms).
    """

    assignee: str | None
    actor: str


@dataclass(frozen=True, slots=True)
class HandOff:
    """Forward to a specialist: a level, maybe a team and an assignee, and a structured
    summary. ``team`` (``None``: the case keeps its team) is a known team's id."""

    actor: str
    to_level: EscalationLevel
    summary: Mapping[str, Any]
    assignee: str | None = None
    team: str | None = None


@dataclass(frozen=True, slots=True)
class Reclassify:
    """Support corrects what the case is: its type and (for a general request) subject.

    An incident has no subject; a general request needs one. The priority follows
    the type when it must (an incident is P1 or P2, a general request P3)."""

    actor: str
    type: CaseType
    subject: CaseSubject | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Escalate:
    """Raise the level by hand: support freely, a customer only after a miss."""

    actor: str
    by_customer: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SetCommitment:
    """Promise something by ``due_at`` (must be in the future)."""

    commitment: Commitment
    actor: str


@dataclass(frozen=True, slots=True)
class MeetCommitment:
    """Mark commitment ``commitment_id`` as kept."""

    commitment_id: int
    actor: str


@dataclass(frozen=True, slots=True)
class ChangePriority:
    """Support sets the priority; deadlines follow the new one."""

    priority: CasePriority
    actor: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RfoPublished:
    """The RFO was published at ``at`` (first publication counts)."""

    at: datetime
    actor: str


@dataclass(frozen=True, slots=True)
class SetEtr:
    """Support sets (or, with ``None``, clears) the estimated time of restoration.

    ``note`` is for the customer; ``from_parent`` names the upstream incident the
    estimate came down from, on its linked customer cases.
    """

    etr: datetime | None
    actor: str
    note: str = ""
    from_parent: str | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: act on every deadline that is due. ``ntu_down`` blocks auto-close."""

    actor: str = "system"
    ntu_down: bool = False


Event = (
    Transition
    | Restore
    | Recur
    | Reopen
    | CustomerReply
    | Cancel
    | Respond
    | Assign
    | HandOff
    | Reclassify
    | Escalate
    | SetCommitment
    | MeetCommitment
    | ChangePriority
    | RfoPublished
    | SetEtr
    | Tick
)


@dataclass(frozen=True, slots=True)
class Entry:
    """A timeline entry to write."""

    kind: CaseEventKind
    actor: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Notify:
    """A notification to record in the outbox."""

    kind: NotificationKind
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    snapshot: CaseSnapshot
    entries: tuple[Entry, ...] = ()
    notifications: tuple[Notify, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.entries)
