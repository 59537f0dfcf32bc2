"""The reports API over a scripted month: outages written by the incident path (own,
upstream, no data), a maintenance window, a customer in Europe/London (March has
743 hours there); JSON, CSV, PDF, tenancy, bad parameters, and the back-fill."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.engine import Connection

from caseapi.audit.enums import AuditAction
from caseapi.audit.models import AuditEvent
from caseapi.cases.enums import CommitmentKind, EscalationLevel
from caseapi.cases.models import Case, CaseCommitment
from caseapi.cases.service import CaseService
from caseapi.incidents import IncidentService, NtuStatusUpdate
from caseapi.maintenance.models import MaintenanceWindow
from caseapi.reports.models import OutageInterval
from caseapi.reports.render import AVAILABILITY_COLUMNS, SLA_COLUMNS
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import make_app, problem
from tests.caseapi.conftest import START, Database, incident, upstream
from tests.caseapi.lifecycle_fixtures import seed
from tests.caseapi.pdf_tools import pdf_text, render_pages, require_poppler

H = 3600.0
MARCH = 743 * H  # Europe/London: clocks go forward on 29 March 2026


@pytest.fixture
async def app(database: Database, service: CaseService, clock: FakeClock) -> FastAPI:
    """cust-1 (Acme, Europe/London: ntu-1 on svc-1, ntu-2), cust-2 (ntu-9)."""
    await seed(database, timezone="Europe/London")
    return make_app(database, service, clock)


async def script_month(
    database: Database, incidents: IncidentService, clock: FakeClock
) -> dict[str, str]:
    """March 2026 (START is 1 March 12:00 UTC), through the detector's calls:

    - ntu-1 (cust-1) down 11:50-12:50: its own P1, 1 h;
    - pop1 down 11:50-13:20 with ntu-2 (cust-1) and ntu-9 (cust-2) behind it: 1.5 h
      upstream each, one linked case per customer;
    - ntu-2 without data 14:00-15:00 (unknown): 1 h excluded;
    - maintenance on ntu-1 17:00-19:00: 2 h excluded.
    """
    own = await incidents.open_incident(incident("ntu-1", customer_id="cust-1"))
    await incidents.open_upstream_incident(upstream(("ntu-2", "cust-1"), ("ntu-9", "cust-2")))
    clock.advance(timedelta(minutes=50))
    await incidents.restore_incident(
        dedup_key="ntu:ntu-1:down", restored_at=START + timedelta(minutes=50)
    )
    clock.advance(timedelta(minutes=30))
    await incidents.restore_incident(
        dedup_key="node:pop1:down", restored_at=START + timedelta(minutes=80)
    )
    clock.advance(timedelta(hours=3))
    await incidents.report_ntu_status(
        [
            NtuStatusUpdate(
                ntu_id="ntu-2",
                status="unknown",
                since=START + timedelta(hours=4),
                last_observation_at=START + timedelta(hours=2),
            )
        ]
    )
    await incidents.report_ntu_status(
        [
            NtuStatusUpdate(
                ntu_id="ntu-2",
                status="up",
                since=START + timedelta(hours=3),
                last_observation_at=START + timedelta(hours=3),
            )
        ]
    )
    async with database.sessionmaker() as session:
        session.add(
            MaintenanceWindow(
                ref="MW-2026-000001",
                title="Fibre splice",
                description="",
                kind="emergency",
                behaviour="mute",
                starts_at=START + timedelta(hours=5),
                ends_at=START + timedelta(hours=7),
                scope_ntus=["ntu-1"],
                scope_nodes=[],
                scope_customers=[],
                scope_services=[],
                created_by="test",
                created_at=START,
                updated_by="test",
                updated_at=START,
                version=1,
            )
        )
        rows = list(await session.execute(select(OutageInterval.case_ref, OutageInterval.ntu_id)))
        await session.commit()
    refs = {ntu: ref for ref, ntu in rows if ref}
    assert refs["ntu-1"] == own
    clock.advance(timedelta(days=40))  # April: the month is over
    return refs


async def get(
    app: FastAPI,
    url: str,
    *,
    role: str = "engineer",
    customer: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    from caseapi.auth.principal import Role
    from tests.caseapi.auth_fixtures import client_for, mint_key

    key = await mint_key(app, role=Role(role), customer_id=customer)
    async with client_for(app, key) as c:
        return await c.get(url, headers=headers or {})


def row(body: dict[str, Any], scope: str, ident: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        r for r in body["rows"] if r["scope"] == scope and r["id"] == ident
    ]
    assert len(found) == 1, (scope, ident, body["rows"])
    return found[0]


async def test_month_figures_as_json(
    app: FastAPI, database: Database, incidents: IncidentService, clock: FakeClock
) -> None:
    refs = await script_month(database, incidents, clock)
    response = await get(app, "/v1/reports/availability?customer=cust-1&month=2026-03")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"] == {
        "start": "2026-03-01T00:00:00Z",
        "end": "2026-03-31T23:00:00Z",
        "timezone": "Europe/London",
        "label": "2026-03",
    }
    ntu1, ntu2 = row(body, "ntu", "ntu-1"), row(body, "ntu", "ntu-2")
    assert (ntu1["period_seconds"], ntu1["maintenance_seconds"]) == (MARCH, 2 * H)
    assert (ntu1["downtime_seconds"], ntu1["outages"], ntu1["p1"]) == (1 * H, 1, 1)
    assert ntu1["availability_percent"] == pytest.approx(100 * (1 - 1 / 741))
    assert (ntu2["no_data_seconds"], ntu2["downtime_seconds"]) == (1 * H, 1.5 * H)
    assert ntu2["availability_percent"] == pytest.approx(100 * (1 - 1.5 / 742))
    summary = body["summary"]
    assert summary["ntus"] == 2
    assert summary["downtime_seconds"] == 2.5 * H
    assert summary["measured_seconds"] == 2 * MARCH - 3 * H
    assert summary["availability_percent"] == pytest.approx(100 * (1 - 2.5 / 1483))
    assert summary["longest_outage_seconds"] == 1.5 * H
    assert summary["mttr_seconds"] == 1.25 * H
    assert (summary["p1"], summary["p2"]) == (2, 0)
    assert row(body, "customer", "cust-1")["downtime_seconds"] == 2.5 * H
    assert row(body, "service", "svc-1")["downtime_seconds"] == 1 * H
    outages = [
        (o["ntu_id"], o["cause"], o["seconds_in_period"], o["case_ref"], o["counted"])
        for o in body["outages"]
    ]
    assert outages == [
        ("ntu-1", "own", 1 * H, refs["ntu-1"], True),
        ("ntu-2", "upstream", 1.5 * H, refs["ntu-2"], True),
        ("ntu-2", "no_data", 1 * H, None, False),
    ]
    assert [m["ref"] for m in body["maintenance"]] == ["MW-2026-000001"]
    assert "ntu-9" not in response.text and refs["ntu-9"] not in response.text

    # The fleet, for staff: the other customer's upstream outage too (1.5 h more).
    fleet = (await get(app, "/v1/reports/availability?month=2026-03")).json()
    assert fleet["customer"] is None
    assert fleet["summary"]["downtime_seconds"] == 4 * H
    assert {r["id"] for r in fleet["rows"] if r["scope"] == "customer"} == {"cust-1", "cust-2"}


async def test_sla_and_csv(
    app: FastAPI, database: Database, incidents: IncidentService, clock: FakeClock
) -> None:
    refs = await script_month(database, incidents, clock)
    # On the own case: one commitment met, one missed, and it went to L2.
    async with database.sessionmaker() as session:
        case = (await session.execute(select(Case).where(Case.ref == refs["ntu-1"]))).scalar_one()
        case.escalation_level = EscalationLevel.L2
        for met in (True, False):
            session.add(
                CaseCommitment(
                    case_id=case.id,
                    kind=CommitmentKind.NEXT_UPDATE,
                    due_at=START + timedelta(minutes=30),
                    set_by="engineer:bob",
                    created_at=START,
                    met_at=START + timedelta(minutes=20) if met else None,
                    missed_at=None if met else START + timedelta(minutes=30),
                )
            )
        await session.commit()
    sla = (await get(app, "/v1/reports/sla?customer=cust-1&month=2026-03")).json()
    # Two P1s (own, upstream), restored well inside the 4 h repair target, never
    # answered: both missed their 30-minute first response.
    assert sla["cases"] == 2
    assert sla["first_response"] == {"met": 0, "missed": 2, "pending": 0}
    assert sla["time_to_repair"] == {"P1": {"met": 2, "missed": 0, "pending": 0}}
    assert (sla["commitments_met"], sla["commitments_missed"], sla["escalated"]) == (1, 1, 1)
    assert sorted((c["case_ref"], c["missed"]) for c in sla["missed_cases"]) == sorted(
        [
            (refs["ntu-1"], ["first_response", "commitment"]),
            (refs["ntu-2"], ["first_response"]),
        ]
    )
    # The other customer's upstream case is its own, not cust-1's.
    fleet = (await get(app, "/v1/reports/sla?month=2026-03")).json()
    assert fleet["cases"] == 4  # with pop1's internal incident and cust-2's case

    response = await get(
        app,
        "/v1/reports/availability?month=2026-03&customer=cust-1",
        headers={"Accept": "text/csv"},
    )
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert tuple(table[0].keys()) == AVAILABILITY_COLUMNS
    assert (table[0]["scope"], table[0]["id"]) == ("summary", "cust-1")
    assert float(table[0]["downtime_seconds"]) == 2.5 * H
    ntu1 = next(r for r in table if r["scope"] == "ntu" and r["id"] == "ntu-1")
    assert float(ntu1["availability_percent"]) == pytest.approx(100 * (1 - 1 / 741), abs=1e-6)
    response = await get(app, "/v1/reports/sla?month=2026-03&customer=cust-1&format=csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == SLA_COLUMNS
    assert {r[0] for r in rows[1:]} == {refs["ntu-1"], refs["ntu-2"]}
    assert all(r[5] == "missed" and r[6] == "met" for r in rows[1:])
    # Each file taken away is in the audit log (the JSON answers are not exports).
    async with database.sessionmaker() as session:
        exports = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.action == AuditAction.REPORT_EXPORT)
            )
        ).scalars()
        assert sorted((e.target_id, e.customer_id, e.details["format"]) for e in exports) == [
            ("availability", "cust-1", "csv"),
            ("sla", "cust-1", "csv"),
        ]


async def test_pdf_is_real(
    app: FastAPI,
    database: Database,
    incidents: IncidentService,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    require_poppler()
    refs = await script_month(database, incidents, clock)
    response = await get(
        app, "/v1/reports/availability?month=2026-03&format=pdf", role="customer", customer="cust-1"
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    text = pdf_text(response.content, tmp_path)
    assert "Service report 2026-03: Acme" in text
    # Local times with their offsets: London moves to BST (UTC+01:00) on 29 March.
    period = "Period 2026-03-01 00:00:00 UTC+00:00 to 2026-04-01 00:00:00 UTC+01:00 (Europe/London)"
    assert period in " ".join(text.split()), text
    assert f"{100 * (1 - 2.5 / 1483):.3f} %" in text  # the customer's availability
    assert f"{100 * (1 - 1 / 741):.3f} %" in text  # svc-1 in the chart and table
    assert refs["ntu-1"] in text and refs["ntu-2"] in text
    assert "1 h 00 min 00 s" in text and "1 h 30 min 00 s" in text
    assert refs["ntu-9"] not in text and "ntu-9" not in text
    assert len(render_pages(response.content, tmp_path)) >= 1


async def test_tenancy(
    app: FastAPI, database: Database, incidents: IncidentService, clock: FakeClock
) -> None:
    refs = await script_month(database, incidents, clock)
    own = await get(
        app, "/v1/reports/availability?month=2026-03", role="customer", customer="cust-2"
    )
    body = own.json()
    assert body["customer"]["id"] == "cust-2"
    assert body["customer"]["timezone"] is None and body["period"]["timezone"] == "UTC"
    assert [o["case_ref"] for o in body["outages"]] == [refs["ntu-9"]]
    for ref in (refs["ntu-1"], refs["ntu-2"]):
        assert ref not in own.text
    assert "ntu-1" not in own.text
    for url in ("/v1/reports/availability", "/v1/reports/sla"):
        response = await get(app, f"{url}?customer=cust-1", role="customer", customer="cust-2")
        problem(response, 403, "customer_mismatch")


BAD: Final = [
    ("month=2026-13", 422, "validation_error", "month"),
    ("month=nov", 422, "validation_error", "month"),
    ("start=2026-03-02T00:00:00Z&end=2026-03-01T00:00:00Z", 422, "validation_error", "end"),
    ("start=2026-03-01T00:00:00Z", 422, "validation_error", "end"),
    ("start=2026-03-01T00:00:00&end=2026-03-02T00:00:00Z", 422, "validation_error", "start"),
    ("start=2025-01-01T00:00:00Z&end=2026-03-01T00:00:00Z", 422, "validation_error", "end"),
    ("month=2026-03&start=2026-03-01T00:00:00Z", 422, "validation_error", "month"),
    ("format=xls", 422, "validation_error", "format"),
    ("customer=nobody", 404, "customer_not_found", None),
]


async def test_bad_parameters_are_problems(app: FastAPI) -> None:
    from caseapi.auth.principal import Role
    from tests.caseapi.auth_fixtures import client_for, mint_key

    async with client_for(app, await mint_key(app, role=Role.ENGINEER)) as staff:
        for url in ("/v1/reports/availability", "/v1/reports/sla"):
            for query, status, code, field in BAD:
                body = problem(await staff.get(f"{url}?{query}"), status, code)
                if field is not None:
                    assert field in [e["field"] for e in body["errors"]], (url, query, body)
            # The PDF is a customer's: staff must name one.
            body = problem(await staff.get(f"{url}?format=pdf"), 422, "validation_error")
            assert [e["field"] for e in body["errors"]] == ["customer"]


def _alembic(connection: Connection, action: str, revision: str) -> None:
    from alembic import command

    from caseapi.core.database import alembic_config

    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


async def test_backfill_rebuilds_what_the_incident_path_wrote(
    app: FastAPI, database: Database, incidents: IncidentService, clock: FakeClock
) -> None:
    await script_month(database, incidents, clock)
    still_open = await incidents.open_incident(
        incident("ntu-2", customer_id="cust-1", outage_start=clock.now() - timedelta(minutes=10))
    )

    def snapshot(conn: Connection) -> list[tuple[Any, ...]]:
        stmt = select(
            OutageInterval.ntu_id,
            OutageInterval.customer_id,
            OutageInterval.kind,
            OutageInterval.cause,
            OutageInterval.start_at,
            OutageInterval.end_at,
            OutageInterval.case_ref,
            OutageInterval.counted,
        ).where(OutageInterval.cause != "no_data")
        # The typed columns give aware UTC datetimes on both backends.
        return sorted((tuple(r) for r in conn.execute(stmt)), key=repr)

    async with database.engine.connect() as conn:
        live = await conn.run_sync(snapshot)
    assert any(r[6] == still_open and r[5] is None for r in live)
    async with database.engine.begin() as conn:
        await conn.run_sync(_alembic, "downgrade", "0012")
    async with database.engine.begin() as conn:
        await conn.run_sync(_alembic, "upgrade", "head")
    async with database.engine.connect() as conn:
        assert await conn.run_sync(snapshot) == live
        # No-data gaps are not in the cases: they cannot be back-filled.
        gaps = (
            await conn.execute(select(OutageInterval).where(OutageInterval.cause == "no_data"))
        ).all()
        assert gaps == []


def test_cli_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``nms report`` on a database file: CSV to stdout, PDF to a file, bad input exit 2."""
    import asyncio

    from caseapi.core.database import make_engine, make_sessionmaker, migrate
    from nms.app.cli import main

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"

    async def prepare() -> dict[str, str]:
        engine = make_engine(url)
        try:
            await migrate(engine)
            db = Database("sqlite", url, engine, make_sessionmaker(engine))
            clock = FakeClock(start=START)
            await seed(db, timezone="Europe/London")
            sink = IncidentService(sessionmaker=db.sessionmaker, clock=clock)
            return await script_month(db, sink, clock)
        finally:
            await engine.dispose()

    refs = asyncio.run(prepare())
    base = ["report", "--customer", "cust-1", "--month", "2026-03", "--database", url]
    assert main([*base, "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert (table[0]["scope"], float(table[0]["downtime_seconds"])) == ("summary", 2.5 * H)
    assert main([*base, "--format", "json", "--report", "sla"]) == 0
    assert '"cases": 2' in capsys.readouterr().out
    require_poppler()
    out = tmp_path / "acme.pdf"
    assert main([*base, "--format", "pdf", "--output", str(out)]) == 0
    text = pdf_text(out.read_bytes(), tmp_path)
    assert refs["ntu-1"] in text and f"{100 * (1 - 2.5 / 1483):.3f} %" in text
    capsys.readouterr()
    assert main(["report", "--customer", "cust-1", "--month", "2026-13", "--database", url]) == 2
    assert "--month: no such month: '2026-13'" in capsys.readouterr().err
    assert main(["report", "--customer", "nobody", "--database", url]) == 2
    assert "--customer: no customer with id 'nobody'" in capsys.readouterr().err
    assert main(["report", "--format", "pdf", "--month", "2026-03", "--database", url]) == 2
    assert "--customer" in capsys.readouterr().err


async def test_history_follows_the_case(
    app: FastAPI, database: Database, incidents: IncidentService, clock: FakeClock
) -> None:
    """Upgrade P2 -> P1, a duplicate open, recurrence, and a person solving first."""
    from dataclasses import replace

    from caseapi.auth.principal import Role
    from caseapi.incidents import ntu_degraded_key
    from tests.caseapi.auth_fixtures import client_for, mint_key

    m = timedelta(minutes=1)
    degraded = incident(
        "ntu-1", customer_id="cust-1", priority="P2", dedup_key=ntu_degraded_key("ntu-1")
    )
    ref = await incidents.open_incident(degraded)  # degraded since START - 10 min
    clock.advance(30 * m)
    down = replace(
        incident("ntu-1", customer_id="cust-1", outage_start=START + 10 * m),
        detected_at=START + 30 * m,
        supersedes=degraded.dedup_key,
    )
    assert await incidents.open_incident(down) == ref  # upgraded in place
    assert await incidents.open_incident(down) == ref  # a duplicate adds nothing
    await incidents.restore_incident(dedup_key="ntu:ntu-1:down", restored_at=START + 40 * m)
    clock.advance(60 * m)
    again = replace(down, outage_start=START + 80 * m, detected_at=START + 90 * m, supersedes=None)
    assert await incidents.open_incident(again) == ref  # recurrence inside the window
    # A person solves it before the detector sees the restoration; the detector's
    # restoration still ends the outage where the probes saw it end.
    key = await mint_key(app, role=Role.ENGINEER)
    solve = {"to": "solved", "resolution_method": "remote", "root_cause_category": "power"}
    async with client_for(app, key) as staff:
        assert (await staff.post(f"/v1/cases/{ref}/transitions", json=solve)).is_success
    await incidents.restore_incident(dedup_key="ntu:ntu-1:down", restored_at=START + 100 * m)
    async with database.sessionmaker() as session:
        rows = (
            await session.execute(
                select(
                    OutageInterval.kind,
                    OutageInterval.start_at,
                    OutageInterval.end_at,
                    OutageInterval.counted,
                    OutageInterval.case_ref,
                    OutageInterval.service_id,
                ).order_by(OutageInterval.start_at)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("degraded", START - 10 * m, START + 10 * m, False, ref, "svc-1"),
        ("down", START + 10 * m, START + 40 * m, True, ref, "svc-1"),
        ("down", START + 80 * m, START + 100 * m, True, ref, "svc-1"),
    ]
