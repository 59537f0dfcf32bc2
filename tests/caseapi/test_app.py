"""The public composition: services built once from the settings, the app, the loops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from caseapi.app import CaseWorkers, build_services, create_app
from caseapi.auth.principal import Principal, Role
from caseapi.coverage import maintenance_coverage
from caseapi.customers.models import Customer
from caseapi.maintenance.enums import MaintenanceBehaviour, MaintenanceKind
from caseapi.maintenance.service import MaintenanceDraft
from caseapi.notifications.models import Notification
from caseapi.ntus.models import Ntu
from caseapi.settings import (
    CaseSettings,
    MaintenanceSettings,
    MonitoringWindowSettings,
    NotificationSettings,
)
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database, incident

ENGINEER = Principal(key_id=None, name="eve", role=Role.ENGINEER)


async def _eventually(check: Callable[[], Awaitable[bool]], *, seconds: float = 10.0) -> None:
    """Wait (in real time) until the loops, woken by the fake clock, have done their work."""
    for _ in range(int(seconds / 0.01)):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not done after {seconds} s")


async def _asleep(clock: FakeClock, loops: int) -> bool:
    return clock.sleepers == loops


async def _inventory(database: Database) -> None:
    async with database.sessionmaker() as session:
        session.add(Customer(id="cust-1", name="Acme"))
        await session.flush()
        session.add(Ntu(id="ntu-1", customer_id="cust-1", address="10.0.0.1"))
        await session.commit()


async def test_services_share_the_settings(database: Database, clock: FakeClock) -> None:
    cases = CaseSettings(monitoring_window=MonitoringWindowSettings(p1=timedelta(hours=2)))
    maintenance = MaintenanceSettings(planned_notice=timedelta(days=3))
    services = build_services(
        sessionmaker=database.sessionmaker, clock=clock, cases=cases, maintenance=maintenance
    )
    assert services.cases.sla == services.incidents.sla == cases.sla()
    assert services.cases.sla.monitoring_window_p1 == timedelta(hours=2)
    assert services.maintenance.rules.planned_notice == timedelta(days=3)
    app = create_app(
        sessionmaker=database.sessionmaker,
        clock=clock,
        case_service=services.cases,
        maintenance_service=services.maintenance,
    )
    assert app.state.case_service is services.cases
    assert app.state.maintenance_service is services.maintenance

    ref = await services.incidents.open_incident(incident("ntu-1"))
    await services.incidents.restore_incident(dedup_key="ntu:ntu-1:down", restored_at=START)
    solved = await services.cases.get_case(ref)
    assert solved.monitoring_until == START + timedelta(hours=2)


async def test_workers_run_every_loop_on_the_clock(database: Database, clock: FakeClock) -> None:
    await _inventory(database)
    services = build_services(sessionmaker=database.sessionmaker, clock=clock)
    ref = await services.incidents.open_incident(incident("ntu-1", customer_id="cust-1"))
    window = await services.maintenance.create(
        principal=ENGINEER,
        draft=MaintenanceDraft(
            title="Fibre splice",
            description="a few minutes",
            kind=MaintenanceKind.EMERGENCY,
            behaviour=MaintenanceBehaviour.MUTE,
            starts_at=START + timedelta(minutes=10),
            ends_at=START + timedelta(hours=1),
            scope={"ntus": ["ntu-1"]},
        ),
    )
    workers = CaseWorkers(sessionmaker=database.sessionmaker, clock=clock)
    assert workers.dispatcher is not None
    task = asyncio.create_task(workers.run())

    async def breached() -> bool:
        return (await services.cases.get_case(ref)).first_response_breached_at is not None

    async def started_notice() -> bool:
        async with database.sessionmaker() as session:
            kinds = (await session.scalars(select(Notification.kind))).all()
        return "maintenance_started" in kinds

    try:
        await _eventually(lambda: _asleep(clock, 3))  # ticker, dispatcher, notices
        assert not await breached()
        clock.advance(timedelta(minutes=31))  # every loop wakes and sees the new time
        await _eventually(breached)
        await _eventually(started_notice)
        coverage = await maintenance_coverage(database.sessionmaker, at=clock.now())
        assert coverage["ntu-1"].refs == (window.window.ref,)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()


async def test_notifications_can_be_switched_off(database: Database, clock: FakeClock) -> None:
    workers = CaseWorkers(
        sessionmaker=database.sessionmaker,
        clock=clock,
        notifications=NotificationSettings(enabled=False),
    )
    assert workers.dispatcher is None
    task = asyncio.create_task(workers.run())
    try:
        await _eventually(lambda: _asleep(clock, 2))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
