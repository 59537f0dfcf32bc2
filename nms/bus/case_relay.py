"""Case events on the bus: the case timeline, relayed by the active detector.

Every change of every case (made by the detector, the ticker or any API replica) is a
row in ``case_events``; the relay reads new rows in id order and publishes one
``CaseChange`` per row under ``<prefix>/cases/<ref>``. Reading the table rather than
hooking each writer means API replicas need no broker connection and nothing is
published for a transaction that rolled back.

Ids are handed out at INSERT but become visible at COMMIT, so on PostgreSQL a row can
appear after a higher id was already relayed (two writers overlapping). The relay
remembers the ids it skipped over ("gaps") for ``gap_timeout`` and publishes such a
row when it shows up; an id that never shows up belonged to a rolled-back
transaction. A new leader starts after the newest row (it does not replay history);
a consumer that must see every change reads ``GET /v1/cases/{ref}/timeline``. Only the kind,
the case's current status and priority and its NTU/customer go out: no comment text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.cases.models import Case, CaseEvent
from nms.bus.wire import CaseChange

log = logging.getLogger("nms.cases.relay")

#: At most this many skipped ids are watched (a burst of rollbacks cannot grow it).
_MAX_GAPS = 10_000


class CaseRelay:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        send: Callable[[CaseChange], Awaitable[None]],
        batch: int = 500,
        gap_timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._send = send
        self._batch = batch
        self._last_id: int | None = None
        self._gap_timeout = gap_timeout
        self._clock = clock
        self._gaps: dict[int, float] = {}  # skipped id -> when to give up on it

    async def start_after_newest(self) -> None:
        async with self._sessionmaker() as session:
            self._last_id = (await session.scalar(select(func.max(CaseEvent.id)))) or 0

    async def relay_once(self) -> int:
        """Publish the rows after the last one relayed (and late ones); how many."""
        if self._last_id is None:
            await self.start_after_newest()
        assert self._last_id is not None
        now = self._clock()
        self._gaps = {i: until for i, until in self._gaps.items() if until > now}
        after = self._last_id
        newer = CaseEvent.id > after
        wanted = or_(newer, CaseEvent.id.in_(list(self._gaps))) if self._gaps else newer
        query = (
            select(
                CaseEvent.id,
                CaseEvent.kind,
                CaseEvent.at,
                Case.ref,
                Case.status,
                Case.priority,
                Case.ntu_id,
                Case.customer_id,
            )
            .join(Case, Case.id == CaseEvent.case_id)
            .where(wanted)
            .order_by(CaseEvent.id)
            .limit(self._batch)
        )
        async with self._sessionmaker() as session:
            rows = (await session.execute(query)).all()
        sent = 0
        for row in rows:
            await self._send(
                CaseChange(
                    ref=row.ref,
                    event_id=row.id,
                    kind=str(row.kind),
                    status=str(row.status),
                    priority=str(row.priority),
                    ntu_id=row.ntu_id,
                    customer_id=row.customer_id,
                    at=row.at,
                )
            )
            sent += 1
            if row.id in self._gaps:
                del self._gaps[row.id]
            elif row.id > self._last_id:
                if len(self._gaps) < _MAX_GAPS:
                    for missing in range(self._last_id + 1, min(row.id, self._last_id + _MAX_GAPS)):
                        self._gaps[missing] = now + self._gap_timeout
                self._last_id = row.id
        return sent

    async def run(self, period: float) -> None:
        while True:
            try:
                while await self.relay_once() == self._batch:
                    pass
            except Exception:
                log.exception("could not relay case events; retrying")
            await asyncio.sleep(period)
