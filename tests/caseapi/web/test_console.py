"""The console's frame: landing, login redirects, error pages, headers, CSRF."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.responses import PlainTextResponse

from caseapi.auth.principal import Role
from caseapi.web.deps import StaffForm, StaffPage
from caseapi.web.errors import safe_next
from caseapi.web.headers import CONTENT_SECURITY_POLICY
from tests.caseapi.web.pages import anonymous, login_as


async def test_the_start_page_sends_each_person_home(app: FastAPI) -> None:
    async with anonymous(app) as client:
        response = await client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    async with login_as(app, role=Role.ENGINEER) as engineer:
        assert (await engineer.get("/")).headers["location"] == "/cases"
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        assert (await customer.get("/")).headers["location"] == "/portal"


async def test_a_page_without_a_session_goes_to_the_login_and_back(app: FastAPI) -> None:
    _test_routes(app)
    async with anonymous(app) as client:
        response = await client.get("/test/staff", params={"x": "1"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/test/staff%3Fx%3D1"


async def test_an_unknown_page_is_an_html_404_and_the_api_keeps_its_problems(
    app: FastAPI,
) -> None:
    async with anonymous(app) as client:
        page = await client.get("/no/such/page")
        api = await client.get("/v1/no-such-thing")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "does not exist" in page.text and "Traceback" not in page.text
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    assert "content-security-policy" not in api.headers


async def test_a_page_for_another_role_is_a_403_page(app: FastAPI) -> None:
    _test_routes(app)
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        response = await customer.get("/test/staff")
    assert response.status_code == 403
    assert "not for your role" in response.text


async def test_a_form_without_or_with_a_wrong_csrf_token_is_refused(app: FastAPI) -> None:
    _test_routes(app)
    async with login_as(app, role=Role.ENGINEER) as engineer:
        missing = await engineer.post("/test/form", csrf=False)
        wrong = await engineer.post("/test/form", {"csrf_token": "x" * 43})
        good = await engineer.post("/test/form")
        header = await engineer.client.post(
            "/test/form", headers={"X-CSRF-Token": engineer.session.csrf_token}
        )
    assert (missing.status_code, wrong.status_code) == (403, 403), missing.text
    assert "out of date" in missing.text
    assert app.state.test_posts == 2
    assert (good.status_code, header.status_code) == (200, 200)


async def test_an_unexpected_error_is_a_plain_500_page(app: FastAPI) -> None:
    _test_routes(app)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        login_as(app, role=Role.ENGINEER) as engineer,
        httpx.AsyncClient(
            transport=transport, base_url="http://test", cookies=engineer.client.cookies
        ) as client,
    ):
        response = await client.get("/test/boom")
    assert response.status_code == 500
    assert "went wrong on our side" in response.text
    assert "RuntimeError" not in response.text and "secret detail" not in response.text


@pytest.mark.parametrize(
    ("given", "followed"),
    [
        ("/cases/CS-1", "/cases/CS-1"),
        ("/cases?queue=mine", "/cases?queue=mine"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/x\r\nSet-Cookie: a=b", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_only_local_paths_are_followed_after_login(given: str | None, followed: str) -> None:
    assert safe_next(given) == followed


async def test_static_files_are_served_with_their_headers(app: FastAPI) -> None:
    async with anonymous(app) as client:
        response = await client.get("/static/console.js")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"


def _test_routes(app: FastAPI) -> None:
    """Routes that exist only in these tests: a staff page, a staff form, a bug."""
    app.state.test_posts = 0

    async def staff_page(web: StaffPage) -> PlainTextResponse:
        return PlainTextResponse(web.display_name)

    async def staff_form(web: StaffForm) -> PlainTextResponse:
        app.state.test_posts += 1
        return PlainTextResponse("done")

    async def boom(web: Annotated[object, Depends(lambda: None)]) -> PlainTextResponse:
        raise RuntimeError("secret detail")

    app.add_api_route("/test/staff", staff_page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/test/form", staff_form, methods=["POST"], include_in_schema=False)
    app.add_api_route("/test/boom", boom, methods=["GET"], include_in_schema=False)
