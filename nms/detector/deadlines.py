"""When each tracked entry goes stale: an index, so a tick visits only the entries due.

An entry with observations goes stale ``stale_after`` after its last one
(``nms.detector.availability``, ``Tick``). Instead of stepping every entry of the
fleet once a second to find the few that are due, the engine files each entry under
the second its deadline falls in, moves it when an observation pushes the deadline
on, and a tick takes out the seconds that have passed. Which entries really went
stale is still decided by the pure machine (``step(state, Tick())``); this only
narrows down whom to ask. No I/O, no clock: ``now`` is passed in.
"""

from __future__ import annotations

import heapq
import math
from datetime import datetime, timedelta

from nms.detector.availability import NtuState, Status


class StaleDeadlines:
    """Entry ids by the whole second (UNIX time) their ``stale_after`` deadline falls in."""

    def __init__(self, stale_after: timedelta) -> None:
        self._stale_after = stale_after
        self._second: dict[str, int] = {}
        """Where each entry is filed (entries without a deadline are not)."""
        self._buckets: dict[int, set[str]] = {}
        self._heap: list[int] = []
        """The seconds of ``_buckets``, earliest first (a second stays listed after its
        bucket emptied, until it passes: taking it out then finds nothing)."""
        self._listed: set[int] = set()
        """The seconds in ``_heap``, each listed once."""

    def __len__(self) -> int:
        return len(self._second)

    def deadline(self, state: NtuState) -> datetime | None:
        """When ``state`` goes stale if nothing is observed; None: it cannot go stale."""
        if state.status == Status.UNKNOWN or state.last_observation_at is None:
            return None
        return state.last_observation_at + self._stale_after

    def file(self, ident: str, state: NtuState) -> None:
        """(Re)file ``ident`` under the deadline of its current ``state``."""
        at = self.deadline(state)
        second = None if at is None else math.floor(at.timestamp())
        old = self._second.get(ident)
        if old == second:
            return
        if old is not None:
            self._unfile(ident, old)
        if second is None:
            return
        self._second[ident] = second
        bucket = self._buckets.get(second)
        if bucket is None:
            self._buckets[second] = bucket = set()
            if second not in self._listed:
                self._listed.add(second)
                heapq.heappush(self._heap, second)
        bucket.add(ident)

    def forget(self, ident: str) -> None:
        """``ident`` left the fleet."""
        old = self._second.get(ident)
        if old is not None:
            self._unfile(ident, old)

    def take_due(self, now: datetime) -> list[str]:
        """Take out the entries whose deadline falls in a second up to ``now``'s.

        Those of ``now``'s own second may not be due yet: the caller steps each one
        and files it again (``file``) with the state it then has.
        """
        limit = math.floor(now.timestamp())
        due: list[str] = []
        while self._heap and self._heap[0] <= limit:
            second = heapq.heappop(self._heap)
            self._listed.discard(second)
            bucket = self._buckets.pop(second, None)
            if bucket is None:
                continue
            for ident in bucket:
                del self._second[ident]
            due.extend(bucket)
        return due

    def _unfile(self, ident: str, second: int) -> None:
        del self._second[ident]
        bucket = self._buckets[second]
        bucket.discard(ident)
        if not bucket:
            del self._buckets[second]
