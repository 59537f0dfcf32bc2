"""Notification vocabularies as ``StrEnum`` with stable lowercase values.

The values are stored in the database, appear in webhook ``event_types`` filters and
in every message sent, so they never change; new members may be added.
"""

from __future__ import annotations

from enum import StrEnum


class NotificationKind(StrEnum):
    """What a message tells the customer; each kind has an email template."""

    CASE_OPENED = "case_opened"
    PUBLIC_UPDATE = "public_update"
    CASE_SOLVED = "case_solved"
    RFO_PUBLISHED = "rfo_published"
    CASE_CLOSED = "case_closed"
    WAITING_CUSTOMER_REMINDER = "waiting_customer_reminder"
    MAINTENANCE_ANNOUNCED = "maintenance_announced"
    MAINTENANCE_REMINDER = "maintenance_reminder"
    MAINTENANCE_STARTED = "maintenance_started"
    MAINTENANCE_COMPLETED = "maintenance_completed"
    MAINTENANCE_CANCELLED = "maintenance_cancelled"
    #: The estimated time of restoration of a case was set, changed or cleared.
    ETR_UPDATED = "etr_updated"
    #: Answers to a customer's mail (the mail ingest): a new case was opened for it.
    CASE_ACKNOWLEDGED = "case_acknowledged"
    #: Answers to a customer's mail: no case, the contract is expired or unpaid.
    REQUEST_REFUSED = "request_refused"
    #: Answers to a customer's mail: a reply to a closed case opened a new one.
    FOLLOW_UP_OPENED = "follow_up_opened"
    #: To support staff, never to a customer: an on-call or escalation alert
    #: (``caseapi.oncall``), sent to ``data["to"]`` only.
    STAFF_ALERT = "staff_alert"


MAINTENANCE_KINDS = frozenset(
    {
        NotificationKind.MAINTENANCE_ANNOUNCED,
        NotificationKind.MAINTENANCE_REMINDER,
        NotificationKind.MAINTENANCE_STARTED,
        NotificationKind.MAINTENANCE_COMPLETED,
        NotificationKind.MAINTENANCE_CANCELLED,
    }
)

#: Kinds about no case (no reference, no thread of a case).
NO_CASE_KINDS = frozenset({NotificationKind.REQUEST_REFUSED})
#: Kinds that answer a customer's mail (``Auto-Submitted: auto-replied``).
REPLY_KINDS = frozenset(
    {
        NotificationKind.CASE_ACKNOWLEDGED,
        NotificationKind.REQUEST_REFUSED,
        NotificationKind.FOLLOW_UP_OPENED,
    }
)


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"
    MQTT = "mqtt"


class DeliveryState(StrEnum):
    """``pending`` until sent (retries included), then ``delivered`` or ``failed``."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
