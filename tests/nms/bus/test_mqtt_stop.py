"""Stopping an MQTT bus always ends, promptly, and leaves nothing behind.

A stop is ``task.cancel()`` on ``MqttBus.run`` - once: with Python 3.11's
``asyncio.wait_for`` inside aiomqtt, a cancel that landed as an ack arrived could be
swallowed and the stop hung (``nms.bus.mqtt.session`` explains and fixes it). Each
scenario stops a bus 200 times at random moments of one phase - connecting (to a
broker that stalls, in plain MQTT and in the TLS handshake), while the broker
restarts over and over, and while a burst of QoS 1 messages is being acknowledged -
and checks every stop against a bound, then that no task and no file descriptor
outlived the buses.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import random
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from nms.bus.batch import PingBatch
from nms.bus.mqtt import MqttBus, MqttBusSettings
from nms.bus.mqtt.session import DISCONNECT_WAIT, Crew, pending_connects
from nms.bus.mqtt.tls import TlsFiles
from tests.conftest import require
from tests.mosquitto import BINARY, Mosquitto, mosquitto_fixture  # noqa: F401 - "mosquitto"
from tests.nms.bus.test_mqtt import eventually, ping
from tests.pki import Pki

STOPS = 200
STOP_BOUND = DISCONNECT_WAIT + 1.0  # one DISCONNECT wait, and a loaded machine's slack
FAST: dict[str, Any] = {"reconnect_base": 0.01, "reconnect_cap": 0.05}


def open_fds() -> dict[str, str]:
    """This process's open file descriptors and what each is (socket:[inode], a path)."""
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone already
            found[fd] = os.readlink(f"/proc/self/fd/{fd}")
    # Not /dev/null: uvloop's libuv opens it once per loop, when the loop first listens
    # (the test's own server), as its reserve for EMFILE; the loop's, never the bus's.
    return {fd: what for fd, what in found.items() if what != os.devnull}


async def stop(task: asyncio.Task[None]) -> float:
    """Cancel ``run()`` once; how long it took to end. Fails if it does not end."""
    started = time.monotonic()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=STOP_BOUND * 3)
    took = time.monotonic() - started
    assert done, f"run() still running {took:.1f} s after one cancel:\n{stacks()}"
    assert task.cancelled(), f"run() ended with {task.exception()!r}, not cancelled"
    return took


def stacks() -> str:
    """Where every task is (for a stop that hangs)."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        task.print_stack(limit=12, file=out)
    return out.getvalue()


@contextlib.asynccontextmanager
async def leaves_nothing() -> AsyncIterator[list[float]]:
    """Yield a list for the stop times; then check them, the tasks and the fds."""
    fds = open_fds()
    times: list[float] = []
    started = time.monotonic()
    yield times
    # Connects abandoned while paho's thread ran close their socket when it ends
    # (bounded by the connect timeout); aiomqtt's keepalive tasks end a tick after.
    async with asyncio.timeout(10):
        while pending_connects() or len(asyncio.all_tasks()) > 1:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    assert len(times) == STOPS
    assert max(times) <= STOP_BOUND, f"slowest stop {max(times):.2f} s"
    # A socket closed by the bus may still be open at the broker's end (the test's
    # own server, in this process) for a moment: allow it that, not more.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            while len(open_fds()) > len(fds):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    left = {fd: what for fd, what in open_fds().items() if fds.get(fd) != what}
    assert len(open_fds()) <= len(fds), f"outlived the buses: {left}"
    print(
        f"{STOPS} stops in {time.monotonic() - started:.1f} s: "
        f"median {sorted(times)[STOPS // 2] * 1000:.1f} ms, max {max(times) * 1000:.1f} ms"
    )


class Stall:
    """A TCP server that accepts and reads but never answers: no CONNACK, no TLS."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.accepted = 0
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._swallow, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self._writers:  # our end of connections the bus has closed
            writer.close()
        await self.server.wait_closed()

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass
        writer.close()
        self._writers.discard(writer)


async def test_stops_during_connect_are_bounded(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    rng = random.Random(1)
    async with leaves_nothing() as times, Stall() as port:
        plain = MqttBusSettings(url=f"mqtt://127.0.0.1:{port}", timeout=0.5, **FAST)
        # The TLS handshake runs in paho's thread, which a stop cannot interrupt: it
        # leaves it to end on its own (the connect timeout) and close its socket.
        tls = MqttBusSettings(
            url=f"mqtts://127.0.0.1:{port}", timeout=0.3, tls=TlsFiles(ca=pki.ca), **FAST
        )
        for i in range(STOPS):
            settings = tls if i % 10 == 0 else plain
            bus = MqttBus(settings, client_id=f"c{i}", source=f"s{i}")
            task = asyncio.create_task(bus.run())
            await asyncio.sleep(rng.uniform(0, 0.02))
            times.append(await stop(task))
            assert bus.stats.connects == 0


async def test_stops_while_the_broker_restarts_are_bounded(tmp_path: Path) -> None:
    require(BINARY.exists(), "needs the mosquitto broker (apt install mosquitto)")
    broker = Mosquitto(tmp_path)
    broker.start()
    churning = threading.Event()
    churning.set()

    def churn() -> None:
        # Blocking stops and starts, off the loop: the broker comes and goes while
        # buses connect, lose it, back off and reconnect.
        pause = random.Random(2)
        while churning.is_set():
            broker.stop()
            time.sleep(pause.uniform(0, 0.02))
            broker.start()
            time.sleep(pause.uniform(0, 0.05))

    restarts = threading.Thread(target=churn, name="broker-churn")
    restarts.start()
    rng = random.Random(3)
    try:
        async with leaves_nothing() as times:
            settings = MqttBusSettings(url=broker.url, timeout=1.0, **FAST)
            for i in range(STOPS):
                bus = MqttBus(settings, client_id=f"c{i}", source=f"s{i}")
                task = asyncio.create_task(bus.run())
                await bus.publish(PingBatch((ping(),)))
                await asyncio.sleep(rng.uniform(0, 0.06))
                times.append(await stop(task))
    finally:
        churning.clear()
        restarts.join(30)
        broker.stop()


async def test_stops_during_a_send_burst_are_bounded(mosquitto: Mosquitto) -> None:
    settings = MqttBusSettings(url=mosquitto.url, timeout=2.0, **FAST)
    rng = random.Random(4)
    acknowledged = 0
    async with leaves_nothing() as times:
        for i in range(STOPS):
            bus = MqttBus(settings, client_id=f"c{i}", source=f"s{i}")
            task = asyncio.create_task(bus.run())
            await eventually(lambda bus=bus: bus.stats.connected)  # type: ignore[misc]
            for n in range(100):
                await bus.publish(PingBatch((ping(f"ntu-{n}"),)))
            # Stop while PUBACKs come in: where a swallowed cancel used to hang.
            await asyncio.sleep(rng.uniform(0, 0.01))
            times.append(await stop(task))
            acknowledged += bus.stats.published["ping"]
    # The stops did land mid-burst: some of the messages were acknowledged, not all.
    assert 0 < acknowledged < STOPS * 100


async def test_a_stop_as_a_connection_task_fails_is_not_swallowed() -> None:
    """Deterministic: the cancel lands in the very iteration in which a task fails.

    ``asyncio.TaskGroup`` on Python 3.11 raises the task's error here instead (the
    stop becomes a reconnect); ``Crew`` lets the cancellation through.
    """
    failing = asyncio.Event()

    async def fail() -> None:
        await failing.wait()
        raise aiomqtt.MqttError("connection lost")

    async def serve() -> None:
        crew = Crew()
        crew.spawn(fail(), name="fail")
        crew.spawn(asyncio.Event().wait(), name="idle")  # type: ignore[arg-type]
        await crew.wait()

    task = asyncio.create_task(serve())
    await asyncio.sleep(0.01)  # serve() waits on its crew
    failing.set()
    await asyncio.sleep(0)  # fail() runs and raises: the crew is told
    task.cancel()  # ...and the stop arrives in the same iteration
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(1):
        while len(asyncio.all_tasks()) > 1:  # noqa: ASYNC110 - the crew's tasks end
            await asyncio.sleep(0)


@pytest.fixture(autouse=True)
def _quiet_bus_logs(caplog: pytest.LogCaptureFixture) -> None:
    # 600 outages would log 600 warnings: keep the report readable.
    caplog.set_level("ERROR", logger="nms.bus")
