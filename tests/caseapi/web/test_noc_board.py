"""The NOC board: fleet counts, incidents being worked, SLA watch, shards, dashboards."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import FastAPI

from caseapi.app import ProbeShard, configure_board
from caseapi.auth.principal import Role
from caseapi.cases.incidents import IncidentService
from caseapi.cases.service import CaseService
from caseapi.web.noc.board import format_age
from caseapi.web.noc.config import BoardSettings
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database, incident
from tests.caseapi.lifecycle_fixtures import advance, set_ntu_status, ticker
from tests.caseapi.web.pages import login_as


def _count(html: str, state: str) -> int:
    match = re.search(
        rf'data-test="count-{state}">\s*(?:<a[^>]*>)?<span class="number">(\d+)</span>', html
    )
    assert match is not None, f"no count-{state} in the board"
    return int(match.group(1))


def _rows(html: str, hook: str) -> list[str]:
    return re.findall(rf'data-test="{hook}" data-ref="([^"]+)"', html)


async def test_the_board_counts_the_fleet_and_lists_the_open_incidents(
    app: FastAPI, incidents: IncidentService, database: Database, clock: FakeClock
) -> None:
    await set_ntu_status(database, "ntu-1", "down")
    ref = await incidents.open_incident(incident("ntu-1"))
    degraded = await incidents.open_incident(
        incident("ntu-2", priority="P2", dedup_key="ntu:ntu-2:degraded")
    )
    clock.advance(timedelta(minutes=75))
    async with login_as(app, role=Role.ENGINEER) as engineer:
        page = await engineer.get("/noc")
    assert page.status_code == 200, page.text
    html = page.text
    # Seed: ntu-1 (now down), ntu-2 and ntu-9 never judged.
    assert (_count(html, "down"), _count(html, "unknown"), _count(html, "up")) == (1, 2, 0)
    assert _count(html, "maintenance") == 0
    assert 'data-test="fleet-counts"' in html and 'data-test="open-cases"' in html
    assert _rows(html, "noc-case") == [ref, degraded]  # P1 first
    assert f'href="/cases/{ref}"' in html
    assert "1h 15m" in html and "unassigned" in html
    assert 'data-live="cases ntus"' in html and 'data-live-src="/noc/fragment"' in html
    assert '<script src="/static/live.js"' in html


async def test_the_fragment_is_the_live_region_alone(app: FastAPI) -> None:
    async with login_as(app, role=Role.NOC) as noc:
        fragment = await noc.get("/noc/fragment")
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<header" not in fragment.text
    assert 'data-test="fleet-counts"' in fragment.text
    assert fragment.headers["cache-control"] == "no-store"


async def test_customers_do_not_see_the_board(app: FastAPI) -> None:
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        for url in ("/noc", "/noc/fragment"):
            response = await customer.get(url)
            assert response.status_code == 403, url
            assert 'data-test="fleet-counts"' not in response.text


async def test_sla_at_risk_then_breached(
    app: FastAPI,
    incidents: IncidentService,
    service: CaseService,
    database: Database,
    clock: FakeClock,
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    async with login_as(app, role=Role.ENGINEER) as engineer:
        # First response due in 30 min: not yet within cases.at_risk_within (15 min).
        html = (await engineer.get("/noc")).text
        assert _rows(html, "sla-case") == []
    await advance(clock, ticker(database, clock, service), timedelta(minutes=20))
    async with login_as(app, role=Role.ENGINEER) as engineer:
        html = (await engineer.get("/noc")).text
        assert (_rows(html, "sla-case"), "No open case is past its SLA." in html) == ([ref], True)
        assert "first response" in html
    await advance(clock, ticker(database, clock, service), timedelta(minutes=11))
    # Signed in again: the first session's idle time is over on this clock.
    async with login_as(app, role=Role.ENGINEER) as engineer:
        html = (await engineer.get("/noc")).text
    assert _rows(html, "sla-case") == [ref]
    assert "No deadline is near." in html and "No open case is past its SLA." not in html


async def test_probe_shards_and_dashboards_come_from_the_embedding_process(
    app: FastAPI,
) -> None:
    async with login_as(app, role=Role.ENGINEER) as engineer:
        plain = (await engineer.get("/noc")).text
        assert "not to this API process" in plain and "NMS_BOARD__GRAFANA_URL" in plain
        configure_board(
            app,
            settings=BoardSettings(grafana_url="https://grafana.example.net/"),
            probe_shards=lambda: [
                ProbeShard(shard="local", worker="nms run", up=True, last_seen=START, ntus=3)
            ],
        )
        html = (await engineer.get("/noc")).text
    assert 'href="https://grafana.example.net/d/nms-noc-overview"' in html
    assert 'href="https://grafana.example.net/d/nms-cases-sla"' in html
    shard = re.search(r'<tr data-test="shard"[^>]*>(.*?)</tr>', html, re.S)
    assert shard is not None
    assert "local" in shard.group(1) and "nms run" in shard.group(1) and ">3<" in shard.group(1)


def test_ages_read_at_a_glance() -> None:
    assert [
        format_age(timedelta(seconds=s)) for s in (-5, 45, 600, 3600 + 300, 2 * 86400 + 4 * 3600)
    ] == ["0s", "45s", "10m", "1h 05m", "2d 04h"]
