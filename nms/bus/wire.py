"""The messages of the distributed bus and their encoding; pure, no I/O.

Every message is one compact JSON object (no spaces), the envelope::

    {"v":1,"k":"ping","src":"probe-1of2-3f9c2a","seq":17,"t":1767225600000000,"b":<body>}

``v`` is ``SCHEMA_VERSION`` (a decoder rejects any other), ``k`` the kind, ``src`` the
sending process instance and ``seq`` its message counter (together the dedupe key),
``t`` the time the message was made. All times on the wire are integer microseconds
since 1970-01-01 UTC: exact (a float loses microseconds after 2^53), compact, and with
no time-zone text to parse. IP addresses are strings (``str()`` of the address).

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

The other kinds are small and rare, so their bodies are objects named like the
dataclass fields (``heartbeat``, ``ntu_state``, ``case``; ``skip`` has ``ntu_ids``, a
sorted list, and ``at``).

``decode`` is strict because a message that reaches the detector changes customer
cases: bool is not an int, counts are not negative, a ping cannot receive more than it
sent, times are integers in datetime's range, unknown or duplicate fields are errors
(a schema change bumps ``SCHEMA_VERSION``; a mismatch must be loud, not half-read).
SNMP integers are only range-checked to what an agent can send (Integer32 up to
Counter64): they are raw readings, and one odd agent must not get a whole batch of
other NTUs rejected. Whatever the bytes, ``decode`` raises ``WireError`` and nothing
else; ``WireError.reason`` is one of ``REASONS`` and its message names the field, e.g.
``ping[3].address: '999.1.1.1' is not an IP address``.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TypeVar

from probes.observation import IPAddress, PingResult, SnmpResult

SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
REASONS = ("malformed", "version", "kind", "field")
KINDS = ("ping", "snmp", "heartbeat", "ntu_state", "case", "skip")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MIN_US = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _MICROSECOND
_MAX_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // _MICROSECOND
_U32 = 2**32 - 1
_I63 = 2**63 - 1
# An SNMP integer as an agent can send it: Integer32 (signed) up to Counter64.
_SNMP_MIN = -(2**31)
_SNMP_MAX = 2**64 - 1
_SOURCE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_SHARD = re.compile(r"([1-9][0-9]{0,5})/([1-9][0-9]{0,5})")
_ENVELOPE = frozenset({"v", "k", "src", "seq", "t", "b"})
_PING_FIELDS = 7
_SNMP_FIELDS = 15


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A probe worker's periodic sign of life; ``alive=False`` is also its MQTT will."""

    shard: str  # "1/2"
    alive: bool  # False: the worker stopped (clean stop or the broker-sent will)
    icmp_targets: int
    snmp_targets: int
    cycles: int
    overruns: int
    buffered: int  # batches waiting for the broker
    dropped: int  # batches dropped because the buffer was full


@dataclass(frozen=True, slots=True)
class NtuStateChange:
    """The detector moved an NTU to a new availability status."""

    ntu_id: str
    status: str  # nms.detector.availability.Status value, e.g. "down"
    previous: str
    at: datetime
    outage_start: datetime | None
    case_ref: str | None


@dataclass(frozen=True, slots=True)
class CaseChange:
    """An entry of a case timeline (opened, solved, ...)."""

    ref: str
    event_id: int
    kind: str
    status: str
    priority: str
    ntu_id: str | None
    customer_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class SkipSet:
    """The NTUs in a 'skip' maintenance window: probes leave them alone."""

    ntu_ids: frozenset[str]
    at: datetime


Payload = (
    tuple[PingResult, ...]
    | tuple[SnmpResult, ...]
    | Heartbeat
    | NtuStateChange
    | CaseChange
    | SkipSet
)


@dataclass(frozen=True, slots=True)
class Message:
    """One bus message; ``(source, seq)`` identifies it for de-duplication."""

    source: str  # sending process instance, e.g. "probe-1of2-3f9c2a"; [A-Za-z0-9._-]
    seq: int  # per source, from 1, +1 per message
    sent_at: datetime  # UTC
    payload: Payload

    @property
    def kind(self) -> str:
        """``ping``, ``snmp``, ``heartbeat``, ``ntu_state``, ``case`` or ``skip``."""
        return payload_kind(self.payload)


class WireError(ValueError):
    """Bytes that are not a valid message; ``reason`` is one of ``REASONS``.

    ``malformed``: not UTF-8 JSON, not an object, or too big; ``version``: missing or
    other schema version; ``kind``: unknown kind; ``field``: a missing, unexpected,
    wrong-typed or invalid field (the message names it).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def payload_kind(payload: Payload) -> str:
    """The wire kind of ``payload`` (a batch must not be empty)."""
    if isinstance(payload, tuple):
        if not payload:
            raise ValueError("an observation batch must not be empty")
        return "ping" if isinstance(payload[0], PingResult) else "snmp"
    if isinstance(payload, Heartbeat):
        return "heartbeat"
    if isinstance(payload, NtuStateChange):
        return "ntu_state"
    if isinstance(payload, CaseChange):
        return "case"
    return "skip"


# -- encoding -------------------------------------------------------------------------


def encode(message: Message) -> bytes:
    """The wire bytes of ``message``.

    Raises ``WireError`` for what cannot be put on the wire: a source outside
    ``[A-Za-z0-9._-]``, a naive datetime, a non-finite RTT, a mixed or empty batch,
    or a result bigger than ``MAX_MESSAGE_BYTES`` (split the batch).
    """
    if not isinstance(message.source, str) or not _SOURCE.fullmatch(message.source):
        raise WireError("field", f"src: {_show(message.source)} is not [A-Za-z0-9._-]{{1,128}}")
    if type(message.seq) is not int or not 1 <= message.seq <= _I63:
        raise WireError("field", f"seq: {_show(message.seq)} is not an integer 1..2**63-1")
    payload = message.payload
    if isinstance(payload, tuple) and not payload:
        raise WireError("field", "b: an observation batch must not be empty")
    kind = payload_kind(payload)
    document = {
        "v": SCHEMA_VERSION,
        "k": kind,
        "src": message.source,
        "seq": message.seq,
        "t": _encode_time(message.sent_at, "t"),
        "b": _ENCODERS[kind](payload),
    }
    try:
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        data = text.encode()
    except (ValueError, UnicodeEncodeError) as exc:
        raise WireError("field", _unencodable(kind, payload, exc)) from exc
    if len(data) > MAX_MESSAGE_BYTES:
        raise WireError(
            "malformed", f"{kind}: {len(data)} bytes, more than {MAX_MESSAGE_BYTES} (split it)"
        )
    return data


def _encode_time(at: datetime, path: str) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise WireError("field", f"{path}: {at.isoformat()} is a naive datetime")
    delta = at - _EPOCH  # exact, unlike at.timestamp(), a float
    us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if not _MIN_US <= us <= _MAX_US:
        raise WireError("field", f"{path}: {at.isoformat()} is outside the years 1-9999 UTC")
    return us


def _address_text(address: IPAddress) -> str:
    # str() of an address costs more than the rest of a result's encoding; the same
    # targets come back every cycle, so remember them (bounded: cleared when full).
    text = _ADDRESS_TEXT.get(address)
    if text is None:
        if len(_ADDRESS_TEXT) >= _ADDRESS_TEXT_MAX:
            _ADDRESS_TEXT.clear()
        text = _ADDRESS_TEXT[address] = str(address)
    return text


_ADDRESS_TEXT: dict[IPAddress, str] = {}
_ADDRESS_TEXT_MAX = 100_000


def _encode_ping(payload: Payload) -> list[list[object]]:
    assert isinstance(payload, tuple)
    rows: list[list[object]] = []
    for i, r in enumerate(payload):
        if not isinstance(r, PingResult):
            raise WireError("field", f"ping[{i}]: a {type(r).__name__} in a ping batch")
        at = _encode_time(r.started_at, f"ping[{i}].started_at")
        # Non-finite RTTs are caught by json.dumps(allow_nan=False), see encode().
        rows.append(
            [r.key, _address_text(r.address), at, r.sent, r.received, list(r.rtts), r.error]
        )
    return rows


def _encode_snmp(payload: Payload) -> list[list[object]]:
    assert isinstance(payload, tuple)
    rows: list[list[object]] = []
    for i, r in enumerate(payload):
        if not isinstance(r, SnmpResult):
            raise WireError("field", f"snmp[{i}]: a {type(r).__name__} in an snmp batch")
        rows.append(
            [
                r.key,
                _address_text(r.address),
                _encode_time(r.started_at, f"snmp[{i}].started_at"),
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


def _unencodable(kind: str, payload: Payload, exc: Exception) -> str:
    """Which field json.dumps refused: only RTTs can be non-finite floats."""
    if isinstance(payload, tuple):
        for i, r in enumerate(payload):
            if isinstance(r, PingResult) and not all(math.isfinite(rtt) for rtt in r.rtts):
                return f"{kind}[{i}].rtts: {r.rtts!r} is not all finite"
    return f"{kind}: cannot encode: {exc}"


def _encode_heartbeat(payload: Payload) -> dict[str, object]:
    assert isinstance(payload, Heartbeat)
    p = payload
    return {
        "shard": p.shard,
        "alive": p.alive,
        "icmp_targets": p.icmp_targets,
        "snmp_targets": p.snmp_targets,
        "cycles": p.cycles,
        "overruns": p.overruns,
        "buffered": p.buffered,
        "dropped": p.dropped,
    }


def _encode_ntu_state(payload: Payload) -> dict[str, object]:
    assert isinstance(payload, NtuStateChange)
    p = payload
    start = p.outage_start
    return {
        "ntu_id": p.ntu_id,
        "status": p.status,
        "previous": p.previous,
        "at": _encode_time(p.at, "ntu_state.at"),
        "outage_start": None if start is None else _encode_time(start, "ntu_state.outage_start"),
        "case_ref": p.case_ref,
    }


def _encode_case(payload: Payload) -> dict[str, object]:
    assert isinstance(payload, CaseChange)
    p = payload
    return {
        "ref": p.ref,
        "event_id": p.event_id,
        "kind": p.kind,
        "status": p.status,
        "priority": p.priority,
        "ntu_id": p.ntu_id,
        "customer_id": p.customer_id,
        "at": _encode_time(p.at, "case.at"),
    }


def _encode_skip(payload: Payload) -> dict[str, object]:
    assert isinstance(payload, SkipSet)
    return {"ntu_ids": sorted(payload.ntu_ids), "at": _encode_time(payload.at, "skip.at")}


_ENCODERS: dict[str, Callable[[Payload], object]] = {
    "ping": _encode_ping,
    "snmp": _encode_snmp,
    "heartbeat": _encode_heartbeat,
    "ntu_state": _encode_ntu_state,
    "case": _encode_case,
    "skip": _encode_skip,
}


# -- decoding -------------------------------------------------------------------------


def decode(data: bytes) -> Message:
    """The message in ``data``; raises ``WireError`` (and nothing else) if it is not one."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise WireError("malformed", f"{len(data)} bytes, more than {MAX_MESSAGE_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError("malformed", f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except WireError:
        raise
    except (ValueError, RecursionError) as exc:
        # RecursionError: deeply nested arrays ("[[[[...") exhaust json's recursion.
        raise WireError("malformed", f"not JSON: {_show(str(exc), 80)}") from None
    if not isinstance(document, dict):
        raise WireError("malformed", f"not a JSON object but {_json_type(document)}")
    if "v" not in document:
        raise WireError("version", "v: missing schema version")
    version = document["v"]
    if type(version) is not int or version != SCHEMA_VERSION:
        raise WireError("version", f"v: schema version {_show(version)}, expected {SCHEMA_VERSION}")
    kind = document.get("k")
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None:
        raise WireError("kind", f"k: unknown kind {_show(kind)}")
    assert isinstance(kind, str)
    _check_keys(document, _ENVELOPE, "")
    source = _str(document["src"], "src")
    if not _SOURCE.fullmatch(source):
        raise WireError("field", f"src: {_show(source)} is not [A-Za-z0-9._-]{{1,128}}")
    return Message(
        source=source,
        seq=_int(document["seq"], "seq", 1, _I63),
        sent_at=_time(document["t"], "t"),
        payload=decoder(document["b"], kind),
    )


def _decode_ping(body: object, kind: str) -> tuple[PingResult, ...]:
    rows = _batch(body, kind)
    results = []
    for i, row in enumerate(rows):
        at = f"{kind}[{i}]"
        f = _row(row, at, _PING_FIELDS)
        sent = _int(f[3], f"{at}.sent", 0, _U32)
        received = _int(f[4], f"{at}.received", 0, _U32)
        if received > sent:
            _fail(f"{at}.received", f"{received} is more than sent ({sent})")
        rtts = _list(f[5], f"{at}.rtts")
        if len(rtts) > received:
            _fail(f"{at}.rtts", f"{len(rtts)} RTTs but only {received} received")
        results.append(
            PingResult(
                key=_key(f[0], f"{at}.key"),
                address=_address(f[1], f"{at}.address"),
                started_at=_time(f[2], f"{at}.started_at"),
                sent=sent,
                received=received,
                rtts=tuple(_rtt(v, f"{at}.rtts[{j}]") for j, v in enumerate(rtts)),
                error=_optional(f[6], f"{at}.error", _str),
            )
        )
    return tuple(results)


def _decode_snmp(body: object, kind: str) -> tuple[SnmpResult, ...]:
    rows = _batch(body, kind)
    results = []
    for i, row in enumerate(rows):
        at = f"{kind}[{i}]"
        f = _row(row, at, _SNMP_FIELDS)
        ints = {name: _optional(f[index], f"{at}.{name}", _snmp_int) for index, name in _SNMP_INTS}
        results.append(
            SnmpResult(
                key=_key(f[0], f"{at}.key"),
                address=_address(f[1], f"{at}.address"),
                started_at=_time(f[2], f"{at}.started_at"),
                reachable=_bool(f[3], f"{at}.reachable"),
                error=_optional(f[4], f"{at}.error", _str),
                sys_uptime=ints["sys_uptime"],
                if_index=ints["if_index"],
                if_oper_status=ints["if_oper_status"],
                if_admin_status=ints["if_admin_status"],
                in_octets=ints["in_octets"],
                out_octets=ints["out_octets"],
                counters_64bit=_bool(f[11], f"{at}.counters_64bit"),
                in_errors=ints["in_errors"],
                out_errors=ints["out_errors"],
                in_discards=ints["in_discards"],
            )
        )
    return tuple(results)


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

_HEARTBEAT_FIELDS = (
    "shard",
    "alive",
    "icmp_targets",
    "snmp_targets",
    "cycles",
    "overruns",
    "buffered",
    "dropped",
)


def _decode_heartbeat(body: object, kind: str) -> Heartbeat:
    b = _object(body, kind, frozenset(_HEARTBEAT_FIELDS))
    shard = _str(b["shard"], f"{kind}.shard")
    match = _SHARD.fullmatch(shard)
    if match is None or int(match[1]) > int(match[2]):
        _fail(f"{kind}.shard", f"{_show(shard)} is not I/N with 1 <= I <= N")

    def count(name: str) -> int:
        return _int(b[name], f"{kind}.{name}", 0, _I63)

    return Heartbeat(
        shard=shard,
        alive=_bool(b["alive"], f"{kind}.alive"),
        icmp_targets=count("icmp_targets"),
        snmp_targets=count("snmp_targets"),
        cycles=count("cycles"),
        overruns=count("overruns"),
        buffered=count("buffered"),
        dropped=count("dropped"),
    )


def _decode_ntu_state(body: object, kind: str) -> NtuStateChange:
    keys = frozenset({"ntu_id", "status", "previous", "at", "outage_start", "case_ref"})
    b = _object(body, kind, keys)
    return NtuStateChange(
        ntu_id=_key(b["ntu_id"], f"{kind}.ntu_id"),
        status=_key(b["status"], f"{kind}.status"),
        previous=_key(b["previous"], f"{kind}.previous"),
        at=_time(b["at"], f"{kind}.at"),
        outage_start=_optional(b["outage_start"], f"{kind}.outage_start", _time),
        case_ref=_optional(b["case_ref"], f"{kind}.case_ref", _key),
    )


def _decode_case(body: object, kind: str) -> CaseChange:
    keys = frozenset(
        {"ref", "event_id", "kind", "status", "priority", "ntu_id", "customer_id", "at"}
    )
    b = _object(body, kind, keys)
    return CaseChange(
        ref=_key(b["ref"], f"{kind}.ref"),
        event_id=_int(b["event_id"], f"{kind}.event_id", 0, _I63),
        kind=_key(b["kind"], f"{kind}.kind"),
        status=_key(b["status"], f"{kind}.status"),
        priority=_key(b["priority"], f"{kind}.priority"),
        ntu_id=_optional(b["ntu_id"], f"{kind}.ntu_id", _key),
        customer_id=_optional(b["customer_id"], f"{kind}.customer_id", _key),
        at=_time(b["at"], f"{kind}.at"),
    )


def _decode_skip(body: object, kind: str) -> SkipSet:
    b = _object(body, kind, frozenset({"ntu_ids", "at"}))
    ids = _list(b["ntu_ids"], f"{kind}.ntu_ids")
    return SkipSet(
        ntu_ids=frozenset(_key(v, f"{kind}.ntu_ids[{i}]") for i, v in enumerate(ids)),
        at=_time(b["at"], f"{kind}.at"),
    )


_DECODERS: dict[str, Callable[[object, str], Payload]] = {
    "ping": _decode_ping,
    "snmp": _decode_snmp,
    "heartbeat": _decode_heartbeat,
    "ntu_state": _decode_ntu_state,
    "case": _decode_case,
    "skip": _decode_skip,
}


# -- field checks ---------------------------------------------------------------------

T = TypeVar("T")


def _fail(path: str, problem: str) -> NoReturn:
    raise WireError("field", f"{path}: {problem}")


def _show(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise WireError("malformed", f"duplicate field {_show(key)}")
        document[key] = value
    return document


def _no_constant(name: str) -> NoReturn:
    raise WireError("malformed", f"not JSON: {name} is not a JSON number")


def _check_keys(document: dict[str, Any], expected: frozenset[str], where: str) -> None:
    if document.keys() == expected:
        return
    prefix = f"{where}." if where else ""
    missing = sorted(expected - document.keys())
    if missing:
        _fail(f"{prefix}{missing[0]}", "missing")
    unexpected = sorted(document.keys() - expected)
    _fail(f"{prefix}{unexpected[0]}", "unexpected field")


def _object(value: object, path: str, keys: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(path, f"expected an object, got {_json_type(value)}")
    _check_keys(value, keys, path)
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        _fail(path, f"expected an array, got {_json_type(value)}")
    return value


def _batch(body: object, kind: str) -> list[Any]:
    rows = _list(body, kind)
    if not rows:
        _fail(kind, "empty batch")
    return rows


def _row(value: object, path: str, size: int) -> list[Any]:
    row = _list(value, path)
    if len(row) != size:
        _fail(path, f"expected {size} fields, got {len(row)}")
    return row


def _str(value: object, path: str) -> str:
    if not isinstance(value, str):
        _fail(path, f"expected a string, got {_json_type(value)}")
    if not value.isascii():
        # JSON escapes can produce lone surrogates, which no database or log accepts.
        try:
            value.encode()
        except UnicodeEncodeError:
            _fail(path, f"{_show(value)} is not valid Unicode")
    return value


def _key(value: object, path: str) -> str:
    """A non-empty identifier (NTU id, case reference, status name)."""
    text = _str(value, path)
    if not text:
        _fail(path, "empty")
    return text


def _int(value: object, path: str, low: int, high: int) -> int:
    if type(value) is not int:  # bool is an int to isinstance
        _fail(path, f"expected an integer, got {_show(value)}")
    if not low <= value <= high:
        _fail(path, f"{value} is outside {low}..{high}")
    return value


def _snmp_int(value: object, path: str) -> int:
    return _int(value, path, _SNMP_MIN, _SNMP_MAX)


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        _fail(path, f"expected true or false, got {_show(value)}")
    return value


def _rtt(value: object, path: str) -> float:
    if type(value) is not float:
        _fail(path, f"expected a number with a fraction, got {_show(value)}")
    if not 0.0 <= value < math.inf:  # also false for NaN
        _fail(path, f"{value!r} is not a round-trip time")
    return value


def _time(value: object, path: str) -> datetime:
    if type(value) is not int:
        _fail(path, f"expected integer microseconds since the epoch, got {_show(value)}")
    if not _MIN_US <= value <= _MAX_US:
        _fail(path, f"{value} is outside the years 1-9999")
    return _EPOCH + timedelta(microseconds=value)


def _address(value: object, path: str) -> IPAddress:
    if not isinstance(value, str):
        _fail(path, f"expected a string, got {_json_type(value)}")
    address = _ADDRESS_VALUE.get(value)  # the same targets come back every cycle
    if address is None:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            _fail(path, f"{_show(value)} is not an IP address")
        if len(_ADDRESS_VALUE) >= _ADDRESS_TEXT_MAX:
            _ADDRESS_VALUE.clear()
        _ADDRESS_VALUE[value] = address
    return address


_ADDRESS_VALUE: dict[str, IPAddress] = {}


def _optional(value: object, path: str, check: Callable[[object, str], T]) -> T | None:
    return None if value is None else check(value, path)
