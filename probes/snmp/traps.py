"""SNMP trap listener: v1 Traps, v2c SNMPv2-Traps and InformRequests over UDP.

Recognises the generic notifications that matter for an NTU (RFC 3418 / IF-MIB):
coldStart, warmStart, linkDown, linkUp. A datagram becomes a :class:`TrapEvent`
only when its UDP source maps to a known NTU (``lookup(address)`` returns the NTU
key and its community) and the community matches (constant-time compare);
otherwise it is counted in :class:`TrapStats` and dropped. Informs from known
sources are acknowledged with a Response carrying the same request-id and
varbinds (RFC 3416 section 4.2.7), whatever their kind. Garbage is counted as
``malformed``: nothing a sender does can stop the listener.

The source is the UDP source address, not the v1 ``agent-addr`` field, which is
whatever the sender wrote.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal, Self

from probes.errors import DecodeError, LocalProtocolError, ProbeError
from probes.observation import IPAddress
from probes.snmp import ber
from probes.snmp.pdu import Message, Pdu, PduType, TrapV1Pdu, decode_message, encode_message
from probes.snmp.transport import DatagramTransport, UdpTransport

log = logging.getLogger("probes.snmp.traps")

TrapKind = Literal["coldStart", "warmStart", "linkDown", "linkUp"]
SNMP_TRAP_OID: ber.Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
_SNMP_TRAPS = (1, 3, 6, 1, 6, 3, 1, 1, 5)
_V2_KINDS: dict[ber.Oid, TrapKind] = {
    (*_SNMP_TRAPS, 1): "coldStart",
    (*_SNMP_TRAPS, 2): "warmStart",
    (*_SNMP_TRAPS, 3): "linkDown",
    (*_SNMP_TRAPS, 4): "linkUp",
}
_V1_KINDS: dict[int, TrapKind] = {0: "coldStart", 1: "warmStart", 2: "linkDown", 3: "linkUp"}
IF_INDEX: ber.Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 1)

Lookup = Callable[[IPAddress], tuple[str, str] | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapEvent:
    """A recognised notification from a known NTU."""

    source: IPAddress
    key: str
    kind: TrapKind
    if_index: int | None
    at: datetime
    inform: bool = False


@dataclass(slots=True)
class TrapStats:
    """Counters since the listener started (exported as metrics by the runtime)."""

    received: int = 0
    events: int = 0
    informs_acked: int = 0
    unknown_source: int = 0
    bad_community: int = 0
    malformed: int = 0
    ignored: int = 0  # valid, known source, but not one of the four kinds


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapSettings:
    """Where to listen. Port 162 needs root or CAP_NET_BIND_SERVICE."""

    host: str = "0.0.0.0"
    port: int = 162

    def __post_init__(self) -> None:
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise ValueError("port must be an int")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, not {self.port}")
        ipaddress.ip_address(self.host)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def classify(message: Message) -> tuple[TrapKind | None, int | None]:
    """The kind of a trap / inform message and the ifIndex it names, if any."""
    pdu = message.pdu
    if_index: int | None = None
    for oid, value in pdu.varbinds:
        if oid[: len(IF_INDEX)] == IF_INDEX and isinstance(value, ber.Integer):
            if_index = value.value
            break
    if isinstance(pdu, TrapV1Pdu):
        return _V1_KINDS.get(pdu.generic_trap), if_index
    for oid, value in pdu.varbinds:
        if oid == SNMP_TRAP_OID and isinstance(value, ber.ObjectIdentifier):
            return _V2_KINDS.get(value.value), if_index
    return None, if_index


class TrapListener:
    """Receives traps on one UDP socket and calls ``on_event`` for each recognised one.

    Use as ``async with TrapListener(lookup=..., on_event=..., settings=...)``; the
    socket is open (and ``local_port`` known) once ``__aenter__`` returns.
    """

    def __init__(
        self,
        *,
        lookup: Lookup,
        on_event: Callable[[TrapEvent], None],
        settings: TrapSettings,
        wall_clock: Callable[[], datetime] = _utc_now,
        transport: DatagramTransport | None = None,
    ) -> None:
        """Args:
        lookup: source address -> (NTU key, community), or None when unknown.
        on_event: called in the event loop for each event; must not block.
        settings: listen address and port.
        wall_clock: UTC "now" for ``TrapEvent.at``.
        transport: a datagram transport; UDP on ``settings`` when None.
        """
        self._lookup = lookup
        self._on_event = on_event
        self._settings = settings
        self._wall_clock = wall_clock
        self._udp: UdpTransport | None = None
        if transport is None:
            self._udp = UdpTransport(bind_v4=(settings.host, settings.port))
            transport = self._udp
        self._transport = transport
        self.stats = TrapStats()
        self._task: asyncio.Task[None] | None = None

    @property
    def local_port(self) -> int:
        """The bound UDP port (useful with port 0)."""
        if self._udp is None:
            return self._settings.port
        return self._udp.local_address[1]

    async def __aenter__(self) -> Self:
        if self._task is not None:
            raise LocalProtocolError("TrapListener is already running")
        await self._transport.open()
        self._task = asyncio.create_task(self._run(), name=f"snmp-traps-{self._settings.port}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task = self._task
        self._task = None
        try:
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    # We cancelled it just above; re-raise only our own cancellation.
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise
        finally:
            self._transport.close()

    async def _run(self) -> None:
        while True:
            for data, source in await self._transport.recv():
                self.handle(data, source)

    def handle(self, data: bytes, source: tuple[str, int]) -> TrapEvent | None:
        """Process one datagram (the receive loop calls this); return its event."""
        stats = self.stats
        stats.received += 1
        try:
            message = decode_message(data)
        except DecodeError:
            stats.malformed += 1
            return None
        pdu = message.pdu
        if pdu.type not in (PduType.TRAP_V1, PduType.TRAP_V2, PduType.INFORM):
            stats.malformed += 1  # a request or response sent to a trap port
            return None
        try:
            address = ipaddress.ip_address(source[0])
        except ValueError:
            stats.malformed += 1
            return None
        known = self._lookup(address)
        if known is None:
            stats.unknown_source += 1
            return None
        key, community = known
        if not hmac.compare_digest(message.community, community.encode()):
            stats.bad_community += 1
            return None
        inform = pdu.type == PduType.INFORM
        if inform:
            assert isinstance(pdu, Pdu)
            self._ack(message, pdu, source)
        kind, if_index = classify(message)
        if kind is None:
            stats.ignored += 1
            return None
        event = TrapEvent(
            source=address,
            key=key,
            kind=kind,
            if_index=if_index,
            at=self._wall_clock(),
            inform=inform,
        )
        stats.events += 1
        try:
            self._on_event(event)
        except Exception:
            # A failing consumer must not stop the listener; its bug is logged.
            log.exception("trap consumer failed for NTU %s", key)
        return event

    def _ack(self, message: Message, pdu: Pdu, source: tuple[str, int]) -> None:
        response = Message(
            version=message.version,
            community=message.community,
            pdu=Pdu(type=PduType.RESPONSE, request_id=pdu.request_id, varbinds=pdu.varbinds),
        )
        try:
            self._transport.send(encode_message(response), source)
        except ProbeError as exc:
            log.warning("cannot acknowledge inform from %s: %s", source[0], exc)
            return
        self.stats.informs_acked += 1
