"""Exceptions raised by the probes.

Everything the probes raise on purpose derives from one root, so callers can catch
``ProbeError`` at the boundary. OS and library exceptions are translated into these
where they cross into our code (``raise ... from exc``)::

    ProbeError
    ├── ProbeConfigError (also ValueError)     settings rejected at construction
    ├── ProbeTimeoutError                      no answer within the configured time
    ├── ProbeUnreachableError                  the kernel or a router said unreachable
    ├── ProbeAuthError                         community / USM credentials rejected
    ├── ProtocolError
    │   ├── LocalProtocolError                 our misuse (e.g. sweeping a closed sweeper)
    │   └── RemoteProtocolError                the device sent something wrong
    │       ├── DecodeError                    bytes that are not a valid packet
    │       └── SnmpStatusError                an SNMP Response with error-status != 0
    │           ├── SnmpTooBigError, SnmpNoSuchNameError, SnmpBadValueError, ...
    │           └── (one leaf per RFC 3416 error-status; see SNMP_ERROR_STATUS)
    └── ProbeTransportError                    a socket could not be opened or used
        └── IcmpPermissionError                neither raw nor datagram ICMP is allowed

Per-target failures of a sweep (a dead target, EHOSTUNREACH on send) are *results*,
not exceptions: they show up as loss and ``PingResult.error``.
"""

from __future__ import annotations


class ProbeError(Exception):
    """Root of every exception the probes raise on purpose."""


class ProbeConfigError(ProbeError, ValueError):
    """A setting was rejected; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ProbeTimeoutError(ProbeError):
    """No answer arrived within the configured time."""

    def __init__(self, message: str, *, target: str | None = None) -> None:
        super().__init__(message)
        self.target = target


class ProbeUnreachableError(ProbeError):
    """The kernel or a router reported the target unreachable."""

    def __init__(self, message: str, *, target: str | None = None) -> None:
        super().__init__(message)
        self.target = target


class ProbeAuthError(ProbeError):
    """The device rejected our credentials (SNMP community or USM user)."""

    def __init__(self, message: str, *, target: str | None = None) -> None:
        super().__init__(message)
        self.target = target


class ProtocolError(ProbeError):
    """A protocol rule was broken, by us (local) or by the device (remote)."""


class LocalProtocolError(ProtocolError):
    """We misused an API: the bug is on our side."""


class RemoteProtocolError(ProtocolError):
    """The device sent something that breaks the protocol."""


class DecodeError(RemoteProtocolError):
    """Bytes that cannot be decoded as the expected packet.

    ``offset`` is where decoding stopped, when known.
    """

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class ProbeTransportError(ProbeError):
    """A socket could not be opened or used."""


PERMISSION_FIX = (
    "ICMP needs either a raw socket or an unprivileged datagram ICMP socket. Fix one of: "
    "run as root; or grant CAP_NET_RAW to the interpreter "
    "(setcap cap_net_raw+ep $(readlink -f $(which python))); or allow datagram ICMP "
    "for this user's group (sysctl -w net.ipv4.ping_group_range='0 2147483647', "
    "or a range that includes the group id)."
)


class IcmpPermissionError(ProbeTransportError):
    """Neither a raw nor a datagram ICMP socket may be opened by this process.

    The message says how to fix it; ``family`` is ``"IPv4"`` or ``"IPv6"`` and
    ``mode`` is what was tried (``"raw"``, ``"datagram"`` or ``"raw or datagram"``).
    """

    def __init__(self, *, family: str, mode: str, detail: str = "") -> None:
        reason = f" ({detail})" if detail else ""
        super().__init__(f"cannot open an {family} ICMP socket ({mode}){reason}. {PERMISSION_FIX}")
        self.family = family
        self.mode = mode


class SnmpStatusError(RemoteProtocolError):
    """An SNMP agent answered with a non-zero error-status (RFC 3416 section 3).

    Attributes carry the context: ``status`` (the numeric error-status), ``index``
    (1-based error-index, 0 when none), ``oid`` (the offending OID in dotted form,
    when the index points at a varbind) and ``target`` (the agent's address). The
    community or USM credentials are never part of the message.
    """

    status: int = 0
    name: str = "unknown"

    def __init__(
        self,
        *,
        index: int = 0,
        oid: str | None = None,
        target: str | None = None,
        status: int | None = None,
    ) -> None:
        if status is not None:
            self.status = status
        where = f" at varbind {index} ({oid})" if oid else f" at varbind {index}" if index else ""
        agent = f" from {target}" if target else ""
        super().__init__(f"SNMP error-status {self.status} {self.name}{where}{agent}")
        self.index = index
        self.oid = oid
        self.target = target


class SnmpTooBigError(SnmpStatusError):
    status, name = 1, "tooBig"


class SnmpNoSuchNameError(SnmpStatusError):
    status, name = 2, "noSuchName"


class SnmpBadValueError(SnmpStatusError):
    status, name = 3, "badValue"


class SnmpReadOnlyError(SnmpStatusError):
    status, name = 4, "readOnly"


class SnmpGenError(SnmpStatusError):
    status, name = 5, "genErr"


class SnmpNoAccessError(SnmpStatusError):
    status, name = 6, "noAccess"


class SnmpWrongTypeError(SnmpStatusError):
    status, name = 7, "wrongType"


class SnmpWrongLengthError(SnmpStatusError):
    status, name = 8, "wrongLength"


class SnmpWrongEncodingError(SnmpStatusError):
    status, name = 9, "wrongEncoding"


class SnmpWrongValueError(SnmpStatusError):
    status, name = 10, "wrongValue"


class SnmpNoCreationError(SnmpStatusError):
    status, name = 11, "noCreation"


class SnmpInconsistentValueError(SnmpStatusError):
    status, name = 12, "inconsistentValue"


class SnmpResourceUnavailableError(SnmpStatusError):
    status, name = 13, "resourceUnavailable"


class SnmpCommitFailedError(SnmpStatusError):
    status, name = 14, "commitFailed"


class SnmpUndoFailedError(SnmpStatusError):
    status, name = 15, "undoFailed"


class SnmpAuthorizationError(SnmpStatusError):
    status, name = 16, "authorizationError"


class SnmpNotWritableError(SnmpStatusError):
    status, name = 17, "notWritable"


class SnmpInconsistentNameError(SnmpStatusError):
    status, name = 18, "inconsistentName"


# RFC 3416 error-status -> exception class. Unknown codes map to the base class.
SNMP_ERROR_STATUS: dict[int, type[SnmpStatusError]] = {
    cls.status: cls
    for cls in (
        SnmpTooBigError,
        SnmpNoSuchNameError,
        SnmpBadValueError,
        SnmpReadOnlyError,
        SnmpGenError,
        SnmpNoAccessError,
        SnmpWrongTypeError,
        SnmpWrongLengthError,
        SnmpWrongEncodingError,
        SnmpWrongValueError,
        SnmpNoCreationError,
        SnmpInconsistentValueError,
        SnmpResourceUnavailableError,
        SnmpCommitFailedError,
        SnmpUndoFailedError,
        SnmpAuthorizationError,
        SnmpNotWritableError,
        SnmpInconsistentNameError,
    )
}


def snmp_error_for(
    status: int, *, index: int = 0, oid: str | None = None, target: str | None = None
) -> SnmpStatusError:
    """The exception for an SNMP error-status (the base class for unknown codes)."""
    cls = SNMP_ERROR_STATUS.get(status)
    if cls is None:
        return SnmpStatusError(index=index, oid=oid, target=target, status=status)
    return cls(index=index, oid=oid, target=target)
