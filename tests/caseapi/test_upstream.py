"""Upstream incidents in the case service and the API: linked customer cases,
idempotent and race-safe opening, resolution flowing down, and who sees what."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from caseapi.auth.principal import Role
from caseapi.cases.models import Case
from caseapi.incidents import IncidentService
from caseapi.notifications.models import Notification
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import authed_client
from tests.caseapi.conftest import Database, incident, upstream
from tests.caseapi.rfo_checks import assert_rfo_tells_the_case


async def _cases(database: Database) -> list[Case]:
    async with database.sessionmaker() as session:
        return list((await session.scalars(select(Case).order_by(Case.id))).all())


async def test_opening_is_idempotent_and_affected_ntus_accumulate(
    database: Database, incidents: IncidentService
):
    ref = await incidents.open_upstream_incident(upstream(("a1", "cust-1")))
    again = await incidents.open_upstream_incident(
        upstream(("a1", "cust-1"), ("a2", "cust-1"), ("b1", "cust-2"))
    )
    assert again == ref
    cases = await _cases(database)
    assert len(cases) == 3
    parent, *linked = cases
    assert parent.ref == ref
    assert parent.customer_id is None
    assert parent.affected == [
        {"ntu": "a1", "customer": "cust-1"},
        {"ntu": "a2", "customer": "cust-1"},
        {"ntu": "b1", "customer": "cust-2"},
    ]
    assert "3 NTUs of 2 customers" in parent.summary
    assert [(c.customer_id, c.parent_case_id) for c in linked] == [
        ("cust-1", parent.id),
        ("cust-2", parent.id),
    ]
    assert "a1, a2" in linked[0].summary


async def test_concurrent_openings_make_one_parent_and_one_case_per_customer(
    database: Database, incidents: IncidentService
):
    request = upstream(("a1", "cust-1"), ("b1", "cust-2"))
    refs = await asyncio.gather(*(incidents.open_upstream_incident(request) for _ in range(5)))
    assert len(set(refs)) == 1
    assert len(await _cases(database)) == 3


async def test_restoring_the_parent_solves_linked_customer_cases_only(
    database: Database, incidents: IncidentService, clock: FakeClock
):
    await incidents.open_upstream_incident(upstream(("a1", "cust-1"), ("b1", "cust-2")))
    # An NTU's own case linked to the incident is not the incident's to solve.
    own = replace(incident("a9"), parent_key="node:pop1:down")
    own_ref = await incidents.open_incident(own)
    clock.advance(timedelta(minutes=5))
    await incidents.restore_incident(dedup_key="node:pop1:down", restored_at=clock.now())
    by_ref = {c.ref: c for c in await _cases(database)}
    assert by_ref[own_ref].status == "new"
    assert by_ref[own_ref].parent_case_id is not None
    assert sorted(c.status for r, c in by_ref.items() if r != own_ref) == ["solved"] * 3


async def test_staff_see_the_links_and_customers_only_their_own_case(
    app: FastAPI,
    database: Database,
    incidents: IncidentService,
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
):
    parent_ref = await incidents.open_upstream_incident(
        upstream(("a1", "cust-1"), ("b1", "cust-2"))
    )
    _, mine, theirs = await _cases(database)
    body = (await staff.get(f"/v1/cases/{parent_ref}")).json()
    assert body["parent"] is None
    assert sorted(body["linked"]) == sorted([mine.ref, theirs.ref])
    assert {a["customer"] for a in body["affected"]} == {"cust-1", "cust-2"}
    child = (await staff.get(f"/v1/cases/{mine.ref}")).json()
    assert child["parent"] == parent_ref
    # The customer sees its own linked case with the parent's reference, nothing of
    # the internal incident or of other customers.
    own = await acme.get(f"/v1/cases/{mine.ref}")
    assert own.status_code == 200
    assert own.json()["parent"] == parent_ref
    assert "linked" not in own.json()
    assert "affected" not in own.json()
    assert (await acme.get(f"/v1/cases/{parent_ref}")).status_code == 404
    assert (await acme.get(f"/v1/cases/{theirs.ref}")).status_code == 404
    listed = (await acme.get("/v1/cases")).json()["data"]
    assert [c["ref"] for c in listed] == [mine.ref]


async def test_public_updates_on_the_parent_flow_to_the_open_linked_cases(
    database: Database,
    incidents: IncidentService,
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
):
    parent_ref = await incidents.open_upstream_incident(
        upstream(("a1", "cust-1"), ("b1", "cust-2"))
    )
    _, mine, theirs = await _cases(database)
    posted = await staff.post(
        f"/v1/cases/{parent_ref}/comments", json={"body": "Fibre cut; ETA 16:00"}
    )
    assert posted.status_code == 201, posted.text
    note = await staff.post(
        f"/v1/cases/{parent_ref}/comments",
        json={"body": "supplier ticket 123", "visibility": "internal"},
    )
    assert note.status_code == 201
    view = (await acme.get(f"/v1/cases/{mine.ref}/comments")).json()
    assert [c["body"] for c in view["data"]] == ["Fibre cut; ETA 16:00"]
    other = (await staff.get(f"/v1/cases/{theirs.ref}/comments")).json()
    assert [c["body"] for c in other["data"]] == ["Fibre cut; ETA 16:00"]
    # It is support's first response on the linked cases too.
    assert (await staff.get(f"/v1/cases/{mine.ref}")).json()["first_responded_at"] is not None


async def test_the_incident_rfo_reaches_each_linked_customer_and_nothing_of_the_others(
    database: Database,
    incidents: IncidentService,
    clock: FakeClock,
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
    app: FastAPI,
):
    parent_ref = await incidents.open_upstream_incident(
        upstream(("a1", "cust-1"), ("b1", "cust-2"))
    )
    _, mine, theirs = await _cases(database)
    clock.advance(timedelta(minutes=5))
    await staff.post(f"/v1/cases/{parent_ref}/comments", json={"body": "Fibre cut at the PoP."})
    clock.advance(timedelta(minutes=30))
    await incidents.restore_incident(dedup_key="node:pop1:down", restored_at=clock.now())
    cause = {
        "root_cause_category": "supplier",
        "root_cause": "The supplier's fibre into pop1 was cut.",
        "corrective_actions": "Spliced.",
        "preventive_actions": "A second route into pop1.",
    }
    assert (await staff.put(f"/v1/cases/{parent_ref}/rfo", json=cause)).is_success
    published = await staff.post(f"/v1/cases/{parent_ref}/rfo/publish")
    assert published.status_code == 200, published.text
    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-2") as other:
        readers = {mine.ref: acme, theirs.ref: other}
        for ref, customer in readers.items():
            rfo = (await customer.get(f"/v1/cases/{ref}/rfo")).json()
            assert rfo["status"] == "published", rfo
            assert rfo["root_cause"] == cause["root_cause"]
            assert rfo["facts"]["incident_ref"] == parent_ref
            markdown = (await customer.get(f"/v1/cases/{ref}/rfo?format=md")).text
            assert f"Part of the upstream incident {parent_ref}." in markdown
            case = (await customer.get(f"/v1/cases/{ref}")).json()
            assert case["rfo_published_at"] is not None
            assert_rfo_tells_the_case(case, rfo, markdown)
            # Neither customer sees the other: not its case, NTU or customer id.
            others = {
                mine.ref: ("cust-2", "b1", theirs.ref),
                theirs.ref: ("cust-1", "a1", mine.ref),
            }
            for secret in others[ref]:
                assert secret not in str(rfo) and secret not in markdown, secret
        assert (await acme.get(f"/v1/cases/{theirs.ref}/rfo")).status_code == 404
        assert (await other.get(f"/v1/cases/{mine.ref}/rfo")).status_code == 404
        assert (await acme.get(f"/v1/cases/{parent_ref}/rfo")).status_code == 404
    async with database.sessionmaker() as session:
        told = (
            await session.execute(
                select(Notification.customer_id, Notification.case_ref).where(
                    Notification.kind == "rfo_published"
                )
            )
        ).all()
    assert sorted(told) == sorted([("cust-1", mine.ref), ("cust-2", theirs.ref)])
