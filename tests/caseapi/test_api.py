"""The HTTP API over a real database on both backends (httpx + ASGITransport)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from caseapi.api.app import create_app
from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.core.database import make_engine, make_sessionmaker
from caseapi.customers.models import Customer
from caseapi.incidents import IncidentService
from caseapi.ntus.models import Ntu, NtuState
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import client_for, make_app, mint_key
from tests.caseapi.conftest import START, Database, incident

PROBLEM = "application/problem+json"


@pytest.fixture
async def client(
    database: Database, service: CaseService, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    """A client with an admin key: these tests are about behaviour, not authorisation."""
    app = make_app(database, service, clock)
    key = await mint_key(app, role=Role.ADMIN)
    async with client_for(app, key) as client:
        yield client


@pytest.fixture
async def fleet(database: Database, incidents: IncidentService, clock: FakeClock) -> dict[str, str]:
    """Two customers, four NTUs (one never judged), and cases on two of them."""
    async with database.sessionmaker() as session:
        session.add_all(
            [
                Customer(id="acme", name="Acme"),
                Customer(id="umbrella", name="Umbrella", contract_status="expired"),
            ]
        )
        await session.flush()
        session.add_all(
            [
                Ntu(id=f"ntu-{n}", customer_id=customer, address=f"10.0.0.{n}", site=f"site {n}")
                for n, customer in [(1, "acme"), (2, "acme"), (3, "umbrella"), (4, "acme")]
            ]
        )
        session.add_all(
            [
                NtuState(
                    ntu_id="ntu-1",
                    status="down",
                    since=START - timedelta(minutes=10),
                    outage_start=START - timedelta(minutes=10),
                    last_observation_at=START,
                    last_success_at=START - timedelta(minutes=11),
                    rtt_avg=None,
                    loss=1.0,
                    jitter=None,
                ),
                NtuState(ntu_id="ntu-2", status="up", since=START, rtt_avg=0.012, loss=0.0),
                NtuState(ntu_id="ntu-3", status="down", since=START),
            ]
        )
        await session.commit()
    refs = {
        "ntu-1": await incidents.open_incident(incident("ntu-1", customer_id="acme")),
    }
    clock.advance(timedelta(minutes=1))
    refs["ntu-3"] = await incidents.open_incident(
        incident("ntu-3", customer_id="umbrella", priority="P2")
    )
    return refs


def _assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert {"type", "title", "detail"} <= body.keys()
    return body


async def test_healthz_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_list_cases(client: httpx.AsyncClient, fleet: dict[str, str]) -> None:
    response = await client.get("/v1/cases")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert body["next_cursor"] is None
    assert [case["ref"] for case in body["data"]] == [fleet["ntu-3"], fleet["ntu-1"]]
    first = body["data"][1]
    assert first["status"] == "new"
    assert first["priority"] == "P1"
    assert first["type"] == "incident"
    assert first["source"] == "proactive"
    assert first["outage_start"] == "2026-03-01T11:50:00Z"
    assert body["data"][0]["no_support"] is True


@pytest.mark.parametrize(
    ("query", "ntus"),
    [
        ("priority=P2", ["ntu-3"]),
        ("priority=P1&priority=P2", ["ntu-3", "ntu-1"]),
        ("status=new", ["ntu-3", "ntu-1"]),
        ("status=solved", []),
        ("ntu=ntu-1", ["ntu-1"]),
        ("updated_since=2026-03-01T12:00:30%2B00:00", ["ntu-3"]),
    ],
)
async def test_list_cases_filters(
    client: httpx.AsyncClient, fleet: dict[str, str], query: str, ntus: list[str]
) -> None:
    response = await client.get(f"/v1/cases?{query}")
    assert response.status_code == 200, response.text
    assert [case["ntu_id"] for case in response.json()["data"]] == ntus


async def test_list_cases_paginates(client: httpx.AsyncClient, incidents: IncidentService) -> None:
    for n in range(5):
        await incidents.open_incident(incident(f"ntu-{n}"))
    refs: list[str] = []
    url = "/v1/cases?limit=2"
    while True:
        body = (await client.get(url)).json()
        assert body["count"] == 5
        refs += [case["ref"] for case in body["data"]]
        if body["next_cursor"] is None:
            break
        url = f"/v1/cases?limit=2&cursor={body['next_cursor']}"
    assert refs == [f"CS-2026-{n:06d}" for n in range(5, 0, -1)]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=501", "limit"),
        ("limit=0", "limit"),
        ("status=bogus", "status.0"),
        ("priority=P9", "priority.0"),
        ("updated_since=yesterday", "updated_since"),
        ("updated_since=2026-03-01T12:00:00", "updated_since"),
        ("cursor=not-a-cursor", "cursor"),
    ],
)
async def test_bad_query_is_a_validation_problem_naming_the_field(
    client: httpx.AsyncClient, query: str, field: str
) -> None:
    body = _assert_problem(await client.get(f"/v1/cases?{query}"), 422, "validation_error")
    assert [error["field"] for error in body["errors"]] == [field]


async def test_get_case(client: httpx.AsyncClient, fleet: dict[str, str]) -> None:
    response = await client.get(f"/v1/cases/{fleet['ntu-1']}")
    assert response.status_code == 200
    body = response.json()
    assert body["ref"] == fleet["ntu-1"]
    assert body["ntu_id"] == "ntu-1"
    assert body["recurrence_of"] is None
    assert "id" not in body


async def test_unknown_case_is_a_404_problem(client: httpx.AsyncClient) -> None:
    body = _assert_problem(await client.get("/v1/cases/CS-2026-999999"), 404, "case_not_found")
    assert "CS-2026-999999" in body["detail"]
    assert body["instance"] == "/v1/cases/CS-2026-999999"
    _assert_problem(await client.get("/v1/cases/CS-2026-999999/timeline"), 404, "case_not_found")


async def test_unknown_route_is_a_problem_too(client: httpx.AsyncClient) -> None:
    _assert_problem(await client.get("/v1/nothing"), 404, "not_found")


async def test_timeline(
    client: httpx.AsyncClient,
    incidents: IncidentService,
    clock: FakeClock,
    fleet: dict[str, str],
) -> None:
    clock.advance(timedelta(minutes=20))
    await incidents.restore_incident(dedup_key="ntu:ntu-1:down", restored_at=clock.now())

    response = await client.get(f"/v1/cases/{fleet['ntu-1']}/timeline")

    assert response.status_code == 200
    body = response.json()
    assert body["ref"] == fleet["ntu-1"]
    assert body["count"] == 2
    assert [event["kind"] for event in body["data"]] == ["opened", "restored"]
    assert body["data"][1]["actor"] == "detector"
    assert body["data"][1]["data"]["to"] == "solved"


async def test_list_ntus(client: httpx.AsyncClient, fleet: dict[str, str]) -> None:
    body = (await client.get("/v1/ntus")).json()
    assert body["count"] == 4
    assert [(ntu["id"], ntu["status"]) for ntu in body["data"]] == [
        ("ntu-1", "down"),
        ("ntu-2", "up"),
        ("ntu-3", "down"),
        ("ntu-4", "unknown"),
    ]
    assert body["data"][0]["customer"] == {"id": "acme", "name": "Acme"}
    assert body["data"][0]["address"] == "10.0.0.1"


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("customer=acme", ["ntu-1", "ntu-2", "ntu-4"]),
        ("status=down", ["ntu-1", "ntu-3"]),
        ("status=unknown", ["ntu-4"]),
        ("customer=acme&status=down", ["ntu-1"]),
        ("customer=nobody", []),
    ],
)
async def test_list_ntus_filters(
    client: httpx.AsyncClient, fleet: dict[str, str], query: str, ids: list[str]
) -> None:
    body = (await client.get(f"/v1/ntus?{query}")).json()
    assert [ntu["id"] for ntu in body["data"]] == ids
    assert body["count"] == len(ids)


async def test_list_ntus_paginates(client: httpx.AsyncClient, fleet: dict[str, str]) -> None:
    ids: list[str] = []
    url = "/v1/ntus?limit=3"
    while True:
        body = (await client.get(url)).json()
        ids += [ntu["id"] for ntu in body["data"]]
        if body["next_cursor"] is None:
            break
        url = f"/v1/ntus?limit=3&cursor={body['next_cursor']}"
    assert ids == ["ntu-1", "ntu-2", "ntu-3", "ntu-4"]
    _assert_problem(await client.get("/v1/ntus?cursor=e30"), 422, "validation_error")


async def test_ntu_status(client: httpx.AsyncClient, fleet: dict[str, str]) -> None:
    body = (await client.get("/v1/ntus/ntu-1/status")).json()
    assert body == {
        "ntu_id": "ntu-1",
        "status": "down",
        "since": "2026-03-01T11:50:00Z",
        "outage_start": "2026-03-01T11:50:00Z",
        "last_observation_at": "2026-03-01T12:00:00Z",
        "last_success_at": "2026-03-01T11:49:00Z",
        "rtt_avg": None,
        "loss": 1.0,
        "jitter": None,
        "case_ref": fleet["ntu-1"],
    }


async def test_ntu_without_state_is_unknown(
    client: httpx.AsyncClient, fleet: dict[str, str]
) -> None:
    body = (await client.get("/v1/ntus/ntu-4/status")).json()
    assert (body["status"], body["since"], body["case_ref"]) == ("unknown", None, None)


async def test_unknown_ntu_is_a_404_problem(client: httpx.AsyncClient) -> None:
    _assert_problem(await client.get("/v1/ntus/nope/status"), 404, "ntu_not_found")


async def test_database_gone_is_503_with_retry_after(database: Database, clock: FakeClock) -> None:
    # The engine the app was given is gone; its URL now points at a closed port.
    await database.engine.dispose()
    engine = make_engine("postgresql+asyncpg://postgres:hunter2@127.0.0.1:1/nms", connect_timeout=2)
    app = create_app(sessionmaker=make_sessionmaker(engine), clock=clock, retry_after_seconds=7)
    try:
        # Any key: looking it up already needs the database.
        async with client_for(app, "nms_any-key-at-all") as client:
            for path in ["/healthz", "/v1/cases", "/v1/cases/CS-2026-000001", "/v1/ntus"]:
                response = await client.get(path)
                body = _assert_problem(response, 503, "database_unavailable")
                assert response.headers["retry-after"] == "7"
                assert "hunter2" not in response.text
                assert body["instance"] == path
    finally:
        await engine.dispose()
