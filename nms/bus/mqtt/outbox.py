"""The outgoing buffer: messages queued for the broker until it acknowledged them.

Sending never waits for the broker: ``put`` returns at once. An entry leaves the
outbox only when ``sent`` says the broker acknowledged it; at a disconnect ``requeue``
puts what was in flight back in front, in order, so a connection lost mid-flight
re-sends it (a duplicate, dropped by the receiver, never a gap). The outbox holds at
most ``capacity`` entries; when full the OLDEST queued one is dropped and counted:
for monitoring, newer data is worth more than older.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from nms.bus.mqtt.stats import BusStats

log = logging.getLogger("nms.bus")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One encoded message and where it goes."""

    seq: int  # also the order of the queue
    kind: str
    topic: str
    data: bytes
    qos: int
    retain: bool


class Outbox:
    """Queued and in-flight messages; keeps ``stats.buffered`` and ``stats.dropped``.

    Args:
        capacity: queued plus in-flight entries at most.
        stats: the bus's counters (``connected`` is read for the drop warning).
    """

    def __init__(self, *, capacity: int, stats: BusStats) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._stats = stats
        self._queue: deque[Outgoing] = deque()
        self._inflight: dict[int, Outgoing] = {}  # by seq: insertion order is queue order
        self._wakeup = asyncio.Event()  # something was queued
        self._drained = asyncio.Event()  # nothing queued or in flight
        self._drained.set()
        self._dropping = 0  # dropped in the current burst

    def put(self, entry: Outgoing) -> None:
        """Queue ``entry`` last; drops the oldest queued entry if the outbox is full."""
        if self._queue and len(self._queue) + len(self._inflight) >= self._capacity:
            self._drop(self._queue.popleft())
        self._queue.append(entry)
        self._wakeup.set()
        self._drained.clear()
        self._count()

    async def take(self) -> Outgoing:
        """The next entry to send, once there is one; it is in flight until ``sent``."""
        while not self._queue:
            self._wakeup.clear()
            await self._wakeup.wait()
        entry = self._queue.popleft()
        self._inflight[entry.seq] = entry
        return entry

    def sent(self, entry: Outgoing) -> None:
        """The broker acknowledged ``entry``: it leaves the outbox."""
        self._inflight.pop(entry.seq, None)
        self._stats.published[entry.kind] += 1
        if self._dropping:
            log.info("bus: sending again; %d messages were dropped", self._dropping)
            self._dropping = 0
        self._count()

    def requeue(self) -> None:
        """The connection ended: what was in flight goes back to the front, in order."""
        self._queue.extendleft(reversed(self._inflight.values()))
        self._inflight.clear()
        while len(self._queue) > self._capacity:
            self._drop(self._queue.popleft())
        self._count()

    async def drained(self) -> None:
        """Return once nothing is queued or in flight."""
        await self._drained.wait()

    def queued(self) -> tuple[Outgoing, ...]:
        """The entries waiting to be sent, oldest first."""
        return tuple(self._queue)

    def _drop(self, entry: Outgoing) -> None:
        self._stats.dropped += 1
        if self._dropping == 0:
            log.warning(
                "bus: outgoing buffer full (%d messages, broker %s); dropping the oldest",
                self._capacity,
                "connected" if self._stats.connected else "unreachable",
            )
        self._dropping += 1

    def _count(self) -> None:
        self._stats.buffered = len(self._queue) + len(self._inflight)
        if self._stats.buffered == 0:
            self._drained.set()
