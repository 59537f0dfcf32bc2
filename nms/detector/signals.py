"""Pure interpretation of SNMP results: reboots, counter rates, WAN interface state.

The detector keeps the previous ``SnmpResult`` of each NTU and asks these functions
what changed. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from probes.observation import SnmpResult

# IF-MIB ifOperStatus values that mean "the customer's service is not passing traffic":
# down(2), notPresent(6), lowerLayerDown(7). testing(3), unknown(4) and dormant(5)
# are not treated as an outage.
OPER_UP = 1
OPER_DOWN_VALUES = frozenset({2, 6, 7})
ADMIN_UP = 1
ADMIN_DOWN = 2

_TICKS_32 = 2**32  # TimeTicks are 32-bit hundredths of a second: a wrap after ~497 days
_COUNTER_32 = 2**32
_COUNTER_64 = 2**64
# How far the uptime may be from what the elapsed time predicts and still be a wrap.
_WRAP_TOLERANCE_TICKS = 60 * 100


def wan_service_down(result: SnmpResult) -> bool:
    """The WAN interface is down while it is administratively up: a service outage."""
    return (
        result.reachable
        and result.if_admin_status == ADMIN_UP
        and result.if_oper_status in OPER_DOWN_VALUES
    )


def wan_admin_down(result: SnmpResult) -> bool:
    """Shut down on purpose: configuration, visible to the NOC, never a customer case."""
    return result.reachable and result.if_admin_status == ADMIN_DOWN


def rebooted(previous_uptime: int, uptime: int, elapsed_seconds: float) -> bool:
    """Whether sysUpTime going from ``previous_uptime`` to ``uptime`` means a reboot.

    A 32-bit TimeTicks counter wraps after ~497 days; a wrap is not a reboot: the new
    value is then close to what the elapsed time predicts, modulo 2**32.
    """
    if uptime >= previous_uptime:
        return False
    expected = previous_uptime + int(elapsed_seconds * 100)
    if expected >= _TICKS_32:
        wrapped = expected - _TICKS_32
        if abs(uptime - wrapped) <= _WRAP_TOLERANCE_TICKS + int(elapsed_seconds * 10):
            return False
    return True


def counter_delta(previous: int, current: int, *, bits64: bool) -> int | None:
    """Increase of a counter between two reads, across one wrap; None if it was reset.

    A Counter64 never wraps in practice, and a Counter32 can only have wrapped if it
    was in its upper half before: anything else going backwards is a reset ("clear
    counters" on the CPE), which must not read as 4 billion errors in one interval.
    """
    if current >= previous:
        return current - previous
    if bits64 or previous < _COUNTER_32 // 2:
        return None
    return current + _COUNTER_32 - previous


@dataclass(frozen=True, slots=True)
class Rates:
    in_bps: float | None
    out_bps: float | None
    errors_per_second: float | None


def rates(previous: SnmpResult, current: SnmpResult) -> Rates | None:
    """Throughput and error rate between two polls of the same interface.

    None when the two polls cannot be compared: different interface, a reboot in
    between (counters restart), a counter width change, or no time elapsed.
    """
    seconds = (current.started_at - previous.started_at).total_seconds()
    if (
        seconds <= 0
        or not (previous.reachable and current.reachable)
        or previous.if_index != current.if_index
        or previous.counters_64bit != current.counters_64bit
    ):
        return None
    if (
        previous.sys_uptime is not None
        and current.sys_uptime is not None
        and rebooted(previous.sys_uptime, current.sys_uptime, seconds)
    ):
        return None

    def rate(a: int | None, b: int | None, *, bits64: bool, scale: float = 1.0) -> float | None:
        if a is None or b is None:
            return None
        delta = counter_delta(a, b, bits64=bits64)
        return None if delta is None else delta * scale / seconds

    bits64 = current.counters_64bit
    error_parts = [
        rate(getattr(previous, name), getattr(current, name), bits64=False)
        for name in ("in_errors", "out_errors", "in_discards")
    ]
    known = [part for part in error_parts if part is not None]
    return Rates(
        in_bps=rate(previous.in_octets, current.in_octets, bits64=bits64, scale=8.0),
        out_bps=rate(previous.out_octets, current.out_octets, bits64=bits64, scale=8.0),
        errors_per_second=sum(known) if known else None,
    )
