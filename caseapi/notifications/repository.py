"""SQL for the outbox, deliveries and webhook subscriptions (keyword-only arguments)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.core.localtime import first_zone
from caseapi.customers.contacts import (
    DEFAULT_LANGUAGE,
    contact_by_email,
    contacts_of,
    customer_zone,
)
from caseapi.customers.models import Customer
from caseapi.mail.threading import extend_thread, make_message_id, thread_headers
from caseapi.notifications.enums import (
    MAINTENANCE_KINDS,
    REPLY_KINDS,
    Channel,
    DeliveryState,
    NotificationKind,
)
from caseapi.notifications.models import Notification, NotificationDelivery, WebhookSubscription
from caseapi.notifications.render import Envelope
from caseapi.notifications.settings import DispatcherSettings

_TOPIC_UNSAFE = re.compile(r"[+#/\x00]")
#: ``(In-Reply-To, References)`` of a mail; ``(None, ())`` starts a thread.
Thread = tuple[str | None, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    #: As stored (``enc:...`` when encrypted at rest); the channel opens them.
    secrets: tuple[str, ...]

    def __repr__(self) -> str:
        return f"WebhookTarget(url={self.url!r}, secrets=<{len(self.secrets)} hidden>)"


@dataclass(frozen=True, slots=True)
class Job:
    """One claimed delivery, with everything needed to send it (no ORM objects)."""

    delivery_id: int
    #: The claim's fencing token: marks only apply while ``attempts`` still equals it.
    attempt: int
    channel: Channel
    target: str
    envelope: Envelope
    webhook: WebhookTarget | None = None
    #: E-mail: the recipient's language and name (a contact's; else ``en``, none).
    language: str = DEFAULT_LANGUAGE
    recipient_name: str | None = None
    #: E-mail: the recipient's zone (the contact's, else the customer's, else UTC).
    timezone: str = "UTC"
    #: E-mail: the case's thread before this mail.
    thread: Thread = (None, ())


def topic_for(prefix: str, notification: Notification) -> str:
    """The MQTT topic of ``notification`` (see ``caseapi.notifications.channels``)."""

    def part(value: str) -> str:
        return _TOPIC_UNSAFE.sub("_", value) or "_"

    base = f"{prefix}/customers/{part(notification.customer_id)}"
    if notification.kind in MAINTENANCE_KINDS:
        return f"{base}/maintenances/{part(str(notification.data.get('maintenance_id', '')))}"
    if notification.case_ref is not None:
        return f"{base}/cases/{part(notification.case_ref)}"
    ntu = notification.data.get("ntu_id")
    if ntu:
        return f"{base}/ntus/{part(str(ntu))}"
    return f"{base}/events"


async def email_targets(
    session: AsyncSession, notification: Notification, customer: Customer | None
) -> list[str]:
    """Who gets ``notification`` by mail, each address once (any case).

    An answer to a mail (``data["to"]``, the ingest's kinds) goes to those
    addresses only; every other notification to the customer's ``notify``
    contacts and the legacy ``attributes.notify_email`` addresses.
    """
    explicit = (notification.data or {}).get("to")
    if notification.kind == NotificationKind.STAFF_ALERT and not explicit:
        return []  # staff only: never the customer's contacts, also with no address
    if explicit:
        values = [explicit] if isinstance(explicit, str) else list(explicit)
        return sorted({v.strip().lower() for v in values if isinstance(v, str) and "@" in v})
    contacts = await contacts_of(session, customer_id=notification.customer_id, role="notify")
    addresses = [contact.email for contact in contacts]
    seen = set(addresses)
    for address in notify_emails(customer):
        if address.lower() not in seen:
            seen.add(address.lower())
            addresses.append(address)
    return addresses


def notify_emails(customer: Customer | None) -> list[str]:
    """The addresses in ``attributes.notify_email`` (a string or a list of strings)."""
    if customer is None:
        return []
    raw: Any = (customer.attributes or {}).get("notify_email")
    values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    return sorted({value.strip() for value in values if isinstance(value, str) and "@" in value})


async def expand_new(
    session: AsyncSession, *, now: datetime, settings: DispatcherSettings, limit: int
) -> int:
    """Create the deliveries of outbox rows not yet fanned out; return how many rows."""
    stmt = (
        select(Notification)
        .where(Notification.expanded_at.is_(None))
        .order_by(Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    notifications = list((await session.execute(stmt)).scalars())
    for notification in notifications:
        targets: list[tuple[Channel, str]] = []
        if settings.email_enabled:
            customer = await session.get(Customer, notification.customer_id)
            targets.extend(
                (Channel.EMAIL, address)
                for address in await email_targets(session, notification, customer)
            )
        if notification.kind == NotificationKind.STAFF_ALERT:
            # To one member of staff: their e-mail, their own webhook and the staff
            # MQTT topic, never the customer's subscriptions or topics.
            targets.extend(staff_targets(notification, settings))
            notification.expanded_at = now
            await _add_deliveries(session, notification, targets, now)
            continue
        if (notification.data or {}).get("to"):
            # An answer to one person's mail: nothing for webhooks and MQTT.
            notification.expanded_at = now
            await _add_deliveries(session, notification, targets, now)
            continue
        subscriptions = await session.execute(
            select(WebhookSubscription).where(
                WebhookSubscription.customer_id == notification.customer_id,
                WebhookSubscription.active.is_(True),
            )
        )
        for subscription in subscriptions.scalars():
            wanted = subscription.event_types or []
            if not wanted or notification.kind in wanted:
                targets.append((Channel.WEBHOOK, str(subscription.id)))
        if settings.mqtt_enabled:
            targets.append((Channel.MQTT, topic_for(settings.mqtt_topic_prefix, notification)))
        await _add_deliveries(session, notification, targets, now)
        notification.expanded_at = now
    await session.flush()
    return len(notifications)


#: A delivery target that is a member's own webhook URL, not a subscription id.
STAFF_WEBHOOK_PREFIX = "staff:"


def staff_targets(
    notification: Notification, settings: DispatcherSettings
) -> list[tuple[Channel, str]]:
    """A staff alert's webhook (when signed: ``staff_webhook_secret``) and MQTT targets."""
    data = notification.data or {}
    targets: list[tuple[Channel, str]] = []
    webhook = data.get("webhook")
    if isinstance(webhook, str) and webhook and settings.staff_webhook_secret:
        targets.append((Channel.WEBHOOK, STAFF_WEBHOOK_PREFIX + webhook))
    member = data.get("member")
    if data.get("mqtt") and settings.mqtt_enabled and isinstance(member, str) and member:
        safe = _TOPIC_UNSAFE.sub("_", member) or "_"
        targets.append((Channel.MQTT, f"{settings.mqtt_topic_prefix}/staff/{safe}/alerts"))
    return targets


async def _add_deliveries(
    session: AsyncSession,
    notification: Notification,
    targets: list[tuple[Channel, str]],
    now: datetime,
) -> None:
    for channel, target in targets:
        session.add(
            NotificationDelivery(
                notification_id=notification.id,
                channel=channel.value,
                target=target,
                state=DeliveryState.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )


async def claim_due(
    session: AsyncSession,
    *,
    now: datetime,
    claim_timeout: timedelta,
    limit: int,
    sender: str = "noc@localhost",
    staff_secret: str | None = None,
) -> list[Job]:
    """Claim up to ``limit`` due deliveries for ``claim_timeout`` and return them.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets concurrent dispatchers claim
    disjoint rows; on SQLite the caller's ``BEGIN IMMEDIATE`` serialises claims.
    Claiming counts as an attempt, so a delivery that crashes its dispatcher
    still ends ``failed`` after ``max_attempts``.

    Each e-mail job carries its recipient's language and its case's thread: the
    stored one (``caseapi.mail.threading``) extended by the mails claimed before it
    in this batch, so mails sent together still thread one after the other
    (``sender``'s domain makes the Message-IDs). A member's own webhook (a staff
    alert) is signed with ``staff_secret``.
    """
    stmt = (
        select(NotificationDelivery, Notification)
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        .where(
            NotificationDelivery.state == DeliveryState.PENDING.value,
            NotificationDelivery.next_attempt_at <= now,
        )
        .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=NotificationDelivery)
    )
    rows = [(a, b) for a, b in (await session.execute(stmt)).all()]
    jobs: list[Job] = []
    names: dict[str, str] = {}
    zones: dict[str, str | None] = {}
    threads: dict[int, Thread] = {}
    answered: dict[int, Thread] = {}
    for delivery, notification in rows:
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.next_attempt_at = now + claim_timeout
        if notification.customer_id not in names:
            customer = await session.get(Customer, notification.customer_id)
            names[notification.customer_id] = (
                customer.name if customer is not None else notification.customer_id
            )
            zones[notification.customer_id] = customer_zone(customer)
        webhook = None
        if delivery.channel == Channel.WEBHOOK and delivery.target.startswith(STAFF_WEBHOOK_PREFIX):
            if staff_secret:
                webhook = WebhookTarget(
                    url=delivery.target.removeprefix(STAFF_WEBHOOK_PREFIX), secrets=(staff_secret,)
                )
        elif delivery.channel == Channel.WEBHOOK:
            subscription = await session.get(WebhookSubscription, int(delivery.target))
            if subscription is not None and subscription.active:
                webhook = WebhookTarget(
                    url=subscription.url, secrets=active_secrets(subscription, now=now)
                )
        language: str = DEFAULT_LANGUAGE
        recipient: str | None = None
        zone = first_zone(zones[notification.customer_id])
        thread: Thread = (None, ())
        if delivery.channel == Channel.EMAIL:
            contact = await contact_by_email(session, delivery.target)
            if contact is not None:
                language, recipient = contact.language, contact.name or None
                zone = first_zone(contact.timezone, zones[notification.customer_id])
            elif notification.kind == NotificationKind.STAFF_ALERT:
                # A staff alert: the member's language and id (never a customer contact).
                data = notification.data or {}
                language = str(data.get("language") or DEFAULT_LANGUAGE)
                recipient = str(data.get("member") or "") or None
                zone = first_zone(str(data.get("timezone") or ""), zone)
            if notification.id not in answered:
                answered[notification.id] = await _thread(session, notification, threads, sender)
            # Every recipient of one mail gets the same thread (and Message-ID).
            thread = answered[notification.id]
        jobs.append(
            Job(
                delivery_id=delivery.id,
                attempt=delivery.attempts,
                channel=Channel(delivery.channel),
                target=delivery.target,
                webhook=webhook,
                language=language,
                recipient_name=recipient,
                timezone=zone,
                thread=thread,
                envelope=Envelope(
                    event_id=notification.event_id,
                    kind=notification.kind,
                    customer_id=notification.customer_id,
                    customer_name=names[notification.customer_id],
                    case_ref=notification.case_ref,
                    created_at=notification.created_at,
                    data=dict(notification.data or {}),
                    case_id=notification.case_id,
                ),
            )
        )
    await session.flush()
    return jobs


async def _thread(
    session: AsyncSession, notification: Notification, threads: dict[int, Thread], sender: str
) -> Thread:
    """The thread the mail of ``notification`` answers (see ``claim_due``)."""
    data = notification.data or {}
    if notification.case_id is None:
        # An answer outside any case (``request_refused``) answers the mail itself.
        answered = data.get("in_reply_to")
        if notification.kind in REPLY_KINDS and isinstance(answered, str) and answered:
            return answered, (answered,)
        return None, ()
    case_id = notification.case_id
    if case_id not in threads:
        threads[case_id] = await thread_headers(session, case_id=case_id)
    thread = threads[case_id]
    threads[case_id] = extend_thread(thread, make_message_id(notification.event_id, sender))
    return thread


def active_secrets(subscription: WebhookSubscription, *, now: datetime) -> tuple[str, ...]:
    """The secrets to sign with at ``now``: the current one, then the previous one."""
    secrets = [subscription.secret]
    expires = subscription.previous_secret_expires_at
    if subscription.previous_secret and expires is not None and expires > now:
        secrets.append(subscription.previous_secret)
    return tuple(secrets)


async def mark_delivered(
    session: AsyncSession, *, delivery_id: int, attempt: int, now: datetime
) -> bool:
    """Mark a claimed delivery sent; ``False`` if the claim was lost meanwhile."""
    result = await session.execute(
        update(NotificationDelivery)
        .where(
            NotificationDelivery.id == delivery_id,
            NotificationDelivery.attempts == attempt,
            NotificationDelivery.state == DeliveryState.PENDING.value,
        )
        .values(state=DeliveryState.DELIVERED.value, delivered_at=now, last_error=None)
    )
    return bool(getattr(result, "rowcount", 0))


async def mark_attempt_failed(
    session: AsyncSession,
    *,
    delivery_id: int,
    attempt: int,
    error: str,
    retry_at: datetime | None,
) -> bool:
    """Record a failed attempt: retry at ``retry_at``, or ``failed`` when ``None``."""
    values: dict[str, Any] = {"last_error": error[:2000]}
    if retry_at is None:
        values["state"] = DeliveryState.FAILED.value
    else:
        values["next_attempt_at"] = retry_at
    result = await session.execute(
        update(NotificationDelivery)
        .where(
            NotificationDelivery.id == delivery_id,
            NotificationDelivery.attempts == attempt,
            NotificationDelivery.state == DeliveryState.PENDING.value,
        )
        .values(**values)
    )
    return bool(getattr(result, "rowcount", 0))


async def list_deliveries(
    session: AsyncSession, *, state: DeliveryState | None, customer_id: str | None, limit: int
) -> Sequence[tuple[NotificationDelivery, Notification]]:
    """Deliveries (newest first) with their outbox rows, optionally filtered."""
    stmt = select(NotificationDelivery, Notification).join(
        Notification, Notification.id == NotificationDelivery.notification_id
    )
    if state is not None:
        stmt = stmt.where(NotificationDelivery.state == state.value)
    if customer_id is not None:
        stmt = stmt.where(Notification.customer_id == customer_id)
    stmt = stmt.order_by(NotificationDelivery.id.desc()).limit(limit)
    return [(delivery, note) for delivery, note in (await session.execute(stmt)).all()]


async def requeue(session: AsyncSession, *, delivery_id: int, now: datetime) -> bool:
    """Put a ``failed`` delivery back in the queue with a fresh attempt budget."""
    result = await session.execute(
        update(NotificationDelivery)
        .where(
            NotificationDelivery.id == delivery_id,
            NotificationDelivery.state == DeliveryState.FAILED.value,
        )
        .values(state=DeliveryState.PENDING.value, attempts=0, next_attempt_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def list_subscriptions(
    session: AsyncSession, *, customer_id: str | None
) -> list[WebhookSubscription]:
    stmt = select(WebhookSubscription).order_by(WebhookSubscription.id)
    if customer_id is not None:
        stmt = stmt.where(WebhookSubscription.customer_id == customer_id)
    return list((await session.execute(stmt)).scalars())


async def get_subscription(
    session: AsyncSession, *, subscription_id: int, lock: bool = False
) -> WebhookSubscription | None:
    stmt = select(WebhookSubscription).where(WebhookSubscription.id == subscription_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()
