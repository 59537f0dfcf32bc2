"""Maintenance notices reach exactly the affected customers (aiosmtpd, both backends)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from email.message import Message

import pytest
from sqlalchemy import select

from caseapi.auth.principal import Principal, Role
from caseapi.maintenance.enums import MaintenanceBehaviour, MaintenanceKind
from caseapi.maintenance.service import MaintenanceDraft, MaintenanceService
from caseapi.notifications.dispatcher import NotificationDispatcher
from caseapi.notifications.models import Notification
from caseapi.ntus.models import Ntu
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database
from tests.caseapi.notification_fixtures import (
    SmtpSink,
    add_customer_with_email,
    smtp_sink_fixture,  # noqa: F401
)
from tests.caseapi.test_notifications import settings_for

ENGINEER = Principal(key_id=None, name="eve", role=Role.ENGINEER)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
STARTS = START + 20 * DAY

EMAIL = {"cust-a": "ops@a.example", "cust-b": "ops@b.example", "cust-c": "ops@c.example"}
#: id -> (customer, service, site)
NTUS = {
    "a-1": ("cust-a", "svc-a1", "Site A1"),
    "a-2": ("cust-a", "svc-a2", "Site A2"),
    "b-1": ("cust-b", "svc-b1", "Site B1"),
    "b-2": ("cust-b", "svc-b2", "Site B2"),
    "c-1": ("cust-c", "svc-c1", "Site C1"),
}


@pytest.fixture
async def maint(database: Database, clock: FakeClock) -> MaintenanceService:
    for customer, address in EMAIL.items():
        await add_customer_with_email(database.sessionmaker, customer, address)
    async with database.sessionmaker() as session:
        for number, (ntu_id, (customer, service, site)) in enumerate(NTUS.items()):
            session.add(
                Ntu(
                    id=ntu_id,
                    customer_id=customer,
                    service_id=service,
                    site=site,
                    address=f"10.0.1.{number + 1}",
                    parent=None,
                    probe={},
                    attributes={},
                )
            )
        await session.commit()
    return MaintenanceService(sessionmaker=database.sessionmaker, clock=clock)


async def announce(maint: MaintenanceService, **overrides: object) -> str:
    values: dict[str, object] = {
        "title": "Core router upgrade",
        "description": "up to 10 minutes of outage",
        "kind": MaintenanceKind.PLANNED,
        "behaviour": MaintenanceBehaviour.MUTE,
        "starts_at": STARTS,
        "ends_at": STARTS + 4 * HOUR,
        # cust-a through a service, cust-b through one NTU; cust-c not at all.
        "scope": {"services": ["svc-a1"], "ntus": ["b-1"]},
    }
    values.update(overrides)
    view = await maint.create(principal=ENGINEER, draft=MaintenanceDraft(**values))  # type: ignore[arg-type]
    return view.window.ref


async def deliver(database: Database, clock: FakeClock, smtp: SmtpSink) -> dict[str, str]:
    """One dispatcher pass; the one new mail per recipient (subject and plain text)."""
    mails = await deliver_all(database, clock, smtp)
    assert all(len(texts) == 1 for texts in mails.values()), mails
    return {address: texts[0] for address, texts in mails.items()}


async def deliver_all(database: Database, clock: FakeClock, smtp: SmtpSink) -> dict[str, list[str]]:
    """One dispatcher pass; the new mails by recipient."""
    before = len(smtp.messages)
    dispatcher = NotificationDispatcher(
        sessionmaker=database.sessionmaker,
        settings=settings_for(smtp),
        clock=clock,
        rng=lambda: 1.0,
    )
    await dispatcher.run_once(clock.now())
    mails: dict[str, list[str]] = {}
    for rcpts, mail in zip(smtp.recipients[before:], smtp.messages[before:], strict=True):
        assert len(rcpts) == 1
        mails.setdefault(rcpts[0], []).append(f"Subject: {mail['Subject']}\n{_text(mail)}")
    return mails


def _text(mail: Message) -> str:
    for part in mail.walk():
        if part.get_content_type() == "text/plain":
            return bytes(part.get_payload(decode=True)).decode()
    raise AssertionError("no text/plain part")


async def kinds(database: Database) -> Counter[tuple[str, str]]:
    async with database.sessionmaker() as session:
        rows = await session.execute(select(Notification.kind, Notification.customer_id))
        return Counter((kind, customer) for kind, customer in rows.all())


def assert_own_services(mails: dict[str, str]) -> None:
    a, b = mails[EMAIL["cust-a"]], mails[EMAIL["cust-b"]]
    assert "svc-a1" in a and "svc-a2" not in a and "svc-b1" not in a
    assert "svc-b1" in b and "svc-b2" not in b and "svc-a1" not in b


async def assert_own_data(database: Database, kind: str) -> None:
    """Every ``kind`` row lists only its customer's covered services and sites."""
    async with database.sessionmaker() as session:
        rows = await session.execute(
            select(Notification.customer_id, Notification.data).where(Notification.kind == kind)
        )
        seen = {customer: (data["services"], data["sites"]) for customer, data in rows.all()}
    assert seen == {"cust-a": (["svc-a1"], ["Site A1"]), "cust-b": (["svc-b1"], ["Site B1"])}


async def test_announce_complete_reach_exactly_the_affected_customers(
    database: Database, maint: MaintenanceService, clock: FakeClock, smtp_sink: SmtpSink
) -> None:
    ref = await announce(maint)
    mails = await deliver(database, clock, smtp_sink)
    assert set(mails) == {EMAIL["cust-a"], EMAIL["cust-b"]}
    assert_own_services(mails)
    await assert_own_data(database, "maintenance_announced")
    for text in mails.values():
        assert f"[Maintenance {ref}] Maintenance announced: Core router upgrade" in text
        assert "21 March 2026, 12:00 (UTC) to 21 March 2026, 16:00 (UTC)" in text
        assert "Expected impact: up to 10 minutes of outage" in text

    clock.advance(20 * DAY + 2 * HOUR)  # two hours into the window: completing ends it
    await maint.complete(principal=ENGINEER, ref=ref, actual_impact="7 minutes of outage")
    mails = await deliver(database, clock, smtp_sink)
    assert set(mails) == {EMAIL["cust-a"], EMAIL["cust-b"]}
    await assert_own_data(database, "maintenance_completed")
    for text in mails.values():
        assert "Maintenance completed" in text
        assert "completed at 21 March 2026, 14:00 (UTC)" in text
        assert (
            "Actual impact: 7 minutes of outage "
            "(from 21 March 2026, 12:00 (UTC) to 21 March 2026, 14:00 (UTC))"
        ) in text
    assert EMAIL["cust-c"] not in {r for rcpts in smtp_sink.recipients for r in rcpts}


async def test_notify_due_sends_reminder_and_started_once(
    database: Database, maint: MaintenanceService, clock: FakeClock, smtp_sink: SmtpSink
) -> None:
    ref = await announce(maint)
    # A window announced inside the reminder period gets no separate reminder.
    short = await announce(
        maint,
        kind=MaintenanceKind.EMERGENCY,
        starts_at=START + 2 * HOUR,
        ends_at=START + 3 * HOUR,
    )
    mails_all = await deliver_all(database, clock, smtp_sink)  # the two announcements
    assert {a: len(t) for a, t in mails_all.items()} == {EMAIL["cust-a"]: 2, EMAIL["cust-b"]: 2}

    # Far ahead: nothing due.
    assert await maint.notify_due(since=START, until=START + HOUR) == {
        "started": 0,
        "reminded": 0,
    }
    # 23 hours before the start: the planned window's reminder; twice -> once.
    until = STARTS - 23 * HOUR
    for _ in range(2):
        await maint.notify_due(since=until - 5 * DAY, until=until)
    clock.advance(until - START)
    mails = await deliver(database, clock, smtp_sink)
    assert set(mails) == {EMAIL["cust-a"], EMAIL["cust-b"]}
    await assert_own_data(database, "maintenance_reminder")
    for text in mails.values():
        assert f"[Maintenance {ref}] Maintenance reminder" in text
        assert "starts at 21 March 2026, 12:00 (UTC)" in text

    # The start passes; repeated and overlapping ticks send it once.
    for since, tick in ((STARTS - HOUR, STARTS + 1 * MINUTE), (STARTS - HOUR, STARTS + 2 * MINUTE)):
        await maint.notify_due(since=since, until=tick)
    clock.advance(STARTS + HOUR - clock.now())
    mails = await deliver(database, clock, smtp_sink)
    assert set(mails) == {EMAIL["cust-a"], EMAIL["cust-b"]}
    for text in mails.values():
        assert f"[Maintenance {ref}] Maintenance started" in text
        assert "started at 21 March 2026, 12:00 (UTC)" in text

    counts = await kinds(database)
    for customer in ("cust-a", "cust-b"):
        assert counts[("maintenance_announced", customer)] == 2
        assert counts[("maintenance_reminder", customer)] == 1
        # The emergency window's start was never in a tick's range here.
        assert counts[("maintenance_started", customer)] == 1
    assert not any(customer == "cust-c" for _, customer in counts)
    assert short != ref


async def test_cancel_tells_the_affected_customers(
    database: Database, maint: MaintenanceService, clock: FakeClock, smtp_sink: SmtpSink
) -> None:
    ref = await announce(maint)
    await maint.cancel(principal=ENGINEER, ref=ref)
    await maint.notify_due(since=STARTS - HOUR, until=STARTS + HOUR)  # cancelled: nothing
    mails = await deliver_all(database, clock, smtp_sink)
    assert set(mails) == {EMAIL["cust-a"], EMAIL["cust-b"]}
    for announced, cancelled in mails.values():
        assert "Maintenance announced" in announced
        assert f"[Maintenance {ref}] Maintenance cancelled" in cancelled
        assert "was cancelled at 1 March 2026, 12:00 (UTC)" in cancelled
    counts = await kinds(database)
    assert counts == Counter(
        {
            ("maintenance_announced", "cust-a"): 1,
            ("maintenance_announced", "cust-b"): 1,
            ("maintenance_cancelled", "cust-a"): 1,
            ("maintenance_cancelled", "cust-b"): 1,
        }
    )
