"""Staff alerts on both backends with a fake clock: who is told, once, until acknowledged."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.audit.models import AuditEvent
from caseapi.auth.principal import Role
from caseapi.cases import repository, store
from caseapi.cases.service import CaseService
from caseapi.cases.snapshot import Assign, Cancel, Escalate
from caseapi.cases.ticker import CaseTicker
from caseapi.core.database import make_engine, make_sessionmaker
from caseapi.incidents import IncidentService
from caseapi.notifications.dispatcher import NotificationDispatcher
from caseapi.notifications.models import Notification
from caseapi.notifications.signing import verify
from caseapi.oncall import service as staff_alerts
from caseapi.oncall.models import StaffAlert
from caseapi.organisation import (
    MemberRecord,
    RuleRecord,
    TeamFacts,
    TeamRecord,
    parse_oncall_sections,
    replace_rotations,
    replace_tiers,
    sync_organisation,
)
from caseapi.teams.models import Member
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import (
    LAB_WEBHOOK_SETTINGS,
    authed_client,
    client_for,
    make_app,
    problem,
)
from tests.caseapi.conftest import Database, incident
from tests.caseapi.lifecycle_fixtures import ENGINEER, seed
from tests.caseapi.notification_fixtures import (
    SmtpSink,
    WebhookSink,
    smtp_sink_fixture,  # noqa: F401
    webhook_sink_fixture,  # noqa: F401
)

MEMBERS = {
    "alice": "alice@noc.example",
    "bob": "bob@noc.example",
    "carol": "carol@access.example",
    "dave": "dave@access.example",
}
TEAMS = {
    "l1-noc": TeamFacts("Europe/Rome", ("alice", "bob")),
    "l2-access": TeamFacts("Europe/Rome", ("carol", "dave")),
}
ORGANISATION: dict[str, Any] = {
    "oncall": [
        {
            "team": "l1-noc",
            "rotation": "weekly",
            "handoff": "mon 09:00",
            "start": date(2026, 2, 23),  # alice's week covers START (Sun 2026-03-01)
            "order": ["alice", "bob"],
            "ack_within": "10m",
        },
        {
            "team": "l2-access",
            "rotation": "daily",
            "handoff": "08:00",
            "start": date(2026, 3, 1),
            "order": ["dave", "carol"],
            "ack_within": "5m",
        },
    ],
    "escalation": [
        {
            "tier": "standard",
            "levels": {
                "L1": {"team": "l1-noc"},
                "L2": {"team": "l2-access", "contacts": ["carol"]},
            },
            "notify_after": {"L2": "1h"},
        }
    ],
}
M = timedelta(minutes=1)
L2 = "@access.example"


async def _organisation(database: Database) -> None:
    """The organisation (teams, members, routing) and its on-call sections, synced in
    one transaction as ``nms`` does."""
    problems, model = parse_oncall_sections(ORGANISATION, TEAMS, tuple(MEMBERS), "org.yaml")
    assert problems == []

    async def write(session: AsyncSession) -> None:
        await replace_rotations(session, model.rotations.values())
        await replace_tiers(session, model.tiers.values())

    await sync_organisation(
        database.sessionmaker,
        teams=[
            TeamRecord(id=t, name=t, level=t[:2].upper(), timezone=f.timezone, members=f.members)
            for t, f in TEAMS.items()
        ],
        members=[
            MemberRecord(
                id=m,
                name=m,
                email=email,
                timezone="Europe/Rome",
                language="it" if m == "carol" else "en",
            )
            for m, email in MEMBERS.items()
        ],
        rules=[RuleRecord(team="l1-noc")],
        also=[write],
    )


async def _staff_rows(
    database: Database, *, new_case: bool, only: str | None = None
) -> list[Notification]:
    async with database.sessionmaker() as session:
        rows = (
            await session.scalars(
                select(Notification)
                .where(Notification.kind == "staff_alert")
                .order_by(Notification.id)
            )
        ).all()
    return [
        r
        for r in rows
        if (new_case or r.data["alert"] != "new_case")
        and (only is None or r.data["to"][0].endswith(only))
    ]


async def _sent(
    database: Database, *, new_case: bool = False, only: str | None = None
) -> list[tuple[str, str, int]]:
    """The staff alerts in the outbox: (alert, recipient, step); every case of these
    tests is routed to l1-noc, whose new-P1 pages are left out unless ``new_case``
    (``only``: to addresses ending so, e.g. ``@access.example``, the L2 team)."""
    rows = await _staff_rows(database, new_case=new_case, only=only)
    return [(r.data["alert"], r.data["to"][0], r.data["step"]) for r in rows]


async def test_sla_breach_alerts_the_l2_contact_then_the_next_person_until_acked(
    database: Database, clock: FakeClock, incidents: IncidentService
) -> None:
    await seed(database)
    await _organisation(database)
    ticker = CaseTicker(sessionmaker=database.sessionmaker, clock=clock)
    await incidents.open_incident(incident("ntu-1"))
    clock.advance(30 * M)  # the first-response SLA of 30 min is breached
    await ticker.run_once()
    assert await _sent(database, only=L2) == [("sla_breached", "carol@access.example", 1)]
    clock.advance(5 * M - timedelta(seconds=1))
    await ticker.run_once()
    assert len(await _sent(database, only=L2)) == 1  # not yet: ack_within of L2's rotation is 5m
    clock.advance(timedelta(seconds=1))
    await ticker.run_once()
    assert (await _sent(database, only=L2))[1:] == [("sla_breached", "dave@access.example", 2)]

    # A restart: new engine, new ticker, same database and time -> nothing twice.
    engine = make_engine(database.url)
    try:
        second = CaseTicker(sessionmaker=make_sessionmaker(engine), clock=clock)
        await second.run_once()
        assert len(await _sent(database, only=L2)) == 2
        async with database.sessionmaker() as session:
            alert = (
                await session.scalars(
                    select(StaffAlert).where(StaffAlert.event_key.like("%:level"))
                )
            ).one()
            assert (alert.member_id, alert.step, alert.next_at) == ("dave", 1, clock.now() + 5 * M)
            assert await staff_alerts.acknowledge(
                session, alert, by="engineer:dave", now=clock.now()
            )
            await session.commit()
        clock.advance(timedelta(hours=2))
        await second.run_once()
        assert len(await _sent(database, only=L2)) == 2  # acknowledged: nobody else
        async with database.sessionmaker() as session:
            alert = (
                await session.scalars(
                    select(StaffAlert).where(StaffAlert.event_key.like("%:level"))
                )
            ).one()
            assert (alert.status, alert.acked_by) == ("acked", "engineer:dave")
    finally:
        await engine.dispose()


async def test_a_new_p1_pages_the_routed_team_on_call_once_a_p3_nobody(
    database: Database, clock: FakeClock, incidents: IncidentService
) -> None:
    await seed(database)
    await _organisation(database)
    ticker = CaseTicker(sessionmaker=database.sessionmaker, clock=clock)
    await incidents.open_incident(incident("ntu-1"))  # P1, routed to l1-noc
    await incidents.open_incident(incident("ntu-2", priority="P3"))
    # The detector sends the same incident again (a retry, a restart): one case, one page.
    await incidents.open_incident(incident("ntu-1"))
    assert await _sent(database, new_case=True) == [("new_case", "alice@noc.example", 1)]
    clock.advance(10 * M)
    await ticker.run_once()
    assert (await _sent(database, new_case=True))[1:] == [("new_case", "bob@noc.example", 2)]


async def test_unacknowledged_chain_ends_exhausted(
    database: Database, clock: FakeClock, incidents: IncidentService
) -> None:
    await seed(database)
    await _organisation(database)
    ticker = CaseTicker(sessionmaker=database.sessionmaker, clock=clock)
    await incidents.open_incident(incident("ntu-1"))
    for _ in range(4):
        clock.advance(30 * M)
        await ticker.run_once()
    assert [to for _, to, _ in await _sent(database, only=L2)] == [
        "carol@access.example",
        "dave@access.example",
    ]
    async with database.sessionmaker() as session:
        alert = (
            await session.scalars(select(StaffAlert).where(StaffAlert.event_key.like("%:level")))
        ).one()
        assert (alert.status, alert.next_at) == ("exhausted", None)


async def test_customer_reply_alerts_the_assignee_and_escalation_the_level(
    database: Database, clock: FakeClock, incidents: IncidentService, service: CaseService
) -> None:
    await seed(database)
    await _organisation(database)
    ref = await incidents.open_incident(incident("ntu-1"))
    await service.act(ENGINEER, ref, lambda _: Assign(assignee="bob", actor=ENGINEER.actor))
    clock.advance(M)
    async with database.sessionmaker() as session:
        case = await repository.get_case_by_ref(session, ref=ref)
        assert case is not None
        await store.on_customer_reply(session, case_id=case.id, at=clock.now(), actor="customer:x")
        await session.commit()
    assert await _sent(database) == [("customer_reply", "bob@noc.example", 1)]
    await service.act(ENGINEER, ref, lambda _: Escalate(actor=ENGINEER.actor, by_customer=False))
    assert (await _sent(database))[1:] == [("escalated", "carol@access.example", 1)]
    async with database.sessionmaker() as session:
        notification = (
            await session.scalars(select(Notification).where(Notification.kind == "staff_alert"))
        ).all()[-1]
        assert notification.data["language"] == "it"
        assert notification.data["ack_url"].startswith("http://127.0.0.1:8000/v1/alerts/ack?token=")
        assert "to" in notification.data and notification.data["to"] == ["carol@access.example"]


async def test_notify_after_alerts_the_level_at_its_time_unless_the_case_is_done(
    database: Database, clock: FakeClock, incidents: IncidentService, service: CaseService
) -> None:
    await seed(database)
    await _organisation(database)
    ticker = CaseTicker(sessionmaker=database.sessionmaker, clock=clock)
    ref = await incidents.open_incident(incident("ntu-1"))
    other = await incidents.open_incident(incident("ntu-2"))
    # The first case gets an engineer and a first response in time; the second is
    # closed early: only the first one's L2 is told at 1 h.
    await service.act(ENGINEER, ref, lambda _: Assign(assignee="bob", actor=ENGINEER.actor))
    async with database.sessionmaker() as session:
        case = await repository.get_case_by_ref(session, ref=ref)
        assert case is not None
        await store.on_staff_reply(session, case_id=case.id, at=clock.now(), actor="engineer:bob")
        await session.commit()
    await service.act(
        ENGINEER,
        other,
        lambda _: Cancel(actor=ENGINEER.actor, reason="duplicate", by_customer=False),
    )
    clock.advance(60 * M - timedelta(seconds=1))
    await ticker.run_once()
    assert await _sent(database) == []
    clock.advance(timedelta(seconds=1))
    await ticker.run_once()
    assert await _sent(database) == [("level_due:L2", "carol@access.example", 1)]
    await ticker.run_once()
    assert len(await _sent(database)) == 1


async def test_an_event_alerts_once_even_raised_twice(
    database: Database, clock: FakeClock, incidents: IncidentService
) -> None:
    await seed(database)
    await _organisation(database)
    ref = await incidents.open_incident(incident("ntu-1"))
    async with database.sessionmaker() as session:
        case = await repository.get_case_by_ref(session, ref=ref)
        assert case is not None
        for _ in range(2):
            await staff_alerts.raise_alert(
                session,
                event_key="case:x:test",
                case=case,
                kind="test_event",
                recipients=("alice", "bob"),
                ack_within=10 * M,
                now=clock.now(),
            )
        await session.commit()
    assert await _sent(database) == [("test_event", "alice@noc.example", 1)]


async def test_no_organisation_no_alerts(
    database: Database, clock: FakeClock, incidents: IncidentService
) -> None:
    await seed(database)
    ticker = CaseTicker(sessionmaker=database.sessionmaker, clock=clock)
    await incidents.open_incident(incident("ntu-1"))
    clock.advance(timedelta(hours=5))
    await ticker.run_once()
    assert await _sent(database) == []


async def _links(database: Database) -> list[str]:
    """The ack links sent to the L2 team (the escalation chain of these tests)."""
    rows = await _staff_rows(database, new_case=False, only=L2)
    return [str(r.data["ack_url"]).split("?", 1)[1] for r in rows]


async def test_ack_link_works_once_and_only_for_the_current_step(
    database: Database, clock: FakeClock, incidents: IncidentService, service: CaseService
) -> None:
    await seed(database)
    await _organisation(database)
    app = make_app(database, service, clock)
    ticker = CaseTicker(sessionmaker=database.sessionmaker, clock=clock)
    await incidents.open_incident(incident("ntu-1"))
    clock.advance(30 * M)
    await ticker.run_once()  # carol, step 1
    clock.advance(5 * M)
    await ticker.run_once()  # dave, step 2
    first, second = await _links(database)
    async with client_for(app, None) as anyone:
        # carol's link was replaced by dave's step: no longer a link of the alert.
        problem(await anyone.get(f"/v1/alerts/ack?{first}"), 404, "alert_not_found")
        forged = second[:-4] + ("AAAA" if not second.endswith("AAAA") else "BBBB")
        problem(await anyone.get(f"/v1/alerts/ack?{forged}"), 404, "alert_not_found")
        problem(
            await anyone.get("/v1/alerts/ack?token=99999999999.abcdefghijk"), 404, "alert_not_found"
        )
        problem(await anyone.get("/v1/alerts/ack?token=999.abcdefghijk"), 404, "alert_not_found")
        problem(await anyone.get("/v1/alerts/ack?token=not-a-token"), 422, "validation_error")
        done = await anyone.get(f"/v1/alerts/ack?{second}")
        assert done.status_code == 200, done.text
        assert (done.json()["status"], done.json()["acked_by"]) == ("acked", "engineer:dave")
        problem(await anyone.get(f"/v1/alerts/ack?{second}"), 409, "alert_not_pending")
    clock.advance(timedelta(hours=1))
    await ticker.run_once()
    assert len(await _sent(database, only=L2)) == 2
    async with database.sessionmaker() as session:
        audit = (await session.scalars(select(AuditEvent))).all()
    assert [(a.action, a.details["via"]) for a in audit if a.action == "alert.ack"] == [
        ("alert.ack", "link")
    ]


async def test_staff_ack_by_id_and_an_expired_link(
    database: Database, clock: FakeClock, incidents: IncidentService, service: CaseService
) -> None:
    await seed(database)
    await _organisation(database)
    app = make_app(database, service, clock)
    ticker = CaseTicker(sessionmaker=database.sessionmaker, clock=clock)
    await incidents.open_incident(incident("ntu-1"))
    await incidents.open_incident(incident("ntu-2"))
    clock.advance(30 * M)
    await ticker.run_once()
    async with database.sessionmaker() as session:
        breached = StaffAlert.event_key.like("%:level")
        alerts = (
            await session.scalars(select(StaffAlert).where(breached).order_by(StaffAlert.id))
        ).all()
    assert len(alerts) == 2
    async with authed_client(app, role=Role.ENGINEER) as staff:
        acked = await staff.post(f"/v1/alerts/{alerts[0].id}/ack")
        assert acked.status_code == 200, acked.text
        problem(await staff.post(f"/v1/alerts/{alerts[0].id}/ack"), 409, "alert_not_pending")
        problem(await staff.post("/v1/alerts/424242/ack"), 404, "alert_not_found")
    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        problem(await customer.post(f"/v1/alerts/{alerts[1].id}/ack"), 403, "forbidden")
    # The second alert's link, used after its 24 h: expired (its chain ran out long ago).
    link = (await _links(database))[1]
    async with database.sessionmaker() as session:
        await session.execute(
            text("UPDATE staff_alerts SET next_at = NULL WHERE id = :id"), {"id": alerts[1].id}
        )
        await session.commit()
    clock.advance(timedelta(hours=25))
    async with client_for(app, None) as anyone:
        problem(await anyone.get(f"/v1/alerts/ack?{link}"), 410, "alert_link_expired")


async def test_delivered_by_mail_and_signed_webhook_to_staff_only(
    database: Database,
    clock: FakeClock,
    incidents: IncidentService,
    smtp_sink: SmtpSink,
    webhook_sink: WebhookSink,
) -> None:
    await seed(database, notify_email=["boss@acme.example"])
    await _organisation(database)
    async with database.sessionmaker() as session:
        await session.execute(
            update(Member).where(Member.id == "carol").values(webhook=webhook_sink.url)
        )
        await session.commit()
    secret = "staff-hook-secret-0123456789"
    settings = replace(
        LAB_WEBHOOK_SETTINGS.dispatcher(),
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_from="noc@nms.example",
        send_timeout=3.0,
        claim_timeout=timedelta(seconds=30),
        staff_webhook_secret=secret,
    )
    sender = NotificationDispatcher(
        sessionmaker=database.sessionmaker, settings=settings, clock=clock, rng=lambda: 1.0
    )
    ticker = CaseTicker(sessionmaker=database.sessionmaker, clock=clock)
    await incidents.open_incident(incident("ntu-1"))
    await sender.run_once(clock.now())
    # The customer's case_opened mail, and the new P1 to l1-noc's on-call person.
    assert sorted(smtp_sink.recipients) == [["alice@noc.example"], ["boss@acme.example"]]
    smtp_sink.messages.clear()
    smtp_sink.recipients.clear()
    clock.advance(30 * M)
    await ticker.run_once()
    await sender.run_once(clock.now())
    # The breach: the team's on-call person (unassigned case) and the L2 contact; and
    # bob, next on l1-noc, as nobody acknowledged the new P1 within its 10 min.
    assert sorted(smtp_sink.recipients) == [
        ["alice@noc.example"],
        ["bob@noc.example"],
        ["carol@access.example"],
    ]
    mail = smtp_sink.messages[smtp_sink.recipients.index(["carol@access.example"])]
    subject = str(mail["Subject"]).replace("\r\n", "")  # unfolded
    # Worded in carol's language (it): the escalation by the missed first response.
    assert subject.startswith("[CS-") and "SLA violato: prima risposta - escalation a L2" in subject
    assert "conferma la presa in carico" in subject
    body = mail.get_payload(0).get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "/v1/alerts/ack?token=" in body and "Gentile carol," in body
    assert len(webhook_sink.requests) == 1
    hook = webhook_sink.requests[0]
    assert hook.headers["x-nms-event"] == "staff_alert"
    assert verify(hook.headers["x-nms-signature"], hook.body, secret, now=clock.now().timestamp())
    payload = json.loads(hook.body)
    assert payload["data"]["alert"] == "sla_breached"
    assert payload["data"]["ack_url"].startswith("http://127.0.0.1:8000/v1/alerts/ack?token=")
    # Again: at-least-once with dedup, nothing new to send.
    await sender.run_once(clock.now())
    assert len(smtp_sink.recipients) == 3 and len(webhook_sink.requests) == 1
