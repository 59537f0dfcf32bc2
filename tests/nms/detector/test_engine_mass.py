"""A mass outage through the detector and the real case service, on both backends.

``test_engine_batch`` holds the detector's batching rules against an in-memory sink;
these hold them against ``IncidentService`` and its database: one transaction opens
every P1 of the batch with its timeline entry, customer notification and outage
interval, and a batch whose answer is lost (committed, but the detector never heard)
is retried without a second case, entry or notification. Fake clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from caseapi.cases.models import Case, CaseEvent
from caseapi.incidents import IncidentOpen, IncidentService
from caseapi.notifications.models import Notification
from caseapi.reports.models import OutageInterval
from nms.detector.availability import Status
from tests.caseapi.conftest import Database
from tests.nms.detector.helpers import Flaky, store_inventory
from tests.nms.detector.test_engine_batch import World, _confirm, inventory

FLEET = 200


class LosesAnswers(Flaky):
    """The real service; the next ``lose`` batches commit, then their answer is lost."""

    lose = 0

    async def open_incidents(self, requests: Sequence[IncidentOpen]) -> list[str]:
        refs = await super().open_incidents(requests)
        if self.lose:
            self.lose -= 1
            raise TimeoutError("answer lost")
        return refs


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
    }
    async with database.sessionmaker() as session:
        return {k: int((await session.execute(q)).scalar_one()) for k, q in counted.items()}


async def test_one_transaction_opens_every_p1_and_a_lost_answer_duplicates_nothing(
    database: Database,
) -> None:
    fleet = inventory(FLEET)
    await store_inventory(database.sessionmaker, fleet)
    world = World(database, None)
    world.sink = sink = LosesAnswers(
        IncidentService(sessionmaker=database.sessionmaker, clock=world.clock)
    )
    world.detector = world.new_detector()
    await world.detector.load(fleet)
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
