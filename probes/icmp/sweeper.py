"""ICMP echo sweeper: one socket per address family for every target.

How it works (this is the probes' hot path, so it is written for low CPU per echo):

* **Sockets.** ``privileged=None`` tries a raw socket (root or CAP_NET_RAW) and falls
  back to an unprivileged datagram ICMP socket (allowed by
  ``net.ipv4.ping_group_range``); if neither opens, ``IcmpPermissionError`` says how
  to fix it. IPv4 opens on ``__aenter__``; IPv6 opens the first time a sweep has an
  IPv6 target. Sockets are non-blocking with large buffers, and read by one
  ``loop.add_reader`` callback that drains ``recvfrom`` until ``BlockingIOError``: no
  future, task or timer per packet.
* **Matching.** A reply is ours when its identifier is this socket's (raw: chosen at
  random and unique in the process; datagram: the kernel rewrites it to the socket's
  port and already filters on it), its payload starts with this sweeper's random
  cookie, and ``(source address, sequence)`` is pending. Every echo ``k`` of a sweep
  uses sequence ``base + k``, the same for all targets, so one pre-built packet per
  echo number serves every target (IPv4 checksums are computed once per sweep, not
  per send). Raw sockets see every ICMP message on the host: a kernel filter
  (``ICMP_FILTER`` / ``ICMP6_FILTER``) drops all but replies and errors, and the
  identifier and cookie drop other pingers' replies.
* **State.** A sweep keeps its targets in flat lists by index (host, sockaddr, RTTs,
  settled echoes, send times per echo number), not an object per target: per target
  only the RTT tuple and the result are allocated, which keeps the garbage collector
  out of the way (it cost a sixth of a 10k sweep). A reply costs two dict lookups
  (sequence -> echo number, host -> index); IPv4 hosts are formatted with
  ``inet_ntoa`` (``str()`` of an address costs 2 us). Results are built by writing
  PingResult's slots (a frozen dataclass's ``__init__`` costs twice as much), and
  nothing of a sweep outlives it.
* **Timeouts.** Echoes are sent in time order with the same timeout, so their
  deadlines are sorted: a FIFO of ``(deadline, k, first, end)`` checked after every send
  batch and by one sleep to the next deadline replaces a timer per echo. A reply later
  than the timeout counts as lost.
* **Pacing.** Sends go out in batches with a yield to the event loop between them, so
  replies are drained while sending and the receive buffer does not overflow. The
  first echoes are spread evenly over ``spread`` seconds, in rounds at least 50 ms
  apart (a wake of the loop per echo cost ten times the sends); echo ``k+1`` to a target is
  sent ``spacing`` seconds after that target's echo ``k`` actually went out. ENOBUFS
  or EAGAIN on send retries the same echo after a short pause; any other send error
  (EHOSTUNREACH, ENETUNREACH, EPERM, ...) counts that echo as sent and lost and sets
  ``PingResult.error``. ICMP errors quoting our echo (raw sockets only) do the same.
"""

from __future__ import annotations

import asyncio
import errno
import secrets
import socket
import struct
import time
from bisect import bisect_right
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address
from math import isfinite
from types import TracebackType
from typing import ClassVar, Self

from probes.errors import (
    DecodeError,
    IcmpPermissionError,
    LocalProtocolError,
    ProbeConfigError,
    ProbeTimeoutError,
    ProbeTransportError,
)
from probes.icmp import codec
from probes.icmp.sockets import IcmpChannel, close_channel, errno_name, open_channel
from probes.icmp.sweep_state import NOT_STARTED, Echo, Group, SweepState, make_result
from probes.observation import PingResult, PingTarget

_RECV_SIZE = 2048
_SEND_BATCH = 256  # sends between two yields to the event loop
_DRAIN_LIMIT = 4096  # packets per reader callback, so a flood cannot starve the loop
# Seconds to back off after ENOBUFS / EAGAIN: 1 ms, the shortest pause uvloop keeps (it
# rounds a delay to whole milliseconds: 0.5 ms would be no pause, a spin on a full buffer).
_SEND_RETRY_DELAY = 0.001
# The shortest sleep between two send rounds. A spread sweep would otherwise wake for
# every single echo (5,000 targets over 15 s: every 3 ms), and each wake of the event
# loop costs far more than a send: 1.77 s of CPU per such sweep, 0.40 s in rounds. A
# round every 50 ms sends what has come due meanwhile (a few dozen echoes): still spread.
_MIN_WAKE = 0.05
_STALL_GRACE = 5.0  # seconds beyond the settings' own bound before a sweep is stuck
_COOKIE_LEN = 8
_V6_HOST_CACHE = 100_000  # IPv6 addresses whose string form we keep between sweeps
_RETRY_ERRNOS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS})


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepSettings:
    """How a sweep probes each target.

    Attributes:
        count: echoes per target per burst.
        spacing: seconds between two echoes to the same target. 0.2 s is the
            shortest interval ``ping`` allows an unprivileged user.
        timeout: seconds to wait for each echo's reply after it was sent.
        spread: seconds over which the first echoes of all targets are spread;
            0 sends them as fast as the socket takes them.
        payload_size: bytes of echo payload (56, as ping and fping send).
    """

    count: int = 5
    spacing: float = 0.2
    timeout: float = 1.0
    spread: float = 0.0
    payload_size: int = 56
    _fields: ClassVar[tuple[str, ...]] = ("spacing", "timeout", "spread")

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int):
            raise ProbeConfigError("count", f"must be an integer, not {self.count!r}")
        if not 1 <= self.count <= 1000:
            raise ProbeConfigError("count", f"must be 1 to 1000, not {self.count}")
        for name in self._fields:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ProbeConfigError(name, f"must be a number of seconds, not {value!r}")
            if not isfinite(value) or value < 0:
                raise ProbeConfigError(name, f"must be finite and >= 0, not {value}")
        if self.timeout <= 0:
            raise ProbeConfigError("timeout", f"must be > 0, not {self.timeout}")
        size = self.payload_size
        if isinstance(size, bool) or not isinstance(size, int):
            raise ProbeConfigError("payload_size", f"must be an integer, not {size!r}")
        if not 0 <= size <= codec.MAX_PAYLOAD:
            raise ProbeConfigError("payload_size", f"must be 0 to {codec.MAX_PAYLOAD}")

    @property
    def burst_bound(self) -> float:
        """Seconds one burst takes at most, not counting the time to send."""
        return self.spread + self.spacing * (self.count - 1) + self.timeout


def _utc_now() -> datetime:
    return datetime.now(UTC)


class IcmpSweeper:
    """Sweeps many targets with ICMP echo bursts over one socket per address family.

    Use as ``async with IcmpSweeper(settings=...) as sweeper:``; then
    ``async for result in sweeper.sweep(targets)`` yields each target's
    ``PingResult`` as soon as its burst is complete, or ``await
    sweeper.sweep_all(targets)`` returns them all. Several sweeps may run at once.
    """

    def __init__(
        self,
        *,
        settings: SweepSettings,
        wall_clock: Callable[[], datetime] = _utc_now,
        privileged: bool | None = None,
    ) -> None:
        """Build a sweeper; sockets open on ``__aenter__``.

        Args:
            settings: burst shape and timeouts.
            wall_clock: UTC "now" for ``PingResult.started_at``.
            privileged: True for raw sockets only, False for datagram ICMP only,
                None for raw when permitted and datagram otherwise.
        """
        if not isinstance(settings, SweepSettings):
            raise ProbeConfigError("settings", "must be a SweepSettings")
        if privileged not in (None, True, False):
            raise ProbeConfigError("privileged", "must be True, False or None")
        self._settings = settings
        self._wall_clock = wall_clock
        self._privileged = privileged
        self._cookie = secrets.token_bytes(_COOKIE_LEN)[: settings.payload_size]
        self._payload = (self._cookie + bytes(settings.payload_size))[: settings.payload_size]
        self._channels: dict[int, IcmpChannel] = {}
        self._v6_error: str | None = None
        # sequence -> echo number k of a running sweep, whose ``waiting`` maps a host to
        # its target index: a reply costs two dict lookups and no allocation.
        self._pending: dict[int, Echo] = {}
        self._v6_hosts: dict[IPv6Address, str] = {}  # str() of an IPv6 address is slow
        self._sweeps: set[SweepState] = set()
        self._next_seq = secrets.randbelow(0x10000)
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def settings(self) -> SweepSettings:
        return self._settings

    def mode(self, *, ipv6: bool = False) -> str | None:
        """``"raw"`` or ``"datagram"`` for an open socket of that family, else None."""
        channel = self._channels.get(6 if ipv6 else 4)
        if channel is None:
            return None
        return "raw" if channel.raw else "datagram"

    async def __aenter__(self) -> Self:
        if self._loop is not None:
            raise LocalProtocolError("IcmpSweeper is already open")
        self._loop = asyncio.get_running_loop()
        try:
            self._open(ipv6=False)
        except BaseException:
            self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close()

    # -- sockets -------------------------------------------------------------------

    def _open(self, *, ipv6: bool) -> IcmpChannel:
        channel = open_channel(ipv6=ipv6, privileged=self._privileged)
        self._channels[6 if ipv6 else 4] = channel
        assert self._loop is not None
        self._loop.add_reader(channel.sock.fileno(), self._drain, channel)
        return channel

    def _close(self) -> None:
        channels = list(self._channels.values())
        self._channels.clear()
        for sweep in self._sweeps:
            if sweep.failure is None:
                sweep.failure = LocalProtocolError("IcmpSweeper closed during a sweep")
            sweep.wake()
        try:
            for channel in channels:
                if self._loop is not None and not self._loop.is_closed():
                    self._loop.remove_reader(channel.sock.fileno())
        finally:
            for channel in channels:
                close_channel(channel)
            self._pending.clear()
            self._loop = None

    # -- receiving (hot path) ------------------------------------------------------

    def _drain(self, channel: IcmpChannel) -> None:
        recvfrom = channel.sock.recvfrom
        pending = self._pending
        monotonic = time.monotonic
        identifier = channel.identifier
        cookie = self._cookie
        header = struct.Struct(f"!HH{len(cookie)}s")  # identifier, sequence, cookie
        unpack = header.unpack_from
        min_len = codec.ICMP_HEADER_LEN + len(cookie)
        reply_type = codec.ICMPV6_ECHO_REPLY if channel.ipv6 else codec.ICMP_ECHO_REPLY
        ip_header = channel.ip_header
        timeout = self._settings.timeout
        for _ in range(_DRAIN_LIMIT):
            try:
                data, source = recvfrom(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # A queued error not tied to any echo; nothing to attribute it to.
                continue
            now = monotonic()
            offset = (data[0] & 0x0F) << 2 if ip_header else 0
            if len(data) < offset + min_len:
                continue
            if data[offset] != reply_type:
                self._on_icmp_error(channel, data)
                continue
            ident, seq, tag = unpack(data, offset + 4)
            if ident != identifier or tag != cookie:
                continue
            echo = pending.get(seq)
            if echo is None:
                continue
            i = echo.waiting.pop(source[0], -1)
            if i < 0:
                continue
            sweep = echo.sweep
            rtt = now - echo.sent_at[i]
            if rtt <= timeout:  # later than the timeout is lost, as if never answered
                sweep.rtts[i] += (rtt,)
            resolved = sweep.resolved  # sweep.resolve(i), inlined
            settled = resolved[i] + 1
            resolved[i] = settled
            if settled == sweep.count:
                sweep.done.append(i)
        for sweep in self._sweeps:
            if sweep.done:
                sweep.wake()

    def _on_icmp_error(self, channel: IcmpChannel, data: bytes) -> None:
        try:
            report = codec.decode_reply(data, ipv6=channel.ipv6, ip_header=channel.ip_header)
        except DecodeError:
            return
        if not isinstance(report, codec.IcmpErrorReport):
            return
        if channel.raw and report.identifier != channel.identifier:
            return
        echo = self._pending.get(report.sequence)
        if echo is None:
            return
        i = echo.waiting.pop(str(report.destination), -1)
        if i >= 0:
            echo.sweep.errors[i] = report.reason
            echo.sweep.resolve(i)

    # -- sweeping ------------------------------------------------------------------

    async def sweep_all(self, targets: Sequence[PingTarget]) -> list[PingResult]:
        """Sweep ``targets`` and return every result, in completion order."""
        results: list[PingResult] = []
        async with aclosing(self._batches(targets)) as batches:
            async for batch in batches:
                results.extend(batch)
        return results

    async def sweep(self, targets: Sequence[PingTarget]) -> AsyncGenerator[PingResult, None]:
        """Send a burst to every target; yield each result as its burst completes.

        A target listed twice (or two keys with one address) is probed once and
        reported under each key. To stop early, close the generator (e.g. with
        ``contextlib.aclosing``) so its echoes are released at once.

        Raises:
            LocalProtocolError: the sweeper is not open.
            IcmpPermissionError: an IPv6 socket is needed but not permitted.
            ProbeTimeoutError: the sweep made no progress for far longer than the
                settings allow (a bug, not a dead target).
        """
        async with aclosing(self._batches(targets)) as batches:
            async for batch in batches:
                for result in batch:
                    yield result

    async def _batches(
        self, targets: Sequence[PingTarget]
    ) -> AsyncGenerator[list[PingResult], None]:
        """Run one sweep, yielding the results completed since the last yield."""
        loop = self._loop
        if loop is None or 4 not in self._channels:
            raise LocalProtocolError("use IcmpSweeper inside 'async with' before sweeping")
        sweep = self._plan(targets)
        remaining = len(sweep.targets)
        if not remaining:
            return
        self._sweeps.add(sweep)
        driver = loop.create_task(self._drive(sweep), name=f"icmp-sweep-{remaining}-targets")

        def driver_done(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                sweep.failure = task.exception()
                sweep.wake()

        driver.add_done_callback(driver_done)
        stall = self._settings.burst_bound + _STALL_GRACE
        try:
            while True:
                if sweep.done:
                    done = sweep.done
                    sweep.done = []
                    remaining -= len(done)
                    yield self._results(sweep, done)
                    if not remaining:
                        return
                    continue
                if sweep.failure is not None:
                    raise sweep.failure
                sweep.waiter = loop.create_future()
                try:
                    async with asyncio.timeout(stall):
                        await sweep.waiter
                except TimeoutError as exc:
                    raise ProbeTimeoutError(
                        f"ICMP sweep made no progress for {stall:.1f} s"
                    ) from exc
                finally:
                    sweep.waiter = None
        finally:
            self._sweeps.discard(sweep)
            driver.cancel()
            for seq in sweep.seqs:
                self._pending.pop(seq, None)
            try:
                # Wait without raising the driver's CancelledError (or its failure, which
                # reached the consumer through sweep.failure) here: a traceback through
                # this frame would keep the caller's results alive. Our own cancellation
                # still propagates.
                await asyncio.wait((driver,))
            finally:
                sweep.release()

    def _plan(self, targets: Sequence[PingTarget]) -> SweepState:
        count = self._settings.count
        pending = self._pending
        base = self._next_seq
        # Skip sequence numbers a running sweep still waits on.
        while any(((base + k) & 0xFFFF) in pending for k in range(count)):
            base = (base + count) & 0xFFFF
        self._next_seq = (base + count) & 0xFFFF
        seqs = [(base + k) & 0xFFFF for k in range(count)]
        # The first target of each address, by family; later ones ride along as extras.
        first4: dict[str, PingTarget] = {}
        first6: dict[str, PingTarget] = {}
        extras: dict[str, list[PingTarget]] = {}
        ntoa = socket.inet_ntoa
        v6_host = self._v6_host
        for target in targets:
            address = target.address
            if isinstance(address, IPv4Address):
                host = ntoa(address.packed)  # what recvfrom reports; 7x faster than str()
                if first4.setdefault(host, target) is target:
                    continue
            elif isinstance(address, IPv6Address):
                host = v6_host(address)
                if first6.setdefault(host, target) is target:
                    continue
            else:
                raise ProbeConfigError(
                    "targets", f"{target.key!r}: {address!r} is not an IPv4 or IPv6 address"
                )
            extras.setdefault(host, []).append(target)
        hosts = [*first4, *first6]
        ordered = [*first4.values(), *first6.values()]
        groups: list[Group] = []
        n = 0
        for version, firsts in ((4, first4), (6, first6)):
            if not firsts:
                continue
            channel = self._channel_for(version)
            if channel is None:  # only IPv6 can lack a socket, and it comes last
                break
            packets = [
                codec.encode_echo_request(
                    identifier=channel.identifier,
                    sequence=seq,
                    payload=self._payload,
                    ipv6=channel.ipv6,
                )
                for seq in seqs
            ]
            groups.append(Group(n, n + len(firsts), channel, packets))
            n += len(firsts)
        total = len(hosts)
        sweep = SweepState(
            count=count,
            seqs=seqs,
            targets=ordered,
            hosts=hosts,
            sockaddrs=[(host, 0) for host in hosts],
            n=n,
            groups=groups,
            rtts=[()] * total,
            resolved=[0] * total,
            started=[NOT_STARTED] * total,
        )
        if extras:
            index = {host: i for i, host in enumerate(hosts)}
            sweep.extra = {index[host]: more for host, more in extras.items()}
        if n < total:
            started = self._wall_clock()
            error = self._v6_error or "EAFNOSUPPORT"
            for i in range(n, total):
                sweep.started[i] = started
                sweep.errors[i] = error
                sweep.resolved[i] = count
                sweep.done.append(i)
        sweep.echoes = [Echo(sweep, n) for _ in seqs]
        for seq, echo in zip(seqs, sweep.echoes, strict=True):
            pending[seq] = echo
        return sweep

    def _v6_host(self, address: IPv6Address) -> str:
        hosts = self._v6_hosts
        host = hosts.get(address)
        if host is None:
            if len(hosts) >= _V6_HOST_CACHE:
                hosts.clear()
            host = hosts[address] = str(address)
        return host

    def _channel_for(self, version: int) -> IcmpChannel | None:
        channel = self._channels.get(version)
        if channel is not None or version == 4 or self._v6_error is not None:
            return channel
        try:
            return self._open(ipv6=True)
        except ProbeTransportError as exc:
            if isinstance(exc, IcmpPermissionError):
                raise
            cause = exc.__cause__
            self._v6_error = errno_name(cause) if isinstance(cause, OSError) else str(exc)
            return None

    @staticmethod
    def _results(sweep: SweepState, done: list[int]) -> list[PingResult]:
        """The results of the complete targets ``done`` (and of their extra keys)."""
        targets = sweep.targets
        rtts = sweep.rtts
        started = sweep.started
        errors = sweep.errors
        extra = sweep.extra
        count = sweep.count
        n = sweep.n
        make = make_result
        results: list[PingResult] = []
        append = results.append
        for i in done:
            target = targets[i]
            got = rtts[i]
            error = errors.get(i) if errors else None
            sent = count if i < n else 0
            append(make(target.key, target.address, started[i], sent, len(got), got, error))
            if extra and i in extra:
                for other in extra[i]:
                    append(make(other.key, other.address, started[i], sent, len(got), got, error))
        return results

    async def _drive(self, sweep: SweepState) -> None:
        """Send every echo on schedule, then expire what was never answered."""
        settings = self._settings
        n = sweep.n
        count = sweep.count
        step = settings.spread / n if n else 0.0
        cursors = [0] * count  # next target index per echo number
        t0 = time.monotonic()
        while cursors[-1] < n:
            now = time.monotonic()
            budget = _SEND_BATCH
            retry = False
            for k in range(count):
                start = cursors[k]
                if k == 0:
                    due = n if step == 0 else min(n, int((now - t0) / step) + 1)
                    stop = min(due, start + budget)
                else:
                    stop = min(cursors[k - 1], start + budget)
                if stop <= start:
                    continue
                cursors[k], retry = self._send(sweep, k, start, stop, now - settings.spacing)
                budget -= cursors[k] - start
                if retry or budget <= 0:
                    break
            self._expire(sweep, time.monotonic())
            if sweep.done:
                sweep.wake()
            if retry:
                await asyncio.sleep(_SEND_RETRY_DELAY)
            elif budget <= 0:
                await asyncio.sleep(0)  # let the reader drain replies between batches
            else:
                await asyncio.sleep(self._next_wake(sweep, cursors, t0, step))
        while sweep.expiry:
            now = time.monotonic()
            self._expire(sweep, now)
            if sweep.done:
                sweep.wake()
            if sweep.expiry:
                await asyncio.sleep(max(0.0, sweep.expiry[0][0] - now))

    def _next_wake(self, sweep: SweepState, cursors: list[int], t0: float, step: float) -> float:
        n = sweep.n
        wake = t0 + cursors[0] * step if cursors[0] < n else float("inf")
        for k in range(1, sweep.count):
            if cursors[k] < cursors[k - 1]:
                sent_at = sweep.echoes[k - 1].sent_at
                wake = min(wake, sent_at[cursors[k]] + self._settings.spacing)
        if sweep.expiry:
            wake = min(wake, sweep.expiry[0][0])
        delay = wake - time.monotonic()
        return 0.0 if delay <= 0 else max(delay, _MIN_WAKE)

    def _send(
        self, sweep: SweepState, k: int, start: int, stop: int, cutoff: float
    ) -> tuple[int, bool]:
        """Send echo ``k`` to targets ``start:stop``; return (next index, retry?).

        For ``k > 0`` stop at the first target whose echo ``k-1`` went out after
        ``cutoff`` (less than ``spacing`` ago).
        """
        if k:
            # Echo k-1 went out in index order, so its send times are sorted.
            stop = bisect_right(sweep.echoes[k - 1].sent_at, cutoff, start, stop)
            if stop <= start:
                return start, False
        started = NOT_STARTED if k else self._wall_clock()
        echo = sweep.echoes[k]
        waiting = echo.waiting
        sent_at = echo.sent_at
        sockaddrs = sweep.sockaddrs
        hosts = sweep.hosts
        monotonic = time.monotonic
        end = start
        retry = False
        for group in sweep.groups:
            lo = max(start, group.start)
            hi = min(stop, group.end)
            if lo >= hi:
                continue
            sendto = group.channel.sock.sendto
            packet = group.packets[k]
            for i in range(lo, hi):
                now = monotonic()
                try:
                    sendto(packet, sockaddrs[i])
                except OSError as exc:
                    if exc.errno in _RETRY_ERRNOS:
                        retry = True
                        end = i
                        break
                    # Refused at once (EHOSTUNREACH, ENETUNREACH, EPERM, ...): sent and lost.
                    sweep.errors[i] = errno_name(exc)
                    sweep.resolve(i)
                else:
                    waiting[hosts[i]] = i
                sent_at[i] = now
            else:
                end = hi
                continue
            break
        if end > start:
            if not k:
                sweep.started[start:end] = [started] * (end - start)
            sweep.expiry.append((sent_at[end - 1] + self._settings.timeout, k, start, end))
        return end, retry

    def _expire(self, sweep: SweepState, now: float) -> None:
        expiry = sweep.expiry
        hosts = sweep.hosts
        while expiry and expiry[0][0] <= now:
            _, k, start, end = expiry.popleft()
            waiting = sweep.echoes[k].waiting
            if not waiting:
                continue
            pop = waiting.pop
            for i in range(start, end):
                if pop(hosts[i], -1) >= 0:
                    sweep.resolve(i)
