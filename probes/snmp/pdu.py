"""SNMP v1 / v2c messages and PDUs (RFC 1157, RFC 3416): encode and decode.

Sans-IO::

    Message ::= SEQUENCE { version INTEGER, community OCTET STRING, data PDU }

PDUs are frozen dataclasses: :class:`Pdu` (GetRequest, GetNextRequest, Response,
SetRequest, SNMPv2-Trap, InformRequest, Report: they share one shape),
:class:`BulkPdu` (GetBulkRequest, whose error fields are non-repeaters and
max-repetitions) and :class:`TrapV1Pdu` (the v1 Trap shape). :func:`decode_message`
raises only :class:`~probes.errors.DecodeError`, including for trailing bytes after
the message and for PDU types a version does not allow (GetBulk, Inform and
SNMPv2-Trap in v1; v1 Trap in v2c).

:func:`check_response` turns a Response's error-status into the exception class from
``probes.errors.SNMP_ERROR_STATUS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from probes.errors import DecodeError, snmp_error_for
from probes.snmp import ber
from probes.snmp.ber import Oid, Value

VarBind = tuple[Oid, Value]


class Version(IntEnum):
    """The message version field (SNMPv3 is handled by pysnmp, not this codec)."""

    V1 = 0
    V2C = 1


class PduType(IntEnum):
    """Context-specific constructed tags of the PDUs (RFC 3416 section 3)."""

    GET = 0xA0
    GET_NEXT = 0xA1
    RESPONSE = 0xA2
    SET = 0xA3
    TRAP_V1 = 0xA4
    GET_BULK = 0xA5
    INFORM = 0xA6
    TRAP_V2 = 0xA7
    REPORT = 0xA8


_REQUEST_ID_MIN = -(2**31)
_REQUEST_ID_MAX = 2**31 - 1
_V2_ONLY = frozenset({PduType.GET_BULK, PduType.INFORM, PduType.TRAP_V2, PduType.REPORT})


def _check_int32(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, not {value!r}")
    if not _REQUEST_ID_MIN <= value <= _REQUEST_ID_MAX:
        raise ValueError(f"{name} must fit in 32 bits, not {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Pdu:
    """Get / GetNext / Response / Set / SNMPv2-Trap / Inform / Report."""

    type: PduType
    request_id: int
    error_status: int = 0
    error_index: int = 0
    varbinds: tuple[VarBind, ...] = ()

    def __post_init__(self) -> None:
        if self.type in (PduType.GET_BULK, PduType.TRAP_V1):
            raise ValueError(f"{self.type.name} has its own PDU class")
        _check_int32(self.request_id, "request_id")
        _check_int32(self.error_status, "error_status")
        _check_int32(self.error_index, "error_index")


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkPdu:
    """GetBulkRequest (v2c only)."""

    request_id: int
    non_repeaters: int = 0
    max_repetitions: int = 10
    varbinds: tuple[VarBind, ...] = ()
    type = PduType.GET_BULK

    def __post_init__(self) -> None:
        _check_int32(self.request_id, "request_id")
        for name in ("non_repeaters", "max_repetitions"):
            value = getattr(self, name)
            _check_int32(value, name)
            if value < 0:
                raise ValueError(f"{name} must be >= 0, not {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapV1Pdu:
    """SNMPv1 Trap-PDU (RFC 1157 section 4.1.6)."""

    enterprise: Oid
    agent_addr: bytes  # IpAddress, 4 octets
    generic_trap: int  # 0 coldStart, 1 warmStart, 2 linkDown, 3 linkUp, ... 6 specific
    specific_trap: int
    timestamp: int  # TimeTicks
    varbinds: tuple[VarBind, ...] = ()
    type = PduType.TRAP_V1

    def __post_init__(self) -> None:
        ber.check_oid(self.enterprise)
        if len(self.agent_addr) != 4:
            raise ValueError("agent_addr must be 4 bytes")
        _check_int32(self.generic_trap, "generic_trap")
        _check_int32(self.specific_trap, "specific_trap")
        if not 0 <= self.timestamp <= 2**32 - 1:
            raise ValueError("timestamp must be 0..2**32-1")


AnyPdu = Pdu | BulkPdu | TrapV1Pdu


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One v1 / v2c message. ``community`` is a secret: it is left out of ``repr``."""

    version: Version
    pdu: AnyPdu
    community: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if self.version == Version.V1 and self.pdu.type in _V2_ONLY:
            raise ValueError(f"{self.pdu.type.name} does not exist in SNMPv1")
        if self.version == Version.V2C and self.pdu.type == PduType.TRAP_V1:
            raise ValueError("the v1 Trap PDU does not exist in SNMPv2c")


# -- encoding ---------------------------------------------------------------------------


def encode_varbinds(varbinds: tuple[VarBind, ...] | list[VarBind]) -> bytes:
    """VarBindList as a TLV."""
    body = b"".join(
        ber.tlv(
            ber.SEQUENCE,
            ber.tlv(ber.OBJECT_IDENTIFIER, ber.encode_oid_body(oid)) + ber.encode_value(value),
        )
        for oid, value in varbinds
    )
    return ber.tlv(ber.SEQUENCE, body)


def _int_tlv(value: int) -> bytes:
    return ber.tlv(ber.INTEGER, ber.encode_signed(value))


def encode_pdu(pdu: AnyPdu) -> bytes:
    """A PDU as a TLV."""
    if isinstance(pdu, TrapV1Pdu):
        body = (
            ber.tlv(ber.OBJECT_IDENTIFIER, ber.encode_oid_body(pdu.enterprise))
            + ber.tlv(ber.IP_ADDRESS, pdu.agent_addr)
            + _int_tlv(pdu.generic_trap)
            + _int_tlv(pdu.specific_trap)
            + ber.tlv(ber.TIMETICKS, ber.encode_unsigned(pdu.timestamp))
            + encode_varbinds(pdu.varbinds)
        )
        return ber.tlv(pdu.type, body)
    if isinstance(pdu, BulkPdu):
        second, third = pdu.non_repeaters, pdu.max_repetitions
    else:
        second, third = pdu.error_status, pdu.error_index
    body = (
        _int_tlv(pdu.request_id)
        + _int_tlv(second)
        + _int_tlv(third)
        + encode_varbinds(pdu.varbinds)
    )
    return ber.tlv(pdu.type, body)


def encode_message(message: Message) -> bytes:
    """A whole message, ready for ``sendto``."""
    return encode_raw(message.version, message.community, encode_pdu(message.pdu))


def encode_raw(version: int, community: bytes, pdu_tlv: bytes) -> bytes:
    """Wrap an already encoded PDU (the client's fast path reuses encoded varbinds)."""
    return ber.tlv(
        ber.SEQUENCE,
        _int_tlv(version) + ber.tlv(ber.OCTET_STRING, community) + pdu_tlv,
    )


def encode_request(
    pdu_type: PduType, request_id: int, varbind_list: bytes, second: int = 0, third: int = 0
) -> bytes:
    """A request PDU TLV around an encoded VarBindList (see :func:`encode_varbinds`)."""
    body = _int_tlv(request_id) + _int_tlv(second) + _int_tlv(third) + varbind_list
    return ber.tlv(pdu_type, body)


def null_varbinds(oids: tuple[Oid, ...] | list[Oid]) -> bytes:
    """The VarBindList of a request: every OID with a NULL value."""
    return encode_varbinds([(oid, ber.NULL_VALUE) for oid in oids])


# -- decoding ---------------------------------------------------------------------------


def decode_varbinds(data: bytes, pos: int, end: int) -> tuple[VarBind, ...]:
    """A VarBindList TLV at ``pos`` that must end exactly at ``end``."""
    start, stop = ber.expect(data, pos, end, ber.SEQUENCE, "VarBindList")
    if stop != end:
        raise DecodeError("trailing bytes after the VarBindList", offset=stop)
    out: list[VarBind] = []
    read_header = ber.read_header
    decode_value = ber.decode_value
    decode_oid = ber.decode_oid
    pos = start
    while pos < stop:
        tag, vb_start, vb_stop = read_header(data, pos, stop)
        if tag != ber.SEQUENCE:
            raise DecodeError(f"VarBind: expected a SEQUENCE, got 0x{tag:02x}", offset=pos)
        tag, o_start, o_stop = read_header(data, vb_start, vb_stop)
        if tag != ber.OBJECT_IDENTIFIER:
            raise DecodeError(f"VarBind name: expected an OID, got 0x{tag:02x}", offset=vb_start)
        oid = decode_oid(data, o_start, o_stop)
        value, after = decode_value(data, o_stop, vb_stop)
        if after != vb_stop:
            raise DecodeError("trailing bytes inside a VarBind", offset=after)
        out.append((oid, value))
        pos = vb_stop
    return tuple(out)


def _read_int(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    start, stop = ber.expect(data, pos, end, ber.INTEGER, what)
    return ber.decode_int(data, start, stop, 4), stop


def decode_pdu(data: bytes, pos: int, end: int) -> AnyPdu:
    """The PDU TLV at ``pos``, which must fill ``[pos, end)`` exactly."""
    tag, start, stop = ber.read_header(data, pos, end)
    if stop != end:
        raise DecodeError("trailing bytes after the PDU", offset=stop)
    try:
        pdu_type = PduType(tag)
    except ValueError:
        raise DecodeError(f"unknown PDU tag 0x{tag:02x}", offset=pos) from None
    try:
        if pdu_type == PduType.TRAP_V1:
            return _decode_trap_v1(data, start, stop)
        request_id, p = _read_int(data, start, stop, "request-id")
        second, p = _read_int(data, p, stop, "error-status")
        third, p = _read_int(data, p, stop, "error-index")
        varbinds = decode_varbinds(data, p, stop)
        if pdu_type == PduType.GET_BULK:
            return BulkPdu(
                request_id=request_id,
                non_repeaters=max(second, 0),  # RFC 3416 4.2.3: negative counts as zero
                max_repetitions=max(third, 0),
                varbinds=varbinds,
            )
        return Pdu(
            type=pdu_type,
            request_id=request_id,
            error_status=second,
            error_index=third,
            varbinds=varbinds,
        )
    except ValueError as exc:  # a dataclass check: the value is out of range
        raise DecodeError(str(exc), offset=start) from None


def _decode_trap_v1(data: bytes, pos: int, end: int) -> TrapV1Pdu:
    start, stop = ber.expect(data, pos, end, ber.OBJECT_IDENTIFIER, "enterprise")
    enterprise = ber.decode_oid(data, start, stop)
    start, stop = ber.expect(data, stop, end, ber.IP_ADDRESS, "agent-addr")
    if stop - start != 4:
        raise DecodeError("agent-addr must be 4 octets", offset=start)
    agent_addr = data[start:stop]
    generic, p = _read_int(data, stop, end, "generic-trap")
    specific, p = _read_int(data, p, end, "specific-trap")
    start, stop = ber.expect(data, p, end, ber.TIMETICKS, "time-stamp")
    timestamp = ber.decode_unsigned(data, start, stop, 32)
    varbinds = decode_varbinds(data, stop, end)
    return TrapV1Pdu(
        enterprise=enterprise,
        agent_addr=agent_addr,
        generic_trap=generic,
        specific_trap=specific,
        timestamp=timestamp,
        varbinds=varbinds,
    )


def decode_header(data: bytes) -> tuple[Version, bytes, int, int]:
    """Version, community and the PDU's bounds; checks the outer framing only."""
    if not isinstance(data, bytes):
        data = bytes(data)
    start, stop = ber.expect(data, 0, len(data), ber.SEQUENCE, "Message")
    if stop != len(data):
        raise DecodeError("trailing bytes after the message", offset=stop)
    version, p = _read_int(data, start, stop, "version")
    if version not in (0, 1):
        raise DecodeError(f"unsupported SNMP version field {version}", offset=start)
    c_start, c_stop = ber.expect(data, p, stop, ber.OCTET_STRING, "community")
    return Version(version), data[c_start:c_stop], c_stop, stop


def decode_message(data: bytes) -> Message:
    """Decode one datagram.

    Raises:
        DecodeError: the bytes are not a valid SNMP v1 / v2c message.
    """
    version, community, pos, end = decode_header(data)
    pdu = decode_pdu(data, pos, end)
    if version == Version.V1 and pdu.type in _V2_ONLY:
        raise DecodeError(f"{pdu.type.name} is not allowed in an SNMPv1 message")
    if version == Version.V2C and pdu.type == PduType.TRAP_V1:
        raise DecodeError("the v1 Trap PDU is not allowed in an SNMPv2c message")
    return Message(version=version, community=community, pdu=pdu)


def check_response(pdu: Pdu, *, target: str | None = None) -> None:
    """Raise the mapped :class:`~probes.errors.SnmpStatusError` when error-status != 0."""
    if pdu.error_status == 0:
        return
    index = pdu.error_index
    oid = ber.format_oid(pdu.varbinds[index - 1][0]) if 0 < index <= len(pdu.varbinds) else None
    raise snmp_error_for(pdu.error_status, index=index, oid=oid, target=target)
