"""The event loop every long-running ``nms`` process runs on (``run``, ``probe``,
``detector``, ``api``).

uvloop by default: the loop's own work (polling, timers, the ICMP and SNMP readers'
callbacks, uvicorn's sockets) costs less CPU in libuv than in the standard loop.
``runtime.event_loop: asyncio`` (``NMS_RUNTIME__EVENT_LOOP=asyncio``) is the way
back to the standard library's loop, should uvloop ever misbehave somewhere.

The loop in use is logged once, from inside it, when the process starts.

``tune_collector`` sets the garbage collector's young threshold
(``runtime.gc_threshold``) for the same processes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvloop

from nms.app.settings import EventLoop, RuntimeSettings

T = TypeVar("T")

log = logging.getLogger("nms.runtime")


def loop_factory(event_loop: EventLoop) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes a new loop of that kind."""
    if event_loop == "uvloop":
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> EventLoop:
    """``"uvloop"`` or ``"asyncio"``: the kind of ``loop``."""
    return "uvloop" if isinstance(loop, uvloop.Loop) else "asyncio"


def environment_loop() -> EventLoop:
    """The loop ``NMS_RUNTIME__EVENT_LOOP`` names, else the default: for the benchmarks,
    which run nms's code (or a reference beside it) on the loop nms would run on."""
    named = os.environ.get("NMS_RUNTIME__EVENT_LOOP")
    if not named:
        return RuntimeSettings().event_loop
    return RuntimeSettings.model_validate({"event_loop": named}).event_loop


def run(main: Coroutine[Any, Any, T], *, event_loop: EventLoop) -> T:
    """Run ``main`` to completion on a new loop of kind ``event_loop``, as ``asyncio.run``
    does (Ctrl-C, closing async generators and the default executor at the end)."""
    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        return runner.run(_announced(main))


async def _announced(main: Coroutine[Any, Any, T]) -> T:
    log.info("event loop: %s", loop_name(asyncio.get_running_loop()))
    return await main


def tune_collector(threshold: int) -> None:
    """Collect the youngest generation every ``threshold`` net new objects (the older
    generations' factors stay Python's): for a long-running process, whose objects
    are mostly long-lived and replaced as they change, not cyclic garbage."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
    log.info("garbage collector: the youngest objects every %d new ones", threshold)
