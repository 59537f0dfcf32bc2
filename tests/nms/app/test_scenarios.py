"""Detection timing rules through the embedded wiring's detector side, on a fake clock.

These were lab scenarios (``nms run`` over network namespaces, with ``down_after``
compressed to seconds); the rules they check are about time, not packets, so they run
here at the production settings - 10 minutes down, 30 s interval, 2 minutes stale - in
milliseconds each. ``test_run_lab.py`` keeps the end-to-end runs where the network or
the process is the point (a real outage and restoration, kill -9, reload, a whole
site going dark).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from caseapi.auth.principal import Principal, Role
from caseapi.maintenance.enums import MaintenanceBehaviour, MaintenanceKind
from caseapi.maintenance.service import MaintenanceDraft
from caseapi.reports.service import ReportQuery, ReportService, Row
from nms.detector.availability import Status
from tests.nms.app.scenario import INTERVAL, Scenario, inventory_of


async def ntu_rows(run: Scenario, since: datetime) -> dict[str, Row]:
    """The availability report of acme from ``since`` to an hour from now, by NTU."""
    service = ReportService(sessionmaker=run.sessionmaker, clock=run.clock)
    query = ReportQuery(customer="acme", start=since, end=run.clock.now() + timedelta(hours=1))
    report = await service.availability(principal=None, query=query)
    return {row.id: row for row in report.rows if row.scope == "ntu"}


DOWN_AFTER = timedelta(minutes=10)  # the production default, not compressed
CYCLES_TO_DOWN = int(DOWN_AFTER / INTERVAL)  # 20 bursts of 30 s


async def test_an_outage_opens_one_p1_at_down_after_and_restoration_solves_it(
    tmp_path: Path,
) -> None:
    async with Scenario(tmp_path, inventory=inventory_of(2)) as run:
        await run.cycles(2)
        await run.cycle({"ntu-0": False})
        first_failure = run.clock.now()
        assert run.status("ntu-0") is Status.SUSPECT
        await run.cycles(CYCLES_TO_DOWN - 1, {"ntu-0": False})
        assert await run.open_cases() == []  # 9.5 minutes: not yet
        await run.cycle({"ntu-0": False})
        (case,) = await run.open_cases()
        assert case.ntu_id == "ntu-0" and case.priority == "P1"
        assert case.outage_start == first_failure
        assert case.detected_at - case.outage_start == DOWN_AFTER
        await run.cycles(5, {"ntu-0": False})
        assert len(await run.open_cases()) == 1  # one case per outage, however long
        await run.cycle()
        first_good = run.clock.now()
        await run.cycle()  # restore_after 2 good cycles
        (case,) = await run.open_cases()
        assert case.status == "solved"
        assert case.restored_at == first_good  # the impact ended at the first good probe
        assert run.status("ntu-0") is Status.UP and run.status("ntu-1") is Status.UP


async def test_a_blip_shorter_than_down_after_opens_nothing(tmp_path: Path) -> None:
    async with Scenario(tmp_path, inventory=inventory_of(1)) as run:
        await run.cycle()
        await run.cycles(CYCLES_TO_DOWN - 1, {"ntu-0": False})  # 9.5 minutes of failure
        assert run.status("ntu-0") is Status.SUSPECT
        await run.cycle()  # one success resets the clock
        assert run.status("ntu-0") is Status.UP
        await run.cycles(CYCLES_TO_DOWN - 1, {"ntu-0": False})  # counted from zero again
        await run.cycles(CYCLES_TO_DOWN + 2)
        assert await run.open_cases() == []


async def test_stopped_probes_make_ntus_unknown_and_open_nothing(tmp_path: Path) -> None:
    async with Scenario(tmp_path, inventory=inventory_of(2)) as run:
        await run.cycle()
        await run.cycles(4, {"ntu-1": False})  # failing when the probes stop
        last = run.clock.now()
        assert run.status("ntu-1") is Status.SUSPECT
        await run.silence(timedelta(minutes=2, seconds=30))  # stale_after 2m
        assert run.status("ntu-0") is Status.UNKNOWN
        assert run.status("ntu-1") is Status.UNKNOWN
        await run.silence(DOWN_AFTER)  # missing data is never an outage
        assert await run.open_cases() == []
        assert run.service.detector.counts()[Status.UNKNOWN] == 2
        # The probes come back. The reports count the gap - from the last observation
        # to the next, 12.5 minutes of silence and one interval - as no data, neither
        # up nor down, for both NTUs.
        since = last - timedelta(hours=1)
        await run.cycle()
        rows = await ntu_rows(run, since)
        gap = (run.clock.now() - last).total_seconds()
        assert gap == 13 * 60
        for ntu_id in ("ntu-0", "ntu-1"):
            figures = rows[ntu_id].figures
            assert (figures.no_data, figures.downtime, figures.outages) == (gap, 0.0, 0)
            assert figures.availability == 100.0


async def test_maintenance_mutes_and_the_case_counts_from_the_window_end(
    tmp_path: Path,
) -> None:
    async with Scenario(tmp_path, inventory=inventory_of(2)) as run:
        await run.cycle()
        start = run.clock.now()
        end = start + timedelta(minutes=30)
        await run.cases.maintenance.create(
            principal=Principal(key_id=None, name="noc", role=Role.NOC),
            draft=MaintenanceDraft(
                title="Fibre repair",
                description="",
                kind=MaintenanceKind.EMERGENCY,
                behaviour=MaintenanceBehaviour.MUTE,
                starts_at=start,
                ends_at=end,
                scope={"ntus": ["ntu-0"]},
            ),
        )
        await run.service.maintenance.refresh()
        # Both fail; only the uncovered one opens its P1 at down_after.
        await run.cycles(CYCLES_TO_DOWN + 1, {"ntu-0": False, "ntu-1": False})
        assert [c.ntu_id for c in await run.open_cases()] == ["ntu-1"]
        while run.clock.now() < end:  # still failing, still covered: nothing
            await run.cycle({"ntu-0": False, "ntu-1": False})
        assert [c.ntu_id for c in await run.open_cases()] == ["ntu-1"]
        await run.service.maintenance.refresh()
        await run.cycles(CYCLES_TO_DOWN + 2, {"ntu-0": False, "ntu-1": False})
        covered = [c for c in await run.open_cases() if c.ntu_id == "ntu-0"]
        assert len(covered) == 1
        # The clock restarted at each muted failure: it counts from the last one before
        # the window's end, not from the failure 30 minutes earlier.
        assert end - INTERVAL <= covered[0].outage_start <= end
        assert covered[0].detected_at - covered[0].outage_start >= DOWN_AFTER
        # In the reports the window is excluded: the covered NTU's downtime runs from
        # the window's end (its case's outage start, the last muted probe, is inside
        # the window); the other's from its first failure.
        rows = await ntu_rows(run, start - timedelta(hours=1))
        now = run.clock.now()
        muted, plain = rows["ntu-0"].figures, rows["ntu-1"].figures
        assert muted.maintenance == 30 * 60
        assert covered[0].outage_start < end
        assert muted.downtime == (now - end).total_seconds()
        assert plain.maintenance == 0
        assert plain.downtime == (now - start - INTERVAL).total_seconds()


async def test_a_restart_mid_outage_opens_the_case_on_time_once(tmp_path: Path) -> None:
    inventory = inventory_of(1)
    async with Scenario(tmp_path, inventory=inventory) as run:
        await run.cycle()
        await run.cycle({"ntu-0": False})
        first_failure = run.clock.now()
        await run.cycles(int(CYCLES_TO_DOWN * 0.6), {"ntu-0": False})  # minute 6
        clock = run.clock
    # A new process on the same database (state written as it changed).
    async with Scenario(tmp_path, inventory=inventory, clock=clock) as run:
        assert run.status("ntu-0") is Status.SUSPECT
        while not await run.open_cases():
            await run.cycle({"ntu-0": False})
        (case,) = await run.open_cases()
        assert case.outage_start == first_failure  # minute 10, not 16
        assert case.detected_at - first_failure < DOWN_AFTER + INTERVAL
    async with Scenario(tmp_path, inventory=inventory, clock=clock) as run:
        await run.cycles(3, {"ntu-0": False})
        assert [c.ref for c in await run.open_cases()] == [case.ref]  # no second case
        assert run.status("ntu-0") is Status.DOWN
