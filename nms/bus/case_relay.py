"""Case events on the bus: the case timeline, relayed by the active detector.

Every change of every case (made by the detector, the ticker or any API replica) is a
row of the case timeline; the relay reads new rows in id order from the case
service's feed (``caseapi.feed.CaseFeed``, which also watches the ids a late commit
may still fill) and publishes one ``CaseChange`` per row under ``<prefix>/cases/<ref>``.
A row is acknowledged to the feed only once it was handed to ``send``, so a failed
send is sent again by the next run: at least once, in id order. A new leader starts
after the newest row (it does not replay history); a consumer that must see every
change reads ``GET /v1/cases/{ref}/timeline``. Only the kind, the case's current
status and priority and its NTU/customer go out: no comment text.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.feed import CaseFeed, FeedEntry
from nms.bus.wire import CaseChange
from nms.clock import Clock

log = logging.getLogger("nms.cases.relay")


class CaseRelay:
    """Publishes the case timeline, row by row, through ``send``.

    Args:
        sessionmaker: the case database.
        send: publishes one change (``MqttBus.send``); a failure is retried next run.
        clock: monotonic time for the feed's gaps, and what ``run`` waits on.
        batch: rows read per query.
        gap_timeout: seconds a skipped id is watched for before it counts as rolled back.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        send: Callable[[CaseChange], Awaitable[None]],
        clock: Clock,
        batch: int = 500,
        gap_timeout: float = 60.0,
    ) -> None:
        self._feed = CaseFeed(
            sessionmaker=sessionmaker, batch=batch, gap_timeout=gap_timeout, clock=clock.monotonic
        )
        self._send = send
        self._clock = clock

    async def start_after_newest(self) -> None:
        """Relay only rows newer than the newest one now (a new leader replays nothing)."""
        await self._feed.start_after_newest()

    async def relay_once(self) -> int:
        """Publish the rows after the last one relayed (and late ones); how many."""
        sent = 0
        for entry in await self._feed.read():
            await self._send(_change(entry))
            self._feed.ack(entry)
            sent += 1
        return sent

    async def run(self, period: float) -> None:
        """Relay what is new every ``period`` seconds of the clock until cancelled."""
        while True:
            try:
                while await self.relay_once() == self._feed.batch:
                    pass
            except Exception:
                log.exception("could not relay case events; retrying")
            await self._clock.sleep(period)


def _change(entry: FeedEntry) -> CaseChange:
    return CaseChange(
        ref=entry.ref,
        event_id=entry.event_id,
        kind=entry.kind,
        status=entry.status,
        priority=entry.priority,
        ntu_id=entry.ntu_id,
        customer_id=entry.customer_id,
        at=entry.at,
    )
