"""The one-case read's fast lane (``caseapi.cases.hot_read``) answers as the route does.

Two apps over one database, one with the lane and one without, are asked the same
requests: every answer is the same status, headers and bytes - the lane's 200s and
the route's answers to whatever the lane hands over. The lane serves without the
route (its dependency refuses everyone there), and a failed key is counted once.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from caseapi.api.app import create_app
from caseapi.auth.deps import get_principal
from caseapi.auth.errors import AuthenticationError
from caseapi.auth.principal import Role
from caseapi.cases.hot_read import PATH, HotCaseRead
from caseapi.cases.models import Case
from caseapi.cases.service import CaseService
from caseapi.incidents import IncidentService
from caseapi.ratelimit.config import RateLimitSettings
from caseapi.ratelimit.service import Limit, RateLimiter
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import add_customer, make_app, mint_key, problem
from tests.caseapi.conftest import Database, incident, upstream
from tests.caseapi.lifecycle_fixtures import seed


def without_lane(app: FastAPI) -> FastAPI:
    """``app`` answering every read through its route (before its first request)."""
    lane: object = HotCaseRead
    app.user_middleware = [m for m in app.user_middleware if m.cls is not lane]
    return app


@asynccontextmanager
async def caller(
    app: FastAPI, key: str | None, *, address: str = "127.0.0.2"
) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as c:
        yield c


def answer(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    return response.status_code, sorted(response.headers.multi_items()), response.content


def limited_app(
    database: Database, service: CaseService, clock: FakeClock, **limits: str
) -> tuple[FastAPI, RateLimiter]:
    """An app whose rate limits are ``limits`` (any other out of the way)."""
    loose = "1000/minute"
    settings: dict[str, Any] = {
        "auth_failures_per_address": loose,
        "auth_failures_per_key": loose,
        "case_creation_per_customer": loose,
        "comments_per_customer": loose,
        **limits,
    }
    limiter = RateLimiter(settings=RateLimitSettings(**settings))
    app = create_app(
        sessionmaker=database.sessionmaker, case_service=service, clock=clock, rate_limiter=limiter
    )
    return app, limiter


def guess() -> str:
    """A well-formed key nobody holds."""
    return "nms_" + secrets.token_urlsafe(32)


@pytest.fixture
async def seeded(database: Database) -> Database:
    await seed(database)
    await add_customer(database.sessionmaker, "cust-1")
    return database


async def _open_cases(database: Database, incidents: IncidentService) -> list[str]:
    """Cases of cust-1, cust-2, an upstream incident and cust-1's case under it (with
    its parent's reference), oldest first."""
    for ntu, customer in (("ntu-1", "cust-1"), ("ntu-9", "cust-2")):
        await incidents.open_incident(incident(ntu, customer_id=customer))
    await incidents.open_upstream_incident(upstream(("ntu-2", "cust-1")))
    async with database.sessionmaker() as session:
        return list((await session.scalars(select(Case.ref).order_by(Case.id))).all())


async def test_the_lane_answers_every_request_with_the_routes_bytes(
    seeded: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    lane, route = make_app(seeded, service, clock), without_lane(make_app(seeded, service, clock))
    refs = await _open_cases(seeded, incidents)
    staff = await mint_key(lane, role=Role.ENGINEER)
    customer = await mint_key(lane, role=Role.CUSTOMER, customer_id="cust-1")
    paths = [f"/v1/cases/{ref}" for ref in refs]
    # What the lane hands over: unknown case, a query parameter (declared or not), NUL,
    # a trailing slash, the case's other reads.
    paths += ["/v1/cases/CS-2026-999999", f"/v1/cases/{refs[0]}?x=1", "/v1/cases/a%00b"]
    paths += [f"/v1/cases/{refs[0]}/", f"/v1/cases/{refs[0]}/timeline", "/v1/cases/"]
    # Pages: the lane's (no parameter, limit, cursor) and the route's (anything else).
    pages = ["/v1/cases", "/v1/cases?limit=2", "/v1/cases?limit=%32", "/v1/cases?limit=500"]
    pages += [f"/v1/cases?{query}" for query in ("limit=0", "limit=050", "limit=501", "limit=")]
    pages += [f"/v1/cases?{query}" for query in ("limit=2&limit=3", "limit=x", "cursor=", "x=1")]
    pages += ["/v1/cases?cursor=nonsense", "/v1/cases?status=new", "/v1/cases?cursor=a%00"]
    for key in (staff, customer, guess(), "nms_", "not-a-key", None):
        async with caller(lane, key) as via_lane, caller(route, key) as via_route:
            first = await via_route.get("/v1/cases", params={"limit": 1})
            cursor = first.json().get("next_cursor") if first.status_code == 200 else None
            if cursor is not None:
                pages.append(f"/v1/cases?limit=1&cursor={cursor}")
            for path in paths + pages:
                expected = answer(await via_route.get(path))
                assert answer(await via_lane.get(path)) == expected, (key, path)
            # Other methods, other schemes, a body: the route's answers.
            ref_path = paths[0]
            for method, extra in (
                ("HEAD", {}),
                ("PATCH", {"json": {"reason": "x"}}),
                ("GET", {"content": b'{"a": "\\u0000"}'}),
            ):
                expected = answer(await via_route.request(method, ref_path, **extra))
                assert answer(await via_lane.request(method, ref_path, **extra)) == expected
            if key is not None:
                basic: dict[str, Any] = {"Authorization": f"Basic {key}"}
                expected = answer(await via_route.get(ref_path, headers=basic))
                assert answer(await via_lane.get(ref_path, headers=basic)) == expected
    # The customer sees its own cases, not cust-2's nor the upstream incident.
    async with caller(lane, customer) as c:
        assert [(await c.get(p)).status_code for p in paths[:4]] == [200, 404, 404, 200]
        assert (await c.get(paths[3])).json()["parent"] == refs[2]


async def test_the_lane_serves_without_the_route_and_hands_over_the_rest(
    seeded: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    app = make_app(seeded, service, clock)

    async def nobody() -> None:
        raise AuthenticationError("the route was asked")

    app.dependency_overrides[get_principal] = nobody
    ref = (await _open_cases(seeded, incidents))[0]
    key = await mint_key(app, role=Role.ENGINEER)
    async with caller(app, key) as c:
        served = await c.get(f"/v1/cases/{ref}")
        assert served.status_code == 200 and served.json()["ref"] == ref
        assert served.headers["etag"]
        page = await c.get("/v1/cases", params={"limit": 1})
        assert page.status_code == 200 and page.json()["count"] == 4
        cursor = page.json()["next_cursor"]
        page = await c.get("/v1/cases", params={"limit": 3, "cursor": cursor})
        assert page.status_code == 200 and len(page.json()["data"]) == 3
        # Handed over: the route's guard or dependency answers.
        problem(await c.get(f"/v1/cases/{ref}", params={"x": 1}), 422, "unknown_query_parameter")
        body = await c.request("GET", f"/v1/cases/{ref}", content=b"{}")
        problem(body, 401, "unauthenticated")
        problem(await c.get("/v1/cases/CS-2026-999999"), 401, "unauthenticated")
        twice = [("Authorization", f"Bearer {key}"), ("Authorization", f"Bearer {key}")]
        problem(await c.get(f"/v1/cases/{ref}", headers=twice), 401, "unauthenticated")
        problem(await c.get("/v1/cases", params={"status": "new"}), 401, "unauthenticated")
        problem(await c.get("/v1/cases", params={"cursor": "x"}), 401, "unauthenticated")


def test_no_other_operation_has_the_lanes_path(
    seeded: Database, service: CaseService, clock: FakeClock
) -> None:
    # The lane answers /v1/cases/<anything> as the one-case read: a new route beside
    # it (``/v1/cases/stats``) would be shadowed for the lane's 200s.
    app = create_app(sessionmaker=seeded.sessionmaker, case_service=service, clock=clock)
    shaped = [path for path in app.openapi()["paths"] if PATH.fullmatch(path)]
    assert shaped == ["/v1/cases/{ref}"]


async def test_a_failed_key_is_counted_once_and_a_blocked_address_is_not_served(
    seeded: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    app, limiter = limited_app(seeded, service, clock, auth_failures_per_address="3/minute")
    ref = (await _open_cases(seeded, incidents))[0]
    good = await mint_key(app, role=Role.ENGINEER)
    path = f"/v1/cases/{ref}"
    async with caller(app, guess()) as wrong, caller(app, good) as right:
        assert (await right.get(path)).status_code == 200
        for _ in range(3):
            problem(await wrong.get(path), 401, "unauthenticated")
        assert problem(await wrong.get(path), 429, "rate_limited")["limit"] == (
            Limit.AUTH_FAILURES_PER_ADDRESS.value
        )
        # Blocked before the key is looked at: the right key from there too.
        problem(await right.get(path), 429, "rate_limited")
    assert limiter.stats.rejected[Limit.AUTH_FAILURES_PER_ADDRESS] == 2
    async with caller(app, good, address="127.0.0.3") as elsewhere:
        assert (await elsewhere.get(path)).status_code == 200


async def test_a_key_blocked_by_its_failures_is_not_served_from_any_address(
    seeded: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    app, limiter = limited_app(seeded, service, clock, auth_failures_per_key="2/minute")
    path = f"/v1/cases/{(await _open_cases(seeded, incidents))[0]}"
    victim = await mint_key(app, role=Role.ENGINEER)
    wrong = victim[:12] + secrets.token_urlsafe(32)  # the victim's prefix
    for address in ("127.0.0.2", "127.0.0.3"):
        async with caller(app, wrong, address=address) as c:
            problem(await c.get(path), 401, "unauthenticated")
    async with caller(app, victim, address="127.0.0.4") as c:
        assert problem(await c.get(path), 429, "rate_limited")["limit"] == (
            Limit.AUTH_FAILURES_PER_KEY.value
        )
        problem(await c.get("/v1/cases"), 429, "rate_limited")
    assert limiter.stats.rejected[Limit.AUTH_FAILURES_PER_KEY] == 2
