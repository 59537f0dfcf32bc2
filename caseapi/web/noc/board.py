"""The NOC board's content: fleet counts, incidents being worked, SLA watch, shards.

``BoardService`` reads it through the repositories in one short transaction and
returns plain views the template shows; ``fingerprint`` is what the change feed
polls (``caseapi.web.noc.changes``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.cases import board as case_board
from caseapi.cases.enums import WORKING_STATUSES, CasePriority, CaseType
from caseapi.cases.queues import Queue, queue_filters
from caseapi.cases.repository import CaseFilters
from caseapi.cases.service import CaseService, QueueRow
from caseapi.clock import Clock
from caseapi.core.database import session_scope
from caseapi.maintenance.repository import active_coverage
from caseapi.ntus import repository as ntus
from caseapi.web.noc.config import BoardSettings
from caseapi.web.noc.shards import ProbeShard, ProbeShards

#: The states the board counts, in the order it shows them.
FLEET_STATES: Final = ("up", "suspect", "down", "recovering", "unreachable", "unknown")
#: Rows per list: a wall screen shows no more, the queues have the rest.
LIST_LIMIT: Final = 50

#: The dashboards of ``dashboards/grafana`` by uid, with their titles.
DASHBOARDS: Final = (
    ("nms-noc-overview", "NOC overview"),
    ("nms-ntu-detail", "NTU detail"),
    ("nms-cases-sla", "Cases and SLA"),
)


@dataclass(frozen=True, slots=True)
class BoardCase:
    """One case row of the board."""

    ref: str
    priority: str
    status: str
    summary: str
    customer_id: str | None
    ntu_id: str | None
    assignee: str | None
    created_at: datetime
    age: str
    #: The next SLA deadline still owed (overdue ones included), and what it is.
    due_at: datetime | None
    due_what: str | None


@dataclass(frozen=True, slots=True)
class Board:
    """Everything the board shows, read at ``now``."""

    now: datetime
    counts: dict[str, int]
    in_maintenance: int
    total: int
    incidents: list[BoardCase]
    breached: list[BoardCase]
    at_risk: list[BoardCase]
    #: ``None``: this process does not know the shards (``nms api``).
    shards: list[ProbeShard] | None
    #: (title, URL) of each Grafana dashboard; empty without ``board.grafana_url``.
    dashboards: list[tuple[str, str]]


def format_age(age: timedelta) -> str:
    """``45s``, ``12m``, ``3h 05m``, ``2d 04h``: how long a case has been open."""
    seconds = max(int(age.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def dashboard_links(grafana_url: str | None) -> list[tuple[str, str]]:
    """The board's links to the Grafana dashboards (none without a Grafana URL)."""
    if grafana_url is None:
        return []
    return [(title, f"{grafana_url}/d/{uid}") for uid, title in DASHBOARDS]


#: Open P1 / P2 incidents still being worked (the queues' filters, not a query of our own).
_WORKING_INCIDENTS: Final = CaseFilters(
    statuses=tuple(sorted(WORKING_STATUSES)),
    priorities=(CasePriority.P1, CasePriority.P2),
    types=(CaseType.INCIDENT,),
)


def _row(queued: QueueRow, now: datetime) -> BoardCase:
    case, deadline = queued.case, queued.deadline
    return BoardCase(
        ref=case.ref,
        priority=case.priority.value,
        status=case.status.value,
        summary=case.summary,
        customer_id=case.customer_id,
        ntu_id=case.ntu_id,
        assignee=case.assignee,
        created_at=case.created_at,
        age=format_age(now - case.created_at),
        due_at=deadline.at if deadline else None,
        due_what=deadline.what if deadline else None,
    )


class BoardService:
    """Reads the board (staff only: the routes admit staff sessions alone)."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        cases: CaseService,
        settings: BoardSettings,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._cases = cases
        self._clock: Clock = cases.clock
        self._settings = settings

    async def board(self, *, shards: ProbeShards | None) -> Board:
        """The board now: the fleet from the NTU repository, the case lists from the
        engineers' queues (``SLA at risk``, ``SLA breached``: the same definitions)."""
        now = self._clock.now()
        async with session_scope(self._sessionmaker) as session:
            counts = await ntus.count_by_status(session)
            coverage = await active_coverage(session, at=now)
        incidents = await self._list(_WORKING_INCIDENTS, "priority")
        breached = await self._list(self._queue(Queue.BREACHED, now), "due")
        at_risk = await self._list(self._queue(Queue.AT_RISK, now), "due")
        at_risk = [row for row in at_risk if row.case.ref not in {b.case.ref for b in breached}]
        return Board(
            now=now,
            counts={state: counts.get(state, 0) for state in _states(counts)},
            in_maintenance=len(coverage),
            total=sum(counts.values()),
            incidents=[_row(row, now) for row in incidents],
            breached=[_row(row, now) for row in breached],
            at_risk=[_row(row, now) for row in at_risk],
            shards=None if shards is None else list(shards()),
            dashboards=dashboard_links(self._settings.grafana_url),
        )

    def _queue(self, queue: Queue, now: datetime) -> CaseFilters | None:
        return queue_filters(queue, assignee="", now=now, at_risk_within=self._cases.at_risk_within)

    async def _list(self, filters: CaseFilters | None, order: str) -> list[QueueRow]:
        page = await self._cases.queue_page(
            filters=filters, order=order, offset=0, limit=LIST_LIMIT
        )
        return list(page.rows)

    async def fingerprint(self) -> dict[str, object]:
        """Topic -> marker, for the change feed (one short read transaction)."""
        async with session_scope(self._sessionmaker) as session:
            return {
                "cases": await case_board.change_marker(session),
                "ntus": await ntus.status_marker(session),
            }


class SharedBoard:
    """One board read shared by the requests that come together.

    A change reaches every open board at once (``live.js``): 50 wall screens and
    engineers' tabs ask for the fragment within the same few hundred milliseconds.
    While the change feed watches, they share one read: a read is reused while the
    feed has seen no change since it began (``generation``) and for at most ``ttl``
    seconds (what the feed cannot see - time passing, maintenance starting - is at
    most that old); concurrent requests wait for the read in flight instead of
    starting their own. Without a feed every request reads afresh.
    """

    def __init__(self, *, service: BoardService, clock: Clock, ttl: float) -> None:
        self._service = service
        self._clock = clock
        self._ttl = ttl
        self._lock = asyncio.Lock()
        self._cached: tuple[int, float, Board] | None = None
        #: Reads made (the benchmark's and the tests' count).
        self.reads = 0

    async def board(self, *, shards: ProbeShards | None, generation: int | None) -> Board:
        """The board; ``generation`` is the watching feed's (``None``: not watching)."""
        if generation is None:
            self.reads += 1
            return await self._service.board(shards=shards)
        async with self._lock:
            cached = self._cached
            now = self._clock.monotonic()
            if cached is None or cached[0] != generation or now - cached[1] >= self._ttl:
                self.reads += 1
                cached = (generation, now, await self._service.board(shards=None))
                self._cached = cached
        # The shards are the process's own figures: always the current ones.
        return replace(cached[2], shards=None if shards is None else list(shards()))


def _states(counts: dict[str, int]) -> Sequence[str]:
    # The known states always (a zero is information), then any other the detector
    # may report one day, so that no NTU goes uncounted.
    return (*FLEET_STATES, *sorted(set(counts) - set(FLEET_STATES)))
