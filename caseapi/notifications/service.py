"""Webhook subscriptions and the NOC's delivery view: rules and transactions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.audit import service as audit
from caseapi.audit.enums import AuditAction
from caseapi.auth.principal import Principal
from caseapi.auth.tenancy import ensure_visible, own_customer
from caseapi.clock import Clock
from caseapi.core.database import session_scope
from caseapi.core.secrets import SecretBox, seal_secret
from caseapi.customers.models import Customer
from caseapi.notifications import repository
from caseapi.notifications.addresses import WebhookUrlError
from caseapi.notifications.config import DEFAULT_DISPATCHER
from caseapi.notifications.enums import DeliveryState
from caseapi.notifications.errors import (
    DeliveryNotFoundError,
    WebhookNotFoundError,
    WebhookRequestError,
    WebhookUrlRejectedError,
)
from caseapi.notifications.models import NotificationDelivery, WebhookSubscription
from caseapi.notifications.outbox import backlog
from caseapi.notifications.schemas import (
    DeliveriesPublic,
    DeliveryPublic,
    WebhookCreate,
    WebhookPublic,
    WebhookUpdate,
    WebhookWithSecret,
)
from caseapi.notifications.settings import DispatcherSettings
from caseapi.notifications.signing import new_secret
from caseapi.notifications.transport import (
    ForbiddenAddressError,
    Resolver,
    UnresolvableHostError,
    checked_addresses,
    system_resolver,
)


def _public(row: WebhookSubscription) -> WebhookPublic:
    return WebhookPublic(
        id=row.id,
        customer_id=row.customer_id,
        url=row.url,
        event_types=list(row.event_types or []),
        description=row.description,
        active=row.active,
        previous_secret_expires_at=row.previous_secret_expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class WebhookService:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: DispatcherSettings | None = None,
        resolver: Resolver = system_resolver,
        secrets: SecretBox | None = None,
    ) -> None:
        """Build the service.

        Args:
            sessionmaker: Session factory of the case database.
            clock: Source of ``now``.
            settings: The webhook address policy and rotation overlap.
            resolver: How webhook host names are resolved (tests pass their own).
            secrets: Encrypts the signing secrets before they are stored
                (``None``: stored as given, for a database without a key).
        """
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._settings = settings or DEFAULT_DISPATCHER
        self._resolver = resolver
        self._secrets = secrets

    async def check_url(self, url: str) -> None:
        """Refuse ``url`` unless webhooks may be delivered there now.

        The dispatcher checks again at every connection; this check tells the
        subscriber at once.

        Raises:
            WebhookUrlRejectedError: The rule it breaks, as ``code``.
        """
        policy = self._settings.webhook_policy
        try:
            target = policy.check_url(url)
            await checked_addresses(
                target.host, target.port, policy=policy, resolver=self._resolver
            )
        except WebhookUrlError as exc:
            code = "webhook_host_invalid" if exc.rule == "host" else f"webhook_{exc.rule}_forbidden"
            raise WebhookUrlRejectedError(str(exc), code=code) from None
        except ForbiddenAddressError as exc:
            raise WebhookUrlRejectedError(
                str(exc),
                code="webhook_address_forbidden",
                address=str(exc.address),
                address_class=exc.address_class.value,
            ) from None
        except UnresolvableHostError as exc:
            raise WebhookUrlRejectedError(str(exc), code="webhook_host_unresolvable") from None

    async def create(self, *, principal: Principal, body: WebhookCreate) -> WebhookWithSecret:
        """Subscribe; the response holds the secret, never shown again.

        Raises:
            CustomerMismatchError: A customer naming another customer.
            WebhookRequestError: Staff without ``customer_id``, or an unknown customer.
            WebhookUrlRejectedError: A URL webhooks may not be delivered to.
        """
        customer_id = own_customer(principal, body.customer_id, field="customer_id")
        if customer_id is None:
            raise WebhookRequestError("customer_id is required")
        await self.check_url(str(body.url))
        now = self._clock.now()
        secret = new_secret()
        async with session_scope(self._sessionmaker, write=True) as session:
            if await session.get(Customer, customer_id) is None:
                raise WebhookRequestError(f"unknown customer {customer_id!r}")
            row = WebhookSubscription(
                customer_id=customer_id,
                url=str(body.url),
                event_types=body.event_types,
                description=body.description,
                active=True,
                secret=seal_secret(secret, self._secrets),
                created_by=principal.actor,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            await _audit(session, AuditAction.WEBHOOK_CREATE, row, now, event_types=row.event_types)
            await session.commit()
            return WebhookWithSecret(**_public(row).model_dump(), secret=secret)

    async def list(self, *, principal: Principal, customer_id: str | None) -> list[WebhookPublic]:
        """Subscriptions of ``customer_id`` (all: ``None``); a customer's own only.

        Raises:
            CustomerMismatchError: A customer naming another customer.
        """
        scope = own_customer(principal, customer_id, field="customer_id")
        async with session_scope(self._sessionmaker) as session:
            rows = await repository.list_subscriptions(session, customer_id=scope)
            return [_public(row) for row in rows]

    async def get(self, *, principal: Principal, subscription_id: int) -> WebhookPublic:
        async with session_scope(self._sessionmaker) as session:
            return _public(await self._visible(session, principal, subscription_id))

    async def update(
        self, *, principal: Principal, subscription_id: int, body: WebhookUpdate
    ) -> WebhookPublic:
        if body.url is not None:
            # Resolved before the transaction: a slow DNS answer holds no lock.
            await self.check_url(str(body.url))
        async with session_scope(self._sessionmaker, write=True) as session:
            row = await self._visible(session, principal, subscription_id, lock=True)
            if body.url is not None:
                row.url = str(body.url)
            if body.event_types is not None:
                row.event_types = body.event_types
            if body.description is not None:
                row.description = body.description
            if body.active is not None:
                row.active = body.active
            row.updated_at = self._clock.now()
            await session.flush()
            # Field names only: a webhook URL may carry a token.
            changed = sorted(body.model_dump(exclude_none=True))
            await _audit(session, AuditAction.WEBHOOK_UPDATE, row, row.updated_at, changed=changed)
            await session.commit()
            return _public(row)

    async def delete(self, *, principal: Principal, subscription_id: int) -> None:
        async with session_scope(self._sessionmaker, write=True) as session:
            row = await self._visible(session, principal, subscription_id, lock=True)
            await session.delete(row)
            await _audit(session, AuditAction.WEBHOOK_DELETE, row, self._clock.now())
            await session.commit()

    async def rotate(
        self, *, principal: Principal, subscription_id: int, overlap_seconds: int | None
    ) -> WebhookWithSecret:
        """New secret; the old one keeps signing for the overlap (both are sent)."""
        overlap = (
            self._settings.webhook_rotation_overlap
            if overlap_seconds is None
            else timedelta(seconds=overlap_seconds)
        )
        now = self._clock.now()
        async with session_scope(self._sessionmaker, write=True) as session:
            row = await self._visible(session, principal, subscription_id, lock=True)
            # The stored (sealed) value moves as it is: it opens with the same keys.
            row.previous_secret = row.secret if overlap > timedelta(0) else None
            row.previous_secret_expires_at = now + overlap if overlap > timedelta(0) else None
            secret = new_secret()
            row.secret = seal_secret(secret, self._secrets)
            row.updated_at = now
            await session.flush()
            await _audit(
                session,
                AuditAction.WEBHOOK_ROTATE,
                row,
                now,
                overlap_seconds=overlap.total_seconds(),
            )
            await session.commit()
            return WebhookWithSecret(**_public(row).model_dump(), secret=secret)

    @staticmethod
    async def _visible(
        session: AsyncSession, principal: Principal, subscription_id: int, *, lock: bool = False
    ) -> WebhookSubscription:
        row = await repository.get_subscription(session, subscription_id=subscription_id, lock=lock)
        if row is None:
            raise WebhookNotFoundError(subscription_id)
        ensure_visible(principal, row.customer_id, WebhookNotFoundError(subscription_id))
        return row


async def _audit(
    session: AsyncSession,
    action: AuditAction,
    row: WebhookSubscription,
    at: datetime,
    **details: Any,
) -> None:
    # Never the URL, the description or a secret: ids, names and counts.
    await audit.record(
        session, action, at=at, target_id=row.id, customer_id=row.customer_id, details=details
    )


def _delivery(row: NotificationDelivery, kind: str, **extra: object) -> DeliveryPublic:
    return DeliveryPublic.model_validate(
        {
            "id": row.id,
            "kind": kind,
            "channel": row.channel,
            "target": row.target,
            "state": row.state,
            "attempts": row.attempts,
            "next_attempt_at": row.next_attempt_at,
            "last_attempt_at": row.last_attempt_at,
            "delivered_at": row.delivered_at,
            "last_error": row.last_error,
            "created_at": row.created_at,
            **extra,
        }
    )


class DeliveryService:
    """What the NOC sees of the outbox, and the manual retry of a failed delivery."""

    def __init__(self, *, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock

    async def list(
        self, *, state: DeliveryState | None, customer_id: str | None, limit: int
    ) -> DeliveriesPublic:
        async with session_scope(self._sessionmaker) as session:
            rows = await repository.list_deliveries(
                session, state=state, customer_id=customer_id, limit=limit
            )
            data = [
                _delivery(
                    delivery,
                    notification.kind,
                    event_id=notification.event_id,
                    customer_id=notification.customer_id,
                    case_ref=notification.case_ref,
                )
                for delivery, notification in rows
            ]
            return DeliveriesPublic(data=data, count=len(data), backlog=await backlog(session))

    async def retry(self, *, delivery_id: int) -> None:
        async with session_scope(self._sessionmaker, write=True) as session:
            now = self._clock.now()
            if not await repository.requeue(session, delivery_id=delivery_id, now=now):
                raise DeliveryNotFoundError(delivery_id)
            await audit.record(
                session, AuditAction.NOTIFICATION_RETRY, at=now, target_id=delivery_id
            )
            await session.commit()
