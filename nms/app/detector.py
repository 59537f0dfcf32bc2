"""``nms detector``: the detector of the distributed wiring, leader or standby.

It stands by until it holds the leader lock (``nms.app.leader``); then it resumes the
persisted state, consumes the observations from the bus, opens and solves cases
(in-process ``CaseService`` on the shared database, idempotent by dedup key), runs
the case ticker, notifications and maintenance, reads the support mailbox
(``mail.imap``), and publishes NTU state changes and case events. When it loses the
lock (its database connection broke or hung) it stops all of that at once and stands
by again. The MQTT session of the leader role has one name: the next leader takes
over what the broker queued meanwhile (and pushes a stale leader off the broker).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from caseapi.database import make_engine, make_sessionmaker, mask_url
from nms.app.detector_service import DetectorService
from nms.app.leader import LeaderLock
from nms.app.mail import mail_ingest, mail_poller
from nms.app.process import (
    StopRequestedError,
    api_server,
    instance_name,
    listen_socket,
    remove_signal_handlers,
    status_app,
    stop_event,
    until_stopped,
)
from nms.app.settings import Settings, format_duration
from nms.app.wiring import (
    build_case_services,
    build_case_workers,
    bus_settings,
    load_checked_inventory,
    load_checked_organisation,
    migrate_until_done,
    seal_stored_secrets,
    secret_box,
)
from nms.bus.batch import Batch, PingBatch, SnmpBatch
from nms.bus.case_relay import CaseRelay
from nms.bus.mqtt import MqttBus
from nms.bus.wire import Heartbeat, NtuStateChange, SkipSet
from nms.clock import Clock
from nms.detector.availability import NtuState, Status
from nms.errors import InventoryError, OrganisationError
from nms.inventory.sync import sync_inventory
from nms.noc.cluster_metrics import DELAY_BUCKETS, BusCollector, ShardMonitor
from nms.noc.metrics import Metrics, build_metrics
from nms.noc.process_metrics import register_process_metrics
from nms.organisation.sync import sync_organisation

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
        self._organisation = load_checked_organisation(settings)
        self._bus_settings = bus_settings(settings)
        self._secrets = secret_box(settings)
        self._lock = LeaderLock(
            settings.database.url, check=settings.cluster.leader_check.total_seconds()
        )
        self._metrics: Metrics | None = None
        self._registry = CollectorRegistry()
        self._standby_registry = CollectorRegistry()
        register_process_metrics(self._standby_registry)
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
        listener = listen_socket(self._settings.cluster.detector_listen, "cluster.detector_listen")
        self._standby_registry.register(_LeaderGauge(lambda: self.leader))
        app = status_app(health=self.health, registry=self.registry)
        server = api_server(app)
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
        await seal_stored_secrets(sessionmaker, self._secrets)
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
                await self._clock.sleep(1)
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
        try:
            self._organisation = load_checked_organisation(settings)
        except OrganisationError as exc:
            log.error(
                "organisation file rejected, leading with the last valid one:\n  %s",
                "\n  ".join(exc.problems),
            )
        inventory = self._inventory
        await sync_inventory(sessionmaker, inventory)
        await sync_organisation(sessionmaker, self._organisation)
        services = build_case_services(settings, sessionmaker, clock)
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

        skip = _SkipPublisher(bus, clock)
        service = DetectorService(
            settings=settings,
            clock=clock,
            sessionmaker=sessionmaker,
            sink=services.incidents,
            inventory=inventory,
            batches=lambda: self._batches(bus),
            skip=skip,
            after_each=flush_changes,
        )
        service.detector.on_status = on_status
        metrics = build_metrics(
            detector=service.detector,
            probes=None,
            clock=clock,
            sessionmaker=sessionmaker,
            at_risk_within=settings.cases.at_risk_within,
            leader=lambda: self.leader,
            per_ntu=settings.metrics.per_ntu,
        )
        registry = metrics.registry
        registry.register(BusCollector(bus.stats, role="detector"))
        registry.register(self._shards)
        registry.register(self._delay)
        self._registry, self._metrics = registry, metrics
        relay = CaseRelay(sessionmaker=sessionmaker, send=bus.send, clock=clock)
        await relay.start_after_newest()
        # The leader alone reads the mailbox (a standby's term has not started).
        poller = mail_poller(
            settings,
            mail_ingest(settings, sessionmaker, clock),
            clock,
            registry=registry,
        )

        async def refresh_case_stats() -> None:
            while True:
                await metrics.case_stats.maybe_refresh()
                await clock.sleep(5)

        try:
            async with service:
                log.info(
                    "detector leading: %d NTUs, down after %s; bus %s",
                    len(inventory.ntus),
                    format_duration(settings.detector.down_after),
                    mask_url(settings.bus.url or ""),  # it may carry a password
                )
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(bus.run(), name="bus")
                    tasks.create_task(service.run(), name="detector-service")
                    tasks.create_task(skip.run(), name="skip-publish")
                    tasks.create_task(relay.run(1.0), name="case-relay")
                    tasks.create_task(refresh_case_stats(), name="case-stats")
                    if poller is not None:
                        tasks.create_task(poller.run(), name="mail-poller")
                    tasks.create_task(
                        build_case_workers(
                            settings, sessionmaker, clock, secrets=self._secrets
                        ).run(),
                        name="case-workers",
                    )
        finally:
            self._inventory = service.inventory

    async def _batches(self, bus: MqttBus) -> AsyncIterator[Batch]:
        """The observation batches of the bus; heartbeats go to the shard monitor.

        The generator resumes once the detector has applied and saved the batch it
        yielded: that is when the publish-to-saved delay is measured.
        """
        async for message in bus.received():
            payload = message.payload
            if isinstance(payload, Heartbeat):
                self._shards.note(payload)
            elif isinstance(payload, PingBatch | SnmpBatch):
                yield payload
                delay = max((self._clock.now() - message.sent_at).total_seconds(), 0.0)
                for _ in payload.results:
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
