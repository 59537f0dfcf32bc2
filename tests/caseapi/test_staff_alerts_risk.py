"""SLA at risk, the NOC fallback and the alerts' wording, on both backends with a fake clock."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import aiomqtt
import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from caseapi.cases import repository, store
from caseapi.cases.enums import CaseStatus
from caseapi.cases.service import CaseService
from caseapi.cases.snapshot import Assign, Transition
from caseapi.cases.ticker import CaseTicker
from caseapi.core.database import make_engine, make_sessionmaker
from caseapi.incidents import IncidentService
from caseapi.notifications.config import NotificationSettings
from caseapi.notifications.dispatcher import NotificationDispatcher
from caseapi.notifications.models import Notification
from caseapi.oncall import service as staff_alerts
from caseapi.oncall import wording
from caseapi.oncall.config import AlertConfig
from caseapi.oncall.models import StaffAlert
from caseapi.teams.models import Member
from nms.clock import FakeClock
from tests.caseapi.conftest import Database, incident
from tests.caseapi.lifecycle_fixtures import ENGINEER, seed
from tests.caseapi.notification_fixtures import (
    MQTT_HOST,
    MQTT_PORT,
    mqtt_prefix_fixture,  # noqa: F401
)
from tests.caseapi.test_notifications import settings_for
from tests.caseapi.test_staff_alerts import M, _organisation

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def _alerts(database: Database, kind: str | None = None) -> list[dict[str, object]]:
    async with database.sessionmaker() as session:
        rows = (
            await session.scalars(
                select(Notification)
                .where(Notification.kind == "staff_alert")
                .order_by(Notification.id)
            )
        ).all()
    return [dict(r.data) for r in rows if kind is None or r.data["alert"] == kind]


async def test_first_response_at_risk_alerts_the_assignee_once_at_its_time(
    database: Database, clock: FakeClock, incidents: IncidentService, service: CaseService
) -> None:
    await seed(database)
    await _organisation(database)
    ticker = CaseTicker(sessionmaker=database.sessionmaker, clock=clock, at_risk_within=12 * M)
    ref = await incidents.open_incident(incident("ntu-1"))  # first response due at +30 min
    await service.act(ENGINEER, ref, lambda _: Assign(assignee="bob", actor=ENGINEER.actor))
    clock.advance(18 * M - timedelta(seconds=1))
    await ticker.run_once()
    assert await _alerts(database, "sla_at_risk") == []
    clock.advance(timedelta(seconds=1))  # due in exactly 12 min
    await ticker.run_once()
    sent = await _alerts(database, "sla_at_risk")
    assert [(a["to"], a["clock"], a["headline"]) for a in sent] == [
        (["bob@noc.example"], "first_response", "SLA at risk: first response due in 12 min")
    ]
    await ticker.run_once()
    clock.advance(M)
    await ticker.run_once()
    # A restart: another engine and ticker on the same database -> still once.
    engine = make_engine(database.url)
    try:
        second = CaseTicker(
            sessionmaker=make_sessionmaker(engine), clock=clock, at_risk_within=12 * M
        )
        await second.run_once()
    finally:
        await engine.dispose()
    assert len(await _alerts(database, "sla_at_risk")) == 1


async def test_not_at_risk_when_met_or_paused_waiting_on_the_customer(
    database: Database, clock: FakeClock, incidents: IncidentService, service: CaseService
) -> None:
    await seed(database)
    await _organisation(database)
    ticker = CaseTicker(sessionmaker=database.sessionmaker, clock=clock)  # default 15 min
    ref = await incidents.open_incident(incident("ntu-1"))
    await service.act(ENGINEER, ref, lambda _: Assign(assignee="bob", actor=ENGINEER.actor))
    async with database.sessionmaker() as session:
        case = await repository.get_case_by_ref(session, ref=ref)
        assert case is not None
        # The first response is met in time: its deadline is never at risk.
        await store.on_staff_reply(session, case_id=case.id, at=clock.now(), actor="engineer:bob")
        await session.commit()
    await service.act(
        ENGINEER,
        ref,
        lambda _: Transition(
            to=CaseStatus.WAITING_CUSTOMER, actor=ENGINEER.actor, reason="need the serial"
        ),
    )
    # Time to repair (4 h) would be at risk at 3 h 45 min, but its clock is paused.
    clock.advance(3 * 60 * M + 40 * M)
    for _ in range(8):  # through 3 h 40 ... 4 h 15 min, in steps inside the 15 min window
        await ticker.run_once()
        clock.advance(5 * M)
    assert await _alerts(database, "sla_at_risk") == []


async def test_a_moved_deadline_may_alert_again_the_repair_clock_by_team(
    database: Database, clock: FakeClock, incidents: IncidentService
) -> None:
    await seed(database)
    await _organisation(database)
    ticker = CaseTicker(sessionmaker=database.sessionmaker, clock=clock)
    ref = await incidents.open_incident(incident("ntu-1"))  # unassigned: l1-noc's on-call
    clock.advance(3 * 60 * M + 45 * M)  # TTR 4 h: due in 15 min (first response long breached)
    await ticker.run_once()
    risk = await _alerts(database, "sla_at_risk")
    assert [(a["to"], a["clock"]) for a in risk] == [(["alice@noc.example"], "time_to_repair")]
    # The deadline moves (e.g. a priority change): a new deadline, a new alert.
    async with database.sessionmaker() as session:
        case = await repository.get_case_by_ref(session, ref=ref)
        assert case is not None
        assert case.ttr_due_at is not None
        case.ttr_due_at = case.ttr_due_at + 5 * M
        await session.commit()
    await ticker.run_once()
    assert len(await _alerts(database, "sla_at_risk")) == 1  # due in 20 min: not yet
    clock.advance(5 * M)
    await ticker.run_once()
    assert len(await _alerts(database, "sla_at_risk")) == 2


async def test_nobody_acknowledges_the_fallback_is_told_once(
    database: Database, clock: FakeClock, incidents: IncidentService
) -> None:
    await seed(database)
    await _organisation(database)
    staff_alerts.configure(AlertConfig(fallback_email="noc-desk@provider.example"))
    try:
        ticker = CaseTicker(sessionmaker=database.sessionmaker, clock=clock)
        await incidents.open_incident(incident("ntu-1"))  # new P1: alice, then bob (10 min)
        clock.advance(10 * M)
        await ticker.run_once()
        assert await _alerts(database, "new_case") != []
        assert [a for a in await _alerts(database) if a.get("fallback")] == []
        clock.advance(10 * M)  # bob did not acknowledge either: the chain is exhausted
        await ticker.run_once()
        await ticker.run_once()
        clock.advance(timedelta(hours=1))
        await ticker.run_once()
    finally:
        staff_alerts.configure(AlertConfig())
    fallback = [a for a in await _alerts(database) if a.get("fallback")]
    new_case = [a for a in fallback if a["alert"] == "new_case"]
    assert len(new_case) == 1
    told = new_case[0]
    assert told["to"] == ["noc-desk@provider.example"]
    assert told["headline"] == "Nobody acknowledged: New P1 case"
    assert told["tried"] == ["alice", "bob"] and told["ack_url"] == ""
    assert "tried: alice, bob" in str(told["next_step"])


async def test_without_a_fallback_an_exhausted_chain_sends_nothing_more(
    database: Database, clock: FakeClock, incidents: IncidentService
) -> None:
    await seed(database)
    await _organisation(database)
    ticker = CaseTicker(sessionmaker=database.sessionmaker, clock=clock)
    await incidents.open_incident(incident("ntu-1"))
    clock.advance(10 * M)
    await ticker.run_once()
    clock.advance(10 * M)
    await ticker.run_once()
    assert [a["to"] for a in await _alerts(database, "new_case")] == [
        ["alice@noc.example"],
        ["bob@noc.example"],
    ]


def test_fallback_settings_are_validated() -> None:
    settings = NotificationSettings(
        staff_fallback_email="noc@provider.example",
        staff_fallback_webhook="https://pager.example/hook",
        staff_webhook_secret="staff-hook-secret-0123456789",
    )
    config = settings.staff_alert_config()
    assert (config.fallback_email, config.fallback_webhook) == (
        "noc@provider.example",
        "https://pager.example/hook",
    )
    with pytest.raises(ValidationError, match="staff_fallback_email"):
        NotificationSettings(staff_fallback_email="not an address")
    with pytest.raises(ValidationError, match="staff_fallback_webhook"):
        NotificationSettings(staff_fallback_webhook="ftp://pager.example/hook")
    with pytest.raises(ValidationError, match="needs staff_webhook_secret"):
        NotificationSettings(staff_fallback_webhook="https://pager.example/hook")


@pytest.mark.parametrize(
    ("kind", "details", "language", "expected"),
    [
        ("new_case", {}, "en", "New P1 case"),
        ("new_case", {}, "it", "Nuovo caso P1"),
        ("sla_breached", {"clock": "time_to_repair"}, "en", "SLA breached: time to repair"),
        ("sla_breached", {"clock": "first_response"}, "it", "SLA violato: prima risposta"),
        (
            "sla_breached",
            {
                "missed": ["first response overdue", "commitment missed: next_update"],
                "escalated": True,
            },
            "en",
            "SLA breached: first response, commitment (next update) - escalated to L2",
        ),
        (
            "sla_at_risk",
            {"clock": "first_response", "due_at": "2026-03-01T12:11:30+00:00"},
            "en",
            "SLA at risk: first response due in 12 min",
        ),
        (
            "sla_at_risk",
            {"clock": "time_to_repair", "due_at": "2026-03-01T13:05:00+00:00"},
            "it",
            "SLA a rischio: tempo di ripristino in scadenza tra 1 h 5 min",
        ),
        (
            "sla_at_risk",
            {
                "clock": "commitment",
                "commitment": "engineer_on_site",
                "due_at": "2026-03-01T11:59:00+00:00",
            },
            "en",
            "SLA at risk: commitment (engineer on site) overdue",
        ),
        (
            "commitment_missed",
            {"commitment": "next_update"},
            "en",
            "Commitment missed: next update",
        ),
        ("escalated", {}, "en", "Escalated to L2"),
        ("customer_escalation", {}, "en", "Customer escalated the case to L2"),
        ("customer_reply", {}, "it", "Il cliente ha risposto"),
        ("unassigned", {}, "en", "Case still unassigned"),
        ("level_due:L3", {}, "en", "L3 notice: case still open below L3"),
        ("something_new", {}, "fr", "Something new"),
    ],
)
def test_alert_headlines_are_human_wording(
    kind: str, details: dict[str, object], language: str, expected: str
) -> None:
    got = wording.headline(
        kind, details=details, priority="P1", level="L2", now=AT, language=language
    )
    assert got == expected
    assert "_" not in got


async def test_staff_alert_reaches_the_members_mqtt_topic_on_the_real_broker(
    database: Database, clock: FakeClock, incidents: IncidentService, mqtt_prefix: str
) -> None:
    await seed(database)
    await _organisation(database)
    async with database.sessionmaker() as session:
        await session.execute(update(Member).where(Member.id == "alice").values(mqtt=True))
        await session.commit()
    settings = replace(
        settings_for(None),
        mqtt_url=f"mqtt://{MQTT_HOST}:{MQTT_PORT}",
        mqtt_topic_prefix=mqtt_prefix,
    )
    sender = NotificationDispatcher(
        sessionmaker=database.sessionmaker, settings=settings, clock=clock, rng=lambda: 1.0
    )
    async with aiomqtt.Client(
        MQTT_HOST, MQTT_PORT, protocol=aiomqtt.ProtocolVersion.V5, timeout=5
    ) as sub:
        await sub.subscribe(f"{mqtt_prefix}/staff/+/alerts", qos=1)
        ref = await incidents.open_incident(incident("ntu-1"))  # new P1: alice is on call
        await sender.run_once(clock.now())
        async with asyncio.timeout(5):
            message = await anext(aiter(sub.messages))
    assert str(message.topic) == f"{mqtt_prefix}/staff/alice/alerts"
    assert message.qos == 1
    assert isinstance(message.payload, bytes)
    payload = json.loads(message.payload)
    async with database.sessionmaker() as session:
        alert = (
            await session.scalars(select(StaffAlert).where(StaffAlert.kind == "new_case"))
        ).one()
        event_id = (
            await session.scalars(
                select(Notification.event_id).where(Notification.kind == "staff_alert")
            )
        ).one()
    assert (payload["id"], payload["type"], payload["case_ref"]) == (event_id, "staff_alert", ref)
    data = payload["data"]
    assert (data["alert"], data["headline"], data["step"], data["level"], data["team"]) == (
        "new_case",
        "New P1 case",
        1,
        "L1",
        "l1-noc",
    )
    assert (data["ref"], data["priority"], data["status"]) == (ref, "P1", "new")
    assert data["ack_url"].startswith(f"http://127.0.0.1:8000/v1/alerts/ack?token={alert.id}.")
    # Staff only: never the recipient's address, the member id or the channel flags.
    assert not {"to", "member", "mqtt", "webhook", "language"} & set(data)
