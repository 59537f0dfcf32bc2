"""The stale-deadline index: a tick visits the entries due, and only those."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nms.detector import availability
from nms.detector import engine as engine_module
from nms.detector.availability import NtuState, Status
from nms.detector.deadlines import StaleDeadlines
from tests.caseapi.conftest import Database
from tests.nms.detector.helpers import pings
from tests.nms.detector.test_engine_batch import INTERVAL, FakeSink, World, inventory, ping

T0 = datetime(2026, 1, 1, 12, 0, 0, 250_000, tzinfo=UTC)
STALE = timedelta(minutes=2)


def up(seen: datetime) -> NtuState:
    return NtuState(status=Status.UP, since=T0, last_observation_at=seen)


def test_entries_come_out_in_the_second_of_their_deadline_and_not_before():
    index = StaleDeadlines(STALE)
    index.file("a", up(T0))
    index.file("b", up(T0 + timedelta(seconds=10)))
    index.file("never", NtuState.initial(T0))  # unknown: cannot go stale
    assert len(index) == 2
    assert index.take_due(T0 + STALE - timedelta(seconds=1)) == []
    # The second of a's deadline, even before the instant: the caller decides.
    assert index.take_due(T0 + STALE - timedelta(milliseconds=100)) == ["a"]
    assert len(index) == 1
    assert index.take_due(T0 + STALE + timedelta(seconds=10)) == ["b"]
    assert index.take_due(T0 + timedelta(hours=1)) == []


def test_an_observation_moves_the_entry_and_forget_drops_it():
    index = StaleDeadlines(STALE)
    index.file("a", up(T0))
    index.file("a", up(T0 + timedelta(seconds=30)))  # observed again
    index.file("b", up(T0))
    index.forget("b")
    assert index.take_due(T0 + STALE + timedelta(seconds=1)) == []
    assert index.take_due(T0 + STALE + timedelta(seconds=30)) == ["a"]
    index.file("a", NtuState(status=Status.UNKNOWN, since=T0, last_observation_at=T0))
    assert len(index) == 0


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_tick_steps_only_the_entries_due_and_marks_them_stale_on_time(
    database: Database, monkeypatch: pytest.MonkeyPatch
):
    stepped: list[str] = []
    real_step = availability.step

    def counting(state, event, now, rules):
        stepped.append(type(event).__name__)
        return real_step(state, event, now, rules)

    monkeypatch.setattr(engine_module, "step", counting)
    world = World(database, FakeSink())
    await world.detector.load(inventory(200))
    ntus = sorted(world.detector.ntus)
    await world.detector.observe(pings(ping(world.clock, n, True) for n in ntus))
    world.clock.advance(INTERVAL)
    # Half the fleet keeps answering; the other half goes silent.
    await world.detector.observe(pings(ping(world.clock, n, True) for n in ntus[:100]))
    stepped.clear()
    for _ in range(89):  # up to 1 s before the silent half's stale_after (2 minutes)
        world.clock.advance(timedelta(seconds=1))
        await world.detector.tick()
    assert stepped == []
    assert {t.state.status for t in world.detector.ntus.values()} == {Status.UP}
    world.clock.advance(timedelta(seconds=1))  # exactly stale_after after their last probe
    await world.detector.tick()
    assert stepped == ["Tick"] * 100
    status = {n: world.detector.ntus[n].state.status for n in ntus}
    assert {status[n] for n in ntus[100:]} == {Status.UNKNOWN}
    assert {status[n] for n in ntus[:100]} == {Status.UP}
