"""What an inbound mail does, decided from facts (pure, no I/O).

The ingest (``caseapi.mail.ingest``) looks up the facts - the case the mail names
(by ``[CS-...]`` in its subject, else by ``In-Reply-To`` / ``References`` against the
Message-IDs of a case's thread), who its sender is (staff, a customer's contact, or
nobody we know), that customer's contract - and ``decide`` turns them into one
``Decision``. The rules, first match wins:

1. A bounce (delivery status notification) marks our delivery failed: ``BOUNCE``.
   Loops, auto-replies and bulk mail are ``IGNORE``d: never answered, never a
   comment, even when they name a case (two systems mailing each other stop here).
2. Too large, no sender address, or over the sender's rate limit: ``HOLD``.
3. A mail that names a case:
   - from staff: a public staff comment (the first response, if none yet); on a
     finished case ``HOLD`` (``case_closed``: closed stays terminal);
   - from a contact of the case's customer: a customer comment (it resumes a case
     waiting on the customer); on a finished case a ``FOLLOW_UP`` case linked to it,
     unless the contract refuses support (``REFUSE``);
   - from anyone else (another customer's contact, an unknown address): ``HOLD``
     (``sender_not_contact``: possibly spoofed).
4. A ``[CS-...]`` reference that matches no case: ``HOLD`` (``unknown_case_ref``).
5. A new mail from a contact: ``OPEN_CASE``, or ``REFUSE`` when the contract is
   expired or unpaid; from staff: ``HOLD`` (``staff_without_case``: which customer?);
   from an unknown sender: ``HOLD`` (``unknown_sender``).

Nothing is ever dropped silently: every decision carries a reason code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from caseapi.mail.classify import AutoKind

ACTIVE_CONTRACT: Final = "active"
#: contract_status -> the refusal's reason code (the API's 403 codes).
REFUSAL_REASONS: Final = {"expired": "contract_expired", "unpaid": "account_suspended_unpaid"}


class Action(StrEnum):
    OPEN_CASE = "open_case"
    COMMENT = "comment"
    FOLLOW_UP = "follow_up"
    HOLD = "hold"
    IGNORE = "ignore"
    REFUSE = "refuse"
    BOUNCE = "bounce"


class Reason(StrEnum):
    """Why a mail was decided as it was (stored with it, shown to staff)."""

    CASE_OPENED = "case_opened"
    COMMENTED = "commented"
    FOLLOW_UP_OPENED = "follow_up_opened"
    BOUNCE = "bounce"
    #: A bounce of no mail we know of (or of one already marked failed).
    BOUNCE_UNMATCHED = "bounce_unmatched"
    LOOP = "loop"
    AUTO_REPLY = "auto_reply"
    BULK = "bulk"
    TOO_LARGE = "too_large"
    NO_SENDER = "no_sender"
    RATE_LIMITED = "rate_limited"
    SENDER_NOT_CONTACT = "sender_not_contact"
    UNKNOWN_SENDER = "unknown_sender"
    UNKNOWN_CASE_REF = "unknown_case_ref"
    STAFF_WITHOUT_CASE = "staff_without_case"
    CASE_CLOSED = "case_closed"
    CONTRACT_EXPIRED = "contract_expired"
    ACCOUNT_SUSPENDED_UNPAID = "account_suspended_unpaid"
    UNPARSEABLE = "unparseable"
    #: What the mail asked for was refused by a rule (the note says which).
    INGEST_FAILED = "ingest_failed"


#: What a held reason tells staff (the held list shows it next to the code).
HELD_NOTES: Final[dict[Reason, str]] = {
    Reason.TOO_LARGE: "larger than mail.max_size: only its headers and first KB are kept",
    Reason.NO_SENDER: "no usable From address",
    Reason.RATE_LIMITED: "the sender sent more than mail.rate_limit mails",
    Reason.SENDER_NOT_CONTACT: "the sender is not a contact of the case's customer",
    Reason.UNKNOWN_SENDER: "the sender is neither a customer contact nor staff",
    Reason.UNKNOWN_CASE_REF: "the subject names a case reference that does not exist",
    Reason.STAFF_WITHOUT_CASE: "a staff mail that names no case",
    Reason.CASE_CLOSED: "a staff mail on a finished case",
    Reason.UNPARSEABLE: "not a readable e-mail message",
    Reason.INGEST_FAILED: "what the mail asked for was refused",
}


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """The case a mail names."""

    id: int
    ref: str
    customer_id: str | None
    terminal: bool


@dataclass(frozen=True, slots=True)
class SenderFacts:
    """Who sent the mail: staff, a contact of ``customer_id``, or nobody known."""

    address: str
    staff: bool = False
    customer_id: str | None = None
    contract_status: str | None = None


@dataclass(frozen=True, slots=True)
class MailFacts:
    """Everything ``decide`` needs."""

    auto: AutoKind
    sender: SenderFacts
    case: CaseFacts | None = None
    #: The subject names a ``[CS-...]`` reference (found or not).
    names_ref: bool = False
    too_large: bool = False
    rate_limited: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: Reason
    #: The case commented on, followed up, or (ignored mail) merely named.
    case: CaseFacts | None = None
    #: The customer a case is opened for or refused to.
    customer_id: str | None = None
    #: Comment as staff (public staff reply) rather than as the customer.
    as_staff: bool = False


_IGNORED: Final = {
    AutoKind.LOOP: Reason.LOOP,
    AutoKind.AUTO_REPLY: Reason.AUTO_REPLY,
    AutoKind.BULK: Reason.BULK,
}


def refusal_reason(contract_status: str | None) -> Reason | None:
    """The refusal of a customer in ``contract_status`` (``None``: support is given).

    Anything but ``active`` refuses; an unknown status as expired (fail closed).
    """
    if contract_status == ACTIVE_CONTRACT:
        return None
    return Reason(REFUSAL_REASONS.get(contract_status or "", "contract_expired"))


def _hold(reason: Reason, case: CaseFacts | None = None) -> Decision:
    return Decision(Action.HOLD, reason, case=case)


def decide(facts: MailFacts) -> Decision:
    """The one thing to do with a mail (see the module docstring for the rules)."""
    if facts.auto is AutoKind.BOUNCE:
        return Decision(Action.BOUNCE, Reason.BOUNCE, case=facts.case)
    if facts.auto in _IGNORED:
        return Decision(Action.IGNORE, _IGNORED[facts.auto], case=facts.case)
    if facts.too_large:
        return _hold(Reason.TOO_LARGE, facts.case)
    sender = facts.sender
    if not sender.address:
        return _hold(Reason.NO_SENDER, facts.case)
    if facts.rate_limited:
        return _hold(Reason.RATE_LIMITED, facts.case)
    case = facts.case
    if case is not None:
        return _on_case(case, sender)
    if facts.names_ref:
        return _hold(Reason.UNKNOWN_CASE_REF)
    if sender.staff:
        return _hold(Reason.STAFF_WITHOUT_CASE)
    if sender.customer_id is None:
        return _hold(Reason.UNKNOWN_SENDER)
    refused = refusal_reason(sender.contract_status)
    if refused is not None:
        return Decision(Action.REFUSE, refused, customer_id=sender.customer_id)
    return Decision(Action.OPEN_CASE, Reason.CASE_OPENED, customer_id=sender.customer_id)


def _on_case(case: CaseFacts, sender: SenderFacts) -> Decision:
    if sender.staff:
        if case.terminal:
            return _hold(Reason.CASE_CLOSED, case)
        return Decision(Action.COMMENT, Reason.COMMENTED, case=case, as_staff=True)
    if sender.customer_id is None or sender.customer_id != case.customer_id:
        return _hold(Reason.SENDER_NOT_CONTACT, case)
    if not case.terminal:
        return Decision(Action.COMMENT, Reason.COMMENTED, case=case, customer_id=case.customer_id)
    refused = refusal_reason(sender.contract_status)
    if refused is not None:
        return Decision(Action.REFUSE, refused, case=case, customer_id=sender.customer_id)
    return Decision(
        Action.FOLLOW_UP, Reason.FOLLOW_UP_OPENED, case=case, customer_id=sender.customer_id
    )
