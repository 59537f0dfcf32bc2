"""Helpers for console page tests: a signed-in browser-like client for a role.

Usage::

    async with login_as(app, role=Role.ENGINEER) as browser:
        page = await browser.get("/cases")
        done = await browser.post("/cases/CS-.../take")   # sends the CSRF token

``post`` adds the session's CSRF token to the form unless ``csrf=False`` (to test the
refusal). Redirects are not followed, so a test sees the 303s.

``login_as`` makes a real account with the app's users service (password
``TEST_PASSWORD``; the same account again for the same name) and opens a session for
it in the app's session store, as a sign-in does; ``sign_in`` goes through the
``/login`` form instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from caseapi.auth.principal import Principal, Role
from caseapi.users.errors import EmailTakenError
from caseapi.users.models import User
from caseapi.users.service import UserService
from caseapi.users.sessions import DatabaseSessionStore
from caseapi.web.auth.cookies import LOGIN_CSRF_COOKIE
from caseapi.web.session import (
    CSRF_FIELD,
    SESSION_COOKIE,
    MemorySessionStore,
    WebSession,
    new_csrf_token,
)
from tests.caseapi.auth_fixtures import add_customer

#: How the cookie jar names ``http://test`` (a host without a dot gets ``.local``).
COOKIE_DOMAIN = "test.local"
#: The password of every account ``login_as`` makes.
TEST_PASSWORD = "test-password-of-a-person"


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


async def make_user(
    app: FastAPI,
    *,
    role: Role,
    customer_id: str | None = None,
    name: str,
    timezone: str = "UTC",
    language: str = "en",
    password: str = TEST_PASSWORD,
) -> User:
    """The account ``<name>@example.net`` (made with the users service if new)."""
    if customer_id is not None:
        await add_customer(app.state.sessionmaker, customer_id)
    users: UserService = app.state.user_service
    email = f"{name}@example.net"
    try:
        return await users.create_user(
            email=email,
            display_name=name,
            password=password,
            role=role,
            customer_id=customer_id,
            timezone=timezone,
            language=language,
        )
    except EmailTakenError:
        return await users.find_user(email)


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
    """A client signed in as a person with ``role`` (a customer contact of
    ``customer_id``, created if needed); the same name is the same account."""
    name = name or (f"contact-{customer_id}" if customer_id else f"{role.value}-1")
    store = app.state.web_sessions
    if isinstance(store, MemorySessionStore):  # an app built with the memory store
        if customer_id is not None:
            await add_customer(app.state.sessionmaker, customer_id)
        session = WebSession(
            user_id=None,
            email=f"{name}@example.net",
            display_name=name,
            principal=Principal(key_id=None, name=name, role=role, customer_id=customer_id),
            csrf_token=new_csrf_token(),
            timezone=timezone,
            language=language,
        )
        token = store.open(session)
    else:
        assert isinstance(store, DatabaseSessionStore), "login_as needs the app's session store"
        user = await make_user(
            app,
            role=role,
            customer_id=customer_id,
            name=name,
            timezone=timezone,
            language=language,
        )
        token, session = await store.open(user)
    async with anonymous(app) as client:
        # The jar's name for the test host, so the server's Set-Cookie replaces it.
        client.cookies.set(SESSION_COOKIE, token, domain=COOKIE_DOMAIN)
        yield Browser(client=client, session=session)


async def login_form_token(client: httpx.AsyncClient, url: str = "/login") -> str:
    """GET the sign-in form; the CSRF token it carries (its cookie is now set)."""
    response = await client.get(url)
    assert response.status_code == 200, response.text
    token = client.cookies.get(LOGIN_CSRF_COOKIE)
    assert token is not None and f'value="{token}"' in response.text
    return token


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = TEST_PASSWORD, *, next_path: str = "/"
) -> httpx.Response:
    """Post the sign-in form as a browser does (form first, for its CSRF token)."""
    token = await login_form_token(client)
    return await client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token, "next": next_path},
    )
