"""What the detector holds per NTU or upstream node, in small frozen records.

``Tracked`` is the working copy of one entry: its inventory spec and P2 thresholds,
and one frozen record per concern, each replaced as a whole when it changes (the
availability state, the P1 case bookkeeping, the P2 state, the fused signals, the
upstream bookkeeping, the last burst's figures). ``stored()`` is what survives a
restart (``nms.detector.store``), ``public()`` what the API shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from operator import attrgetter

from caseapi.incidents import NtuStatusUpdate
from nms.detector import degradation as quality
from nms.detector.availability import NtuState, OpenCase, RestoreCase, Status
from nms.detector.fusion import Signals, SnmpView
from nms.detector.store import LastProbe, StoredState
from nms.inventory.model import NtuSpec

_REASONS = frozenset(r.value for r in quality.Reason)
_FIGURES = frozenset(
    {
        "last_observation_at",
        "last_success_at",
        "rtt_avg",
        "loss",
        "jitter",
        "in_bps",
        "out_bps",
        "error_rate",
        "sys_uptime",
    }
)
_SETTLED = tuple(f.name for f in fields(NtuStatusUpdate) if f.name not in _FIGURES)
_settled_status = attrgetter(*_SETTLED)


def must_report(last: NtuStatusUpdate | None, new: NtuStatusUpdate, refresh: timedelta) -> bool:
    """Whether ``new`` is to be sent to the case service, which was last sent ``last``.

    Every change is, except one of an NTU that is and stays ``up`` in its probe figures
    alone (observation times, RTT, loss, jitter, SNMP rates): that one is sent once
    its last observation is ``refresh`` newer than the one sent.
    """
    if last is None:
        return True
    if last.status != "up" or new.status != "up":
        return last != new
    if _settled_status(last) != _settled_status(new):
        return True
    before, after = last.last_observation_at, new.last_observation_at
    if before is not None and after is not None and after - before < refresh:
        return False
    return last != new


def status_due(
    tracked: Tracked, last: NtuStatusUpdate | None, refresh: timedelta
) -> NtuStatusUpdate | None:
    """``tracked.public()`` if it is to be sent (``must_report``), else None.

    The common case - an NTU that is and stays ``up`` whose probe figures alone moved,
    less than ``refresh`` since the status sent - is told from ``tracked`` without
    building its status (``public`` checks every timestamp): it runs for every NTU
    of every batch.
    """
    state = tracked.state
    if last is not None and last.status == "up" and state.status == Status.UP:
        before, after = last.last_observation_at, state.last_observation_at
        if (
            before is not None
            and after is not None
            and after - before < refresh
            and _settled_status(last) == tracked.settled_status()
        ):
            return None
    public = tracked.public()
    return public if must_report(last, public, refresh) else None


@dataclass(frozen=True, slots=True)
class Outage:
    """The P1 (or upstream incident) of the current outage, as the case service knows it."""

    ref: str | None = None
    pending_open: OpenCase | None = None
    """A confirmed outage whose case is not open yet: opened with the batch, then
    retried every tick until the case service takes it."""
    pending_restore: RestoreCase | None = None
    """A restoration the case service has not recorded yet: sent with the batch, then
    retried every tick (in memory only; after a restart the open case is adopted and
    restored again, with the first good probe after the restart as its end)."""


@dataclass(frozen=True, slots=True)
class Degraded:
    """The quality machine's state and the P2 case it opened."""

    machine: quality.QualityState = field(default_factory=quality.QualityState)
    ref: str | None = None
    reasons: str | None = None
    """The reasons of the open P2, comma-separated (``quality.Reason`` values)."""

    @classmethod
    def resumed(cls, ref: str | None, reasons: str | None) -> Degraded:
        """After a restart: the windows are gone with the old process, the verdict is
        not; an open P2 stays open until the NTU has been clear for clear_after again."""
        if ref is None:
            return cls(reasons=reasons)
        active = frozenset(quality.Reason(r) for r in (reasons or "").split(",") if r in _REASONS)
        return cls(
            machine=quality.QualityState(degraded=True, active=active), ref=ref, reasons=reasons
        )


@dataclass(frozen=True, slots=True)
class UpstreamMark:
    """Topology bookkeeping: what covers an NTU, what a node's incident lists."""

    blocked_by: str | None = None
    """The upstream entry whose outage made this NTU unreachable (until it is up)."""
    reported: frozenset[str] | None = None
    """For a node with an open outage: the affected NTUs its incident lists."""
    detected_at: datetime | None = None
    """For a node: when its outage was confirmed."""


@dataclass(slots=True, kw_only=True)
class Tracked:
    """One NTU or upstream node: spec, thresholds and one record per concern."""

    spec: NtuSpec
    thresholds: quality.Thresholds
    state: NtuState
    outage: Outage = field(default_factory=Outage)
    degraded: Degraded = field(default_factory=Degraded)
    signals: Signals = field(default_factory=Signals)
    upstream: UpstreamMark = field(default_factory=UpstreamMark)
    last_probe: LastProbe | None = None

    @classmethod
    def resumed(cls, spec: NtuSpec, thresholds: quality.Thresholds, stored: StoredState) -> Tracked:
        """The entry as it was saved before a restart (or before it left the inventory)."""
        pending = None
        start = stored.state.confirm_from or stored.state.outage_start
        if stored.case_pending and start is not None:
            pending = OpenCase(outage_start=start, detected_at=start)
        return cls(
            spec=spec,
            thresholds=thresholds,
            state=stored.state,
            outage=Outage(ref=stored.case_ref, pending_open=pending),
            degraded=Degraded.resumed(stored.degraded_case_ref, stored.degraded_reasons),
            signals=Signals(view=stored.snmp),
        )

    @property
    def case_ref(self) -> str | None:
        """The open P1 (or upstream incident), if the case service has it."""
        return self.outage.ref

    @property
    def pending_open(self) -> OpenCase | None:
        return self.outage.pending_open

    @property
    def pending_restore(self) -> RestoreCase | None:
        return self.outage.pending_restore

    @property
    def degraded_case_ref(self) -> str | None:
        """The open P2, if any."""
        return self.degraded.ref

    @property
    def snmp(self) -> SnmpView:
        """What SNMP says beyond up/down."""
        return self.signals.view

    def stored(self) -> StoredState:
        """The machine state that must survive a restart."""
        return StoredState(
            state=self.state,
            case_ref=self.outage.ref,
            case_pending=self.outage.pending_open is not None,
            degraded_case_ref=self.degraded.ref,
            degraded_reasons=self.degraded.reasons,
            snmp=self.signals.view,
        )

    def settled_status(self) -> tuple[object, ...]:
        """The fields of ``public()`` that are not probe figures, in ``_SETTLED``'s order."""
        s, view, outage, degraded = self.state, self.signals.view, self.outage, self.degraded
        return (
            self.spec.id,
            s.status.value,
            s.since,
            s.outage_start,
            outage.ref,
            degraded.ref,
            degraded.reasons,
            view.icmp_filtered,
            view.wan_if_index,
            view.wan_oper_status,
            view.wan_admin_status,
            view.last_reboot_at,
            view.reboots,
        )

    def public(self) -> NtuStatusUpdate:
        """The status the case service shows for this entry."""
        s, view, probe = self.state, self.signals.view, self.last_probe
        return NtuStatusUpdate(
            ntu_id=self.spec.id,
            status=s.status.value,
            since=s.since,
            outage_start=s.outage_start,
            last_observation_at=s.last_observation_at,
            last_success_at=s.last_success_at,
            rtt_avg=probe.rtt_avg if probe else None,
            loss=probe.loss if probe else None,
            jitter=probe.jitter if probe else None,
            case_ref=self.outage.ref,
            degraded_case_ref=self.degraded.ref,
            degraded_reasons=self.degraded.reasons,
            icmp_filtered=view.icmp_filtered,
            wan_if_index=view.wan_if_index,
            wan_oper_status=view.wan_oper_status,
            wan_admin_status=view.wan_admin_status,
            in_bps=view.in_bps,
            out_bps=view.out_bps,
            error_rate=view.error_rate,
            sys_uptime=view.sys_uptime,
            last_reboot_at=view.last_reboot_at,
            reboots=view.reboots,
        )
