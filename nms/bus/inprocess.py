"""The bus between probes and detector; in-process in the embedded wiring.

Bounded, so a detector that falls behind slows the probes down (back-pressure)
instead of letting memory grow. The MQTT bus of the distributed wiring
(``nms.bus.mqtt.MqttBus``) offers the same two calls, the ``Bus`` protocol, so the
probe loops and the detector run unchanged in both wirings.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

from nms.bus.batch import Batch


class Bus(Protocol):
    """What probes publish to and the detector reads from."""

    async def publish(self, batch: Batch) -> None:
        """Hand over one batch of results of one kind; an empty batch is ignored."""
        ...

    def batches(self) -> AsyncIterator[Batch]:
        """The published batches, in order, for one consumer; never ends."""
        ...


class InProcessBus:
    """A bounded queue of batches: ``publish`` waits while it is full.

    Args:
        max_batches: how many batches may wait for the consumer.
    """

    def __init__(self, *, max_batches: int = 64) -> None:
        if max_batches < 1:
            raise ValueError("max_batches must be at least 1")
        self._queue: asyncio.Queue[Batch] = asyncio.Queue(max_batches)

    async def publish(self, batch: Batch) -> None:
        """Queue ``batch`` (an empty one is ignored); waits while the queue is full."""
        if batch.results:
            await self._queue.put(batch)

    async def batches(self) -> AsyncIterator[Batch]:
        """The published batches, in order; never ends."""
        while True:
            yield await self._queue.get()
