"""``nms api``: the case API of the distributed wiring; stateless, run as many as needed.

It answers ``503`` with ``Retry-After`` while the database is unreachable (migrations
wait it out in the background) and recovers by itself. ``/metrics`` serves its rate
limit counters (the detector serves the fleet's and the cases' figures); replicas
share their limits through ``api.rate_limits.storage_url`` (Redis).
"""

from __future__ import annotations

import asyncio
import gc
import logging

from prometheus_client import CollectorRegistry

from caseapi.app import close_console
from caseapi.database import make_engine, make_sessionmaker
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
    build_api,
    build_case_services,
    build_rate_limiter,
    migrate_until_done,
    seal_stored_secrets,
    secret_box,
)
from nms.clock import Clock
from nms.noc.api_metrics import RateLimitCollector
from nms.noc.metrics import metrics_router

log = logging.getLogger("nms.distributed")


async def run_api(settings: Settings, *, clock: Clock) -> None:
    """Serve the case API until SIGTERM / SIGINT."""
    box = secret_box(settings)
    listener = listen_socket(settings.api.listen)
    engine = make_engine(settings.database.url)
    sessionmaker = make_sessionmaker(engine)
    services = build_case_services(settings, sessionmaker, clock)
    limiter = build_rate_limiter(settings.api)
    registry = CollectorRegistry()
    registry.register(RateLimitCollector(limiter.stats))
    app = build_api(
        sessionmaker,
        clock,
        services,
        settings=settings.api,
        attachments=settings.attachments,
        notifications=settings.notifications,
        secrets=box,
        rate_limiter=limiter,
        extra_routers=(metrics_router(registry),),
        board=settings.board,
    )

    async def prepare() -> None:
        await migrate_until_done(engine)
        await seal_stored_secrets(sessionmaker, box)

    server = api_server(app)
    stop = stop_event()
    # What start-up built (modules, the app, its routes and models: about a million
    # objects) lives as long as the process: out of the collector's way, or every
    # full collection walks it all, a pause of ~100 ms in the middle of requests.
    gc.freeze()
    log.info("API on http://%s", settings.api.listen)
    try:
        try:
            async with asyncio.TaskGroup() as tasks:
                # Requests get 503 + Retry-After until the database is there.
                tasks.create_task(prepare(), name="migrate")
                tasks.create_task(server.serve(sockets=[listener]), name="api")
                tasks.create_task(until_stopped(stop), name="stop")
        except* StopRequestedError:
            pass
        server.should_exit = True
        # Open /events streams end as responses, not as cancelled requests.
        await close_console(app)
    finally:
        remove_signal_handlers()
        listener.close()
        await limiter.close()
        await engine.dispose()
    log.info("stopped cleanly")
