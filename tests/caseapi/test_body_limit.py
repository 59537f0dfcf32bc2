"""The request body limit: 413 before the body is read, for declared and chunked bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message

from caseapi.api.app import create_app
from caseapi.api.body_limit import BodyLimit
from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.settings import DEFAULT_MAX_BODY
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import authed_client, make_app, problem
from tests.caseapi.conftest import Database
from tests.caseapi.lifecycle_fixtures import seed

LIMIT = 4096
REQUEST = {"type": "general_request", "subject": "other", "summary": "usage?"}


@pytest.fixture
async def app(database: Database, service: CaseService, clock: FakeClock) -> FastAPI:
    await seed(database)
    app = make_app(database, service, clock)
    app.user_middleware.clear()  # make_app's default limit, replaced by a small one
    app.add_middleware(BodyLimit, max_bytes=LIMIT)
    return app


async def test_a_declared_large_body_is_refused_before_it_is_read(app: FastAPI) -> None:
    big = {**REQUEST, "description": "x" * (LIMIT + 1)}
    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as acme:
        refused = problem(await acme.post("/v1/cases", json=big), 413, "request_entity_too_large")
        assert refused["detail"] == f"the request body is larger than the limit of {LIMIT} bytes"
        assert refused["max_bytes"] == LIMIT
        small = await acme.post("/v1/cases", json=REQUEST)
        assert small.status_code == 201, small.text
    async with authed_client(app, role=Role.ENGINEER) as staff:
        assert (await staff.get("/v1/cases")).json()["count"] == 1


async def test_the_middleware_never_calls_receive_for_a_declared_large_body() -> None:
    async def receive() -> Message:
        raise AssertionError("the body must not be read")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/cases",
        "headers": [(b"content-length", str(50 * 2**20).encode())],
    }
    await BodyLimit(_never, max_bytes=LIMIT)(scope, receive, send)
    assert sent[0]["status"] == 413
    assert (b"content-type", b"application/problem+json") in sent[0]["headers"]


async def test_a_chunked_body_is_refused_once_it_passes_the_limit(app: FastAPI) -> None:
    chunks_sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        yield b'{"type": "general_request", "subject": "other", "summary": "'
        for _ in range(100):
            chunks_sent += 1
            yield b"x" * 1024
        yield b'"}'

    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as acme:
        response = await acme.post(
            "/v1/cases", content=chunks(), headers={"content-type": "application/json"}
        )
    problem(response, 413, "request_entity_too_large")
    async with authed_client(app, role=Role.ENGINEER) as staff:
        assert (await staff.get("/v1/cases")).json()["count"] == 0


async def _never(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("the app must not run")


def test_the_limit_is_positive() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        BodyLimit(_never, max_bytes=0)


async def test_every_app_has_the_default_limit(database: Database) -> None:
    default = create_app(sessionmaker=database.sessionmaker)
    transport = httpx.ASGITransport(app=default)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        over = await client.post("/v1/cases", content=b"x" * (DEFAULT_MAX_BODY + 1))
        at = await client.post("/v1/cases", content=b"x" * DEFAULT_MAX_BODY)
    problem(over, 413, "request_entity_too_large")
    assert at.status_code == 401  # read, then refused for the missing key
