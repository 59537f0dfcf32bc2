"""TEMPORARY: ``CaseService`` still answers the detector's calls, for ``nms``.

``nms`` passes its ``CaseService`` as the detector's sink until it builds an
``IncidentService`` (``caseapi.incidents``); every call here forwards to one. Delete
this module (and the base class of ``CaseService``) once it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from caseapi.cases.contract import IncidentOpen, UpstreamOpen
from caseapi.cases.incidents import IncidentService
from caseapi.ntus.status import NtuStatusUpdate


class LegacyIncidentCalls:
    """The ``IncidentSink`` calls, forwarded to ``_incidents``."""

    _incidents: IncidentService

    async def open_incident(self, request: IncidentOpen) -> str:
        """See ``IncidentService.open_incident``."""
        return await self._incidents.open_incident(request)

    async def open_incidents(self, requests: Sequence[IncidentOpen]) -> list[str]:
        """See ``IncidentService.open_incidents``."""
        return await self._incidents.open_incidents(requests)

    async def open_upstream_incident(self, request: UpstreamOpen) -> str:
        """See ``IncidentService.open_upstream_incident``."""
        return await self._incidents.open_upstream_incident(request)

    async def restore_incident(self, *, dedup_key: str, restored_at: datetime) -> str | None:
        """See ``IncidentService.restore_incident``."""
        return await self._incidents.restore_incident(dedup_key=dedup_key, restored_at=restored_at)

    async def open_incident_refs(self) -> dict[str, str]:
        """See ``IncidentService.open_incident_refs``."""
        return await self._incidents.open_incident_refs()

    async def report_ntu_status(self, updates: Sequence[NtuStatusUpdate]) -> None:
        """See ``IncidentService.report_ntu_status``."""
        await self._incidents.report_ntu_status(updates)
