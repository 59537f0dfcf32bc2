"""The change feed: one watcher per process tells every open stream what changed.

Why a database poll and not a hook in the case service: in the distributed wiring
the cases and NTU states are written by other processes (the detector, other API
replicas) than the one serving a browser's stream, so only the database sees every
change. The poll is cheap (an indexed ``max`` for cases, one grouped count for NTU
states; ``bench/console.py`` measures it) and there is ONE per process, whatever the
number of streams: the watcher starts with the first subscriber, stops with the last
one (or ``close``), and hands each subscriber the set of topics that changed since it
last looked - a slow reader gets one merged notice, never a backlog.

Topics: ``cases`` (any case created or changed: every change writes a timeline
entry) and ``ntus`` (an NTU's status, or the inventory, changed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from types import TracebackType
from typing import Final

from caseapi.core.errors import CaseApiError

logger = logging.getLogger(__name__)

TOPICS: Final = ("cases", "ntus")

#: What a probe returns: a marker per topic; a topic changed when its marker did.
Fingerprint = Mapping[str, Hashable]
Probe = Callable[[], Awaitable[Fingerprint]]


class TooManyStreamsError(CaseApiError):
    """Every stream slot of this process is taken (the client retries later)."""

    code = "too_many_streams"
    http_status = 503
    http_headers = {"Retry-After": "30"}


class Subscription:
    """One stream's view of the feed: the topics changed since it last looked."""

    def __init__(self, feed: ChangeFeed) -> None:
        self._feed = feed
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self.closed = False

    def _notify(self, topics: set[str]) -> None:
        self._pending |= topics
        self._wake.set()

    def _end(self) -> None:
        self.closed = True
        self._wake.set()

    async def next(self, within: float) -> frozenset[str]:
        """The topics changed since the last call; empty after ``within`` seconds
        without a change or when the feed closed (see ``closed``)."""
        if not self._pending and not self.closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await self._wake.wait()
        self._wake.clear()
        topics = frozenset(self._pending)
        self._pending.clear()
        return topics

    def close(self) -> None:
        """Leave the feed (idempotent)."""
        self._feed._leave(self)
        self.closed = True

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ChangeFeed:
    """The one change watcher of a process (see the module docstring).

    Args:
        probe: Reads the current fingerprint (a marker per topic) from the database.
        interval: Seconds between two probes.
        max_streams: Subscribers at most; ``subscribe`` refuses the next.
    """

    def __init__(self, *, probe: Probe, interval: float, max_streams: int) -> None:
        if interval <= 0 or max_streams < 1:
            raise ValueError("interval must be positive and max_streams at least 1")
        self._probe = probe
        self._interval = interval
        self._max_streams = max_streams
        self._subscribers: set[Subscription] = set()
        #: Set while nobody is subscribed (``close`` waits for it).
        self._all_left = asyncio.Event()
        self._all_left.set()
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False
        #: Probes made (for tests and the benchmark: one per interval, not per stream).
        self.probes = 0
        #: Changes seen: a value read at generation ``g`` is current while it stays ``g``.
        self.generation = 0

    @property
    def watching(self) -> bool:
        """Whether the watcher runs (someone listens, so changes are being seen)."""
        return self._watcher is not None and not self._watcher.done()

    @property
    def streams(self) -> int:
        """Subscribers now."""
        return len(self._subscribers)

    def subscribe(self) -> Subscription:
        """A new subscription; starts the watcher if it is not running.

        Raises:
            TooManyStreamsError: ``max_streams`` subscribers already, or the feed closed.
        """
        if self._closed or len(self._subscribers) >= self._max_streams:
            raise TooManyStreamsError("too many live streams are open; retry later")
        subscription = Subscription(self)
        self._subscribers.add(subscription)
        self._all_left.clear()
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="web-change-feed")
        return subscription

    def _leave(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        if not self._subscribers:
            self._all_left.set()
        if not self._subscribers and self._watcher is not None:
            # Nobody listens: no reason to keep polling the database.
            self._watcher.cancel()
            self._watcher = None

    async def close(self, *, grace: float = 2.0) -> None:
        """End every subscription and stop the watcher (at application shutdown).

        Waits up to ``grace`` seconds for the streams to finish their responses, so
        that a server stopping next finds no request in flight to cancel.
        """
        self._closed = True
        for subscription in list(self._subscribers):
            subscription._end()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._all_left.wait()
        self._subscribers.clear()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            # Awaiting the task we just cancelled: its CancelledError is expected.
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch(self) -> None:
        last = await self._read()
        while True:
            await asyncio.sleep(self._interval)
            current = await self._read()
            if current is None:
                continue
            if last is not None:
                changed = {t for t in set(current) | set(last) if current.get(t) != last.get(t)}
                if changed:
                    self.generation += 1
                    for subscription in list(self._subscribers):
                        subscription._notify(changed)
            last = current

    async def _read(self) -> Fingerprint | None:
        self.probes += 1
        try:
            return await self._probe()
        except Exception as exc:  # the database away: streams stay open, retry next time
            logger.warning("change feed: cannot read the database: %s", exc)
            return None
