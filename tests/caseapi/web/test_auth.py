"""Signing in and out of the console, the account page, cookies, login backoff."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from caseapi.audit.models import AuditEvent
from caseapi.auth.principal import Role
from caseapi.ratelimit.config import RateLimitSettings
from caseapi.ratelimit.service import RateLimiter
from caseapi.users.service import UserService
from caseapi.web.auth.cookies import LOGIN_CSRF_COOKIE
from caseapi.web.session import SESSION_COOKIE
from nms.clock import FakeClock
from tests.caseapi.web.pages import (
    COOKIE_DOMAIN,
    TEST_PASSWORD,
    anonymous,
    login_as,
    login_form_token,
    make_user,
    sign_in,
)

EMAIL = "engineer-1@example.net"


async def _actions(app: FastAPI) -> list[tuple[str, str, str]]:
    async with app.state.sessionmaker() as session:
        rows = (await session.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars()
        return [(row.action, row.outcome, row.actor_kind) for row in rows]


async def test_the_login_form_has_its_fields_and_a_csrf_cookie(app: FastAPI) -> None:
    async with anonymous(app) as client:
        response = await client.get("/login", params={"next": "/cases"})
    assert response.status_code == 200
    page = response.text
    assert '<label for="login-email">E-mail</label>' in page and 'name="email"' in page
    assert '<label for="login-password">Password</label>' in page and 'name="password"' in page
    assert ">Sign in</button>" in page and 'name="next" value="/cases"' in page
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(LOGIN_CSRF_COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    assert response.headers["cache-control"] == "no-store"


async def test_signing_in_opens_a_new_session_and_follows_next(app: FastAPI) -> None:
    await make_user(app, role=Role.ENGINEER, name="engineer-1")
    async with anonymous(app) as client:
        client.cookies.set(SESSION_COOKIE, "planted-by-someone-else", domain=COOKIE_DOMAIN)
        response = await sign_in(client, "Engineer-1@Example.net", next_path="/account")
        assert response.status_code == 303
        assert response.headers["location"] == "/account"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        token = client.cookies.get(SESSION_COOKIE)
        assert token and token != "planted-by-someone-else"
        account = await client.get("/account")
    assert account.status_code == 200
    assert EMAIL in account.text
    user = await app.state.user_service.find_user(EMAIL)
    assert user.last_login_at is not None
    assert ("user.login", "success", "system") in await _actions(app)


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/x"])
async def test_next_is_followed_only_to_local_paths(app: FastAPI, target: str) -> None:
    await make_user(app, role=Role.ENGINEER, name="engineer-1")
    async with anonymous(app) as client:
        response = await sign_in(client, EMAIL, next_path=target)
    assert response.headers["location"] == "/"


async def test_a_wrong_password_an_unknown_email_and_a_disabled_account_look_alike(
    app: FastAPI,
) -> None:
    user = await make_user(app, role=Role.ENGINEER, name="engineer-1")
    await make_user(app, role=Role.NOC, name="off")
    off = await app.state.user_service.find_user("off@example.net")
    await app.state.user_service.set_disabled(off.id, disabled=True, by_user_id=None)
    pages = []
    async with anonymous(app) as client:
        for email, password in (
            (EMAIL, "not-the-password"),
            ("nobody@example.net", TEST_PASSWORD),
            ("off@example.net", TEST_PASSWORD),
        ):
            response = await sign_in(client, email, password)
            assert response.status_code == 401
            assert SESSION_COOKIE not in client.cookies
            error = response.text.split('data-test="login-error">', 1)[1].split("<", 1)[0]
            pages.append(error)
            assert f'value="{email}"' in response.text  # the address is kept
            assert "not-the-password" not in response.text
    assert len(set(pages)) == 1 and "not right" in pages[0]
    assert user.id is not None
    refused = [a for a in await _actions(app) if a[:2] == ("user.login", "refused")]
    assert len(refused) == 3


async def test_the_login_form_refuses_a_post_without_its_csrf_token(app: FastAPI) -> None:
    await make_user(app, role=Role.ENGINEER, name="engineer-1")
    async with anonymous(app) as client:
        no_cookie = await client.post(
            "/login", data={"email": EMAIL, "password": TEST_PASSWORD, "csrf_token": "x" * 43}
        )
        token = await login_form_token(client)
        other = await client.post(
            "/login", data={"email": EMAIL, "password": TEST_PASSWORD, "csrf_token": token + "x"}
        )
        missing = await client.post("/login", data={"email": EMAIL, "password": TEST_PASSWORD})
    for response in (no_cookie, other, missing):
        assert response.status_code == 403
        assert "expired or did not come from this site" in response.text
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert not [a for a in await _actions(app) if a[0] == "user.login"]


async def test_repeated_failures_back_off_without_checking_the_password(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.state.rate_limiter = RateLimiter(
        settings=RateLimitSettings(
            login_failures_per_account="3/minute", login_failures_per_address="5/minute"
        )
    )
    await make_user(app, role=Role.ENGINEER, name="engineer-1")
    await make_user(app, role=Role.ENGINEER, name="engineer-2")
    async with anonymous(app) as client:
        for _ in range(3):
            assert (await sign_in(client, EMAIL, "wrong-password-1")).status_code == 401
        checked: list[str] = []
        original = UserService.authenticate

        async def spy(self: UserService, email: str, password: str) -> object:
            checked.append(email)
            return await original(self, email, password)

        monkeypatch.setattr(UserService, "authenticate", spy)
        blocked = await sign_in(client, EMAIL)  # the right password, refused all the same
        assert blocked.status_code == 429
        assert "Too many attempts; try again in" in blocked.text
        assert "seconds" in blocked.text and int(blocked.headers["retry-after"]) >= 1
        assert checked == []
        # Another account from this address still may, until the address's limit.
        assert (await sign_in(client, "engineer-2@example.net")).status_code == 303
        assert checked == ["engineer-2@example.net"]
        for _ in range(2):
            await sign_in(client, "nobody@example.net", "wrong-password-2")
        by_address = await sign_in(client, "engineer-2@example.net")
    assert by_address.status_code == 429


async def test_logout_ends_the_session_and_needs_the_csrf_token(app: FastAPI) -> None:
    async with login_as(app, role=Role.ENGINEER) as engineer:
        refused = await engineer.post("/logout", csrf=False)
        assert refused.status_code == 403
        assert (await engineer.get("/account")).status_code == 200
        token = engineer.client.cookies.get(SESSION_COOKIE)
        assert token is not None and await app.state.web_sessions.lookup(token) is not None
        done = await engineer.post("/logout")
        assert done.status_code == 303 and done.headers["location"] == "/login"
        assert 'nms_session=""' in done.headers["set-cookie"]
        assert engineer.client.cookies.get(SESSION_COOKIE) is None
        assert await app.state.web_sessions.lookup(token) is None
    assert ("user.logout", "success", "user") in await _actions(app)


async def test_an_expired_session_goes_to_the_login_and_back(
    app: FastAPI, clock: FakeClock
) -> None:
    async with login_as(app, role=Role.ENGINEER) as engineer:
        assert (await engineer.get("/account")).status_code == 200
        clock.advance(timedelta(minutes=31))
        response = await engineer.get("/account")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/account"
        back = await sign_in(engineer.client, EMAIL, next_path="/account")
        assert back.headers["location"] == "/account"
        assert (await engineer.get("/account")).status_code == 200


async def test_the_session_cookie_is_secure_over_https_and_behind_a_trusted_proxy(
    app: FastAPI,
) -> None:
    import ipaddress

    await make_user(app, role=Role.ENGINEER, name="engineer-1")
    transport = httpx.ASGITransport(app=app, client=("10.0.0.5", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="https://test") as client:
        direct = await sign_in(client, EMAIL)
    assert "Secure" in direct.headers["set-cookie"]

    proto = {"X-Forwarded-Proto": "https"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=proto
    ) as client:
        untrusted = await sign_in(client, EMAIL)
        assert "Secure" not in untrusted.headers["set-cookie"]
        app.state.trusted_proxies = (ipaddress.ip_network("10.0.0.0/8"),)
        client.cookies.clear()
        trusted = await sign_in(client, EMAIL)
    assert "Secure" in trusted.headers["set-cookie"]


async def test_the_account_page_changes_preferences_and_password(app: FastAPI) -> None:
    async with (
        login_as(app, role=Role.ENGINEER) as engineer,
        login_as(app, role=Role.ENGINEER) as elsewhere,
    ):
        page = await engineer.get("/account")
        assert page.status_code == 200 and 'data-test="preferences"' in page.text
        bad = await engineer.post(
            "/account/preferences", {"timezone": "Mars/Base", "language": "en"}
        )
        assert bad.status_code == 422 and "Mars/Base" in bad.text
        good = await engineer.post(
            "/account/preferences", {"timezone": "Europe/Rome", "language": "it"}
        )
        assert good.headers["location"] == "/account?done=preferences"
        shown = await engineer.get("/account?done=preferences")
        assert "preferences are saved" in shown.text and 'lang="it"' in shown.text

        wrong = await engineer.post(
            "/account/password",
            {
                "current_password": "not-it-at-all",
                "new_password": "a-brand-new-secret",
                "new_password_again": "a-brand-new-secret",
            },
        )
        assert wrong.status_code == 422 and "current_password" in wrong.text
        weak = await engineer.post(
            "/account/password",
            {
                "current_password": TEST_PASSWORD,
                "new_password": "short",
                "new_password_again": "short",
            },
        )
        assert weak.status_code == 422 and "at least 12" in weak.text
        changed = await engineer.post(
            "/account/password",
            {
                "current_password": TEST_PASSWORD,
                "new_password": "a-brand-new-secret",
                "new_password_again": "a-brand-new-secret",
            },
        )
        assert changed.headers["location"] == "/account?done=password"
        # This browser stays signed in; the other one is signed out.
        assert (await engineer.get("/account")).status_code == 200
        assert (await elsewhere.get("/account")).status_code == 303
    async with anonymous(app) as client:
        assert (await sign_in(client, EMAIL)).status_code == 401
        assert (await sign_in(client, EMAIL, "a-brand-new-secret")).status_code == 303


async def test_sign_out_everywhere(app: FastAPI) -> None:
    async with (
        login_as(app, role=Role.NOC) as here,
        login_as(app, role=Role.NOC) as there,
    ):
        done = await here.post("/account/signout-everywhere")
        assert done.status_code == 303 and done.headers["location"] == "/login"
        assert (await here.get("/account")).status_code == 303
        assert (await there.get("/account")).status_code == 303
    assert ("user.signout_all", "success", "user") in await _actions(app)


async def test_a_nul_character_in_a_form_is_refused_and_the_api_keeps_its_422(
    app: FastAPI,
) -> None:
    async with anonymous(app) as client:
        token = await login_form_token(client)
        page = await client.post(
            "/login", data={"email": "a\x00@example.net", "password": "x", "csrf_token": token}
        )
        # A form body sent to a JSON route is still the API's 4xx, not a failure.
        api = await client.post(
            "/v1/cases",
            content=b"a=b",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert page.status_code == 422 and "NUL" in page.text
    assert api.status_code in (401, 422), api.text


async def test_signing_in_again_ends_the_browsers_previous_session(app: FastAPI) -> None:
    async with login_as(app, role=Role.ENGINEER) as engineer:
        before = engineer.client.cookies.get(SESSION_COOKIE)
        assert before is not None
        assert (await sign_in(engineer.client, EMAIL)).status_code == 303
        after = engineer.client.cookies.get(SESSION_COOKIE)
        assert after is not None and after != before
        assert await app.state.web_sessions.lookup(before) is None
        assert await app.state.web_sessions.lookup(after) is not None
