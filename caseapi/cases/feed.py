"""The case timeline as a feed: every row of ``case_events`` in id order, at least once.

Every change of every case (made by the detector, the ticker or any API replica) is
a row in ``case_events``; a reader (``nms`` relays them to the bus) takes what is new
with ``CaseFeed.read`` and acknowledges each entry it has passed on with ``ack``, so
an entry that failed to go out is read again. Reading the table rather than hooking
each writer means writers need no connection to whoever reads, and nothing is fed
for a transaction that rolled back.

Ids are handed out at INSERT but become visible at COMMIT, so on PostgreSQL a row can
appear after a higher id was already read (two writers overlapping). The feed
remembers the ids it skipped over ("gaps") for ``gap_timeout`` and returns such a row
when it shows up; an id that never shows up belonged to a rolled-back transaction.
Only the kind, the case's current status and priority and its NTU/customer are
given: no comment text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.cases.models import Case, CaseEvent

#: At most this many skipped ids are watched (a burst of rollbacks cannot grow it).
MAX_GAPS: Final = 10_000


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One timeline row with its case's current status and priority."""

    event_id: int
    kind: str
    at: datetime
    ref: str
    status: str
    priority: str
    ntu_id: str | None
    customer_id: str | None


async def newest_event_id(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """The id of the newest timeline row (0: none yet)."""
    async with sessionmaker() as session:
        return (await session.scalar(select(func.max(CaseEvent.id)))) or 0


async def entries_after(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    after: int,
    also: Sequence[int] = (),
    limit: int,
) -> list[FeedEntry]:
    """Up to ``limit`` timeline rows with an id above ``after`` or in ``also``, by id."""
    newer = CaseEvent.id > after
    wanted = or_(newer, CaseEvent.id.in_(list(also))) if also else newer
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
        .limit(limit)
    )
    async with sessionmaker() as session:
        rows = (await session.execute(query)).all()
    return [
        FeedEntry(
            event_id=row.id,
            kind=str(row.kind),
            at=row.at,
            ref=row.ref,
            status=str(row.status),
            priority=str(row.priority),
            ntu_id=row.ntu_id,
            customer_id=row.customer_id,
        )
        for row in rows
    ]


class CaseFeed:
    """A reader's position in the timeline, with the gaps it still waits for.

    Args:
        sessionmaker: The case database.
        batch: Entries per ``read``.
        gap_timeout: Seconds a skipped id is waited for.
        clock: Monotonic seconds (for the gap timeout).
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        batch: int = 500,
        gap_timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch < 1 or gap_timeout < 0:
            raise ValueError("batch must be at least 1 and gap_timeout not negative")
        self._sessionmaker = sessionmaker
        self.batch = batch
        self._gap_timeout = gap_timeout
        self._clock = clock
        self._last_id: int | None = None
        self._gaps: dict[int, float] = {}  # skipped id -> when to give up on it
        self._read_at = 0.0

    @property
    def last_id(self) -> int | None:
        """The highest id acknowledged (``None``: not started)."""
        return self._last_id

    async def start_after_newest(self) -> None:
        """Start after the newest row: history is not fed (a new reader starts now)."""
        self._last_id = await newest_event_id(self._sessionmaker)
        self._gaps.clear()

    async def read(self) -> list[FeedEntry]:
        """The next entries (and late ones from the gaps), at most ``batch``, by id.

        The first read of a feed never started starts after the newest row. Nothing
        moves until ``ack``: entries not acknowledged come again.
        """
        if self._last_id is None:
            await self.start_after_newest()
        assert self._last_id is not None
        now = self._read_at = self._clock()
        self._gaps = {i: until for i, until in self._gaps.items() if until > now}
        return await entries_after(
            self._sessionmaker, after=self._last_id, also=list(self._gaps), limit=self.batch
        )

    def ack(self, entry: FeedEntry) -> None:
        """Record that ``entry`` has been passed on (call in the order ``read`` gave)."""
        assert self._last_id is not None, "read before ack"
        if entry.event_id in self._gaps:
            del self._gaps[entry.event_id]
        elif entry.event_id > self._last_id:
            if len(self._gaps) < MAX_GAPS:
                deadline = self._read_at + self._gap_timeout
                for missing in range(
                    self._last_id + 1, min(entry.event_id, self._last_id + MAX_GAPS)
                ):
                    self._gaps[missing] = deadline
            self._last_id = entry.event_id
