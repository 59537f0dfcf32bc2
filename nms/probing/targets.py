"""What the probe loops probe: the inventory, less the NTUs in a ``skip`` maintenance.

Both the inventory reloader and the maintenance watcher change the target lists;
this one place combines the two, so neither undoes the other.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.maintenance.repository import active_coverage
from nms.clock import Clock
from nms.detector.engine import Detector
from nms.inventory.loader import Inventory
from nms.probing.icmp_loop import ProbeLoop
from nms.probing.snmp_loop import SnmpLoop
from probes.observation import PingTarget

log = logging.getLogger("nms.maintenance")


class TargetPlanner:
    def __init__(
        self, *, inventory: Inventory, icmp: ProbeLoop | None, snmp: SnmpLoop | None
    ) -> None:
        self._inventory = inventory
        self._icmp = icmp
        self._snmp = snmp
        self._skip: frozenset[str] = frozenset()
        self._push()

    def set_inventory(self, inventory: Inventory) -> None:
        self._inventory = inventory
        self._push()

    def set_skip(self, skip: frozenset[str]) -> None:
        if skip != self._skip:
            self._skip = skip
            self._push()

    def _push(self) -> None:
        ntus = [n for n in self._inventory.ntus if n.id not in self._skip]
        # Upstream nodes are pinged like NTUs (no SNMP for them yet).
        pinged = [*(n for n in self._inventory.nodes if n.id not in self._skip), *ntus]
        if self._icmp is not None:
            self._icmp.set_targets(
                [PingTarget(key=n.id, address=n.address) for n in pinged if n.probe.icmp.enabled]
            )
        if self._snmp is not None:
            self._snmp.set_targets(ntus)


class SkipTarget(Protocol):
    """Who stops probing the NTUs of ``skip`` windows: the probe planner here, the
    probe shards over the bus in the distributed wiring."""

    def set_skip(self, skip: frozenset[str]) -> None: ...


class MaintenanceWatcher:
    """Reads the active maintenance windows every ``period`` and applies them.

    ``mute``: the detector opens no proactive case for the NTU until the window ends
    (probing goes on, so recovery is seen); ``skip``: the NTU is not probed either.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        detector: Detector,
        planner: SkipTarget,
        clock: Clock,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._detector = detector
        self._planner = planner
        self._clock = clock

    async def refresh(self) -> None:
        async with self._sessionmaker() as session:
            coverage = await active_coverage(session, at=self._clock.now())
        covered: dict[str, tuple[str, datetime]] = {
            ntu_id: (c.behaviour, c.until) for ntu_id, c in coverage.items()
        }
        self._detector.set_maintenance(covered)
        self._planner.set_skip(
            frozenset(ntu_id for ntu_id, (behaviour, _) in covered.items() if behaviour == "skip")
        )

    async def run(self, period: timedelta) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                # The previous view stays in force; the next refresh retries.
                log.exception("could not read maintenance windows")
            await asyncio.sleep(period.total_seconds())
