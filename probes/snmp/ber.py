"""BER (X.690) for the subset SNMP v1/v2c uses: lengths, INTEGER, OCTET STRING, NULL,
OBJECT IDENTIFIER, SEQUENCE and the SMI application types (RFC 2578 / RFC 3416).

Sans-IO: functions take and return bytes and frozen values. Decoders work on a
``bytes`` object with explicit ``(pos, end)`` bounds, so a nested length can never
read past its parent, and raise :class:`~probes.errors.DecodeError` (never
``IndexError``, ``ValueError`` ...) for anything malformed: truncation, lengths that
overrun their parent, indefinite lengths (forbidden by RFC 3417 section 8), integers
longer than their type allows, bad tags, zero-length INTEGERs, non-minimal OID arcs.

Values are small frozen dataclasses, one per SMI type, so that ``Counter32(5)`` and
``Gauge32(5)`` stay distinct through a round trip. OIDs are tuples of ints.
"""

from __future__ import annotations

from dataclasses import dataclass

from probes.errors import DecodeError

Oid = tuple[int, ...]

# Universal and SMI application tags (RFC 2578 section 7.1, RFC 3416 section 3).
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
SEQUENCE = 0x30
IP_ADDRESS = 0x40
COUNTER32 = 0x41
GAUGE32 = 0x42
TIMETICKS = 0x43
OPAQUE = 0x44
COUNTER64 = 0x46
NO_SUCH_OBJECT = 0x80
NO_SUCH_INSTANCE = 0x81
END_OF_MIB_VIEW = 0x82

_MAX_OID_ARCS = 128  # RFC 2578 section 3.5
_MAX_ARC = 0xFFFFFFFF


def parse_oid(text: str) -> Oid:
    """``"1.3.6.1.2.1.1.3.0"`` (a leading dot is allowed) -> ``(1, 3, 6, ...)``."""
    oid = tuple(int(part) for part in text.strip().lstrip(".").split("."))
    check_oid(oid)
    return oid


def format_oid(oid: Oid) -> str:
    """``(1, 3, 6, 1)`` -> ``"1.3.6.1"``."""
    return ".".join(map(str, oid))


def check_oid(oid: Oid) -> None:
    """Raise ``ValueError`` unless ``oid`` can be BER-encoded."""
    if not 2 <= len(oid) <= _MAX_OID_ARCS:
        raise ValueError(f"an OID has 2 to {_MAX_OID_ARCS} arcs, not {len(oid)}")
    if oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40):
        raise ValueError(f"invalid first arcs {oid[0]}.{oid[1]}")
    if any(not 0 <= arc <= _MAX_ARC for arc in oid) or oid[0] * 40 + oid[1] > _MAX_ARC:
        raise ValueError("OID arcs must be 0 to 4294967295")


# -- values ---------------------------------------------------------------------------


def _check_range(value: int, low: int, high: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an int within {low}..{high}, not {value!r}")


@dataclass(frozen=True, slots=True)
class Integer:
    """INTEGER / Integer32 (also used for enumerations such as ifOperStatus)."""

    value: int
    tag = INTEGER

    def __post_init__(self) -> None:
        _check_range(self.value, -(2**31), 2**31 - 1, "Integer")


@dataclass(frozen=True, slots=True)
class OctetString:
    """OCTET STRING (DisplayString, PhysAddress, ...): raw bytes."""

    value: bytes
    tag = OCTET_STRING

    def text(self) -> str:
        """The value as text (DisplayString); undecodable bytes are replaced."""
        return self.value.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class Null:
    """NULL: the value of every varbind in a request."""

    tag = NULL


@dataclass(frozen=True, slots=True)
class ObjectIdentifier:
    """OBJECT IDENTIFIER as a value (e.g. sysObjectID, snmpTrapOID.0)."""

    value: Oid
    tag = OBJECT_IDENTIFIER

    def __post_init__(self) -> None:
        check_oid(self.value)


@dataclass(frozen=True, slots=True)
class IpAddress:
    """IpAddress: four octets in network order."""

    value: bytes
    tag = IP_ADDRESS

    def __post_init__(self) -> None:
        if len(self.value) != 4:
            raise ValueError("IpAddress must be 4 bytes")


@dataclass(frozen=True, slots=True)
class Counter32:
    """Counter32: wraps at 2**32."""

    value: int
    tag = COUNTER32

    def __post_init__(self) -> None:
        _check_range(self.value, 0, 2**32 - 1, "Counter32")


@dataclass(frozen=True, slots=True)
class Gauge32:
    """Gauge32 / Unsigned32."""

    value: int
    tag = GAUGE32

    def __post_init__(self) -> None:
        _check_range(self.value, 0, 2**32 - 1, "Gauge32")


@dataclass(frozen=True, slots=True)
class TimeTicks:
    """TimeTicks: hundredths of a second, wraps at 2**32 (~497 days)."""

    value: int
    tag = TIMETICKS

    def __post_init__(self) -> None:
        _check_range(self.value, 0, 2**32 - 1, "TimeTicks")


@dataclass(frozen=True, slots=True)
class Counter64:
    """Counter64 (ifHC* counters); SNMPv2c and later only."""

    value: int
    tag = COUNTER64

    def __post_init__(self) -> None:
        _check_range(self.value, 0, 2**64 - 1, "Counter64")


@dataclass(frozen=True, slots=True)
class Opaque:
    """Opaque: BER-wrapped bytes we do not interpret."""

    value: bytes
    tag = OPAQUE


@dataclass(frozen=True, slots=True)
class NoSuchObject:
    """v2c exception: the agent implements no such object."""

    tag = NO_SUCH_OBJECT


@dataclass(frozen=True, slots=True)
class NoSuchInstance:
    """v2c exception: the object exists but not this instance."""

    tag = NO_SUCH_INSTANCE


@dataclass(frozen=True, slots=True)
class EndOfMibView:
    """v2c exception: a GETNEXT / GETBULK ran past the end of the agent's MIB."""

    tag = END_OF_MIB_VIEW


Value = (
    Integer
    | OctetString
    | Null
    | ObjectIdentifier
    | IpAddress
    | Counter32
    | Gauge32
    | TimeTicks
    | Counter64
    | Opaque
    | NoSuchObject
    | NoSuchInstance
    | EndOfMibView
)
EXCEPTION_TYPES = (NoSuchObject, NoSuchInstance, EndOfMibView)
NULL_VALUE = Null()
NO_SUCH_OBJECT_VALUE = NoSuchObject()
NO_SUCH_INSTANCE_VALUE = NoSuchInstance()
END_OF_MIB_VIEW_VALUE = EndOfMibView()

# -- encoding ---------------------------------------------------------------------------


def encode_length(length: int) -> bytes:
    """Definite length, short form below 128, else the shortest long form."""
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, body: bytes) -> bytes:
    """One tag-length-value."""
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    return bytes((tag,)) + encode_length(n) + body


def encode_signed(value: int) -> bytes:
    """Minimal two's complement content octets."""
    magnitude = value if value >= 0 else ~value  # -128 fits in one octet, 128 needs two
    return value.to_bytes(magnitude.bit_length() // 8 + 1, "big", signed=True)


def encode_unsigned(value: int) -> bytes:
    """Content octets of a non-negative INTEGER (a leading 0x00 when the top bit is set)."""
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def encode_oid_body(oid: Oid) -> bytes:
    """Content octets of an OBJECT IDENTIFIER (first two arcs combined, base 128)."""
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        if arc < 0x80:
            out.append(arc)
            continue
        chunk = bytearray((arc & 0x7F,))
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        chunk.reverse()
        out += chunk
    return bytes(out)


def encode_value(value: Value) -> bytes:
    """One value as a TLV."""
    tag = value.tag
    if isinstance(value, Integer):
        return tlv(tag, encode_signed(value.value))
    if isinstance(value, Counter32 | Gauge32 | TimeTicks | Counter64):
        return tlv(tag, encode_unsigned(value.value))
    if isinstance(value, OctetString | IpAddress | Opaque):
        return tlv(tag, value.value)
    if isinstance(value, ObjectIdentifier):
        return tlv(tag, encode_oid_body(value.value))
    return bytes((tag, 0))  # NULL and the three exceptions


# -- decoding ---------------------------------------------------------------------------


def read_header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read a tag and a length at ``pos``; return ``(tag, content start, content end)``."""
    if pos + 2 > end:
        raise DecodeError("truncated: no room for a tag and a length", offset=pos)
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DecodeError(f"high tag numbers are not used by SNMP (0x{tag:02x})", offset=pos)
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise DecodeError("indefinite length is forbidden in SNMP", offset=pos - 1)
        if count > 4:
            raise DecodeError(f"length of {count} octets is too long", offset=pos - 1)
        if pos + count > end:
            raise DecodeError("truncated length", offset=pos)
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    stop = pos + length
    if stop > end:
        raise DecodeError(
            f"length {length} overruns its container by {stop - end} octets", offset=pos
        )
    return tag, pos, stop


def expect(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """Read a TLV that must have ``tag``; return its content bounds."""
    got, start, stop = read_header(data, pos, end)
    if got != tag:
        raise DecodeError(f"{what}: expected tag 0x{tag:02x}, got 0x{got:02x}", offset=pos)
    return start, stop


_SIGN_PADDING = 4  # redundant leading sign octets tolerated by decode_int


def decode_int(data: bytes, start: int, stop: int, max_octets: int) -> int:
    """Signed content octets whose value fits in ``max_octets`` octets.

    X.690 section 8.3.2 asks for the minimal form, but pyasn1 (so pysnmp and snmpsim
    agents) writes -128, -32768, ..., -2**31 with one redundant leading 0xff octet.
    Redundant sign octets are therefore accepted, as long as the value fits.
    """
    n = stop - start
    if n == 0:
        raise DecodeError("zero-length INTEGER", offset=start)
    if n <= max_octets:
        return int.from_bytes(data[start:stop], "big", signed=True)
    if n > max_octets + _SIGN_PADDING:
        raise DecodeError(f"INTEGER of {n} octets is too long", offset=start)
    value = int.from_bytes(data[start:stop], "big", signed=True)
    limit = 1 << (8 * max_octets - 1)
    if not -limit <= value < limit:
        raise DecodeError(f"INTEGER of {n} octets is too long", offset=start)
    return value


def decode_unsigned(data: bytes, start: int, stop: int, bits: int) -> int:
    """An unsigned application integer (Counter32, Gauge32, TimeTicks, Counter64)."""
    value = decode_int(data, start, stop, bits // 8 + 1)
    if value < 0:
        if stop - start > bits // 8:
            raise DecodeError("negative unsigned integer", offset=start)
        # Some agents forget the leading 0x00 on values with the top bit set (a known
        # vendor bug that net-snmp also tolerates): read the octets as unsigned.
        value += 1 << (8 * (stop - start))
    if value >> bits:
        raise DecodeError(f"value does not fit in {bits} bits", offset=start)
    return value


def decode_oid(data: bytes, start: int, stop: int) -> Oid:
    """Content octets of an OBJECT IDENTIFIER."""
    if start == stop:
        raise DecodeError("zero-length OBJECT IDENTIFIER", offset=start)
    arcs: list[int] = []
    arc = 0
    fresh = True
    for i in range(start, stop):
        octet = data[i]
        if fresh and octet == 0x80:
            raise DecodeError("non-minimal OID arc", offset=i)
        arc = (arc << 7) | (octet & 0x7F)
        if octet & 0x80:
            fresh = False
            continue
        if arc > _MAX_ARC:
            raise DecodeError("OID arc exceeds 32 bits", offset=i)
        arcs.append(arc)
        arc = 0
        fresh = True
    if not fresh:
        raise DecodeError("truncated OID arc", offset=stop)
    if len(arcs) >= _MAX_OID_ARCS:
        raise DecodeError("OID has too many arcs", offset=start)
    first = arcs[0]
    if first < 40:
        arcs[0:1] = [0, first]
    elif first < 80:
        arcs[0:1] = [1, first - 40]
    else:
        arcs[0:1] = [2, first - 80]
    return tuple(arcs)


def decode_value(data: bytes, pos: int, end: int) -> tuple[Value, int]:
    """One value TLV at ``pos``; return it and the position after it."""
    tag, start, stop = read_header(data, pos, end)
    value: Value
    if tag == INTEGER:
        value = Integer(decode_int(data, start, stop, 4))
    elif tag == OCTET_STRING:
        value = OctetString(data[start:stop])
    elif tag == COUNTER64:
        value = Counter64(decode_unsigned(data, start, stop, 64))
    elif tag == COUNTER32:
        value = Counter32(decode_unsigned(data, start, stop, 32))
    elif tag == GAUGE32:
        value = Gauge32(decode_unsigned(data, start, stop, 32))
    elif tag == TIMETICKS:
        value = TimeTicks(decode_unsigned(data, start, stop, 32))
    elif tag == OBJECT_IDENTIFIER:
        value = ObjectIdentifier(decode_oid(data, start, stop))
    elif tag == IP_ADDRESS:
        if stop - start != 4:
            raise DecodeError("IpAddress must be 4 octets", offset=start)
        value = IpAddress(data[start:stop])
    elif tag == OPAQUE:
        value = Opaque(data[start:stop])
    elif tag in (NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW):
        if stop != start:
            raise DecodeError(f"tag 0x{tag:02x} must have no content", offset=start)
        value = _EMPTY[tag]
    else:
        raise DecodeError(f"unknown value tag 0x{tag:02x}", offset=pos)
    return value, stop


_EMPTY: dict[int, Value] = {
    NULL: NULL_VALUE,
    NO_SUCH_OBJECT: NO_SUCH_OBJECT_VALUE,
    NO_SUCH_INSTANCE: NO_SUCH_INSTANCE_VALUE,
    END_OF_MIB_VIEW: END_OF_MIB_VIEW_VALUE,
}
