"""Webhooks: subscription API with tenancy, signatures, rotation, retries, NOC view."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta

from fastapi import FastAPI

from caseapi.api.app import create_app
from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.incidents import IncidentService, ntu_down_key
from caseapi.notifications.config import DEFAULT_DISPATCHER
from caseapi.notifications.dispatcher import NotificationDispatcher
from caseapi.notifications.service import DeliveryService, WebhookService
from caseapi.notifications.signing import SIGNATURE_HEADER, verify
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import add_customer, authed_client
from tests.caseapi.conftest import START, Database, incident
from tests.caseapi.notification_fixtures import (
    LAB_WEBHOOKS,
    WebhookSink,
    outbox_rows,
    webhook_sink_fixture,  # noqa: F401
)

SETTINGS = replace(
    DEFAULT_DISPATCHER,
    webhook_policy=LAB_WEBHOOKS,
    send_timeout=15.0,
    claim_timeout=timedelta(seconds=30),
    backoff_base=timedelta(seconds=10),
    backoff_cap=timedelta(seconds=60),
    max_attempts=3,
)


def make_app(database: Database, service: CaseService, clock: FakeClock) -> FastAPI:
    app = create_app(
        sessionmaker=database.sessionmaker,
        case_service=service,
        clock=clock,
    )
    app.state.webhook_service = WebhookService(
        sessionmaker=database.sessionmaker, clock=clock, settings=SETTINGS
    )
    app.state.delivery_service = DeliveryService(sessionmaker=database.sessionmaker, clock=clock)
    return app


def dispatcher(database: Database, clock: FakeClock) -> NotificationDispatcher:
    return NotificationDispatcher(
        sessionmaker=database.sessionmaker, settings=SETTINGS, clock=clock, rng=lambda: 1.0
    )


async def open_case(incidents: IncidentService, ntu: str) -> str:
    """Open a case for ``ntu``; the lifecycle hook enqueues its ``case_opened``."""
    return await incidents.open_incident(incident(ntu))


async def test_signed_deliveries_verify_and_rotation_sends_both_signatures(
    database: Database,
    service: CaseService,
    incidents: IncidentService,
    clock: FakeClock,
    webhook_sink: WebhookSink,
) -> None:
    app = make_app(database, service, clock)
    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        created = await customer.post(
            "/v1/webhooks", json={"url": webhook_sink.url, "event_types": ["case_opened"]}
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        old_secret = hook["secret"]
        assert hook["customer_id"] == "cust-1" and old_secret.startswith("whsec_")
        shown = await customer.get(f"/v1/webhooks/{hook['id']}")
        assert "secret" not in shown.json()

        ref = await open_case(incidents, "ntu-1")
        solved = await incidents.restore_incident(
            dedup_key=ntu_down_key("ntu-1"), restored_at=clock.now()
        )
        assert solved == ref
        # The hook enqueued both; the subscription only wants case_opened.
        assert await outbox_rows(database.sessionmaker) == [
            ("case_opened", ref),
            ("case_solved", ref),
        ]
        now = clock.now()
        assert await dispatcher(database, clock).run_once(now) == 1
        [first] = webhook_sink.requests
        header = first.headers[SIGNATURE_HEADER.lower()]
        assert verify(header, first.body, old_secret, now=now.timestamp())
        assert not verify(header, first.body + b" ", old_secret, now=now.timestamp())
        assert not verify(header, first.body, "whsec_wrong", now=now.timestamp())
        body = json.loads(first.body)
        assert body["type"] == "case_opened" and body["data"]["ref"] == ref
        assert first.headers["idempotency-key"] == body["id"] == first.headers["x-nms-event-id"]

        rotated = await customer.post(
            f"/v1/webhooks/{hook['id']}/rotate", json={"overlap_seconds": 3600}
        )
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret != old_secret

        await open_case(incidents, "ntu-3")
        assert await dispatcher(database, clock).run_once(now) == 1
        second = webhook_sink.requests[1]
        header = second.headers[SIGNATURE_HEADER.lower()]
        assert header.count("v1=") == 2
        for secret in (old_secret, new_secret):
            assert verify(header, second.body, secret, now=now.timestamp())

        # After the overlap only the new secret signs.
        clock.advance(timedelta(hours=2))
        await open_case(incidents, "ntu-4")
        assert await dispatcher(database, clock).run_once(clock.now()) == 1
        header = webhook_sink.requests[2].headers[SIGNATURE_HEADER.lower()]
        assert header.count("v1=") == 1
        body3 = webhook_sink.requests[2].body
        assert verify(header, body3, new_secret, now=clock.now().timestamp())
        assert not verify(header, body3, old_secret, now=clock.now().timestamp())


async def test_failing_endpoint_retried_with_backoff_then_failed_and_visible_to_noc(
    database: Database,
    service: CaseService,
    incidents: IncidentService,
    clock: FakeClock,
    webhook_sink: WebhookSink,
) -> None:
    webhook_sink.status = 503
    app = make_app(database, service, clock)
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        unknown = await engineer.post(
            "/v1/webhooks", json={"url": webhook_sink.url, "customer_id": "nobody"}
        )
        assert unknown.status_code == 422  # staff must name an existing customer
        await add_customer(database.sessionmaker, "cust-1")
        created = await engineer.post(
            "/v1/webhooks", json={"url": webhook_sink.url, "customer_id": "cust-1"}
        )
        assert created.status_code == 201, created.text
    ref = await open_case(incidents, "ntu-1")
    assert await outbox_rows(database.sessionmaker) == [("case_opened", ref)]
    sender = dispatcher(database, clock)
    assert await sender.run_once(START) == 1
    assert await sender.run_once(START + timedelta(seconds=9)) == 0  # backoff 10 s
    assert await sender.run_once(START + timedelta(seconds=10)) == 1
    assert await sender.run_once(START + timedelta(seconds=29)) == 0  # backoff 20 s
    assert await sender.run_once(START + timedelta(seconds=30)) == 1
    assert await sender.run_once(START + timedelta(days=1)) == 0  # failed: no more tries
    assert len(webhook_sink.requests) == 3
    assert [r.headers["x-nms-attempt"] for r in webhook_sink.requests] == ["1", "2", "3"]
    assert len({r.headers["idempotency-key"] for r in webhook_sink.requests}) == 1

    async with authed_client(app, role=Role.NOC) as noc:
        listed = await noc.get("/v1/notifications", params={"state": "failed"})
        assert listed.status_code == 200, listed.text
        page = listed.json()
        assert page["count"] == 1 and page["backlog"]["failed"] == 1
        [row] = page["data"]
        assert (row["channel"], row["state"], row["attempts"]) == ("webhook", "failed", 3)
        assert "HTTP 503" in row["last_error"] and row["kind"] == "case_opened"
        retried = await noc.post(f"/v1/notifications/{row['id']}/retry")
        assert retried.status_code == 204
    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        assert (await customer.get("/v1/notifications")).status_code == 403
    webhook_sink.status = 200
    assert await sender.run_once(START + timedelta(days=1)) == 1
    assert len(webhook_sink.requests) == 4


async def test_subscription_tenancy(
    database: Database, service: CaseService, clock: FakeClock, webhook_sink: WebhookSink
) -> None:
    app = make_app(database, service, clock)
    async with (
        authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as one,
        authed_client(app, role=Role.CUSTOMER, customer_id="cust-2") as two,
        authed_client(app, role=Role.ENGINEER) as engineer,
    ):
        mine = (await one.post("/v1/webhooks", json={"url": webhook_sink.url})).json()
        other = await one.post(
            "/v1/webhooks", json={"url": webhook_sink.url, "customer_id": "cust-2"}
        )
        assert other.status_code == 403
        bad_type = await one.post(
            "/v1/webhooks", json={"url": webhook_sink.url, "event_types": ["nope"]}
        )
        assert bad_type.status_code == 422
        missing = await engineer.post("/v1/webhooks", json={"url": webhook_sink.url})
        assert missing.status_code == 422 and missing.json()["code"] == "invalid_webhook_request"
        path = f"/v1/webhooks/{mine['id']}"
        for response in (
            await two.get(path),
            await two.patch(path, json={"active": False}),
            await two.post(f"{path}/rotate"),
            await two.delete(path),
        ):
            assert response.status_code == 404
            assert response.json()["code"] == "webhook_not_found"
        assert (await two.get("/v1/webhooks")).json()["count"] == 0
        assert (await engineer.get("/v1/webhooks")).json()["count"] == 1
        patched = await engineer.patch(path, json={"event_types": ["case_closed"]})
        assert patched.json()["event_types"] == ["case_closed"]
        assert (await one.delete(path)).status_code == 204
        assert (await one.get(path)).status_code == 404


async def test_two_dispatchers_never_send_the_same_delivery(
    database: Database,
    service: CaseService,
    incidents: IncidentService,
    clock: FakeClock,
    webhook_sink: WebhookSink,
) -> None:
    app = make_app(database, service, clock)
    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        await customer.post("/v1/webhooks", json={"url": webhook_sink.url})
    refs = [await open_case(incidents, f"ntu-{n}") for n in range(12)]
    assert await outbox_rows(database.sessionmaker) == [("case_opened", ref) for ref in refs]
    now = clock.now()
    counts = list(
        await asyncio.gather(
            dispatcher(database, clock).run_once(now), dispatcher(database, clock).run_once(now)
        )
    )
    counts += await asyncio.gather(
        dispatcher(database, clock).run_once(now), dispatcher(database, clock).run_once(now)
    )
    assert sum(counts) == 12
    ids = [r.headers["idempotency-key"] for r in webhook_sink.requests]
    assert len(ids) == len(set(ids)) == 12
