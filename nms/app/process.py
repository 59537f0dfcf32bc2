"""What every ``nms`` process shares: its listening socket, signals, a status server,
and the watch on the inventory file.

Each process binds its socket before anything else starts, so a busy port stops
start-up with a clear message; owns SIGTERM / SIGINT (uvicorn installs none of its
own) and stops by raising ``StopRequestedError`` inside its task group.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import signal
import socket
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CollectorRegistry

from nms.app.settings import split_listen
from nms.clock import Clock
from nms.errors import ListenError
from nms.noc.metrics import scrape

log = logging.getLogger("nms.runtime")


def listen_socket(listen: str, key: str = "api.listen") -> socket.socket:
    """Bind the listening socket first, so a busy port stops start-up before anything runs.

    Raises:
        ListenError: naming the setting ``key`` and why the address cannot be used.
    """
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


class ApiServer(uvicorn.Server):
    """uvicorn serving on a socket we bound; the process owns the signals, not uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def api_server(app: FastAPI) -> ApiServer:
    # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from
    # 127.0.0.1 and rewrite the client address; api.trusted_proxies decides that.
    # loop="none": ``serve`` runs on the process's running loop (nms.app.loop, uvloop by
    # default); uvicorn never makes one of its own.
    return ApiServer(
        uvicorn.Config(app, loop="none", log_level="warning", lifespan="off", proxy_headers=False)
    )


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
    async def metrics(per_ntu: str | None = None) -> Response:
        return await scrape(registry(), per_ntu)

    app.include_router(router)
    return app


def instance_name(prefix: str) -> str:
    """A name for this process on the bus, unique enough among its peers."""
    return f"{prefix}-{secrets.token_hex(3)}"


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT."""
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


class FileWatch:
    """Calls ``on_change`` when a file changes on disk, or at once when ``requested``
    is set (SIGHUP). A failing ``on_change`` is logged; the next change tries again."""

    def __init__(
        self, path: Path, on_change: Callable[[], Awaitable[object]], *, clock: Clock
    ) -> None:
        self._path = path
        self._on_change = on_change
        self._clock = clock
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
            await self._wait(interval)
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

    async def _wait(self, interval: float) -> None:
        """Until the next look at the file: ``interval`` on the clock, or SIGHUP."""
        sighup = asyncio.ensure_future(self.requested.wait())
        pause = asyncio.ensure_future(self._clock.sleep(interval))
        try:
            await asyncio.wait((sighup, pause), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sighup, pause):
                task.cancel()
            await asyncio.gather(sighup, pause, return_exceptions=True)
