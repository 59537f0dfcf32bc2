"""The SNMP client: one UDP socket, many agents, flows driven to completion.

How it works (the probes' hot path, written for low CPU per request):

* **Flows.** Every exchange is a generator from :mod:`probes.snmp.flows` (or the
  poller): it yields a :class:`~probes.snmp.flows.Request` and is sent the Response.
  The client encodes requests, matches responses and applies timeouts; it never
  interprets varbinds. v3 targets run the same flows through pysnmp
  (:mod:`probes.snmp.usm`).
* **Matching.** Pending requests live in one dict keyed by ``(request-id, agent
  address)``; a response must also come from the agent's port and carry the
  community we sent, or it is counted as unmatched and dropped. Request-ids are
  fresh per request; a retransmission reuses its request's id, so a late answer to
  the first attempt still counts.
* **Timeouts and retries.** Each attempt has ``timeout`` seconds; after ``retries``
  retransmissions, or when ``total_timeout`` since the request's first attempt has
  passed, the exchange fails with :class:`ProbeTimeoutError`. Deadlines sit in one
  heap served by one event-loop timer: no task, future or timer per request.
* **Window.** At most ``max_in_flight`` exchanges are outstanding; the rest wait in a
  FIFO and start as others finish, so a 10,000-target cycle cannot overflow the
  socket buffers.
* **Batches.** :meth:`SnmpClient.run_many` waits on one future per call, set when
  the last exchange finishes. Failures are results (``ProbeError`` instances), not
  exceptions, so one dead agent never hides the others.

Credentials never appear in an exception or log message raised here: errors name
the agent's address only.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import secrets
from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from math import isfinite
from types import TracebackType
from typing import Any, Self, TypeVar

from probes.errors import (
    DecodeError,
    LocalProtocolError,
    ProbeConfigError,
    ProbeError,
    ProbeTimeoutError,
    ProbeUnreachableError,
)
from probes.snmp import pdu as pdus
from probes.snmp.ber import Oid
from probes.snmp.flows import Request, get_flow, walk_flow
from probes.snmp.pdu import Pdu, PduType, VarBind
from probes.snmp.target import SnmpTarget, SnmpVersion
from probes.snmp.transport import DatagramTransport, UdpTransport

log = logging.getLogger("probes.snmp")

R = TypeVar("R")
Outcome = Any  # a flow's return value or a ProbeError

_STALL_GRACE = 5.0  # seconds beyond total_timeout without progress before a batch is stuck
_VB_CACHE = 4096  # encoded VarBindLists kept (the poller asks the same OIDs of everyone)
_RESPONSE = PduType.RESPONSE


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSettings:
    """Timeouts and limits of an :class:`SnmpClient`.

    Attributes:
        timeout: seconds to wait for the answer to each attempt.
        retries: retransmissions after the first attempt.
        total_timeout: cap in seconds on one request across all its attempts.
        max_in_flight: exchanges outstanding at once.
        max_repetitions: GETBULK max-repetitions used by walks.
        bind_v4: local IPv4 address of the socket (0.0.0.0 to reach lab namespaces).
        bind_v6: local IPv6 address of the socket, opened when first needed.
    """

    timeout: float = 1.0
    retries: int = 1
    total_timeout: float = 5.0
    max_in_flight: int = 2000
    max_repetitions: int = 25
    bind_v4: str = "0.0.0.0"
    bind_v6: str = "::"

    def __post_init__(self) -> None:
        for name in ("timeout", "total_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ProbeConfigError(name, f"must be a number of seconds, not {value!r}")
            if not isfinite(value) or value <= 0:
                raise ProbeConfigError(name, f"must be finite and > 0, not {value}")
        for name, low, high in (
            ("retries", 0, 10),
            ("max_in_flight", 1, 1_000_000),
            ("max_repetitions", 1, 1000),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ProbeConfigError(name, f"must be an int within {low}..{high}, not {value!r}")


@dataclass(slots=True)
class ClientStats:
    """Counters since the client was built (the runtime exports them as metrics)."""

    requests: int = 0
    retransmissions: int = 0
    responses: int = 0
    malformed: int = 0  # datagrams that are not valid SNMP
    unmatched: int = 0  # valid but not an answer to anything pending (late, spoofed)
    timeouts: int = 0
    unreachable: int = 0


class _Batch:
    __slots__ = ("remaining", "results", "waiter")

    def __init__(self, n: int, waiter: asyncio.Future[None]) -> None:
        self.results: list[Outcome] = [None] * n
        self.remaining = n
        self.waiter = waiter


class _Exchange:
    """One flow against one v1 / v2c agent. Plain slots: one per target per cycle."""

    __slots__ = (
        "addr",
        "attempts",
        "batch",
        "community",
        "deadline",
        "done",
        "flow",
        "key",
        "packet",
        "seq",
        "slot",
        "started",
        "version",
    )

    def __init__(
        self, target: SnmpTarget, flow: Generator[Request, Pdu, Any], batch: _Batch, slot: int
    ) -> None:
        self.addr = (target.host, target.port)
        assert target.community is not None
        self.community = target.community.encode()
        self.version = 0 if target.version is SnmpVersion.V1 else 1
        self.flow = flow
        self.batch = batch
        self.slot = slot
        self.key: tuple[int, str] | None = None
        self.packet = b""
        self.attempts = 0
        self.deadline = 0.0
        self.seq = 0
        self.done = False
        self.started = False


class SnmpClient:
    """Runs SNMP flows against many agents over one UDP socket (v1 / v2c) and pysnmp (v3).

    Use as ``async with SnmpClient(settings=ClientSettings()) as client:`` then
    ``await client.get(target, oids)``, ``await client.walk(target, root)`` or, for a
    whole cycle, ``await client.run_many([(target, flow), ...])``.
    """

    def __init__(
        self, *, settings: ClientSettings, transport: DatagramTransport | None = None
    ) -> None:
        """Args:
        settings: timeouts and limits.
        transport: the datagram transport; a :class:`UdpTransport` bound to
            ``settings.bind_v4`` / ``bind_v6`` when None.
        """
        if not isinstance(settings, ClientSettings):
            raise ProbeConfigError("settings", "must be a ClientSettings")
        self._settings = settings
        self._transport: DatagramTransport = transport or UdpTransport(
            bind_v4=(settings.bind_v4, 0), bind_v6=(settings.bind_v6, 0)
        )
        self.stats = ClientStats()
        self._pending: dict[tuple[int, str], _Exchange] = {}
        self._queue: deque[_Exchange] = deque()
        self._in_flight = 0
        self._heap: list[tuple[float, int, _Exchange, int]] = []
        self._tie = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._next_id = secrets.randbelow(2**31)
        self._vb_cache: dict[tuple[tuple[Oid, ...], int], bytes] = {}
        self._progress = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._group: asyncio.TaskGroup | None = None
        self._reader: asyncio.Task[None] | None = None
        self._usm: Any = None
        self._v3_slots = asyncio.Semaphore(min(settings.max_in_flight, 256))

    @property
    def settings(self) -> ClientSettings:
        return self._settings

    async def __aenter__(self) -> Self:
        if self._loop is not None:
            raise LocalProtocolError("SnmpClient is already open")
        self._loop = asyncio.get_running_loop()
        await self._transport.open()
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._group = group
        self._reader = group.create_task(self._read_loop(), name="snmp-client-reader")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._reader is not None:
                self._reader.cancel()
            if self._group is not None:
                await self._group.__aexit__(None, None, None)
        finally:
            if self._timer is not None:
                self._timer.cancel()
            self._transport.close()
            if self._usm is not None:
                self._usm.close()
            self._pending.clear()
            self._queue.clear()
            self._loop = None

    async def _read_loop(self) -> None:
        recv = self._transport.recv
        while True:
            self._on_datagrams(await recv())

    # -- public API -------------------------------------------------------------------

    async def get(self, target: SnmpTarget, oids: Sequence[Oid]) -> tuple[VarBind, ...]:
        """GET ``oids`` from ``target``; v2c exception values are returned, not raised.

        Raises:
            ProbeTimeoutError, ProbeUnreachableError, ProbeAuthError: no answer.
            SnmpStatusError: the agent answered with an error-status.
        """
        return await self.run(target, get_flow(tuple(oids)))

    async def walk(self, target: SnmpTarget, root: Oid) -> list[VarBind]:
        """Every varbind under ``root`` (GETBULK; GETNEXT for v1)."""
        bulk = target.version is not SnmpVersion.V1
        flow = walk_flow(root, bulk=bulk, max_repetitions=self._settings.max_repetitions)
        return await self.run(target, flow)

    async def run(self, target: SnmpTarget, flow: Generator[Request, Pdu, R]) -> R:
        """Drive one flow; return its result or raise its failure."""
        (outcome,) = await self.run_many([(target, flow)])
        if isinstance(outcome, ProbeError):
            raise outcome
        result: R = outcome
        return result

    async def run_many(
        self, jobs: Sequence[tuple[SnmpTarget, Generator[Request, Pdu, Any]]]
    ) -> list[Outcome]:
        """Drive every flow; return each one's result or ``ProbeError``, in job order.

        Raises:
            LocalProtocolError: the client is not open.
            ProbeTimeoutError: no progress at all for far longer than the settings
                allow (a bug, not a dead agent: those are per-job results).
        """
        loop = self._loop
        if loop is None or self._group is None:
            raise LocalProtocolError("use SnmpClient inside 'async with'")
        batch = _Batch(len(jobs), loop.create_future())
        if not jobs:
            return []
        exchanges: list[_Exchange] = []
        tasks: list[asyncio.Task[None]] = []
        for slot, (target, flow) in enumerate(jobs):
            if target.version is SnmpVersion.V3:
                tasks.append(
                    self._group.create_task(
                        self._drive_v3(target, flow, batch, slot), name=f"snmpv3-{target.key}"
                    )
                )
                continue
            exchange = _Exchange(target, flow, batch, slot)
            exchanges.append(exchange)
            self._queue.append(exchange)
        self._pump()
        stall = self._settings.total_timeout + _STALL_GRACE
        try:
            while batch.remaining:
                seen = self._progress
                try:
                    async with asyncio.timeout(stall):
                        await asyncio.shield(batch.waiter)
                except TimeoutError as exc:
                    if self._progress == seen and batch.remaining:
                        raise ProbeTimeoutError(
                            f"SNMP batch made no progress for {stall:.1f} s"
                        ) from exc
            return batch.results
        finally:
            for exchange in exchanges:
                if not exchange.done:
                    self._abandon(exchange)
            for task in tasks:
                task.cancel()
            self._pump()

    # -- v1 / v2c engine ----------------------------------------------------------------

    def _pump(self) -> None:
        queue = self._queue
        limit = self._settings.max_in_flight
        while queue and self._in_flight < limit:
            exchange = queue.popleft()
            if exchange.done:
                continue
            exchange.started = True
            self._in_flight += 1
            try:
                request = next(exchange.flow)
            except StopIteration as stop:
                self._finish(exchange, stop.value)
                continue
            except Exception as exc:
                self._finish(exchange, self._as_probe_error(exc))
                continue
            self._start_request(exchange, request)
        self._arm()

    def _start_request(self, exchange: _Exchange, request: Request) -> None:
        request_id = self._next_id
        self._next_id = (request_id + 1) & 0x7FFFFFFF
        if request.type is PduType.GET_BULK:
            if exchange.version == 0:
                self._finish(exchange, LocalProtocolError("GETBULK does not exist in SNMPv1"))
                return
            second, third = request.non_repeaters, request.max_repetitions
        else:
            second = third = 0
        cache_key = (request.oids, 0)
        varbind_list = self._vb_cache.get(cache_key)
        if varbind_list is None:
            if len(self._vb_cache) >= _VB_CACHE:
                self._vb_cache.clear()
            varbind_list = self._vb_cache[cache_key] = pdus.null_varbinds(request.oids)
        exchange.packet = pdus.encode_raw(
            exchange.version,
            exchange.community,
            pdus.encode_request(request.type, request_id, varbind_list, second, third),
        )
        key = (request_id, exchange.addr[0])
        exchange.key = key
        self._pending[key] = exchange
        exchange.attempts = 0
        assert self._loop is not None
        exchange.deadline = self._loop.time() + self._settings.total_timeout
        self.stats.requests += 1
        self._transmit(exchange)

    def _transmit(self, exchange: _Exchange) -> None:
        assert self._loop is not None
        exchange.seq += 1
        exchange.attempts += 1
        now = self._loop.time()
        try:
            # False (buffer full) counts as a lost datagram: the timer retransmits it.
            self._transport.send(exchange.packet, exchange.addr)
        except ProbeUnreachableError as exc:
            self.stats.unreachable += 1
            self._finish(exchange, exc)
            return
        deadline = min(now + self._settings.timeout, exchange.deadline)
        self._tie += 1
        heapq.heappush(self._heap, (deadline, self._tie, exchange, exchange.seq))

    def _arm(self) -> None:
        heap = self._heap
        if not heap or self._loop is None:
            return
        head = heap[0][0]
        if self._timer is not None:
            if self._timer_at <= head:
                return
            self._timer.cancel()
        self._timer_at = head
        self._timer = self._loop.call_at(head, self._expire)

    def _expire(self) -> None:
        self._timer = None
        assert self._loop is not None
        now = self._loop.time()
        heap = self._heap
        retries = self._settings.retries
        while heap and heap[0][0] <= now:
            _, _, exchange, seq = heapq.heappop(heap)
            if exchange.done or seq != exchange.seq:
                continue
            if exchange.attempts <= retries and now < exchange.deadline:
                self.stats.retransmissions += 1
                self._transmit(exchange)
            else:
                self.stats.timeouts += 1
                self._finish(exchange, ProbeTimeoutError("timeout", target=exchange.addr[0]))
        self._pump()

    def _on_datagrams(self, batch: list[tuple[bytes, tuple[str, int]]]) -> None:
        pending = self._pending
        decode_header = pdus.decode_header
        decode_pdu = pdus.decode_pdu
        stats = self.stats
        for data, source in batch:
            try:
                _, community, pos, end = decode_header(data)
                response = decode_pdu(data, pos, end)
            except DecodeError:
                stats.malformed += 1
                continue
            if response.type is not _RESPONSE:
                stats.unmatched += 1
                continue
            assert isinstance(response, Pdu)
            key = (response.request_id, source[0])
            exchange = pending.get(key)
            if exchange is None or exchange.addr[1] != source[1] or exchange.community != community:
                stats.unmatched += 1
                continue
            del pending[key]
            exchange.key = None
            exchange.seq += 1  # invalidate the heap entry of this attempt
            stats.responses += 1
            self._progress += 1
            try:
                request = exchange.flow.send(response)
            except StopIteration as stop:
                self._finish(exchange, stop.value)
                continue
            except Exception as exc:
                self._finish(exchange, self._as_probe_error(exc))
                continue
            self._start_request(exchange, request)
        self._pump()

    @staticmethod
    def _as_probe_error(exc: Exception) -> ProbeError:
        if isinstance(exc, ProbeError):
            return exc
        # A flow that fails with anything else has a bug: report it as ours.
        error = LocalProtocolError(f"flow failed: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error

    def _finish(self, exchange: _Exchange, outcome: Outcome) -> None:
        exchange.done = True
        if exchange.key is not None:
            self._pending.pop(exchange.key, None)
            exchange.key = None
        if exchange.started:
            self._in_flight -= 1
        if isinstance(outcome, BaseException):
            exchange.flow.close()
        self._progress += 1
        batch = exchange.batch
        batch.results[exchange.slot] = outcome
        batch.remaining -= 1
        if not batch.remaining and not batch.waiter.done():
            batch.waiter.set_result(None)

    def _abandon(self, exchange: _Exchange) -> None:
        """Forget an exchange whose caller went away (cancelled)."""
        exchange.done = True
        if exchange.key is not None:
            self._pending.pop(exchange.key, None)
            exchange.key = None
        if exchange.started:
            self._in_flight -= 1
        exchange.flow.close()

    # -- v3 -----------------------------------------------------------------------------

    async def _drive_v3(
        self,
        target: SnmpTarget,
        flow: Generator[Request, Pdu, Any],
        batch: _Batch,
        slot: int,
    ) -> None:
        outcome: Outcome
        try:
            async with self._v3_slots:
                if self._usm is None:
                    from probes.snmp.usm import UsmRequester

                    self._usm = UsmRequester(
                        timeout=self._settings.timeout, retries=self._settings.retries
                    )
                request = next(flow)
                while True:
                    self.stats.requests += 1
                    try:
                        async with asyncio.timeout(self._settings.total_timeout + _STALL_GRACE):
                            response = await self._usm.execute(target, request)
                    except TimeoutError as exc:
                        raise ProbeTimeoutError("timeout", target=target.host) from exc
                    self.stats.responses += 1
                    self._progress += 1
                    request = flow.send(response)
        except StopIteration as stop:
            outcome = stop.value
        except ProbeError as exc:
            outcome = exc
            flow.close()
        except Exception as exc:
            outcome = self._as_probe_error(exc)
            flow.close()
        batch.results[slot] = outcome
        batch.remaining -= 1
        self._progress += 1
        if not batch.remaining and not batch.waiter.done():
            batch.waiter.set_result(None)
