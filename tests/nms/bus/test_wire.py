"""nms.bus.wire: every message kind round-trips exactly; any bytes decode or raise WireError."""

from __future__ import annotations

import ipaddress
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nms.bus.batch import PingBatch, SnmpBatch
from nms.bus.wire import (
    MAX_MESSAGE_BYTES,
    REASONS,
    SCHEMA_VERSION,
    CaseChange,
    Heartbeat,
    Message,
    NtuStateChange,
    SkipSet,
    WireError,
    decode,
    encode,
)
from nms.bus.wire.events import BodyField, ObjectCodec
from probes.observation import PingResult, SnmpResult

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
T0_US = 1767323045678901

# -- strategies ---------------------------------------------------------------------------

times = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59, 999999),
    timezones=st.just(UTC),
)
ids = st.text(min_size=1, max_size=20)
addresses = st.ip_addresses()
sources = st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True)
snmp_ints = st.none() | st.integers(-(2**31), 2**64 - 1) | st.sampled_from([0, 2**64 - 1])
counts = st.integers(0, 2**63 - 1)


@st.composite
def ping_results(draw: st.DrawFn) -> PingResult:
    sent = draw(st.integers(0, 2**32 - 1))
    received = draw(st.integers(0, sent))
    rtts = draw(
        st.lists(
            st.floats(min_value=0.0, allow_nan=False, allow_infinity=False),
            max_size=min(received, 8),
        )
    )
    return PingResult(
        key=draw(ids),
        address=draw(addresses),
        started_at=draw(times),
        sent=sent,
        received=received,
        rtts=tuple(rtts),
        error=draw(st.none() | st.text(max_size=20)),
    )


snmp_results = st.builds(
    SnmpResult,
    key=ids,
    address=addresses,
    started_at=times,
    reachable=st.booleans(),
    error=st.none() | st.text(max_size=20),
    sys_uptime=snmp_ints,
    if_index=snmp_ints,
    if_oper_status=snmp_ints,
    if_admin_status=snmp_ints,
    in_octets=snmp_ints,
    out_octets=snmp_ints,
    counters_64bit=st.booleans(),
    in_errors=snmp_ints,
    out_errors=snmp_ints,
    in_discards=snmp_ints,
)


@st.composite
def shards(draw: st.DrawFn) -> str:
    n = draw(st.integers(1, 999))
    return f"{draw(st.integers(1, n))}/{n}"


heartbeats = st.builds(
    Heartbeat,
    shard=shards(),
    alive=st.booleans(),
    icmp_targets=counts,
    snmp_targets=counts,
    cycles=counts,
    overruns=counts,
    buffered=counts,
    dropped=counts,
)
ntu_states = st.builds(
    NtuStateChange,
    ntu_id=ids,
    status=st.sampled_from(["unknown", "up", "suspect", "down", "recovering", "unreachable"]),
    previous=st.sampled_from(["unknown", "up", "down"]),
    at=times,
    outage_start=st.none() | times,
    case_ref=st.none() | ids,
)
case_changes = st.builds(
    CaseChange,
    ref=ids,
    event_id=counts,
    kind=st.sampled_from(["opened", "solved", "closed", "comment"]),
    status=ids,
    priority=st.sampled_from(["P1", "P2", "P3"]),
    ntu_id=st.none() | ids,
    customer_id=st.none() | ids,
    at=times,
)
skip_sets = st.builds(SkipSet, ntu_ids=st.frozensets(ids, max_size=10), at=times)
payloads = (
    st.lists(ping_results(), min_size=1, max_size=5).map(lambda r: PingBatch(tuple(r)))
    | st.lists(snmp_results, min_size=1, max_size=5).map(lambda r: SnmpBatch(tuple(r)))
    | heartbeats
    | ntu_states
    | case_changes
    | skip_sets
)
messages = st.builds(
    Message, source=sources, seq=st.integers(1, 2**63 - 1), sent_at=times, payload=payloads
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=20,
)


def ping(**changes: Any) -> PingResult:
    fields: dict[str, Any] = {
        "key": "ntu-1",
        "address": ipaddress.ip_address("192.0.2.7"),
        "started_at": T0,
        "sent": 3,
        "received": 2,
        "rtts": (0.0012, 0.0015),
        "error": None,
    }
    return PingResult(**(fields | changes))


def message(payload: Any, **changes: Any) -> Message:
    return Message(
        **({"source": "probe-1of2-abc", "seq": 7, "sent_at": T0, "payload": payload} | changes)
    )


def document(payload: Any = None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(encode(message(payload or PingBatch((ping(),)))))
    return data


def outcome(data: bytes) -> str:
    """ "ok" or the WireError reason; any other exception fails the test."""
    try:
        decode(data)
    except WireError as exc:
        return exc.reason
    return "ok"


def wire_error(data: dict[str, Any] | bytes) -> WireError:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    with pytest.raises(WireError) as info:
        decode(raw)
    assert info.value.reason in REASONS
    return info.value


# -- round trips ---------------------------------------------------------------------------


@given(messages)
@settings(max_examples=300)
def test_every_message_round_trips_exactly(original: Message) -> None:
    data = encode(original)
    assert decode(data) == original
    assert b" " not in data.split(b'"b":')[0]  # compact envelope


@pytest.mark.parametrize(
    "payload",
    [
        PingBatch((ping(),)),
        SnmpBatch((SnmpResult("ntu-1", ipaddress.ip_address("2001:db8::7"), T0, reachable=False),)),
        Heartbeat("1/2", True, 10, 5, 3, 0, 0, 0),
        NtuStateChange("ntu-1", "down", "suspect", T0, T0, "CASE-2026-000001"),
        CaseChange("CASE-2026-000001", 12, "opened", "open", "P1", "ntu-1", "acme", T0),
        SkipSet(frozenset({"b", "a"}), T0),
    ],
)
def test_kind_names(payload: Any) -> None:
    original = message(payload)
    decoded = decode(encode(original))
    assert decoded == original
    assert json.loads(encode(original))["k"] == decoded.kind


def test_the_documented_layout() -> None:
    """The schema on the wire, byte for byte: a change here breaks running peers."""
    snmp = SnmpResult(
        "ntu-2",
        ipaddress.ip_address("2001:db8::2"),
        T0,
        reachable=True,
        sys_uptime=123,
        if_index=2,
        if_oper_status=1,
        if_admin_status=1,
        in_octets=2**64 - 1,
        out_octets=5,
        counters_64bit=True,
        in_errors=0,
        out_errors=None,
        in_discards=1,
    )
    assert encode(message(PingBatch((ping(error="EHOSTUNREACH"),)))) == (
        b'{"v":1,"k":"ping","src":"probe-1of2-abc","seq":7,"t":1767323045678901,'
        b'"b":[["ntu-1","192.0.2.7",1767323045678901,3,2,[0.0012,0.0015],"EHOSTUNREACH"]]}'
    )
    assert encode(message(SnmpBatch((snmp,)))) == (
        b'{"v":1,"k":"snmp","src":"probe-1of2-abc","seq":7,"t":1767323045678901,'
        b'"b":[["ntu-2","2001:db8::2",1767323045678901,true,null,123,2,1,1,'
        b"18446744073709551615,5,true,0,null,1]]}"
    )
    assert encode(message(SkipSet(frozenset({"b", "a"}), T0))) == (
        b'{"v":1,"k":"skip","src":"probe-1of2-abc","seq":7,"t":1767323045678901,'
        b'"b":{"ntu_ids":["a","b"],"at":1767323045678901}}'
    )


def test_the_documented_layout_of_the_object_bodies() -> None:
    """One field table serves both directions; the bytes are what peers already read."""
    envelope = b'{"v":1,"k":"%s","src":"probe-1of2-abc","seq":7,"t":1767323045678901,"b":'
    beat = Heartbeat("1/2", True, 10, 5, 3, 0, 1, 2)
    assert encode(message(beat)) == envelope % b"heartbeat" + (
        b'{"shard":"1/2","alive":true,"icmp_targets":10,"snmp_targets":5,"cycles":3,'
        b'"overruns":0,"buffered":1,"dropped":2}}'
    )
    state = NtuStateChange("ntu-1", "down", "suspect", T0, None, "CASE-2026-000001")
    assert encode(message(state)) == envelope % b"ntu_state" + (
        b'{"ntu_id":"ntu-1","status":"down","previous":"suspect","at":1767323045678901,'
        b'"outage_start":null,"case_ref":"CASE-2026-000001"}}'
    )
    change = CaseChange("CASE-2026-000001", 12, "opened", "new", "P1", "ntu-1", None, T0)
    assert encode(message(change)) == envelope % b"case" + (
        b'{"ref":"CASE-2026-000001","event_id":12,"kind":"opened","status":"new",'
        b'"priority":"P1","ntu_id":"ntu-1","customer_id":null,"at":1767323045678901}}'
    )


def test_a_body_table_must_name_every_dataclass_field() -> None:
    with pytest.raises(TypeError, match="skip: body fields must be"):
        ObjectCodec("skip", SkipSet, (BodyField("at", lambda value, path: value),))


def test_times_are_exact_microseconds_of_any_time_zone() -> None:
    plus2 = T0.astimezone(timezone(timedelta(hours=2)))
    decoded = decode(encode(message(PingBatch((ping(started_at=plus2),)), sent_at=plus2)))
    assert decoded.sent_at == T0 and decoded.sent_at.tzinfo is UTC
    assert document()["t"] == T0_US


# -- what decode rejects -------------------------------------------------------------------


@given(st.binary(max_size=200))
@settings(max_examples=500)
def test_random_bytes_decode_or_raise_wire_error(data: bytes) -> None:
    assert outcome(data) in (*REASONS, "ok")


@given(json_values)
@settings(max_examples=200)
def test_random_json_raises_wire_error(value: Any) -> None:
    with pytest.raises(WireError):
        decode(json.dumps(value).encode())


@given(st.sampled_from(["ping", "snmp", "heartbeat", "ntu_state", "case", "skip"]), json_values)
@settings(max_examples=300)
def test_random_bodies_decode_or_raise_wire_error(kind: str, body: Any) -> None:
    envelope = {"v": 1, "k": kind, "src": "x", "seq": 1, "t": 0, "b": body}
    assert outcome(json.dumps(envelope).encode()) in ("field", "ok")


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*path, index))
    return found


@given(messages, st.data(), json_values)
@settings(max_examples=300)
def test_a_valid_message_with_any_field_replaced_decodes_or_raises_wire_error(
    original: Message, data: st.DataObject, replacement: Any
) -> None:
    tree = json.loads(encode(original))
    path = data.draw(st.sampled_from(_paths(tree)[1:]))
    node = tree
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = replacement
    assert outcome(json.dumps(tree).encode()) in (*REASONS, "ok")


@pytest.mark.parametrize(
    ("data", "reason", "text"),
    [
        (b"\xff\xfe{}", "malformed", "not UTF-8"),
        ('{"v":1}'.encode("utf-16"), "malformed", "not UTF-8"),
        (b"", "malformed", "not JSON"),
        (b"{", "malformed", "not JSON"),
        (b"[1,2]", "malformed", "not a JSON object but an array"),
        (b'"text"', "malformed", "not a JSON object but a string"),
        (b'{"v":1,"v":1}', "malformed", "duplicate field 'v'"),
        (b'{"v":NaN}', "malformed", "NaN is not a JSON number"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed", "not JSON"),
        (b"1" * 5000, "malformed", "not JSON"),
        (b" " * (MAX_MESSAGE_BYTES + 1), "malformed", "more than"),
        (b"{}", "version", "v: missing schema version"),
        (b'{"v":2}', "version", "v: schema version 2, expected 1"),
        (b'{"v":true}', "version", "v: schema version True"),
        (b'{"v":"1"}', "version", "v: schema version '1'"),
        (b'{"v":1.0}', "version", "v: schema version 1.0"),
        (b'{"v":1}', "kind", "k: unknown kind None"),
        (b'{"v":1,"k":"pong"}', "kind", "k: unknown kind 'pong'"),
        (b'{"v":1,"k":["ping"]}', "kind", "k: unknown kind ['ping']"),
    ],
)
def test_rejects_envelopes(data: bytes, reason: str, text: str) -> None:
    error = wire_error(data)
    assert error.reason == reason
    assert text in str(error)


def _with(payload: Any = None, **changes: Any) -> dict[str, Any]:
    return document(payload) | changes


def _ping_row(index: int, value: Any) -> dict[str, Any]:
    data = document()
    data["b"][0][index] = value
    return data


def _snmp_row(index: int, value: Any) -> dict[str, Any]:
    data = document(SnmpBatch((SnmpResult("ntu-1", ipaddress.ip_address("192.0.2.1"), T0, True),)))
    data["b"][0][index] = value
    return data


def _body(payload: Any, name: str, value: Any) -> dict[str, Any]:
    data = document(payload)
    data["b"][name] = value
    return data


MIXED_IN = SnmpResult("k", ipaddress.ip_address("192.0.2.1"), T0, True)
HEARTBEAT = Heartbeat("1/2", True, 1, 1, 1, 0, 0, 0)
STATE = NtuStateChange("ntu-1", "down", "up", T0, None, None)


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (_with(src="probe 1"), "src: 'probe 1' is not"),
        (_with(src="probe\n"), "src: 'probe\\n' is not"),
        (_with(src=7), "src: expected a string, got a number"),
        (_with(seq=0), "seq: 0 is outside 1.."),
        (_with(seq=True), "seq: expected an integer, got True"),
        (_with(seq=1.0), "seq: expected an integer, got 1.0"),
        (_with(t="2026-01-01T00:00:00Z"), "t: expected integer microseconds"),
        (_with(t=10**20), "t: 100000000000000000000 is outside the years 1-9999"),
        (_with(extra=1), "extra: unexpected field"),
        ({k: v for k, v in document().items() if k != "seq"}, "seq: missing"),
        (_with(b=[]), "ping: empty batch"),
        (_with(b={}), "ping: expected an array, got an object"),
        (_ping_row(1, "999.1.1.1"), "ping[0].address: '999.1.1.1' is not an IP address"),
        (_ping_row(1, "01.2.3.4"), "ping[0].address: '01.2.3.4' is not an IP address"),
        (_ping_row(0, ""), "ping[0].key: empty"),
        (_ping_row(0, "\ud800"), "ping[0].key: '\\ud800' is not valid Unicode"),
        (_ping_row(2, 1.5), "ping[0].started_at: expected integer microseconds"),
        (_ping_row(3, -1), "ping[0].sent: -1 is outside 0.."),
        (_ping_row(3, True), "ping[0].sent: expected an integer, got True"),
        (_ping_row(4, 4), "ping[0].received: 4 is more than sent (3)"),
        (_ping_row(5, [0.1, 0.2, 0.3]), "ping[0].rtts: 3 RTTs but only 2 received"),
        (_ping_row(5, [0.1, -0.2]), "ping[0].rtts[1]: -0.2 is not a round-trip time"),
        (_ping_row(5, [0.1, 1]), "ping[0].rtts[1]: expected a number with a fraction, got 1"),
        (_ping_row(6, 5), "ping[0].error: expected a string, got a number"),
        (_with(b=[["ntu-1"]]), "ping[0]: expected 7 fields, got 1"),
        (_snmp_row(3, 1), "snmp[0].reachable: expected true or false, got 1"),
        (_snmp_row(9, 2**64), "snmp[0].in_octets: 18446744073709551616 is outside"),
        (_snmp_row(6, -(2**31) - 1), "snmp[0].if_index: -2147483649 is outside"),
        (_snmp_row(11, None), "snmp[0].counters_64bit: expected true or false, got None"),
        (_body(HEARTBEAT, "shard", "3/2"), "heartbeat.shard: '3/2' is not I/N"),
        (_body(HEARTBEAT, "shard", "0/2"), "heartbeat.shard: '0/2' is not I/N"),
        (_body(HEARTBEAT, "cycles", -1), "heartbeat.cycles: -1 is outside"),
        (_body(HEARTBEAT, "alive", "yes"), "heartbeat.alive: expected true or false, got 'yes'"),
        (_body(STATE, "outage_start", "now"), "ntu_state.outage_start: expected integer"),
        (_body(STATE, "status", ""), "ntu_state.status: empty"),
        (_body(STATE, "at", None), "ntu_state.at: expected integer microseconds"),
        (_body(SkipSet(frozenset(), T0), "ntu_ids", "ntu-1"), "skip.ntu_ids: expected an array"),
    ],
)
def test_rejects_bad_fields_naming_the_field(data: dict[str, Any], text: str) -> None:
    error = wire_error(data)
    assert error.reason == "field"
    assert text in str(error), str(error)


def test_a_number_too_big_for_a_float_is_no_rtt() -> None:
    data = encode(message(PingBatch((ping(rtts=(0.5,)),)))).replace(b"[0.5]", b"[1e400]")
    error = wire_error(data)
    assert str(error) == "ping[0].rtts[0]: inf is not a round-trip time"


def test_missing_and_unexpected_body_fields() -> None:
    data = document(HEARTBEAT)
    del data["b"]["dropped"]
    assert str(wire_error(data)) == "heartbeat.dropped: missing"
    data = document(HEARTBEAT)
    data["b"]["dropped_total"] = 1
    assert str(wire_error(data)) == "heartbeat.dropped_total: unexpected field"


def test_version_is_checked_before_anything_else() -> None:
    data = document()
    data["v"] = SCHEMA_VERSION + 1
    data["b"] = "garbage"
    assert wire_error(data).reason == "version"


def test_big_counters_and_extremes_round_trip() -> None:
    snmp = SnmpResult(
        "ntu-1",
        ipaddress.ip_address("::ffff:192.0.2.1"),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        reachable=True,
        in_octets=2**64 - 1,
        out_octets=0,
        if_oper_status=-(2**31),
        sys_uptime=2**32 - 1,
    )
    early = ping(started_at=datetime(1, 1, 1, tzinfo=UTC), rtts=(5e-324, 1.7976931348623157e308))
    for payload in [SnmpBatch((snmp,)), PingBatch((early,))]:
        original = message(payload, seq=2**63 - 1)
        assert decode(encode(original)) == original


# -- what encode refuses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "text"),
    [
        (
            message(PingBatch((ping(),)), sent_at=datetime(2026, 1, 1)),
            "t: 2026-01-01T00:00:00 is a naive",
        ),
        (
            message(PingBatch((ping(started_at=datetime(2026, 1, 1)),))),
            "ping[0].started_at: 2026-01-01T00:",
        ),
        (message(PingBatch((ping(rtts=(math.nan,)),))), "ping[0].rtts: (nan,) is not all finite"),
        (message(PingBatch((ping(),)), source="a/b"), "src: 'a/b' is not"),
        (message(PingBatch((ping(),)), seq=0), "seq: 0 is not"),
        (message(PingBatch(())), "b: an observation batch must not be empty"),
        (
            message(PingBatch((ping(), MIXED_IN))),  # type: ignore[arg-type]
            "ping[1]: a SnmpResult in a ping batch",
        ),
    ],
)
def test_encode_refuses(original: Message, text: str) -> None:
    with pytest.raises(WireError) as info:
        encode(original)
    assert text in str(info.value)


def test_encode_refuses_a_message_too_big_to_decode() -> None:
    batch = tuple(ping(key=f"ntu-{i}" + "x" * 200) for i in range(20_000))
    with pytest.raises(WireError) as info:
        encode(message(PingBatch(batch)))
    assert info.value.reason == "malformed"
