"""The maintenance API: notice rules, validation, roles, tenancy, edit / cancel / complete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from caseapi.api.app import create_app
from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.maintenance.service import MaintenanceService
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import client_for, mint_key
from tests.caseapi.conftest import START, Database
from tests.caseapi.test_maintenance_coverage import seed_inventory

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@pytest.fixture
async def app(database: Database, service: CaseService, clock: FakeClock) -> FastAPI:
    await seed_inventory(database)
    app = create_app(
        sessionmaker=database.sessionmaker,
        case_service=service,
        clock=clock,
    )
    app.state.maintenance_service = MaintenanceService(
        sessionmaker=database.sessionmaker, clock=clock
    )
    return app


@asynccontextmanager
async def as_role(
    app: FastAPI, role: Role, customer_id: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    key = await mint_key(app, role=role, customer_id=customer_id)
    async with client_for(app, key) as client:
        yield client


def body(
    *,
    start: datetime = START + 15 * DAY,
    hours: float = 4,
    kind: str = "planned",
    **scope: list[str],
) -> dict[str, Any]:
    return {
        "title": "PoP 1 router upgrade",
        "description": "new line cards",
        "kind": kind,
        "behaviour": "mute",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=hours)).isoformat(),
        "scope": scope or {"nodes": ["agg-1"]},
    }


async def test_notice_rules_and_emergency_flag(app: FastAPI) -> None:
    async with as_role(app, Role.ENGINEER) as client:
        short = await client.post("/v1/maintenances", json=body(start=START + 13 * DAY))
        assert short.status_code == 422, short.text
        problem = short.json()
        assert problem["code"] == "insufficient_notice"
        assert "14 days" in problem["detail"] and "13 days given" in problem["detail"]
        assert problem["notice_required_seconds"] == 14 * 86400
        assert short.headers["content-type"].startswith("application/problem+json")

        ok = await client.post("/v1/maintenances", json=body(start=START + 14 * DAY))
        assert ok.status_code == 201, ok.text
        created = ok.json()
        assert created["ref"] == "MW-2026-0001"
        assert created["emergency"] is False and created["state"] == "upcoming"
        assert created["created_by"].startswith("engineer:")
        assert created["affected_ntu_count"] == 3
        assert ok.headers["etag"] == '"v1"'

        now = await client.post("/v1/maintenances", json=body(start=START, kind="emergency"))
        assert now.status_code == 201, now.text
        assert now.json()["emergency"] is True and now.json()["state"] == "active"
        assert now.json()["ref"] == "MW-2026-0002"

        backdated = body(start=START - timedelta(minutes=3), kind="emergency")
        assert (await client.post("/v1/maintenances", json=backdated)).status_code == 201
        too_old = body(start=START - HOUR, kind="emergency")
        response = await client.post("/v1/maintenances", json=too_old)
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "starts_at"


async def test_validation_errors_name_the_problem(app: FastAPI) -> None:
    async with as_role(app, Role.NOC) as client:
        unknown = await client.post(
            "/v1/maintenances",
            json=body(ntus=["a-1", "nope-1"], customers=["ghost"], services=["svc-x"]),
        )
        assert unknown.status_code == 422
        problem = unknown.json()
        assert problem["code"] == "unknown_scope_ids"
        assert problem["unknown"] == {
            "ntus": ["nope-1"],
            "customers": ["ghost"],
            "services": ["svc-x"],
        }
        assert "nope-1" in problem["detail"] and "ghost" in problem["detail"]

        backwards = body()
        backwards["ends_at"] = (START + 14 * DAY).isoformat()
        response = await client.post("/v1/maintenances", json=backwards)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "ends_at"

        empty = body()
        empty["scope"] = {"ntus": []}
        response = await client.post("/v1/maintenances", json=empty)
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "scope"

        too_long = await client.post("/v1/maintenances", json=body(hours=8 * 24))
        assert too_long.status_code == 422 and too_long.json()["code"] == "maintenance_too_long"

        naive = body()
        naive["starts_at"] = "2026-04-01T00:00:00"
        response = await client.post("/v1/maintenances", json=naive)
        assert response.status_code == 422 and response.json()["code"] == "validation_error"
        assert (await client.get("/v1/maintenances")).json()["count"] == 0


async def test_roles_customers_cannot_write(app: FastAPI) -> None:
    async with as_role(app, Role.ENGINEER) as engineer:
        ref = (await engineer.post("/v1/maintenances", json=body())).json()["ref"]
    async with as_role(app, Role.CUSTOMER, "cust-a") as customer:
        assert (await customer.post("/v1/maintenances", json=body())).status_code == 403
        patch = await customer.patch(f"/v1/maintenances/{ref}", json={"title": "x"})
        assert patch.status_code == 403
        assert (await customer.post(f"/v1/maintenances/{ref}/cancel")).status_code == 403
    async with as_role(app, Role.SERVICE) as machine:
        assert (await machine.post("/v1/maintenances", json=body())).status_code == 403
    async with client_for(app, None) as anonymous:
        assert (await anonymous.get("/v1/maintenances")).status_code == 401


async def test_customers_see_only_their_windows_and_ntus(app: FastAPI) -> None:
    async with as_role(app, Role.ADMIN) as admin:
        # agg-1 covers a-1 (cust-a) and b-1 (cust-b); svc-b1 only cust-b.
        shared = (await admin.post("/v1/maintenances", json=body(nodes=["agg-1"]))).json()
        only_b = (await admin.post("/v1/maintenances", json=body(services=["svc-b1"]))).json()
        listed = (await admin.get("/v1/maintenances")).json()
        assert listed["count"] == 2
        assert listed["data"][0]["scope"]["nodes"] == ["agg-1"]
        assert listed["data"][0]["created_by"].startswith("admin:")
    async with as_role(app, Role.CUSTOMER, "cust-a") as customer_a:
        listed = (await customer_a.get("/v1/maintenances")).json()
        assert [w["ref"] for w in listed["data"]] == [shared["ref"]]
        seen = listed["data"][0]
        assert seen["scope"] == {"ntus": ["a-1"], "nodes": [], "customers": [], "services": []}
        assert "created_by" not in seen and "affected_ntu_count" not in seen
        one = await customer_a.get(f"/v1/maintenances/{shared['ref']}")
        assert one.status_code == 200 and "b-1" not in one.text and "agg-1" not in one.text
        hidden = await customer_a.get(f"/v1/maintenances/{only_b['ref']}")
        assert hidden.status_code == 404 and hidden.json()["code"] == "maintenance_not_found"
        other = await customer_a.get("/v1/maintenances", params={"customer": "cust-b"})
        assert other.status_code == 403 and other.json()["code"] == "customer_mismatch"
        own = await customer_a.get("/v1/maintenances", params={"customer": "cust-a"})
        assert [w["ref"] for w in own.json()["data"]] == [shared["ref"]]
    async with as_role(app, Role.CUSTOMER, "cust-b") as customer_b:
        listed = (await customer_b.get("/v1/maintenances")).json()
        assert {w["ref"] for w in listed["data"]} == {shared["ref"], only_b["ref"]}
        assert all("a-1" not in str(w) for w in listed["data"])
    async with as_role(app, Role.NOC) as noc:
        by_ntu = (await noc.get("/v1/maintenances", params={"ntu": "b-1"})).json()
        assert by_ntu["count"] == 2
        by_customer = (await noc.get("/v1/maintenances", params={"customer": "cust-a"})).json()
        assert [w["ref"] for w in by_customer["data"]] == [shared["ref"]]
        missing = await noc.get("/v1/maintenances/MW-2026-9999")
        assert missing.status_code == 404 and missing.json()["code"] == "maintenance_not_found"


async def test_state_filter(app: FastAPI, clock: FakeClock) -> None:
    async with as_role(app, Role.ENGINEER) as client:
        upcoming = (await client.post("/v1/maintenances", json=body())).json()["ref"]
        active = await client.post("/v1/maintenances", json=body(start=START, kind="emergency"))
        cancelled = await client.post("/v1/maintenances", json=body(start=START + 16 * DAY))
        await client.post(f"/v1/maintenances/{cancelled.json()['ref']}/cancel")
        short = body(start=START, hours=0.5, kind="emergency")
        ended = (await client.post("/v1/maintenances", json=short)).json()["ref"]
        clock.advance(HOUR)

        async def refs(*states: str) -> list[str]:
            response = await client.get("/v1/maintenances", params={"state": list(states)})
            return [w["ref"] for w in response.json()["data"]]

        assert await refs("upcoming") == [upcoming]
        assert await refs("active") == [active.json()["ref"]]
        assert await refs("cancelled") == [cancelled.json()["ref"]]
        assert await refs("ended") == [ended]
        assert len(await refs("upcoming", "ended")) == 2
        bad = await client.get("/v1/maintenances", params={"state": "later"})
        assert bad.status_code == 422


def period(start: datetime, hours: float = 4) -> dict[str, str]:
    return {
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=hours)).isoformat(),
    }


async def test_edit_before_start(app: FastAPI, clock: FakeClock) -> None:
    async with as_role(app, Role.ENGINEER) as client:
        ref = (await client.post("/v1/maintenances", json=body(start=START + 20 * DAY))).json()[
            "ref"
        ]
        url = f"/v1/maintenances/{ref}"
        moved = await client.patch(
            url,
            json={
                "starts_at": (START + 15 * DAY).isoformat(),
                "scope": {"customers": ["cust-b"]},
                "behaviour": "skip",
            },
            headers={"If-Match": '"v1"'},
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["scope"]["customers"] == ["cust-b"]
        assert moved.json()["behaviour"] == "skip" and moved.headers["etag"] == '"v2"'
        stale = await client.patch(url, json={"title": "t"}, headers={"If-Match": '"v1"'})
        assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
        # Moving a planned start earlier re-checks the notice; later never needs it.
        early = await client.patch(url, json=period(START + 10 * DAY))
        assert early.status_code == 422 and early.json()["code"] == "insufficient_notice"
        clock.advance(5 * DAY)  # 10 days left: moving later is still fine
        later = await client.patch(url, json=period(START + 16 * DAY))
        assert later.status_code == 200
        unknown = await client.patch(url, json={"scope": {"nodes": ["pop-9"]}})
        assert unknown.status_code == 422 and unknown.json()["unknown"] == {"nodes": ["pop-9"]}
        impact = await client.patch(url, json={"actual_impact": "none"})
        assert impact.status_code == 409 and impact.json()["code"] == "maintenance_not_started"
        null = await client.patch(url, json={"title": None})
        assert null.status_code == 422


async def test_edit_after_start_complete_and_cancel(app: FastAPI, clock: FakeClock) -> None:
    async with as_role(app, Role.ENGINEER) as client:
        created = await client.post("/v1/maintenances", json=body(start=START, kind="emergency"))
        ref = created.json()["ref"]
        url = f"/v1/maintenances/{ref}"
        clock.advance(HOUR)
        scope = await client.patch(url, json={"scope": {"ntus": ["a-1"]}})
        assert scope.status_code == 409 and scope.json()["code"] == "maintenance_started"
        assert scope.json()["fields"] == ["scope"]
        past = await client.patch(url, json={"ends_at": START.isoformat()})
        assert past.status_code == 422
        extend = await client.patch(url, json={"ends_at": (START + 6 * HOUR).isoformat()})
        assert extend.status_code == 200 and extend.json()["ends_at"].startswith("2026-03-01T18")

        done = await client.post(f"{url}/complete", json={"actual_impact": "12 min outage"})
        assert done.status_code == 200, done.text
        completed = done.json()
        assert completed["actual_impact"] == "12 min outage"
        assert completed["state"] == "ended" and completed["completed_by"].startswith("engineer:")
        assert datetime.fromisoformat(completed["ends_at"]) == START + HOUR
        again = await client.post(f"{url}/complete", json={"actual_impact": "x"})
        assert again.status_code == 409 and again.json()["code"] == "maintenance_completed"
        amend = await client.patch(url, json={"actual_impact": "15 min outage"})
        assert amend.status_code == 200 and amend.json()["actual_impact"] == "15 min outage"
        ended = await client.patch(url, json={"ends_at": (START + 9 * HOUR).isoformat()})
        assert ended.status_code == 409 and ended.json()["code"] == "maintenance_ended"
        late_cancel = await client.post(f"{url}/cancel")
        assert late_cancel.status_code == 409 and late_cancel.json()["code"] == "maintenance_ended"

        upcoming = (await client.post("/v1/maintenances", json=body())).json()["ref"]
        early = await client.post(
            f"/v1/maintenances/{upcoming}/complete", json={"actual_impact": "x"}
        )
        assert early.status_code == 409 and early.json()["code"] == "maintenance_not_started"
        cancel = await client.post(f"/v1/maintenances/{upcoming}/cancel")
        assert cancel.status_code == 200 and cancel.json()["state"] == "cancelled"
        assert cancel.json()["cancelled_by"].startswith("engineer:")
        twice = await client.post(f"/v1/maintenances/{upcoming}/cancel")
        assert twice.status_code == 409 and twice.json()["code"] == "maintenance_cancelled"
        edit = await client.patch(f"/v1/maintenances/{upcoming}", json={"title": "t"})
        assert edit.status_code == 409 and edit.json()["code"] == "maintenance_cancelled"


async def test_openapi_documents_the_routes(app: FastAPI) -> None:
    async with client_for(app, None) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/v1/maintenances", "/v1/maintenances/{ref}", "/v1/maintenances/{ref}/cancel"} <= set(
        paths
    )
