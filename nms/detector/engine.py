"""The detector: runs every NTU's state machines and executes their actions.

Per NTU it holds the availability machine (``nms.detector.availability``: P1 on down)
and the quality machine (``nms.detector.degradation``: P2 on degraded or intermittent
service). ICMP and SNMP results are fused into one verdict by the pure rules of
``nms.detector.fusion``; this engine feeds the machines, executes their actions
through the case service (``nms.detector.cases``), and after every batch writes the
changed machine states to its own table and reports the changed public statuses of
the NTUs it saw to the case service (``IncidentSink.report_ntu_status``); the probe
figures alone of an NTU that stays up are written every ``refresh``. Time-based
rules cost what is due: a tick steps the entries whose ``stale_after`` deadline has
come (``nms.detector.deadlines``) and retries the case calls still pending.

A new state is kept only once its actions succeeded: if the case service fails, the
NTU stays where it was and the next event tries again (the calls are idempotent by
dedup key, so a retry never duplicates a case). The one exception is a confirmed
outage: the NTU is down whatever the case service says, so it is kept ``down`` with
its open pending. The P1s confirmed by one batch are opened together, in one call at
the end of the batch (a mass outage is one transaction); if that call fails they stay
pending and every tick retries them.

Topology: upstream nodes (``inventory.nodes``) are tracked like NTUs, in ``nodes``.
Every observation carries its ancestors' verdict (``nms.detector.topology``), and one batch
is applied parents first, so a child failing in the same cycle as its parent sees
the parent's new verdict. A node's ``OpenCase`` opens the internal upstream incident
(``node:<id>:down``) instead of an NTU case; after every batch the NTUs that became
``unreachable`` behind it are added to that incident (``nms.detector.upstream``). A
node's ``RestoreCase`` solves the incident and its linked cases. An NTU that stays
down afterwards opens its own P1, linked to the node's incident. No P2 is opened for
nodes.

P1 and P2 together: a P2 that is open when the NTU goes down is upgraded in place to
the P1 (``IncidentOpen.supersedes``): the customer keeps one case. While an NTU is not
``up`` no P2 opens, and its quality windows restart when it comes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.database import session_scope
from caseapi.incidents import IncidentSink, NtuStatusUpdate, ntu_degraded_key, ntu_down_key
from nms.bus.batch import Batch
from nms.clock import Clock
from nms.detector import degradation as quality
from nms.detector import fusion
from nms.detector.availability import (
    Event,
    NtuState,
    Observed,
    OpenCase,
    RestoreCase,
    Rules,
    Status,
    Tick,
    step,
)
from nms.detector.cases import CaseDesk, DetectorStats
from nms.detector.deadlines import StaleDeadlines
from nms.detector.fleet import Fleet, profile_thresholds
from nms.detector.progress import ProbeProgress
from nms.detector.settings import DegradedSettings
from nms.detector.store import (
    LastProbe,
    StoredState,
    load_states,
    must_save,
    save_states,
    write_states,
)
from nms.detector.tracked import Degraded, Tracked, status_due
from nms.detector.upstream import UpstreamIncidents
from nms.inventory.model import Inventory, NodeSpec
from probes.observation import PingResult, SnmpResult

__all__ = [
    "Detector",
    "DetectorStats",
    "StatusListener",
    "StatusWriter",
    "Tracked",
    "profile_thresholds",
]

log = logging.getLogger("nms.detector")

#: ``(ntu_id, previous status, new state, case reference)``; must not block.
StatusListener = Callable[[str, Status, NtuState, str | None], None]
#: Writes public statuses in the caller's transaction (``IncidentService.write_ntu_status``).
StatusWriter = Callable[[AsyncSession, Sequence[NtuStatusUpdate]], Awaitable[None]]


class Detector:
    """Feeds probe results and ticks to every NTU's machines and executes their actions."""

    def __init__(
        self,
        *,
        rules: Rules,
        degraded: DegradedSettings,
        clock: Clock,
        sink: IncidentSink,
        sessionmaker: async_sessionmaker[AsyncSession],
        icmp_enabled: bool = True,
        snmp_max_age: timedelta = timedelta(minutes=3),
        refresh: timedelta = timedelta(minutes=1),
        statuses: StatusWriter | None = None,
    ) -> None:
        """Args:
        rules: the availability thresholds (``detector.*`` settings).
        degraded: the default P2 thresholds (profiles override them).
        clock: the source of ``now``.
        sink: the case service (in process, over the bus or HTTP).
        sessionmaker: the database of the detector's own state.
        icmp_enabled: whether the ICMP loop runs at all (else SNMP alone decides).
        snmp_max_age: how long an SNMP verdict on the WAN interface stays valid
            (about two SNMP intervals); older, it no longer overrides ICMP.
        refresh: how often the probe figures of an NTU that stays up are written
            (``detector.refresh``; ``must_save``, ``must_report``).
        statuses: writes the statuses of a batch in a transaction on
            ``sessionmaker`` (``IncidentService.write_ntu_status``), when the case
            service's database is the detector's: the batch's states and statuses
            are then written in one transaction instead of two. None: they are
            reported through ``sink``.
        """
        self._icmp_enabled = icmp_enabled
        self._fusion = fusion.Rules(snmp_max_age=snmp_max_age)
        self._rules = rules
        self._degraded = degraded
        self._clock = clock
        self._sink = sink
        self._sessionmaker = sessionmaker
        self._fleet = Fleet()
        self.stats = DetectorStats()
        self._desk = CaseDesk(sink=sink, fleet=self._fleet, stats=self.stats)
        self._upstream = UpstreamIncidents(desk=self._desk, fleet=self._fleet, stats=self.stats)
        self._refresh = refresh
        self._statuses = statuses
        self._saved: dict[str, StoredState] = {}
        """What the database holds: a row is written only when its state differs."""
        self._reported: dict[str, NtuStatusUpdate] = {}
        """The public status last sent to the case service, per entry."""
        self._deadlines = StaleDeadlines(rules.stale_after)
        """Entries by when they go stale: a tick steps only those due."""
        self._progress = ProbeProgress(stale_after=rules.stale_after)
        """How far behind the probe data runs: staleness is judged that far back."""
        self._retry: set[str] = set()
        """Entries that may have a case call pending (retried every tick)."""
        self._dirty: set[str] = set()
        self._settling: dict[str, None] = {}
        """Entries with case actions of this batch, sent at its end (in order)."""
        self._changes: list[tuple[Tracked, Status, NtuState]] = []
        # One batch or tick at a time: the tick task and the batch consumer run
        # concurrently, and a batch's collected actions belong to that batch.
        self._lock = asyncio.Lock()
        #: Called on every status change (the distributed wiring publishes them).
        self.on_status: StatusListener | None = None
        # ntu id -> (behaviour "mute" | "skip", end of the covering maintenance)
        self._maintenance: dict[str, tuple[str, datetime]] = {}

    @property
    def ntus(self) -> dict[str, Tracked]:
        """The tracked NTUs, by id."""
        return self._fleet.ntus

    @property
    def nodes(self) -> dict[str, Tracked]:
        """The tracked upstream nodes, by id."""
        return self._fleet.nodes

    async def load(self, inventory: Inventory) -> None:
        """Resume from the database, then track the entries of ``inventory``.

        Raises:
            InventoryError: a service profile is invalid.
        """
        stored = await load_states(self._sessionmaker)
        self._saved = dict(stored)
        self._fleet.resume(stored)
        resumed = sum(1 for spec in inventory.ntus if spec.id in stored)
        self.set_inventory(inventory)
        self._adopt(await self._sink.open_incident_refs())
        down = sum(1 for t in self.ntus.values() if t.state.case_open)
        log.info(
            "detector resumed %d NTU states (%d with an open outage), %d new",
            resumed,
            down,
            len(self.ntus) - resumed,
        )

    def _adopt(self, open_cases: dict[str, str]) -> None:
        """Take over open incident cases the saved states do not know of.

        A case is committed before the NTU's new state is saved; a crash in between
        leaves a case the detector would never restore. Adopting it fixes that.
        """
        for ntu_id, tracked in self.ntus.items():
            down_ref = open_cases.get(ntu_down_key(ntu_id))
            if down_ref is not None and tracked.outage.ref is None:
                tracked.state = replace(tracked.state, case_open=True)
                tracked.outage = replace(tracked.outage, ref=down_ref, pending_open=None)
                self._dirty.add(ntu_id)
                log.warning("ntu=%s adopts open case %s after a restart", ntu_id, down_ref)
            elif tracked.state.case_open and tracked.outage.ref is None:
                # Confirmed before the restart, never opened: open it at the next tick.
                start = tracked.state.confirm_from or tracked.state.outage_start
                if start is not None:
                    pending = OpenCase(outage_start=start, detected_at=start)
                    tracked.outage = replace(tracked.outage, pending_open=pending)
                    self._retry.add(ntu_id)
            degraded_ref = open_cases.get(ntu_degraded_key(ntu_id))
            if degraded_ref is not None and tracked.degraded.ref is None:
                machine = quality.QualityState(degraded=True)
                tracked.degraded = replace(tracked.degraded, machine=machine, ref=degraded_ref)
                self._dirty.add(ntu_id)

    def set_inventory(self, inventory: Inventory) -> None:
        """Track exactly the entries of ``inventory``, keeping the state of known ones.

        Raises:
            InventoryError: a service profile is invalid (nothing changed).
        """
        thresholds = profile_thresholds(inventory, self._degraded)
        added = self._fleet.set_inventory(
            inventory, thresholds, NtuState.initial(self._clock.now())
        )
        # Entries tracked before are filed already, and their pending case calls are
        # in ``_retry`` (``_finish``): a reload costs what it added.
        for tracked in added:
            self._deadlines.file(tracked.spec.id, tracked.state)
            if tracked.pending_open or tracked.pending_restore:
                self._retry.add(tracked.spec.id)

    def set_maintenance(self, covered: dict[str, tuple[str, datetime]]) -> None:
        """The NTUs in an active maintenance window: id -> (behaviour, window end).

        No proactive case opens for them until the window ends (their probing goes
        on for ``mute``; the probe loops leave out ``skip``). Recovery is never hidden.
        """
        for ntu_id in covered.keys() - self._maintenance.keys():
            behaviour, until = covered[ntu_id]
            log.info(
                "ntu=%s in maintenance (%s) until %s: no proactive case",
                ntu_id,
                behaviour,
                until.isoformat(timespec="seconds"),
            )
        for ntu_id in self._maintenance.keys() - covered.keys():
            tracked = self.ntus.get(ntu_id)
            if tracked is not None and tracked.degraded.ref is None:
                # What the planned work did (reboots, loss) is not a degradation after it.
                machine = quality.reset(tracked.degraded.machine)
                tracked.degraded = replace(tracked.degraded, machine=machine)
        self._maintenance = dict(covered)

    def _mute_until(self, ntu_id: str, at: datetime) -> datetime | None:
        cover = self._maintenance.get(ntu_id)
        if cover is None or at >= cover[1]:
            return None
        return cover[1]

    # -- events ------------------------------------------------------------------------

    async def observe(self, batch: Batch) -> None:
        """Feed one batch of ICMP or SNMP results; send its case calls, persist it."""
        async with self._lock:
            now = self._clock.now()
            for result in self._fleet.ordered(batch.results):
                tracked = self._fleet.lookup(result.key)
                if tracked is None:
                    continue  # removed from the inventory while its probe was in flight
                if isinstance(result, PingResult):
                    self.stats.observations += 1
                    await self._on_ping(tracked, result, now)
                else:
                    self.stats.snmp_observations += 1
                    await self._on_snmp(tracked, result, now)
                self._dirty.add(result.key)
            if batch.results:
                newest = max(r.started_at for r in batch.results)
                self._progress.applied(type(batch).__name__, newest, now)
            await self._finish(now)

    async def tick(self) -> None:
        """Retry what the case service missed; evaluate time-based rules (staleness).

        Costs what is due, not the size of the fleet: the entries with a case call
        pending, and those whose ``stale_after`` deadline has come (``StaleDeadlines``).
        """
        async with self._lock:
            now = self._clock.now()
            pending = [i for i in self._retry if self._pending(i)]
            self._retry = set(pending)
            await self._settle(pending, now)
            self._retry = {i for i in pending if self._pending(i)}
            nodes = self._fleet.nodes
            # Judged where the probe data has got, not at the wall clock: a result
            # that is late is not missing (``nms.detector.progress``).
            judged = self._progress.judged_at(now)
            # Nodes first, then NTUs, as a batch is applied (parents first).
            due = self._deadlines.take_due(judged)
            for ident in sorted(due, key=lambda i: (i not in nodes, i)):
                tracked = self._fleet.lookup(ident)
                if tracked is None:
                    continue  # left the inventory
                if await self._apply(tracked, Tick(), judged):
                    self._dirty.add(ident)
                self._deadlines.file(ident, tracked.state)
            await self._finish(now)

    def _pending(self, ident: str) -> bool:
        tracked = self._fleet.lookup(ident)
        return tracked is not None and bool(tracked.pending_open or tracked.pending_restore)

    async def _on_ping(self, tracked: Tracked, result: PingResult, now: datetime) -> None:
        tracked.last_probe = LastProbe(
            rtt_avg=result.rtt_avg, loss=result.loss, jitter=result.jitter
        )
        fused = fusion.on_ping(tracked.signals, result, rules=self._fusion)
        tracked.signals = fused.signals
        if fused.icmp_filtered is False:
            log.info("ntu=%s answers ICMP again", tracked.spec.id)
        await self._quality(tracked, quality.Reachability(result.started_at, result.reachable), now)
        if fused.ok is not None:
            await self._apply(tracked, self._observed(tracked, result.started_at, fused.ok), now)
        if fused.burst and tracked.state.status == Status.UP:
            burst = quality.Burst(result.started_at, result.sent, result.received, result.rtt_avg)
            await self._quality(tracked, burst, now)

    async def _on_snmp(self, tracked: Tracked, result: SnmpResult, now: datetime) -> None:
        spec = tracked.spec
        fused = fusion.on_snmp(
            tracked.signals,
            result,
            rules=self._fusion,
            icmp_probed=self._icmp_enabled and spec.probe.icmp.enabled,
            last_observation_at=tracked.state.last_observation_at,
        )
        tracked.signals = fused.signals
        if fused.reboot is not None:
            self.stats.reboots += 1
            log.warning(
                "ntu=%s rebooted at about %s (sysUpTime went from %d to %d); no case",
                spec.id,
                fused.reboot.at.isoformat(timespec="seconds"),
                fused.reboot.uptime_before,
                fused.reboot.uptime_after,
            )
        if fused.icmp_filtered:
            log.warning(
                "ntu=%s does not answer ICMP but SNMP answers: ICMP filtered, not an outage",
                spec.id,
            )
        if fused.wan_admin_down:
            log.warning("ntu=%s WAN interface administratively down (no case)", spec.id)
        if fused.ok is not None:
            await self._apply(tracked, self._observed(tracked, result.started_at, fused.ok), now)
        errors = fused.rates.errors_per_second if fused.rates is not None else None
        if errors is not None and tracked.state.status == Status.UP:
            await self._quality(tracked, quality.ErrorRate(result.started_at, errors), now)

    def _observed(self, tracked: Tracked, at: datetime, ok: bool) -> Observed:
        verdict = self._fleet.verdict(tracked.spec.id)
        return Observed(
            at=at,
            ok=ok,
            mute_until=self._mute_until(tracked.spec.id, at),
            upstream=verdict.upstream,
            upstream_since=verdict.since,
        )

    # -- the availability machine -------------------------------------------------------

    async def _apply(self, tracked: Tracked, event: Event, now: datetime) -> bool:
        new, actions = step(tracked.state, event, now, self._rules)
        if new == tracked.state:
            return False
        spec = tracked.spec
        outage = tracked.outage
        for action in actions:
            if isinstance(action, OpenCase) and isinstance(spec, NodeSpec):
                tracked.upstream = replace(tracked.upstream, detected_at=action.detected_at)
                ref = await self._upstream.open(tracked, new, now)
                if ref is None:
                    return False
                outage = replace(outage, ref=ref)
            elif isinstance(action, OpenCase):
                # The outage is real even if the case service is not reachable now: the
                # NTU is down with its open pending, sent with the batch's others.
                outage = replace(outage, pending_open=action, pending_restore=None)
                self._settling[spec.id] = None
            elif isinstance(action, RestoreCase):
                # The NTU is back whatever the case service says: the state moves on,
                # the restore is sent at the end of the batch (retried every tick).
                outage = replace(outage, pending_restore=action)
                self._settling[spec.id] = None
                # The outage's lost bursts must not count as degradation afterwards.
                machine = quality.reset(tracked.degraded.machine)
                tracked.degraded = replace(tracked.degraded, machine=machine)
            else:
                log.warning(
                    "ntu=%s no probe data since %s: unknown (NOC alert, no case)",
                    spec.id,
                    action.last_observation_at,
                )
        previous = tracked.state.status
        if new.status != previous and new.status == Status.SUSPECT:
            start = new.outage_start.isoformat(timespec="seconds") if new.outage_start else "?"
            muted = isinstance(event, Observed) and event.mute_until is not None
            log.info(
                "ntu=%s not answering since %s: suspect%s",
                spec.id,
                start,
                " (in maintenance: no case before the window ends)" if muted else "",
            )
        if new.status == Status.UNREACHABLE:
            blocker = self._fleet.verdict(spec.id).blocker
            if previous != Status.UNREACHABLE:
                log.info("ntu=%s unreachable behind %s (no case of its own)", spec.id, blocker)
            blocked = blocker or tracked.upstream.blocked_by
            tracked.upstream = replace(tracked.upstream, blocked_by=blocked)
        elif new.status == Status.UP and tracked.upstream.blocked_by is not None:
            tracked.upstream = replace(tracked.upstream, blocked_by=None)
        tracked.state, tracked.outage = new, outage
        self._deadlines.file(spec.id, new)
        if new.status != previous:
            self._changes.append((tracked, previous, new))
        return True

    # -- the quality machine ------------------------------------------------------------

    async def _quality(self, tracked: Tracked, sample: quality.Sample, now: datetime) -> None:
        if isinstance(tracked.spec, NodeSpec):
            return  # no P2 for upstream nodes
        p2 = tracked.degraded
        new, actions = quality.step(p2.machine, sample, now, tracked.thresholds)
        ref, reasons = p2.ref, p2.reasons
        for action in actions:
            if isinstance(action, quality.OpenDegraded):
                if tracked.state.case_open:
                    new = quality.reset(new)  # the P1 is the case; nothing more to say
                    continue
                if (
                    tracked.state.status != Status.UP
                    or ref
                    or self._mute_until(tracked.spec.id, now) is not None
                ):
                    # Not while the NTU is (maybe) down or in maintenance: decide again
                    # at the next sample.
                    new = replace(new, degraded=ref is not None)
                    continue
                opened = await self._desk.open_degraded(tracked, action, now)
                if opened is None:
                    # Keep the old quality state; the next sample retries.
                    tracked.degraded = replace(p2, ref=ref, reasons=reasons)
                    return
                ref, reasons = opened, ",".join(sorted(action.reasons))
            elif ref is not None:
                tracked.degraded = replace(p2, ref=ref, reasons=reasons)
                if not await self._desk.restore_degraded(tracked, action.at):
                    return
                ref = reasons = None
        # Built directly: ``replace`` costs several times more, for every sample.
        tracked.degraded = Degraded(machine=new, ref=ref, reasons=reasons)
        self._dirty.add(tracked.spec.id)

    # -- plumbing -----------------------------------------------------------------------

    async def _finish(self, now: datetime) -> None:
        """End of a batch or tick: send its case calls, tell listeners, persist."""
        ids, self._settling = list(self._settling), {}
        self._retry.update(ids)  # until the case service took them (``tick``)
        await self._settle(ids, now)
        self._dirty |= await self._upstream.sync(now)
        changes, self._changes = self._changes, []
        if self.on_status is not None:
            for tracked, previous, new in changes:
                self.on_status(tracked.spec.id, previous, new, tracked.outage.ref)
        await self._persist()

    async def _settle(self, ids: Iterable[str], now: datetime) -> None:
        """Send what the case service has not recorded yet: the opens (the NTUs' in one
        call), then the restores of the entries whose case is open (in one call)."""
        items = [t for t in map(self._fleet.lookup, ids) if t is not None]
        opening = [t for t in items if t.outage.pending_open is not None]
        ntus = [t for t in opening if not isinstance(t.spec, NodeSpec)]
        if ntus and await self._desk.open_outages(ntus):
            self._dirty.update(t.spec.id for t in ntus)
        for node in (t for t in opening if isinstance(t.spec, NodeSpec)):
            ref = await self._upstream.open(node, node.state, now)
            if ref is not None:
                node.outage = replace(node.outage, ref=ref, pending_open=None)
                self._dirty.add(node.spec.id)
        restoring = [t for t in items if t.outage.pending_open is None]
        self._dirty.update(t.spec.id for t in await self._desk.restore_outages(restoring))

    async def _persist(self, *, everything: bool = False) -> None:
        """Write the changed machine states, then report the changed public statuses
        of the batch's entries; on failure they stay dirty for the next try.

        A change in the probe figures alone of an NTU that stays up waits until they
        are ``refresh`` newer (``must_save``, ``must_report``); ``everything`` writes
        those too (``flush``).
        """
        ids, self._dirty = self._dirty, set()
        items = [t for t in map(self._fleet.lookup, ids) if t is not None]
        if not items:
            return
        refresh = timedelta(0) if everything else self._refresh
        try:
            changed: list[tuple[str, StoredState]] = []
            reports: list[NtuStatusUpdate] = []
            saved, reported = self._saved, self._reported
            for tracked in items:
                ident = tracked.spec.id
                stored = tracked.stored()
                if must_save(saved.get(ident), stored, refresh):
                    changed.append((ident, stored))
                public = status_due(tracked, reported.get(ident), refresh)
                if public is not None:
                    reports.append(public)
            if self._statuses is None:
                await save_states(self._sessionmaker, changed)
                self._saved.update(changed)
                await self._sink.report_ntu_status(reports)
            elif changed or reports:
                # One transaction: both are written, or neither (and both retried).
                async with session_scope(self._sessionmaker, write=True) as session:
                    await write_states(session, changed)
                    await self._statuses(session, reports)
                    await session.commit()
                self._saved.update(changed)
            self._reported.update((r.ntu_id, r) for r in reports)
        except BaseException:
            self._dirty |= ids  # saved (or reported) next time
            raise

    async def flush(self) -> None:
        """Write every state and status not written yet (at a clean stop): the probe
        figures that ``refresh`` held back."""
        async with self._lock:
            self._dirty.update(t.spec.id for t in self._fleet.everything())
            await self._persist(everything=True)

    def counts(self) -> dict[Status, int]:
        """NTUs by status."""
        return self._fleet.counts()
