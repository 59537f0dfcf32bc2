"""SLA compliance from case rows: pure, no I/O, time passed in.

Per case: first response met or missed (the first public word from support by its
due time), time to repair met or missed (restored or solved by the repair
deadline, which waiting on the customer has pushed out), its commitments met and
missed, and whether it was escalated. A deadline not reached yet is ``pending``; a
case without the deadline (a general request has no repair target, a no-support
case no clocks) is ``not_applicable``. A deadline passed without the event counts
as missed even if the ticker has not flagged it yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    MET = "met"
    MISSED = "missed"
    PENDING = "pending"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the SLA figures need of one case."""

    ref: str
    customer_id: str | None
    priority: str
    type: str
    created_at: datetime
    first_response_due_at: datetime | None
    first_responded_at: datetime | None
    first_response_breached_at: datetime | None
    ttr_due_at: datetime | None
    ttr_breached_at: datetime | None
    restored_at: datetime | None
    solved_at: datetime | None
    paused: bool
    escalation_level: str
    commitments_met: int = 0
    commitments_missed: int = 0


@dataclass(frozen=True, slots=True)
class CaseVerdict:
    """One case's SLA outcomes."""

    facts: CaseFacts
    first_response: Outcome
    time_to_repair: Outcome

    @property
    def escalated(self) -> bool:
        """Escalated above L1."""
        return self.facts.escalation_level != "L1"

    @property
    def missed(self) -> tuple[str, ...]:
        """What this case missed: ``first_response``, ``time_to_repair``, ``commitment``."""
        out = []
        if self.first_response is Outcome.MISSED:
            out.append("first_response")
        if self.time_to_repair is Outcome.MISSED:
            out.append("time_to_repair")
        if self.facts.commitments_missed:
            out.append("commitment")
        return tuple(out)


@dataclass(slots=True)
class Tally:
    """Met / missed / pending counts of one target."""

    met: int = 0
    missed: int = 0
    pending: int = 0

    def add(self, outcome: Outcome) -> None:
        if outcome is Outcome.MET:
            self.met += 1
        elif outcome is Outcome.MISSED:
            self.missed += 1
        elif outcome is Outcome.PENDING:
            self.pending += 1


@dataclass(slots=True)
class SlaSummary:
    """The SLA figures of a set of cases."""

    cases: int = 0
    first_response: Tally = field(default_factory=Tally)
    time_to_repair: dict[str, Tally] = field(default_factory=dict)
    commitments_met: int = 0
    commitments_missed: int = 0
    escalated: int = 0
    verdicts: list[CaseVerdict] = field(default_factory=list)

    @property
    def missed_cases(self) -> list[CaseVerdict]:
        """The cases that missed anything, in the order given."""
        return [v for v in self.verdicts if v.missed]


def first_response(case: CaseFacts, now: datetime) -> Outcome:
    """Whether ``case`` got its first response in time."""
    due = case.first_response_due_at
    if due is None:
        return Outcome.MET if case.first_responded_at is not None else Outcome.NOT_APPLICABLE
    if case.first_responded_at is not None:
        return Outcome.MET if case.first_responded_at <= due else Outcome.MISSED
    if case.first_response_breached_at is not None or now >= due:
        return Outcome.MISSED
    return Outcome.PENDING


def time_to_repair(case: CaseFacts, now: datetime) -> Outcome:
    """Whether ``case`` was repaired within its time-to-repair target."""
    due = case.ttr_due_at
    if due is None:
        return Outcome.NOT_APPLICABLE
    if case.ttr_breached_at is not None:
        return Outcome.MISSED
    done = case.restored_at or case.solved_at
    if done is not None:
        return Outcome.MET if done <= due else Outcome.MISSED
    if case.paused:
        return Outcome.PENDING  # the repair clock is stopped; the deadline will move
    return Outcome.MISSED if now >= due else Outcome.PENDING


def summarise(cases: Iterable[CaseFacts], now: datetime) -> SlaSummary:
    """The SLA figures of ``cases`` (each counted once)."""
    summary = SlaSummary()
    for case in cases:
        verdict = CaseVerdict(
            facts=case,
            first_response=first_response(case, now),
            time_to_repair=time_to_repair(case, now),
        )
        summary.cases += 1
        summary.first_response.add(verdict.first_response)
        summary.time_to_repair.setdefault(case.priority, Tally()).add(verdict.time_to_repair)
        summary.commitments_met += case.commitments_met
        summary.commitments_missed += case.commitments_missed
        summary.escalated += int(verdict.escalated)
        summary.verdicts.append(verdict)
    return summary
