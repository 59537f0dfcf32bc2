"""What the portal's pages show, shaped from the services' customer views.

Nothing here decides what a customer may see: the case is ``CaseCustomerView``, the
timeline the service's customer timeline (``CaseService.get_timeline_for``) as
``CaseEventPublic.from_event(for_customer=True)``, the RFO the service's published
version. These helpers only word and group what those gave.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from caseapi.cases.enums import (
    TERMINAL_STATUSES,
    WORKING_STATUSES,
    CaseEventKind,
    CaseStatus,
)
from caseapi.cases.schemas import CaseEventPublic, CommitmentPublic
from caseapi.rfo.render import (
    format_value,
    format_when_short,
    impact_rows,
    preventive_text,
    text_or_placeholder,
    zone_note,
)
from caseapi.rfo.schemas import RfoPublic


class CaseState(StrEnum):
    """The portal's three groups of cases."""

    OPEN = "open"
    SOLVED = "solved"
    CLOSED = "closed"


#: The statuses of each group: worked, solved (monitoring window / RFO to come), ended.
STATE_STATUSES: Final[dict[CaseState, tuple[CaseStatus, ...]]] = {
    CaseState.OPEN: tuple(sorted(WORKING_STATUSES)),
    CaseState.SOLVED: (CaseStatus.SOLVED, CaseStatus.RFO_PENDING),
    CaseState.CLOSED: tuple(sorted(TERMINAL_STATUSES)),
}
STATE_TITLES: Final = {
    CaseState.OPEN: "Open",
    CaseState.SOLVED: "Solved (in monitoring or awaiting the RFO)",
    CaseState.CLOSED: "Closed",
}

#: Status words a customer reads.
STATUS_TEXT: Final = {
    CaseStatus.NEW: "New",
    CaseStatus.IN_PROGRESS: "In progress",
    CaseStatus.WAITING_CUSTOMER: "Waiting for your reply",
    CaseStatus.WAITING_SUPPLIER: "Waiting on our supplier",
    CaseStatus.SOLVED: "Solved",
    CaseStatus.RFO_PENDING: "Solved, RFO in preparation",
    CaseStatus.CLOSED: "Closed",
    CaseStatus.CANCELLED: "Cancelled",
    CaseStatus.MERGED: "Merged",
}

#: Timeline entries by kind; kinds not listed show their name in words.
_KIND_TEXT: Final = {
    CaseEventKind.COMMENT_ADDED: "Message",
}


def status_text(status: CaseStatus | str) -> str:
    """``waiting_customer`` -> ``Waiting for your reply``."""
    try:
        return STATUS_TEXT[CaseStatus(status)]
    except ValueError:
        return str(status).replace("_", " ").capitalize()


def actor_text(actor: str) -> str:
    """Who did it, as the customer reads it: their own contacts by name, else Support.

    Timeline actors are ``role:name``; the customer learns no engineer's name.
    """
    role, _, name = actor.partition(":")
    if role == "customer" and name:
        return name
    return "Support"


@dataclass(frozen=True, slots=True)
class TimelineLine:
    """One public timeline entry, worded."""

    at: datetime
    who: str
    what: str
    #: A message's text or a change's reason (the customer view's own data).
    text: str | None
    kind: str


def timeline_lines(events: Iterable[CaseEventPublic]) -> list[TimelineLine]:
    """The customer timeline's entries as the page lists them (oldest first)."""
    return [_line(event) for event in events]


def _line(event: CaseEventPublic) -> TimelineLine:
    data: dict[str, Any] = event.data
    what = _KIND_TEXT.get(event.kind, event.kind.replace("_", " ").capitalize())
    if event.kind in (CaseEventKind.STATUS_CHANGED, CaseEventKind.REOPENED) and data.get("to"):
        what = f"Status: {status_text(str(data['to']))}"
    body = data.get("body")
    reason = data.get("reason")
    text = body if isinstance(body, str) else (reason if isinstance(reason, str) else None)
    return TimelineLine(
        at=event.at, who=actor_text(event.actor), what=what, text=text or None, kind=event.kind
    )


def current_commitment(commitments: Sequence[CommitmentPublic]) -> CommitmentPublic | None:
    """The promise support is keeping now: the earliest one neither met nor missed."""
    pending = [c for c in commitments if c.met_at is None and c.missed_at is None]
    return min(pending, key=lambda c: c.due_at, default=None)


@dataclass(frozen=True, slots=True)
class RfoDocument:
    """A published RFO as the page shows it (texts in the reader's zone)."""

    version: int
    published_at: datetime | None
    summary: str
    incident_ref: str | None
    zone_note: str
    impact: list[tuple[str, str]]
    timeline: list[tuple[str, str]]
    root_cause_category: str
    root_cause: str
    corrective_actions: str
    preventive_actions: str


def rfo_document(rfo: RfoPublic, zone: str | None) -> RfoDocument:
    """The RFO's sections, worded by the same helpers as its Markdown and PDF."""
    dump = rfo.model_dump(mode="json")
    facts = dump["facts"]
    return RfoDocument(
        version=rfo.version,
        published_at=rfo.published_at,
        summary=str(facts.get("summary") or ""),
        incident_ref=facts.get("incident_ref"),
        zone_note=zone_note(zone),
        impact=impact_rows(facts, zone),
        timeline=[
            (format_when_short(entry["at"], zone), str(entry["description"]))
            for entry in facts["timeline"]
        ],
        root_cause_category=format_value(dump["root_cause_category"]),
        root_cause=text_or_placeholder(dump["root_cause"]),
        corrective_actions=text_or_placeholder(dump["corrective_actions"]),
        preventive_actions=preventive_text(dump),
    )
