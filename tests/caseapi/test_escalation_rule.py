"""The customer-escalation rule as a pure function (the lifecycle's and the portal's)."""

from __future__ import annotations

from datetime import timedelta

from caseapi.cases.enums import CaseStatus, CommitmentKind, EscalationLevel
from caseapi.cases.lifecycle import customer_escalation_refusal, next_customer_deadline
from caseapi.cases.snapshot import Commitment
from tests.caseapi.conftest import START
from tests.caseapi.lifecycle_fixtures import POLICY, snapshot


def test_nothing_missed_refuses_and_names_the_next_deadline() -> None:
    case = snapshot(CaseStatus.IN_PROGRESS)
    assert customer_escalation_refusal(case) is not None
    assert "no commitment has been missed" in (customer_escalation_refusal(case) or "")
    # The first response (30 min) comes before the time to repair (4 h).
    assert next_customer_deadline(case) == START + POLICY.first_response
    promise = Commitment(kind=CommitmentKind.CALLBACK, due_at=START + timedelta(minutes=10))
    assert next_customer_deadline(
        snapshot(CaseStatus.IN_PROGRESS, commitments=(promise,))
    ) == START + timedelta(minutes=10)


def test_a_missed_promise_opens_escalation_up_to_l3() -> None:
    missed = Commitment(
        kind=CommitmentKind.NEXT_UPDATE, due_at=START, missed_at=START + timedelta(minutes=1)
    )
    case = snapshot(CaseStatus.IN_PROGRESS, commitments=(missed,))
    assert customer_escalation_refusal(case) is None
    top = snapshot(
        CaseStatus.IN_PROGRESS, commitments=(missed,), escalation_level=EscalationLevel.L3
    )
    assert "highest level" in (customer_escalation_refusal(top) or "")
    breached = snapshot(CaseStatus.NEW, first_response_breached_at=START)
    assert customer_escalation_refusal(breached) is None


def test_a_finished_case_has_no_escalation_and_no_deadline() -> None:
    closed = snapshot(CaseStatus.CLOSED, first_response_breached_at=START)
    assert customer_escalation_refusal(closed) == "the case is finished"
    assert next_customer_deadline(closed) is None
    paused = snapshot(CaseStatus.WAITING_CUSTOMER, first_responded_at=START, paused_at=START)
    assert next_customer_deadline(paused) is None
