"""``nms api``: the case API of the distributed wiring; stateless, run as many as needed.

It answers ``503`` with ``Retry-After`` while the database is unreachable (migrations
wait it out in the background) and recovers by itself. ``/metrics`` serves its rate
limit counters (the detector serves the fleet's and the cases' figures); replicas
share their limits through ``api.rate_limits.storage_url`` (Redis).

With ``api.workers`` > 1 this process binds the address, migrates and supervises
that many worker processes serving it (``nms.app.api_workers``); each worker runs
``serve_api`` on the inherited socket.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import socket
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from caseapi.app import close_console
from caseapi.database import make_engine, make_sessionmaker
from caseapi.secrets import SecretBox
from nms.app.process import (
    StopRequestedError,
    api_server,
    listen_socket,
    remove_signal_handlers,
    stop_event,
    until_stopped,
)
from nms.app.settings import Settings
from nms.app.wiring import (
    build_case_services,
    build_configured_api,
    build_rate_limiter,
    migrate_until_done,
    seal_stored_secrets,
    secret_box,
)
from nms.clock import Clock
from nms.noc.api_metrics import RateLimitCollector, SharedStats
from nms.noc.board_shards import LOCAL_SHARD_FILE, PublishedShard
from nms.noc.metrics import metrics_router, proxied_metrics_router
from nms.noc.process_metrics import register_process_metrics

if TYPE_CHECKING:
    from nms.app.api_workers import WorkerSpec

log = logging.getLogger("nms.distributed")


async def run_api(settings: Settings, *, clock: Clock) -> None:
    """Serve the case API until SIGTERM / SIGINT: from this process, or from
    ``api.workers`` worker processes this one supervises."""
    if settings.api.workers > 1:
        from nms.app.api_workers import supervise

        await supervise(settings)
        return
    box = secret_box(settings)
    listener = listen_socket(settings.api.listen)
    await serve_api(settings, listener, clock=clock, box=box)


async def serve_api(
    settings: Settings,
    listener: socket.socket,
    *,
    clock: Clock,
    box: SecretBox | None,
    worker: WorkerSpec | None = None,
) -> None:
    """Serve the case API on ``listener`` until SIGTERM / SIGINT (closes it).

    Alone (``worker`` None) it also migrates the database in the background; a
    worker leaves that to its parent, publishes its counters (rate limits, CPU,
    memory, collections) for the others' scrapes and stops when its parent goes (the
    pipe on its stdin closes).
    """
    engine = make_engine(settings.database.url)
    sessionmaker = make_sessionmaker(engine)
    services = build_case_services(settings, sessionmaker, clock)
    limiter = build_rate_limiter(settings.api)
    shared = (
        None
        if worker is None
        else SharedStats(worker.metrics_dir, f"worker-{os.getpid()}", limiter.stats)
    )
    registry = CollectorRegistry()
    # A scrape lands on any worker: the workers' sums, never one process's figures.
    register_process_metrics(registry, None if shared is None else shared.process_total)
    registry.register(RateLimitCollector(limiter.stats if shared is None else shared.total))
    app = build_configured_api(
        settings,
        sessionmaker,
        clock,
        services,
        secrets=box,
        rate_limiter=limiter,
        extra_routers=(
            metrics_router(registry)
            if worker is None or worker.metrics_from is None
            else proxied_metrics_router(worker.metrics_from),
        ),
        # A worker of nms run shows nms run's probing on the NOC board, as nms run does.
        probe_shards=None
        if worker is None or worker.metrics_from is None
        else PublishedShard(
            worker.metrics_dir / LOCAL_SHARD_FILE,
            clock=clock,
            stale_after=settings.detector.stale_after,
        ),
    )

    async def prepare() -> None:
        await migrate_until_done(engine)
        await seal_stored_secrets(sessionmaker, box)

    async def publish() -> None:
        assert shared is not None
        while True:
            shared.publish()
            # Real time: other processes read what this one published.
            await asyncio.sleep(PUBLISH_INTERVAL)

    server = api_server(app)
    stop = stop_event()
    parent_gone = asyncio.Event()
    if worker is not None:
        watch_parent(stop, parent_gone)
    # What start-up built (modules, the app, its routes and models: about a million
    # objects) lives as long as the process: out of the collector's way, or every
    # full collection walks it all, a pause of ~100 ms in the middle of requests.
    gc.freeze()
    if worker is None:
        log.info("API on http://%s", settings.api.listen)
    else:
        log.info("worker %d (pid %d) serving", worker.number, os.getpid())
    try:
        try:
            async with asyncio.TaskGroup() as tasks:
                if shared is None:
                    # Requests get 503 + Retry-After until the database is there.
                    tasks.create_task(prepare(), name="migrate")
                else:
                    tasks.create_task(publish(), name="publish")
                tasks.create_task(server.serve(sockets=[listener]), name="api")
                tasks.create_task(until_stopped(stop), name="stop")
        except* StopRequestedError:
            pass
        server.should_exit = True
        # Open /events streams end as responses, not as cancelled requests.
        await close_console(app)
    finally:
        remove_signal_handlers()
        if worker is not None:
            asyncio.get_running_loop().remove_reader(PARENT_PIPE_FD)
        listener.close()
        await limiter.close()
        await engine.dispose()
        if worker is not None and parent_gone.is_set():
            # No parent to clean up after the workers (kill -9): the last one out
            # removes the shared counters; nobody serves a scrape any more.
            shutil.rmtree(worker.metrics_dir, ignore_errors=True)
        elif shared is not None:
            shared.publish()
    log.info("stopped cleanly")


#: Seconds between a worker's publications of its counters (``SharedStats``).
PUBLISH_INTERVAL = 1.0

#: A worker's stdin: a pipe from its parent, closed when the parent ends.
PARENT_PIPE_FD = 0


def watch_parent(stop: asyncio.Event, gone: asyncio.Event) -> None:
    """Set ``gone`` and ``stop`` when the parent's end of the pipe on stdin closes: the
    parent ended, even by ``kill -9``; a worker never outlives it."""
    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            data = os.read(PARENT_PIPE_FD, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if not stop.is_set():
                log.warning("the supervising process is gone; stopping")
            loop.remove_reader(PARENT_PIPE_FD)
            gone.set()
            stop.set()

    loop.add_reader(PARENT_PIPE_FD, readable)
