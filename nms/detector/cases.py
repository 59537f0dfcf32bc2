"""The detector's calls to the case service, and what it keeps when one fails.

Every call goes through ``CaseDesk.call``: a failure is logged and counted, and the
caller keeps its old record, so the next batch or tick sends the call again. The
calls are idempotent by dedup key, so a retry never duplicates a case.

The P1s confirmed by one batch are opened in one ``open_incidents`` call: a mass
outage (thousands of NTUs losing power in the same cycle) costs one case-service
transaction, not one per NTU. So are the restorations (``restore_incidents``): when
the power comes back, the batch that sees the NTUs up solves their cases in one call.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from caseapi.incidents import (
    IncidentOpen,
    IncidentRestore,
    IncidentSink,
    Priority,
    ntu_degraded_key,
    ntu_down_key,
)
from nms.detector import degradation as quality
from nms.detector.availability import OpenCase
from nms.detector.fleet import Fleet, down_key
from nms.detector.tracked import Degraded, Outage, Tracked
from nms.inventory.model import NodeSpec, NtuSpec

log = logging.getLogger("nms.detector")

T = TypeVar("T")


@dataclass(slots=True)
class DetectorStats:
    """Counters since the start (exported as ``nms_detector_*_total``)."""

    cases_opened: int = 0
    degraded_opened: int = 0
    cases_restored: int = 0
    case_errors: int = 0
    observations: int = 0
    snmp_observations: int = 0
    reboots: int = 0


class CaseDesk:
    """Sends the P1 and P2 calls of the detector's actions and records the answers."""

    def __init__(self, *, sink: IncidentSink, fleet: Fleet, stats: DetectorStats) -> None:
        self.sink = sink
        self._fleet = fleet
        self._stats = stats

    async def call(self, what: str, call: Awaitable[T]) -> tuple[bool, T | None]:
        """Await a case-service call; on failure log, count, and report not-ok.

        Args:
            what: the subject for the log line (``ntu=n1``, ``node=pop1``, ...).
            call: the pending call.
        """
        try:
            return True, await call
        except Exception:
            self._stats.case_errors += 1
            log.exception("%s case service call failed; will retry", what)
            return False, None

    # -- P1 ------------------------------------------------------------------------------

    async def open_outages(self, items: Sequence[Tracked]) -> bool:
        """Open the pending P1 of every NTU in ``items`` in one call.

        On success each gets its case reference and loses its pending open (and its
        P2, upgraded in place); on failure nothing changes and the opens stay pending.
        """
        requests = []
        for tracked in items:
            assert tracked.outage.pending_open is not None
            requests.append(self._down_request(tracked, tracked.outage.pending_open))
        if not requests:
            return True
        what = f"ntu={items[0].spec.id}" + (f" (+{len(items) - 1} more)" if len(items) > 1 else "")
        ok, refs = await self.call(what, self.sink.open_incidents(requests))
        if not ok or refs is None:
            return False
        if len(refs) != len(requests):
            self._stats.case_errors += 1
            log.error(
                "%s: %d references for %d incidents; will retry", what, len(refs), len(requests)
            )
            return False
        for tracked, request, ref in zip(items, requests, refs, strict=True):
            self._opened(tracked, request, ref)
        return True

    def _down_request(self, tracked: Tracked, action: OpenCase) -> IncidentOpen:
        spec = tracked.spec
        return ntu_incident(
            spec,
            dedup_key=ntu_down_key(spec.id),
            priority="P1",
            outage_start=action.outage_start,
            detected_at=action.detected_at,
            summary=f"down: no service since {action.outage_start.isoformat(timespec='seconds')}",
            supersedes=ntu_degraded_key(spec.id) if tracked.degraded.ref else None,
            parent_key=self._fleet.parent_key(tracked.upstream.blocked_by),
        )

    def _opened(self, tracked: Tracked, request: IncidentOpen, ref: str) -> None:
        self._stats.cases_opened += 1
        delay = (request.detected_at - request.outage_start).total_seconds()
        log.info(
            "ntu=%s down since %s (%.0f s): P1 case %s%s",
            tracked.spec.id,
            request.outage_start.isoformat(timespec="seconds"),
            delay,
            ref,
            f" (upgraded from P2 {tracked.degraded.ref})" if request.supersedes else "",
        )
        tracked.outage = replace(tracked.outage, ref=ref, pending_open=None)
        # The P1 is the case now: the P2 (if any) became it, its windows restart.
        tracked.degraded = Degraded(machine=quality.reset(tracked.degraded.machine))

    async def restore_outages(self, items: Sequence[Tracked]) -> list[Tracked]:
        """Send the pending restoration of every entry in ``items`` in one call.

        Returns the entries the service took: each loses its case reference and its
        pending restoration. On failure nothing changes and they stay pending.
        """
        pending = [t for t in items if t.outage.pending_restore is not None]
        requests = []
        for tracked in pending:
            assert tracked.outage.pending_restore is not None
            restored_at = tracked.outage.pending_restore.restored_at
            requests.append(
                IncidentRestore(dedup_key=down_key(tracked.spec), restored_at=restored_at)
            )
        if not requests:
            return []
        what = _subject(pending[0].spec) + (
            f" (+{len(pending) - 1} more)" if len(pending) > 1 else ""
        )
        ok, refs = await self.call(what, self.sink.restore_incidents(requests))
        if not ok or refs is None:
            return []
        if len(refs) != len(requests):
            self._stats.case_errors += 1
            log.error(
                "%s: %d answers for %d restorations; will retry", what, len(refs), len(requests)
            )
            return []
        for tracked, request in zip(pending, requests, strict=True):
            self._restored(tracked, request)
        return pending

    def _restored(self, tracked: Tracked, request: IncidentRestore) -> None:
        self._stats.cases_restored += 1
        log.info(
            "%s restored at %s; case %s solved",
            _subject(tracked.spec),
            request.restored_at.isoformat(timespec="seconds"),
            tracked.outage.ref,
        )
        tracked.outage = Outage()
        tracked.upstream = replace(tracked.upstream, reported=None)

    # -- P2 ------------------------------------------------------------------------------

    async def open_degraded(
        self, tracked: Tracked, action: quality.OpenDegraded, now: datetime
    ) -> str | None:
        """Open the P2 of ``tracked``; its reference, or None if the call failed."""
        spec = tracked.spec
        request = ntu_incident(
            spec,
            dedup_key=ntu_degraded_key(spec.id),
            priority="P2",
            outage_start=action.start,
            detected_at=now,
            summary=f"degraded: {action.detail}",
        )
        ok, ref = await self.call(_subject(spec), self.sink.open_incident(request))
        if not ok or ref is None:
            return None
        self._stats.degraded_opened += 1
        log.info(
            "ntu=%s degraded since %s (%s): P2 case %s",
            spec.id,
            action.start.isoformat(timespec="seconds"),
            action.detail,
            ref,
        )
        return ref

    async def restore_degraded(self, tracked: Tracked, at: datetime) -> bool:
        """Solve the P2 of ``tracked``; True if the service took it."""
        spec = tracked.spec
        ok, _ = await self.call(
            _subject(spec),
            self.sink.restore_incident(dedup_key=ntu_degraded_key(spec.id), restored_at=at),
        )
        if not ok:
            return False
        self._stats.cases_restored += 1
        log.info(
            "ntu=%s service quality normal since %s; P2 case %s solved",
            spec.id,
            at.isoformat(timespec="seconds"),
            tracked.degraded.ref,
        )
        return True


def _subject(spec: NtuSpec) -> str:
    return f"node={spec.id}" if isinstance(spec, NodeSpec) else f"ntu={spec.id}"


def ntu_incident(
    spec: NtuSpec,
    *,
    dedup_key: str,
    priority: Priority,
    outage_start: datetime,
    detected_at: datetime,
    summary: str,
    supersedes: str | None = None,
    parent_key: str | None = None,
) -> IncidentOpen:
    """The case service request for one NTU's incident (P1 down or P2 degraded)."""
    return IncidentOpen(
        dedup_key=dedup_key,
        priority=priority,
        ntu_id=spec.id,
        customer_id=spec.customer,
        service_id=spec.service_id,
        site=spec.site,
        outage_start=outage_start,
        detected_at=detected_at,
        summary=f"NTU {spec.id} ({spec.address}) {summary}",
        supersedes=supersedes,
        parent_key=parent_key,
    )
