"""The distributed wiring: what ``nms probe``, ``nms detector`` and ``nms api`` share.

The same classes as ``nms run`` (``runtime.py``), with the MQTT bus between probes and
detector and PostgreSQL under everything:

- ``nms probe --shard I/N`` (``probe_worker.py``) sweeps the NTUs whose id hashes to
  shard I of N (``nms.probing.shard``) and publishes their results; it needs no database.
- ``nms detector`` (``detector_node.py``): one leads (``nms.app.leader``), the others
  stand by and take over from the persisted state.
- ``nms api`` (here) serves the case API; stateless, any number of replicas.

Every process serves ``/healthz`` and ``/metrics`` (the API: ``/healthz`` only) and
stops cleanly on SIGTERM / SIGINT. None of them exits because the broker or the
database is unreachable: they log it, retry with backoff and report it in metrics.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from caseapi.core.database import make_engine, make_sessionmaker, migrate
from caseapi.core.errors import DatabaseUnavailableError
from nms.app.embedded import (
    _ApiServer,
    _listen,
    build_api,
    build_case_service,
)
from nms.app.settings import Settings
from nms.bus.mqtt import MqttBusSettings
from nms.clock import Clock
from nms.detector.engine import profile_thresholds
from nms.errors import ConfigError
from nms.inventory.loader import Inventory, load_inventory
from nms.noc.exposition import CONTENT_TYPE, render_async

log = logging.getLogger("nms.distributed")

_DB_RETRY_CAP = 30.0


def bus_settings(settings: Settings) -> MqttBusSettings:
    bus = settings.bus
    if bus.url is None:
        raise ConfigError(["bus.url: needed by this command (e.g. NMS_BUS__URL=mqtt://host:1883)"])
    return MqttBusSettings(
        url=bus.url,
        topic_prefix=bus.topic_prefix,
        session_expiry=bus.session_expiry.total_seconds(),
        buffer_batches=bus.buffer_batches,
    )


def instance_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def load_checked_inventory(settings: Settings) -> Inventory:
    path = settings.inventory.path
    if path is None:
        raise ConfigError(["inventory.path: needed by this command (--inventory FILE)"])
    inventory = load_inventory(path)
    profile_thresholds(inventory, settings.detector.degraded)
    return inventory


def stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def remove_signal_handlers() -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.remove_signal_handler(sig)


class StopRequestedError(Exception):
    """Raised inside a task group to end every task of it."""


async def until_stopped(stop: asyncio.Event) -> None:
    await stop.wait()
    raise StopRequestedError


def status_app(
    *, health: Callable[[], dict[str, Any]], registry: Callable[[], CollectorRegistry]
) -> FastAPI:
    """``/healthz`` and ``/metrics`` of a probe worker or detector."""
    app = FastAPI(title="nms", docs_url=None, redoc_url=None, openapi_url=None)
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return health()

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(await render_async(registry()), media_type=CONTENT_TYPE)

    app.include_router(router)
    return app


def status_server(app: FastAPI) -> _ApiServer:
    return _ApiServer(uvicorn.Config(app, log_level="warning", lifespan="off"))


async def migrate_until_done(engine: AsyncEngine) -> None:
    """Migrate, waiting out a database that is not there yet (never a crash loop)."""
    delay = 0.5
    url = make_url(str(engine.url)).render_as_string(hide_password=True)
    while True:
        try:
            await migrate(engine)
            log.info("database ready: %s", url)
            return
        except DatabaseUnavailableError as exc:
            log.warning("database unavailable (%s); retrying in %.0f s", exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, _DB_RETRY_CAP)


# -- nms api ------------------------------------------------------------------------------


async def run_api(settings: Settings, *, clock: Clock) -> None:
    """Serve the case API until SIGTERM / SIGINT; stateless, run as many as needed."""
    listener = _listen(settings.api.listen)
    engine = make_engine(settings.database.url)
    sessionmaker = make_sessionmaker(engine)
    cases = build_case_service(settings, sessionmaker, clock)
    app = build_api(settings, sessionmaker, clock, cases)
    server = status_server(app)
    stop = stop_event()
    log.info("API on http://%s", settings.api.listen)
    try:
        try:
            async with asyncio.TaskGroup() as tasks:
                # Requests get 503 + Retry-After until the database is there.
                tasks.create_task(migrate_until_done(engine), name="migrate")
                tasks.create_task(server.serve(sockets=[listener]), name="api")
                tasks.create_task(until_stopped(stop), name="stop")
        except* StopRequestedError:
            pass
        server.should_exit = True
    finally:
        remove_signal_handlers()
        listener.close()
        await engine.dispose()
    log.info("stopped cleanly")
