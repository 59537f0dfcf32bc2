"""The API server over a real socket: a client on loopback cannot pick its address
with ``X-Forwarded-For`` (uvicorn's own proxy handling is off; ``api.trusted_proxies``
decides), and a guesser gets 429 with ``Retry-After``."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.app import build_services
from nms.app.process import api_server
from nms.app.settings import ApiSettings
from nms.app.wiring import build_api
from nms.clock import FakeClock
from tests.caseapi.conftest import START


async def test_forwarded_for_from_loopback_is_not_believed_by_default(
    sqlite_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await _check(sqlite_sessionmaker)


async def _check(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = FakeClock(start=START)
    settings = ApiSettings(rate_limits={"auth_failures_per_address": "3/minute"})
    app = build_api(
        sessionmaker,
        clock,
        build_services(sessionmaker=sessionmaker, clock=clock),
        settings=settings,
    )
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = api_server(app)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(100):
                if server.started:
                    break
                await asyncio.sleep(0.05)
            statuses = []
            for n in range(5):
                response = await client.get(
                    "/v1/cases",
                    headers={
                        "Authorization": "Bearer nms_" + f"{n}" * 43,
                        "X-Forwarded-For": f"127.9.0.{n}",
                    },
                )
                statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 429, 429]
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert response.json()["limit"] == "auth_failures_per_address"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serving, 10)
        listener.close()
