"""Helpers for console page tests: a signed-in browser-like client for a role.

Usage::

    async with login_as(app, role=Role.ENGINEER) as browser:
        page = await browser.get("/cases")
        done = await browser.post("/cases/CS-.../take")   # sends the CSRF token

``post`` adds the session's CSRF token to the form unless ``csrf=False`` (to test the
refusal). Redirects are not followed, so a test sees the 303s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from caseapi.auth.principal import Principal, Role
from caseapi.web.session import (
    CSRF_FIELD,
    SESSION_COOKIE,
    MemorySessionStore,
    WebSession,
    new_csrf_token,
)
from tests.caseapi.auth_fixtures import add_customer


@dataclass
class Browser:
    """An HTTP client with a console session's cookie and its CSRF token."""

    client: httpx.AsyncClient
    session: WebSession

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(url, **kwargs)

    async def post(
        self,
        url: str,
        data: Mapping[str, Any] | None = None,
        *,
        csrf: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form.setdefault(CSRF_FIELD, self.session.csrf_token)
        return await self.client.post(url, data=form, **kwargs)


@asynccontextmanager
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client without a session."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@asynccontextmanager
async def login_as(
    app: FastAPI,
    *,
    role: Role,
    customer_id: str | None = None,
    name: str | None = None,
    timezone: str = "UTC",
    language: str = "en",
) -> AsyncIterator[Browser]:
    """A client signed in as a new person with ``role`` (a customer contact of
    ``customer_id``, created if needed)."""
    if customer_id is not None:
        await add_customer(app.state.sessionmaker, customer_id)
    name = name or (f"contact-{customer_id}" if customer_id else f"{role.value}-1")
    session = WebSession(
        user_id=None,
        email=f"{name}@example.net",
        display_name=name,
        principal=Principal(key_id=None, name=name, role=role, customer_id=customer_id),
        csrf_token=new_csrf_token(),
        timezone=timezone,
        language=language,
    )
    store = app.state.web_sessions
    assert isinstance(store, MemorySessionStore), "login_as needs the app's session store"
    token = store.open(session)
    async with anonymous(app) as client:
        client.cookies.set(SESSION_COOKIE, token)
        yield Browser(client=client, session=session)
