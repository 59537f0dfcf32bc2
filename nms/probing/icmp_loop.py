"""The probe loop: one ICMP sweep of every enabled NTU per interval.

Results are published in batches as they complete (up to a second's worth), so the
detector sees a dead NTU about one timeout after its burst, not at the end of a
cycle. Cycles start at a fixed rate; a cycle that takes longer than the interval is
counted as an overrun and the next one starts at once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol

from nms.bus.batch import PingBatch
from nms.clock import Clock
from nms.noc.probe_metrics import ProbeStats
from nms.probing.settings import IcmpSettings
from probes.icmp.sweeper import SweepSettings
from probes.observation import PingResult, PingTarget

log = logging.getLogger("nms.probes")

Publish = Callable[[PingBatch], Awaitable[None]]

_BATCH_SIZE = 256
_BATCH_SECONDS = 1.0
"""How long a batch waits to fill: each batch costs the detector a fixed part (its
write transactions, the status report): at 10,000 NTUs incl. SNMP, `nms run` took
~10 % of a core with a batch every 0.2 s, ~7-8 % with one a second (bench/scale.py,
the two side by side)."""


class Sweeper(Protocol):
    """What the loop needs of ``probes.icmp.sweeper.IcmpSweeper``."""

    def sweep(self, targets: Sequence[PingTarget]) -> AsyncIterator[PingResult]: ...


def sweep_settings(icmp: IcmpSettings) -> SweepSettings:
    """The sweeper's settings from the ``probes.icmp`` section."""
    return SweepSettings(
        count=icmp.count,
        spacing=icmp.spacing.total_seconds(),
        timeout=icmp.timeout.total_seconds(),
        spread=icmp.effective_spread().total_seconds(),
    )


class ProbeLoop:
    """Sweeps the targets every ``settings.interval`` and publishes the results.

    Args:
        sweeper: sends the bursts (``IcmpSweeper``).
        settings: the ``probes.icmp`` section (its ``interval`` is the cycle).
        publish: where each ``PingBatch`` goes (``Bus.publish``).
        stats: the loop's counters, updated after every cycle.
        clock: measures the cycles and waits for the next one.
    """

    def __init__(
        self,
        *,
        sweeper: Sweeper,
        settings: IcmpSettings,
        publish: Publish,
        stats: ProbeStats,
        clock: Clock,
    ) -> None:
        self._sweeper = sweeper
        self._interval = settings.interval.total_seconds()
        self._publish = publish
        self._stats = stats
        self._clock = clock
        self._targets: list[PingTarget] = []

    def set_targets(self, targets: Sequence[PingTarget]) -> None:
        """Takes effect at the next cycle."""
        self._targets = list(targets)

    async def run(self) -> None:
        """Sweep at a fixed rate until cancelled; a failed cycle is counted and logged."""
        next_start = self._clock.monotonic()
        while True:
            started = self._clock.monotonic()
            targets = self._targets
            try:
                await self._cycle(targets)
            except Exception:
                self._stats.errors += 1
                log.exception("sweep cycle failed; retrying next interval")
            duration = self._clock.monotonic() - started
            self._stats.cycles += 1
            self._stats.targets = len(targets)
            self._stats.last_cycle_seconds = duration
            self._stats.last_cycle_at = self._clock.now()
            log.debug("swept %d targets in %.2f s", len(targets), duration)
            next_start += self._interval
            now = self._clock.monotonic()
            if now > next_start:
                self._stats.overruns += 1
                log.warning(
                    "sweep of %d targets took %.1f s, longer than the %.1f s interval",
                    len(targets),
                    duration,
                    self._interval,
                )
                next_start = now
            await self._clock.sleep(next_start - now)

    async def _cycle(self, targets: Sequence[PingTarget]) -> None:
        batch: list[PingResult] = []
        flushed = self._clock.monotonic()
        async for result in self._sweeper.sweep(targets):
            batch.append(result)
            now = self._clock.monotonic()
            if len(batch) >= _BATCH_SIZE or now - flushed >= _BATCH_SECONDS:
                await self._publish(PingBatch(results=tuple(batch)))
                batch = []
                flushed = now
        if batch:
            await self._publish(PingBatch(results=tuple(batch)))
