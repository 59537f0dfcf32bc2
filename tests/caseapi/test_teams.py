"""Teams and routing in the case service: sync, routing at creation, forward, correction.

Both backends (the ``database`` fixture). Customers never see teams: not on the
case, not in the timeline, not through ``/v1/teams``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from caseapi.auth.principal import Principal, Role
from caseapi.cases.enums import CaseEventKind, CaseSource, CaseSubject, CaseType
from caseapi.cases.schemas import CaseCreate
from caseapi.cases.service import CaseService
from caseapi.core.database import session_scope
from caseapi.incidents import IncidentService
from caseapi.ntus.models import Ntu
from caseapi.organisation import (
    MemberRecord,
    RuleRecord,
    TeamRecord,
    check_records,
    sync_organisation,
)
from tests.caseapi.auth_fixtures import problem
from tests.caseapi.conftest import Database, incident, upstream
from tests.caseapi.lifecycle_fixtures import events_of, kinds

TEAMS = [
    TeamRecord(
        id="l1-noc",
        name="L1 NOC",
        level="L1",
        timezone="Europe/Rome",
        members=["alice", "bob"],
        expertise={"services": ["internet"], "regions": ["north"]},
    ),
    TeamRecord(id="l2-access", name="L2 access", level="L2", timezone="UTC", members=["carol"]),
    TeamRecord(id="l3-core", name="L3 core", level="L3", timezone="UTC", members=["dave"]),
    TeamRecord(id="field", name="Field dispatch", level="none", timezone="UTC", members=["bob"]),
]
MEMBERS = [
    MemberRecord(id=m, name=m.title(), email=f"{m}@provider.example", timezone="UTC")
    for m in ("alice", "bob", "carol", "dave")
]
RULES = [
    RuleRecord(team="field", when={"subject": ["engineer_dispatch"]}),
    RuleRecord(team="l3-core", when={"source": ["proactive"], "region": ["core"]}),
    RuleRecord(team="l2-access", when={"source": ["proactive"], "priority": ["P1"]}),
    RuleRecord(team="l1-noc"),
]
REQUEST = {"type": "general_request", "summary": "question", "subject": "other"}
SUMMARY = {"summary": "needs L3", "details": "BGP flaps", "tests_done": ["ping"]}


async def organise(database: Database, rules: list[RuleRecord] = RULES, **kw: Any) -> None:
    await sync_organisation(
        database.sessionmaker,
        teams=kw.get("teams", TEAMS),
        members=kw.get("members", MEMBERS),
        rules=rules,
    )


async def team_of(staff: httpx.AsyncClient, ref: str) -> str | None:
    response = await staff.get(f"/v1/cases/{ref}")
    assert response.status_code == 200, response.text
    team: str | None = response.json()["team"]
    return team


async def create(client: httpx.AsyncClient, **body: Any) -> str:
    response = await client.post("/v1/cases", json={**REQUEST, "customer_id": "cust-1", **body})
    assert response.status_code == 201, response.text
    ref: str = response.json()["ref"]
    return ref


async def test_new_cases_get_one_team_from_the_rules(
    app: Any,
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
    database: Database,
    service: CaseService,
    incidents: IncidentService,
) -> None:
    await organise(database)
    async with database.sessionmaker() as session:
        await session.execute(
            update(Ntu).where(Ntu.id == "ntu-2").values(attributes={"region": "core"})
        )
        await session.commit()
    p1 = await incidents.open_incident(incident("ntu-1"))
    core = await incidents.open_incident(incident("ntu-2", priority="P2"))
    reactive = await create(acme, customer_id=None)
    dispatch = await create(
        staff,
        subject="engineer_dispatch",
        requested_date="2030-01-01T09:00:00+00:00",
    )
    assert await team_of(staff, p1) == "l2-access"  # proactive P1
    assert await team_of(staff, core) == "l3-core"  # proactive, NTU in region core
    assert await team_of(staff, reactive) == "l1-noc"  # the catch-all
    assert await team_of(staff, dispatch) == "field"
    # Upstream: the incident and each customer's linked case get a team too.
    parent = await incidents.open_upstream_incident(upstream(("ntu-9", "cust-2")))
    assert await team_of(staff, parent) == "l2-access"
    children = (await staff.get("/v1/cases", params={"customer": "cust-2"})).json()["data"]
    assert [c["team"] for c in children] == ["l2-access"]
    # Exactly one team_assigned entry, internal, right after "opened".
    assert (await kinds(service, reactive))[:2] == [
        CaseEventKind.OPENED,
        CaseEventKind.TEAM_ASSIGNED,
    ]
    assert await events_of(service, p1, CaseEventKind.TEAM_ASSIGNED) == [
        {"team": "l2-access", "by": "routing"}
    ]
    listed = await staff.get("/v1/cases", params={"team": "l1-noc"})
    assert [c["ref"] for c in listed.json()["data"]] == [reactive]


async def test_without_an_organisation_cases_get_no_team(
    app: Any, staff: httpx.AsyncClient, service: CaseService
) -> None:
    ref = await create(staff)
    assert await team_of(staff, ref) is None
    assert CaseEventKind.TEAM_ASSIGNED not in await kinds(service, ref)


async def test_a_rule_change_applies_to_new_cases_only(
    app: Any, staff: httpx.AsyncClient, database: Database
) -> None:
    await organise(database)
    before = await create(staff)
    # l1-noc leaves the file; everything goes to l3-core from now on.
    await organise(database, [RuleRecord(team="l3-core")], teams=TEAMS[1:])
    after = await create(staff)
    assert await team_of(staff, before) == "l1-noc"
    assert await team_of(staff, after) == "l3-core"
    listed = await staff.get("/v1/cases", params={"team": "l1-noc"})
    assert [c["ref"] for c in listed.json()["data"]] == [before]
    # A team no longer in the file is not offered.
    problem(await staff.get("/v1/teams/l1-noc"), 404, "team_not_found")


async def test_sync_refuses_inconsistent_records_and_stores_nothing(
    app: Any, staff: httpx.AsyncClient, database: Database
) -> None:
    await organise(database)
    bad_rules = [RuleRecord(team="l1-noc", when={"priority": ["P1"]})]
    for rules, message in (
        ([RuleRecord(team="ghost")], r"routing\[0\].team: unknown team 'ghost'"),
        (bad_rules, "the last rule must match every case"),
    ):
        with pytest.raises(ValueError, match=message):
            await organise(database, rules)
    with pytest.raises(ValueError, match="unknown members"):
        check_records(
            [TeamRecord(id="x", name="X", level="L1", timezone="UTC", members=["z"])], [], []
        )
    teams = (await staff.get("/v1/teams")).json()
    assert [t["id"] for t in teams["data"]] == ["field", "l1-noc", "l2-access", "l3-core"]
    assert await team_of(staff, await create(staff)) == "l1-noc"


async def test_teams_api(
    app: Any, staff: httpx.AsyncClient, acme: httpx.AsyncClient, database: Database
) -> None:
    await organise(database)
    listed = (await staff.get("/v1/teams")).json()
    assert listed["count"] == 4 and listed["data"][0]["members"] is None
    team = (await staff.get("/v1/teams/l1-noc")).json()
    assert team["level"] == "L1" and team["timezone"] == "Europe/Rome"
    assert [m["id"] for m in team["members"]] == ["alice", "bob"]
    assert team["expertise"]["services"] == ["internet"]
    assert team["expertise"]["subjects"] == []
    problem(await staff.get("/v1/teams/nope"), 404, "team_not_found")
    problem(await acme.get("/v1/teams"), 403, "forbidden")


async def test_forward_to_a_team_and_a_person_with_the_summary(
    app: Any,
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
    database: Database,
    service: CaseService,
    incidents: IncidentService,
) -> None:
    await organise(database)
    ref = await create(acme, customer_id=None, type="incident", subject=None)
    response = await staff.post(
        f"/v1/cases/{ref}/forward", json={"team": "l3-core", "assignee": "dave", **SUMMARY}
    )
    assert response.status_code == 200, response.text
    case = response.json()
    assert (case["team"], case["assignee"], case["escalation_level"]) == ("l3-core", "dave", "L3")
    [entry] = await events_of(service, ref, CaseEventKind.HANDED_OFF)
    assert entry["team"] == "l3-core" and entry["from_team"] == "l1-noc"
    assert entry["summary"]["details"] == "BGP flaps"
    assert entry["summary"]["tests_done"] == ["ping"]
    # A team outside the ladder keeps the level; a person alone keeps the team.
    moved = await staff.post(f"/v1/cases/{ref}/forward", json={"team": "field", **SUMMARY})
    assert (moved.json()["team"], moved.json()["escalation_level"]) == ("field", "L3")
    assert moved.json()["assignee"] is None
    person = await staff.post(f"/v1/cases/{ref}/forward", json={"assignee": "bob", **SUMMARY})
    assert (person.json()["team"], person.json()["assignee"]) == ("field", "bob")
    # Bad targets: 422 naming the field, nothing changes.
    version = person.json()["version"]
    for body, field in (
        ({"team": "ghost"}, "team"),
        ({"assignee": "zed"}, "assignee"),
        ({"team": "l2-access", "assignee": "dave"}, "assignee"),
        ({}, "team"),
    ):
        bad = await staff.post(f"/v1/cases/{ref}/forward", json={**body, **SUMMARY})
        assert problem(bad, 422, "validation_error")["errors"][0]["field"] == field
    assert (await staff.get(f"/v1/cases/{ref}")).json()["version"] == version
    # The customer sees none of it.
    seen = (await acme.get(f"/v1/cases/{ref}")).json()
    assert "team" not in seen and "assignee" not in seen
    timeline = (await acme.get(f"/v1/cases/{ref}/timeline")).json()["data"]
    assert {e["kind"] for e in timeline}.isdisjoint({"handed_off", "team_assigned"})
    assert "l3-core" not in str(timeline) and "BGP" not in str(timeline)
    problem(
        await acme.post(f"/v1/cases/{ref}/forward", json={"team": "l1-noc", **SUMMARY}),
        403,
        "forbidden",
    )
    # A customer cannot filter on teams: the filter is ignored for it.
    mine = await acme.get("/v1/cases", params={"team": "nobody"})
    assert [c["ref"] for c in mine.json()["data"]] == [ref]


async def test_staff_correct_type_and_subject_with_timeline_entries(
    app: Any,
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
    service: CaseService,
    incidents: IncidentService,
) -> None:
    ref = await create(acme, customer_id=None, type="incident", subject=None)
    fixed = await staff.patch(
        f"/v1/cases/{ref}/classification",
        json={"type": "general_request", "subject": "information_request", "reason": "a question"},
    )
    assert fixed.status_code == 200, fixed.text
    case = fixed.json()
    assert (case["type"], case["subject"], case["priority"]) == (
        "general_request",
        "information_request",
        "P3",
    )
    assert await events_of(service, ref, CaseEventKind.TYPE_CHANGED) == [
        {"from": "incident", "to": "general_request", "reason": "a question"}
    ]
    assert await events_of(service, ref, CaseEventKind.SUBJECT_CHANGED) == [
        {"from": None, "to": "information_request", "reason": "a question"}
    ]
    # Customers see the correction and its reason (their case's type is theirs to know).
    kinds_seen = [e["kind"] for e in (await acme.get(f"/v1/cases/{ref}/timeline")).json()["data"]]
    assert {"type_changed", "subject_changed", "priority_changed"} <= set(kinds_seen)
    subject = await staff.patch(
        f"/v1/cases/{ref}/classification", json={"type": "general_request", "subject": "other"}
    )
    assert subject.json()["subject"] == "other"
    back = await staff.patch(f"/v1/cases/{ref}/classification", json={"type": "incident"})
    assert (back.json()["type"], back.json()["subject"], back.json()["priority"]) == (
        "incident",
        None,
        "P2",
    )
    version = back.json()["version"]
    for body, field in (
        ({"type": "incident", "subject": "other"}, "subject"),
        ({"type": "general_request"}, "subject"),
        ({"type": "general_request", "subject": "gossip"}, "subject"),
    ):
        bad = await staff.patch(f"/v1/cases/{ref}/classification", json=body)
        assert bad.status_code == 422, bad.text
        assert bad.json()["errors"][0]["field"] == field
    proactive = await incidents.open_incident(incident("ntu-1"))
    bad = await staff.patch(
        f"/v1/cases/{proactive}/classification",
        json={"type": "general_request", "subject": "other"},
    )
    assert problem(bad, 422, "validation_error")["errors"][0]["field"] == "type"
    problem(
        await acme.patch(f"/v1/cases/{ref}/classification", json={"type": "incident"}),
        403,
        "forbidden",
    )
    assert (await staff.get(f"/v1/cases/{ref}")).json()["version"] == version


async def test_a_mailed_case_is_routed_by_its_source(
    app: Any, staff: httpx.AsyncClient, database: Database, service: CaseService, clock: Any
) -> None:
    await organise(database, [RuleRecord(team="l2-access", when={"source": ["email"]}), *RULES])
    sender = Principal(
        key_id=None, name="noc@acme.example", role=Role.CUSTOMER, customer_id="cust-1"
    )
    draft = CaseCreate(type=CaseType.GENERAL_REQUEST, summary="by mail", subject=CaseSubject.OTHER)
    async with session_scope(database.sessionmaker, write=True) as session:
        case = await service.create_in(
            session, sender, draft, now=clock.now(), source=CaseSource.EMAIL
        )
        ref = case.ref
        await session.commit()
    assert await team_of(staff, ref) == "l2-access"
    assert await team_of(staff, await create(staff, source="phone")) == "l1-noc"
