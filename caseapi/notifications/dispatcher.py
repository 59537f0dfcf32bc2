"""The notification dispatcher: outbox -> deliveries -> channels, with retries.

Delivery guarantee: **at-least-once**, with an idempotency key. A message is sent
first and marked afterwards, in a separate transaction; holding a database
transaction open across an SMTP or HTTP exchange would block every writer on
SQLite. So a dispatcher that dies between the receiver's acceptance (SMTP ``250``
after DATA, HTTP 2xx, MQTT PUBACK) and the mark sends that message again after
the claim expires. Every copy carries the same key, the outbox row's ``event_id``:
``Message-ID: <event_id@domain>`` for mail, ``Idempotency-Key`` /
``X-NMS-Event-Id`` for webhooks, user property ``idempotency-key`` and ``id`` for
MQTT. Receivers drop what they have seen. Exactly-once would need the receiver
to take part in our transaction, which SMTP, webhooks and MQTT cannot do.

One pass (``run_once(now)``), each step in its own short write transaction:

1. let each ``OutboxSource`` feed its own outbox in (the cases' waiting-customer
   reminders: ``caseapi.cases.notices.import_reminders``);
2. fan new ``notifications`` out into ``notification_deliveries`` (one per
   address, webhook subscription and MQTT topic; each retried on its own);
3. claim due deliveries (``state = pending``, ``next_attempt_at <= now``) with
   ``FOR UPDATE SKIP LOCKED``: a claim sets ``attempts += 1`` and moves
   ``next_attempt_at`` to ``now + claim_timeout``, so no other dispatcher takes the
   row while this one sends (``claim_timeout`` > ``send_timeout``) and a crashed
   dispatcher's rows come due again by themselves;
4. send them (at most ``concurrency`` at a time) and mark each one: ``delivered``,
   or a retry at ``now + backoff``, or ``failed`` after ``max_attempts`` (or at once
   for a permanent refusal). Marks are fenced by ``attempts``: a dispatcher whose
   claim expired and was taken over cannot overwrite the newer claim's result.

Backoff before retry *n* (n = attempts so far): ``min(cap, base * 2**(n-1))``
scaled by a random factor in [0.5, 1.0] ("equal jitter"), so a receiver coming back
is not hit by every dispatcher at the same instant.

All state is in the database: stopping or killing a dispatcher loses nothing.
Nothing here runs on a request path: requests only ``enqueue``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.clock import Clock
from caseapi.core.database import session_scope
from caseapi.core.secrets import SecretBox
from caseapi.mail.config import MailSettings
from caseapi.mail.threading import record_message_id
from caseapi.notifications import repository
from caseapi.notifications.attachments import AttachmentSource
from caseapi.notifications.channels import (
    EmailChannel,
    MqttPublisher,
    WebhookChannel,
    message_id,
)
from caseapi.notifications.enums import Channel
from caseapi.notifications.errors import DeliveryError, PermanentDeliveryError
from caseapi.notifications.outbox import OutboxSource
from caseapi.notifications.repository import Job
from caseapi.notifications.settings import DispatcherSettings
from caseapi.notifications.transport import Resolver, guarded_client, system_resolver

logger = logging.getLogger(__name__)


def backoff_delay(
    attempts: int, *, base: timedelta, cap: timedelta, rng: Callable[[], float]
) -> timedelta:
    """The wait before the next try after ``attempts`` failures (equal jitter)."""
    if attempts < 1:
        raise ValueError("attempts starts at 1")
    # Cap the exponent first: 2**attempts overflows timedelta for large counts.
    exponent = min(attempts - 1, 40)
    delay = min(cap, base * (1 << exponent))
    factor: float = 0.5 + 0.5 * rng()
    return delay * factor


class NotificationDispatcher:
    """Sends the outbox. Run one or many; they share the work through the database."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: DispatcherSettings,
        clock: Clock,
        rng: Callable[[], float] | None = None,
        http_client: httpx.AsyncClient | None = None,
        name: str | None = None,
        sources: Sequence[OutboxSource] = (),
        attachments: Sequence[AttachmentSource] = (),
        resolver: Resolver = system_resolver,
        secrets: SecretBox | None = None,
        mail: MailSettings | None = None,
    ) -> None:
        """Create a dispatcher.

        Args:
            sessionmaker: Session factory of the case database.
            settings: Channels, retries and limits.
            clock: Source of ``now`` for ``run``.
            rng: Uniform [0, 1) source for the jitter (tests pass a constant).
            http_client: Client for webhooks (default: one per pass that checks
                every connection against ``settings.webhook_policy``).
            name: Used in logs and as the MQTT client id prefix.
            sources: Other outboxes to feed in at the start of every pass.
            attachments: Sources of files for the e-mails (``attachments`` module).
            resolver: How webhook host names are resolved (tests pass their own).
            secrets: Opens the stored webhook secrets (``None``: stored in clear).
            mail: The support mailbox and the templates of the e-mails (``mail.*``).

        Raises:
            ValueError: A broken template file (``mail.templates_dir``).
        """
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.random
        self._http_client = http_client
        self.name = name or f"dispatcher-{uuid.uuid4().hex[:8]}"
        self._email = (
            EmailChannel(settings=settings, attachments=attachments, mail=mail)
            if settings.email_enabled
            else None
        )
        self._sources = tuple(sources)
        self._resolver = resolver
        self._secrets = secrets

    async def run(self, interval: float) -> None:
        """Pass over the outbox every ``interval`` seconds until cancelled."""
        if interval <= 0:
            raise ValueError("interval must be positive")
        while True:
            try:
                sent = await self.run_once(self._clock.now())
            except Exception:
                # The database may be down; the next pass tries again.
                logger.exception("notification dispatcher %s: pass failed", self.name)
                sent = 0
            if sent < self._settings.batch_size:
                await self._clock.sleep(interval)

    async def run_once(self, now: datetime) -> int:
        """One pass at time ``now``; returns how many deliveries were attempted."""
        limit = self._settings.batch_size
        async with session_scope(self._sessionmaker, write=True) as session:
            for source in self._sources:
                await source(session, now=now, limit=limit)
            await repository.expand_new(session, now=now, settings=self._settings, limit=limit)
            await session.commit()
        async with session_scope(self._sessionmaker, write=True) as session:
            jobs = await repository.claim_due(
                session,
                now=now,
                claim_timeout=self._settings.claim_timeout,
                limit=limit,
                sender=self._settings.smtp_from,
                staff_secret=self._settings.staff_webhook_secret,
            )
            await session.commit()
        if jobs:
            await self._send_all(jobs, now)
        return len(jobs)

    async def _send_all(self, jobs: list[Job], now: datetime) -> None:
        semaphore = asyncio.Semaphore(self._settings.concurrency)
        mqtt_jobs = [job for job in jobs if job.channel is Channel.MQTT]
        other_jobs = [job for job in jobs if job.channel is not Channel.MQTT]
        # One recipient's messages go one after the other, in the order they were
        # claimed ("announced" before "cancelled"); recipients go in parallel.
        queues: dict[tuple[Channel, str], list[Job]] = {}
        for job in other_jobs:
            queues.setdefault((job.channel, job.target), []).append(job)
        async with self._http() as client, asyncio.TaskGroup() as group:
            webhooks = WebhookChannel(settings=self._settings, client=client, secrets=self._secrets)
            for (channel, target), queue in queues.items():
                group.create_task(
                    self._deliver_in_order(queue, now, semaphore, webhooks),
                    name=f"notify-{channel}-{target}",
                )
            if mqtt_jobs:
                group.create_task(self._deliver_mqtt(mqtt_jobs, now), name="notify-mqtt")

    @asynccontextmanager
    async def _http(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._http_client is not None:
            yield self._http_client
            return
        async with guarded_client(
            policy=self._settings.webhook_policy, resolver=self._resolver
        ) as client:
            yield client

    async def _deliver_in_order(
        self,
        queue: list[Job],
        now: datetime,
        semaphore: asyncio.Semaphore,
        webhooks: WebhookChannel,
    ) -> None:
        for job in queue:
            await self._deliver(job, now, semaphore, webhooks)

    async def _deliver(
        self, job: Job, now: datetime, semaphore: asyncio.Semaphore, webhooks: WebhookChannel
    ) -> None:
        async with semaphore:
            try:
                async with asyncio.timeout(self._settings.send_timeout):
                    if job.channel is Channel.EMAIL:
                        if self._email is None:
                            raise PermanentDeliveryError(
                                "e-mail is not configured", channel="email", target=job.target
                            )
                        await self._email.send(job)
                    else:
                        await webhooks.send(job, timestamp=int(now.timestamp()))
            except (DeliveryError, TimeoutError) as exc:
                await self._record_failure(job, now, exc)
                return
            await self._mark_delivered(job, now)

    async def _deliver_mqtt(self, jobs: list[Job], now: datetime) -> None:
        try:
            async with (
                asyncio.timeout(self._settings.send_timeout),
                MqttPublisher(
                    settings=self._settings, identifier=f"{self.name}-{uuid.uuid4().hex}"
                ) as publisher,
            ):
                pass_ok = True
                for job in jobs:
                    try:
                        await publisher.send(job)
                    except DeliveryError as exc:
                        pass_ok = False
                        await self._record_failure(job, now, exc)
                        continue
                    await self._mark_delivered(job, now)
                if not pass_ok:
                    logger.warning("notification dispatcher %s: MQTT publish failed", self.name)
        except (DeliveryError, TimeoutError) as exc:
            # Connecting failed (or the whole batch timed out): whatever is not
            # marked yet is retried; marks are fenced, so marked rows stay as they are.
            for job in jobs:
                await self._record_failure(job, now, exc)

    async def _mark_delivered(self, job: Job, now: datetime) -> None:
        """Mark ``job`` delivered (tests inject a crash here: sent but not marked).

        A case mail's Message-ID joins the case's thread in the same transaction
        (``caseapi.mail.threading``; recording it twice changes nothing).
        """
        async with session_scope(self._sessionmaker, write=True) as session:
            marked = await repository.mark_delivered(
                session, delivery_id=job.delivery_id, attempt=job.attempt, now=now
            )
            if job.channel is Channel.EMAIL and job.envelope.case_id is not None:
                await record_message_id(
                    session,
                    case_id=job.envelope.case_id,
                    message_id=message_id(job.envelope.event_id, self._settings.smtp_from),
                    direction="out",
                    at=now,
                )
            await session.commit()
        if not marked:
            logger.warning(
                "notification %s delivery %d: claim lost before the mark (sent again elsewhere)",
                job.envelope.event_id,
                job.delivery_id,
            )

    async def _record_failure(self, job: Job, now: datetime, exc: BaseException) -> None:
        error = str(exc) or type(exc).__name__
        permanent = isinstance(exc, PermanentDeliveryError)
        if permanent or job.attempt >= self._settings.max_attempts:
            retry_at = None
        else:
            retry_at = now + backoff_delay(
                job.attempt,
                base=self._settings.backoff_base,
                cap=self._settings.backoff_cap,
                rng=self._rng,
            )
        async with session_scope(self._sessionmaker, write=True) as session:
            await repository.mark_attempt_failed(
                session,
                delivery_id=job.delivery_id,
                attempt=job.attempt,
                error=error,
                retry_at=retry_at,
            )
            await session.commit()
        logger.warning(
            "notification %s delivery %d (%s) attempt %d failed%s: %s",
            job.envelope.event_id,
            job.delivery_id,
            job.channel,
            job.attempt,
            "" if retry_at is None else f", retry at {retry_at.isoformat()}",
            error,
        )
