"""The detector: runs every NTU's state machines and executes their actions.

Per NTU it holds the availability machine (``nms.detector.availability``: P1 on down)
and the quality machine (``nms.detector.degradation``: P2 on degraded or intermittent
service), feeds them ICMP and SNMP results and ticks, calls the case service for the
resulting actions, and writes every changed state to the database before the next batch.

How ICMP and SNMP combine into "is the service up":

* ICMP answers -> up, unless the last SNMP poll says the WAN interface is down
  while administratively up: the management plane answers but the customer's
  service does not -> a failure (P1 after ``down_after``).
* ICMP fails but SNMP answers -> up, and the NTU is flagged ``icmp_filtered`` (ICMP
  dropped on the way, not an outage); while flagged, SNMP alone decides.
* SNMP fails while ICMP answers -> nothing (SNMP filtered or a slow agent).
* WAN interface administratively down -> not a customer outage; flagged for the NOC.
* sysUpTime going backwards (not a 32-bit wrap) -> a reboot, recorded, no case.

A new state is kept only once its actions succeeded: if the case service fails, the
NTU stays where it was and the next event tries again (the calls are idempotent by
dedup key, so a retry never duplicates a case).

Topology: upstream nodes (``inventory.nodes``) are tracked like NTUs, in ``nodes``.
Every observation carries its ancestors' verdict (``nms.detector.topology``), and one batch
is applied parents first, so a child failing in the same cycle as its parent sees
the parent's new verdict. A node's ``OpenCase`` opens the internal upstream incident
(``node:<id>:down``) instead of an NTU case; after every batch the NTUs that became
``unreachable`` behind it are added to that incident (one linked case per affected
customer). A node's ``RestoreCase`` solves the incident and its linked cases. An
NTU that stays down afterwards opens its own P1, linked to the node's incident.
No P2 is opened for nodes.

P1 and P2 together: a P2 that is open when the NTU goes down is upgraded in place to
the P1 (``IncidentOpen.supersedes``): the customer keeps one case. While an NTU is not
``up`` no P2 opens, and its quality windows restart when it comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from nms.app.settings import DegradedSettings
from nms.clock import Clock
from nms.detector import degradation as quality
from nms.detector import topology
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
from nms.detector.signals import rates, rebooted, wan_admin_down, wan_service_down
from nms.detector.store import (
    LastProbe,
    SnmpView,
    StoredState,
    load_open_incidents,
    load_states,
    save_states,
)
from nms.errors import InventoryError
from nms.inventory.loader import Inventory, NodeSpec, NtuSpec
from nms.outage import (
    Affected,
    CaseSink,
    IncidentOpen,
    Priority,
    UpstreamOpen,
    ntu_degraded_key,
    ntu_down_key,
)
from probes.observation import PingResult, SnmpResult

log = logging.getLogger("nms.detector")

T = TypeVar("T")

_REASONS = frozenset(r.value for r in quality.Reason)

# Consecutive failed ICMP bursts, while SNMP answers, before ICMP counts as filtered.
_ICMP_FILTERED_AFTER = 2


@dataclass(slots=True)
class Tracked:
    spec: NtuSpec
    state: NtuState
    thresholds: quality.Thresholds
    case_ref: str | None = None
    pending_open: OpenCase | None = None
    """A confirmed outage whose case could not be opened yet: retried every tick."""
    pending_restore: RestoreCase | None = None
    """A restoration the case service has not recorded yet: retried every tick (in
    memory only; after a restart the open case is adopted and restored again, with
    the first good probe after the restart as its end)."""
    last_probe: LastProbe | None = None
    quality: quality.QualityState = field(default_factory=quality.QualityState)
    degraded_case_ref: str | None = None
    degraded_reasons: str | None = None
    snmp: SnmpView = field(default_factory=SnmpView)
    last_snmp: SnmpResult | None = None
    icmp_fail_streak: int = 0
    last_icmp_fail_at: datetime | None = None
    blocked_by: str | None = None
    """The upstream node whose outage made this NTU unreachable (until it is up)."""
    reported: frozenset[str] | None = None
    """For a node with an open outage: the affected NTUs its incident lists."""
    detected_at: datetime | None = None

    def stored(self) -> StoredState:
        return StoredState(
            state=self.state,
            case_ref=self.case_ref,
            case_pending=self.pending_open is not None,
            degraded_case_ref=self.degraded_case_ref,
            degraded_reasons=self.degraded_reasons,
            snmp=self.snmp,
        )


@dataclass(slots=True)
class DetectorStats:
    cases_opened: int = 0
    degraded_opened: int = 0
    cases_restored: int = 0
    case_errors: int = 0
    observations: int = 0
    snmp_observations: int = 0
    reboots: int = 0


def profile_thresholds(
    inventory: Inventory, defaults: DegradedSettings
) -> dict[str, quality.Thresholds]:
    """P2 thresholds per profile id ("" = the defaults).

    Raises:
        InventoryError: a profile whose values contradict each other or the defaults.
    """
    result = {"": defaults.thresholds()}
    problems = []
    for profile in inventory.profiles:
        try:
            merged = DegradedSettings.model_validate(defaults.model_dump() | profile.overrides())
            result[profile.id] = merged.thresholds()
        except ValueError as exc:
            problems.append(f"{inventory.source}: profiles.{profile.id}: {exc}")
    if problems:
        raise InventoryError(problems)
    return result


#: ``(ntu_id, previous status, new state, case reference)``; must not block.
StatusListener = Callable[[str, Status, NtuState, str | None], None]


class Detector:
    def __init__(
        self,
        *,
        rules: Rules,
        degraded: DegradedSettings,
        clock: Clock,
        sink: CaseSink,
        sessionmaker: async_sessionmaker[AsyncSession],
        icmp_enabled: bool = True,
        snmp_max_age: timedelta = timedelta(minutes=3),
    ) -> None:
        """Args:
        icmp_enabled: whether the ICMP loop runs at all (else SNMP alone decides).
        snmp_max_age: how long an SNMP verdict on the WAN interface stays valid
            (about two SNMP intervals); older, it no longer overrides ICMP.
        """
        self._icmp_enabled = icmp_enabled
        self._snmp_max_age = snmp_max_age
        self._rules = rules
        self._degraded = degraded
        self._clock = clock
        self._sink = sink
        self._sessionmaker = sessionmaker
        self._stored: dict[str, StoredState] = {}
        self._dirty: set[str] = set()
        self.ntus: dict[str, Tracked] = {}
        self.nodes: dict[str, Tracked] = {}
        self._parents: dict[str, str | None] = {}
        self._depth: dict[str, int] = {}
        self.stats = DetectorStats()
        #: Called on every status change (the distributed wiring publishes them).
        self.on_status: StatusListener | None = None
        # ntu id -> (behaviour "mute" | "skip", end of the covering maintenance)
        self._maintenance: dict[str, tuple[str, datetime]] = {}

    async def load(self, inventory: Inventory) -> None:
        """Resume from the database, then track the NTUs of ``inventory``."""
        self._stored = await load_states(self._sessionmaker)
        resumed = sum(1 for spec in inventory.ntus if spec.id in self._stored)
        self.set_inventory(inventory)
        self._adopt(await load_open_incidents(self._sessionmaker))
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
            if down_ref is not None and tracked.case_ref is None:
                tracked.state = replace(tracked.state, case_open=True)
                tracked.case_ref = down_ref
                tracked.pending_open = None
                self._dirty.add(ntu_id)
                log.warning("ntu=%s adopts open case %s after a restart", ntu_id, down_ref)
            elif tracked.state.case_open and tracked.case_ref is None:
                # Confirmed before the restart, never opened: open it at the next tick.
                start = tracked.state.confirm_from or tracked.state.outage_start
                if start is not None:
                    tracked.pending_open = OpenCase(outage_start=start, detected_at=start)
            degraded_ref = open_cases.get(ntu_degraded_key(ntu_id))
            if degraded_ref is not None and tracked.degraded_case_ref is None:
                tracked.degraded_case_ref = degraded_ref
                tracked.quality = quality.QualityState(degraded=True)
                self._dirty.add(ntu_id)

    def set_inventory(self, inventory: Inventory) -> None:
        """Track exactly the NTUs of ``inventory``, keeping the state of known ones.

        Raises:
            InventoryError: a service profile is invalid (nothing changed).
        """
        thresholds = profile_thresholds(inventory, self._degraded)
        self.ntus = self._track(inventory.ntus, self.ntus, thresholds)
        self.nodes = self._track(inventory.nodes, self.nodes, thresholds)
        self._parents = inventory.parents()
        self._depth = {i: topology.depth(i, self._parents) for i in self._parents}

    def _track(
        self,
        specs: Iterable[NtuSpec],
        known: dict[str, Tracked],
        thresholds: dict[str, quality.Thresholds],
    ) -> dict[str, Tracked]:
        now = self._clock.now()
        tracked: dict[str, Tracked] = {}
        for spec in specs:
            limits = thresholds[spec.profile or ""]
            current = known.get(spec.id)
            if current is not None:
                current.spec = spec
                current.thresholds = limits
                tracked[spec.id] = current
                continue
            stored = self._stored.get(spec.id)
            if stored is None:
                tracked[spec.id] = Tracked(spec, NtuState.initial(now), limits)
                continue
            item = Tracked(
                spec,
                stored.state,
                limits,
                case_ref=stored.case_ref,
                pending_open=_pending(stored),
                degraded_case_ref=stored.degraded_case_ref,
                degraded_reasons=stored.degraded_reasons,
                snmp=stored.snmp or SnmpView(),
            )
            if stored.degraded_case_ref is not None:
                # The windows are gone with the old process, the verdict is not: the P2
                # stays open until the NTU has been clear for clear_after again.
                reasons = (stored.degraded_reasons or "").split(",")
                item.quality = quality.QualityState(
                    degraded=True,
                    active=frozenset(quality.Reason(r) for r in reasons if r in _REASONS),
                )
            tracked[spec.id] = item
        for gone in set(known) - set(tracked):
            self._stored[gone] = known[gone].stored()
        return tracked

    def _lookup(self, key: str) -> Tracked | None:
        return self.ntus.get(key) or self.nodes.get(key)

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
            if tracked is not None and tracked.degraded_case_ref is None:
                # What the planned work did (reboots, loss) is not a degradation after it.
                tracked.quality = quality.reset(tracked.quality)
        self._maintenance = dict(covered)

    def _mute_until(self, ntu_id: str, at: datetime) -> datetime | None:
        cover = self._maintenance.get(ntu_id)
        if cover is None or at >= cover[1]:
            return None
        return cover[1]

    # -- events ------------------------------------------------------------------------

    async def observe(self, results: Iterable[PingResult]) -> None:
        """Feed one batch of ICMP results; persist what changed."""
        now = self._clock.now()
        # Parents first: a child sees its ancestors' verdict of this same cycle.
        for result in sorted(results, key=lambda r: self._depth.get(r.key, 0)):
            tracked = self._lookup(result.key)
            if tracked is None:
                continue  # removed from the inventory while its probe was in flight
            self.stats.observations += 1
            await self._on_ping(tracked, result, now)
            self._dirty.add(result.key)
        await self._sync_upstream(now)
        await self._persist()

    async def observe_snmp(self, results: Iterable[SnmpResult]) -> None:
        """Feed one batch of SNMP results; persist what changed."""
        now = self._clock.now()
        for result in sorted(results, key=lambda r: self._depth.get(r.key, 0)):
            tracked = self._lookup(result.key)
            if tracked is None:
                continue
            self.stats.snmp_observations += 1
            await self._on_snmp(tracked, result, now)
            self._dirty.add(result.key)
        await self._sync_upstream(now)
        await self._persist()

    async def tick(self) -> None:
        """Evaluate time-based rules (staleness) for every NTU."""
        now = self._clock.now()
        for ntu_id, tracked in [*self.nodes.items(), *self.ntus.items()]:
            if (tracked.pending_open or tracked.pending_restore) and await self._settle(tracked):
                self._dirty.add(ntu_id)
            if await self._apply(tracked, Tick(), now):
                self._dirty.add(ntu_id)
        await self._sync_upstream(now)
        await self._persist()

    async def _settle(self, tracked: Tracked) -> bool:
        """Send what the case service missed: the open, then the restore. True if any."""
        spec = tracked.spec
        progressed = False
        if tracked.pending_open is not None:
            ok, ref = await self._call(spec, self._open_down(tracked, tracked.pending_open))
            if not ok:
                return False
            tracked.case_ref, tracked.pending_open, progressed = ref, None, True
        restore = tracked.pending_restore
        if restore is not None:
            ok, _ = await self._call(
                spec,
                self._sink.restore_incident(
                    dedup_key=self._down_key(spec), restored_at=restore.restored_at
                ),
            )
            if not ok:
                return progressed
            self.stats.cases_restored += 1
            log.info(
                "ntu=%s restored at %s; case %s solved",
                spec.id,
                restore.restored_at.isoformat(timespec="seconds"),
                tracked.case_ref,
            )
            tracked.case_ref, tracked.pending_restore, progressed = None, None, True
            tracked.reported = None
        return progressed

    async def _on_ping(self, tracked: Tracked, result: PingResult, now: datetime) -> None:
        tracked.last_probe = LastProbe(
            rtt_avg=result.rtt_avg, loss=result.loss, jitter=result.jitter
        )
        if result.reachable:
            tracked.icmp_fail_streak = 0
            if tracked.snmp.icmp_filtered:
                log.info("ntu=%s answers ICMP again", tracked.spec.id)
            tracked.snmp.icmp_filtered = False
        else:
            tracked.icmp_fail_streak += 1
            tracked.last_icmp_fail_at = result.started_at
        await self._quality(tracked, quality.Reachability(result.started_at, result.reachable), now)
        if not (tracked.snmp.icmp_filtered and not result.reachable):
            last = tracked.last_snmp
            wan_down = (
                last is not None
                and result.started_at - last.started_at <= self._snmp_max_age
                and wan_service_down(last)
            )
            ok = result.reachable and not wan_down
            await self._apply(tracked, self._observed(tracked, result.started_at, ok), now)
        if tracked.state.status == Status.UP and result.sent and not tracked.snmp.icmp_filtered:
            burst = quality.Burst(result.started_at, result.sent, result.received, result.rtt_avg)
            await self._quality(tracked, burst, now)

    async def _on_snmp(self, tracked: Tracked, result: SnmpResult, now: datetime) -> None:
        previous, tracked.last_snmp = tracked.last_snmp, result
        view = tracked.snmp
        if not result.reachable:
            if view.icmp_filtered or not self._icmp_probed(tracked):
                # SNMP is the only signal left (ICMP filtered, or not probed at all).
                await self._apply(tracked, self._observed(tracked, result.started_at, False), now)
            return
        self._note_reboot(tracked, previous, result, now)
        view.wan_if_index = result.if_index
        view.wan_oper_status = result.if_oper_status
        view.wan_admin_status = result.if_admin_status
        if (
            tracked.icmp_fail_streak >= _ICMP_FILTERED_AFTER
            and tracked.last_icmp_fail_at is not None
            and result.started_at >= tracked.last_icmp_fail_at
            and not view.icmp_filtered
        ):
            view.icmp_filtered = True
            log.warning(
                "ntu=%s does not answer ICMP but SNMP answers: ICMP filtered, not an outage",
                tracked.spec.id,
            )
        if wan_admin_down(result) and previous is not None and not wan_admin_down(previous):
            log.warning("ntu=%s WAN interface administratively down (no case)", tracked.spec.id)
        ok = not wan_service_down(result)
        await self._apply(tracked, self._observed(tracked, result.started_at, ok), now)
        measured = rates(previous, result) if previous is not None else None
        if measured is not None:
            view.in_bps, view.out_bps = measured.in_bps, measured.out_bps
            view.error_rate = measured.errors_per_second
            if measured.errors_per_second is not None and tracked.state.status == Status.UP:
                sample = quality.ErrorRate(result.started_at, measured.errors_per_second)
                await self._quality(tracked, sample, now)

    def _icmp_probed(self, tracked: Tracked) -> bool:
        return self._icmp_enabled and tracked.spec.probe.icmp.enabled

    def _observed(self, tracked: Tracked, at: datetime, ok: bool) -> Observed:
        verdict = self._verdict(tracked.spec.id)
        return Observed(
            at=at,
            ok=ok,
            mute_until=self._mute_until(tracked.spec.id, at),
            upstream=verdict.upstream,
            upstream_since=verdict.since,
        )

    def _verdict(self, ident: str) -> topology.Verdict:
        chain = []
        for ancestor in topology.ancestors_of(ident, self._parents):
            found = self._lookup(ancestor)
            if found is not None:
                chain.append((ancestor, found.state))
        return topology.upstream_verdict(chain)

    def _note_reboot(
        self, tracked: Tracked, previous: SnmpResult | None, result: SnmpResult, now: datetime
    ) -> None:
        view = tracked.snmp
        uptime = result.sys_uptime
        if uptime is None:
            return
        if view.sys_uptime is not None:
            since = previous.started_at if previous else tracked.state.last_observation_at
            elapsed = (result.started_at - since).total_seconds() if since else 0.0
            if rebooted(view.sys_uptime, uptime, max(elapsed, 0.0)):
                view.last_reboot_at = result.started_at - timedelta_ticks(uptime)
                view.reboots += 1
                self.stats.reboots += 1
                log.warning(
                    "ntu=%s rebooted at about %s (sysUpTime went from %d to %d); no case",
                    tracked.spec.id,
                    view.last_reboot_at.isoformat(timespec="seconds"),
                    view.sys_uptime,
                    uptime,
                )
        view.sys_uptime = uptime

    # -- the availability machine -------------------------------------------------------

    async def _apply(self, tracked: Tracked, event: Event, now: datetime) -> bool:
        new, actions = step(tracked.state, event, now, self._rules)
        if new == tracked.state:
            return False
        spec = tracked.spec
        case_ref = tracked.case_ref
        for action in actions:
            if isinstance(action, OpenCase) and isinstance(spec, NodeSpec):
                tracked.detected_at = action.detected_at
                ok, ref = await self._call(spec, self._open_upstream(tracked, new, now))
                if not ok:
                    return False
                case_ref = ref
            elif isinstance(action, OpenCase):
                tracked.pending_restore = None  # down again before an old restore got through
                ok, ref = await self._call(spec, self._open_down(tracked, action))
                if ok:
                    case_ref = ref
                else:
                    # The outage is real even if the case service is not reachable
                    # now: remember it and open the case as soon as it is (every tick).
                    tracked.pending_open = action
            elif isinstance(action, RestoreCase):
                # The NTU is back whatever the case service says: the state moves on,
                # and a restore that cannot be sent now is retried every tick.
                tracked.case_ref = case_ref
                tracked.pending_restore = action
                await self._settle(tracked)
                case_ref = tracked.case_ref
                # The outage's lost bursts must not count as degradation afterwards.
                tracked.quality = quality.reset(tracked.quality)
            else:
                log.warning(
                    "ntu=%s no probe data since %s: unknown (NOC alert, no case)",
                    spec.id,
                    action.last_observation_at,
                )
        if new.status != tracked.state.status and new.status == Status.SUSPECT:
            start = new.outage_start.isoformat(timespec="seconds") if new.outage_start else "?"
            muted = isinstance(event, Observed) and event.mute_until is not None
            log.info(
                "ntu=%s not answering since %s: suspect%s",
                spec.id,
                start,
                " (in maintenance: no case before the window ends)" if muted else "",
            )
        if new.status == Status.UNREACHABLE:
            blocker = self._verdict(spec.id).blocker
            if tracked.state.status != Status.UNREACHABLE:
                log.info("ntu=%s unreachable behind %s (no case of its own)", spec.id, blocker)
            tracked.blocked_by = blocker or tracked.blocked_by
        elif new.status == Status.UP:
            tracked.blocked_by = None
        previous = tracked.state.status
        tracked.state = new
        tracked.case_ref = case_ref
        if new.status != previous and self.on_status is not None:
            self.on_status(spec.id, previous, new, case_ref)
        return True

    @staticmethod
    def _down_key(spec: NtuSpec) -> str:
        if isinstance(spec, NodeSpec):
            return topology.node_down_key(spec.id)
        return ntu_down_key(spec.id)

    def _parent_key(self, blocker: str | None) -> str | None:
        """Dedup key of the case that covered an NTU while it was unreachable: the
        node's upstream incident, or the own case of an NTU that is its parent."""
        if blocker is None:
            return None
        found = self._lookup(blocker)
        return self._down_key(found.spec) if found is not None else None

    def _affected(self, node_id: str) -> dict[str, str]:
        """The NTUs unreachable behind ``node_id``: NTU id -> customer id."""
        return {
            t.spec.id: t.spec.customer
            for t in self.ntus.values()
            if t.state.status == Status.UNREACHABLE and t.blocked_by == node_id
        }

    async def _open_upstream(self, tracked: Tracked, state: NtuState, now: datetime) -> str:
        spec = tracked.spec
        assert isinstance(spec, NodeSpec)
        affected = self._affected(spec.id)
        start = state.confirm_from or state.outage_start or now
        ref = await self._sink.open_upstream_incident(
            UpstreamOpen(
                node_id=spec.id,
                dedup_key=topology.node_down_key(spec.id),
                site=spec.site,
                outage_start=start,
                detected_at=tracked.detected_at or now,
                summary=f"Node {spec.id} ({spec.kind}, {spec.address}) down since "
                f"{start.isoformat(timespec='seconds')}",
                affected=tuple(Affected(n, c) for n, c in sorted(affected.items())),
            )
        )
        if tracked.reported is None:
            self.stats.cases_opened += 1
            log.info("node=%s down since %s: upstream P1 case %s", spec.id, start, ref)
        if tracked.reported != frozenset(affected):
            log.info(
                "node=%s upstream case %s: %d NTUs of %d customers unreachable",
                spec.id,
                ref,
                len(affected),
                len(set(affected.values())),
            )
        tracked.reported = frozenset(affected)
        return ref

    async def _sync_upstream(self, now: datetime) -> None:
        """Add the NTUs that became unreachable to their node's upstream incident."""
        for tracked in self.nodes.values():
            if not tracked.state.case_open:
                continue
            if tracked.reported == frozenset(self._affected(tracked.spec.id)):
                continue
            ok, ref = await self._call(
                tracked.spec, self._open_upstream(tracked, tracked.state, now)
            )
            if ok and ref is not None:
                tracked.case_ref = ref
                self._dirty.add(tracked.spec.id)

    async def _open_down(self, tracked: Tracked, action: OpenCase) -> str:
        spec = tracked.spec
        supersedes = ntu_degraded_key(spec.id) if tracked.degraded_case_ref else None
        ref = await self._sink.open_incident(
            _ntu_incident(
                spec,
                dedup_key=ntu_down_key(spec.id),
                priority="P1",
                outage_start=action.outage_start,
                detected_at=action.detected_at,
                summary=f"down: no service since "
                f"{action.outage_start.isoformat(timespec='seconds')}",
                supersedes=supersedes,
                parent_key=self._parent_key(tracked.blocked_by),
            )
        )
        self.stats.cases_opened += 1
        delay = (action.detected_at - action.outage_start).total_seconds()
        log.info(
            "ntu=%s down since %s (%.0f s): P1 case %s%s",
            spec.id,
            action.outage_start.isoformat(timespec="seconds"),
            delay,
            ref,
            f" (upgraded from P2 {tracked.degraded_case_ref})" if supersedes else "",
        )
        tracked.degraded_case_ref = None
        tracked.degraded_reasons = None
        tracked.quality = quality.reset(tracked.quality)
        return ref

    # -- the quality machine ------------------------------------------------------------

    async def _quality(self, tracked: Tracked, sample: quality.Sample, now: datetime) -> None:
        if isinstance(tracked.spec, NodeSpec):
            return  # no P2 for upstream nodes
        new, actions = quality.step(tracked.quality, sample, now, tracked.thresholds)
        spec = tracked.spec
        for action in actions:
            if isinstance(action, quality.OpenDegraded):
                if tracked.state.case_open:
                    new = quality.reset(new)  # the P1 is the case; nothing more to say
                    continue
                if (
                    tracked.state.status != Status.UP
                    or tracked.degraded_case_ref
                    or self._mute_until(spec.id, now) is not None
                ):
                    # Not while the NTU is (maybe) down or in maintenance: decide again
                    # at the next sample.
                    new = replace(new, degraded=tracked.degraded_case_ref is not None)
                    continue
                ok, ref = await self._call(spec, self._open_degraded(tracked, action, now))
                if not ok:
                    return  # keep the old quality state; the next sample retries
                tracked.degraded_case_ref = ref
                tracked.degraded_reasons = ",".join(sorted(action.reasons))
            elif tracked.degraded_case_ref is not None:
                ok, _ = await self._call(
                    spec,
                    self._sink.restore_incident(
                        dedup_key=ntu_degraded_key(spec.id), restored_at=action.at
                    ),
                )
                if not ok:
                    return
                self.stats.cases_restored += 1
                log.info(
                    "ntu=%s service quality normal since %s; P2 case %s solved",
                    spec.id,
                    action.at.isoformat(timespec="seconds"),
                    tracked.degraded_case_ref,
                )
                tracked.degraded_case_ref = None
                tracked.degraded_reasons = None
        tracked.quality = new
        self._dirty.add(spec.id)

    async def _open_degraded(
        self, tracked: Tracked, action: quality.OpenDegraded, now: datetime
    ) -> str:
        spec = tracked.spec
        ref = await self._sink.open_incident(
            _ntu_incident(
                spec,
                dedup_key=ntu_degraded_key(spec.id),
                priority="P2",
                outage_start=action.start,
                detected_at=now,
                summary=f"degraded: {action.detail}",
            )
        )
        self.stats.degraded_opened += 1
        log.info(
            "ntu=%s degraded since %s (%s): P2 case %s",
            spec.id,
            action.start.isoformat(timespec="seconds"),
            action.detail,
            ref,
        )
        return ref

    # -- plumbing -----------------------------------------------------------------------

    async def _call(self, spec: NtuSpec, call: Awaitable[T]) -> tuple[bool, T | None]:
        """Await a case-service call; on failure log, count, and report not-ok."""
        try:
            return True, await call
        except Exception:
            self.stats.case_errors += 1
            log.exception("ntu=%s case service call failed; will retry", spec.id)
            return False, None

    async def _persist(self) -> None:
        """Write every changed state; on failure they stay dirty for the next try."""
        # Swap the set out before awaiting: the tick task and the batch consumer both
        # persist, and a change made by one while the other saves must not be lost.
        ids, self._dirty = self._dirty, set()
        dirty = [t for t in map(self._lookup, ids) if t is not None]
        if not dirty:
            return
        try:
            await save_states(
                self._sessionmaker,
                ((t.spec.id, t.stored(), t.last_probe) for t in dirty),
            )
        except BaseException:
            self._dirty |= ids  # saved next time
            raise

    def counts(self) -> dict[Status, int]:
        counts = dict.fromkeys(Status, 0)
        for tracked in self.ntus.values():
            counts[tracked.state.status] += 1
        return counts


def _ntu_incident(
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


def _pending(stored: StoredState) -> OpenCase | None:
    if not stored.case_pending:
        return None
    start = stored.state.confirm_from or stored.state.outage_start
    return OpenCase(outage_start=start, detected_at=start) if start is not None else None


def timedelta_ticks(ticks: int) -> timedelta:
    """TimeTicks (hundredths of a second) as a timedelta."""
    return timedelta(seconds=ticks / 100)
