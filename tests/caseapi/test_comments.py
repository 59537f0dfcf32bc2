"""Comments: visibility, tenancy, customer replies, timeline data and immutability."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from caseapi.auth.principal import Role
from caseapi.cases import repository as case_repository
from caseapi.cases.enums import CaseEventKind, CaseStatus, EscalationLevel
from caseapi.cases.service import CaseService
from caseapi.cases.store import on_staff_reply
from caseapi.cases.ticker import CaseTicker
from caseapi.core.errors import CaseNotFoundError
from caseapi.incidents import IncidentService
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import add_customer, authed_client, make_app, problem
from tests.caseapi.conftest import START, Database, incident


@pytest.fixture
async def app(database: Database, service: CaseService, clock: FakeClock) -> FastAPI:
    for customer in ("acme", "umbrella"):
        await add_customer(database.sessionmaker, customer)
    return make_app(database, service, clock)


@pytest.fixture
async def ref(incidents: IncidentService) -> str:
    return await incidents.open_incident(incident("ntu-1", customer_id="acme"))


async def _events(database: Database, ref: str) -> list[Any]:
    async with database.sessionmaker() as session:
        case = await case_repository.get_case_by_ref(session, ref=ref)
        assert case is not None
        return await case_repository.list_events(session, case_id=case.id)


async def test_staff_write_both_customers_see_public_only(
    app: FastAPI, ref: str, database: Database
) -> None:
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        public = await engineer.post(f"/v1/cases/{ref}/comments", json={"body": "on it"})
        assert public.status_code == 201, public.text
        assert public.json()["visibility"] == "public"
        assert public.json()["author"].startswith("engineer:")
        internal = await engineer.post(
            f"/v1/cases/{ref}/comments", json={"body": "SECRET-42", "visibility": "internal"}
        )
        assert internal.json()["visibility"] == "internal"
        staff_view = (await engineer.get(f"/v1/cases/{ref}/comments")).json()
        assert [c["body"] for c in staff_view["data"]] == ["on it", "SECRET-42"]
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        view = await acme.get(f"/v1/cases/{ref}/comments")
        assert [c["body"] for c in view.json()["data"]] == ["on it"]
        assert "SECRET-42" not in view.text
    events = [e for e in await _events(database, ref) if e.kind is CaseEventKind.COMMENT_ADDED]
    assert [e.data["visibility"] for e in events] == ["public", "internal"]
    assert events[0].data["body"] == "on it"
    assert "body" not in events[1].data  # an internal body never reaches the timeline


async def test_customer_comment_is_a_public_reply(
    app: FastAPI, ref: str, database: Database
) -> None:
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        response = await acme.post(f"/v1/cases/{ref}/comments", json={"body": "still down"})
        assert response.status_code == 201, response.text
        assert response.json()["author_role"] == "customer"
        problem(
            await acme.post(
                f"/v1/cases/{ref}/comments", json={"body": "x", "visibility": "internal"}
            ),
            403,
            "forbidden",
        )
    kinds = [e.kind for e in await _events(database, ref)]
    assert CaseEventKind.CUSTOMER_REPLIED in kinds


async def test_customer_reply_resumes_a_case_waiting_on_the_customer(
    app: FastAPI, ref: str, database: Database
) -> None:
    async with database.sessionmaker() as session:
        case = await case_repository.get_case_by_ref(session, ref=ref)
        assert case is not None
        await case_repository.set_case_status(
            session, case=case, status=CaseStatus.WAITING_CUSTOMER, at=START
        )
        await session.commit()
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        await acme.post(f"/v1/cases/{ref}/comments", json={"body": "here you go"})
    async with database.sessionmaker() as session:
        case = await case_repository.get_case_by_ref(session, ref=ref)
        assert case is not None and case.status is CaseStatus.IN_PROGRESS


async def test_staff_public_comment_is_the_first_response(
    app: FastAPI, ref: str, database: Database
) -> None:
    async with authed_client(app, role=Role.NOC) as noc:
        await noc.post(f"/v1/cases/{ref}/comments", json={"body": "x", "visibility": "internal"})
        async with database.sessionmaker() as session:
            case = await case_repository.get_case_by_ref(session, ref=ref)
            assert case is not None and case.first_responded_at is None
        await noc.post(f"/v1/cases/{ref}/comments", json={"body": "we see it"})
    async with database.sessionmaker() as session:
        case = await case_repository.get_case_by_ref(session, ref=ref)
        assert case is not None and case.first_responded_at == START


async def test_other_customers_case_is_404(app: FastAPI, ref: str) -> None:
    async with authed_client(app, role=Role.CUSTOMER, customer_id="umbrella") as umbrella:
        problem(await umbrella.get(f"/v1/cases/{ref}/comments"), 404, "case_not_found")
        response = await umbrella.post(f"/v1/cases/{ref}/comments", json={"body": "hi"})
        problem(response, 404, "case_not_found")
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        assert (await engineer.get(f"/v1/cases/{ref}/comments")).json()["count"] == 0
        problem(await engineer.get("/v1/cases/CS-1999-000001/comments"), 404, "case_not_found")


async def test_service_role_may_not_comment(app: FastAPI, ref: str) -> None:
    async with authed_client(app, role=Role.SERVICE) as service:
        problem(await service.get(f"/v1/cases/{ref}/comments"), 403, "forbidden")
        response = await service.post(f"/v1/cases/{ref}/comments", json={"body": "x"})
        problem(response, 403, "forbidden")


async def test_customer_may_not_comment_on_a_closed_case(
    app: FastAPI, ref: str, database: Database
) -> None:
    async with database.sessionmaker() as session:
        case = await case_repository.get_case_by_ref(session, ref=ref)
        assert case is not None
        await case_repository.set_case_status(
            session, case=case, status=CaseStatus.CLOSED, at=START
        )
        await session.commit()
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        response = await acme.post(f"/v1/cases/{ref}/comments", json={"body": "again"})
        problem(response, 409, "case_closed")
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        response = await engineer.post(f"/v1/cases/{ref}/comments", json={"body": "note"})
        assert response.status_code == 201


@pytest.mark.parametrize(
    "body",
    [{}, {"body": ""}, {"body": "x", "visibility": "secret"}, {"body": "x", "extra": 1}],
)
async def test_bad_bodies_are_422(app: FastAPI, ref: str, body: dict[str, Any]) -> None:
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        response = await engineer.post(f"/v1/cases/{ref}/comments", json=body)
        problem(response, 422, "validation_error")


async def test_no_update_or_delete_route(app: FastAPI, ref: str) -> None:
    async with authed_client(app, role=Role.ADMIN) as admin:
        await admin.post(f"/v1/cases/{ref}/comments", json={"body": "x"})
        for method in ("PUT", "PATCH", "DELETE"):
            response = await admin.request(method, f"/v1/cases/{ref}/comments")
            assert response.status_code == 405
            response = await admin.request(method, f"/v1/cases/{ref}/comments/1")
            assert response.status_code in (404, 405)


async def test_database_refuses_to_change_a_comment(
    app: FastAPI, ref: str, database: Database
) -> None:
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        await engineer.post(f"/v1/cases/{ref}/comments", json={"body": "original"})
    for statement in ("UPDATE comments SET body = 'forged'", "DELETE FROM comments"):
        async with database.engine.connect() as conn:
            with pytest.raises(DBAPIError, match="immutable"):
                await conn.execute(text(statement))
    async with database.engine.connect() as conn:
        assert (await conn.execute(text("SELECT body FROM comments"))).scalar() == "original"


async def test_staff_public_reply_stops_the_first_response_breach(
    app: FastAPI,
    database: Database,
    service: CaseService,
    incidents: IncidentService,
    clock: FakeClock,
) -> None:
    answered = await incidents.open_incident(incident("ntu-1", customer_id="acme"))
    noted = await incidents.open_incident(incident("ntu-2", customer_id="acme"))
    clock.advance(timedelta(minutes=10))
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        for ref, visibility in ((answered, "public"), (noted, "internal")):
            body = {"body": "looking", "visibility": visibility}
            assert (await engineer.post(f"/v1/cases/{ref}/comments", json=body)).status_code == 201
        # A second public reply is not a second first response.
        await engineer.post(f"/v1/cases/{answered}/comments", json={"body": "still on it"})
    clock.advance(timedelta(minutes=20))  # 30 minutes after opening
    await CaseTicker(sessionmaker=database.sessionmaker, clock=clock).run_once()
    first = await service.get_case(answered)
    assert first.first_responded_at == START + timedelta(minutes=10)
    assert first.first_response_breached_at is None
    assert first.escalation_level is EscalationLevel.L1
    kinds = [e.kind for e in await _events(database, answered)]
    assert kinds.count(CaseEventKind.FIRST_RESPONSE) == 1
    second = await service.get_case(noted)
    assert second.first_responded_at is None
    assert second.first_response_breached_at == clock.now()
    assert second.escalation_level is EscalationLevel.L2


async def test_on_staff_reply_ignores_finished_cases(
    database: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    ref = await incidents.open_incident(incident("ntu-1", customer_id="acme"))
    # A merged duplicate never heard from support (merging is not a response to it).
    async with database.sessionmaker() as session:
        case = await case_repository.get_case_by_ref(session, ref=ref)
        assert case is not None
        case.status = CaseStatus.MERGED
        await session.commit()
        version = case.version
    async with database.sessionmaker() as session:
        await on_staff_reply(session, case_id=case.id, at=clock.now(), actor="engineer:x")
        await session.commit()
    after = await service.get_case(ref)
    assert (after.first_responded_at, after.version) == (None, version)
    with pytest.raises(CaseNotFoundError):
        async with database.sessionmaker() as session:
            await on_staff_reply(session, case_id=999_999, at=clock.now(), actor="engineer:x")
