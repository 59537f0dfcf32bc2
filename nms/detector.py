"""The detector: runs every NTU's state machine and executes its actions.

It holds the working copy of each NTU's state, feeds it probe results and ticks
(``nms.ntu.step``), calls the case service for ``OpenCase`` / ``RestoreCase``, and
writes every changed state to the database before the next batch. A new state is
kept only once its actions succeeded: if the case service fails, the NTU stays
where it was and the next observation tries again (the calls are idempotent by
dedup key, so a retry never duplicates a case).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from nms.clock import Clock
from nms.inventory import Inventory, NtuSpec
from nms.ntu import Event, NtuState, Observed, OpenCase, RestoreCase, Rules, Status, Tick, step
from nms.outage import CaseSink, IncidentOpen, ntu_down_key
from nms.store import LastProbe, StoredState, load_states, save_states
from probes.observation import PingResult

log = logging.getLogger("nms.detector")


@dataclass(slots=True)
class Tracked:
    spec: NtuSpec
    state: NtuState
    case_ref: str | None = None
    last_probe: LastProbe | None = None


@dataclass(slots=True)
class DetectorStats:
    cases_opened: int = 0
    cases_restored: int = 0
    case_errors: int = 0
    observations: int = 0


class Detector:
    def __init__(
        self,
        *,
        rules: Rules,
        clock: Clock,
        sink: CaseSink,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        self._rules = rules
        self._clock = clock
        self._sink = sink
        self._sessionmaker = sessionmaker
        self._stored: dict[str, StoredState] = {}
        self.ntus: dict[str, Tracked] = {}
        self._dirty: set[str] = set()
        self.stats = DetectorStats()

    async def load(self, inventory: Inventory) -> None:
        """Resume from the database, then track the NTUs of ``inventory``."""
        self._stored = await load_states(self._sessionmaker)
        resumed = sum(1 for spec in inventory.ntus if spec.id in self._stored)
        self.set_inventory(inventory)
        down = sum(1 for t in self.ntus.values() if t.state.case_open)
        log.info(
            "detector resumed %d NTU states (%d with an open outage), %d new",
            resumed,
            down,
            len(self.ntus) - resumed,
        )

    def set_inventory(self, inventory: Inventory) -> None:
        """Track exactly the NTUs of ``inventory``, keeping the state of known ones."""
        now = self._clock.now()
        tracked: dict[str, Tracked] = {}
        for spec in inventory.ntus:
            current = self.ntus.get(spec.id)
            if current is not None:
                current.spec = spec
                tracked[spec.id] = current
                continue
            stored = self._stored.get(spec.id)
            if stored is not None:
                tracked[spec.id] = Tracked(spec, stored.state, stored.case_ref)
            else:
                tracked[spec.id] = Tracked(spec, NtuState.initial(now))
        for gone in set(self.ntus) - set(tracked):
            old = self.ntus[gone]
            self._stored[gone] = StoredState(old.state, old.case_ref)
        self.ntus = tracked

    async def observe(self, results: Iterable[PingResult]) -> None:
        """Feed one batch of probe results; persist what changed."""
        now = self._clock.now()
        for result in results:
            tracked = self.ntus.get(result.key)
            if tracked is None:
                continue  # removed from the inventory while its probe was in flight
            self.stats.observations += 1
            tracked.last_probe = LastProbe(
                rtt_avg=result.rtt_avg, loss=result.loss, jitter=result.jitter
            )
            event = Observed(at=result.started_at, ok=result.reachable)
            await self._apply(tracked, event, now)
            self._dirty.add(result.key)
        await self._persist()

    async def tick(self) -> None:
        """Evaluate time-based rules (staleness) for every NTU."""
        now = self._clock.now()
        for ntu_id, tracked in self.ntus.items():
            if await self._apply(tracked, Tick(), now):
                self._dirty.add(ntu_id)
        await self._persist()

    async def _apply(self, tracked: Tracked, event: Event, now: datetime) -> bool:
        new, actions = step(tracked.state, event, now, self._rules)
        if new == tracked.state:
            return False
        case_ref = tracked.case_ref
        spec = tracked.spec
        for action in actions:
            try:
                if isinstance(action, OpenCase):
                    case_ref = await self._open_case(spec, action)
                elif isinstance(action, RestoreCase):
                    await self._sink.restore_incident(
                        dedup_key=ntu_down_key(spec.id), restored_at=action.restored_at
                    )
                    self.stats.cases_restored += 1
                    log.info(
                        "ntu=%s restored at %s; case %s solved",
                        spec.id,
                        action.restored_at.isoformat(timespec="seconds"),
                        case_ref,
                    )
                    case_ref = None
                else:
                    log.warning(
                        "ntu=%s no probe data since %s: unknown (NOC alert, no case)",
                        spec.id,
                        action.last_observation_at,
                    )
            except Exception:
                # Keep the old state: the next event retries, idempotently.
                self.stats.case_errors += 1
                log.exception("ntu=%s case service call failed; will retry", spec.id)
                return False
        if new.status != tracked.state.status and new.status == Status.SUSPECT:
            log.info("ntu=%s not answering since %s: suspect", spec.id, new.outage_start)
        tracked.state = new
        tracked.case_ref = case_ref
        return True

    async def _open_case(self, spec: NtuSpec, action: OpenCase) -> str:
        request = IncidentOpen(
            dedup_key=ntu_down_key(spec.id),
            priority="P1",
            ntu_id=spec.id,
            customer_id=spec.customer,
            service_id=spec.service_id,
            site=spec.site,
            outage_start=action.outage_start,
            detected_at=action.detected_at,
            summary=f"NTU {spec.id} ({spec.address}) down: no answer since "
            f"{action.outage_start.isoformat(timespec='seconds')}",
        )
        ref = await self._sink.open_incident(request)
        self.stats.cases_opened += 1
        delay = (action.detected_at - action.outage_start).total_seconds()
        log.info(
            "ntu=%s down since %s (%.0f s): P1 case %s",
            spec.id,
            action.outage_start.isoformat(timespec="seconds"),
            delay,
            ref,
        )
        return ref

    async def _persist(self) -> None:
        """Write every changed state; on failure they stay dirty for the next try."""
        dirty = [self.ntus[i] for i in self._dirty if i in self.ntus]
        if dirty:
            await save_states(
                self._sessionmaker,
                ((t.spec.id, StoredState(t.state, t.case_ref), t.last_probe) for t in dirty),
            )
        self._dirty.clear()

    def counts(self) -> dict[Status, int]:
        counts = dict.fromkeys(Status, 0)
        for tracked in self.ntus.values():
            counts[tracked.state.status] += 1
        return counts
