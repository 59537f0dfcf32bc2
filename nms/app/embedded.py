"""The embedded wiring: probes, detector, case service, API and /metrics in one process.

``run_embedded`` validates everything it can before it starts anything (settings,
inventory, database, ICMP permission), so a bad start fails fast with a clear
message; then it runs the loops in one ``TaskGroup`` until SIGTERM or SIGINT.
State is written as it changes, so stopping at any moment (even ``kill -9``) loses
nothing that a restart needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import uvicorn
from fastapi import APIRouter, FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.api.app import create_app
from caseapi.cases.enums import CasePriority
from caseapi.cases.service import CaseService
from caseapi.cases.sla import SlaSettings
from caseapi.core.database import make_engine, make_sessionmaker, migrate
from caseapi.core.timers import CaseTicker
from caseapi.maintenance.service import MaintenanceService
from caseapi.notifications.dispatcher import NotificationDispatcher
from caseapi.notifications.settings import NotificationSettings as DispatcherSettings
from nms.app.settings import DegradedSettings, Settings, format_duration, split_listen
from nms.bus.inprocess import Batch, InProcessBus
from nms.clock import Clock
from nms.detector.availability import Rules
from nms.detector.engine import Detector, profile_thresholds
from nms.detector.store import apply_inventory
from nms.errors import InventoryError, ListenError
from nms.inventory.loader import Inventory, load_inventory
from nms.noc.metrics import build_metrics
from nms.noc.probe_metrics import ProbeStats
from nms.probing.icmp_loop import ProbeLoop, sweep_settings
from nms.probing.snmp_loop import SnmpLoop, client_settings
from nms.probing.targets import MaintenanceWatcher, TargetPlanner
from probes.icmp.sweeper import IcmpSweeper
from probes.observation import PingResult, SnmpResult
from probes.snmp.client import ClientStats, SnmpClient
from probes.snmp.poller import SnmpPoller
from probes.snmp.traps import TrapListener, TrapStats
from probes.snmp.traps import TrapSettings as ListenerSettings

log = logging.getLogger("nms.runtime")

Publish = Callable[[Batch], Awaitable[None]]


def sla_settings(settings: Settings) -> SlaSettings:
    c = settings.cases
    return SlaSettings(
        monitoring_window_p1=c.monitoring_window.p1,
        monitoring_window_p2=c.monitoring_window.p2,
        first_response=c.first_response,
        unassigned_after=c.unassigned_after,
        reminder_after=c.waiting_customer.reminder_after,
        close_after=c.waiting_customer.close_after,
        auto_close_recheck=c.waiting_customer.recheck,
        ttr={CasePriority.P1: c.ttr.p1, CasePriority.P2: c.ttr.p2, CasePriority.P3: c.ttr.p3},
        dispatch_notice=c.dispatch_notice,
    )


def notification_settings(settings: Settings) -> DispatcherSettings:
    n = settings.notifications
    return DispatcherSettings(
        smtp_host=n.smtp_host,
        smtp_port=n.smtp_port,
        smtp_from=n.smtp_from,
        smtp_starttls=n.smtp_starttls,
        smtp_user=n.smtp_user,
        smtp_password=n.smtp_password.get_secret_value() if n.smtp_password else None,
        mqtt_url=n.mqtt_url,
        mqtt_topic_prefix=n.mqtt_topic_prefix,
        max_attempts=n.max_attempts,
        backoff_base=n.backoff_base,
        backoff_cap=n.backoff_cap,
    )


def detector_rules(settings: Settings) -> Rules:
    d = settings.detector
    return Rules(down_after=d.down_after, restore_after=d.restore_after, stale_after=d.stale_after)


def build_case_service(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock
) -> CaseService:
    return CaseService(
        sessionmaker=sessionmaker,
        clock=clock,
        monitoring_window_p1=settings.cases.monitoring_window.p1,
        monitoring_window_p2=settings.cases.monitoring_window.p2,
        sla=sla_settings(settings),
    )


def build_detector(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    cases: CaseService,
) -> Detector:
    return Detector(
        rules=detector_rules(settings),
        degraded=settings.detector.degraded,
        clock=clock,
        sink=cases,
        sessionmaker=sessionmaker,
        icmp_enabled=settings.probes.icmp.enabled,
        snmp_max_age=settings.probes.snmp.interval * 2.5,
    )


def build_api(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    cases: CaseService,
    *,
    extra_routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The case API with the maintenance service (embedded and ``nms api``)."""
    app = create_app(
        sessionmaker=sessionmaker, case_service=cases, clock=clock, extra_routers=extra_routers
    )
    app.state.maintenance_service = build_maintenance_service(settings, sessionmaker, clock)
    return app


def build_maintenance_service(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock
) -> MaintenanceService:
    m = settings.maintenance
    return MaintenanceService(
        sessionmaker=sessionmaker,
        clock=clock,
        planned_notice=m.planned_notice,
        max_duration=m.max_duration,
        emergency_backdate=m.emergency_backdate,
    )


class _ApiServer(uvicorn.Server):
    # The runtime owns the signals; uvicorn must not install its own handlers.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class FileWatch:
    """Calls ``on_change`` when a file changes on disk, or at once when ``requested``
    is set (SIGHUP). A failing ``on_change`` is logged; the next change tries again."""

    def __init__(self, path: Path, on_change: Callable[[], Awaitable[object]]) -> None:
        self._path = path
        self._on_change = on_change
        self._signature = self._stat()
        self.requested = asyncio.Event()

    def _stat(self) -> tuple[float, int] | None:
        try:
            st = self._path.stat()
        except OSError:
            return None
        return (st.st_mtime, st.st_size)

    async def run(self, interval: float) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self.requested.wait()
            forced = self.requested.is_set()
            self.requested.clear()
            signature = self._stat()
            if forced or (signature is not None and signature != self._signature):
                self._signature = signature
                try:
                    await self._on_change()
                except Exception:
                    # E.g. the database busy or gone: the running inventory stays, and
                    # the next change (or SIGHUP) tries again. Never take nms down.
                    log.exception("inventory reload failed; keeping the running inventory")


class InventoryReloader:
    """Reloads the inventory file on SIGHUP or when it changes on disk.

    A file that fails validation is rejected as a whole, with every problem logged,
    and the running inventory stays.
    """

    def __init__(
        self,
        *,
        path: Path,
        current: Inventory,
        sessionmaker: async_sessionmaker[AsyncSession],
        detector: Detector,
        planner: TargetPlanner | None,
        degraded: DegradedSettings,
    ) -> None:
        self._planner = planner
        self._path = path
        self._degraded = degraded
        self.current = current
        self._sessionmaker = sessionmaker
        self._detector = detector
        self._watch = FileWatch(path, self.reload)
        self.requested = self._watch.requested

    async def watch(self, interval: float) -> None:
        await self._watch.run(interval)

    async def reload(self) -> bool:
        try:
            inventory = load_inventory(self._path)
            profile_thresholds(inventory, self._degraded)
        except InventoryError as exc:
            log.error(
                "inventory reload rejected, keeping the running inventory (%d NTUs):\n  %s",
                len(self.current.ntus),
                "\n  ".join(exc.problems),
            )
            return False
        diff = await apply_inventory(self._sessionmaker, inventory)
        self._detector.set_inventory(inventory)
        if self._planner is not None:
            self._planner.set_inventory(inventory)
        self.current = inventory
        log.info("inventory reloaded from %s: %s", self._path, diff.summary())
        return True


async def run_embedded(settings: Settings, *, clock: Clock) -> None:
    """Run the whole system in this process until SIGTERM / SIGINT.

    Raises:
        InventoryError: the inventory file is invalid (nothing was started).
        probes.errors.IcmpPermissionError: ICMP sockets are not permitted.
        caseapi.core.errors.CaseApiError: the database cannot be used.
    """
    path = settings.inventory.path
    inventory = load_inventory(path) if path else Inventory(customers=(), ntus=())
    profile_thresholds(inventory, settings.detector.degraded)
    if path is None:
        log.warning("no inventory given (--inventory FILE): nothing to probe")

    listener = _listen(settings.api.listen)
    engine = make_engine(settings.database.url)
    try:
        await migrate(engine)
        log.info(
            "database ready: %s",
            make_url(settings.database.url).render_as_string(hide_password=True),
        )
        sessionmaker = make_sessionmaker(engine)
        diff = await apply_inventory(sessionmaker, inventory)
        log.info(
            "inventory %s: %d customers, %d NTUs (%s)",
            path,
            len(inventory.customers),
            len(inventory.ntus),
            diff.summary(),
        )
        cases = build_case_service(settings, sessionmaker, clock)
        detector = build_detector(settings, sessionmaker, clock, cases)
        await detector.load(inventory)
        await _serve(settings, clock, inventory, sessionmaker, detector, cases, listener)
    finally:
        listener.close()
        await engine.dispose()


def _listen(listen: str, key: str = "api.listen") -> socket.socket:
    """Bind the listening socket first, so a busy port stops start-up before anything runs."""
    host, port = split_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=512)
    except OSError as exc:
        raise ListenError(
            [
                f"{key}: cannot listen on {listen}: "
                + (os.strerror(exc.errno) if exc.errno else str(exc))
                + (" (is another nms running?)" if exc.errno == errno.EADDRINUSE else "")
            ]
        ) from exc


async def _serve(
    settings: Settings,
    clock: Clock,
    inventory: Inventory,
    sessionmaker: async_sessionmaker[AsyncSession],
    detector: Detector,
    cases: CaseService,
    listener: socket.socket,
) -> None:
    icmp = settings.probes.icmp
    probe_stats = ProbeStats()
    metrics = build_metrics(
        detector=detector, probes=probe_stats, clock=clock, sessionmaker=sessionmaker
    )
    app = build_api(settings, sessionmaker, clock, cases, extra_routers=(metrics.router(),))
    server = _ApiServer(uvicorn.Config(app, log_level="warning", lifespan="off"))
    bus = InProcessBus()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async with contextlib.AsyncExitStack() as stack:
        probes = await open_probes(
            stack, settings, publish=bus.publish, stats=probe_stats, clock=clock
        )
        probe_loop, snmp_loop = probes.icmp, probes.snmp
        if snmp_loop is not None:
            metrics.collector.attach_snmp(snmp_loop, probes.snmp_client, probes.traps)
        planner = TargetPlanner(inventory=inventory, icmp=probe_loop, snmp=snmp_loop)
        maintenance = MaintenanceWatcher(
            sessionmaker=sessionmaker, detector=detector, planner=planner, clock=clock
        )
        await maintenance.refresh()  # before the first probe: skip windows apply at once
        reloader = None
        if settings.inventory.path is not None:
            reloader = InventoryReloader(
                path=settings.inventory.path,
                current=inventory,
                sessionmaker=sessionmaker,
                detector=detector,
                planner=planner,
                degraded=settings.detector.degraded,
            )
            loop.add_signal_handler(signal.SIGHUP, reloader.requested.set)
        else:
            loop.add_signal_handler(
                signal.SIGHUP, lambda: log.warning("SIGHUP: no inventory file to reload")
            )

        async def consume() -> None:
            async for batch in bus.batches():
                try:
                    if isinstance(batch[0], SnmpResult):
                        await detector.observe_snmp(cast(Sequence[SnmpResult], batch))
                    else:
                        await detector.observe(cast(Sequence[PingResult], batch))
                except Exception:
                    log.exception("detector failed on a batch of %d results", len(batch))

        async def tick() -> None:
            period = settings.detector.tick.total_seconds()
            while True:
                await asyncio.sleep(period)
                try:
                    await detector.tick()
                except Exception:
                    log.exception("detector tick failed")

        log.info(
            "nms running: %d NTUs, ICMP every %s, down after %s; API and /metrics on http://%s",
            len(inventory.ntus),
            format_duration(icmp.interval),
            format_duration(settings.detector.down_after),
            settings.api.listen,
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(server.serve(sockets=[listener]), name="api")
                tasks.create_task(consume(), name="detector")
                tasks.create_task(tick(), name="ticker")
                tasks.create_task(maintenance.run(settings.maintenance.refresh), name="maintenance")
                tasks.create_task(
                    maintenance_notices(app.state.maintenance_service, settings, clock),
                    name="maintenance-notices",
                )
                if settings.notifications.enabled:
                    dispatcher = NotificationDispatcher(
                        sessionmaker=sessionmaker,
                        settings=notification_settings(settings),
                        clock=clock,
                    )
                    tasks.create_task(
                        dispatcher.run(settings.notifications.interval.total_seconds()),
                        name="notifications",
                    )
                ticker = CaseTicker(sessionmaker=sessionmaker, clock=clock, sla=cases.sla)
                tasks.create_task(ticker.run(settings.cases.ticker_interval), name="case-ticker")
                if probe_loop is not None:
                    tasks.create_task(probe_loop.run(), name="icmp-probe")
                if snmp_loop is not None:
                    tasks.create_task(snmp_loop.run(), name="snmp-probe")
                if reloader is not None:
                    tasks.create_task(
                        reloader.watch(settings.inventory.watch_interval.total_seconds()),
                        name="inventory-watch",
                    )
                waiter = tasks.create_task(stop.wait(), name="stop")
                await waiter
                log.info("stopping")
                server.should_exit = True
                raise _ShutdownRequestedError
        except* _ShutdownRequestedError:
            pass
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
    log.info("stopped cleanly")


@dataclass(frozen=True, slots=True)
class Probes:
    """The probe loops of this process (None: that probe is switched off)."""

    icmp: ProbeLoop | None
    snmp: SnmpLoop | None
    snmp_client: ClientStats | None
    traps: TrapStats | None


async def open_probes(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    *,
    publish: Publish,
    stats: ProbeStats,
    clock: Clock,
) -> Probes:
    """Open the ICMP sweeper, SNMP client and trap listener (closed with ``stack``)."""
    icmp = settings.probes.icmp
    probe_loop: ProbeLoop | None = None
    if icmp.enabled:
        sweeper = IcmpSweeper(settings=sweep_settings(icmp), privileged=icmp.privileged)
        await stack.enter_async_context(sweeper)
        probe_loop = ProbeLoop(
            sweeper=sweeper, settings=icmp, publish=publish, stats=stats, clock=clock
        )
    else:
        log.warning("ICMP probing is disabled (probes.icmp.enabled=false)")
    if not settings.probes.snmp.enabled:
        return Probes(icmp=probe_loop, snmp=None, snmp_client=None, traps=None)
    client = SnmpClient(settings=client_settings(settings.probes.snmp))
    await stack.enter_async_context(client)
    snmp_loop = SnmpLoop(
        poller=SnmpPoller(client=client, wall_clock=clock.now),
        settings=settings.probes.snmp,
        publish=publish,
        clock=clock,
    )
    trap_stats = None
    traps = settings.probes.snmp.traps
    if traps.enabled:
        trap_host, trap_port = split_listen(traps.listen)
        trap_listener = TrapListener(
            lookup=snmp_loop.trap_source,
            on_event=snmp_loop.on_trap,
            settings=ListenerSettings(host=trap_host, port=trap_port),
        )
        await stack.enter_async_context(trap_listener)
        trap_stats = trap_listener.stats
        log.info("listening for SNMP traps on %s", traps.listen)
    return Probes(icmp=probe_loop, snmp=snmp_loop, snmp_client=client.stats, traps=trap_stats)


async def maintenance_notices(
    service: MaintenanceService, settings: Settings, clock: Clock
) -> None:
    """Queue "maintenance started" notices and reminders as their time comes.

    Looks back one maximal window at start-up so that a start missed while nms was
    down is still announced; the windows record what was sent, so overlapping
    ranges never send twice.
    """
    since = clock.now() - settings.maintenance.max_duration
    while True:
        until = clock.now()
        try:
            await service.notify_due(since=since, until=until)
            since = until
        except Exception:
            log.exception("could not queue maintenance notices; retrying")
        await asyncio.sleep(settings.maintenance.refresh.total_seconds())


class _ShutdownRequestedError(Exception):
    """Raised inside the task group to cancel every loop on shutdown."""
