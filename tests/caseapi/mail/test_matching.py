"""The pure decision of what an inbound mail does: a table, then every combination."""

from __future__ import annotations

import itertools

import pytest

from caseapi.mail.classify import AutoKind
from caseapi.mail.matching import (
    HELD_NOTES,
    Action,
    CaseFacts,
    Decision,
    MailFacts,
    Reason,
    SenderFacts,
    decide,
    refusal_reason,
)

OPEN = CaseFacts(id=1, ref="CS-2026-000001", customer_id="cust-1", terminal=False)
CLOSED = CaseFacts(id=2, ref="CS-2026-000002", customer_id="cust-1", terminal=True)
CONTACT = SenderFacts("ann@acme.example", customer_id="cust-1", contract_status="active")
EXPIRED = SenderFacts("ann@acme.example", customer_id="cust-1", contract_status="expired")
UNPAID = SenderFacts("ann@acme.example", customer_id="cust-1", contract_status="unpaid")
OTHER = SenderFacts("bob@other.example", customer_id="cust-2", contract_status="active")
STAFF = SenderFacts("eve@noc.example", staff=True)
UNKNOWN = SenderFacts("who@nowhere.example")
NOBODY = SenderFacts("")
H = AutoKind.HUMAN
A, D, R = Action, Decision, Reason
K = AutoKind


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        # New mails.
        (MailFacts(H, CONTACT), D(A.OPEN_CASE, R.CASE_OPENED, customer_id="cust-1")),
        (MailFacts(H, EXPIRED), D(A.REFUSE, R.CONTRACT_EXPIRED, customer_id="cust-1")),
        (MailFacts(H, UNPAID), D(A.REFUSE, R.ACCOUNT_SUSPENDED_UNPAID, customer_id="cust-1")),
        (MailFacts(H, UNKNOWN), D(A.HOLD, R.UNKNOWN_SENDER)),
        (MailFacts(H, STAFF), D(A.HOLD, R.STAFF_WITHOUT_CASE)),
        (MailFacts(H, NOBODY), D(A.HOLD, R.NO_SENDER)),
        (MailFacts(H, CONTACT, names_ref=True), D(A.HOLD, R.UNKNOWN_CASE_REF)),
        # Replies on a case.
        (MailFacts(H, CONTACT, OPEN), D(A.COMMENT, R.COMMENTED, OPEN, "cust-1")),
        (MailFacts(H, EXPIRED, OPEN), D(A.COMMENT, R.COMMENTED, OPEN, "cust-1")),
        (MailFacts(H, STAFF, OPEN), D(A.COMMENT, R.COMMENTED, OPEN, as_staff=True)),
        (MailFacts(H, OTHER, OPEN), D(A.HOLD, R.SENDER_NOT_CONTACT, OPEN)),
        (MailFacts(H, UNKNOWN, OPEN), D(A.HOLD, R.SENDER_NOT_CONTACT, OPEN)),
        (MailFacts(H, CONTACT, CLOSED), D(A.FOLLOW_UP, R.FOLLOW_UP_OPENED, CLOSED, "cust-1")),
        (MailFacts(H, EXPIRED, CLOSED), D(A.REFUSE, R.CONTRACT_EXPIRED, CLOSED, "cust-1")),
        (MailFacts(H, STAFF, CLOSED), D(A.HOLD, R.CASE_CLOSED, CLOSED)),
        (MailFacts(H, OTHER, CLOSED), D(A.HOLD, R.SENDER_NOT_CONTACT, CLOSED)),
        # Limits.
        (MailFacts(H, CONTACT, OPEN, too_large=True), D(A.HOLD, R.TOO_LARGE, OPEN)),
        (MailFacts(H, CONTACT, rate_limited=True), D(A.HOLD, R.RATE_LIMITED)),
        (MailFacts(H, STAFF, OPEN, rate_limited=True), D(A.HOLD, R.RATE_LIMITED, OPEN)),
        # Machines: never answered, never a comment.
        (MailFacts(K.BOUNCE, UNKNOWN, OPEN), D(A.BOUNCE, R.BOUNCE, OPEN)),
        (MailFacts(K.AUTO_REPLY, CONTACT, OPEN), D(A.IGNORE, R.AUTO_REPLY, OPEN)),
        (MailFacts(K.BULK, CONTACT), D(A.IGNORE, R.BULK)),
        (MailFacts(K.LOOP, STAFF, too_large=True), D(A.IGNORE, R.LOOP)),
    ],
)  # fmt: skip
def test_decision_table(facts: MailFacts, expected: Decision) -> None:
    assert decide(facts) == expected


def test_unknown_contract_status_refuses_as_expired() -> None:
    assert refusal_reason("suspended-by-legal") is R.CONTRACT_EXPIRED
    assert refusal_reason(None) is R.CONTRACT_EXPIRED
    assert refusal_reason("active") is None


SENDERS = (CONTACT, EXPIRED, UNPAID, OTHER, STAFF, UNKNOWN, NOBODY)
CASES = (None, OPEN, CLOSED)
ANSWERING = {Action.OPEN_CASE, Action.COMMENT, Action.FOLLOW_UP, Action.REFUSE}


@pytest.mark.parametrize("auto", list(AutoKind))
def test_every_combination_obeys_the_invariants(auto: AutoKind) -> None:
    for sender, case, names_ref, too_large, limited in itertools.product(
        SENDERS, CASES, (False, True), (False, True), (False, True)
    ):
        facts = MailFacts(
            auto, sender, case, names_ref=names_ref, too_large=too_large, rate_limited=limited
        )
        decision = decide(facts)
        # Only a person's mail is answered or appended (loop protection).
        if auto is not AutoKind.HUMAN:
            assert decision.action not in ANSWERING, facts
            assert decision.action is (Action.BOUNCE if auto is AutoKind.BOUNCE else Action.IGNORE)
            continue
        # Limits hold before anything is appended.
        if too_large or limited or not sender.address:
            assert decision.action is Action.HOLD, facts
        if decision.action is Action.HOLD:
            assert decision.reason in HELD_NOTES, facts
        # Appended only by staff or a contact of the case's own customer.
        if decision.action is Action.COMMENT:
            assert case is not None and not case.terminal
            assert sender.staff or sender.customer_id == case.customer_id, facts
            assert decision.as_staff == sender.staff
        # New cases only for a contact with support, never for a finished case reopened.
        if decision.action in (Action.OPEN_CASE, Action.FOLLOW_UP):
            assert sender.customer_id is not None and sender.contract_status == "active"
            assert decision.customer_id == sender.customer_id
            assert (case is None) == (decision.action is Action.OPEN_CASE), facts
            assert case is None or case.terminal
        if decision.action is Action.REFUSE:
            assert sender.contract_status != "active", facts
        # A mail that names someone else's case never touches it.
        if case is not None and not sender.staff and sender.customer_id != case.customer_id:
            assert decision.action is Action.HOLD, facts
