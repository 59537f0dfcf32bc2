"""The pure lifecycle: every (state, event) pair, guards, and Hypothesis properties."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseapi.cases import lifecycle
from caseapi.cases.enums import (
    TERMINAL_STATUSES,
    CaseEventKind,
    CasePriority,
    CaseStatus,
    CaseSubject,
    CaseType,
    CommitmentKind,
    EscalationLevel,
)
from caseapi.cases.errors import (
    CaseRuleError,
    EscalationNotAllowedError,
    InvalidTransitionError,
    ReopenNotAllowedError,
)
from caseapi.cases.snapshot import (
    Assign,
    CaseSnapshot,
    ChangePriority,
    Commitment,
    CustomerReply,
    Escalate,
    Event,
    HandOff,
    Outcome,
    Recur,
    Reopen,
    Respond,
    Restore,
    RfoPublished,
    SetCommitment,
    Tick,
    Transition,
)
from tests.caseapi.conftest import START
from tests.caseapi.lifecycle_fixtures import POLICY, snapshot

S = CaseStatus
NOW = START + timedelta(minutes=5)
A = "engineer:alice"


def _in(status: CaseStatus) -> CaseSnapshot:
    """A consistent snapshot in ``status`` (solved ones inside their window)."""
    case = snapshot(status)
    if status in (S.SOLVED, S.RFO_PENDING):
        case = replace(
            case, restored_at=START, solved_at=START, monitoring_until=START + timedelta(hours=24)
        )
    if status is S.WAITING_CUSTOMER:
        case = replace(case, paused_at=START, waiting_since=START)
    return case


# -- every manual transition ----------------------------------------------------------


@pytest.mark.parametrize("source", list(S))
@pytest.mark.parametrize("target", list(S))
def test_every_manual_transition(source: CaseStatus, target: CaseStatus) -> None:
    case = _in(source)
    event = Transition(to=target, actor=A, reason="r", resolution_method="fix")
    allowed = target in lifecycle.MANUAL_TRANSITIONS[source]
    if target is S.CLOSED and allowed:
        # The close guard: inside the window and without an RFO it must refuse.
        with pytest.raises(InvalidTransitionError, match="monitoring window"):
            lifecycle.step(case, event, NOW, POLICY)
        later = START + timedelta(hours=25)
        done = replace(case, rfo_published_at=START)
        outcome = lifecycle.step(done, event, later, POLICY)
        assert outcome.snapshot.status is S.CLOSED
        assert outcome.snapshot.closed_at == later
        return
    if not allowed:
        with pytest.raises(InvalidTransitionError) as info:
            lifecycle.step(case, event, NOW, POLICY)
        assert (info.value.from_status, info.value.to) == (source.value, target.value)
        return
    outcome = lifecycle.step(case, event, NOW, POLICY)
    assert outcome.snapshot.status is target
    changes = [e for e in outcome.entries if "to" in e.data and e.data.get("from") == source]
    assert changes, outcome.entries
    assert all(e.actor == A for e in outcome.entries)


def test_manual_transitions_are_a_subset_of_the_table() -> None:
    for status, targets in lifecycle.MANUAL_TRANSITIONS.items():
        assert targets <= lifecycle.TRANSITIONS[status]
    for status in TERMINAL_STATUSES:
        assert lifecycle.TRANSITIONS[status] == frozenset()


# -- every other event in every status --------------------------------------------------

EVENTS: dict[str, Event] = {
    "restore": Restore(restored_at=START, actor="detector"),
    "recur": Recur(outage_start=START + timedelta(minutes=1), actor="detector"),
    "reopen": Reopen(actor="customer:x"),
    "reply": CustomerReply(actor="customer:x"),
    "respond": Respond(actor=A),
    "assign": Assign(assignee="bob", actor=A),
    "handoff": HandOff(actor=A, to_level=EscalationLevel.L2, summary={"summary": "s"}),
    "escalate": Escalate(actor=A, by_customer=False),
    "customer_escalate": Escalate(actor="customer:x", by_customer=True),
    "commit": SetCommitment(
        commitment=Commitment(kind=CommitmentKind.NEXT_UPDATE, due_at=NOW + timedelta(hours=1)),
        actor=A,
    ),
    "priority": ChangePriority(priority=CasePriority.P2, actor=A),
    "rfo": RfoPublished(at=NOW, actor=A),
    "tick": Tick(),
}

#: event -> (status after, or the error) for each status; "same" = status unchanged.
_WORKING = {S.NEW, S.IN_PROGRESS, S.WAITING_CUSTOMER, S.WAITING_SUPPLIER}
_OPEN = _WORKING | {S.SOLVED, S.RFO_PENDING}


def _expected(name: str, status: CaseStatus) -> CaseStatus | type[Exception]:
    if status in TERMINAL_STATUSES:
        return status if name in ("rfo", "tick") else InvalidTransitionError
    if name == "restore":
        return S.SOLVED if status in _WORKING else status
    if name == "recur":
        return S.IN_PROGRESS if status in (S.SOLVED, S.RFO_PENDING) else status
    if name == "reopen":
        return S.IN_PROGRESS if status is S.SOLVED else ReopenNotAllowedError
    if name == "reply":
        return S.IN_PROGRESS if status is S.WAITING_CUSTOMER else status
    if name == "assign":
        return S.IN_PROGRESS if status is S.NEW else status
    if name == "customer_escalate":
        return EscalationNotAllowedError
    return status


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("name", list(EVENTS))
def test_every_state_event_pair(status: CaseStatus, name: str) -> None:
    expected = _expected(name, status)
    case = _in(status)
    if isinstance(expected, type):
        with pytest.raises(expected):
            lifecycle.step(case, EVENTS[name], NOW, POLICY)
        return
    outcome = lifecycle.step(case, EVENTS[name], NOW, POLICY)
    assert outcome.snapshot.status is expected
    for entry in outcome.entries:
        assert isinstance(entry.kind, CaseEventKind)
        assert entry.actor


# -- guards and clocks -----------------------------------------------------------------


def test_customer_escalation_opens_after_a_miss_and_stops_at_l3() -> None:
    case = snapshot(S.IN_PROGRESS, first_response_breached_at=NOW)
    event = Escalate(actor="customer:x", by_customer=True)
    up = lifecycle.step(case, event, NOW, POLICY).snapshot
    assert up.escalation_level is EscalationLevel.L2
    top = lifecycle.step(up, event, NOW, POLICY).snapshot
    assert top.escalation_level is EscalationLevel.L3
    with pytest.raises(EscalationNotAllowedError, match="highest"):
        lifecycle.step(top, event, NOW, POLICY)


def _escalations(outcome: Outcome) -> list[dict[str, object]]:
    return [dict(e.data) for e in outcome.entries if e.kind is CaseEventKind.ESCALATED]


def test_one_tick_escalates_one_step_however_many_deadlines_it_finds_missed() -> None:
    # First response, time to repair and a commitment all overdue in the same tick.
    due = START + timedelta(minutes=20)
    promise = Commitment(CommitmentKind.NEXT_UPDATE, due, id=7)
    case = snapshot(S.IN_PROGRESS, ttr_due_at=due, commitments=(promise,))
    late = START + timedelta(hours=5)
    outcome = lifecycle.step(case, Tick(), late, POLICY)
    assert outcome.snapshot.escalation_level is EscalationLevel.L2
    assert outcome.snapshot.first_response_breached_at == late
    assert outcome.snapshot.ttr_breached_at == late
    assert outcome.snapshot.commitments[0].missed_at == late
    # Every miss is on the timeline; one escalation names them all.
    kinds = [e.kind for e in outcome.entries]
    assert kinds.count(CaseEventKind.SLA_BREACHED) == 2
    assert kinds.count(CaseEventKind.COMMITMENT_MISSED) == 1
    [escalation] = _escalations(outcome)
    assert (escalation["from"], escalation["to"]) == ("L1", "L2")
    assert escalation["missed"] == [
        "commitment missed: next_update",
        "first response overdue",
        "time to repair exceeded",
    ]
    # A deadline missed in a later tick raises again: L3.
    later = replace(
        outcome.snapshot,
        commitments=(
            *outcome.snapshot.commitments,
            Commitment(CommitmentKind.NEXT_UPDATE, late + timedelta(minutes=30), id=8),
        ),
    )
    again = lifecycle.step(later, Tick(), late + timedelta(hours=1), POLICY)
    assert again.snapshot.escalation_level is EscalationLevel.L3
    assert [(e["from"], e["to"]) for e in _escalations(again)] == [("L2", "L3")]


def test_l3_is_the_ceiling_of_tick_escalation() -> None:
    due = START + timedelta(minutes=20)
    case = snapshot(
        S.IN_PROGRESS,
        escalation_level=EscalationLevel.L3,
        ttr_due_at=due,
        commitments=(Commitment(CommitmentKind.NEXT_UPDATE, due, id=1),),
    )
    outcome = lifecycle.step(case, Tick(), START + timedelta(hours=5), POLICY)
    assert outcome.snapshot.escalation_level is EscalationLevel.L3
    assert _escalations(outcome) == []
    assert outcome.snapshot.ttr_breached_at is not None  # still recorded


def test_waiting_customer_pauses_the_repair_clock_and_supplier_does_not() -> None:
    case = snapshot(S.IN_PROGRESS)
    waiting = lifecycle.step(case, Transition(to=S.WAITING_CUSTOMER, actor=A), NOW, POLICY)
    assert waiting.snapshot.paused_at == NOW
    assert lifecycle.next_due_at(waiting.snapshot) != case.ttr_due_at
    later = NOW + timedelta(hours=3)
    resumed = lifecycle.step(waiting.snapshot, CustomerReply(actor="customer:x"), later, POLICY)
    assert resumed.snapshot.status is S.IN_PROGRESS
    assert resumed.snapshot.ttr_due_at == case.ttr_due_at + timedelta(hours=3)  # type: ignore[operator]
    supplier = lifecycle.step(case, Transition(to=S.WAITING_SUPPLIER, actor=A), NOW, POLICY)
    assert supplier.snapshot.paused_at is None
    assert supplier.snapshot.ttr_due_at == case.ttr_due_at


def test_rfo_is_required_for_incidents_and_rfo_requests_only() -> None:
    assert snapshot().rfo_required
    p3 = snapshot(type=CaseType.GENERAL_REQUEST, priority=CasePriority.P3)
    assert not p3.rfo_required
    assert replace(p3, subject=CaseSubject.RFO_REQUEST).rfo_required


def test_commitment_in_the_past_is_refused() -> None:
    past = Commitment(kind=CommitmentKind.NEXT_UPDATE, due_at=NOW - timedelta(minutes=1))
    with pytest.raises(ValueError, match="future"):
        lifecycle.step(snapshot(), SetCommitment(commitment=past, actor=A), NOW, POLICY)


# -- Hypothesis -------------------------------------------------------------------------

_steps = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "restore",
                "recur",
                "reopen",
                "reply",
                "assign",
                "tick",
                "rfo",
                "wait",
                "supplier",
                "work",
                "close",
                "commit",
                "escalate",
            ]
        ),
        st.integers(min_value=0, max_value=4 * 24 * 60),  # minutes to jump first
    ),
    max_size=30,
)


def _event(name: str, now: object) -> Event:
    assert not isinstance(now, str)
    match name:
        case "wait":
            return Transition(to=S.WAITING_CUSTOMER, actor=A)
        case "supplier":
            return Transition(to=S.WAITING_SUPPLIER, actor=A)
        case "work":
            return Transition(to=S.IN_PROGRESS, actor=A)
        case "close":
            return Transition(to=S.CLOSED, actor=A)
        case "recur":
            return Recur(outage_start=now, actor="detector")  # type: ignore[arg-type]
        case "restore":
            return Restore(restored_at=now, actor="detector")  # type: ignore[arg-type]
        case "rfo":
            return RfoPublished(at=now, actor=A)  # type: ignore[arg-type]
        case "commit":
            due = now + timedelta(minutes=30)  # type: ignore[operator]
            assert isinstance(due, datetime)
            return SetCommitment(commitment=Commitment(CommitmentKind.NEXT_UPDATE, due), actor=A)
        case "tick":
            return Tick(ntu_down=False)
    return EVENTS[{"escalate": "customer_escalate"}.get(name, name)]


@settings(max_examples=300, deadline=None)
@given(_steps, st.sampled_from([CasePriority.P1, CasePriority.P2]))
def test_random_histories_never_close_early_or_go_negative(
    steps: list[tuple[str, int]], priority: CasePriority
) -> None:
    case = snapshot(priority=priority, ttr_due_at=START + POLICY.ttr[priority])  # type: ignore[operator]
    now = START
    for name, jump in steps:
        now += timedelta(minutes=jump)
        before = case
        try:
            case = lifecycle.step(case, _event(name, now), now, POLICY).snapshot
        except (CaseRuleError, ValueError):
            continue
        if case.status is S.CLOSED and before.status is not S.CLOSED:
            assert case.rfo_published_at is not None, "closed without an RFO"
            if before.monitoring_until is not None:
                assert now >= before.monitoring_until, "closed inside the monitoring window"
        for start, end in [
            (case.solved_at, case.monitoring_until),
            (case.created_at, case.ttr_due_at),
            (case.created_at, case.closed_at),
            (case.paused_at, now),
            (case.created_at, case.first_responded_at),
        ]:
            if start is not None and end is not None:
                assert end >= start, f"negative duration {start} -> {end}"
        if case.status.is_terminal:
            assert lifecycle.next_due_at(case) is None
