"""Unknown query parameters are refused (422 ``unknown_query_parameter``), not ignored.

Generated from the app's OpenAPI document: every operation, with a staff and a
customer key, is asked with parameters it does not declare and must name them; a new
endpoint is covered without touching this file. Every documented query parameter
must still be accepted, so the guard and the document cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import PlainTextResponse

from caseapi.api.app import create_app
from caseapi.auth.principal import Role
from caseapi.cases.enums import CaseStatus
from caseapi.cases.service import CaseService
from caseapi.incidents import IncidentService
from tests.caseapi.auth_fixtures import authed_client, client_for, problem
from tests.caseapi.conftest import Database, incident

METHODS: Final = ("get", "put", "post", "patch", "delete")
#: The issue's examples, plus a name no operation will ever declare.
UNKNOWN: Final = ("customer", "q", "zz_not_a_parameter")


def operations(app: FastAPI) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) for every operation in the OpenAPI document."""
    for path, item in app.openapi()["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def parameters(operation: dict[str, Any], where: str) -> list[dict[str, Any]]:
    return [p for p in operation.get("parameters", []) if p["in"] == where]


def fill(path: str, operation: dict[str, Any], values: dict[str, str]) -> str:
    """``path`` with each path parameter replaced (``values``, else ``1`` or ``x``)."""
    for param in parameters(operation, "path"):
        name = param["name"]
        default = "1" if _type(param["schema"]) == "integer" else "x"
        path = path.replace("{" + name + "}", values.get(name, default))
    return path


def _type(schema: dict[str, Any]) -> str | None:
    options = schema.get("anyOf", [schema])
    types = [option.get("type") for option in options if option.get("type") != "null"]
    return types[0] if types else None


def example(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """A value that matches ``schema`` (enough for a query parameter)."""
    if "$ref" in schema:
        return example(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    if "anyOf" in schema:
        options = [option for option in schema["anyOf"] if option.get("type") != "null"]
        return example(options[0], components)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "array":
        return [example(schema.get("items", {}), components)]
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return "true"
    if schema.get("format") == "date-time":
        return "2026-01-01T00:00:00+00:00"
    return "x"


@pytest.fixture
async def ref(incidents: IncidentService) -> str:
    """A case of cust-1 (the ``acme`` fixture's customer)."""
    return await incidents.open_incident(incident("ntu-1"))


async def test_every_operation_refuses_unknown_query_parameters(
    app: FastAPI,
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
    ref: str,
    service: CaseService,
) -> None:
    failures: list[str] = []
    asked = 0
    for method, template, operation in operations(app):
        declared = {p["name"] for p in parameters(operation, "query")}
        unknown = [name for name in UNKNOWN if name not in declared]
        query: list[tuple[str, str | int | float | bool | None]]
        query = [(name, "globex") for name in unknown]
        # A declared one beside them changes nothing: the unknown ones are still named.
        query += [(name, "1") for name in sorted(declared)[:1]]
        url = fill(template, operation, {"ref": ref, "ntu_id": "ntu-1"})
        for caller, client in (("staff", staff), ("customer", acme)):
            # No body: the guard runs before the body is validated, and nothing runs.
            response = await client.request(method, url, params=query)
            asked += 1
            try:
                body = problem(response, 422, "unknown_query_parameter")
                assert body["unknown"] == unknown
                assert set(body["allowed"]) == declared
                assert [e["field"] for e in body["errors"]] == unknown
                assert body["detail"].startswith(
                    f"unknown query parameter(s): {', '.join(unknown)};"
                )
            except AssertionError as exc:
                failures.append(f"{caller} {method} {template}: {exc}")
    assert not failures, "\n".join(failures)
    assert asked >= 2 * 40, asked  # the document lists every operation
    case = await service.get_case(ref)
    assert (case.version, case.status) == (1, CaseStatus.NEW)


async def test_every_documented_query_parameter_is_accepted(
    app: FastAPI, staff: httpx.AsyncClient, acme: httpx.AsyncClient, ref: str
) -> None:
    components = app.openapi()["components"]["schemas"]
    failures: list[str] = []
    checked = 0
    for method, template, operation in operations(app):
        query = parameters(operation, "query")
        if method != "GET" or not query:
            continue
        params = {p["name"]: example(p["schema"], components) for p in query}
        url = fill(template, operation, {"ref": ref, "ntu_id": "ntu-1"})
        for caller, client in (("staff", staff), ("customer", acme)):
            response = await client.get(url, params=params)
            checked += len(params)
            code = response.json().get("code") if response.is_error else None
            # Not found, refused or a bad example value are fine; unknown is not.
            if code == "unknown_query_parameter" or response.status_code >= 500:
                failures.append(f"{caller} GET {url} {params}: {response.text[:300]}")
    assert not failures, "\n".join(failures)
    assert checked >= 2 * 20, checked


async def test_known_parameters_keep_working(
    staff: httpx.AsyncClient, acme: httpx.AsyncClient, ref: str
) -> None:
    listed = await staff.get("/v1/cases", params={"status": ["new", "in_progress"], "limit": 5})
    assert listed.status_code == 200 and [c["ref"] for c in listed.json()["data"]] == [ref]
    mine = await acme.get("/v1/cases", params={"priority": "P1", "ntu": "ntu-1"})
    assert mine.status_code == 200 and mine.json()["count"] == 1
    ntus = await staff.get("/v1/ntus", params={"customer": "cust-1", "limit": 10})
    assert [n["id"] for n in ntus.json()["data"]] == ["ntu-1", "ntu-2"]
    # A repeated known parameter is a list filter, not an unknown one.
    twice = await staff.get("/v1/cases", params=[("priority", "P1"), ("priority", "P2")])
    assert twice.json()["count"] == 1
    # A bad value of a known parameter is still a validation error naming it.
    bad = problem(await staff.get("/v1/cases", params={"limit": 0}), 422, "validation_error")
    assert bad["errors"][0]["field"] == "limit"


async def test_the_issue_examples(staff: httpx.AsyncClient, acme: httpx.AsyncClient) -> None:
    for client in (staff, acme):
        # ``customer`` and ``q`` have since become filters of /v1/cases; ``search`` is
        # still unknown.
        params = {"customer": "globex", "q": "power", "search": "power"}
        response = await client.get("/v1/cases", params=params)
        body = problem(response, 422, "unknown_query_parameter")
        assert body["unknown"] == ["search"]
        assert body["allowed"][:2] == ["status", "priority"]
        assert {"customer", "q"} <= set(body["allowed"])
        assert body["detail"].startswith(
            "unknown query parameter(s): search; allowed: status, priority, "
        )
        assert body["instance"] == "/v1/cases"
    # Names are exact: FastAPI reads ``limit``, not ``Limit``.
    problem(await staff.get("/v1/cases?Limit=5"), 422, "unknown_query_parameter")
    # An operation without query parameters says so.
    body = problem(await staff.get("/v1/cases/x/timeline?x=1"), 422, "unknown_query_parameter")
    assert body["detail"] == "unknown query parameter(s): x; this operation takes none"
    assert body["allowed"] == []


async def test_undocumented_routes_and_the_docs_are_not_checked(
    database: Database, service: CaseService
) -> None:
    # ``nms`` mounts its Prometheus /metrics like this (include_in_schema=False): a
    # scrape job's ``params`` and a browser's cache buster must keep working.
    extra = APIRouter()

    @extra.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse("up 1\n")

    app = create_app(
        sessionmaker=database.sessionmaker, case_service=service, extra_routers=[extra]
    )
    async with client_for(app, None) as client:
        for url in ("/metrics?name[]=up&_=1", "/openapi.json?_=1", "/docs?_=1", "/redoc?_=1"):
            assert (await client.get(url)).status_code == 200, url
        # /healthz is part of the API: it takes no parameters, so it refuses them.
        problem(await client.get("/healthz?_=1"), 422, "unknown_query_parameter")
        assert (await client.get("/healthz")).status_code == 200


async def test_the_openapi_document_describes_the_refusal(app: FastAPI) -> None:
    failures = []
    for method, template, operation in operations(app):
        answer = operation["responses"].get("422", {})
        if "application/problem+json" not in answer.get("content", {}):
            failures.append(f"{method} {template}")
        elif "unknown_query_parameter" not in answer["description"]:
            failures.append(f"{method} {template}: {answer['description']}")
    assert not failures


@pytest.mark.parametrize("role", [Role.SERVICE, Role.NOC])
async def test_other_roles_are_refused_alike(app: FastAPI, role: Role) -> None:
    async with authed_client(app, role=role) as client:
        response = await client.get("/v1/ntus", params={"q": "x"})
        assert problem(response, 422, "unknown_query_parameter")["unknown"] == ["q"]
