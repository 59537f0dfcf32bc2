"""ICMP and SNMP fused into one availability verdict: pure, no I/O, no clock.

How ICMP and SNMP combine into "is the service up":

* ICMP answers -> up, unless the last SNMP poll (no older than ``snmp_max_age``)
  says the WAN interface is down while administratively up: the management plane
  answers but the customer's service does not -> a failure (P1 after ``down_after``).
* ICMP fails but SNMP answers -> up, and the NTU is flagged ``icmp_filtered`` once
  ``filtered_after`` bursts in a row failed and an SNMP answer came after the last
  of them (ICMP dropped on the way, not an outage); while flagged, a failed burst is
  no verdict and SNMP alone decides. The first answered burst clears the flag.
* SNMP fails while ICMP answers -> nothing (SNMP filtered or a slow agent); it is a
  failure only when SNMP is the only signal (ICMP filtered, or not probed at all).
* WAN interface administratively down -> not a customer outage (the poll says up);
  noticed once, for the NOC.
* sysUpTime going backwards (not a 32-bit wrap) -> a reboot, recorded, no case.

``on_ping`` and ``on_snmp`` take the remembered ``Signals`` and one result and return
``Fused``: the new ``Signals``, the verdict ``ok`` for the availability machine
(``None``: this result says nothing about availability) and the facts the engine
logs, counts and feeds to the quality machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from nms.detector.signals import Rates, rates, rebooted, wan_admin_down, wan_service_down
from probes.observation import PingResult, SnmpResult


@dataclass(frozen=True, slots=True)
class SnmpView:
    """What SNMP says about an NTU beyond up/down; kept with its state and shown."""

    icmp_filtered: bool = False
    wan_if_index: int | None = None
    wan_oper_status: int | None = None
    wan_admin_status: int | None = None
    in_bps: float | None = None
    out_bps: float | None = None
    error_rate: float | None = None
    sys_uptime: int | None = None
    last_reboot_at: datetime | None = None
    reboots: int = 0


@dataclass(frozen=True, slots=True)
class Signals:
    """What is remembered between results to fuse them (one per NTU)."""

    view: SnmpView = field(default_factory=SnmpView)
    last_snmp: SnmpResult | None = None
    """The previous SNMP poll, answered or not: the base of rates and reboot checks."""
    icmp_fail_streak: int = 0
    last_icmp_fail_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Rules:
    """The fusion thresholds.

    Args:
        snmp_max_age: how long an SNMP verdict on the WAN interface stays valid
            (about two SNMP intervals); older, it no longer overrides ICMP.
        filtered_after: failed ICMP bursts in a row, while SNMP answers, before ICMP
            counts as filtered.
    """

    snmp_max_age: timedelta
    filtered_after: int = 2

    def __post_init__(self) -> None:
        if self.snmp_max_age <= timedelta(0):
            raise ValueError("snmp_max_age must be positive")
        if self.filtered_after < 1:
            raise ValueError("filtered_after must be at least 1")


@dataclass(frozen=True, slots=True)
class Reboot:
    """sysUpTime went back: the NTU restarted at about ``at``."""

    at: datetime
    uptime_before: int
    uptime_after: int


@dataclass(frozen=True, slots=True)
class Fused:
    """The outcome of one result: new signals, the verdict, and facts to record."""

    signals: Signals
    ok: bool | None
    """For the availability machine; None: no verdict from this result."""
    icmp_filtered: bool | None = None
    """The ``icmp_filtered`` flag changed to this value."""
    reboot: Reboot | None = None
    wan_admin_down: bool = False
    """The WAN interface was just seen administratively down (it was not before)."""
    rates: Rates | None = None
    """Throughput and error rate since the previous poll, when comparable."""
    burst: bool = False
    """The ICMP burst is a quality sample (the engine adds: if the NTU is up)."""


def ticks(value: int) -> timedelta:
    """TimeTicks (hundredths of a second) as a timedelta."""
    return timedelta(seconds=value / 100)


def on_ping(signals: Signals, result: PingResult, *, rules: Rules) -> Fused:
    """Fuse one ICMP burst with what SNMP said last."""
    view = signals.view
    changed: bool | None = None
    if result.reachable:
        if view.icmp_filtered:
            changed = False
            view = replace(view, icmp_filtered=False)
        if view is not signals.view or signals.icmp_fail_streak:
            signals = replace(signals, view=view, icmp_fail_streak=0)
    else:
        signals = replace(
            signals,
            icmp_fail_streak=signals.icmp_fail_streak + 1,
            last_icmp_fail_at=result.started_at,
        )
    ok: bool | None = None
    if result.reachable or not view.icmp_filtered:
        last = signals.last_snmp
        wan_down = (
            last is not None
            and result.started_at - last.started_at <= rules.snmp_max_age
            and wan_service_down(last)
        )
        ok = result.reachable and not wan_down
    return Fused(
        signals=signals,
        ok=ok,
        icmp_filtered=changed,
        burst=result.sent > 0 and not view.icmp_filtered,
    )


def on_snmp(
    signals: Signals,
    result: SnmpResult,
    *,
    rules: Rules,
    icmp_probed: bool,
    last_observation_at: datetime | None,
) -> Fused:
    """Fuse one SNMP poll with the ICMP history.

    Args:
        icmp_probed: whether ICMP probes this NTU at all (else SNMP alone decides).
        last_observation_at: the availability machine's last observation, the base
            of the reboot check when there was no previous poll.
    """
    previous = signals.last_snmp
    signals = replace(signals, last_snmp=result)
    view = signals.view
    if not result.reachable:
        # SNMP is the only signal left (ICMP filtered, or not probed at all).
        alone = view.icmp_filtered or not icmp_probed
        return Fused(signals=signals, ok=False if alone else None)
    reboot = _reboot(view, previous, result, last_observation_at)
    view = replace(
        view,
        wan_if_index=result.if_index,
        wan_oper_status=result.if_oper_status,
        wan_admin_status=result.if_admin_status,
        sys_uptime=view.sys_uptime if result.sys_uptime is None else result.sys_uptime,
    )
    if reboot is not None:
        view = replace(view, last_reboot_at=reboot.at, reboots=view.reboots + 1)
    filtered: bool | None = None
    if (
        signals.icmp_fail_streak >= rules.filtered_after
        and signals.last_icmp_fail_at is not None
        and result.started_at >= signals.last_icmp_fail_at
        and not view.icmp_filtered
    ):
        filtered = True
        view = replace(view, icmp_filtered=True)
    measured = rates(previous, result) if previous is not None else None
    if measured is not None:
        view = replace(
            view,
            in_bps=measured.in_bps,
            out_bps=measured.out_bps,
            error_rate=measured.errors_per_second,
        )
    return Fused(
        signals=replace(signals, view=view),
        ok=not wan_service_down(result),
        icmp_filtered=filtered,
        reboot=reboot,
        wan_admin_down=(
            wan_admin_down(result) and previous is not None and not wan_admin_down(previous)
        ),
        rates=measured,
    )


def _reboot(
    view: SnmpView,
    previous: SnmpResult | None,
    result: SnmpResult,
    last_observation_at: datetime | None,
) -> Reboot | None:
    uptime = result.sys_uptime
    if uptime is None or view.sys_uptime is None:
        return None
    since = previous.started_at if previous else last_observation_at
    elapsed = (result.started_at - since).total_seconds() if since else 0.0
    if not rebooted(view.sys_uptime, uptime, max(elapsed, 0.0)):
        return None
    return Reboot(
        at=result.started_at - ticks(uptime), uptime_before=view.sys_uptime, uptime_after=uptime
    )
