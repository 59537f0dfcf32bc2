"""Upstream incidents: one internal P1 per node outage, listing the NTUs behind it.

A node's ``OpenCase`` opens its upstream incident (``node:<id>:down``) with the NTUs
seen unreachable behind it so far; after every batch the NTUs that became
unreachable since are added (the case service opens one linked case per affected
customer). The node's ``RestoreCase`` solves the incident and its linked cases
(``CaseDesk.restore_outages``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from caseapi.incidents import Affected, UpstreamOpen
from nms.detector import topology
from nms.detector.availability import NtuState
from nms.detector.cases import CaseDesk, DetectorStats
from nms.detector.fleet import Fleet
from nms.detector.tracked import Tracked
from nms.inventory.model import NodeSpec

log = logging.getLogger("nms.detector")


class UpstreamIncidents:
    """Opens and extends the upstream incidents of the fleet's nodes."""

    def __init__(self, *, desk: CaseDesk, fleet: Fleet, stats: DetectorStats) -> None:
        self._desk = desk
        self._fleet = fleet
        self._stats = stats

    async def open(self, tracked: Tracked, state: NtuState, now: datetime) -> str | None:
        """Open (or extend) the incident of node ``tracked`` in ``state``.

        Returns:
            The incident's reference, or None if the case service failed (retried).
        """
        ok, ref = await self._desk.call(f"node={tracked.spec.id}", self._open(tracked, state, now))
        return ref if ok else None

    async def _open(self, tracked: Tracked, state: NtuState, now: datetime) -> str:
        spec = tracked.spec
        assert isinstance(spec, NodeSpec)
        affected = self._fleet.affected(spec.id)
        start = state.confirm_from or state.outage_start or now
        ref = await self._desk.sink.open_upstream_incident(
            UpstreamOpen(
                node_id=spec.id,
                dedup_key=topology.node_down_key(spec.id),
                site=spec.site,
                outage_start=start,
                detected_at=tracked.upstream.detected_at or now,
                summary=f"Node {spec.id} ({spec.kind}, {spec.address}) down since "
                f"{start.isoformat(timespec='seconds')}",
                affected=tuple(Affected(n, c) for n, c in sorted(affected.items())),
            )
        )
        reported = tracked.upstream.reported
        if reported is None:
            self._stats.cases_opened += 1
            log.info("node=%s down since %s: upstream P1 case %s", spec.id, start, ref)
        if reported != frozenset(affected):
            log.info(
                "node=%s upstream case %s: %d NTUs of %d customers unreachable",
                spec.id,
                ref,
                len(affected),
                len(set(affected.values())),
            )
        tracked.upstream = replace(tracked.upstream, reported=frozenset(affected))
        return ref

    async def sync(self, now: datetime) -> set[str]:
        """Add the NTUs that became unreachable to their node's upstream incident.

        Returns:
            The ids of the nodes whose record changed.
        """
        changed = set()
        for tracked in self._fleet.nodes.values():
            if not tracked.state.case_open:
                continue
            if tracked.upstream.reported == frozenset(self._fleet.affected(tracked.spec.id)):
                continue
            ref = await self.open(tracked, tracked.state, now)
            if ref is not None:
                tracked.outage = replace(tracked.outage, ref=ref)
                changed.add(tracked.spec.id)
        return changed
