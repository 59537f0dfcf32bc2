"""Helpers for API tests that need keys: mint one for a role, get a client using it.

Usage in a test::

    app = make_app(database, service, clock)
    await add_customer(database.sessionmaker, "acme")
    key = await mint_key(app, role=Role.CUSTOMER, customer_id="acme")
    async with client_for(app, key) as client:
        response = await client.get("/v1/cases")

or in one step: ``async with authed_client(app, role=Role.ENGINEER) as client: ...``.
Keys are minted through ``ApiKeyService`` with the app's clock, so expiry follows
the test's ``FakeClock``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.api.app import create_app
from caseapi.auth.principal import Role
from caseapi.auth.service import ApiKeyService
from caseapi.cases.service import CaseService
from caseapi.clock import Clock
from caseapi.customers.models import Customer
from caseapi.notifications.config import NotificationSettings
from caseapi.users.passwords import cheap_hasher
from tests.caseapi.conftest import Database


def make_app(database: Database, service: CaseService, clock: Clock) -> FastAPI:
    """An app over the test database whose key expiry follows ``clock``.

    Webhooks may point at 127.0.0.0/8 over http, as in a lab (``LAB_WEBHOOK_SETTINGS``).
    """
    return create_app(
        sessionmaker=database.sessionmaker,
        case_service=service,
        clock=clock,
        notifications=LAB_WEBHOOK_SETTINGS,
        # Console passwords: Argon2id at the lowest cost (tests make many accounts).
        password_hasher=cheap_hasher(),
    )


#: ``notifications.webhooks`` of a lab: http and 127.0.0.0/8 allowed.
LAB_WEBHOOK_SETTINGS = NotificationSettings.model_validate(
    {"webhooks": {"allow_http": True, "allow_networks": ["127.0.0.0/8"]}}
)


async def add_customer(
    sessionmaker: async_sessionmaker[AsyncSession],
    customer_id: str,
    *,
    name: str | None = None,
    contract_status: str = "active",
) -> None:
    """Insert a customer unless it exists (customer keys need an existing customer)."""
    async with sessionmaker() as session:
        if await session.get(Customer, customer_id) is None:
            session.add(
                Customer(
                    id=customer_id,
                    name=name or customer_id.title(),
                    contract_status=contract_status,
                    attributes={},
                )
            )
            await session.commit()


def apikey_service(app: FastAPI) -> ApiKeyService:
    """The app's API key service."""
    service: ApiKeyService = app.state.apikey_service
    return service


async def mint_key(
    app: FastAPI,
    *,
    role: Role,
    customer_id: str | None = None,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> str:
    """Create a key through the app's service and return its secret."""
    created = await apikey_service(app).create_key(
        name=name or f"test-{role.value}-{customer_id or 'staff'}",
        role=role,
        customer_id=customer_id,
        expires_at=expires_at,
        created_by="test",
    )
    return created.secret


@asynccontextmanager
async def client_for(app: FastAPI, key: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` on ``app`` sending ``key`` (no header when ``None``)."""
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as client:
        yield client


@asynccontextmanager
async def authed_client(
    app: FastAPI, *, role: Role, customer_id: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """Mint a key for ``role`` (creating ``customer_id`` if needed) and yield a client."""
    if customer_id is not None:
        await add_customer(app.state.sessionmaker, customer_id)
    key = await mint_key(app, role=role, customer_id=customer_id)
    async with client_for(app, key) as client:
        yield client


PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The RFC 9457 body of ``response``, after checking its status and ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body
