"""Unit tests for the sans-IO ICMP codec: no sockets."""

from __future__ import annotations

import contextlib
import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.errors import DecodeError, LocalProtocolError
from probes.icmp import codec

ids = st.integers(min_value=0, max_value=0xFFFF)
payloads = st.binary(max_size=300)


def naive_checksum(data: bytes) -> int:
    """RFC 1071 the long way: 16-bit words, end-around carry, complement."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def as_reply(request: bytes, *, ipv6: bool) -> bytes:
    """What a host answers: same message with the reply type (and a fresh checksum)."""
    reply = bytearray(request)
    reply[0] = codec.ICMPV6_ECHO_REPLY if ipv6 else codec.ICMP_ECHO_REPLY
    reply[2:4] = b"\x00\x00"
    if not ipv6:
        reply[2:4] = struct.pack("!H", naive_checksum(bytes(reply)))
    return bytes(reply)


def ipv4_header(payload_len: int, *, options: int = 0, src: str = "127.0.0.2") -> bytes:
    ihl = 5 + options
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        ihl * 4 + payload_len,
        0,
        0,
        64,
        codec.IPPROTO_ICMP,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address("127.0.0.1").packed,
    )
    return header + b"\x01" * (options * 4)


@given(data=st.binary(max_size=200))
def test_checksum_matches_naive_implementation(data: bytes) -> None:
    assert codec.checksum(data) == naive_checksum(data)


@pytest.mark.parametrize("data", [b"", b"\x00" * 4, b"\xff\xff", b"\xff\xff\xff\xff", b"\x01"])
def test_checksum_edge_cases(data: bytes) -> None:
    assert codec.checksum(data) == naive_checksum(data)


@given(identifier=ids, sequence=ids, payload=payloads)
def test_v4_request_carries_valid_checksum(identifier: int, sequence: int, payload: bytes) -> None:
    packet = codec.encode_echo_request(identifier=identifier, sequence=sequence, payload=payload)
    assert packet[0] == codec.ICMP_ECHO_REQUEST
    assert naive_checksum(packet) == 0
    assert codec.decode_request(packet) == codec.EchoRequest(identifier, sequence, payload)


@given(identifier=ids, sequence=ids, payload=payloads, ipv6=st.booleans())
def test_reply_round_trip(identifier: int, sequence: int, payload: bytes, ipv6: bool) -> None:
    request = codec.encode_echo_request(
        identifier=identifier, sequence=sequence, payload=payload, ipv6=ipv6
    )
    reply = codec.decode_reply(as_reply(request, ipv6=ipv6), ipv6=ipv6)
    assert reply == codec.EchoReply(identifier, sequence, payload)


@given(identifier=ids, sequence=ids, payload=payloads, options=st.integers(0, 10))
def test_reply_after_ipv4_header_round_trip(
    identifier: int, sequence: int, payload: bytes, options: int
) -> None:
    """Raw IPv4 sockets deliver the IP header first; IHL (with options) is skipped."""
    request = codec.encode_echo_request(identifier=identifier, sequence=sequence, payload=payload)
    icmp = as_reply(request, ipv6=False)
    packet = ipv4_header(len(icmp), options=options) + icmp
    reply = codec.decode_reply(packet, ip_header=True)
    assert reply == codec.EchoReply(identifier, sequence, payload)


def test_encoder_matches_reply_encoder() -> None:
    request = codec.encode_echo_request(identifier=7, sequence=9, payload=b"abc")
    assert as_reply(request, ipv6=False) == codec.encode_echo_reply(
        identifier=7, sequence=9, payload=b"abc"
    )


@given(data=st.binary(max_size=120), ipv6=st.booleans(), ip_header=st.booleans())
def test_arbitrary_bytes_decode_or_raise_decode_error(
    data: bytes, ipv6: bool, ip_header: bool
) -> None:
    for decode in (codec.decode_reply, codec.decode_request):
        with contextlib.suppress(DecodeError):
            decode(data, ipv6=ipv6, ip_header=ip_header)


@given(
    identifier=ids,
    sequence=ids,
    payload=payloads,
    ipv6=st.booleans(),
    data=st.data(),
)
def test_truncated_header_raises(
    identifier: int, sequence: int, payload: bytes, ipv6: bool, data: st.DataObject
) -> None:
    request = codec.encode_echo_request(
        identifier=identifier, sequence=sequence, payload=payload, ipv6=ipv6
    )
    reply = as_reply(request, ipv6=ipv6)
    cut = data.draw(st.integers(0, codec.ICMP_HEADER_LEN - 1))
    with pytest.raises(DecodeError):
        codec.decode_reply(reply[:cut], ipv6=ipv6)
    if not ipv6:
        packet = ipv4_header(len(reply)) + reply
        cut = data.draw(st.integers(0, 20 + codec.ICMP_HEADER_LEN - 1))
        with pytest.raises(DecodeError):
            codec.decode_reply(packet[:cut], ip_header=True)


def test_corrupted_v4_checksum_raises() -> None:
    reply = bytearray(codec.encode_echo_reply(identifier=1, sequence=2, payload=b"xyz"))
    reply[-1] ^= 0xFF
    with pytest.raises(DecodeError, match="checksum"):
        codec.decode_reply(bytes(reply))


def test_request_is_not_a_reply() -> None:
    request = codec.encode_echo_request(identifier=1, sequence=2)
    with pytest.raises(DecodeError):
        codec.decode_reply(request)


def test_v6_request_has_zero_checksum_for_the_kernel() -> None:
    packet = codec.encode_echo_request(identifier=0x1234, sequence=5, payload=b"p", ipv6=True)
    assert packet == bytes([128, 0, 0, 0, 0x12, 0x34, 0, 5]) + b"p"


def test_v4_error_quoting_our_echo_maps_to_target() -> None:
    echo = codec.encode_echo_request(identifier=0xBEEF, sequence=42, payload=bytes(56))
    quoted = ipv4_header(len(echo), src="127.0.0.1")[:16] + bytes([192, 0, 2, 77]) + echo[:8]
    # Fix up: the quoted header's destination is the target.
    error = bytearray(struct.pack("!BBHI", codec.ICMP_DEST_UNREACH, 1, 0, 0) + quoted)
    error[2:4] = struct.pack("!H", naive_checksum(bytes(error)))
    report = codec.decode_reply(ipv4_header(len(error)) + bytes(error), ip_header=True)
    assert report == codec.IcmpErrorReport(
        codec.ICMP_DEST_UNREACH, 1, ipaddress.IPv4Address("192.0.2.77"), 0xBEEF, 42
    )
    assert isinstance(report, codec.IcmpErrorReport)
    assert report.reason == "EHOSTUNREACH"


def test_v4_time_exceeded_reason() -> None:
    echo = codec.encode_echo_request(identifier=1, sequence=2)
    quoted = ipv4_header(len(echo))[:16] + bytes([192, 0, 2, 1]) + echo
    error = bytearray(struct.pack("!BBHI", codec.ICMP_TIME_EXCEEDED, 0, 0, 0) + quoted)
    error[2:4] = struct.pack("!H", naive_checksum(bytes(error)))
    report = codec.decode_reply(bytes(error))
    assert isinstance(report, codec.IcmpErrorReport)
    assert report.reason == "TIME_EXCEEDED"


def test_v6_error_quoting_our_echo_maps_to_target() -> None:
    echo = codec.encode_echo_request(identifier=7, sequence=8, payload=b"x" * 16, ipv6=True)
    target = ipaddress.IPv6Address("fd4e:5455:1::2")
    inner = (
        struct.pack("!IHBB", 0x60000000, len(echo), codec.IPPROTO_ICMPV6, 64)
        + ipaddress.IPv6Address("fd4e:5455:1::1").packed
        + target.packed
        + echo
    )
    error = struct.pack("!BBHI", codec.ICMPV6_DEST_UNREACH, 3, 0, 0) + inner
    report = codec.decode_reply(error, ipv6=True)
    assert report == codec.IcmpErrorReport(codec.ICMPV6_DEST_UNREACH, 3, target, 7, 8)
    assert isinstance(report, codec.IcmpErrorReport)
    assert report.reason == "EHOSTUNREACH"
    with pytest.raises(DecodeError):
        codec.decode_reply(error[: 8 + 40 + 7], ipv6=True)


@pytest.mark.parametrize(
    ("identifier", "sequence", "payload"),
    [(-1, 0, b""), (0x10000, 0, b""), (0, 0x10000, b""), (0, 0, bytes(codec.MAX_PAYLOAD + 1))],
)
def test_encoder_rejects_bad_fields(identifier: int, sequence: int, payload: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        codec.encode_echo_request(identifier=identifier, sequence=sequence, payload=payload)
