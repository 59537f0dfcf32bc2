"""Case vocabularies as ``StrEnum`` with stable lowercase values.

The values are stored in the database and appear in the API, so they never change;
new members may be added. ``CaseStatus`` already lists the whole lifecycle, including
states that later issues will start using.
"""

from __future__ import annotations

from enum import StrEnum


class CaseType(StrEnum):
    INCIDENT = "incident"
    GENERAL_REQUEST = "general_request"


class CasePriority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class CaseSource(StrEnum):
    PROACTIVE = "proactive"
    API = "api"
    EMAIL = "email"
    PHONE = "phone"


class CaseStatus(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    WAITING_CUSTOMER = "waiting_customer"
    WAITING_SUPPLIER = "waiting_supplier"
    SOLVED = "solved"
    RFO_PENDING = "rfo_pending"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    MERGED = "merged"

    @property
    def is_terminal(self) -> bool:
        """Whether the case is finished for good (never reopened, rule 6)."""
        return self in TERMINAL_STATUSES


#: Statuses that end a case. The partial unique index on ``cases.dedup_key`` covers
#: every other status, so at most one non-terminal case exists per dedup key.
TERMINAL_STATUSES = frozenset({CaseStatus.CLOSED, CaseStatus.CANCELLED, CaseStatus.MERGED})

#: Open statuses in which the outage is still being worked: a restoration solves them.
WORKING_STATUSES = frozenset(
    {
        CaseStatus.NEW,
        CaseStatus.IN_PROGRESS,
        CaseStatus.WAITING_CUSTOMER,
        CaseStatus.WAITING_SUPPLIER,
    }
)


class CaseEventKind(StrEnum):
    """What a timeline entry records. ``data`` holds the details of each kind."""

    OPENED = "opened"
    STATUS_CHANGED = "status_changed"
    PRIORITY_CHANGED = "priority_changed"
    RESTORED = "restored"
    RECURRED = "recurred"
    COMMENT_ADDED = "comment_added"
    ESCALATED = "escalated"
    RFO_PUBLISHED = "rfo_published"
    CLOSED = "closed"
