"""What the probe loops probe: the inventory, less the NTUs in a ``skip`` maintenance.

Both the inventory reloader and the maintenance watcher change the target lists;
this one place combines the two, so neither undoes the other.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.coverage import maintenance_coverage
from nms.clock import Clock
from nms.inventory.model import Inventory, NtuSpec
from nms.probing.icmp_loop import ProbeLoop
from nms.probing.snmp_loop import SnmpLoop
from probes.observation import PingTarget

log = logging.getLogger("nms.maintenance")


class TargetPlanner:
    """Gives each probe loop its targets: the inventory less the ``skip`` set.

    Args:
        inventory: the NTUs and upstream nodes to probe.
        icmp: the ICMP loop (NTUs and nodes with ICMP enabled), or None.
        snmp: the SNMP loop (NTUs; it keeps those with an ``snmp`` section), or None.
    """

    def __init__(
        self, *, inventory: Inventory, icmp: ProbeLoop | None, snmp: SnmpLoop | None
    ) -> None:
        self._inventory = inventory
        self._icmp = icmp
        self._snmp = snmp
        self._skip: frozenset[str] = frozenset()
        self._pinged: dict[str, tuple[NtuSpec, PingTarget]] = {}
        """The target of each spec pinged last: a reload reuses the specs of the
        entries it did not parse again, and so their targets."""
        self._push()

    def set_inventory(self, inventory: Inventory) -> None:
        """A reloaded inventory: the loops get the new targets at their next cycle."""
        self._inventory = inventory
        self._push()

    def set_skip(self, skip: frozenset[str]) -> None:
        """Stop probing these NTU/node ids (and probe again those no longer in it)."""
        if skip != self._skip:
            self._skip = skip
            self._push()

    def _push(self) -> None:
        skip = self._skip
        inventory = self._inventory
        ntus = [n for n in inventory.ntus if n.id not in skip] if skip else inventory.ntus
        # Upstream nodes are pinged like NTUs (no SNMP for them yet).
        pinged = [*(n for n in inventory.nodes if n.id not in skip), *ntus]
        if self._icmp is not None:
            known = self._pinged
            self._icmp.set_targets(
                [
                    # (inline: this runs for every entry at every reload)
                    hit[1]
                    if (hit := known.get(n.id)) is not None and hit[0] is n
                    else self._ping_target(n)
                    for n in pinged
                    if n.probe.icmp.enabled
                ]
            )
            if len(self._pinged) > len(pinged):
                kept = {n.id for n in pinged}
                self._pinged = {k: v for k, v in self._pinged.items() if k in kept}
        if self._snmp is not None:
            self._snmp.set_targets(ntus)

    def _ping_target(self, spec: NtuSpec) -> PingTarget:
        known = self._pinged.get(spec.id)
        if known is not None and known[0] is spec:
            return known[1]
        target = PingTarget(key=spec.id, address=spec.address)
        self._pinged[spec.id] = (spec, target)
        return target


class SkipTarget(Protocol):
    """Who stops probing the NTUs of ``skip`` windows: the probe planner here, the
    probe shards over the bus in the distributed wiring."""

    def set_skip(self, skip: frozenset[str]) -> None: ...


class MaintenanceSink(Protocol):
    """Who holds back proactive cases for NTUs in maintenance: the detector."""

    def set_maintenance(self, covered: dict[str, tuple[str, datetime]]) -> None: ...


class MaintenanceWatcher:
    """Reads the active maintenance windows every ``period`` and applies them.

    ``mute``: the detector opens no proactive case for the NTU until the window ends
    (probing goes on, so recovery is seen); ``skip``: the NTU is not probed either.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        detector: MaintenanceSink,
        planner: SkipTarget,
        clock: Clock,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._detector = detector
        self._planner = planner
        self._clock = clock

    async def refresh(self) -> None:
        """Read the windows active now and hand them to the detector and the planner."""
        coverage = await maintenance_coverage(self._sessionmaker, at=self._clock.now())
        covered: dict[str, tuple[str, datetime]] = {
            ntu_id: (c.behaviour, c.until) for ntu_id, c in coverage.items()
        }
        self._detector.set_maintenance(covered)
        self._planner.set_skip(
            frozenset(ntu_id for ntu_id, (behaviour, _) in covered.items() if behaviour == "skip")
        )

    async def run(self, period: timedelta) -> None:
        """``refresh`` every ``period`` of the clock until cancelled; a failure is logged."""
        while True:
            try:
                await self.refresh()
            except Exception:
                # The previous view stays in force; the next refresh retries.
                log.exception("could not read maintenance windows")
            await self._clock.sleep(period.total_seconds())
