"""The one narrow interface from a detector to the case service.

A detector (ours, ``nms``, or any other) calls an ``IncidentSink``: in-process in the
embedded wiring, over the bus or HTTP in the distributed one. Every call is
idempotent by ``dedup_key``: calling twice has the effect of calling once.

Upstream outages (``open_upstream_incident``): one internal P1 per node outage
(``node:<id>:down``, no customer) listing the affected NTUs, and one case per affected
customer (``node:<id>:down:customer:<cid>``) linked to it. Restoring the upstream
incident solves its linked customer cases too.

The detector also reports each NTU's public status (``report_ntu_status``), which the
API shows and the case rules read; it never touches the case service's tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, Protocol

from caseapi.ntus.status import NtuStatusUpdate

Priority = Literal["P1", "P2", "P3"]

#: The dedup keys of NTU incidents (``ntu:<id>:down``, ``ntu:<id>:degraded``).
NTU_KEY_PREFIX: Final = "ntu:"


def ntu_down_key(ntu_id: str) -> str:
    """The dedup key of an NTU's down (P1) outage."""
    return f"ntu:{ntu_id}:down"


def ntu_degraded_key(ntu_id: str) -> str:
    """The dedup key of an NTU's degraded (P2) service."""
    return f"ntu:{ntu_id}:degraded"


def node_down_key(node_id: str) -> str:
    """The dedup key of an upstream node's outage."""
    return f"node:{node_id}:down"


@dataclass(frozen=True, slots=True)
class IncidentOpen:
    """Open (or find the open) proactive incident for an outage."""

    dedup_key: str
    priority: Priority
    ntu_id: str | None
    customer_id: str | None
    service_id: str | None
    site: str | None
    outage_start: datetime
    detected_at: datetime
    summary: str
    supersedes: str | None = None
    """Dedup key of a lower-priority open case for the same NTU (``ntu:<id>:degraded``)
    that this incident upgrades in place instead of opening a second case: the
    customer keeps one case, its priority raised and its key changed to this one."""
    parent_key: str | None = None
    """Dedup key of the upstream incident this case is linked to (the latest case
    with that key): an NTU that stayed down after its upstream node recovered."""


@dataclass(frozen=True, slots=True)
class IncidentRestore:
    """Solve the open case of an outage that ended (one item of ``restore_incidents``)."""

    dedup_key: str
    restored_at: datetime
    """When service came back, as the probes saw it (timezone-aware)."""


@dataclass(frozen=True, slots=True)
class Affected:
    """One NTU behind an upstream outage."""

    ntu_id: str
    customer_id: str


@dataclass(frozen=True, slots=True)
class UpstreamOpen:
    """Open (or extend) the internal incident of an upstream node outage."""

    node_id: str
    dedup_key: str
    site: str | None
    outage_start: datetime
    detected_at: datetime
    summary: str
    affected: tuple[Affected, ...]
    """The NTUs behind it seen unreachable so far; later calls add to the list."""


class IncidentSink(Protocol):
    """What a detector calls; ``caseapi.incidents.IncidentService`` implements it."""

    async def open_incident(self, request: IncidentOpen) -> str:
        """Return the reference of the open case for ``request.dedup_key``.

        Creates it when none is open; a solved case still in its monitoring window
        goes back to work instead (recurrence).
        """
        ...

    async def open_incidents(self, requests: Sequence[IncidentOpen]) -> list[str]:
        """``open_incident`` for each request, in one transaction where possible.

        Returns the references in request order.
        """
        ...

    async def restore_incident(self, *, dedup_key: str, restored_at: datetime) -> str | None:
        """Mark the open case for ``dedup_key`` solved; return its reference, if any.

        An upstream incident's linked customer cases are solved with it.
        """
        ...

    async def restore_incidents(self, requests: Sequence[IncidentRestore]) -> list[str | None]:
        """``restore_incident`` for each request, in one transaction where possible.

        Returns the references (``None``: no open case for the key) in request order.
        """
        ...

    async def open_upstream_incident(self, request: UpstreamOpen) -> str:
        """Return the reference of the open upstream incident, creating it and one
        linked case per affected customer as needed (affected NTUs accumulate)."""
        ...

    async def open_incident_refs(self) -> dict[str, str]:
        """Dedup key -> reference of every NTU incident still being worked."""
        ...

    async def report_ntu_status(self, updates: Sequence[NtuStatusUpdate]) -> None:
        """Store the public status of the NTUs in ``updates``."""
        ...
