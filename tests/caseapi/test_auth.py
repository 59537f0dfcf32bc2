"""API keys, authentication, the admin key API and tenancy on the NTU routes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select

from caseapi.auth.errors import ApiKeyRequestError, AuthenticationError
from caseapi.auth.models import ApiKey
from caseapi.auth.principal import Principal, Role
from caseapi.auth.service import PREFIX_LENGTH, ApiKeyService, hash_secret
from caseapi.auth.tenancy import contract_refusal, ensure_visible
from caseapi.cases.service import CaseService
from caseapi.core.errors import NtuNotFoundError
from caseapi.incidents import IncidentService
from caseapi.ntus.models import Ntu
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import (
    add_customer,
    apikey_service,
    authed_client,
    client_for,
    make_app,
    mint_key,
)
from tests.caseapi.conftest import START, Database, incident

PROBLEM = "application/problem+json"


@pytest.fixture
def app(database: Database, service: CaseService, clock: FakeClock) -> FastAPI:
    return make_app(database, service, clock)


def _assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


def _assert_unauthenticated(response: httpx.Response) -> None:
    _assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_key_is_random_shown_once_and_stored_hashed(app: FastAPI, database: Database) -> None:
    created = await apikey_service(app).create_key(
        name="ops", role=Role.ENGINEER, created_by="test"
    )
    secret = created.secret
    assert secret.startswith("nms_") and len(secret) == 4 + 43
    async with database.sessionmaker() as session:
        row = (await session.execute(select(ApiKey))).scalar_one()
    assert row.prefix == secret[:PREFIX_LENGTH]
    assert secret not in (row.secret_hash, row.salt)
    assert row.secret_hash == hash_secret(secret, salt=row.salt)
    other = await mint_key(app, role=Role.ENGINEER)
    assert other != secret


async def test_authenticate_returns_the_principal(app: FastAPI) -> None:
    await add_customer(app.state.sessionmaker, "acme")
    key = await mint_key(app, role=Role.CUSTOMER, customer_id="acme", name="portal")
    principal = await apikey_service(app).authenticate(key)
    assert principal == Principal(
        key_id=principal.key_id, name="portal", role=Role.CUSTOMER, customer_id="acme"
    )
    assert principal.actor == "customer:portal"


async def test_wrong_secret_with_a_known_prefix_is_refused(app: FastAPI) -> None:
    key = await mint_key(app, role=Role.ADMIN)
    forged = key[:PREFIX_LENGTH] + ("A" if key[-1] != "A" else "B") * (len(key) - PREFIX_LENGTH)
    for bad in [forged, "nms_", "Bearer", "", "x" * 50, key + "x"]:
        with pytest.raises(AuthenticationError):
            await apikey_service(app).authenticate(bad)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer nms_doesnotexist00000000000000000000000000000",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "nms_notbearer",
    ],
)
async def test_missing_or_unknown_key_is_401(app: FastAPI, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    async with client_for(app, None) as client:
        _assert_unauthenticated(await client.get("/v1/ntus", headers=headers))


async def test_expired_key_is_401(app: FastAPI, clock: FakeClock) -> None:
    key = await mint_key(app, role=Role.NOC, expires_at=START + timedelta(days=1))
    async with client_for(app, key) as client:
        assert (await client.get("/v1/ntus")).status_code == 200
        clock.advance(timedelta(days=1))
        _assert_unauthenticated(await client.get("/v1/ntus"))


async def test_revoked_key_is_401_at_once(app: FastAPI) -> None:
    async with authed_client(app, role=Role.ADMIN) as admin:
        created = (await admin.post("/v1/apikeys", json={"name": "n", "role": "noc"})).json()
        async with client_for(app, created["key"]) as noc:
            assert (await noc.get("/v1/ntus")).status_code == 200
            revoked = await admin.delete(f"/v1/apikeys/{created['id']}")
            assert revoked.status_code == 200
            assert revoked.json()["status"] == "revoked"
            _assert_unauthenticated(await noc.get("/v1/ntus"))
        # Revoking twice keeps the first revocation time.
        again = await admin.delete(f"/v1/apikeys/{created['id']}")
        assert again.json()["revoked_at"] == revoked.json()["revoked_at"]


async def test_admin_creates_and_lists_keys_without_secrets(app: FastAPI, clock: FakeClock) -> None:
    await add_customer(app.state.sessionmaker, "acme")
    async with authed_client(app, role=Role.ADMIN) as admin:
        response = await admin.post(
            "/v1/apikeys",
            json={
                "name": "acme portal",
                "role": "customer",
                "customer_id": "acme",
                "expires_at": "2026-06-01T00:00:00Z",
            },
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["key"].startswith(created["prefix"])
        assert created["status"] == "active"
        assert created["created_by"].startswith("admin:")
        listing = await admin.get("/v1/apikeys")
    body = listing.json()
    assert body["count"] == 2
    assert created["key"] not in listing.text
    assert all(set(key) >= {"id", "prefix", "role", "status"} for key in body["data"])
    assert all("key" not in key and "secret_hash" not in key for key in body["data"])
    acme = next(key for key in body["data"] if key["id"] == created["id"])
    assert (acme["customer_id"], acme["expires_at"]) == ("acme", "2026-06-01T00:00:00Z")
    async with client_for(app, created["key"]) as customer:
        assert (await customer.get("/v1/ntus")).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "role": "customer"}, "customer_id"),
        ({"name": "x", "role": "customer", "customer_id": "nobody"}, "nobody"),
        ({"name": "x", "role": "engineer", "customer_id": "acme"}, "no customer"),
        ({"name": "x", "role": "noc", "expires_at": "2020-01-01T00:00:00Z"}, "future"),
        ({"name": "   ", "role": "noc"}, "name"),
    ],
)
async def test_bad_key_requests_are_422(app: FastAPI, body: dict[str, Any], field: str) -> None:
    await add_customer(app.state.sessionmaker, "acme")
    async with authed_client(app, role=Role.ADMIN) as admin:
        response = await admin.post("/v1/apikeys", json=body)
        problem = _assert_problem(response, 422, "invalid_api_key_request")
        assert field in problem["detail"]
        assert (await admin.get("/v1/apikeys")).json()["count"] == 1


async def test_key_request_validation(app: FastAPI) -> None:
    async with authed_client(app, role=Role.ADMIN) as admin:
        response = await admin.post("/v1/apikeys", json={"name": "x", "role": "root"})
        _assert_problem(response, 422, "validation_error")
        naive = {"name": "x", "role": "noc", "expires_at": "2027-01-01T00:00:00"}
        _assert_problem(await admin.post("/v1/apikeys", json=naive), 422, "validation_error")
        _assert_problem(await admin.delete("/v1/apikeys/999"), 404, "api_key_not_found")


@pytest.mark.parametrize("role", [Role.ENGINEER, Role.NOC, Role.SERVICE, Role.CUSTOMER])
async def test_only_admins_manage_keys(app: FastAPI, role: Role) -> None:
    customer = "acme" if role is Role.CUSTOMER else None
    async with authed_client(app, role=role, customer_id=customer) as client:
        _assert_problem(await client.get("/v1/apikeys"), 403, "forbidden")
        body = {"name": "x", "role": "admin"}
        _assert_problem(await client.post("/v1/apikeys", json=body), 403, "forbidden")
        _assert_problem(await client.delete("/v1/apikeys/1"), 403, "forbidden")


async def _two_customers(database: Database) -> None:
    for customer in ("acme", "umbrella"):
        await add_customer(database.sessionmaker, customer)
    async with database.sessionmaker() as session:
        session.add_all(
            [
                Ntu(id=f"ntu-{n}", customer_id=c, address=f"10.0.0.{n}", probe={}, attributes={})
                for n, c in [(1, "acme"), (2, "umbrella"), (3, "acme")]
            ]
        )
        await session.commit()


async def test_customers_see_only_their_own_ntus(app: FastAPI, database: Database) -> None:
    await _two_customers(database)
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        body = (await acme.get("/v1/ntus")).json()
        assert ([ntu["id"] for ntu in body["data"]], body["count"]) == (["ntu-1", "ntu-3"], 2)
        # Naming another customer is refused, not answered with an empty page.
        _assert_problem(await acme.get("/v1/ntus?customer=umbrella"), 403, "customer_mismatch")
        own = (await acme.get("/v1/ntus?customer=acme")).json()
        assert own["count"] == 2
        assert (await acme.get("/v1/ntus/ntu-1/status")).status_code == 200
        response = await acme.get("/v1/ntus/ntu-2/status")
        foreign = _assert_problem(response, 404, "ntu_not_found")
        missing = _assert_problem(await acme.get("/v1/ntus/nope/status"), 404, "ntu_not_found")
        # Indistinguishable from an NTU that does not exist.
        assert foreign["detail"].replace("ntu-2", "X") == missing["detail"].replace("nope", "X")
    for role in (Role.ENGINEER, Role.NOC, Role.SERVICE):
        async with authed_client(app, role=role) as staff:
            assert (await staff.get("/v1/ntus")).json()["count"] == 3
            assert (await staff.get("/v1/ntus/ntu-2/status")).status_code == 200


def test_ensure_visible() -> None:
    acme = Principal(key_id=1, name="a", role=Role.CUSTOMER, customer_id="acme")
    noc = Principal(key_id=2, name="n", role=Role.NOC)
    ensure_visible(acme, "acme", NtuNotFoundError("x"))
    ensure_visible(noc, "umbrella", NtuNotFoundError("x"))
    ensure_visible(noc, None, NtuNotFoundError("x"))
    for owner in ("umbrella", None):
        with pytest.raises(NtuNotFoundError):
            ensure_visible(acme, owner, NtuNotFoundError("x"))


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("expired", "contract_expired"),
        ("unpaid", "account_suspended_unpaid"),
        ("?", "contract_expired"),
    ],
)
def test_contract_refusal(status: str, code: str) -> None:
    assert contract_refusal(customer_id="acme", contract_status="active") is None
    error = contract_refusal(customer_id="acme", contract_status=status)
    assert error is not None
    assert (error.code, error.http_status) == (code, 403)


async def test_service_validation_without_http(app: FastAPI) -> None:
    with pytest.raises(ApiKeyRequestError):
        await apikey_service(app).create_key(
            name="x", role=Role.NOC, expires_at=START.replace(tzinfo=None), created_by="t"
        )


async def test_a_200_character_key_name_fits_every_column_that_stores_an_actor(
    app: FastAPI, incidents: IncidentService
) -> None:
    # Principal.actor is "role:name"; names may be 200 characters (the old 64-character
    # columns made every write by such a key fail on PostgreSQL).
    admin_key = await mint_key(app, role=Role.ADMIN, name="a" * 200)
    long_name = "b" * 200
    async with client_for(app, admin_key) as admin:
        created = await admin.post("/v1/apikeys", json={"name": long_name, "role": "engineer"})
        assert created.status_code == 201, created.text
        assert created.json()["created_by"] == "admin:" + "a" * 200
    ref = await incidents.open_incident(incident("ntu-1", customer_id="acme"))
    actor = "engineer:" + long_name
    async with client_for(app, created.json()["key"]) as engineer:
        taken = await engineer.post(f"/v1/cases/{ref}/take")
        assert (taken.status_code, taken.json()["assignee"]) == (200, long_name), taken.text
        listed = await engineer.get("/v1/cases", params={"assignee": long_name})
        assert listed.json()["count"] == 1, listed.text
        promise = {"kind": "next_update", "within_minutes": 30}
        assert (await engineer.post(f"/v1/cases/{ref}/commitments", json=promise)).is_success
        comment = await engineer.post(f"/v1/cases/{ref}/comments", json={"body": "on it"})
        assert (comment.status_code, comment.json()["author"]) == (201, actor)
        rfo = {
            "root_cause_category": "hardware",
            "root_cause": "PSU",
            "corrective_actions": "x",
            "preventive_actions": "y",
        }
        assert (await engineer.put(f"/v1/cases/{ref}/rfo", json=rfo)).is_success
        published = await engineer.post(f"/v1/cases/{ref}/rfo/publish")
        assert published.json()["published_by"] == actor, published.text
        request = {"type": "general_request", "subject": "other", "summary": "s"}
        await add_customer(app.state.sessionmaker, "acme")
        opened = await engineer.post(
            "/v1/cases",
            json={**request, "customer_id": "acme"},
            headers={"Idempotency-Key": "k" * 200},
        )
        assert opened.status_code == 201, opened.text
        assert opened.json()["created_by"] == actor
        timeline = (await engineer.get(f"/v1/cases/{ref}/timeline")).json()["data"]
    assert {event["actor"] for event in timeline} >= {"detector", actor}


class _Seconds:
    """A monotonic clock the test moves (the key cache's TTL)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_key_revoked_by_another_process_is_refused_within_the_cache_ttl(
    database: Database, clock: FakeClock
) -> None:
    seconds = _Seconds()
    api = ApiKeyService(
        sessionmaker=database.sessionmaker, clock=clock, cache_ttl=5.0, monotonic=seconds
    )
    # ``nms apikey revoke`` or another replica: a service of its own, no shared cache.
    other = ApiKeyService(sessionmaker=database.sessionmaker, clock=clock)
    created = await other.create_key(name="n", role=Role.NOC, created_by="test")
    assert (await api.authenticate(created.secret)).key_id == created.key.id
    await other.revoke_key(created.key.id)
    seconds.now = 4.9
    # Still trusted from the cache: what the TTL allows, and no more.
    assert (await api.authenticate(created.secret)).key_id == created.key.id
    seconds.now = 5.0
    with pytest.raises(AuthenticationError):
        await api.authenticate(created.secret)
    # Refusals are not cached: it stays refused.
    with pytest.raises(AuthenticationError):
        await api.authenticate(created.secret)


async def test_a_cached_key_is_refused_at_once_when_it_expires_or_is_revoked_here(
    database: Database, clock: FakeClock
) -> None:
    api = ApiKeyService(
        sessionmaker=database.sessionmaker, clock=clock, cache_ttl=3600.0, monotonic=_Seconds()
    )
    expiring = await api.create_key(
        name="e", role=Role.NOC, expires_at=START + timedelta(minutes=1), created_by="test"
    )
    revoked = await api.create_key(name="r", role=Role.NOC, created_by="test")
    kept = await api.create_key(name="k", role=Role.NOC, created_by="test")
    for created in (expiring, revoked, kept):
        await api.authenticate(created.secret)
    await api.revoke_key(revoked.key.id)
    with pytest.raises(AuthenticationError):
        await api.authenticate(revoked.secret)
    clock.advance(timedelta(minutes=1))
    with pytest.raises(AuthenticationError):
        await api.authenticate(expiring.secret)
    assert (await api.authenticate(kept.secret)).name == "k"


async def test_a_cached_key_is_not_read_again_and_a_wrong_secret_is_still_refused(
    database: Database, clock: FakeClock
) -> None:
    api = ApiKeyService(sessionmaker=database.sessionmaker, clock=clock)
    created = await api.create_key(name="n", role=Role.NOC, created_by="test")
    await api.authenticate(created.secret)
    reads = 0

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        nonlocal reads
        reads += statement.lstrip().upper().startswith("SELECT")

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        for _ in range(3):
            await api.authenticate(created.secret)
        assert reads == 0
        forged = created.secret[:-1] + ("A" if created.secret[-1] != "A" else "B")
        with pytest.raises(AuthenticationError):
            await api.authenticate(forged)
        assert reads == 1
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)


async def test_concurrent_requests_with_one_key_share_one_lookup(
    database: Database, clock: FakeClock
) -> None:
    api = ApiKeyService(sessionmaker=database.sessionmaker, clock=clock)
    created = await api.create_key(name="n", role=Role.NOC, created_by="test")
    reads = 0

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        nonlocal reads
        reads += "api_keys" in statement

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        principals = await asyncio.gather(*(api.authenticate(created.secret) for _ in range(20)))
        forged = created.secret[:-1] + ("A" if created.secret[-1] != "A" else "B")
        refused = await asyncio.gather(
            *(api.authenticate(forged) for _ in range(5)), return_exceptions=True
        )
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert {p.key_id for p in principals} == {created.key.id}
    assert all(isinstance(r, AuthenticationError) for r in refused)
    assert reads == 2
