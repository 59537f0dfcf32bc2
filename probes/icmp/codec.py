"""Sans-IO codec for ICMP echo (RFC 792) and ICMPv6 echo (RFC 4443).

No sockets, clocks or loggers here: bytes in, frozen dataclasses out, and every
malformed input raises :class:`~probes.errors.DecodeError` (never anything else).

What a socket hands us differs by kind, so the decoders take ``ip_header``:

* raw IPv4 sockets (``SOCK_RAW, IPPROTO_ICMP``) deliver the IPv4 header first; its
  length is the IHL field times four (options make it longer than 20 bytes);
* datagram ICMP sockets (``SOCK_DGRAM, IPPROTO_ICMP[V6]``) and raw IPv6 sockets
  deliver the ICMP message alone (RFC 3542 section 3).

Checksums: IPv4 echo requests carry the RFC 1071 checksum, which we compute. ICMPv6
checksums cover a pseudo-header with both addresses, which only the kernel knows; on
raw and datagram ICMPv6 sockets the kernel computes it on send and verifies it on
receive (RFC 3542 section 3.1), so requests are encoded with zero there and replies
are not checked again.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from probes.errors import DecodeError, LocalProtocolError
from probes.observation import IPAddress

ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACH = 3
ICMP_ECHO_REQUEST = 8
ICMP_TIME_EXCEEDED = 11
ICMPV6_DEST_UNREACH = 1
ICMPV6_TIME_EXCEEDED = 3
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129

ICMP_HEADER_LEN = 8
IPV4_MIN_HEADER_LEN = 20
IPV6_HEADER_LEN = 40
IPPROTO_ICMP = 1
IPPROTO_ICMPV6 = 58
MAX_PAYLOAD = 65_507  # 65535 - 20 (IPv4 header) - 8 (ICMP header)

_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence

# How Linux reports ICMPv4 "destination unreachable" codes as errno
# (icmp_err_convert in net/ipv4/icmp.c); we keep the errno *name*.
_UNREACH_V4 = (
    "ENETUNREACH",  # 0 net unreachable
    "EHOSTUNREACH",  # 1 host unreachable
    "ENOPROTOOPT",  # 2 protocol unreachable
    "ECONNREFUSED",  # 3 port unreachable
    "EMSGSIZE",  # 4 fragmentation needed
    "EOPNOTSUPP",  # 5 source route failed
    "ENETUNREACH",  # 6 net unknown
    "EHOSTDOWN",  # 7 host unknown
    "ENONET",  # 8 source host isolated
    "ENETUNREACH",  # 9 net prohibited
    "EHOSTUNREACH",  # 10 host prohibited
    "ENETUNREACH",  # 11 net unreachable for TOS
    "EHOSTUNREACH",  # 12 host unreachable for TOS
    "EHOSTUNREACH",  # 13 administratively prohibited
    "EHOSTUNREACH",  # 14 host precedence violation
    "EHOSTUNREACH",  # 15 precedence cut-off
)
# icmpv6_err_convert in net/ipv6/icmp.c
_UNREACH_V6 = (
    "ENETUNREACH",  # 0 no route
    "EACCES",  # 1 administratively prohibited
    "EHOSTUNREACH",  # 2 beyond scope of source address
    "EHOSTUNREACH",  # 3 address unreachable
    "ECONNREFUSED",  # 4 port unreachable
    "EACCES",  # 5 source address failed policy
    "EACCES",  # 6 reject route
)


@dataclass(frozen=True, slots=True)
class EchoRequest:
    """A decoded echo request (what a responder sees)."""

    identifier: int
    sequence: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class EchoReply:
    """A decoded echo reply."""

    identifier: int
    sequence: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class IcmpErrorReport:
    """An ICMP error (destination unreachable, time exceeded) quoting one of our echoes.

    ``destination`` is where the quoted echo was going, so the error maps to a target;
    ``identifier`` and ``sequence`` come from the quoted echo header.
    """

    icmp_type: int
    icmp_code: int
    destination: IPAddress
    identifier: int
    sequence: int

    @property
    def reason(self) -> str:
        """A short errno-style name for ``PingResult.error``."""
        v4 = self.destination.version == 4
        if self.icmp_type == (ICMP_TIME_EXCEEDED if v4 else ICMPV6_TIME_EXCEEDED):
            return "TIME_EXCEEDED"
        table = _UNREACH_V4 if v4 else _UNREACH_V6
        if self.icmp_code < len(table):
            return table[self.icmp_code]
        return "EHOSTUNREACH"


def checksum(data: bytes | bytearray | memoryview) -> int:
    """RFC 1071 Internet checksum of ``data`` (odd lengths are zero-padded).

    The ones-complement sum of 16-bit words equals the whole buffer read as one
    big-endian integer modulo 0xFFFF, because 2**16 == 1 (mod 0xFFFF); that lets C do
    the loop. A non-zero sum that is a multiple of 0xFFFF folds to 0xFFFF, not 0.
    """
    raw = bytes(data)
    if len(raw) % 2:
        raw += b"\x00"
    value = int.from_bytes(raw, "big")
    total = value % 0xFFFF
    if total == 0 and value != 0:
        total = 0xFFFF
    return 0xFFFF - total


def _check_fields(identifier: int, sequence: int, payload: bytes) -> None:
    if not 0 <= identifier <= 0xFFFF:
        raise LocalProtocolError(f"identifier {identifier} is not a 16-bit value")
    if not 0 <= sequence <= 0xFFFF:
        raise LocalProtocolError(f"sequence {sequence} is not a 16-bit value")
    if len(payload) > MAX_PAYLOAD:
        raise LocalProtocolError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")


def _encode(icmp_type: int, identifier: int, sequence: int, payload: bytes, v4: bool) -> bytes:
    _check_fields(identifier, sequence, payload)
    packet = bytearray(ICMP_HEADER_LEN + len(payload))
    _HEADER.pack_into(packet, 0, icmp_type, 0, 0, identifier, sequence)
    packet[ICMP_HEADER_LEN:] = payload
    if v4:
        struct.pack_into("!H", packet, 2, checksum(packet))
    return bytes(packet)


def encode_echo_request(
    *, identifier: int, sequence: int, payload: bytes = b"", ipv6: bool = False
) -> bytes:
    """Encode an echo request (type 8, or 128 for ICMPv6 with a zero checksum)."""
    icmp_type = ICMPV6_ECHO_REQUEST if ipv6 else ICMP_ECHO_REQUEST
    return _encode(icmp_type, identifier, sequence, payload, not ipv6)


def encode_echo_reply(
    *, identifier: int, sequence: int, payload: bytes = b"", ipv6: bool = False
) -> bytes:
    """Encode an echo reply (type 0, or 129): for responders and tests."""
    icmp_type = ICMPV6_ECHO_REPLY if ipv6 else ICMP_ECHO_REPLY
    return _encode(icmp_type, identifier, sequence, payload, not ipv6)


def icmp_offset(packet: bytes, *, ip_header: bool) -> int:
    """Where the ICMP message starts: after the IPv4 header when ``ip_header``."""
    if not ip_header:
        return 0
    if len(packet) < IPV4_MIN_HEADER_LEN:
        raise DecodeError(f"{len(packet)} bytes is shorter than an IPv4 header", offset=0)
    version = packet[0] >> 4
    if version != 4:
        raise DecodeError(f"IP version {version}, expected 4", offset=0)
    ihl = (packet[0] & 0x0F) * 4
    if ihl < IPV4_MIN_HEADER_LEN or len(packet) < ihl:
        raise DecodeError(f"bad IPv4 header length {ihl}", offset=0)
    if packet[9] != IPPROTO_ICMP:
        raise DecodeError(f"IP protocol {packet[9]}, expected ICMP", offset=9)
    return ihl


def _header(packet: bytes, offset: int, ipv6: bool) -> tuple[int, int, int, int, int]:
    if len(packet) - offset < ICMP_HEADER_LEN:
        raise DecodeError(f"ICMP message of {len(packet) - offset} bytes", offset=offset)
    if not ipv6 and checksum(packet[offset:]) != 0:
        raise DecodeError("bad ICMP checksum", offset=offset + 2)
    icmp_type, code, _, identifier, sequence = _HEADER.unpack_from(packet, offset)
    return icmp_type, code, identifier, sequence, offset + ICMP_HEADER_LEN


def _quoted_v4(packet: bytes, start: int, icmp_type: int, code: int) -> IcmpErrorReport:
    if len(packet) - start < IPV4_MIN_HEADER_LEN:
        raise DecodeError("quoted IPv4 header truncated", offset=start)
    if packet[start] >> 4 != 4:
        raise DecodeError("quoted packet is not IPv4", offset=start)
    ihl = (packet[start] & 0x0F) * 4
    if ihl < IPV4_MIN_HEADER_LEN or len(packet) - start < ihl + ICMP_HEADER_LEN:
        raise DecodeError("quoted packet truncated", offset=start)
    if packet[start + 9] != IPPROTO_ICMP:
        raise DecodeError("quoted packet is not ICMP", offset=start + 9)
    inner = start + ihl
    if packet[inner] != ICMP_ECHO_REQUEST:
        raise DecodeError("quoted ICMP message is not an echo request", offset=inner)
    identifier, sequence = struct.unpack_from("!HH", packet, inner + 4)
    destination = ipaddress.IPv4Address(packet[start + 16 : start + 20])
    return IcmpErrorReport(icmp_type, code, destination, identifier, sequence)


def _quoted_v6(packet: bytes, start: int, icmp_type: int, code: int) -> IcmpErrorReport:
    if len(packet) - start < IPV6_HEADER_LEN + ICMP_HEADER_LEN:
        raise DecodeError("quoted IPv6 packet truncated", offset=start)
    if packet[start] >> 4 != 6:
        raise DecodeError("quoted packet is not IPv6", offset=start)
    # Our echoes carry no extension headers, so anything else is not ours.
    if packet[start + 6] != IPPROTO_ICMPV6:
        raise DecodeError("quoted packet is not ICMPv6", offset=start + 6)
    inner = start + IPV6_HEADER_LEN
    if packet[inner] != ICMPV6_ECHO_REQUEST:
        raise DecodeError("quoted ICMPv6 message is not an echo request", offset=inner)
    identifier, sequence = struct.unpack_from("!HH", packet, inner + 4)
    destination = ipaddress.IPv6Address(packet[start + 24 : start + 40])
    return IcmpErrorReport(icmp_type, code, destination, identifier, sequence)


def decode_reply(
    packet: bytes, *, ipv6: bool = False, ip_header: bool = False
) -> EchoReply | IcmpErrorReport:
    """Decode what an ICMP socket received into an echo reply or an error report.

    Args:
        packet: the bytes from ``recvfrom``.
        ipv6: ICMPv6 (types 129, 1, 3) instead of ICMPv4 (types 0, 3, 11).
        ip_header: the packet starts with an IPv4 header (raw IPv4 sockets only).

    Raises:
        DecodeError: anything else, including echo requests, bad checksums
            and truncated packets.
    """
    if ipv6 and ip_header:
        raise DecodeError("IPv6 sockets never deliver the IP header", offset=0)
    offset = icmp_offset(packet, ip_header=ip_header)
    icmp_type, code, identifier, sequence, body = _header(packet, offset, ipv6)
    if ipv6:
        if icmp_type == ICMPV6_ECHO_REPLY and code == 0:
            return EchoReply(identifier, sequence, bytes(packet[body:]))
        if icmp_type in (ICMPV6_DEST_UNREACH, ICMPV6_TIME_EXCEEDED):
            return _quoted_v6(packet, body, icmp_type, code)
    else:
        if icmp_type == ICMP_ECHO_REPLY and code == 0:
            return EchoReply(identifier, sequence, bytes(packet[body:]))
        if icmp_type in (ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED):
            return _quoted_v4(packet, body, icmp_type, code)
    raise DecodeError(f"ICMP type {icmp_type} code {code} is not a reply", offset=offset)


def decode_request(packet: bytes, *, ipv6: bool = False, ip_header: bool = False) -> EchoRequest:
    """Decode an echo request (for responders); same conventions as ``decode_reply``."""
    if ipv6 and ip_header:
        raise DecodeError("IPv6 sockets never deliver the IP header", offset=0)
    offset = icmp_offset(packet, ip_header=ip_header)
    icmp_type, code, identifier, sequence, body = _header(packet, offset, ipv6)
    expected = ICMPV6_ECHO_REQUEST if ipv6 else ICMP_ECHO_REQUEST
    if icmp_type != expected or code != 0:
        raise DecodeError(f"ICMP type {icmp_type} code {code} is not an echo request")
    return EchoRequest(identifier, sequence, bytes(packet[body:]))
