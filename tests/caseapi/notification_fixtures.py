"""Real receivers for notification tests: an SMTP server, an HTTP server, MQTT.

- ``SmtpSink``: aiosmtpd ``Controller`` on 127.0.0.1 and a free port, recording every
  accepted message; ``stop()`` / ``start()`` simulate an outage on the same port.
- ``WebhookSink``: a FastAPI app served by uvicorn on a free port, recording each
  request (headers, raw body); ``status`` sets what it answers.
- ``mqtt_prefix``: a unique topic prefix per test on the machine's Mosquitto.

Import the ``*_fixture`` functions into a test module to use the fixtures.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI, Request, Response

from caseapi.notifications.addresses import WebhookPolicy
from tests.conftest import require

#: The lab exception the ``notifications.webhooks`` settings exist for: the test
#: receivers listen on 127.0.0.1 over plain HTTP.
LAB_WEBHOOKS = WebhookPolicy(allow_http=True, allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))

MQTT_HOST = "127.0.0.1"
MQTT_PORT = 1883


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def mqtt_available() -> bool:
    try:
        with socket.create_connection((MQTT_HOST, MQTT_PORT), timeout=1):
            return True
    except OSError:
        return False


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self._sink.messages.append(message_from_bytes(envelope.content))
        self._sink.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


@dataclass
class SmtpSink:
    port: int
    messages: list[Message] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture(name="smtp_sink")
def smtp_sink_fixture() -> Iterator[SmtpSink]:
    sink = SmtpSink(port=free_port())
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookSink:
    url: str
    status: int = 200
    requests: list[Received] = field(default_factory=list)
    #: Sent with every answer (a ``Location`` for a redirect).
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture(name="webhook_sink")
async def webhook_sink_fixture() -> AsyncIterator[WebhookSink]:
    port = free_port()
    sink = WebhookSink(url=f"http://127.0.0.1:{port}/hook")
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        sink.requests.append(Received(dict(request.headers), await request.body()))
        return Response(status_code=sink.status, headers=sink.headers)

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="webhook-sink")
    # uvicorn.Server exposes only a flag, no event, for "listening".
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    try:
        yield sink
    finally:
        server.should_exit = True
        await task


@pytest.fixture(name="mqtt_prefix")
def mqtt_prefix_fixture() -> str:
    require(mqtt_available(), f"Mosquitto not reachable on {MQTT_HOST}:{MQTT_PORT}")
    return f"test-{uuid.uuid4().hex[:12]}/nms/v1"


async def add_customer_with_email(sessionmaker: Any, customer_id: str, *emails: str) -> None:
    """Insert a customer whose ``attributes.notify_email`` lists ``emails``."""
    from caseapi.customers.models import Customer

    async with sessionmaker() as session:
        session.add(
            Customer(
                id=customer_id,
                name=customer_id.title(),
                contract_status="active",
                attributes={"notify_email": list(emails)},
            )
        )
        await session.commit()


async def outbox_rows(sessionmaker: Any) -> list[tuple[str, str | None]]:
    """``(kind, case_ref)`` of every outbox row, oldest first.

    Case notifications come from the timeline hook (``store.record_event`` ->
    ``on_case_event``), so tests assert on what it enqueued instead of adding
    their own rows.
    """
    from sqlalchemy import select

    from caseapi.notifications.models import Notification

    async with sessionmaker() as session:
        rows = await session.execute(
            select(Notification.kind, Notification.case_ref).order_by(Notification.id)
        )
        return [(kind, ref) for kind, ref in rows.all()]
