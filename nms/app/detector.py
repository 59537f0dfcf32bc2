"""``nms detector``: the detector of the distributed wiring, leader or standby.

It stands by until it holds the leader lock (``nms.app.leader``); then it resumes the
persisted state, consumes the observations from the bus, opens and solves cases
(in-process ``CaseService`` on the shared database, idempotent by dedup key), runs
the case ticker, notifications and maintenance, and publishes NTU state changes and
case events. When it loses the lock (its database connection broke or hung) it stops
all of that at once and stands by again. The MQTT session of the leader role has one
name: the next leader takes over what the broker queued meanwhile (and pushes a
stale leader off the broker).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from caseapi.core.database import make_engine, make_sessionmaker
from caseapi.core.timers import CaseTicker
from caseapi.notifications.dispatcher import NotificationDispatcher
from nms.app.distributed import (
    StopRequestedError,
    bus_settings,
    instance_name,
    load_checked_inventory,
    migrate_until_done,
    remove_signal_handlers,
    status_app,
    status_server,
    stop_event,
    until_stopped,
)
from nms.app.embedded import (
    InventoryReloader,
    _listen,
    build_case_service,
    build_detector,
    build_maintenance_service,
    maintenance_notices,
    notification_settings,
)
from nms.app.leader import LeaderLock
from nms.app.settings import Settings, format_duration
from nms.bus.case_relay import CaseRelay
from nms.bus.mqtt import MqttBus
from nms.bus.wire import Heartbeat, Message, NtuStateChange, SkipSet
from nms.clock import Clock
from nms.detector.availability import NtuState, Status
from nms.detector.engine import Detector
from nms.detector.store import apply_inventory
from nms.errors import InventoryError
from nms.noc.cluster_metrics import DELAY_BUCKETS, BusCollector, ShardMonitor
from nms.noc.metrics import Metrics, build_metrics
from nms.probing.targets import MaintenanceWatcher

log = logging.getLogger("nms.detector.node")

#: The MQTT session of the leader role (see the module docstring).
DETECTOR_CLIENT_ID = "nms-detector"


class _LeadershipLostError(Exception):
    pass


class DetectorNode:
    """One ``nms detector`` process: standby, leader, standby again..."""

    def __init__(self, settings: Settings, *, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._inventory = load_checked_inventory(settings)
        self._bus_settings = bus_settings(settings)
        self._lock = LeaderLock(
            settings.database.url, check=settings.cluster.leader_check.total_seconds()
        )
        self._metrics: Metrics | None = None
        self._registry = CollectorRegistry()
        self._standby_registry = CollectorRegistry()
        self._shards = ShardMonitor(clock=clock, stale_after=settings.cluster.shard_stale_after)
        self._delay = Histogram(
            "nms_bus_observation_delay_seconds",
            "From a probe worker publishing a batch to the detector having applied and saved it",
            buckets=DELAY_BUCKETS,
            registry=None,
        )
        self.terms = 0

    @property
    def leader(self) -> bool:
        return self._lock.is_leader

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "role": "detector", "leader": self.leader, "terms": self.terms}

    def registry(self) -> CollectorRegistry:
        return self._registry if self._metrics is not None else self._standby_registry

    async def serve(self) -> None:
        listener = _listen(self._settings.cluster.detector_listen, "cluster.detector_listen")
        self._standby_registry.register(_LeaderGauge(lambda: self.leader))
        app = status_app(health=self.health, registry=self.registry)
        server = status_server(app)
        engine = make_engine(self._settings.database.url)
        stop = stop_event()
        try:
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(server.serve(sockets=[listener]), name="status")
                    tasks.create_task(self._lead_forever(engine), name="leadership")
                    tasks.create_task(until_stopped(stop), name="stop")
            except* StopRequestedError:
                pass
            log.info("stopping")
            server.should_exit = True
        finally:
            await self._lock.release()
            remove_signal_handlers()
            listener.close()
            await engine.dispose()
        log.info("stopped cleanly")

    async def _lead_forever(self, engine: AsyncEngine) -> None:
        sessionmaker = make_sessionmaker(engine)
        await migrate_until_done(engine)
        while True:
            await self._lock.acquire()
            self.terms += 1
            log.info("leading (term %d): resuming the detector state", self.terms)
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._term(sessionmaker), name="term")
                    tasks.create_task(self._watch_lock(), name="lock-watch")
            except* _LeadershipLostError:
                log.error("lost the leader lock: standing by (another detector takes over)")
            except* Exception as group:
                log.error("leader term failed; standing by and trying again", exc_info=group)
                await asyncio.sleep(1)
            finally:
                self._metrics = None
                await self._lock.release()

    async def _watch_lock(self) -> None:
        await self._lock.watch()
        raise _LeadershipLostError

    async def _term(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        settings, clock = self._settings, self._clock
        try:  # the file may have changed while this detector stood by
            self._inventory = load_checked_inventory(settings)
        except InventoryError as exc:
            log.error(
                "inventory rejected, leading with the last valid one:\n  %s",
                "\n  ".join(exc.problems),
            )
        inventory = self._inventory
        await apply_inventory(sessionmaker, inventory)
        cases = build_case_service(settings, sessionmaker, clock)
        detector = build_detector(settings, sessionmaker, clock, cases)
        await detector.load(inventory)
        # Room for a state change of every NTU at once (all go up after a start): the
        # outgoing buffer is sized for a probe worker's batches, not for the fleet.
        entries = len(inventory.ntus) + len(inventory.nodes)
        buffer = max(self._bus_settings.buffer_batches, 2 * entries + 1000)
        bus = MqttBus(
            replace(self._bus_settings, buffer_batches=buffer),
            client_id=DETECTOR_CLIENT_ID,
            source=instance_name("detector"),
            subscribe=["probes/+/ping", "probes/+/snmp", "probes/+/heartbeat"],
            persistent=True,
            clock=clock,
        )
        changes: list[NtuStateChange] = []

        def on_status(ntu_id: str, previous: Status, state: NtuState, ref: str | None) -> None:
            changes.append(
                NtuStateChange(
                    ntu_id=ntu_id,
                    status=state.status.value,
                    previous=previous.value,
                    at=clock.now(),
                    outage_start=state.outage_start,
                    case_ref=ref,
                )
            )

        async def flush_changes() -> None:
            # Only the latest change per NTU: the topic is retained, the last one counts.
            latest = {change.ntu_id: change for change in changes}
            changes.clear()
            for change in latest.values():
                await bus.send(change, retain=True)

        detector.on_status = on_status
        metrics = build_metrics(
            detector=detector,
            probes=None,
            clock=clock,
            sessionmaker=sessionmaker,
            leader=lambda: self.leader,
        )
        registry = metrics.registry
        registry.register(BusCollector(bus.stats, role="detector"))
        registry.register(self._shards)
        registry.register(self._delay)
        self._registry, self._metrics = registry, metrics

        skip = _SkipPublisher(bus, clock)
        maintenance = MaintenanceWatcher(
            sessionmaker=sessionmaker, detector=detector, planner=skip, clock=clock
        )
        reloader = InventoryReloader(
            path=cast(Path, settings.inventory.path),
            current=inventory,
            sessionmaker=sessionmaker,
            detector=detector,
            planner=None,
            degraded=settings.detector.degraded,
        )
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.requested.set)

        async def consume() -> None:
            async for message in bus.received():
                try:
                    await self._on_message(detector, message)
                except Exception:
                    # E.g. the database went away: the states stay in memory (dirty) and
                    # are saved with the next batch; the lock watch decides about leading.
                    log.exception("detector failed on a %s message", message.kind)
                await flush_changes()

        async def tick() -> None:
            period = settings.detector.tick.total_seconds()
            while True:
                await asyncio.sleep(period)
                try:
                    await detector.tick()
                except Exception:
                    log.exception("detector tick failed")
                await flush_changes()

        async def refresh_case_stats() -> None:
            while True:
                await metrics.case_stats.maybe_refresh()
                await asyncio.sleep(5)

        relay = CaseRelay(sessionmaker=sessionmaker, send=bus.send)
        await relay.start_after_newest()
        await maintenance.refresh()
        log.info(
            "detector leading: %d NTUs, down after %s; bus %s",
            len(inventory.ntus),
            format_duration(settings.detector.down_after),
            settings.bus.url,
        )
        tasks_to_run: list[tuple[str, Coroutine[Any, Any, None]]] = [
            ("bus", bus.run()),
            ("consume", consume()),
            ("tick", tick()),
            ("maintenance", maintenance.run(settings.maintenance.refresh)),
            ("skip-publish", skip.run()),
            ("case-relay", relay.run(1.0)),
            ("case-stats", refresh_case_stats()),
            (
                "maintenance-notices",
                maintenance_notices(
                    build_maintenance_service(settings, sessionmaker, clock), settings, clock
                ),
            ),
            (
                "case-ticker",
                CaseTicker(sessionmaker=sessionmaker, clock=clock, sla=cases.sla).run(
                    settings.cases.ticker_interval
                ),
            ),
            (
                "inventory-watch",
                reloader.watch(settings.inventory.watch_interval.total_seconds()),
            ),
        ]
        if settings.notifications.enabled:
            dispatcher = NotificationDispatcher(
                sessionmaker=sessionmaker, settings=notification_settings(settings), clock=clock
            )
            tasks_to_run.append(
                ("notifications", dispatcher.run(settings.notifications.interval.total_seconds()))
            )
        try:
            async with asyncio.TaskGroup() as tasks:
                for name, coro in tasks_to_run:
                    tasks.create_task(coro, name=name)
        finally:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._inventory = reloader.current

    async def _on_message(self, detector: Detector, message: Message) -> None:
        payload = message.payload
        if isinstance(payload, Heartbeat):
            self._shards.note(payload)
            return
        if not isinstance(payload, tuple) or not payload:
            return
        if message.kind == "snmp":
            await detector.observe_snmp(payload)  # type: ignore[arg-type]
        else:
            await detector.observe(payload)  # type: ignore[arg-type]
        delay = max((self._clock.now() - message.sent_at).total_seconds(), 0.0)
        for _ in payload:
            self._delay.observe(delay)


class _SkipPublisher:
    """Sends the ``skip`` set to the probe shards (retained, so a new worker gets it)."""

    def __init__(self, bus: MqttBus, clock: Clock) -> None:
        self._bus = bus
        self._clock = clock
        self._skip: frozenset[str] | None = None
        self._changed = asyncio.Event()

    def set_skip(self, skip: frozenset[str]) -> None:
        if skip != self._skip:
            self._skip = skip
            self._changed.set()

    async def run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._skip is not None:
                await self._bus.send(SkipSet(ntu_ids=self._skip, at=self._clock.now()), retain=True)


class _LeaderGauge(Collector):
    """``nms_detector_leader`` on a standby (the leader's comes with its metrics)."""

    def __init__(self, leader: Callable[[], bool]) -> None:
        self._leader = leader

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "nms_detector_leader",
            "1 if this detector is the active one (always 1 in embedded mode)",
            value=1 if self._leader() else 0,
        )


async def run_detector(settings: Settings, *, clock: Clock) -> None:
    await DetectorNode(settings, clock=clock).serve()
