"""The datagram transport the SNMP client and trap listener run on.

The interface is small (STYLE.md): async ``open``, ``send``, async ``recv``,
``close``. Two choices keep the per-packet cost low on the probes' hot path:

* ``send`` is synchronous: a UDP ``sendto`` on a non-blocking socket never waits. It
  returns False when the kernel buffer is full (EAGAIN / ENOBUFS), so the caller
  treats the packet as lost and retries on its own schedule; immediate refusals
  (EHOSTUNREACH, ENETUNREACH, EPERM ...) raise :class:`ProbeUnreachableError` with
  the errno name as message, translated here from ``OSError``.
* ``recv`` returns a *batch*: one ``add_reader`` callback drains the socket until
  ``BlockingIOError`` into a list, and one future per batch (not per packet) wakes
  the consumer.

:class:`UdpTransport` is the asyncio implementation (one socket per address family,
IPv6 opened on first use). :class:`FakeTransport` answers from a function, for
failure injection in tests (malformed replies, silence).
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from typing import Protocol

from probes.errors import LocalProtocolError, ProbeTransportError, ProbeUnreachableError

Address = tuple[str, int]
Datagram = tuple[bytes, Address]

_RCVBUF = 8 * 1024 * 1024
_SNDBUF = 4 * 1024 * 1024
_SO_SNDBUFFORCE = 32  # asm-generic/socket.h; Python's socket module lacks them
_SO_RCVBUFFORCE = 33
_RECV_SIZE = 65535
_DRAIN_LIMIT = 4096  # datagrams per reader callback, so a flood cannot starve the loop
_BUSY = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS})


def errno_name(exc: OSError) -> str:
    """``EHOSTUNREACH`` etc. for an OSError."""
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


class DatagramTransport(Protocol):
    """What the SNMP client and the trap listener need from a datagram socket."""

    async def open(self) -> None:
        """Open the socket(s)."""

    def send(self, data: bytes, address: Address) -> bool:
        """Send one datagram; False when the kernel buffer is full (try later)."""

    async def recv(self) -> list[Datagram]:
        """Wait for and return every datagram received since the last call."""

    def close(self) -> None:
        """Close; a pending ``recv`` raises ``LocalProtocolError``."""


class UdpTransport:
    """Non-blocking UDP sockets drained by an ``add_reader`` callback."""

    def __init__(self, *, bind_v4: Address = ("0.0.0.0", 0), bind_v6: Address = ("::", 0)) -> None:
        """Args:
        bind_v4: local address of the IPv4 socket (port 0: any free port).
        bind_v6: local address of the IPv6 socket, opened when first needed.
        """
        self._bind = {4: bind_v4, 6: bind_v6}
        self._socks: dict[int, socket.socket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batch: list[Datagram] = []
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def local_address(self) -> Address:
        """The IPv4 socket's bound address (useful with port 0)."""
        addr: Address = self._socks[4].getsockname()[:2]
        return addr

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._open_family(4)

    def _open_family(self, family: int) -> socket.socket:
        assert self._loop is not None
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        try:
            sock = socket.socket(af, socket.SOCK_DGRAM)
        except OSError as exc:
            raise ProbeTransportError(f"cannot open a UDP socket: {errno_name(exc)}") from exc
        try:
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
            if family == 6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(self._bind[family])
        except OSError as exc:
            sock.close()
            raise ProbeTransportError(
                f"cannot bind UDP {self._bind[family]}: {errno_name(exc)}"
            ) from exc
        self._socks[family] = sock
        self._loop.add_reader(sock.fileno(), self._drain, sock)
        return sock

    def send(self, data: bytes, address: Address) -> bool:
        family = 6 if ":" in address[0] else 4
        sock = self._socks.get(family)
        if sock is None:
            if self._loop is None or self._closed:
                raise LocalProtocolError("send on a transport that is not open")
            sock = self._open_family(family)
        try:
            sock.sendto(data, address)
        except OSError as exc:
            if exc.errno in _BUSY:
                return False
            raise ProbeUnreachableError(errno_name(exc), target=address[0]) from exc
        return True

    def _drain(self, sock: socket.socket) -> None:
        recvfrom = sock.recvfrom
        batch = self._batch
        for _ in range(_DRAIN_LIMIT):
            try:
                data, source = recvfrom(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # a queued ICMP error for some earlier datagram: nothing to do
            batch.append((data, source if len(source) == 2 else source[:2]))
        waiter = self._waiter
        if batch and waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def recv(self) -> list[Datagram]:
        while not self._batch:
            if self._closed or self._loop is None:
                raise LocalProtocolError("recv on a transport that is not open")
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        batch, self._batch = self._batch, []
        return batch

    def close(self) -> None:
        self._closed = True
        for sock in self._socks.values():
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._socks.clear()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(LocalProtocolError("transport closed"))


Responder = Callable[[bytes, Address], list[Datagram]]


class FakeTransport:
    """An in-memory transport: every ``send`` is answered by ``responder``.

    For failure injection only (malformed or missing replies); real agents are
    tested with real sockets.
    """

    def __init__(self, *, responder: Responder) -> None:
        self._responder = responder
        self._queue: asyncio.Queue[Datagram] | None = None
        self.sent: list[Datagram] = []

    async def open(self) -> None:
        self._queue = asyncio.Queue()

    def send(self, data: bytes, address: Address) -> bool:
        if self._queue is None:
            raise LocalProtocolError("send on a transport that is not open")
        self.sent.append((data, address))
        for reply in self._responder(data, address):
            self._queue.put_nowait(reply)
        return True

    def inject(self, data: bytes, source: Address) -> None:
        """Deliver a datagram that was not asked for."""
        assert self._queue is not None
        self._queue.put_nowait((data, source))

    async def recv(self) -> list[Datagram]:
        if self._queue is None:
            raise LocalProtocolError("recv on a transport that is not open")
        batch = [await self._queue.get()]
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    def close(self) -> None:
        self._queue = None
