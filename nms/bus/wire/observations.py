"""The bodies of ``ping`` and ``snmp`` messages: a batch as a list of positional rows.

Observation batches are the bulk of the traffic, so a result is a positional array,
not an object (about half the bytes). Field order, which is part of the schema:

``ping`` body, a list of::

    [key, address, started_at, sent, received, rtts, error]
     str  str      int µs      int   int       [float, ...]  str|null

``snmp`` body, a list of::

    [key, address, started_at, reachable, error, sys_uptime, if_index,
     if_oper_status, if_admin_status, in_octets, out_octets, counters_64bit,
     in_errors, out_errors, in_discards]

    (str, str, int µs, bool, str|null, then int|null x6, bool, int|null x3)

These run once per result, 10,000 results a cycle, so each kind is written out by
hand rather than driven by a field table (``nms.bus.wire.events`` is, for the rare
kinds). Pure: no I/O.
"""

from __future__ import annotations

import math

from nms.bus.batch import PingBatch, SnmpBatch
from nms.bus.wire.fields import (
    U32,
    WireError,
    address,
    address_text,
    batch_rows,
    boolean,
    encode_time,
    fail,
    integer,
    json_list,
    key,
    optional,
    row,
    rtt,
    snmp_int,
    string,
    timestamp,
)
from probes.observation import PingResult, SnmpResult

_PING_FIELDS = 7
_SNMP_FIELDS = 15
# (position in the row, SnmpResult field) of the SNMP integers, all optional.
_SNMP_INTS = (
    (5, "sys_uptime"),
    (6, "if_index"),
    (7, "if_oper_status"),
    (8, "if_admin_status"),
    (9, "in_octets"),
    (10, "out_octets"),
    (12, "in_errors"),
    (13, "out_errors"),
    (14, "in_discards"),
)


def encode_ping(batch: PingBatch) -> list[list[object]]:
    """The rows of a ping batch (non-finite RTTs are caught by the JSON writer)."""
    rows: list[list[object]] = []
    for i, r in enumerate(batch.results):
        if not isinstance(r, PingResult):
            raise WireError("field", f"ping[{i}]: a {type(r).__name__} in a ping batch")
        at = encode_time(r.started_at, f"ping[{i}].started_at")
        rows.append([r.key, address_text(r.address), at, r.sent, r.received, list(r.rtts), r.error])
    return rows


def encode_snmp(batch: SnmpBatch) -> list[list[object]]:
    """The rows of an snmp batch."""
    rows: list[list[object]] = []
    for i, r in enumerate(batch.results):
        if not isinstance(r, SnmpResult):
            raise WireError("field", f"snmp[{i}]: a {type(r).__name__} in an snmp batch")
        rows.append(
            [
                r.key,
                address_text(r.address),
                encode_time(r.started_at, f"snmp[{i}].started_at"),
                r.reachable,
                r.error,
                r.sys_uptime,
                r.if_index,
                r.if_oper_status,
                r.if_admin_status,
                r.in_octets,
                r.out_octets,
                r.counters_64bit,
                r.in_errors,
                r.out_errors,
                r.in_discards,
            ]
        )
    return rows


def non_finite_rtts(batch: PingBatch, kind: str) -> str | None:
    """Which result the JSON writer refused, if it was for a non-finite RTT."""
    for i, r in enumerate(batch.results):
        if not all(math.isfinite(value) for value in r.rtts):
            return f"{kind}[{i}].rtts: {r.rtts!r} is not all finite"
    return None


def decode_ping(body: object, kind: str) -> PingBatch:
    """A ping batch from its rows; raises ``WireError`` naming the field."""
    results = []
    for i, value in enumerate(batch_rows(body, kind)):
        at = f"{kind}[{i}]"
        f = row(value, at, _PING_FIELDS)
        sent = integer(f[3], f"{at}.sent", 0, U32)
        received = integer(f[4], f"{at}.received", 0, U32)
        if received > sent:
            fail(f"{at}.received", f"{received} is more than sent ({sent})")
        rtts = json_list(f[5], f"{at}.rtts")
        if len(rtts) > received:
            fail(f"{at}.rtts", f"{len(rtts)} RTTs but only {received} received")
        results.append(
            PingResult(
                key=key(f[0], f"{at}.key"),
                address=address(f[1], f"{at}.address"),
                started_at=timestamp(f[2], f"{at}.started_at"),
                sent=sent,
                received=received,
                rtts=tuple(rtt(v, f"{at}.rtts[{j}]") for j, v in enumerate(rtts)),
                error=optional(f[6], f"{at}.error", string),
            )
        )
    return PingBatch(results=tuple(results))


def decode_snmp(body: object, kind: str) -> SnmpBatch:
    """An snmp batch from its rows; raises ``WireError`` naming the field."""
    results = []
    for i, value in enumerate(batch_rows(body, kind)):
        at = f"{kind}[{i}]"
        f = row(value, at, _SNMP_FIELDS)
        ints = {name: optional(f[index], f"{at}.{name}", snmp_int) for index, name in _SNMP_INTS}
        results.append(
            SnmpResult(
                key=key(f[0], f"{at}.key"),
                address=address(f[1], f"{at}.address"),
                started_at=timestamp(f[2], f"{at}.started_at"),
                reachable=boolean(f[3], f"{at}.reachable"),
                error=optional(f[4], f"{at}.error", string),
                sys_uptime=ints["sys_uptime"],
                if_index=ints["if_index"],
                if_oper_status=ints["if_oper_status"],
                if_admin_status=ints["if_admin_status"],
                in_octets=ints["in_octets"],
                out_octets=ints["out_octets"],
                counters_64bit=boolean(f[11], f"{at}.counters_64bit"),
                in_errors=ints["in_errors"],
                out_errors=ints["out_errors"],
                in_discards=ints["in_discards"],
            )
        )
    return SnmpBatch(results=tuple(results))
