"""The notification outbox, its per-channel deliveries and webhook subscriptions.

``notifications`` is the outbox proper: one row per customer-facing event, written by
``enqueue`` in the transaction of the change. The dispatcher fans each row out into
``notification_deliveries`` (one per e-mail address, webhook subscription and MQTT
topic), and each delivery carries its own retry state, so a broken webhook never
makes a mail go out twice. Like ``cases.customer_id``, ``customer_id`` and
``case_id`` carry no foreign key: a notification outlives inventory changes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import ACTOR_LENGTH, Base, UTCDateTime

KIND_LENGTH = 40
#: A 49-character secret encrypted: 4 + 164 characters; room for longer tokens.
SECRET_LENGTH = 400


class Notification(Base):
    """One customer-facing event waiting to be (or already) fanned out."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The idempotency key every channel sends (Message-ID, Idempotency-Key, MQTT).
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    case_id: Mapped[int | None] = mapped_column(Integer, index=True)
    case_ref: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(KIND_LENGTH))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Set once the deliveries exist; ``NULL`` rows are the dispatcher's to expand.
    expanded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class NotificationDelivery(Base):
    """One message to one destination, with its retry state."""

    __tablename__ = "notification_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    #: E-mail address, webhook subscription id or MQTT topic.
    target: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(16))
    #: Claims so far; also the fencing token of the current claim.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: When the row is next due: the retry time, or the end of the current claim.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("notification_id", "channel", "target"),
        Index("ix_notification_deliveries_due", "state", "next_attempt_at"),
    )


class WebhookSubscription(Base):
    """A customer's HTTPS endpoint and the event types it wants.

    The dispatcher needs the secrets themselves to sign, so they are stored
    encrypted (``enc:<Fernet token>``, ``caseapi.core.secrets``) where a secret key
    is configured, else as given; the API shows each one once, when it is created.
    """

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    #: Notification kinds to send; empty means every kind.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    secret: Mapped[str] = mapped_column(String(SECRET_LENGTH))
    #: The secret before the last rotation, still signed with until it expires.
    previous_secret: Mapped[str | None] = mapped_column(String(SECRET_LENGTH))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
