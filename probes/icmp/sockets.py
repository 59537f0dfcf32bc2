"""The sweeper's sockets: open one ICMP socket per address family, as permitted.

Raw sockets (root or CAP_NET_RAW) get a kernel filter that passes only echo replies
and the errors that may quote our echoes; unprivileged datagram ICMP sockets (allowed
by ``net.ipv4.ping_group_range``) are bound so the kernel assigns the echo
identifier. When neither can be opened, ``IcmpPermissionError`` says how to fix it.
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
import struct
from dataclasses import dataclass

from probes.errors import IcmpPermissionError, ProbeTransportError
from probes.icmp import codec

_SOL_RAW = 255  # linux/socket.h; ICMP_FILTER lives at this level
_SO_SNDBUFFORCE = 32  # asm-generic/socket.h; Python's socket module lacks them
_SO_RCVBUFFORCE = 33
_ICMP_FILTER = 1  # linux/icmp.h: bitmask of ICMPv4 types to drop
_ICMP6_FILTER = 1  # netinet/icmp6.h: 256-bit mask of ICMPv6 types to drop
_RCVBUF = 8 * 1024 * 1024
_SNDBUF = 4 * 1024 * 1024

# Identifiers of this process's raw sockets: random (against other processes) and
# unique here (against our other sweepers).
_raw_ids: set[int] = set()


def errno_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


@dataclass(slots=True, eq=False)
class IcmpChannel:
    """One socket (one address family) and how to read what it receives."""

    sock: socket.socket
    ipv6: bool
    raw: bool
    identifier: int

    @property
    def ip_header(self) -> bool:
        return self.raw and not self.ipv6


def open_channel(*, ipv6: bool, privileged: bool | None) -> IcmpChannel:
    """Open the ICMP socket of one address family.

    Args:
        ipv6: IPv6 (ICMPv6) rather than IPv4.
        privileged: True for raw only, False for datagram only, None for raw when
            permitted and datagram otherwise.

    Raises:
        IcmpPermissionError: no permitted mode; the message says how to fix it.
        ProbeTransportError: the socket cannot be opened for another reason.
    """
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    proto = socket.IPPROTO_ICMPV6 if ipv6 else socket.IPPROTO_ICMP
    name = "IPv6" if ipv6 else "IPv4"
    modes = (True, False) if privileged is None else (privileged,)
    denied: PermissionError | None = None
    for raw in modes:
        kind = socket.SOCK_RAW if raw else socket.SOCK_DGRAM
        try:
            sock = socket.socket(family, kind, proto)
        except PermissionError as exc:
            denied = exc
            continue
        except OSError as exc:
            raise ProbeTransportError(
                f"cannot open an {name} ICMP socket: {errno_name(exc)} {exc.strerror}"
            ) from exc
        try:
            return _configure(sock, ipv6=ipv6, raw=raw)
        except BaseException:
            sock.close()
            raise
    mode = {None: "raw or datagram", True: "raw", False: "datagram"}[privileged]
    detail = errno_name(denied) if denied is not None else ""
    raise IcmpPermissionError(family=name, mode=mode, detail=detail) from denied


def close_channel(channel: IcmpChannel) -> None:
    if channel.raw:
        _raw_ids.discard(channel.identifier)
    channel.sock.close()


def _configure(sock: socket.socket, *, ipv6: bool, raw: bool) -> IcmpChannel:
    sock.setblocking(False)
    for force, plain, size in (
        (_SO_RCVBUFFORCE, socket.SO_RCVBUF, _RCVBUF),
        (_SO_SNDBUFFORCE, socket.SO_SNDBUF, _SNDBUF),
    ):
        try:
            # FORCE needs CAP_NET_ADMIN; without it the kernel caps at [rw]mem_max.
            sock.setsockopt(socket.SOL_SOCKET, force, size)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, plain, size)
    if raw:
        if ipv6:
            # Block every type (bit set = drop) except echo reply and errors.
            words = [0xFFFFFFFF] * 8
            for icmp_type in (
                codec.ICMPV6_ECHO_REPLY,
                codec.ICMPV6_DEST_UNREACH,
                codec.ICMPV6_TIME_EXCEEDED,
            ):
                words[icmp_type >> 5] &= ~(1 << (icmp_type & 31))
            sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("=8I", *words))
        else:
            keep = (
                (1 << codec.ICMP_ECHO_REPLY)
                | (1 << codec.ICMP_DEST_UNREACH)
                | (1 << codec.ICMP_TIME_EXCEEDED)
            )
            sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("=I", ~keep & 0xFFFFFFFF))
        identifier = _allocate_id()
    else:
        # The kernel picks a free "port" and uses it as the echo identifier.
        sock.bind(("::", 0) if ipv6 else ("0.0.0.0", 0))
        identifier = sock.getsockname()[1]
    return IcmpChannel(sock=sock, ipv6=ipv6, raw=raw, identifier=identifier)


def _allocate_id() -> int:
    # Random per sweeper (other processes), unique within this process.
    while True:
        candidate = (secrets.randbelow(0xFFFF) + 1) ^ (os.getpid() & 0xFF00)
        if candidate not in _raw_ids and candidate != 0:
            _raw_ids.add(candidate)
            return candidate
