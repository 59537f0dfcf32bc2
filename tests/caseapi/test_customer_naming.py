"""A customer key naming another customer is refused (403), never rewritten to its own.

Every place a request names a customer: the ``customer_id`` of a new case or webhook
subscription, and the ``customer_id`` / ``customer`` filters of the webhook, NTU and
maintenance lists. Naming itself, or nothing, still works; staff name anyone.
"""

from __future__ import annotations

from typing import Any, Final

import httpx
import pytest
from fastapi import FastAPI

from caseapi.auth.principal import Role
from caseapi.cases.repository import CaseFilters
from caseapi.cases.service import CaseService
from tests.caseapi.auth_fixtures import authed_client, problem

REQUEST: Final = {"type": "general_request", "subject": "other", "summary": "s"}
HOOK: Final = {"url": "http://127.0.0.1:9/hook"}


def _body(customer: str | None, base: dict[str, Any]) -> dict[str, Any]:
    return base if customer is None else {**base, "customer_id": customer}


def _query(name: str) -> Any:
    return lambda customer: {"params": {} if customer is None else {name: customer}}


#: (method, path, field named, request keyword arguments for a customer, success status)
PLACES: Final = [
    ("POST", "/v1/cases", "customer_id", lambda c: {"json": _body(c, REQUEST)}, 201),
    ("POST", "/v1/webhooks", "customer_id", lambda c: {"json": _body(c, HOOK)}, 201),
    ("GET", "/v1/webhooks", "customer_id", _query("customer_id"), 200),
    ("GET", "/v1/ntus", "customer", _query("customer"), 200),
    ("GET", "/v1/maintenances", "customer", _query("customer"), 200),
]
IDS: Final = [f"{method} {path}" for method, path, *_ in PLACES]


@pytest.mark.parametrize(("method", "path", "field", "kwargs", "ok"), PLACES, ids=IDS)
@pytest.mark.parametrize("named", ["cust-2", "nobody"])
async def test_naming_another_customer_is_refused(
    acme: httpx.AsyncClient,
    method: str,
    path: str,
    field: str,
    kwargs: Any,
    ok: int,
    named: str,
) -> None:
    response = await acme.request(method, path, **kwargs(named))
    body = problem(response, 403, "customer_mismatch")
    assert body["field"] == field
    assert body["detail"] == (
        f"{field}: a customer key acts for its own customer only: {named!r} is not "
        f"'cust-1' (name your own or leave {field} out)"
    )


@pytest.mark.parametrize(("method", "path", "field", "kwargs", "ok"), PLACES, ids=IDS)
@pytest.mark.parametrize("named", ["cust-1", None])
async def test_naming_itself_or_nobody_still_works(
    acme: httpx.AsyncClient,
    method: str,
    path: str,
    field: str,
    kwargs: Any,
    ok: int,
    named: str | None,
) -> None:
    response = await acme.request(method, path, **kwargs(named))
    assert response.status_code == ok, response.text
    body = response.json()
    if method == "POST":
        assert body["customer_id"] == "cust-1"
    elif path == "/v1/ntus":
        assert [ntu["id"] for ntu in body["data"]] == ["ntu-1", "ntu-2"]


async def test_nothing_is_created_for_anyone(
    acme: httpx.AsyncClient, staff: httpx.AsyncClient, service: CaseService
) -> None:
    for path, base in (("/v1/cases", REQUEST), ("/v1/webhooks", HOOK)):
        problem(await acme.post(path, json=_body("cust-2", base)), 403, "customer_mismatch")
    assert (await service.list_cases(filters=CaseFilters())).count == 0
    assert (await staff.get("/v1/webhooks")).json()["count"] == 0


async def test_staff_name_any_customer(app: FastAPI, staff: httpx.AsyncClient) -> None:
    created = await staff.post("/v1/cases", json=_body("cust-2", REQUEST))
    assert (created.status_code, created.json()["customer_id"]) == (201, "cust-2")
    hook = await staff.post("/v1/webhooks", json=_body("cust-2", HOOK))
    assert (hook.status_code, hook.json()["customer_id"]) == (201, "cust-2")
    hooks = (await staff.get("/v1/webhooks", params={"customer_id": "cust-2"})).json()
    assert [h["customer_id"] for h in hooks["data"]] == ["cust-2"]
    ntus = (await staff.get("/v1/ntus", params={"customer": "cust-2"})).json()
    assert [ntu["id"] for ntu in ntus["data"]] == ["ntu-9"]
    assert (await staff.get("/v1/maintenances", params={"customer": "cust-2"})).is_success
    async with authed_client(app, role=Role.NOC) as noc:
        listed = await noc.get("/v1/notifications", params={"customer_id": "cust-2"})
        assert listed.status_code == 200
