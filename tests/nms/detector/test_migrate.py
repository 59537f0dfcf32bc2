"""The detector's own schema: its Alembic history beside the case service's, and the
carry-over of the legacy ``ntu_states`` (an upgraded installation resumes every outage)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from caseapi.core.database import alembic_config as caseapi_alembic_config
from caseapi.incidents import IncidentService
from caseapi.ntus.models import NtuState as LegacyNtuState
from nms.app.settings import DegradedSettings
from nms.clock import FakeClock
from nms.detector.availability import NtuState, Rules, Status
from nms.detector.engine import Detector
from nms.detector.fusion import SnmpView
from nms.detector.migrate import alembic_config, migrate_detector_state
from nms.detector.models import DetectorBase
from nms.detector.store import StoredState, load_states
from nms.inventory.loader import parse_inventory
from tests.caseapi.conftest import Database
from tests.nms.detector.conftest import drop_detector_schema

T0 = FakeClock().now()


def _ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return type_ != "table" or name in DetectorBase.metadata.tables


def _diffs(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "compare_server_default": True, "include_object": _ours},
    )
    return list(compare_metadata(context, DetectorBase.metadata))


async def _version(database: Database, table: str) -> str | None:
    async with database.engine.connect() as conn:
        return (await conn.execute(text(f"SELECT version_num FROM {table}"))).scalar()


async def test_migrated_schema_matches_models(database: Database):
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_diffs) == []


async def test_own_version_table_beside_the_case_services(database: Database):
    await migrate_detector_state(database.engine)  # twice: a no-op
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert await _version(database, "nms_detector_alembic_version") == head
    caseapi_head = ScriptDirectory.from_config(caseapi_alembic_config()).get_current_head()
    assert await _version(database, "alembic_version") == caseapi_head


async def test_concurrent_starters_migrate_once(database: Database):
    await drop_detector_schema(database.engine)
    await asyncio.gather(*(migrate_detector_state(database.engine) for _ in range(4)))
    async with database.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert await conn.run_sync(_diffs) == []
    assert "detector_ntu_states" in tables


LEGACY = [
    # Suspect for 7 minutes, with a maintenance-shifted clock: must open at minute 10.
    {
        "ntu_id": "n1",
        "status": "suspect",
        "since": T0 - timedelta(minutes=7),
        "outage_start": T0 - timedelta(minutes=7),
        "confirm_from": T0 - timedelta(minutes=7),
        "good_streak": 0,
        "last_observation_at": T0 - timedelta(seconds=30),
        "last_success_at": T0 - timedelta(minutes=7, seconds=30),
        "rtt_avg": 0.004,
        "loss": 0.0,
        "icmp_filtered": True,
        "wan_if_index": 3,
        "wan_oper_status": 1,
        "wan_admin_status": 1,
        "in_bps": 1000.0,
        "sys_uptime": 123_456,
        "last_reboot_at": T0 - timedelta(days=1),
        "reboots": 2,
    },
    # Confirmed while the case service was down: its case is still to be opened.
    {
        "ntu_id": "n2",
        "status": "down",
        "since": T0 - timedelta(minutes=1),
        "outage_start": T0 - timedelta(minutes=11),
        "confirm_from": T0 - timedelta(minutes=11),
        "good_streak": 0,
        "last_observation_at": T0 - timedelta(seconds=30),
        "case_pending": True,
        "degraded_case_ref": "PRO-2026-000007",
        "degraded_reasons": "loss",
    },
]


async def test_the_legacy_ntu_states_are_carried_over(database: Database):
    await drop_detector_schema(database.engine)
    async with database.sessionmaker() as session, session.begin():
        session.add_all(LegacyNtuState(**row) for row in LEGACY)
    await migrate_detector_state(database.engine)
    saved = await load_states(database.sessionmaker)
    assert saved["n1"] == StoredState(
        state=NtuState(
            status=Status.SUSPECT,
            since=T0 - timedelta(minutes=7),
            outage_start=T0 - timedelta(minutes=7),
            confirm_from=T0 - timedelta(minutes=7),
            last_observation_at=T0 - timedelta(seconds=30),
            last_success_at=T0 - timedelta(minutes=7, seconds=30),
        ),
        case_ref=None,
        snmp=SnmpView(
            icmp_filtered=True,
            wan_if_index=3,
            wan_oper_status=1,
            wan_admin_status=1,
            in_bps=1000.0,
            sys_uptime=123_456,
            last_reboot_at=T0 - timedelta(days=1),
            reboots=2,
        ),
    )
    assert saved["n2"].state.case_open
    assert saved["n2"].case_pending
    assert saved["n2"].degraded_case_ref == "PRO-2026-000007"
    assert saved["n2"].degraded_reasons == "loss"


async def test_an_upgraded_installation_resumes_its_outages(database: Database):
    await drop_detector_schema(database.engine)
    async with database.sessionmaker() as session, session.begin():
        session.add_all(LegacyNtuState(**row) for row in LEGACY[:1])
    await migrate_detector_state(database.engine)
    clock = FakeClock()
    detector = Detector(
        rules=Rules(
            down_after=timedelta(minutes=10), restore_after=2, stale_after=timedelta(minutes=2)
        ),
        degraded=DegradedSettings(),
        clock=clock,
        sink=IncidentService(sessionmaker=database.sessionmaker, clock=clock),
        sessionmaker=database.sessionmaker,
    )
    inv = parse_inventory(
        "customers: [{id: c, name: C}]\nntus: [{id: n1, customer: c, address: 192.0.2.1}]\n",
        source="inv.yaml",
        fmt="yaml",
    )
    await detector.load(inv)
    n1 = detector.ntus["n1"]
    assert n1.state.status == Status.SUSPECT
    assert n1.state.outage_start == T0 - timedelta(minutes=7)
    assert n1.snmp.icmp_filtered
    assert n1.snmp.reboots == 2
