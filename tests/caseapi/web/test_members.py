"""Staff who are members of the organisation file act under their member id.

"Take" assigns the case to the member, so that the on-call alerts of the case (a
customer reply, a breach) reach the person who took it.
"""

from __future__ import annotations

from fastapi import FastAPI

from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.incidents import IncidentService
from caseapi.organisation import MemberRecord, RuleRecord, TeamRecord, sync_organisation
from caseapi.web.session import SESSION_COOKIE
from tests.caseapi.conftest import Database, incident
from tests.caseapi.web.pages import login_as


async def _members(database: Database) -> None:
    await sync_organisation(
        database.sessionmaker,
        teams=[TeamRecord(id="l1-noc", name="L1", level="L1", timezone="UTC", members=("alice",))],
        members=[
            MemberRecord(
                id="alice",
                name="Alice",
                email="Alice@Example.net",
                timezone="UTC",
                language="en",
            ),
            MemberRecord(
                id="carol", name="Carol", email="carol@example.net", timezone="UTC", language="en"
            ),
        ],
        rules=[RuleRecord(team="l1-noc")],
    )


async def test_a_member_takes_a_case_under_the_member_id(
    app: FastAPI, database: Database, incidents: IncidentService, service: CaseService
) -> None:
    await _members(database)
    ref = await incidents.open_incident(incident("ntu-1"))
    async with login_as(app, role=Role.ENGINEER, name="alice") as alice:
        assert alice.session.principal.name == "alice"
        page = await alice.get("/account")
        assert page.status_code == 200
        took = await alice.post(f"/cases/{ref}/take")
        assert took.status_code == 303, took.text
    async with login_as(app, role=Role.ENGINEER, name="zed") as zed:
        # Not in the organisation file: named by the e-mail address.
        assert zed.session.principal.name == "zed@example.net"
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1", name="alice2") as c:
        assert c.session.principal.name == "alice2@example.net"
    assert (await service.get_case(ref)).assignee == "alice"


async def test_each_page_view_finds_the_member_of_a_staff_session_only(
    app: FastAPI, database: Database
) -> None:
    await _members(database)
    store = app.state.web_sessions
    async with login_as(app, role=Role.ENGINEER, name="alice") as alice:
        looked = await store.lookup(alice.client.cookies[SESSION_COOKIE])
        assert looked is not None and looked.principal.name == "alice"
    # A customer's contact with a member's address is still only the contact.
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1", name="carol") as carol:
        looked = await store.lookup(carol.client.cookies[SESSION_COOKIE])
        assert looked is not None and looked.principal.name == "carol@example.net"
        assert looked.principal.customer_id == "cust-1"
