"""Durable case timers: a ticker that acts on every deadline that has come.

Deadlines are absolute timestamps on the case rows, and ``cases.next_due_at`` holds
the earliest one (kept up to date by every change). ``CaseTicker.run_once(now)``
claims due cases in small batches and feeds each a ``Tick`` through the lifecycle:
first-response breach, unassigned flag, repair-time breach, missed commitments,
monitoring-window end, waiting-customer reminder and auto-close. Then it moves
unacknowledged staff alerts on and raises the "SLA at risk" alerts of deadlines due
within ``at_risk_within`` (``caseapi.oncall.risk``: once per deadline, keyed in the
database, so a restart repeats none).

Restart-safe: nothing lives in memory, so a new ticker on the same database picks
up where the old one stopped. Two tickers never act twice on one deadline: on
PostgreSQL a batch is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and the
deadline is marked handled (``next_due_at`` moves on) in the same transaction;
SQLite has a single writer (``BEGIN IMMEDIATE``), which serialises them.

Each run also purges the audit log of rows older than ``audit.retention``
(``caseapi.audit.service.AuditService.purge``: a read when there is nothing to do).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.audit.config import DEFAULT_RETENTION
from caseapi.audit.service import AuditService
from caseapi.cases import lifecycle, repository, store
from caseapi.cases.config import DEFAULT_AT_RISK_WITHIN, DEFAULT_SLA
from caseapi.cases.sla import SlaSettings
from caseapi.cases.snapshot import Tick
from caseapi.clock import Clock
from caseapi.core.database import session_scope
from caseapi.oncall import risk
from caseapi.oncall import service as staff_alerts

logger = logging.getLogger(__name__)

TICKER_ACTOR: Final = "system:ticker"


class CaseTicker:
    """Acts on due case deadlines; run one per process (several are safe)."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        sla: SlaSettings | None = None,
        batch_size: int = 100,
        audit_retention: timedelta = DEFAULT_RETENTION,
        at_risk_within: timedelta = DEFAULT_AT_RISK_WITHIN,
    ) -> None:
        """Create the ticker.

        Args:
            sessionmaker: Session factory of the case database.
            clock: Source of "now" for ``run``.
            sla: SLA durations (``CaseSettings.sla()``, the same as the services').
            batch_size: Cases claimed per transaction.
            audit_retention: Audit rows older than this are purged (``audit.retention``).
            at_risk_within: A running SLA deadline due within this alerts staff
                (``cases.at_risk_within``; zero: no at-risk alerts).
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if audit_retention <= timedelta(0):
            raise ValueError("audit_retention must be positive")
        if at_risk_within < timedelta(0):
            raise ValueError("at_risk_within must not be negative")
        self._at_risk_within = at_risk_within
        self._audit = AuditService(sessionmaker=sessionmaker, clock=clock)
        self._audit_retention = audit_retention
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._sla = sla or DEFAULT_SLA
        self._batch_size = batch_size

    async def run_once(self, now: datetime | None = None) -> int:
        """Act on every deadline due at ``now`` (default: the clock); return how many cases.

        Raises:
            DatabaseUnavailableError: The database cannot be reached.
        """
        now = now or self._clock.now()
        handled = 0
        while True:
            count = await self._batch(now)
            handled += count
            if count < self._batch_size:
                break
        async with session_scope(self._sessionmaker, write=True) as session:
            # Staff alerts not acknowledged in time go to the next person (stored next_at).
            renotified = await staff_alerts.tick(session, now=now)
            # After the deadlines above: a deadline breached now is not "at risk".
            at_risk = await risk.raise_due(session, now=now, within=self._at_risk_within)
            await session.commit()
        if renotified:
            logger.info("staff alerts: %d re-notified or exhausted", renotified)
        if at_risk:
            logger.info("staff alerts: %d SLA deadlines at risk", at_risk)
        purged = await self._audit.purge(retention=self._audit_retention, now=now)
        if purged:
            logger.info("audit log: purged %d rows older than the retention", purged)
        return handled

    async def _batch(self, now: datetime) -> int:
        async with session_scope(self._sessionmaker, write=True) as session:
            cases = await repository.claim_due_cases(session, now=now, limit=self._batch_size)
            for case in cases:
                policy = await store.policy_for(session, case, self._sla)
                down = await store.ntu_is_down(session, case)
                outcome = await store.apply_event(
                    session, case, Tick(actor=TICKER_ACTOR, ntu_down=down), now=now, policy=policy
                )
                case.next_due_at = lifecycle.next_due_at(outcome.snapshot)
                if case.next_due_at is not None and case.next_due_at <= now:
                    # Never claim the same row again in this run: the loop below
                    # would spin. Cannot happen with the current rules; cheap insurance.
                    case.next_due_at = now + timedelta(seconds=1)
                for entry in outcome.entries:
                    logger.info("case %s: %s %s", case.ref, entry.kind.value, dict(entry.data))
            await session.commit()
            return len(cases)

    async def run(self, interval: timedelta) -> None:
        """Call ``run_once`` every ``interval`` until cancelled; errors are logged, not fatal."""
        if interval <= timedelta(0):
            raise ValueError("interval must be positive")
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A database hiccup must not stop the timers; the next run retries
                # (deadlines are in the database, so nothing is lost).
                logger.exception("case ticker run failed")
            await self._clock.sleep(interval.total_seconds())
