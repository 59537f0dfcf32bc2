"""The detector side of a process: one object for ``nms run`` and the leading ``nms detector``.

``DetectorService`` owns the detector engine and what keeps it current - the
observation batches it consumes, the tick that evaluates its deadlines, the
maintenance windows it follows and the inventory file it reloads - and runs them
in one task group::

    async with DetectorService(...) as service:
        await service.run()

Entering resumes the persisted state and reads the active maintenance windows
before the first observation, so a restart (or a failover) continues every outage
where it was and applies skip windows at once. Both wirings build it the same way;
only where the batches come from (the in-process bus or MQTT) and where ``skip``
sets go (the local probe loops or the probe shards) differ.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.incidents import IncidentService, IncidentSink
from nms.app.process import FileWatch
from nms.app.settings import Settings
from nms.app.wiring import load_checked_organisation, load_settings_inventory
from nms.bus.batch import Batch
from nms.clock import Clock
from nms.detector.availability import Rules
from nms.detector.engine import Detector, profile_thresholds
from nms.errors import InventoryError, OrganisationError
from nms.inventory.loader import InventoryCache
from nms.inventory.model import Inventory
from nms.inventory.sync import sync_inventory
from nms.organisation.sync import sync_organisation
from nms.probing.targets import MaintenanceWatcher, SkipTarget, TargetPlanner

log = logging.getLogger("nms.runtime")


def build_detector(
    settings: Settings,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    sink: IncidentSink,
) -> Detector:
    """The detector engine, with every rule from ``settings`` (detector and probes)."""
    d = settings.detector
    return Detector(
        rules=Rules(
            down_after=d.down_after, restore_after=d.restore_after, stale_after=d.stale_after
        ),
        degraded=d.degraded,
        clock=clock,
        sink=sink,
        sessionmaker=sessionmaker,
        icmp_enabled=settings.probes.icmp.enabled,
        # An SNMP verdict on the WAN interface stays valid for about two polls.
        snmp_max_age=settings.probes.snmp.interval * 2.5,
        refresh=d.refresh,
        # The case service on the detector's own database (``nms run`` and the
        # distributed detector alike): a batch's states and statuses in one transaction.
        statuses=(
            sink.write_ntu_status
            if isinstance(sink, IncidentService) and sink.writes_to(sessionmaker)
            else None
        ),
    )


class InventoryReloader:
    """Reloads the inventory file on SIGHUP or when it changes on disk.

    A file that fails validation is rejected as a whole, with every problem logged,
    and the running inventory stays.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        path: Path,
        current: Inventory,
        sessionmaker: async_sessionmaker[AsyncSession],
        detector: Detector,
        planner: TargetPlanner | None,
        clock: Clock,
        cache: InventoryCache | None = None,
    ) -> None:
        self._settings = settings
        self._path = path
        self.current = current
        # The entries of the file as last loaded: a reload parses only the changed ones.
        self._cache = cache if cache is not None else InventoryCache()
        self._sessionmaker = sessionmaker
        self._detector = detector
        self._planner = planner
        self._watch = FileWatch(path, self.reload, clock=clock)
        self.requested = self._watch.requested

    async def watch(self) -> None:
        await self._watch.run(self._settings.inventory.watch_interval.total_seconds())

    async def reload(self) -> bool:
        try:
            inventory = load_settings_inventory(self._settings, self._path, cache=self._cache)
            profile_thresholds(inventory, self._settings.detector.degraded)
        except InventoryError as exc:
            log.error(
                "inventory reload rejected, keeping the running inventory (%d NTUs):\n  %s",
                len(self.current.ntus),
                "\n  ".join(exc.problems),
            )
            return False
        diff = await sync_inventory(self._sessionmaker, inventory, previous=self.current)
        self._detector.set_inventory(inventory)
        if self._planner is not None:
            self._planner.set_inventory(inventory)
        self.current = inventory
        gc.freeze()  # the new inventory lives on, as the first one (``nms.app.embedded``)
        log.info("inventory reloaded from %s: %s", self._path, diff.summary())
        return True


class OrganisationReloader:
    """Reloads the organisation file with the inventory: on SIGHUP or when it changes.

    A file that fails validation is refused as a whole, every problem logged, and
    the stored organisation (teams, routing) stays as it was.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        path: Path,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        """Args:
        on_change: Called after a file was stored (the case service's
            ``forget_tiers``, so this process's reads show the new tiers at once).
        """
        self._settings = settings
        self._path = path
        self._sessionmaker = sessionmaker
        self._on_change = on_change
        self._watch = FileWatch(path, self.reload, clock=clock)
        self.requested = self._watch.requested

    async def watch(self) -> None:
        await self._watch.run(self._settings.inventory.watch_interval.total_seconds())

    async def reload(self) -> bool:
        try:
            organisation = load_checked_organisation(self._settings)
        except OrganisationError as exc:
            log.error(
                "organisation reload rejected, keeping the running one:\n  %s",
                "\n  ".join(exc.problems),
            )
            return False
        diff = await sync_organisation(self._sessionmaker, organisation)
        if self._on_change is not None:
            self._on_change()
        log.info("organisation reloaded from %s: %s", self._path, diff.summary())
        return True


class DetectorService:
    """The detector engine and the loops that feed it (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        sessionmaker: async_sessionmaker[AsyncSession],
        sink: IncidentSink,
        inventory: Inventory,
        batches: Callable[[], AsyncIterator[Batch]],
        skip: SkipTarget,
        planner: TargetPlanner | None = None,
        after_each: Callable[[], Awaitable[None]] | None = None,
        flush_at_stop: bool = False,
        inventory_cache: InventoryCache | None = None,
        organisation_changed: Callable[[], None] | None = None,
    ) -> None:
        """Args:
        batches: Where observations come from (called once, consumed until cancelled).
        skip: Who stops probing the NTUs of ``skip`` windows.
        planner: The local probe loops' targets, reloaded with the inventory (None
            where the probes run elsewhere).
        after_each: Awaited after every batch and every tick (the distributed leader
            publishes the state changes they made).
        flush_at_stop: Write the probe figures ``detector.refresh`` held back when
            leaving (``nms run``; not a distributed leader, whose successor may
            already be writing when it leaves).
        inventory_cache: What loading ``inventory`` learnt of the file's entries
            (``load_checked_inventory``), so that even the first reload parses only
            what changed.
        organisation_changed: Called after a reloaded organisation file was stored
            (``OrganisationReloader``'s ``on_change``).
        """
        self._settings = settings
        self._clock = clock
        self._inventory = inventory
        self._batches = batches
        self._after_each = after_each
        self._flush_at_stop = flush_at_stop
        self.detector = build_detector(settings, sessionmaker=sessionmaker, clock=clock, sink=sink)
        self.maintenance = MaintenanceWatcher(
            sessionmaker=sessionmaker, detector=self.detector, planner=skip, clock=clock
        )
        path = settings.inventory.path
        self.reloader = (
            None
            if path is None
            else InventoryReloader(
                settings=settings,
                path=path,
                current=inventory,
                sessionmaker=sessionmaker,
                detector=self.detector,
                planner=planner,
                clock=clock,
                cache=inventory_cache,
            )
        )

        org_path = settings.organisation.file
        self.organisation_reloader = (
            None
            if org_path is None
            else OrganisationReloader(
                settings=settings,
                path=org_path,
                sessionmaker=sessionmaker,
                clock=clock,
                on_change=organisation_changed,
            )
        )

    @property
    def inventory(self) -> Inventory:
        """The inventory in force (the last valid file)."""
        return self._inventory if self.reloader is None else self.reloader.current

    async def __aenter__(self) -> Self:
        await self.detector.load(self._inventory)
        await self.maintenance.refresh()  # before the first probe: skip windows apply at once
        loop = asyncio.get_running_loop()
        events = [r.requested for r in (self.reloader, self.organisation_reloader) if r is not None]
        if events:

            def reload_files() -> None:
                for event in events:
                    event.set()

            loop.add_signal_handler(signal.SIGHUP, reload_files)
        else:
            loop.add_signal_handler(
                signal.SIGHUP,
                lambda: log.warning("SIGHUP: no inventory or organisation file to reload"),
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if not self._flush_at_stop:
            return
        try:
            # The probe figures ``detector.refresh`` held back, so a clean stop loses none.
            await self.detector.flush()
        except Exception:
            log.exception("could not save the detector state at stop")

    async def run(self) -> None:
        """Consume, tick, follow maintenance and the inventory file until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._consume(), name="detector")
            tasks.create_task(self._tick(), name="detector-tick")
            tasks.create_task(
                self.maintenance.run(self._settings.maintenance.refresh), name="maintenance"
            )
            if self.reloader is not None:
                tasks.create_task(self.reloader.watch(), name="inventory-watch")
            if self.organisation_reloader is not None:
                tasks.create_task(self.organisation_reloader.watch(), name="organisation-watch")

    async def _consume(self) -> None:
        async for batch in self._batches():
            try:
                await self.detector.observe(batch)
            except Exception:
                # E.g. the database went away: the states stay in memory (dirty) and are
                # saved with the next batch or tick.
                log.exception("detector failed on a batch of %d results", len(batch.results))
            if self._after_each is not None:
                await self._after_each()

    async def _tick(self) -> None:
        period = self._settings.detector.tick.total_seconds()
        while True:
            await self._clock.sleep(period)
            try:
                await self.detector.tick()
            except Exception:
                log.exception("detector tick failed")
            if self._after_each is not None:
                await self._after_each()
