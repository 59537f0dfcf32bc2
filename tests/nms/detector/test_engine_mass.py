"""A mass outage through the detector and the real case service, on both backends.

``test_engine_batch`` holds the detector's batching rules against an in-memory sink;
these hold them against ``IncidentService`` and its database: one transaction opens
every P1 of the batch with its timeline entry, customer notification and outage
interval, and a batch whose answer is lost (committed, but the detector never heard)
is retried without a second case, entry or notification. The same for the end of the
outage: one transaction solves every case (``restore_incidents``), and a lost answer,
or a restart before the retry, solves none twice. Fake clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from caseapi.cases.models import Case, CaseEvent
from caseapi.incidents import IncidentOpen, IncidentRestore, IncidentService
from caseapi.notifications.models import Notification
from caseapi.reports.models import OutageInterval
from nms.detector.availability import Status
from tests.caseapi.conftest import Database
from tests.nms.detector.helpers import Flaky, store_inventory
from tests.nms.detector.test_engine_batch import World, _confirm, inventory

FLEET = 200


class LosesAnswers(Flaky):
    """The real service; the next ``lose`` batches commit, then their answer is lost
    (``lose_restores``: the next batches of restorations)."""

    lose = 0
    lose_restores = 0

    async def open_incidents(self, requests: Sequence[IncidentOpen]) -> list[str]:
        refs = await super().open_incidents(requests)
        if self.lose:
            self.lose -= 1
            raise TimeoutError("answer lost")
        return refs

    async def restore_incidents(self, requests: Sequence[IncidentRestore]) -> list[str | None]:
        refs = await super().restore_incidents(requests)
        if self.lose_restores:
            self.lose_restores -= 1
            raise TimeoutError("answer lost")
        return refs


async def _mass_world(database: Database) -> tuple[World, LosesAnswers]:
    """FLEET NTUs stored and loaded, the detector over the real service behind a
    ``LosesAnswers``."""
    fleet = inventory(FLEET)
    await store_inventory(database.sessionmaker, fleet)
    world = World(database, None)
    world.sink = sink = LosesAnswers(
        IncidentService(sessionmaker=database.sessionmaker, clock=world.clock)
    )
    world.detector = world.new_detector()
    await world.detector.load(fleet)
    return world, sink


async def _rows(database: Database) -> dict[str, int]:
    counted: dict[str, Any] = {
        "cases": select(func.count()).select_from(Case),
        "p1": select(func.count()).select_from(Case).where(Case.priority == "P1"),
        "opened": select(func.count()).select_from(CaseEvent).where(CaseEvent.kind == "opened"),
        "notified": select(func.count(func.distinct(Notification.case_id))).where(
            Notification.kind == "case_opened"
        ),
        "notifications": select(func.count()).select_from(Notification),
        "intervals": select(func.count()).select_from(OutageInterval),
        "solved": select(func.count()).select_from(Case).where(Case.status == "solved"),
        "restored": select(func.count()).select_from(CaseEvent).where(CaseEvent.kind == "restored"),
        "solved_notified": select(func.count(func.distinct(Notification.case_id))).where(
            Notification.kind == "case_solved"
        ),
        "ended": select(func.count()).where(OutageInterval.end_at.is_not(None)),
    }
    async with database.sessionmaker() as session:
        return {k: int((await session.execute(q)).scalar_one()) for k, q in counted.items()}


async def test_one_transaction_opens_every_p1_and_a_lost_answer_duplicates_nothing(
    database: Database,
) -> None:
    world, sink = await _mass_world(database)
    await _confirm(world)  # up once, then down until the next batch confirms them all
    sink.lose = 1
    await world.cycle(down=True, tick=False)  # confirmed: one batch, committed, answer lost
    assert sink.batches == [FLEET]
    ntus = world.detector.ntus.values()
    assert all(t.state.status == Status.DOWN and t.pending_open for t in ntus)
    expected = {
        "cases": FLEET,
        "p1": FLEET,
        "opened": FLEET,
        "notified": FLEET,
        "notifications": FLEET,
        "intervals": FLEET,
        "solved": 0,
        "restored": 0,
        "solved_notified": 0,
        "ended": 0,
    }
    assert await _rows(database) == expected
    await world.detector.tick()  # the retry finds every case: one call, nothing new
    assert sink.batches == [FLEET, FLEET]
    assert all(t.case_ref is not None and t.pending_open is None for t in ntus)
    assert len({t.case_ref for t in ntus}) == FLEET
    assert await _rows(database) == expected
    assert world.detector.stats.cases_opened == FLEET
    world.clock.advance(timedelta(minutes=5))
    await world.cycle(down=True)  # still down: nothing more
    assert sink.batches == [FLEET, FLEET]
    assert await _rows(database) == expected


async def test_one_transaction_solves_every_case_and_a_lost_answer_solves_none_twice(
    database: Database,
) -> None:
    world, sink = await _mass_world(database)
    await _confirm(world)
    await world.cycle(down=True)
    ntus = world.detector.ntus.values()
    refs = {t.case_ref for t in ntus}
    assert len(refs) == FLEET and None not in refs
    sink.lose_restores = 1
    while not sink.restores:
        await world.cycle(down=False, tick=False)
    assert sink.restores == [FLEET]  # the batch that saw them up: one call
    assert all(t.state.status == Status.UP and t.pending_restore for t in ntus)
    solved = {"solved": FLEET, "restored": FLEET, "solved_notified": FLEET, "ended": FLEET}
    rows = await _rows(database)
    assert {k: rows[k] for k in solved} == solved
    await world.detector.tick()  # the retry finds them solved: one call, nothing new
    assert sink.restores == [FLEET, FLEET]
    assert all(t.case_ref is None and t.pending_restore is None for t in ntus)
    assert await _rows(database) == rows
    assert world.detector.stats.cases_restored == FLEET
    await world.cycle(down=False)  # still up: nothing more
    assert sink.restores == [FLEET, FLEET]
    assert await _rows(database) == rows


async def test_a_restart_after_a_lost_answer_solves_no_case_twice(database: Database) -> None:
    """The pending restorations live in memory: after a restart the saved cases count
    as open (``load_states``) and are restored again once the NTUs are up, in one
    call that finds them solved."""
    world, sink = await _mass_world(database)
    await _confirm(world)
    await world.cycle(down=True)
    sink.lose_restores = 1
    while not sink.restores:
        await world.cycle(down=False, tick=False)
    rows = await _rows(database)
    assert rows["solved"] == rows["restored"] == rows["ended"] == FLEET
    world.detector = world.new_detector()  # the process dies before any retry
    await world.detector.load(inventory(FLEET))
    ntus = world.detector.ntus.values()
    assert all(t.case_ref is not None and t.state.case_open for t in ntus)
    for _ in range(5):  # restore_after good probes again
        await world.cycle(down=False)
    assert sink.restores == [FLEET, FLEET]
    assert all(t.case_ref is None and t.pending_restore is None for t in ntus)
    assert await _rows(database) == rows
