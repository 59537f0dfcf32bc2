"""Dispatcher against a real SMTP server (aiosmtpd) and the machine's Mosquitto."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import select

from caseapi.auth.principal import Principal, Role
from caseapi.cases.models import Case, CaseEvent, CaseNotification
from caseapi.cases.notices import import_reminders, on_case_event
from caseapi.comments.models import Visibility
from caseapi.comments.service import CommentService
from caseapi.incidents import IncidentService
from caseapi.notifications.config import DEFAULT_DISPATCHER
from caseapi.notifications.dispatcher import NotificationDispatcher, backoff_delay
from caseapi.notifications.models import Notification, NotificationDelivery
from caseapi.notifications.outbox import backlog, enqueue
from caseapi.notifications.repository import Job
from caseapi.notifications.settings import DispatcherSettings
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database, incident
from tests.caseapi.notification_fixtures import (
    MQTT_HOST,
    MQTT_PORT,
    SmtpSink,
    add_customer_with_email,
    mqtt_prefix_fixture,  # noqa: F401
    outbox_rows,
    smtp_sink_fixture,  # noqa: F401
)

FROM = "noc@nms.example"


def settings_for(smtp: SmtpSink | None = None, **overrides: Any) -> DispatcherSettings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1" if smtp else None,
        "smtp_port": smtp.port if smtp else 25,
        "smtp_from": FROM,
        "send_timeout": 15.0,
        "claim_timeout": timedelta(seconds=30),
        "backoff_base": timedelta(seconds=10),
        "backoff_cap": timedelta(seconds=60),
    }
    values.update(overrides)
    return replace(DEFAULT_DISPATCHER, **values)


def dispatcher(database: Database, clock: FakeClock, settings: DispatcherSettings) -> Any:
    return NotificationDispatcher(
        sessionmaker=database.sessionmaker,
        settings=settings,
        clock=clock,
        rng=lambda: 1.0,
        sources=(import_reminders,),
    )


async def open_case(incidents: IncidentService, database: Database, ntu: str = "ntu-1") -> Case:
    ref = await incidents.open_incident(incident(ntu))
    async with database.sessionmaker() as session:
        case = (await session.execute(select(Case).where(Case.ref == ref))).scalar_one()
        return case


async def deliveries(database: Database) -> list[NotificationDelivery]:
    async with database.sessionmaker() as session:
        rows = await session.execute(select(NotificationDelivery).order_by(NotificationDelivery.id))
        return list(rows.scalars())


async def test_mail_and_mqtt_carry_reference_status_and_times(
    database: Database,
    incidents: IncidentService,
    clock: FakeClock,
    smtp_sink: SmtpSink,
    mqtt_prefix: str,
) -> None:
    await add_customer_with_email(database.sessionmaker, "cust-1", "ops@cust1.example")
    case = await open_case(incidents, database)  # the lifecycle hook enqueues case_opened
    assert await outbox_rows(database.sessionmaker) == [("case_opened", case.ref)]
    settings = settings_for(
        smtp_sink, mqtt_url=f"mqtt://{MQTT_HOST}:{MQTT_PORT}", mqtt_topic_prefix=mqtt_prefix
    )
    async with aiomqtt.Client(
        MQTT_HOST, MQTT_PORT, protocol=aiomqtt.ProtocolVersion.V5, timeout=5
    ) as sub:
        await sub.subscribe(f"{mqtt_prefix}/#", qos=1)
        assert await dispatcher(database, clock, settings).run_once(START) == 2
        async with asyncio.timeout(5):
            message = await anext(aiter(sub.messages))

    async with database.sessionmaker() as session:
        event_id = (await session.execute(select(Notification.event_id))).scalar_one()
    # MQTT: topic tree, QoS 1, idempotency key as a user property and in the payload.
    assert str(message.topic) == f"{mqtt_prefix}/customers/cust-1/cases/{case.ref}"
    assert message.qos == 1
    assert message.properties is not None
    assert ("idempotency-key", event_id) in getattr(message.properties, "UserProperty", [])
    assert isinstance(message.payload, bytes)
    payload = json.loads(message.payload)
    assert payload["id"] == event_id and payload["type"] == "case_opened"
    assert payload["data"]["ref"] == case.ref and payload["data"]["status"] == "new"
    assert payload["data"]["outage_start"] == "2026-03-01T11:50:00+00:00"
    assert "dedup_key" not in payload["data"]

    # Mail: one message to the customer's address, reference/status/UTC times in it.
    assert smtp_sink.recipients == [["ops@cust1.example"]]
    mail = smtp_sink.messages[0]
    assert mail["Subject"] == f"[{case.ref}] Case opened - status: new"
    assert mail["Message-ID"] == f"<{event_id}@nms.example>"
    assert mail["From"] == FROM
    parts = {part.get_content_type(): part for part in mail.walk()}
    text = bytes(parts["text/plain"].get_payload(decode=True)).decode()
    html = bytes(parts["text/html"].get_payload(decode=True)).decode()
    times = ("1 March 2026, 11:50 (UTC)", "1 March 2026, 12:00 (UTC)")  # no zone set: UTC
    for expected in (case.ref, "Status: new", *times):
        assert expected in text, expected
    assert case.ref in html
    assert "What is next:" in text
    assert all(row.state == "delivered" for row in await deliveries(database))


async def test_smtp_outage_is_retried_with_backoff_until_delivered(
    database: Database,
    incidents: IncidentService,
    clock: FakeClock,
    smtp_sink: SmtpSink,
) -> None:
    await add_customer_with_email(database.sessionmaker, "cust-1", "ops@cust1.example")
    case = await open_case(incidents, database)  # the lifecycle hook enqueues case_opened
    assert await outbox_rows(database.sessionmaker) == [("case_opened", case.ref)]
    smtp_sink.stop()
    sender = dispatcher(database, clock, settings_for(smtp_sink))

    assert await sender.run_once(START) == 1
    [row] = await deliveries(database)
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == START + timedelta(seconds=10)  # base * 2**0, rng=1.0
    assert row.last_error
    assert await sender.run_once(START + timedelta(seconds=5)) == 0  # not due yet
    assert await sender.run_once(START + timedelta(seconds=10)) == 1
    [row] = await deliveries(database)
    assert (row.attempts, row.next_attempt_at) == (2, START + timedelta(seconds=30))

    smtp_sink.start()  # the server is back
    assert await sender.run_once(START + timedelta(seconds=30)) == 1
    [row] = await deliveries(database)
    assert (row.state, row.attempts) == ("delivered", 3)
    assert len(smtp_sink.messages) == 1 and case.ref in smtp_sink.messages[0]["Subject"]
    async with database.sessionmaker() as session:
        assert await backlog(session) == {"pending": 0, "delivered": 1, "failed": 0, "new": 0}


async def test_dispatcher_killed_after_data_before_mark_redelivers_same_message_id(
    database: Database,
    incidents: IncidentService,
    clock: FakeClock,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await add_customer_with_email(database.sessionmaker, "cust-1", "ops@cust1.example")
    # Each opened case enqueues its case_opened notification through the lifecycle hook.
    refs = [(await open_case(incidents, database, f"ntu-{n}")).ref for n in range(3)]
    assert await outbox_rows(database.sessionmaker) == [("case_opened", ref) for ref in refs]
    settings = settings_for(smtp_sink)
    first = dispatcher(database, clock, settings)
    sent_not_marked: list[int] = []
    first_sent = asyncio.Event()

    async def crash_at_mark(job: Job, now: Any) -> None:
        # The SMTP server has accepted DATA; the process "dies" before the mark. One
        # recipient's messages go in order, so this blocks the other two behind it.
        sent_not_marked.append(job.delivery_id)
        first_sent.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(first, "_mark_delivered", crash_at_mark)
    task = asyncio.create_task(first.run_once(START))
    async with asyncio.timeout(10):
        await first_sent.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(smtp_sink.messages) == 1
    assert {row.state for row in await deliveries(database)} == {"pending"}

    # A restarted dispatcher must not take the rows while the dead one's claim lasts...
    second = dispatcher(database, clock, settings)
    assert await second.run_once(START + timedelta(seconds=10)) == 0
    # ...and sends them again once it expired: at-least-once, still in order.
    assert await second.run_once(START + settings.claim_timeout) == 3
    assert {row.state for row in await deliveries(database)} == {"delivered"}

    ids = [message["Message-ID"] for message in smtp_sink.messages]
    async with database.sessionmaker() as session:
        event_ids = list(
            (
                await session.execute(select(Notification.event_id).order_by(Notification.id))
            ).scalars()
        )
    # Four deliveries of three rows, one distinct Message-ID per outbox row (the
    # receiver dedupes by it): the first twice, and every row in the order written.
    expected = [f"<{event_id}@nms.example>" for event_id in event_ids]
    assert ids == [expected[0], *expected]


async def test_lifecycle_hook_and_legacy_outbox_feed_the_dispatcher(
    database: Database,
    incidents: IncidentService,
    clock: FakeClock,
    smtp_sink: SmtpSink,
) -> None:
    await add_customer_with_email(database.sessionmaker, "cust-1", "ops@cust1.example")
    # The timeline hook (``store.record_event`` -> ``on_case_event``): opening the case
    # and a public staff comment enqueue; an internal note and a customer's own
    # reply do not.
    case = await open_case(incidents, database)
    comments = CommentService(sessionmaker=database.sessionmaker, clock=clock)
    engineer = Principal(key_id=None, name="x", role=Role.ENGINEER)
    customer = Principal(key_id=None, name="c", role=Role.CUSTOMER, customer_id="cust-1")
    await comments.add_comment(
        principal=engineer,
        ref=case.ref,
        body="secret supplier notes",
        visibility=Visibility.INTERNAL,
    )
    await comments.add_comment(
        principal=engineer,
        ref=case.ref,
        body="The line card is replaced.",
        visibility=Visibility.PUBLIC,
    )
    await comments.add_comment(
        principal=customer, ref=case.ref, body="thanks", visibility=Visibility.PUBLIC
    )
    assert await outbox_rows(database.sessionmaker) == [
        ("case_opened", case.ref),
        ("public_update", case.ref),
    ]
    async with database.sessionmaker() as session:
        # Even a timeline entry that carried an internal body enqueues nothing.
        internal = CaseEvent(
            case_id=case.id,
            at=START,
            kind="comment_added",
            actor="engineer:x",
            data={"visibility": "internal", "body": "secret supplier notes"},
        )
        await on_case_event(session, case=case, event=internal)
        # What the lifecycle writes today for the waiting-on-customer reminder.
        session.add(
            CaseNotification(
                case_id=case.id,
                kind="waiting_customer_reminder",
                created_at=START,
                data={
                    "waiting_since": "2026-02-27T12:00:00+00:00",
                    "closes_at": "2026-03-03T12:00:00+00:00",
                },
            )
        )
        await session.commit()
        with pytest.raises(ValueError, match="internal"):
            await enqueue(
                session,
                case_id=case.id,
                customer_id="cust-1",
                kind="public_update",
                data={"visibility": "internal", "body": "x"},
            )
    assert len(await outbox_rows(database.sessionmaker)) == 2

    assert await dispatcher(database, clock, settings_for(smtp_sink)).run_once(START) == 3
    assert (await outbox_rows(database.sessionmaker))[-1] == ("waiting_customer_reminder", case.ref)
    subjects = sorted(message["Subject"] for message in smtp_sink.messages)
    assert subjects == sorted(
        [
            f"[{case.ref}] Case opened - status: new",
            f"[{case.ref}] Update - status: new",
            f"[{case.ref}] We are waiting for your reply - status: new",
        ]
    )
    # Decoded: quoted-printable soft line breaks may fall anywhere in the raw text.
    bodies = "".join(
        bytes(part.get_payload(decode=True)).decode()
        for message in smtp_sink.messages
        for part in message.walk()
        if not part.is_multipart()
    )
    assert "secret supplier notes" not in bodies
    assert "thanks" not in bodies
    assert "The line card is replaced." in bodies
    assert "3 March 2026, 12:00 (UTC)" in bodies
    async with database.sessionmaker() as session:
        legacy = (await session.execute(select(CaseNotification))).scalar_one()
        assert legacy.sent_at == START


def test_backoff_is_exponential_capped_and_jittered() -> None:
    base, cap = timedelta(seconds=10), timedelta(seconds=60)
    top = [backoff_delay(n, base=base, cap=cap, rng=lambda: 1.0) for n in range(1, 6)]
    assert [d.total_seconds() for d in top] == [10, 20, 40, 60, 60]
    low = backoff_delay(3, base=base, cap=cap, rng=lambda: 0.0)
    assert low == timedelta(seconds=20)
    assert backoff_delay(500, base=base, cap=cap, rng=lambda: 1.0) == cap
