"""What the detector tests share: the inventory in the case service, batches, a flaky sink."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.incidents import (
    IncidentOpen,
    IncidentRestore,
    IncidentService,
    NtuStatusUpdate,
    UpstreamOpen,
)
from caseapi.inventory import InventoryDiff
from nms.bus.batch import PingBatch, SnmpBatch
from nms.inventory.model import Inventory
from nms.inventory.sync import sync_inventory
from probes.observation import PingResult, SnmpResult


def pings(results: Iterable[PingResult]) -> PingBatch:
    return PingBatch(results=tuple(results))


def polls(results: Iterable[SnmpResult]) -> SnmpBatch:
    return SnmpBatch(results=tuple(results))


async def store_inventory(
    sessionmaker: async_sessionmaker[AsyncSession], inventory: Inventory
) -> InventoryDiff:
    """Customers, NTUs and nodes into the case service's tables, as the composition
    root does before it starts the detector."""
    return await sync_inventory(sessionmaker, inventory)


class Flaky:
    """The real incident service behind a switch that makes every call fail."""

    def __init__(self, service: IncidentService) -> None:
        self.service = service
        self.down = False
        self.calls = 0
        self.batches: list[int] = []
        self.restores: list[int] = []

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("case service down")

    async def open_incident(self, request: IncidentOpen) -> str:
        self._call()
        return await self.service.open_incident(request)

    async def open_incidents(self, requests: Sequence[IncidentOpen]) -> list[str]:
        self.batches.append(len(requests))
        self._call()
        return await self.service.open_incidents(requests)

    async def restore_incident(self, *, dedup_key: str, restored_at: datetime) -> str | None:
        self._call()
        return await self.service.restore_incident(dedup_key=dedup_key, restored_at=restored_at)

    async def restore_incidents(self, requests: Sequence[IncidentRestore]) -> list[str | None]:
        self.restores.append(len(requests))
        self._call()
        return await self.service.restore_incidents(requests)

    async def open_upstream_incident(self, request: UpstreamOpen) -> str:
        self._call()
        return await self.service.open_upstream_incident(request)

    async def open_incident_refs(self) -> dict[str, str]:
        return await self.service.open_incident_refs()

    async def report_ntu_status(self, updates: Sequence[NtuStatusUpdate]) -> None:
        # The public status is not what these tests break.
        await self.service.report_ntu_status(updates)
