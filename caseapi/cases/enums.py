"""Case vocabularies as ``StrEnum`` with stable lowercase values.

The values are stored in the database and appear in the API, so they never change;
new members may be added.
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


class CaseSeverity(StrEnum):
    """The impact a customer understands, derived from type and priority (never stored).

    ``outage``: an incident at P1 (service down or severely impacted); ``degraded``:
    an incident below P1 (intermittent or degraded; P2, or lower if support lowered
    it); ``request``: a general request, whatever its priority (no service impact).
    """

    OUTAGE = "outage"
    DEGRADED = "degraded"
    REQUEST = "request"


class CaseSource(StrEnum):
    PROACTIVE = "proactive"
    API = "api"
    EMAIL = "email"
    PHONE = "phone"


class CaseSubject(StrEnum):
    """What a general request (P3) is about."""

    RFO_REQUEST = "rfo_request"
    ACTIVATION_SUPPORT = "activation_support"
    ENGINEER_DISPATCH = "engineer_dispatch"
    INFORMATION_REQUEST = "information_request"
    SOFTWARE_UPDATE = "software_update"
    OTHER = "other"


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


class EscalationLevel(StrEnum):
    """Who works the case: first line, specialists, product experts / management."""

    L1 = "L1"
    L2 = "L2"
    L3 = "L3"

    @property
    def rank(self) -> int:
        return _LEVELS.index(self)

    def raised(self) -> EscalationLevel:
        """The next level up; ``L3`` stays ``L3``."""
        return _LEVELS[min(self.rank + 1, len(_LEVELS) - 1)]


_LEVELS = (EscalationLevel.L1, EscalationLevel.L2, EscalationLevel.L3)


class CommitmentKind(StrEnum):
    """A promise made to the customer while the case runs."""

    NEXT_UPDATE = "next_update"
    ENGINEER_ON_SITE = "engineer_on_site"
    CALLBACK = "callback"
    OTHER = "other"


class RootCauseCategory(StrEnum):
    """Why it happened, as recorded when the case is solved."""

    ACCESS_CIRCUIT = "access_circuit"
    SUPPLIER = "supplier"
    HARDWARE = "hardware"
    SOFTWARE = "software"
    CONFIGURATION = "configuration"
    POWER = "power"
    CUSTOMER_SIDE = "customer_side"
    PLANNED_WORK = "planned_work"
    UNKNOWN = "unknown"
    NOT_APPLICABLE = "not_applicable"


class CaseEventKind(StrEnum):
    """What a timeline entry records. ``data`` holds the details of each kind."""

    OPENED = "opened"
    STATUS_CHANGED = "status_changed"
    PRIORITY_CHANGED = "priority_changed"
    RESTORED = "restored"
    RECURRED = "recurred"
    REOPENED = "reopened"
    COMMENT_ADDED = "comment_added"
    ESCALATED = "escalated"
    SLA_BREACHED = "sla_breached"
    UNASSIGNED_FLAGGED = "unassigned_flagged"
    ASSIGNED = "assigned"
    HANDED_OFF = "handed_off"
    FIRST_RESPONSE = "first_response"
    COMMITMENT_SET = "commitment_set"
    COMMITMENT_MET = "commitment_met"
    COMMITMENT_MISSED = "commitment_missed"
    CUSTOMER_REPLIED = "customer_replied"
    REMINDER_SENT = "reminder_sent"
    AUTO_CLOSE_HELD = "auto_close_held"
    RFO_PUBLISHED = "rfo_published"
    CLOSED = "closed"
    #: The estimated time of restoration was set, changed or cleared (customer-visible).
    ETR_SET = "etr_set"
    #: A file was attached; ``data["visibility"]`` says whether customers see it.
    ATTACHMENT_ADDED = "attachment_added"
    #: Routing gave the new case its team (internal: customers never see team names).
    TEAM_ASSIGNED = "team_assigned"
    #: Support corrected the case type / subject (customer-visible, with the reason).
    TYPE_CHANGED = "type_changed"
    SUBJECT_CHANGED = "subject_changed"


#: Timeline kinds a customer never sees: how support organises itself.
INTERNAL_EVENT_KINDS = frozenset(
    {
        CaseEventKind.ESCALATED,
        CaseEventKind.UNASSIGNED_FLAGGED,
        CaseEventKind.ASSIGNED,
        CaseEventKind.HANDED_OFF,
        CaseEventKind.AUTO_CLOSE_HELD,
        CaseEventKind.TEAM_ASSIGNED,
    }
)


class NotificationKind(StrEnum):
    """Messages recorded in the outbox for the (later) notification dispatcher."""

    WAITING_CUSTOMER_REMINDER = "waiting_customer_reminder"
    CASE_AUTO_CLOSED = "case_auto_closed"
