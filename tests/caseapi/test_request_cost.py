"""What one API read costs: no key lookup, a fixed set of queries.

The API's hot reads were 4-10x the CPU of a bare FastAPI + SQLAlchemy handler
(``bench/api_load.py``); this keeps the causes found from coming back (no thread-pool
hop: ``test_async_handlers.py``).
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy import event

from caseapi.auth.principal import Role
from caseapi.cases.routes import router as cases_router
from caseapi.cases.service import CaseService
from caseapi.incidents import IncidentService
from caseapi.ntus.routes import router as ntus_router
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import client_for, make_app, mint_key
from tests.caseapi.conftest import Database, incident


async def test_reading_a_case_again_runs_only_the_case_queries(
    database: Database, service: CaseService, clock: FakeClock, incidents: IncidentService
) -> None:
    app: FastAPI = make_app(database, service, clock)
    ref = await incidents.open_incident(incident("ntu-1"))
    key = await mint_key(app, role=Role.NOC)
    async with client_for(app, key) as client:
        assert (await client.get(f"/v1/cases/{ref}")).status_code == 200
        response, statements = await _get_counted(database, client, f"/v1/cases/{ref}")
    assert response.status_code == 200
    assert response.json()["ref"] == ref
    selects = [s for s in statements if s.startswith("SELECT")]
    # The case alone: it has no commitments, no linked cases, no parent and does not
    # recur (each would add its read), the key was verified by the first request and
    # the escalation tiers were read by it too.
    assert len(selects) == 1, statements
    assert not any("api_keys" in s for s in statements), statements


async def test_a_case_with_commitments_reads_them_and_nothing_else(
    database: Database, service: CaseService, clock: FakeClock, incidents: IncidentService
) -> None:
    # The case's statement says whether it has commitments and linked cases: those
    # it has are read (here the commitments), those it has not cost nothing.
    app: FastAPI = make_app(database, service, clock)
    ref = await incidents.open_incident(incident("ntu-1"))
    key = await mint_key(app, role=Role.NOC)
    async with client_for(app, key) as client:
        promise = {"kind": "next_update", "within_minutes": 30}
        assert (await client.post(f"/v1/cases/{ref}/commitments", json=promise)).is_success
        assert (await client.get(f"/v1/cases/{ref}")).status_code == 200
        response, statements = await _get_counted(database, client, f"/v1/cases/{ref}")
    assert [c["kind"] for c in response.json()["commitments"]] == ["next_update"]
    assert response.json()["linked"] == []
    selects = [s for s in statements if s.startswith("SELECT")]
    assert len(selects) == 2, statements
    assert "case_commitments" in selects[1], statements


async def test_a_page_of_cases_and_its_count_are_one_statement(
    database: Database, service: CaseService, clock: FakeClock, incidents: IncidentService
) -> None:
    # The count of all pages rides on the page's rows (a scalar subquery): one round
    # trip; only a page without rows asks for the count on its own.
    app: FastAPI = make_app(database, service, clock)
    for ntu in ("ntu-1", "ntu-2", "ntu-3"):
        await incidents.open_incident(incident(ntu))
    key = await mint_key(app, role=Role.NOC)
    async with client_for(app, key) as client:
        assert (await client.get("/v1/cases")).status_code == 200
        response, statements = await _get_counted(database, client, "/v1/cases?limit=2")
        empty, empty_statements = await _get_counted(database, client, "/v1/cases?customer=nobody")
    assert response.status_code == 200, response.text
    assert (len(response.json()["data"]), response.json()["count"]) == (2, 3)
    assert [s for s in statements if s.startswith("SELECT")] == [
        "SELECT cases.id, cases.ref, cases.type,"
    ]
    assert empty.json() == {"data": [], "count": 0, "next_cursor": None}
    assert len([s for s in empty_statements if s.startswith("SELECT")]) == 2, empty_statements


def test_the_hot_reads_resolve_only_the_caller() -> None:
    # FastAPI's cost per dependency is tens of microseconds a request: a case, a page
    # of cases and an NTU's status take their service and session from the app (whose
    # own guard, ``check_request``, every route has besides).
    hot = {("GET", "/v1/cases/{ref}"), ("GET", "/v1/cases"), ("GET", "/v1/ntus/{ntu_id}/status")}
    for route in [*cases_router.routes, *ntus_router.routes]:
        assert isinstance(route, APIRoute)
        methods = route.methods or set()
        if any((method, route.path) in hot for method in methods):
            hot -= {(method, route.path) for method in methods}
            names = sorted(_dependency_names(route.dependant))
            assert names == ["HTTPBearer", "get_principal"], (route.path, names)
    assert not hot


def _dependency_names(dependant: Dependant) -> list[str]:
    names = []
    for sub in dependant.dependencies:
        call = sub.call
        names.append(getattr(call, "__name__", type(call).__name__))
        names += _dependency_names(sub)
    return names


async def _get_counted(
    database: Database, client: httpx.AsyncClient, url: str
) -> tuple[httpx.Response, list[str]]:
    """GET ``url`` and the statements it ran (each as its first four words)."""
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()[:4]))

    event.listen(database.engine.sync_engine, "before_cursor_execute", seen)
    try:
        response = await client.get(url)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", seen)
    return response, statements
