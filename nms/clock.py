"""Time as an input: everything that needs "now", or needs to wait, takes a Clock.

``now()`` is timezone-aware UTC (for anything stored); ``monotonic()`` is for
measuring intervals; ``sleep()`` is how a loop waits for its next turn. Tests use
``FakeClock``: its time moves only when told to (``advance`` / ``run_for``), and a
loop asleep on it wakes exactly when the fake time reaches its deadline, so a rule
measured in hours is tested in milliseconds and never with real waiting.

The case service declares the same shape (``caseapi.clock.Clock``); these classes
satisfy both.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _seconds(delta: timedelta | float) -> float:
    return delta.total_seconds() if isinstance(delta, timedelta) else float(delta)


class FakeClock:
    """A clock that moves only when told to; sleepers wake when it passes their deadline."""

    def __init__(self, *, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("FakeClock start must be timezone-aware")
        self._now = start
        self._mono = 0.0
        # (deadline on the monotonic scale, order of arrival, the sleeper's future)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)  # still a turn for the others, like asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._order), future))
        await future

    @property
    def sleepers(self) -> int:
        """How many tasks are asleep on this clock right now."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    def next_deadline(self) -> float | None:
        """Seconds until the earliest sleeper wakes (None: nobody sleeps)."""
        self._drop_cancelled()
        return self._sleepers[0][0] - self._mono if self._sleepers else None

    def advance(self, delta: timedelta | float) -> None:
        """Move time forward and wake every sleeper whose deadline has come.

        The woken tasks run at the event loop's next turns; ``run_for`` also gives
        them those turns.
        """
        seconds = _seconds(delta)
        if seconds < 0:
            raise ValueError("a clock never goes backwards")
        self._now += timedelta(seconds=seconds)
        self._mono += seconds
        while self._sleepers and self._sleepers[0][0] <= self._mono:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def settle(self, turns: int = 20) -> None:
        """Let the event loop run the tasks that are ready (woken sleepers, I/O done)."""
        for _ in range(turns):
            await asyncio.sleep(0)

    async def run_for(self, delta: timedelta | float, *, turns: int = 20) -> None:
        """Let ``delta`` pass as a sequence of wake-ups: time jumps to each sleeper's
        deadline in order, and the woken tasks run before time moves on, as if the
        interval had really passed."""
        end = self._mono + _seconds(delta)
        if end < self._mono:
            raise ValueError("a clock never goes backwards")
        await self.settle(turns)
        while True:
            self._drop_cancelled()
            if not self._sleepers or self._sleepers[0][0] > end:
                break
            self.advance(max(self._sleepers[0][0] - self._mono, 0.0))
            await self.settle(turns)
        self.advance(end - self._mono)
        await self.settle(turns)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
