"""The authorisation matrix: every endpoint x every kind of caller.

The endpoint list comes from the app's OpenAPI schema, so a new route that is not in
``EXPECTED`` fails ``test_every_route_has_an_expectation``: nobody can add an
endpoint without deciding who may call it.

Callers: customer A, customer B, engineer, noc, admin, service, no key, a revoked
key, an expired key. Rules per endpoint: who is admitted (everyone else: 403; no or
a bad key: 401). A customer on the other customer's case gets 404. And no response
to a customer contains the text of an internal comment.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import httpx
import pytest
from fastapi import FastAPI

from caseapi.auth.principal import STAFF_ROLES, Role
from caseapi.cases.service import CaseService
from caseapi.incidents import IncidentService
from caseapi.ntus.models import Ntu
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import add_customer, client_for, make_app, mint_key
from tests.caseapi.conftest import START, Database, incident

MARKER: Final = "INTERNAL-MARKER-7f3a9c"

ALL = frozenset(Role)
STAFF = frozenset(STAFF_ROLES)
PARTICIPANTS = STAFF | {Role.CUSTOMER}
ADMIN = frozenset({Role.ADMIN})
CUSTOMER = frozenset({Role.CUSTOMER})
PUBLIC = None  # no key needed
# Customers manage their own webhooks; engineers and admins anyone's (the NOC reads).
WEBHOOK_WRITERS = frozenset({Role.CUSTOMER, Role.ENGINEER, Role.ADMIN})


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role] | None
    body: dict[str, Any] | None = None
    #: No key needed: a token in the request is the credential (an ack link).
    token: bool = False


EXPECTED: Final[dict[tuple[str, str], Rule]] = {
    ("GET", "/healthz"): Rule(PUBLIC),
    ("GET", "/v1/ntus"): Rule(ALL),
    ("GET", "/v1/ntus/{ntu_id}/status"): Rule(ALL),
    ("GET", "/v1/apikeys"): Rule(ADMIN),
    ("POST", "/v1/apikeys"): Rule(ADMIN, {"name": "m", "role": "noc"}),
    ("DELETE", "/v1/apikeys/{key_id}"): Rule(ADMIN),
    ("GET", "/v1/cases"): Rule(ALL),
    ("POST", "/v1/cases"): Rule(
        ALL, {"type": "general_request", "summary": "s", "subject": "other"}
    ),
    ("GET", "/v1/cases/{ref}"): Rule(ALL),
    ("PATCH", "/v1/cases/{ref}"): Rule(STAFF, {"priority": "P2", "reason": "r"}),
    ("GET", "/v1/cases/{ref}/timeline"): Rule(ALL),
    ("POST", "/v1/cases/{ref}/transitions"): Rule(STAFF, {"to": "in_progress"}),
    ("POST", "/v1/cases/{ref}/assign"): Rule(STAFF, {"assignee": "bob"}),
    ("POST", "/v1/cases/{ref}/take"): Rule(STAFF),
    ("POST", "/v1/cases/{ref}/handoff"): Rule(STAFF, {}),
    # Admitted callers name no team or person: 422, after the role and tenancy checks.
    ("POST", "/v1/cases/{ref}/forward"): Rule(STAFF, {"summary": "s", "details": "d"}),
    ("PATCH", "/v1/cases/{ref}/classification"): Rule(STAFF, {"type": "incident"}),
    ("POST", "/v1/cases/{ref}/commitments"): Rule(STAFF, {}),
    ("POST", "/v1/cases/{ref}/commitments/{commitment_id}/met"): Rule(STAFF),
    ("PUT", "/v1/cases/{ref}/etr"): Rule(STAFF, {"etr": "2030-01-01T00:00:00+00:00"}),
    ("POST", "/v1/cases/{ref}/escalate"): Rule(PARTICIPANTS),
    ("POST", "/v1/cases/{ref}/reopen"): Rule(PARTICIPANTS),
    ("POST", "/v1/cases/{ref}/reply"): Rule(CUSTOMER),
    ("GET", "/v1/cases/{ref}/comments"): Rule(PARTICIPANTS),
    ("POST", "/v1/cases/{ref}/comments"): Rule(PARTICIPANTS, {"body": "hello"}),
    ("GET", "/v1/cases/{ref}/attachments"): Rule(PARTICIPANTS),
    # Admitted callers send JSON, not a file: 422, after the role and tenancy checks.
    ("POST", "/v1/cases/{ref}/attachments"): Rule(PARTICIPANTS, {"file": "x"}),
    # Attachment 1 is support's internal one: 404 to a customer, the file to staff.
    ("GET", "/v1/cases/{ref}/attachments/{attachment_id}"): Rule(PARTICIPANTS),
    ("GET", "/v1/cases/{ref}/rfo"): Rule(PARTICIPANTS),
    ("PUT", "/v1/cases/{ref}/rfo"): Rule(STAFF, {"root_cause": "x"}),
    ("POST", "/v1/cases/{ref}/rfo/publish"): Rule(STAFF),
    # Canned replies (reply 1 is a shipped example): staff only, customers never.
    ("GET", "/v1/replies"): Rule(STAFF),
    ("POST", "/v1/replies"): Rule(STAFF, {"title": "t", "body": "About ${ref}"}),
    ("GET", "/v1/replies/{reply_id}"): Rule(STAFF),
    ("PATCH", "/v1/replies/{reply_id}"): Rule(STAFF, {"title": "t"}),
    ("GET", "/v1/cases/{ref}/replies/{reply_id}/preview"): Rule(STAFF),
    ("POST", "/v1/cases/{ref}/replies/{reply_id}/send"): Rule(STAFF),
    ("DELETE", "/v1/replies/{reply_id}"): Rule(STAFF),
    # Last of the case routes: an admitted staff call cancels the case for good.
    ("POST", "/v1/cases/{ref}/cancel"): Rule(PARTICIPANTS, {"reason": "not needed"}),
    ("GET", "/v1/maintenances"): Rule(ALL),
    ("GET", "/v1/maintenances/{ref}"): Rule(ALL),
    ("POST", "/v1/maintenances"): Rule(STAFF),
    ("PATCH", "/v1/maintenances/{ref}"): Rule(STAFF, {"title": "t"}),
    ("POST", "/v1/maintenances/{ref}/cancel"): Rule(STAFF),
    ("POST", "/v1/maintenances/{ref}/complete"): Rule(STAFF, {"actual_impact": "x"}),
    ("GET", "/v1/webhooks"): Rule(PARTICIPANTS),
    ("POST", "/v1/webhooks"): Rule(WEBHOOK_WRITERS),
    ("GET", "/v1/webhooks/{subscription_id}"): Rule(PARTICIPANTS),
    ("PATCH", "/v1/webhooks/{subscription_id}"): Rule(WEBHOOK_WRITERS, {}),
    ("DELETE", "/v1/webhooks/{subscription_id}"): Rule(WEBHOOK_WRITERS),
    ("POST", "/v1/webhooks/{subscription_id}/rotate"): Rule(WEBHOOK_WRITERS),
    ("GET", "/v1/notifications"): Rule(STAFF),
    ("POST", "/v1/notifications/{delivery_id}/retry"): Rule(frozenset({Role.NOC, Role.ADMIN})),
    # Everyone else 403, customers too: the log is not scoped per customer.
    ("GET", "/v1/audit"): Rule(ADMIN),
    # Held inbound mail (possibly another customer's, or spoofed): staff only.
    ("GET", "/v1/mail/held"): Rule(STAFF),
    ("GET", "/v1/mail/held/{mail_id}"): Rule(STAFF),
    ("POST", "/v1/mail/held/{mail_id}/release"): Rule(STAFF, {"action": "discard", "reason": "x"}),
    # A customer gets its own report; staff any customer's or the fleet's.
    ("GET", "/v1/reports/availability"): Rule(PARTICIPANTS),
    ("GET", "/v1/reports/sla"): Rule(PARTICIPANTS),
    # Staff alerts: staff acknowledge by id; the link's token is its own credential.
    ("POST", "/v1/alerts/{alert_id}/ack"): Rule(STAFF),
    ("GET", "/v1/alerts/ack"): Rule(PUBLIC, token=True),
    # How support is organised: staff only.
    ("GET", "/v1/teams"): Rule(STAFF),
    ("GET", "/v1/teams/{team_id}"): Rule(STAFF),
}
#: FastAPI's own documentation routes: public, and carry no data.
DOC_PATHS: Final = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

CALLERS: Final = (
    "customer_a",
    "customer_b",
    "engineer",
    "noc",
    "admin",
    "service",
    "no_key",
    "revoked",
    "expired",
)
ROLE_OF: Final = {
    "customer_a": Role.CUSTOMER,
    "customer_b": Role.CUSTOMER,
    "engineer": Role.ENGINEER,
    "noc": Role.NOC,
    "admin": Role.ADMIN,
    "service": Role.SERVICE,
}


def _app_endpoints(app: FastAPI) -> set[tuple[str, str]]:
    # The OpenAPI document lists every mounted route (FastAPI nests included routers,
    # so app.routes alone does not show them).
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method in item}


def test_every_route_has_an_expectation(database: Database, service: CaseService) -> None:
    app = make_app(database, service, FakeClock(start=START))
    endpoints = _app_endpoints(app)
    missing = sorted(endpoints - EXPECTED.keys())
    assert not missing, f"routes without an authorisation expectation: {missing}"
    assert endpoints & {("GET", path) for path in DOC_PATHS} == set()


@dataclass
class World:
    app: FastAPI
    keys: dict[str, str | None]
    refs: dict[str, str]  # caller -> a case of its own (staff: customer A's)
    ntus: dict[str, str]
    key_ids: Iterator[int]


@pytest.fixture
async def world(
    database: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> World:
    app = make_app(database, service, clock)
    for customer in ("acme", "umbrella"):
        await add_customer(database.sessionmaker, customer)
    async with database.sessionmaker() as session:
        session.add_all(
            [
                Ntu(id="ntu-a", customer_id="acme", address="10.0.0.1", probe={}, attributes={}),
                Ntu(
                    id="ntu-b", customer_id="umbrella", address="10.0.0.2", probe={}, attributes={}
                ),
            ]
        )
        await session.commit()
    ref_a = await incidents.open_incident(incident("ntu-a", customer_id="acme"))
    ref_b = await incidents.open_incident(incident("ntu-b", customer_id="umbrella"))
    keys: dict[str, str | None] = {
        "customer_a": await mint_key(app, role=Role.CUSTOMER, customer_id="acme"),
        "customer_b": await mint_key(app, role=Role.CUSTOMER, customer_id="umbrella"),
        "no_key": None,
        "revoked": await mint_key(app, role=Role.ADMIN, name="revoked"),
        "expired": await mint_key(
            app, role=Role.ADMIN, name="expired", expires_at=START + timedelta(seconds=1)
        ),
    }
    for caller in ("engineer", "noc", "admin", "service"):
        keys[caller] = await mint_key(app, role=ROLE_OF[caller])
    spare = [await mint_key(app, role=Role.NOC, name=f"spare{n}") for n in range(12)]
    async with client_for(app, keys["admin"]) as admin:
        listing = (await admin.get("/v1/apikeys")).json()["data"]
        ids = {key["name"]: key["id"] for key in listing}
        await admin.delete(f"/v1/apikeys/{ids['revoked']}")
        for ref in (ref_a, ref_b):
            internal = {"body": f"{MARKER} do not tell", "visibility": "internal"}
            assert (await admin.post(f"/v1/cases/{ref}/comments", json=internal)).status_code == 201
            # An internal file whose name is the marker (attachment 1 on customer A's case).
            upload = {"file": (f"{MARKER}.txt", MARKER.encode(), "text/plain")}
            attached = await admin.post(
                f"/v1/cases/{ref}/attachments", files=upload, data={"visibility": "internal"}
            )
            assert attached.status_code == 201, attached.text
            rfo = {
                "root_cause_category": "hardware",
                "root_cause": "PSU",
                "corrective_actions": "replaced",
                "preventive_not_applicable": "a one-off failure",
            }
            await admin.put(f"/v1/cases/{ref}/rfo", json=rfo)
            assert (await admin.post(f"/v1/cases/{ref}/rfo/publish")).status_code == 200
    assert len(spare) == 12
    clock.advance(timedelta(seconds=1))  # the expired key expires
    refs = {caller: ref_a for caller in CALLERS} | {"customer_b": ref_b}
    ntus = {caller: "ntu-a" for caller in CALLERS} | {"customer_b": "ntu-b"}
    spare_ids = iter(sorted(key_id for name, key_id in ids.items() if name.startswith("spare")))
    return World(app=app, keys=keys, refs=refs, ntus=ntus, key_ids=spare_ids)


def _url(path: str, *, ref: str, ntu: str, key_id: int) -> str:
    return path.format(
        ref=ref,
        ntu_id=ntu,
        key_id=key_id,
        commitment_id=1,
        subscription_id=1,
        delivery_id=1,
        attachment_id=1,
        mail_id=1,
        alert_id=1,
        reply_id=1,
        team_id="l1-noc",
    )


async def _call(
    world: World, caller: str, method: str, path: str, *, ref: str, ntu: str
) -> httpx.Response:
    rule = EXPECTED[(method, path)]
    url = _url(path, ref=ref, ntu=ntu, key_id=next(world.key_ids) if "{key_id}" in path else 0)
    async with client_for(world.app, world.keys[caller]) as client:
        return await client.request(method, url, json=rule.body)


async def test_matrix(world: World) -> None:
    failures: list[str] = []
    for (method, path), rule in EXPECTED.items():
        for caller in CALLERS:
            response = await _call(
                world, caller, method, path, ref=world.refs[caller], ntu=world.ntus[caller]
            )
            status = response.status_code
            if rule.roles is PUBLIC and rule.token:
                # Without a valid token: refused for the token, never for the key.
                expected_ok = status not in (401, 403) and status < 500
            elif rule.roles is PUBLIC:
                expected_ok = status < 400
            elif caller in ("no_key", "revoked", "expired"):
                expected_ok = status == 401 and response.json()["code"] == "unauthenticated"
            elif ROLE_OF[caller] not in rule.roles:
                expected_ok = status == 403 and response.json()["code"] == "forbidden"
            else:
                # Admitted: the request may still be refused by the rules (409, 422),
                # but never for lack of rights, and never by a crash.
                expected_ok = status not in (401, 403) and status < 500
            if not expected_ok:
                failures.append(f"{caller} {method} {path}: {status} {response.text[:200]}")
    assert not failures, "\n".join(failures)


async def test_customer_a_cannot_reach_customer_b(world: World) -> None:
    failures: list[str] = []
    for (method, path), rule in EXPECTED.items():
        if "{ref}" not in path and "{ntu_id}" not in path:
            continue
        if rule.roles is PUBLIC or Role.CUSTOMER not in rule.roles:
            continue
        for caller, other in (("customer_a", "customer_b"), ("customer_b", "customer_a")):
            response = await _call(
                world, caller, method, path, ref=world.refs[other], ntu=world.ntus[other]
            )
            if response.status_code != 404:
                failures.append(f"{caller} {method} {path}: {response.status_code}")
    assert not failures, "\n".join(failures)


async def test_customers_lists_hold_only_their_own(world: World) -> None:
    for caller, own_ref, other_ref in (
        ("customer_a", world.refs["customer_a"], world.refs["customer_b"]),
        ("customer_b", world.refs["customer_b"], world.refs["customer_a"]),
    ):
        async with client_for(world.app, world.keys[caller]) as client:
            cases = (await client.get("/v1/cases")).text
            ntus = (await client.get("/v1/ntus")).json()
        assert own_ref in cases and other_ref not in cases
        assert [ntu["id"] for ntu in ntus["data"]] == [world.ntus[caller]]


async def test_no_customer_response_contains_an_internal_comment(world: World) -> None:
    leaks: list[str] = []
    gets = [path for method, path in EXPECTED if method == "GET"]
    for caller in ("customer_a", "customer_b"):
        async with client_for(world.app, world.keys[caller]) as client:
            for path in gets:
                url = _url(path, ref=world.refs[caller], ntu=world.ntus[caller], key_id=1)
                for query in ("", "?format=md") if path.endswith("/rfo") else ("",):
                    response = await client.get(url + query)
                    if MARKER in response.text:
                        leaks.append(f"{caller} GET {url}{query}")
    assert not leaks, leaks
    # Staff do see it, so the marker really is there to be leaked.
    async with client_for(world.app, world.keys["engineer"]) as engineer:
        assert MARKER in (await engineer.get(f"/v1/cases/{world.refs['engineer']}/comments")).text


async def test_no_customer_timeline_shows_that_an_internal_comment_exists(world: World) -> None:
    # The body never reaches the timeline; the entry (author, time) must not either.
    for caller in ("customer_a", "customer_b"):
        async with client_for(world.app, world.keys[caller]) as client:
            timeline = (await client.get(f"/v1/cases/{world.refs[caller]}/timeline")).json()
        comments = [e for e in timeline["data"] if e["kind"] == "comment_added"]
        assert comments == [], comments
    async with client_for(world.app, world.keys["engineer"]) as engineer:
        timeline = (await engineer.get(f"/v1/cases/{world.refs['engineer']}/timeline")).json()
    internal = [e["data"] for e in timeline["data"] if e["kind"] == "comment_added"]
    assert [d["visibility"] for d in internal] == ["internal"]
