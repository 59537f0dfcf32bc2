"""The SNMP BER codec: round trips, agreement with pysnmp, and DecodeError only."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder as asn1_decoder
from pyasn1.codec.ber import encoder as asn1_encoder
from pysnmp.proto import api

from probes.errors import (
    DecodeError,
    SnmpNoSuchNameError,
    SnmpStatusError,
    SnmpTooBigError,
    snmp_error_for,
)
from probes.snmp import ber
from probes.snmp.pdu import (
    BulkPdu,
    Message,
    Pdu,
    PduType,
    TrapV1Pdu,
    Version,
    check_response,
    decode_message,
    encode_message,
)

oids = st.tuples(st.integers(0, 1), st.integers(0, 39)).flatmap(
    lambda head: st.lists(st.integers(0, 2**32 - 1), max_size=20).map(lambda tail: (*head, *tail))
) | st.lists(st.integers(0, 2**32 - 81), min_size=1, max_size=20).map(lambda t: (2, *t))
u32 = st.integers(0, 2**32 - 1)
values = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(ber.Integer),
    st.binary(max_size=300).map(ber.OctetString),
    st.just(ber.NULL_VALUE),
    oids.map(ber.ObjectIdentifier),
    st.binary(min_size=4, max_size=4).map(ber.IpAddress),
    u32.map(ber.Counter32),
    u32.map(ber.Gauge32),
    u32.map(ber.TimeTicks),
    st.integers(0, 2**64 - 1).map(ber.Counter64),
    st.binary(max_size=50).map(ber.Opaque),
    st.sampled_from(
        [ber.NO_SUCH_OBJECT_VALUE, ber.NO_SUCH_INSTANCE_VALUE, ber.END_OF_MIB_VIEW_VALUE]
    ),
)
varbinds = st.lists(st.tuples(oids, values), max_size=8).map(tuple)
i32 = st.integers(-(2**31), 2**31 - 1)
plain_types = [PduType.GET, PduType.GET_NEXT, PduType.RESPONSE, PduType.SET]
v2_types = [*plain_types, PduType.INFORM, PduType.TRAP_V2, PduType.REPORT]
plain_pdus = st.builds(
    lambda t, r, s, i, v: Pdu(type=t, request_id=r, error_status=s, error_index=i, varbinds=v),
    st.sampled_from(v2_types), i32, i32, i32, varbinds,
)  # fmt: skip
bulk_pdus = st.builds(
    lambda r, n, m, v: BulkPdu(request_id=r, non_repeaters=n, max_repetitions=m, varbinds=v),
    i32, st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1), varbinds,
)  # fmt: skip
trap_pdus = st.builds(
    lambda e, a, g, s, t, v: TrapV1Pdu(
        enterprise=e, agent_addr=a, generic_trap=g, specific_trap=s, timestamp=t, varbinds=v
    ),
    oids, st.binary(min_size=4, max_size=4), st.integers(0, 6), i32, u32, varbinds,
)  # fmt: skip
communities = st.binary(max_size=40)
v2_messages = st.builds(
    lambda c, p: Message(version=Version.V2C, community=c, pdu=p),
    communities, plain_pdus | bulk_pdus,
)  # fmt: skip
v1_messages = st.builds(
    lambda c, p: Message(version=Version.V1, community=c, pdu=p),
    communities,
    trap_pdus | plain_pdus.filter(lambda p: p.type in plain_types),
)  # fmt: skip
messages = v1_messages | v2_messages


@given(messages)
def test_every_message_round_trips(message: Message) -> None:
    assert decode_message(encode_message(message)) == message


@given(values)
def test_every_value_round_trips(value: ber.Value) -> None:
    encoded = ber.encode_value(value)
    decoded, end = ber.decode_value(encoded, 0, len(encoded))
    assert decoded == value and end == len(encoded)


def test_message_repr_hides_the_community() -> None:
    message = Message(
        version=Version.V2C, community=b"s3cret-comm", pdu=Pdu(type=PduType.GET, request_id=1)
    )
    assert "s3cret" not in repr(message)


# -- agreement with pysnmp --------------------------------------------------------------

P2 = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
P1 = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]


def to_pysnmp(value: ber.Value) -> object:
    p = P2
    if isinstance(value, ber.Integer):
        return p.Integer(value.value)
    if isinstance(value, ber.OctetString):
        return p.OctetString(value.value)
    if isinstance(value, ber.Null):
        return p.Null("")
    if isinstance(value, ber.ObjectIdentifier):
        return p.ObjectIdentifier(value.value)
    if isinstance(value, ber.IpAddress):
        return p.IpAddress(value.value)
    if isinstance(value, ber.Counter32):
        return p.Counter32(value.value)
    if isinstance(value, ber.Gauge32):
        return p.Gauge32(value.value)
    if isinstance(value, ber.TimeTicks):
        return p.TimeTicks(value.value)
    if isinstance(value, ber.Counter64):
        return p.Counter64(value.value)
    if isinstance(value, ber.Opaque):
        return p.Opaque(value.value)
    if isinstance(value, ber.NoSuchObject):
        return p.NoSuchObject("")
    if isinstance(value, ber.NoSuchInstance):
        return p.NoSuchInstance("")
    return p.EndOfMibView("")


_PYSNMP_PDU = {
    PduType.GET: P2.GetRequestPDU,
    PduType.GET_NEXT: P2.GetNextRequestPDU,
    PduType.RESPONSE: P2.ResponsePDU,
    PduType.SET: P2.SetRequestPDU,
    PduType.INFORM: P2.InformRequestPDU,
    PduType.TRAP_V2: P2.SNMPv2TrapPDU,
    PduType.REPORT: P2.ReportPDU,
}


def pysnmp_message(message: Message) -> bytes:
    pdu = message.pdu
    p = P1 if message.version == Version.V1 else P2
    if isinstance(pdu, TrapV1Pdu):
        obj = P1.TrapPDU()
        P1.apiTrapPDU.set_defaults(obj)
        P1.apiTrapPDU.set_enterprise(obj, pdu.enterprise)
        P1.apiTrapPDU.set_agent_address(obj, P1.IpAddress(pdu.agent_addr))
        P1.apiTrapPDU.set_generic_trap(obj, pdu.generic_trap)
        P1.apiTrapPDU.set_specific_trap(obj, pdu.specific_trap)
        P1.apiTrapPDU.set_timestamp(obj, pdu.timestamp)
        P1.apiTrapPDU.set_varbinds(obj, [(o, to_pysnmp(v)) for o, v in pdu.varbinds])
    elif isinstance(pdu, BulkPdu):
        obj = P2.GetBulkRequestPDU()
        P2.apiBulkPDU.set_defaults(obj)
        P2.apiBulkPDU.set_request_id(obj, pdu.request_id)
        P2.apiBulkPDU.set_non_repeaters(obj, pdu.non_repeaters)
        P2.apiBulkPDU.set_max_repetitions(obj, pdu.max_repetitions)
        P2.apiBulkPDU.set_varbinds(obj, [(o, to_pysnmp(v)) for o, v in pdu.varbinds])
    else:
        obj = _PYSNMP_PDU[pdu.type]()
        P2.apiPDU.set_defaults(obj)
        P2.apiPDU.set_request_id(obj, pdu.request_id)
        P2.apiPDU.set_error_status(obj, pdu.error_status)
        P2.apiPDU.set_error_index(obj, pdu.error_index)
        P2.apiPDU.set_varbinds(obj, [(o, to_pysnmp(v)) for o, v in pdu.varbinds])
    msg = p.Message()
    p.apiMessage.set_defaults(msg)
    p.apiMessage.set_community(msg, message.community)
    p.apiMessage.set_pdu(msg, obj)
    return bytes(asn1_encoder.encode(msg))


# pysnmp's v2c error-status is an enumeration 0..18, error-index 0..max-bindings.
pysnmp_pdus = st.builds(
    lambda t, r, s, i, v: Pdu(type=t, request_id=r, error_status=s, error_index=i, varbinds=v),
    st.sampled_from(v2_types), i32, st.integers(0, 18), st.integers(0, 2**31 - 1), varbinds,
)  # fmt: skip
v1_values = values.filter(
    lambda v: (
        not isinstance(v, ber.Counter64 | ber.NoSuchObject | ber.NoSuchInstance | ber.EndOfMibView)
    )
)
v1_traps = st.builds(
    lambda e, a, g, s, t, v: TrapV1Pdu(
        enterprise=e, agent_addr=a, generic_trap=g, specific_trap=s, timestamp=t, varbinds=v
    ),
    oids, st.binary(min_size=4, max_size=4), st.integers(0, 6), i32, u32,
    st.lists(st.tuples(oids, v1_values), max_size=5).map(tuple),
)  # fmt: skip
pysnmp_messages = st.builds(
    lambda c, p: Message(version=Version.V2C, community=c, pdu=p),
    communities,
    pysnmp_pdus | bulk_pdus,
) | st.builds(lambda c, p: Message(version=Version.V1, community=c, pdu=p), communities, v1_traps)


_PYASN1_NON_MINIMAL = {-(2 ** (8 * k - 1)) for k in range(1, 5)}


def _has_boundary_negative(message: Message) -> bool:
    pdu = message.pdu
    ints = [getattr(pdu, name, 0) for name in ("request_id", "error_status", "error_index")]
    ints += [getattr(pdu, "specific_trap", 0)]
    ints += [v.value for _, v in pdu.varbinds if isinstance(v, ber.Integer)]
    return any(i in _PYASN1_NON_MINIMAL for i in ints)


@settings(max_examples=60, deadline=None)
@given(pysnmp_messages)
def test_encoding_is_byte_equal_to_pysnmp(message: Message) -> None:
    if _has_boundary_negative(message):
        # pyasn1 encodes -128, -32768, ... with one octet more than X.690 requires
        # (ff80 for -128); ours is the minimal form. Both decode to the same value.
        assert decode_message(pysnmp_message(message)) == message
    else:
        assert encode_message(message) == pysnmp_message(message)


@settings(max_examples=60, deadline=None)
@given(pysnmp_messages)
def test_pysnmp_encoded_messages_decode_to_the_same_values(message: Message) -> None:
    data = pysnmp_message(message)
    assert decode_message(data) == message
    # and pysnmp reads ours back (the reference accepts what we send)
    p = P1 if message.version == Version.V1 else P2
    decoded, rest = asn1_decoder.decode(encode_message(message), asn1Spec=p.Message())
    assert not rest and bytes(p.apiMessage.get_community(decoded)) == message.community


# -- malformed input ---------------------------------------------------------------------

GOOD = encode_message(
    Message(
        version=Version.V2C,
        community=b"public",
        pdu=Pdu(
            type=PduType.RESPONSE,
            request_id=77,
            varbinds=(
                ((1, 3, 6, 1, 2, 1, 1, 3, 0), ber.TimeTicks(123)),
                ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1), ber.Counter64(2**40)),
            ),
        ),
    )
)


@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_message(data)


@given(st.integers(0, len(GOOD) - 1))
def test_every_truncation_raises_decode_error(cut: int) -> None:
    with pytest.raises(DecodeError):
        decode_message(GOOD[:cut])


@given(st.integers(0, len(GOOD) - 1), st.integers(0, 255))
def test_every_single_byte_mutation_decodes_or_raises_decode_error(pos: int, byte: int) -> None:
    data = bytearray(GOOD)
    data[pos] = byte
    with contextlib.suppress(DecodeError):
        decode_message(bytes(data))


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (GOOD + b"\x00", "trailing bytes"),
        (b"\x31" + GOOD[1:], "wrong outer tag"),
        (bytes([0x30, 0x80]) + GOOD[2:], "indefinite length"),
        (bytes([0x30, 0x85, 0, 0, 0, 0, 5]), "5-octet length"),
        (bytes.fromhex("300b020103040170a2"), "version 3"),
        (bytes.fromhex("3006020101040170"), "no PDU"),
    ],
)
def test_malformed_framing(data: bytes, why: str) -> None:
    with pytest.raises(DecodeError):
        decode_message(data)


@pytest.mark.parametrize(
    "value_tlv",
    [
        "0205 0100000000",  # INTEGER of 5 octets
        "0200",  # zero-length INTEGER
        "4106 010000000000",  # Counter32 too long
        "460a 01000000000000000000",  # Counter64 of 10 octets
        "4003 7f0000",  # IpAddress of 3 octets
        "0501 00",  # NULL with content
        "8001 00",  # noSuchObject with content
        "0602 2b80",  # truncated OID arc
        "0602 802b",  # non-minimal OID arc
        "0600",  # empty OID
        "4704 00000000",  # unknown application tag
        "1f01 00",  # high tag number
    ],
)
def test_bad_values_raise_decode_error(value_tlv: str) -> None:
    value = bytes.fromhex(value_tlv.replace(" ", ""))
    vb = bytes.fromhex("0603 2b0601") + value
    vbl = bytes([0x30, len(vb) + 2, 0x30, len(vb)]) + vb
    pdu = bytes.fromhex("020101 020100 020100") + vbl
    body = bytes.fromhex("020101 0401 70") + bytes([0xA2, len(pdu)]) + pdu
    with pytest.raises(DecodeError):
        decode_message(bytes([0x30, len(body)]) + body)


@pytest.mark.parametrize(
    ("tlv", "expected"),
    [
        ("0205 ff80000000", ber.Integer(-(2**31))),  # how pyasn1 writes -2**31
        ("0202 ff80", ber.Integer(-128)),
        ("0203 000001", ber.Integer(1)),
        ("4106 0000ffffffff", ber.Counter32(2**32 - 1)),
    ],
)
def test_redundant_sign_octets_are_accepted_when_the_value_fits(
    tlv: str, expected: ber.Value
) -> None:
    # X.690 wants the minimal form; pyasn1 (pysnmp, snmpsim agents) does not always
    # write it. Found by test_encoding_is_byte_equal_to_pysnmp with Integer(-2**31).
    data = bytes.fromhex(tlv.replace(" ", ""))
    assert ber.decode_value(data, 0, len(data)) == (expected, len(data))


def test_counter_without_leading_zero_is_read_as_unsigned() -> None:
    # A known vendor bug: 0xFFFFFFFF sent as ff ff ff ff (negative in strict BER).
    value, _ = ber.decode_value(bytes.fromhex("4104ffffffff"), 0, 6)
    assert value == ber.Counter32(2**32 - 1)


def test_error_status_maps_to_exception_classes() -> None:
    response = Pdu(
        type=PduType.RESPONSE,
        request_id=1,
        error_status=2,
        error_index=1,
        varbinds=(((1, 3, 6, 1), ber.NULL_VALUE),),
    )
    with pytest.raises(SnmpNoSuchNameError) as info:
        check_response(response, target="127.0.0.1")
    assert info.value.oid == "1.3.6.1" and info.value.index == 1
    assert isinstance(snmp_error_for(1), SnmpTooBigError)
    unknown = snmp_error_for(99)
    assert type(unknown) is SnmpStatusError and unknown.status == 99
    assert "99" in str(unknown)
