"""What the OpenAPI document promises, the app keeps (beyond test_schemathesis).

A new route gets its problem responses from its shape and declarations, with no
per-route copy; 405 names every method of the path; JSON fields take JSON types,
not Pydantic's coercions; a body that is not UTF-8 is a documented 400.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI

from caseapi.api.app import create_app
from caseapi.api.openapi import CODES, PROBLEM_JSON, declare_everywhere, errors, raises
from caseapi.auth.deps import require_roles
from caseapi.auth.principal import Principal, Role
from caseapi.cases.errors import InvalidTransitionError
from caseapi.cases.service import CaseService
from caseapi.incidents import IncidentService
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import authed_client, problem
from tests.caseapi.conftest import Database, incident

_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _statuses(operation: dict[str, Any]) -> dict[str, str]:
    return {
        status: response["description"]
        for status, response in operation["responses"].items()
        if PROBLEM_JSON in response.get("content", {})
    }


async def test_a_new_route_documents_its_problems_from_its_shape(
    database: Database, service: CaseService, clock: FakeClock
) -> None:
    @raises((429, "rate_limited"))
    async def limited() -> None:
        """A router-wide dependency, as a rate limit would be."""

    router = APIRouter(dependencies=[Depends(limited)])

    @router.post("/v1/things/{thing_id}", responses=errors(InvalidTransitionError))
    async def act_on_thing(
        thing_id: int,
        body: dict[str, str],
        principal: Annotated[Principal, Depends(require_roles(Role.ADMIN))],
    ) -> dict[str, str]:
        return {}

    app = create_app(
        sessionmaker=database.sessionmaker,
        case_service=service,
        clock=clock,
        extra_routers=[router],
    )
    operation = app.openapi()["paths"]["/v1/things/{thing_id}"]["post"]
    documented = _statuses(operation)
    assert sorted(documented) == ["400", "401", "403", "404", "409", "413", "422", "429", "503"]
    assert "`rate_limited`" in documented["429"]
    assert "`invalid_transition`" in documented["409"]
    assert operation["responses"]["409"][CODES] == ["invalid_transition"]
    assert "`forbidden`" in documented["403"]
    assert "`validation_error`" in documented["422"]
    assert operation["responses"]["503"]["headers"]["Retry-After"]
    for response in operation["responses"].values():
        if PROBLEM_JSON in response.get("content", {}):
            assert response["content"][PROBLEM_JSON]["schema"] == _PROBLEM
    healthz = app.openapi()["paths"]["/healthz"]["get"]
    assert sorted(_statuses(healthz)) == ["422", "503"]  # no key, no path, no body
    # What a middleware answers everywhere is declared once.
    declare_everywhere(app, (418, "teapot"))
    assert sorted(_statuses(app.openapi()["paths"]["/healthz"]["get"])) == ["418", "422", "503"]


async def test_405_allows_every_method_of_the_path(
    app: FastAPI, incidents: IncidentService
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    async with authed_client(app, role=Role.ENGINEER) as staff:
        response = await staff.delete(f"/v1/cases/{ref}")
        problem(response, 405, "method_not_allowed")
        allowed = {method.strip() for method in response.headers["allow"].split(",")}
        assert allowed == {"GET", "HEAD", "PATCH"}
        documented = app.openapi()["paths"]["/v1/cases/{ref}"]
        assert {method.upper() for method in documented} <= allowed


async def test_json_fields_refuse_coerced_values(app: FastAPI, incidents: IncidentService) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    async with authed_client(app, role=Role.ADMIN) as admin:
        created = await admin.post(
            "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "customer_id": "cust-1"}
        )
        assert created.status_code == 201, created.text
        hook = f"/v1/webhooks/{created.json()['id']}"
        window = await admin.post(
            "/v1/maintenances",
            json={
                "title": "Fibre works",
                "kind": "emergency",
                "starts_at": "2026-03-01T13:00:00Z",
                "ends_at": "2026-03-01T15:00:00Z",
                "scope": {"ntus": ["ntu-1"]},
            },
        )
        assert window.status_code == 201, window.text
        maintenance = f"/v1/maintenances/{window.json()['ref']}"
        refused: list[tuple[str, str, dict[str, Any], str]] = [
            ("PUT", f"/v1/cases/{ref}/etr", {"etr": 1893456000}, "etr"),
            (
                "POST",
                f"/v1/cases/{ref}/commitments",
                {"kind": "other", "within_minutes": "5"},
                "within_minutes",
            ),
            ("POST", f"/v1/cases/{ref}/commitments", {"kind": "other", "due_at": 1.5e9}, "due_at"),
            ("PATCH", hook, {"active": "true"}, "active"),
            ("POST", f"{hook}/rotate", {"overlap_seconds": "60"}, "overlap_seconds"),
            ("POST", "/v1/apikeys", {"name": "n", "role": "noc", "expires_at": 2e9}, "expires_at"),
            # Left out keeps it; null is refused, as the document says.
            ("PATCH", maintenance, {"scope": None}, "scope"),
        ]
        for method, path, body, field in refused:
            response = await admin.request(method, path, json=body)
            details = problem(response, 422, "validation_error")
            named = [error["field"] for error in details["errors"]]
            assert any(name.startswith(field) for name in named), (method, path, named)


async def test_a_body_that_is_not_utf8_is_a_documented_400(
    app: FastAPI, incidents: IncidentService
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    async with authed_client(app, role=Role.ENGINEER) as staff:
        response = await staff.post(
            f"/v1/cases/{ref}/comments",
            content=b'{"body": "\xff"}',
            headers={"content-type": "application/json"},
        )
    problem(response, 400, "bad_request")
    documented = _statuses(app.openapi()["paths"]["/v1/cases/{ref}/comments"]["post"])
    assert "`bad_request`" in documented["400"]
