"""What the customer is shown of the escalation matrix on their case.

The level always; the level's first named contact only when the customer's tier says
``customer_sees: level_and_contact``; never the team or the on-call person.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.cases.snapshot import Escalate
from caseapi.customers.models import Customer
from caseapi.incidents import IncidentService
from caseapi.oncall.cached import TiersCache
from caseapi.organisation import (
    MemberRecord,
    RuleRecord,
    TeamFacts,
    TeamRecord,
    parse_oncall_sections,
    replace_rotations,
    replace_tiers,
    sync_organisation,
)
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import authed_client, make_app
from tests.caseapi.conftest import Database, incident
from tests.caseapi.lifecycle_fixtures import ENGINEER, seed

TEAMS = {
    "l1-noc": TeamFacts("Europe/Rome", ("alice",)),
    "l2-access": TeamFacts("Europe/Rome", ("carol",)),
}
TIER: dict[str, Any] = {
    "tier": "standard",
    "levels": {
        "L1": {"team": "l1-noc"},
        "L2": {"team": "l2-access", "contacts": ["carol"]},
    },
}


async def _organisation(database: Database, *, customer_sees: str | None) -> None:
    tier = deepcopy(TIER)
    if customer_sees is not None:
        tier["customer_sees"] = customer_sees
    problems, model = parse_oncall_sections(
        {"escalation": [tier]}, TEAMS, ("alice", "carol"), "org.yaml"
    )
    assert problems == []

    async def write(session: AsyncSession) -> None:
        await replace_rotations(session, model.rotations.values())
        await replace_tiers(session, model.tiers.values())

    await sync_organisation(
        database.sessionmaker,
        teams=[
            TeamRecord(id=t, name=t, level=t[:2].upper(), timezone=f.timezone, members=f.members)
            for t, f in TEAMS.items()
        ],
        members=[
            MemberRecord(id=m, name=name, email=f"{m}@noc.example", timezone="UTC", language="en")
            for m, name in (("alice", "Alice Bianchi"), ("carol", "Carol Rossi"))
        ],
        rules=[RuleRecord(team="l1-noc")],
        also=[write],
    )


async def _views(app: FastAPI, ref: str) -> tuple[dict[str, Any], dict[str, Any]]:
    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        mine = await customer.get(f"/v1/cases/{ref}")
    async with authed_client(app, role=Role.ENGINEER) as staff:
        theirs = await staff.get(f"/v1/cases/{ref}")
    assert mine.status_code == theirs.status_code == 200
    return mine.json(), theirs.json()


@pytest.mark.parametrize(
    ("customer_sees", "contact"),
    [("level_and_contact", "Carol Rossi"), ("level", None), (None, None)],
)
async def test_the_customer_sees_the_level_and_the_contact_only_where_the_contract_says(
    database: Database,
    clock: FakeClock,
    service: CaseService,
    incidents: IncidentService,
    customer_sees: str | None,
    contact: str | None,
) -> None:
    await seed(database)
    await _organisation(database, customer_sees=customer_sees)
    app = make_app(database, service, clock)
    ref = await incidents.open_incident(incident("ntu-1"))

    mine, _ = await _views(app, ref)
    # L1 names nobody: its team and whoever is on call stay internal.
    assert mine["escalation"] == {"level": "L1", "contact": None}
    assert "escalation_level" not in mine and "team" not in mine

    await service.act(ENGINEER, ref, lambda _: Escalate(actor=ENGINEER.actor, by_customer=False))
    mine, theirs = await _views(app, ref)
    assert mine["escalation"] == {"level": "L2", "contact": contact}
    assert theirs["escalation"] == {"level": "L2", "contact": contact}
    assert theirs["escalation_level"] == "L2"
    assert "l2-access" not in str(mine) and "carol@" not in str(mine)


async def test_without_an_organisation_the_level_alone(
    database: Database, clock: FakeClock, service: CaseService, incidents: IncidentService
) -> None:
    await seed(database)
    app = make_app(database, service, clock)
    ref = await incidents.open_incident(incident("ntu-1"))
    mine, _ = await _views(app, ref)
    assert mine["escalation"] == {"level": "L1", "contact": None}


async def test_a_gold_customer_gets_its_own_tier(
    database: Database, clock: FakeClock, service: CaseService, incidents: IncidentService
) -> None:
    await seed(database)
    await _organisation(database, customer_sees="level")
    async with database.sessionmaker() as session:
        customer = await session.get(Customer, "cust-1")
        assert customer is not None
        customer.attributes = {"tier": "gold"}  # no such tier: the standard one applies
        await session.commit()
    app = make_app(database, service, clock)
    ref = await incidents.open_incident(incident("ntu-1"))
    await service.act(ENGINEER, ref, lambda _: Escalate(actor=ENGINEER.actor, by_customer=False))
    mine, _ = await _views(app, ref)
    assert mine["escalation"] == {"level": "L2", "contact": None}


async def test_the_portal_shows_the_level_and_the_contact(
    database: Database, clock: FakeClock, service: CaseService, incidents: IncidentService
) -> None:
    from tests.caseapi.web.pages import login_as

    await seed(database)
    await _organisation(database, customer_sees="level_and_contact")
    app = make_app(database, service, clock)
    ref = await incidents.open_incident(incident("ntu-1"))
    await service.act(ENGINEER, ref, lambda _: Escalate(actor=ENGINEER.actor, by_customer=False))
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        page = await customer.get(f"/portal/cases/{ref}")
    assert page.status_code == 200
    assert "L2 (your contact: Carol Rossi)" in page.text
    assert "l2-access" not in page.text


async def test_a_tier_change_shows_within_the_cache_ttl_or_at_once_when_forgotten(
    database: Database, clock: FakeClock, incidents: IncidentService
) -> None:
    # The tiers are read once per ttl (not per case read): a change made elsewhere
    # (another process loading the organisation file) shows once the ttl has passed.
    now = [0.0]
    tiers = TiersCache(ttl=5.0, monotonic=lambda: now[0])
    app, ref = await _escalated_with(tiers, database, clock, incidents)
    mine, _ = await _views(app, ref)
    assert mine["escalation"] == {"level": "L2", "contact": "Carol Rossi"}

    await _organisation(database, customer_sees="level")
    now[0] = 4.9
    mine, _ = await _views(app, ref)
    assert mine["escalation"] == {"level": "L2", "contact": "Carol Rossi"}
    now[0] = 5.0
    mine, _ = await _views(app, ref)
    assert mine["escalation"] == {"level": "L2", "contact": None}

    await _organisation(database, customer_sees="level_and_contact")
    mine, _ = await _views(app, ref)
    assert mine["escalation"] == {"level": "L2", "contact": None}
    service: CaseService = app.state.case_service
    service.forget_tiers()  # what nms run's organisation reload calls
    mine, _ = await _views(app, ref)
    assert mine["escalation"] == {"level": "L2", "contact": "Carol Rossi"}


async def test_a_tiers_cache_without_ttl_reads_every_time(
    database: Database, clock: FakeClock, incidents: IncidentService
) -> None:
    app, ref = await _escalated_with(TiersCache(ttl=0), database, clock, incidents)
    mine, _ = await _views(app, ref)
    assert mine["escalation"] == {"level": "L2", "contact": "Carol Rossi"}
    await _organisation(database, customer_sees="level")
    mine, _ = await _views(app, ref)
    assert mine["escalation"] == {"level": "L2", "contact": None}


async def _escalated_with(
    tiers: TiersCache, database: Database, clock: FakeClock, incidents: IncidentService
) -> tuple[FastAPI, str]:
    """The app over a service reading tiers through ``tiers``, and a case escalated to
    L2 under tiers that show the contact."""
    service = CaseService(sessionmaker=database.sessionmaker, clock=clock, tiers=tiers)
    await seed(database)
    await _organisation(database, customer_sees="level_and_contact")
    app = make_app(database, service, clock)
    ref = await incidents.open_incident(incident("ntu-1"))
    await service.act(ENGINEER, ref, lambda _: Escalate(actor=ENGINEER.actor, by_customer=False))
    return app, ref
