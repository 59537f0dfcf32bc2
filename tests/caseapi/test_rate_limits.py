"""Rate limits through the API: failed authentications per address and per key,
case creation and comments per customer, Redis shared by two apps, failing open.

Client addresses are set on the in-process ASGI transport (loopback addresses, no
traffic). The ``limits`` library reads the real time, so windows are a minute
(nothing expires during a test) except in the one test of expiry (one second).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from caseapi.api.app import create_app
from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.ratelimit.config import RateLimitSettings
from caseapi.ratelimit.service import Limit, RateLimiter
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import PROBLEM, mint_key
from tests.caseapi.conftest import Database
from tests.caseapi.lifecycle_fixtures import seed
from tests.conftest import require

REQUEST = {"type": "general_request", "subject": "other", "summary": "s"}
LOOSE = "1000/minute"


def limiter(**limits: str) -> RateLimiter:
    """A limiter with ``limits`` and every other limit out of the way."""
    settings: dict[str, Any] = {
        "auth_failures_per_address": LOOSE,
        "auth_failures_per_key": LOOSE,
        "case_creation_per_customer": LOOSE,
        "comments_per_customer": LOOSE,
        **limits,
    }
    return RateLimiter(settings=RateLimitSettings(**settings))


def app_with(
    database: Database, service: CaseService, clock: FakeClock, rate_limiter: RateLimiter, **kw: Any
) -> FastAPI:
    return create_app(
        sessionmaker=database.sessionmaker,
        case_service=service,
        clock=clock,
        rate_limiter=rate_limiter,
        **kw,
    )


@asynccontextmanager
async def client(
    app: FastAPI, key: str | None, *, address: str = "127.0.0.2", **headers: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A client connecting from ``address`` with ``key`` as its bearer key."""
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as c:
        yield c


def guess() -> str:
    """A well-formed key nobody holds."""
    return "nms_" + secrets.token_urlsafe(32)


async def get_cases(app: FastAPI, key: str | None, **kw: Any) -> httpx.Response:
    async with client(app, key, **kw) as c:
        return await c.get("/v1/cases")


def limited(response: httpx.Response, limit: Limit) -> int:
    """Check a 429 of ``limit`` and return its ``Retry-After`` (seconds)."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == "rate_limited"
    assert body["limit"] == limit.value
    retry_after = int(response.headers["Retry-After"])
    assert body["retry_after"] == retry_after
    return retry_after


@pytest.fixture
async def seeded(database: Database) -> Database:
    await seed(database)
    return database


async def test_failures_from_an_address_get_429_before_the_key_is_checked_others_pass(
    seeded: Database, service: CaseService, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    rl = limiter(auth_failures_per_address="3/minute")
    app = app_with(seeded, service, clock, rl)
    good = await mint_key(app, role=Role.ENGINEER)
    for _ in range(3):
        assert (await get_cases(app, guess())).status_code == 401
    retry_after = limited(await get_cases(app, guess()), Limit.AUTH_FAILURES_PER_ADDRESS)
    assert 1 <= retry_after <= 60
    # Blocked before the key is looked at: a right key from there is refused too, and
    # so is a request with no key at all.
    limited(await get_cases(app, good), Limit.AUTH_FAILURES_PER_ADDRESS)
    limited(await get_cases(app, None), Limit.AUTH_FAILURES_PER_ADDRESS)
    # Another address: its own key works, its own failures are its own.
    assert (await get_cases(app, good, address="127.0.0.3")).status_code == 200
    assert (await get_cases(app, guess(), address="127.0.0.3")).status_code == 401
    assert rl.stats.rejected[Limit.AUTH_FAILURES_PER_ADDRESS] == 3
    assert rl.stats.rejected[Limit.AUTH_FAILURES_PER_KEY] == 0
    # One log line when the address was blocked, none per refused request.
    blocked = [r.getMessage() for r in caplog.records if "blocked" in r.getMessage()]
    assert blocked == ["127.0.0.2 blocked: auth_failures_per_address reached (3 per 1 minute)"]


async def test_missing_credentials_are_not_failures(
    seeded: Database, service: CaseService, clock: FakeClock
) -> None:
    app = app_with(seeded, service, clock, limiter(auth_failures_per_address="2/minute"))
    for _ in range(4):
        assert (await get_cases(app, None)).status_code == 401


async def test_failures_with_one_key_are_limited_across_addresses(
    seeded: Database, service: CaseService, clock: FakeClock
) -> None:
    rl = limiter(auth_failures_per_key="2/minute")
    app = app_with(seeded, service, clock, rl)
    victim = await mint_key(app, role=Role.ENGINEER)
    other = await mint_key(app, role=Role.ENGINEER)
    wrong = victim[:12] + secrets.token_urlsafe(32)
    assert (await get_cases(app, wrong, address="127.0.0.2")).status_code == 401
    assert (await get_cases(app, wrong, address="127.0.0.3")).status_code == 401
    limited(await get_cases(app, wrong, address="127.0.0.4"), Limit.AUTH_FAILURES_PER_KEY)
    limited(await get_cases(app, victim, address="127.0.0.4"), Limit.AUTH_FAILURES_PER_KEY)
    assert (await get_cases(app, other, address="127.0.0.4")).status_code == 200


async def test_the_address_is_let_in_again_when_its_failures_leave_the_window(
    seeded: Database, service: CaseService, clock: FakeClock
) -> None:
    app = app_with(seeded, service, clock, limiter(auth_failures_per_address="2/second"))
    good = await mint_key(app, role=Role.ENGINEER)
    # Fail until refused: on a slow machine two failures may not fit in one second.
    for _ in range(20):
        response = await get_cases(app, guess())
        if response.status_code == 429:
            break
        assert response.status_code == 401
    retry_after = limited(response, Limit.AUTH_FAILURES_PER_ADDRESS)
    assert retry_after == 1
    await asyncio.sleep(retry_after)
    deadline = time.monotonic() + 5
    while (status := (await get_cases(app, good)).status_code) == 429:
        assert time.monotonic() < deadline, "still refused long after Retry-After"
        await asyncio.sleep(0.1)
    assert status == 200


async def test_case_creation_is_limited_per_customer_not_for_staff(
    seeded: Database, service: CaseService, clock: FakeClock
) -> None:
    rl = limiter(case_creation_per_customer="2/minute")
    app = app_with(seeded, service, clock, rl)
    acme = await mint_key(app, role=Role.CUSTOMER, customer_id="cust-1")
    acme_too = await mint_key(app, role=Role.CUSTOMER, customer_id="cust-1", name="second")
    other = await mint_key(app, role=Role.CUSTOMER, customer_id="cust-2")
    staff = await mint_key(app, role=Role.ENGINEER)
    async with client(app, acme) as c:
        for _ in range(2):
            assert (await c.post("/v1/cases", json=REQUEST)).status_code == 201
    # Per customer, not per key: the customer's second key shares the quota.
    async with client(app, acme_too, address="127.0.0.5") as c:
        limited(await c.post("/v1/cases", json=REQUEST), Limit.CASE_CREATION_PER_CUSTOMER)
    async with client(app, other) as c:
        assert (await c.post("/v1/cases", json=REQUEST)).status_code == 201
    async with client(app, staff) as c:
        for _ in range(3):
            response = await c.post("/v1/cases", json={**REQUEST, "customer_id": "cust-1"})
            assert response.status_code == 201, response.text
        listed = (await c.get("/v1/cases", params={"customer": "cust-1"})).json()
    assert listed["count"] == 5  # the refused one made nothing
    assert rl.stats.rejected[Limit.CASE_CREATION_PER_CUSTOMER] == 1


async def test_comments_are_limited_per_customer_not_for_staff(
    seeded: Database, service: CaseService, clock: FakeClock
) -> None:
    rl = limiter(comments_per_customer="2/minute")
    app = app_with(seeded, service, clock, rl)
    acme = await mint_key(app, role=Role.CUSTOMER, customer_id="cust-1")
    other = await mint_key(app, role=Role.CUSTOMER, customer_id="cust-2")
    staff = await mint_key(app, role=Role.ENGINEER)
    refs = {}
    for key, name in ((acme, "cust-1"), (other, "cust-2")):
        async with client(app, key) as c:
            refs[name] = (await c.post("/v1/cases", json=REQUEST)).json()["ref"]
    comment = {"body": "any news?"}
    async with client(app, acme) as c:
        for _ in range(2):
            assert (await c.post(f"/v1/cases/{refs['cust-1']}/comments", json=comment)).is_success
        refused = await c.post(f"/v1/cases/{refs['cust-1']}/comments", json=comment)
        limited(refused, Limit.COMMENTS_PER_CUSTOMER)
    async with client(app, other) as c:
        response = await c.post(f"/v1/cases/{refs['cust-2']}/comments", json=comment)
        assert response.status_code == 201
    async with client(app, staff) as c:
        for _ in range(3):
            response = await c.post(f"/v1/cases/{refs['cust-1']}/comments", json=comment)
            assert response.status_code == 201
        listed = (await c.get(f"/v1/cases/{refs['cust-1']}/comments")).json()
    assert listed["count"] == 5


async def test_forwarded_for_counts_only_from_trusted_proxies(
    seeded: Database, service: CaseService, clock: FakeClock
) -> None:
    import ipaddress

    app = app_with(
        seeded,
        service,
        clock,
        limiter(auth_failures_per_address="2/minute"),
        trusted_proxies=[ipaddress.ip_network("127.0.0.10/32")],
    )
    good = await mint_key(app, role=Role.ENGINEER)
    # An untrusted peer cannot dodge its limit by writing a new X-Forwarded-For.
    for n in range(2):
        forged = {"X-Forwarded-For": f"127.1.0.{n}"}
        assert (await get_cases(app, guess(), **forged)).status_code == 401
    limited(
        await get_cases(app, guess(), **{"X-Forwarded-For": "127.1.0.9"}),
        Limit.AUTH_FAILURES_PER_ADDRESS,
    )
    # Behind the trusted proxy, clients are told apart by what it appends.
    behind = {"address": "127.0.0.10"}
    for _ in range(2):
        response = await get_cases(app, guess(), **behind, **{"X-Forwarded-For": "127.2.0.1"})
        assert response.status_code == 401
    blocked = await get_cases(app, good, **behind, **{"X-Forwarded-For": "127.2.0.1"})
    limited(blocked, Limit.AUTH_FAILURES_PER_ADDRESS)
    # A client that prepends a forged hop is still the hop the proxy appended.
    spoof = {"X-Forwarded-For": "127.2.0.2, 127.2.0.1"}
    limited(await get_cases(app, good, **behind, **spoof), Limit.AUTH_FAILURES_PER_ADDRESS)
    ok = await get_cases(app, good, **behind, **{"X-Forwarded-For": "127.2.0.3"})
    assert ok.status_code == 200


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


async def test_two_apps_on_redis_share_a_limit(
    seeded: Database, service: CaseService, clock: FakeClock
) -> None:
    require(_redis_up(), "needs Redis on 127.0.0.1:6379")
    # A prefix of its own: nothing shared with other runs; keys expire with the window.
    settings = RateLimitSettings(
        auth_failures_per_address="3/minute",
        storage_url="redis://127.0.0.1:6379/0",
        key_prefix=f"nms-test-{secrets.token_hex(6)}",
    )
    limiters = [RateLimiter(settings=settings) for _ in range(2)]
    try:
        first, second = (app_with(seeded, service, clock, rl) for rl in limiters)
        good = await mint_key(first, role=Role.ENGINEER)
        assert (await get_cases(first, guess())).status_code == 401
        assert (await get_cases(second, guess())).status_code == 401
        assert (await get_cases(first, guess())).status_code == 401
        limited(await get_cases(second, good), Limit.AUTH_FAILURES_PER_ADDRESS)
        limited(await get_cases(first, guess()), Limit.AUTH_FAILURES_PER_ADDRESS)
        assert (await get_cases(second, good, address="127.0.0.3")).status_code == 200
        assert [rl.stats.storage_errors for rl in limiters] == [0, 0]
    finally:
        for rl in limiters:
            await rl.close()


async def test_an_unreachable_storage_fails_open_and_is_counted(
    seeded: Database, service: CaseService, clock: FakeClock
) -> None:
    # Port 1 on loopback: connection refused at once.
    rl = RateLimiter(
        settings=RateLimitSettings(
            auth_failures_per_address="1/minute", storage_url="redis://127.0.0.1:1/0"
        )
    )
    app = app_with(seeded, service, clock, rl)
    good = await mint_key(app, role=Role.ENGINEER)
    try:
        for _ in range(3):
            assert (await get_cases(app, guess())).status_code == 401
        assert (await get_cases(app, good)).status_code == 200
    finally:
        await rl.close()
    assert rl.stats.storage_errors >= 4
    assert sum(rl.stats.rejected.values()) == 0


async def test_a_silent_storage_costs_one_timeout_not_one_per_request(
    seeded: Database, service: CaseService, clock: FakeClock
) -> None:
    # An injected fault: a "Redis" on loopback that accepts and never answers.
    connections = 0

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rl = RateLimiter(
        settings=RateLimitSettings(
            storage_url=f"redis://127.0.0.1:{port}/0", storage_timeout="200ms"
        )
    )
    app = app_with(seeded, service, clock, rl)
    good = await mint_key(app, role=Role.ENGINEER)
    try:
        for _ in range(5):
            assert (await get_cases(app, good)).status_code == 200
    finally:
        await rl.close()
        server.close()
        await server.wait_closed()
    # The first check waited 200 ms; every other one (two a request) was let through
    # at once while the storage is left alone.
    assert connections == 1
    assert rl.stats.storage_errors == 10
