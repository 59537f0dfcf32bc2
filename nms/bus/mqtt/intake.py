"""What arrives from the broker: decoded, de-duplicated, counted, queued.

A bad message is counted by reason, logged (at most one line per reason every
``_REJECT_LOG_PERIOD``, with how many were not logged) and skipped; a message seen
before (QoS 1 may deliver twice) is counted and dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque

from nms.bus.mqtt.stats import BusStats
from nms.bus.wire import Message, WireError, decode
from nms.clock import Clock

log = logging.getLogger("nms.bus")

_REJECT_LOG_PERIOD = 10.0  # seconds between two log lines about rejects of one reason
_DEDUPE_PER_SOURCE = 4096
_DEDUPE_SOURCES = 1024


class Seen:
    """The last ``per_source`` seqs of the last ``sources`` sources, for dedupe.

    Remembered by arrival, not by value: retained messages come in any order on
    subscribe, so "below the highest seq seen" does not mean "seen".
    """

    def __init__(self, *, per_source: int, sources: int) -> None:
        self._per_source = per_source
        self._sources = sources
        self._by_source: OrderedDict[str, tuple[set[int], deque[int]]] = OrderedDict()

    def add(self, source: str, seq: int) -> bool:
        """Remember ``(source, seq)``; False if it was remembered already."""
        entry = self._by_source.get(source)
        if entry is None:
            entry = self._by_source[source] = (set(), deque())
            if len(self._by_source) > self._sources:
                self._by_source.popitem(last=False)
        else:
            self._by_source.move_to_end(source)
        seen, order = entry
        if seq in seen:
            return False
        seen.add(seq)
        order.append(seq)
        if len(order) > self._per_source:
            seen.discard(order.popleft())
        return True


class Intake:
    """Turns received bytes into new, valid messages in ``inbox``.

    Args:
        stats: the bus's counters (``received``, ``rejected``, ``duplicates``).
        clock: monotonic time for the rate limit of the reject log.
        inbox: where the accepted messages go (unbounded; see ``nms.bus.mqtt``).
    """

    def __init__(self, *, stats: BusStats, clock: Clock, inbox: asyncio.Queue[Message]) -> None:
        self._stats = stats
        self._clock = clock
        self._inbox = inbox
        self._seen = Seen(per_source=_DEDUPE_PER_SOURCE, sources=_DEDUPE_SOURCES)
        self._rejects_logged: dict[str, tuple[float, int]] = {}  # reason -> (when, since)

    def accept(self, topic: str, data: bytes) -> None:
        """Decode ``data`` (received on ``topic``) and queue it unless bad or seen."""
        try:
            message = decode(data)
        except WireError as exc:
            self._stats.rejected[exc.reason] += 1
            self._log_reject(topic, exc)
            return
        if not self._seen.add(message.source, message.seq):
            self._stats.duplicates += 1
            return
        self._stats.received[message.kind] += 1
        self._inbox.put_nowait(message)

    def _log_reject(self, topic: str, exc: WireError) -> None:
        now = self._clock.monotonic()
        last, since = self._rejects_logged.get(exc.reason, (None, 0))
        if last is not None and now - last < _REJECT_LOG_PERIOD:
            self._rejects_logged[exc.reason] = (last, since + 1)
            return
        more = f" ({since} more {exc.reason} rejects since the last report)" if since else ""
        log.warning("bus: rejected a message on %s (%s): %s%s", topic, exc.reason, exc, more)
        self._rejects_logged[exc.reason] = (now, 0)
