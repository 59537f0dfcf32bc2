"""The console's authorisation matrix: every page route x every kind of person.

Generated from the app's routes: every route left out of the OpenAPI document whose
path is a console path (``caseapi.web.paths.is_page_path``), for each method. Each
must have a row in ``PAGES`` below saying what each person gets, and every row must
name a route that exists: a new page without a row fails this test, and so does a
row for a page that is gone.

- GET routes: the status each person gets; ``LOGIN`` is the 303 to ``/login`` of a
  visitor without a session; ``Redirect(...)`` another 303.
- POST routes: ``form(allowed)``. A visitor is sent to the login (303); a signed-in
  person posting without the CSRF token gets 403 and so does, with the token, anyone
  whose role is not in ``allowed`` - and in neither case did anything change
  (the audit log holds no new row). What an allowed person's post does is the area
  tests' business.

Path parameters are filled from ``seeds`` (a case of cust-1, ``ntu-1``, an account):
a new parameter name needs a seed there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import httpx
from fastapi import FastAPI, routing
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from caseapi.audit.models import AuditEvent
from caseapi.auth.principal import Role
from caseapi.incidents import IncidentService
from caseapi.web.paths import is_page_path
from tests.caseapi.conftest import incident
from tests.caseapi.web.pages import Browser, anonymous, login_as, make_user
from tests.caseapi.web.sse import open_stream, token_of

ANONYMOUS: Final = "anonymous"
CUSTOMER: Final = "customer"
ENGINEER: Final = "engineer"
NOC: Final = "noc"
ADMIN: Final = "admin"
PEOPLE: Final = (ANONYMOUS, CUSTOMER, ENGINEER, NOC, ADMIN)
STAFF: Final = frozenset({ENGINEER, NOC, ADMIN})
SIGNED_IN: Final = frozenset({CUSTOMER, ENGINEER, NOC, ADMIN})


@dataclass(frozen=True)
class Redirect:
    """A 303 whose ``Location`` starts with ``to``."""

    to: str


LOGIN: Final = Redirect("/login")
Expect = int | Redirect


@dataclass(frozen=True)
class Form:
    """A state-changing route: who may post it (with the CSRF token)."""

    allowed: frozenset[str]
    #: What a visitor gets (the login form itself answers visitors with 403).
    anonymous: Expect = LOGIN


def form(allowed: frozenset[str], *, anonymous: Expect = LOGIN) -> Form:
    return Form(allowed=allowed, anonymous=anonymous)


def page(*, anonymous: Expect = LOGIN, **people: Expect) -> dict[str, Expect]:
    missing = set(PEOPLE) - {ANONYMOUS} - set(people)
    assert not missing, f"page(...) needs every person; missing {sorted(missing)}"
    return {ANONYMOUS: anonymous, **people}


def staff_page(*, customer: Expect = 403) -> dict[str, Expect]:
    return page(customer=customer, engineer=200, noc=200, admin=200)


def customer_page() -> dict[str, Expect]:
    return page(customer=200, engineer=403, noc=403, admin=403)


def admin_page() -> dict[str, Expect]:
    return page(customer=403, engineer=403, noc=403, admin=200)


def everyone_page() -> dict[str, Expect]:
    return page(customer=200, engineer=200, noc=200, admin=200)


#: (method, path as the router declares it) -> what each person gets.
PAGES: Final[dict[tuple[str, str], dict[str, Expect] | Form]] = {
    # -- the frame --------------------------------------------------------------
    ("GET", "/"): page(
        customer=Redirect("/portal"),
        engineer=Redirect("/cases"),
        noc=Redirect("/cases"),
        admin=Redirect("/cases"),
    ),
    # -- auth (sign-in, account, users) -------------------------------------------
    ("GET", "/login"): page(anonymous=200, customer=200, engineer=200, noc=200, admin=200),
    ("POST", "/login"): form(frozenset(), anonymous=403),
    ("POST", "/logout"): form(SIGNED_IN),
    ("GET", "/account"): everyone_page(),
    ("POST", "/account/preferences"): form(SIGNED_IN),
    ("POST", "/account/password"): form(SIGNED_IN),
    ("POST", "/account/signout-everywhere"): form(SIGNED_IN),
    ("GET", "/admin/users"): admin_page(),
    ("POST", "/admin/users"): form(frozenset({ADMIN})),
    ("GET", "/admin/users/{user_id}"): admin_page(),
    ("POST", "/admin/users/{user_id}/disable"): form(frozenset({ADMIN})),
    ("POST", "/admin/users/{user_id}/enable"): form(frozenset({ADMIN})),
    ("POST", "/admin/users/{user_id}/password"): form(frozenset({ADMIN})),
    ("POST", "/admin/users/{user_id}/role"): form(frozenset({ADMIN})),
    # -- the engineers' workspace -----------------------------------------------------
    ("GET", "/cases"): staff_page(),
    ("GET", "/cases/fragment"): staff_page(),
    ("GET", "/cases/new"): staff_page(),
    ("POST", "/cases/new"): form(STAFF),
    ("GET", "/cases/{ref}"): staff_page(),
    # No such canned reply: the 404 page; no RFO published: 409 as the API's.
    ("GET", "/cases/{ref}/replies/{reply_id}"): page(
        customer=403, engineer=404, noc=404, admin=404
    ),
    ("GET", "/cases/{ref}/rfo.pdf"): page(customer=403, engineer=409, noc=409, admin=409),
    ("POST", "/cases/{ref}/assign"): form(STAFF),
    ("POST", "/cases/{ref}/cancel"): form(STAFF),
    ("POST", "/cases/{ref}/comment"): form(STAFF),
    ("POST", "/cases/{ref}/commitment"): form(STAFF),
    ("POST", "/cases/{ref}/escalate"): form(STAFF),
    ("POST", "/cases/{ref}/forward"): form(STAFF),
    ("POST", "/cases/{ref}/handoff"): form(STAFF),
    ("POST", "/cases/{ref}/reopen"): form(STAFF),
    ("POST", "/cases/{ref}/rfo"): form(STAFF),
    ("POST", "/cases/{ref}/rfo/publish"): form(STAFF),
    ("POST", "/cases/{ref}/take"): form(STAFF),
    ("POST", "/cases/{ref}/transition"): form(STAFF),
    ("GET", "/ntus"): staff_page(),
    ("GET", "/ntus/{ntu_id}"): staff_page(),
    ("GET", "/maintenance"): staff_page(),
    ("GET", "/maintenance/new"): staff_page(),
    ("POST", "/maintenance/new"): form(STAFF),
    # No such window: the staff's 404 page.
    ("GET", "/maintenance/{ref}"): page(customer=403, engineer=404, noc=404, admin=404),
    ("POST", "/maintenance/{ref}/cancel"): form(STAFF),
    ("POST", "/maintenance/{ref}/complete"): form(STAFF),
    # -- the customer portal ----------------------------------------------------------
    ("GET", "/portal"): customer_page(),
    ("GET", "/portal/cases/new"): customer_page(),
    ("POST", "/portal/cases/new"): form(frozenset({CUSTOMER})),
    ("GET", "/portal/cases/{ref}"): customer_page(),
    ("GET", "/portal/cases/{ref}/timeline"): customer_page(),
    # No RFO published, no such attachment: the customer's 404 page.
    ("GET", "/portal/cases/{ref}/rfo"): page(customer=404, engineer=403, noc=403, admin=403),
    ("GET", "/portal/cases/{ref}/attachments/{attachment_id}"): page(
        customer=404, engineer=403, noc=403, admin=403
    ),
    ("POST", "/portal/cases/{ref}/reply"): form(frozenset({CUSTOMER})),
    ("POST", "/portal/cases/{ref}/escalate"): form(frozenset({CUSTOMER})),
    ("GET", "/portal/maintenance"): customer_page(),
    ("GET", "/portal/ntus"): customer_page(),
    # -- the NOC board and the change stream ----------------------------------------
    ("GET", "/noc"): staff_page(),
    ("GET", "/noc/fragment"): staff_page(),
    ("GET", "/events"): staff_page(),
}
#: Routes whose 200 is a stream that never ends: checked by its response's start.
STREAMS: Final = frozenset({"/events"})


def page_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every console route of ``app``, included routers' too."""
    contexts = getattr(routing, "iter_route_contexts", None)
    if contexts is None:  # FastAPI before lazily included routers: a flat list
        found = [
            (route.path_format, route.methods or set(), route.include_in_schema)
            for route in app.routes
            if isinstance(route, APIRoute)
        ]
    else:
        found = [
            (context.path_format, context.methods or set(), context.include_in_schema)
            for context in contexts(app.routes)
            if isinstance(context.original_route, APIRoute)
        ]
    return {
        (method, path)
        for path, methods, in_schema in found
        if not in_schema and is_page_path(path)
        for method in methods
    }


def test_every_page_route_has_a_row_and_every_row_a_route(app: FastAPI) -> None:
    routes = page_routes(app)
    missing = sorted(routes - PAGES.keys())
    stale = sorted(PAGES.keys() - routes)
    problems = [
        f"{method} {path}: no row in PAGES (tests/caseapi/web/test_authz_pages.py) - add "
        f"what each of {', '.join(PEOPLE)} gets, e.g. staff_page() or form(STAFF)"
        for method, path in missing
    ] + [
        f"{method} {path}: a row in PAGES for a route that does not exist" for method, path in stale
    ]
    assert not problems, "\n".join(problems)


async def _seeds(app: FastAPI, incidents: IncidentService) -> dict[str, str]:
    """Values for path parameters: a case of cust-1 (whose contact is the customer
    here), its NTU, an account."""
    ref = await incidents.open_incident(incident("ntu-1", customer_id="cust-1"))
    user = await make_user(app, role=Role.ENGINEER, name="seeded-user")
    return {
        "ref": ref,
        "ntu_id": "ntu-1",
        "user_id": str(user.id),
        "attachment_id": "1",
        "reply_id": "999999",
    }


def _fill(path: str, seeds: Mapping[str, str]) -> str:
    filled = path
    for name, value in seeds.items():
        filled = filled.replace("{" + name + "}", value)
    assert "{" not in filled, f"{path}: no seed for its parameter; add one in _seeds()"
    return filled


def _check(got_status: int, location: str | None, expected: Expect) -> bool:
    if isinstance(expected, Redirect):
        return got_status == 303 and (location or "").startswith(expected.to)
    return got_status == expected


async def _audit_rows(app: FastAPI) -> int:
    async with app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


async def _check_form(
    method: str,
    path: str,
    url: str,
    row: Form,
    visitor: httpx.AsyncClient,
    people: Mapping[str, Browser],
) -> list[str]:
    where = f"{method} {path}"
    failures = []
    response = await visitor.post(url)
    if not _check(response.status_code, response.headers.get("location"), row.anonymous):
        failures.append(f"{where} {ANONYMOUS}: {response.status_code}, expected {row.anonymous}")
    for who, browser in people.items():
        response = await browser.post(url, csrf=False)
        if response.status_code != 403:
            failures.append(f"{where} {who} without CSRF: {response.status_code}, expected 403")
        if who not in row.allowed and row.anonymous == LOGIN:
            response = await browser.post(url)
            if response.status_code != 403:
                failures.append(f"{where} {who} (role): {response.status_code}, expected 403")
    return failures


async def test_every_page_route_answers_each_person_as_its_row_says(
    app: FastAPI, incidents: IncidentService
) -> None:
    seeds = await _seeds(app, incidents)
    failures: list[str] = []
    async with (
        anonymous(app) as visitor,
        login_as(app, role=Role.CUSTOMER, customer_id="cust-1") as customer,
        login_as(app, role=Role.ENGINEER) as engineer,
        login_as(app, role=Role.NOC) as noc,
        login_as(app, role=Role.ADMIN) as admin,
    ):
        people = {CUSTOMER: customer, ENGINEER: engineer, NOC: noc, ADMIN: admin}
        for method, path in sorted(page_routes(app) & PAGES.keys()):
            url = _fill(path, seeds)
            row = PAGES[(method, path)]
            if isinstance(row, Form):
                before = await _audit_rows(app)
                failures += await _check_form(method, path, url, row, visitor, people)
                if await _audit_rows(app) != before:
                    failures.append(f"{method} {path}: a refused post changed something")
                continue
            for who in PEOPLE:
                expected = row[who]
                if path in STREAMS and expected == 200:
                    async with open_stream(app, token_of(people[who])) as stream:
                        status, location = stream.status, ""
                else:
                    client = visitor if who == ANONYMOUS else people[who].client
                    response = await client.request(method, url)
                    status, location = response.status_code, response.headers.get("location", "")
                if not _check(status, location, expected):
                    failures.append(
                        f"{method} {path} {who}: {status} {location}, expected {expected}"
                    )
    assert not failures, "\n".join(failures)
