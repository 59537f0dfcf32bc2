"""``nms run``: probes, detector, case service, mail, API and /metrics in one process.

``run_embedded`` validates everything it can before it starts anything (settings,
inventory, database, ICMP permission), so a bad start fails fast with a clear
message; then it runs the loops in one ``TaskGroup`` until SIGTERM or SIGINT.
State is written as it changes, so stopping at any moment (even ``kill -9``) loses
nothing that a restart needs.

The detector side is the same ``DetectorService`` the distributed leader runs; here
its batches come from the in-process bus the local probe loops publish to.

With ``api.workers`` > 1 the API is served by that many worker processes instead
(``nms.app.api_workers``, as ``nms api --workers N``: same socket, same SQLite file),
so reads no longer share this process's core with the probes; their ``/metrics``
answers with this process's page, served to them on a Unix socket, which sums the
workers' rate limits, CPU and memory with this process's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.app import CaseServices, RateLimitStats, close_console
from caseapi.database import make_engine, make_sessionmaker, mask_url
from caseapi.secrets import SecretBox
from nms.app.api import PUBLISH_INTERVAL
from nms.app.api_workers import STOP_GRACE, WorkerPool, warn_per_worker_limits
from nms.app.detector_service import DetectorService
from nms.app.mail import mail_ingest, mail_poller
from nms.app.process import (
    StopRequestedError,
    api_server,
    listen_socket,
    remove_signal_handlers,
    stop_event,
    until_stopped,
)
from nms.app.settings import Settings, format_duration
from nms.app.wiring import (
    build_case_services,
    build_case_workers,
    build_configured_api,
    build_rate_limiter,
    load_checked_inventory,
    load_checked_organisation,
    migrate_all,
    open_probes,
    seal_stored_secrets,
    secret_box,
)
from nms.bus.inprocess import InProcessBus
from nms.clock import Clock
from nms.errors import ApiWorkersError
from nms.inventory.loader import InventoryCache
from nms.inventory.model import Inventory
from nms.inventory.sync import sync_inventory
from nms.noc.api_metrics import WorkersStats
from nms.noc.board_shards import LOCAL_SHARD_FILE, LocalShard, publish_local_shard
from nms.noc.metrics import Metrics, build_metrics
from nms.noc.probe_metrics import ProbeStats
from nms.noc.process_metrics import ProcessFigures, add_figures, own_figures
from nms.organisation.sync import sync_organisation
from nms.probing.targets import TargetPlanner

log = logging.getLogger("nms.runtime")


async def run_embedded(settings: Settings, *, clock: Clock) -> None:
    """Run the whole system in this process until SIGTERM / SIGINT.

    Raises:
        InventoryError: the inventory file is invalid (nothing was started).
        OrganisationError: the organisation file is invalid (nothing was started).
        probes.errors.IcmpPermissionError: ICMP sockets are not permitted.
        caseapi.database.CaseApiError: the database cannot be used.
    """
    cache = InventoryCache()
    inventory = load_checked_inventory(settings, required=False, cache=cache)
    organisation = load_checked_organisation(settings)
    box = secret_box(settings)
    if settings.api.workers > 1:
        warn_per_worker_limits(settings)
    listener = listen_socket(settings.api.listen)
    engine = make_engine(settings.database.url)
    try:
        await migrate_all(engine)
        log.info("database ready: %s", mask_url(settings.database.url))
        sessionmaker = make_sessionmaker(engine)
        await seal_stored_secrets(sessionmaker, box)
        diff = await sync_inventory(sessionmaker, inventory)
        log.info(
            "inventory %s: %d customers, %d NTUs (%s)",
            settings.inventory.path,
            len(inventory.customers),
            len(inventory.ntus),
            diff.summary(),
        )
        org_diff = await sync_organisation(sessionmaker, organisation)
        if settings.organisation.file is not None:
            log.info("organisation %s: %s", settings.organisation.file, org_diff.summary())
        services = build_case_services(settings, sessionmaker, clock)
        await _serve(settings, clock, inventory, sessionmaker, services, listener, box, cache)
    finally:
        listener.close()
        await engine.dispose()


async def _serve(
    settings: Settings,
    clock: Clock,
    inventory: Inventory,
    sessionmaker: async_sessionmaker[AsyncSession],
    services: CaseServices,
    listener: socket.socket,
    box: SecretBox | None,
    cache: InventoryCache,
) -> None:
    bus = InProcessBus()
    probe_stats = ProbeStats()
    stop = stop_event()
    try:
        async with contextlib.AsyncExitStack() as stack:
            probes = await open_probes(
                stack, settings, publish=bus.publish, stats=probe_stats, clock=clock
            )
            planner = TargetPlanner(inventory=inventory, icmp=probes.icmp, snmp=probes.snmp)
            detector = DetectorService(
                settings=settings,
                clock=clock,
                sessionmaker=sessionmaker,
                sink=services.incidents,
                inventory=inventory,
                batches=bus.batches,
                skip=planner,
                planner=planner,
                flush_at_stop=True,
                inventory_cache=cache,
                # The API in this process reads tiers from a cache: a reload shows at once.
                organisation_changed=services.cases.forget_tiers,
            )
            pool: ApiWorkers | None = None
            if settings.api.workers > 1:
                pool = ApiWorkers(settings, listener, stack, probe_stats)
                rate_limits: RateLimitStats | Callable[[], RateLimitStats] = pool.stats.total
                process: Callable[[], ProcessFigures] | None = pool.figures
            else:
                limiter = build_rate_limiter(settings.api)
                stack.push_async_callback(limiter.close)
                rate_limits, process = limiter.stats, None
            metrics = build_metrics(
                detector=detector.detector,
                probes=probe_stats,
                clock=clock,
                sessionmaker=sessionmaker,
                at_risk_within=settings.cases.at_risk_within,
                rate_limits=rate_limits,
                per_ntu=settings.metrics.per_ntu,
                process=process,
            )
            if probes.snmp is not None:
                metrics.collector.attach_snmp(probes.snmp, probes.snmp_client, probes.traps)
            app: FastAPI | None = None
            if pool is None:
                app = build_configured_api(
                    settings,
                    sessionmaker,
                    clock,
                    services,
                    rate_limiter=limiter,
                    extra_routers=(metrics.router(),),
                    secrets=box,
                    probe_shards=LocalShard(
                        stats=probe_stats, clock=clock, stale_after=settings.detector.stale_after
                    ),
                )
                server = api_server(app)
            else:
                # The workers' /metrics comes here: this process holds the figures.
                server = api_server(metrics_app(metrics))
            workers = build_case_workers(settings, sessionmaker, clock, secrets=box)
            poller = mail_poller(
                settings,
                mail_ingest(settings, sessionmaker, clock),
                clock,
                registry=metrics.registry,
            )
            await stack.enter_async_context(detector)
            # The inventory and the detector's state (100,000 NTUs: millions of objects)
            # live as long as the process: out of the collector's way, so a full
            # collection no longer walks them all (it took a fifth of an SNMP poll).
            gc.freeze()
            log.info(
                "nms running: %d NTUs, ICMP every %s, down after %s; console, API and /metrics "
                "on http://%s%s",
                len(inventory.ntus),
                format_duration(settings.probes.icmp.interval),
                format_duration(settings.detector.down_after),
                settings.api.listen,
                "" if pool is None else f" ({settings.api.workers} API worker processes)",
            )
            problems: list[str] = []
            try:
                async with asyncio.TaskGroup() as tasks:
                    if pool is None:
                        tasks.create_task(server.serve(sockets=[listener]), name="api")
                    else:
                        tasks.create_task(
                            server.serve(sockets=[pool.metrics_socket]), name="metrics"
                        )
                        pool.start(tasks)
                    tasks.create_task(detector.run(), name="detector-service")
                    tasks.create_task(workers.run(), name="case-workers")
                    if poller is not None:
                        tasks.create_task(poller.run(), name="mail-poller")
                    if probes.icmp is not None:
                        tasks.create_task(probes.icmp.run(), name="icmp-probe")
                    if probes.snmp is not None:
                        tasks.create_task(probes.snmp.run(), name="snmp-probe")
                    tasks.create_task(until_stopped(stop), name="stop")
            except* StopRequestedError:
                log.info("stopping")
                server.should_exit = True
                if app is not None:
                    # Open /events streams end as responses, not as cancelled requests.
                    await close_console(app)
            finally:
                if pool is not None:
                    problems = await pool.stop()
            if problems:
                raise ApiWorkersError(problems)
    finally:
        remove_signal_handlers()
    log.info("stopped cleanly")


def metrics_app(metrics: Metrics) -> FastAPI:
    """``/metrics`` alone, for the API workers to fetch."""
    app = FastAPI(title="nms run metrics", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(metrics.router())
    return app


class ApiWorkers:
    """The API worker processes of an ``nms run`` (``api.workers`` > 1), their shared
    counters and the Unix socket this process answers their ``/metrics`` on; the
    directory holding both goes when ``stack`` closes."""

    def __init__(
        self,
        settings: Settings,
        listener: socket.socket,
        stack: contextlib.AsyncExitStack,
        probe_stats: ProbeStats,
    ) -> None:
        self._workers = settings.api.workers
        self._probe_stats = probe_stats
        directory = Path(tempfile.mkdtemp(prefix="nms-run-api-"))
        stack.callback(shutil.rmtree, directory, ignore_errors=True)
        self._shard_file = directory / LOCAL_SHARD_FILE
        self.stats = WorkersStats(directory)
        path = directory / "metrics.sock"
        self.metrics_socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stack.callback(self.metrics_socket.close)
        self.metrics_socket.bind(str(path))
        self._pool = WorkerPool(settings, listener, directory, metrics_from=path)

    def figures(self) -> ProcessFigures:
        """This process's CPU, memory and collections with its workers'."""
        return add_figures(own_figures(), self.stats.process_total(), live=True)

    def start(self, tasks: asyncio.TaskGroup) -> None:
        for number in range(1, self._workers + 1):
            tasks.create_task(self._pool.keep(number), name=f"api-worker-{number}")
        tasks.create_task(self._publish_shard(), name="publish-shard")

    async def _publish_shard(self) -> None:
        # For the console's NOC board, which the workers serve.
        while True:
            publish_local_shard(self._shard_file, self._probe_stats)
            await asyncio.sleep(PUBLISH_INTERVAL)  # real time: other processes read it

    async def stop(self) -> list[str]:
        """Stop the workers (SIGTERM, then SIGKILL after ``STOP_GRACE``): what did not
        stop cleanly."""
        return await self._pool.stop_all(STOP_GRACE)
