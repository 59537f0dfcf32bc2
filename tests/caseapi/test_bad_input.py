"""Malformed input never answers 500: bodies, path parameters, queries, cursors.

ARCHITECTURE.md rule 7: bad input gets a clear error (problem+json with a ``code``)
and changes nothing. Out-of-range integers and NUL characters reach PostgreSQL as
driver errors unless the edge refuses them, so each runs on both backends.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI

from caseapi.auth.principal import Role
from caseapi.cases.enums import CaseStatus
from caseapi.cases.service import CaseService
from caseapi.core.database import MAX_ID, encode_cursor
from caseapi.incidents import IncidentService
from tests.caseapi.auth_fixtures import authed_client
from tests.caseapi.conftest import incident

HUGE: Final = 10**20  # past any integer column
NUL: Final = "a\x00b"
REQUEST: Final = {"type": "general_request", "subject": "other", "summary": "s"}
PROMISE: Final = {"kind": "next_update", "within_minutes": 5}
JSON: Final = "application/json"
FAR: Final = "9999-12-31T23:59:59+00:00"

#: (method, path with ``{ref}``, request keyword arguments)
CASES: Final[list[tuple[str, str, dict[str, Any]]]] = [
    ("GET", "/v1/cases", {"params": {"cursor": encode_cursor({"id": HUGE})}}),
    ("GET", "/v1/cases", {"params": {"cursor": encode_cursor({"id": -HUGE})}}),
    ("GET", "/v1/cases", {"params": {"cursor": "%%%"}}),
    ("GET", "/v1/cases", {"params": {"ntu": NUL}}),
    ("GET", "/v1/cases", {"params": {"assignee": NUL}}),
    ("GET", "/v1/ntus", {"params": {"cursor": encode_cursor({"id": NUL})}}),
    ("GET", "/v1/ntus", {"params": {"customer": NUL, "status": NUL}}),
    ("GET", "/v1/ntus/a%00b/status", {}),
    ("GET", "/v1/cases/a%00b", {}),
    ("GET", "/v1/cases/" + "x" * 5000, {}),
    ("GET", "/v1/cases/{ref}/rfo", {"params": {"version": HUGE}}),
    ("DELETE", f"/v1/apikeys/{HUGE}", {}),
    ("POST", "/v1/cases/{ref}/commitments/" + str(HUGE) + "/met", {}),
    ("POST", "/v1/cases", {"json": {**REQUEST, "summary": NUL}}),
    ("POST", "/v1/cases", {"json": {**REQUEST, "customer_id": NUL}}),
    ("POST", "/v1/cases", {"json": {**REQUEST}, "headers": {"Idempotency-Key": NUL}}),
    ("POST", "/v1/cases", {"json": [REQUEST]}),
    (
        "POST",
        "/v1/cases",
        {"content": b"{not json", "headers": {"content-type": JSON}},
    ),
    ("POST", "/v1/cases", {"content": b'{"summary": "\\u0000"', "headers": {"content-type": JSON}}),
    ("POST", "/v1/cases", {"json": {**REQUEST, "requested_date": "0001-01-01T00:00:00+14:00"}}),
    ("POST", "/v1/cases/{ref}/comments", {"json": {"body": NUL}}),
    ("POST", "/v1/cases/{ref}/assign", {"json": {"assignee": NUL}}),
    ("POST", "/v1/cases/{ref}/transitions", {"json": {"to": "cancelled", "reason": NUL}}),
    (
        "POST",
        "/v1/cases/{ref}/commitments",
        {"json": {"kind": "next_update", "note": NUL, "within_minutes": 5}},
    ),
    (
        "POST",
        "/v1/cases/{ref}/handoff",
        {"json": {"to_level": "L2", "summary": NUL, "details": "d"}},
    ),
    ("PUT", "/v1/cases/{ref}/rfo", {"json": {"root_cause": NUL}}),
    ("PATCH", "/v1/cases/{ref}", {"json": {"priority": "P2"}, "headers": {"If-Match": "garbage"}}),
    ("POST", "/v1/apikeys", {"json": {"name": NUL, "role": "noc"}}),
    ("POST", "/v1/apikeys", {"json": {"name": "n", "role": "customer", "customer_id": NUL}}),
]


#: Odd but valid: answered normally, and never a crash.
VALID: Final[list[tuple[str, str, dict[str, Any]]]] = [
    ("GET", "/v1/cases", {"params": {"updated_since": FAR}}),
    ("GET", "/v1/cases", {"params": {"updated_since": "0001-01-01T00:00:00+00:00"}}),
    ("POST", "/v1/cases/{ref}/commitments", {"json": {"kind": "next_update", "due_at": FAR}}),
    ("POST", "/v1/cases/{ref}/comments", {"json": {"body": "a\\u0000b \u00e9 \U0001f600"}}),
]


async def test_malformed_input_is_a_problem_not_a_crash(
    app: FastAPI, service: CaseService, incidents: IncidentService
) -> None:
    # One app and case for all requests (each is refused, so none changes the case);
    # failures are collected so one run names every bad answer.
    ref = await incidents.open_incident(incident("ntu-1"))
    failures: list[str] = []
    async with authed_client(app, role=Role.ADMIN) as admin:
        for method, path, kwargs in CASES:
            response = await admin.request(method, path.format(ref=ref), **kwargs)
            problem = response.headers.get("content-type") == "application/problem+json"
            if not (400 <= response.status_code < 500 and problem and response.json()["code"]):
                failures.append(
                    f"{method} {path} {kwargs}: {response.status_code} {response.text[:200]}"
                )
    assert not failures, "\n".join(failures)
    case = await service.get_case(ref)
    assert (case.version, case.status) == (1, CaseStatus.NEW)


async def test_odd_but_valid_input_is_answered(app: FastAPI, incidents: IncidentService) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    failures: list[str] = []
    async with authed_client(app, role=Role.ADMIN) as admin:
        for method, path, kwargs in VALID:
            response = await admin.request(method, path.format(ref=ref), **kwargs)
            if not response.is_success:
                failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)


async def test_a_nul_is_refused_before_anything_changes(
    app: FastAPI, incidents: IncidentService
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    async with authed_client(app, role=Role.ADMIN) as admin:
        response = await admin.post(f"/v1/cases/{ref}/comments", json={"body": NUL})
        assert response.json()["errors"] == [
            {"field": "body", "message": "must not contain NUL characters"}
        ]
        assert (await admin.get(f"/v1/cases/{ref}/comments")).json()["count"] == 0


#: Past the 32-bit id columns, past a signed and an unsigned 64-bit integer, and
#: below the first id; MAX_ID itself is in range (and names no row).
IDS: Final = (0, -1, MAX_ID, MAX_ID + 1, 2**63, 2**64)


def _integer_path_parameters(app: FastAPI) -> list[tuple[str, str, str, bool]]:
    """(method, path, parameter, has a body) for every integer path parameter."""
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            for param in operation.get("parameters", []):
                options = param["schema"].get("anyOf", [param["schema"]])
                if param["in"] == "path" and any(o.get("type") == "integer" for o in options):
                    found.append((method.upper(), path, param["name"], "requestBody" in operation))
    return found


async def test_ids_out_of_range_are_404_or_422_never_500(
    app: FastAPI, incidents: IncidentService
) -> None:
    # Generated from the OpenAPI document: a new integer path parameter is covered.
    ref = await incidents.open_incident(incident("ntu-1"))
    targets = _integer_path_parameters(app)
    assert {(method, path) for method, path, _, _ in targets} >= {
        ("GET", "/v1/webhooks/{subscription_id}"),
        ("PATCH", "/v1/webhooks/{subscription_id}"),
        ("DELETE", "/v1/webhooks/{subscription_id}"),
        ("POST", "/v1/webhooks/{subscription_id}/rotate"),
        ("POST", "/v1/notifications/{delivery_id}/retry"),
        ("POST", "/v1/cases/{ref}/commitments/{commitment_id}/met"),
        ("DELETE", "/v1/apikeys/{key_id}"),
    }
    failures: list[str] = []
    async with authed_client(app, role=Role.ADMIN) as admin:
        for method, path, name, has_body in targets:
            for value in IDS:
                url = path.replace("{ref}", ref).replace("{" + name + "}", str(value))
                response = await admin.request(method, url, json={} if has_body else None)
                problem = response.headers.get("content-type") == "application/problem+json"
                if response.status_code not in (404, 422) or not problem:
                    failures.append(f"{method} {url}: {response.status_code} {response.text[:200]}")
                elif value > MAX_ID or value < 1:
                    # Refused at the edge, naming the parameter.
                    fields = [error["field"] for error in response.json().get("errors", [])]
                    if name not in fields:
                        failures.append(f"{method} {url}: {fields}")
    assert not failures, "\n".join(failures)
