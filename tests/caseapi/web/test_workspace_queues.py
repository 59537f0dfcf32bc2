"""The queue pages: which cases each queue holds, their counts, filters, search, roles."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from caseapi.auth.principal import Role
from caseapi.cases.enums import CasePriority
from caseapi.cases.service import CaseService
from nms.clock import FakeClock
from tests.caseapi.conftest import Database
from tests.caseapi.lifecycle_fixtures import advance, ticker
from tests.caseapi.web.pages import login_as
from tests.caseapi.web.workspace_fixtures import count, open_case, rows


async def test_queues_hold_their_cases_and_count_them(app: FastAPI, service: CaseService) -> None:
    p1 = await open_case(service, summary="Fibre cut", priority=CasePriority.P1)
    mine = await open_case(service, ntu="ntu-2", summary="Slow line")
    request = await open_case(
        service, customer="cust-2", ntu=None, summary="Need docs", request=True
    )
    async with login_as(app, role=Role.ENGINEER, name="eve") as engineer:
        taken = await engineer.post(f"/cases/{mine}/take")
        assert taken.status_code == 303
        unassigned = await engineer.get("/cases", params={"queue": "unassigned"})
        my_cases = await engineer.get("/cases", params={"queue": "mine"})
        everything = await engineer.get("/cases")
    assert unassigned.status_code == 200
    assert set(rows(unassigned.text)) == {p1, request}
    assert rows(my_cases.text) == [mine]
    assert rows(everything.text) == [request, mine, p1]  # newest first
    assert count(everything.text, "unassigned") == 2
    assert count(everything.text, "mine") == 1
    assert count(everything.text, "all") == 3
    assert count(everything.text, "breached") == 0
    assert 'data-live="cases"' in everything.text
    assert 'data-live-src="/cases/fragment?queue=all"' in everything.text
    assert '<script src="/static/live.js"' in everything.text
    assert f'<a href="/cases/{p1}">{p1}</a>' in everything.text


async def test_filters_and_search_narrow_a_queue(app: FastAPI, service: CaseService) -> None:
    p1 = await open_case(service, summary="Fibre cut at the depot", priority=CasePriority.P1)
    p2 = await open_case(service, ntu="ntu-2", summary="Slow line")
    other = await open_case(service, customer="cust-2", ntu=None, summary="Need docs", request=True)
    async with login_as(app, role=Role.ENGINEER) as engineer:
        by_priority = await engineer.get("/cases", params={"priority": "P1"})
        by_customer = await engineer.get("/cases", params={"customer": "cust-2"})
        by_ntu = await engineer.get("/cases", params={"ntu": "ntu-2"})
        by_type = await engineer.get("/cases", params={"type": "general_request"})
        by_text = await engineer.get("/cases", params={"q": "depot"})
        by_status = await engineer.get(
            "/cases", params={"queue": "waiting_customer", "status": "new"}
        )
        sorted_rows = await engineer.get("/cases", params={"sort": "priority"})
        fragment = await engineer.get("/cases/fragment", params={"priority": "P1"})
        # The filter form sends every field, the unused ones empty.
        form = await engineer.get(
            "/cases",
            params={
                "queue": "all",
                "q": "",
                "priority": "P1",
                "status": "",
                "type": "",
                "level": "",
                "customer": "",
                "ntu": "",
                "assignee": "",
                "sort": "newest",
            },
        )
        bad = await engineer.get("/cases", params={"priority": "P9"})
    assert rows(by_priority.text) == [p1]
    assert rows(by_customer.text) == [other]
    assert rows(by_ntu.text) == [p2]
    assert rows(by_type.text) == [other]
    assert rows(by_text.text) == [p1]
    assert rows(by_status.text) == []
    assert rows(sorted_rows.text) == [p1, p2, other]
    assert rows(fragment.text) == [p1]
    assert "<html" not in fragment.text and 'data-test="queues"' in fragment.text
    assert rows(form.text) == [p1]
    assert bad.status_code == 422 and "Traceback" not in bad.text


async def test_at_risk_and_breached_follow_the_clocks(
    app: FastAPI, service: CaseService, database: Database, clock: FakeClock
) -> None:
    p1 = await open_case(service, summary="Fibre cut", priority=CasePriority.P1)
    tick = ticker(database, clock, service)
    async with login_as(app, role=Role.ENGINEER) as engineer:
        fresh = await engineer.get("/cases", params={"queue": "at_risk"})
        # P1's first response is due 30 min after opening: within the risk horizon
        # (cases.at_risk_within, 15 min) after 16 min.
        await advance(clock, tick, timedelta(minutes=16))
        at_risk = await engineer.get("/cases", params={"queue": "at_risk"})
        for _ in range(3):  # an hour, looking in every 20 min (idle sessions end at 30)
            await advance(clock, tick, timedelta(minutes=20))
            assert (await engineer.get("/cases")).status_code == 200
        breached = await engineer.get("/cases", params={"queue": "breached"})
        risk_after = await engineer.get("/cases", params={"queue": "at_risk"})
    assert rows(fresh.text) == []  # due in 30 min: not yet at risk
    assert rows(at_risk.text) == [p1]
    assert "data-countdown" in at_risk.text
    assert rows(breached.text) == [p1]
    assert count(breached.text, "breached") == 1
    assert "overdue" in breached.text
    assert rows(risk_after.text) == []


async def test_customers_and_visitors_do_not_get_the_queues(app: FastAPI) -> None:
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        page = await customer.get("/cases")
        fragment = await customer.get("/cases/fragment")
    assert (page.status_code, fragment.status_code) == (403, 403)
