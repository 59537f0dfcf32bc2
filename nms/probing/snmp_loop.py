"""The SNMP probe loop: one poll of every NTU with an ``snmp`` section per interval.

A trap from an NTU (linkDown, linkUp, coldStart, warmStart) asks for an immediate
extra poll of that NTU, so the detector hears of it in about a round trip instead of
up to one interval later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from nms.bus.batch import SnmpBatch
from nms.clock import Clock
from nms.inventory.model import NtuSpec
from nms.probing.settings import SnmpSettings
from probes.observation import IPAddress, SnmpResult
from probes.snmp.client import ClientSettings
from probes.snmp.target import (
    AuthProtocol,
    PrivProtocol,
    SnmpTarget,
    SnmpVersion,
    UsmCredentials,
    WanSelector,
)
from probes.snmp.traps import TrapEvent

log = logging.getLogger("nms.snmp")

Publish = Callable[[SnmpBatch], Awaitable[None]]

_VERSIONS = {"1": SnmpVersion.V1, "2c": SnmpVersion.V2C, "3": SnmpVersion.V3}


class Poller(Protocol):
    """What the loop needs of ``probes.snmp.poller.SnmpPoller``."""

    async def poll(self, targets: Sequence[SnmpTarget]) -> Sequence[SnmpResult]: ...

    def forget(self, key: str) -> None: ...


def client_settings(snmp: SnmpSettings) -> ClientSettings:
    """The SNMP client's settings from the ``probes.snmp`` section."""
    timeout = snmp.timeout.total_seconds()
    return ClientSettings(
        timeout=timeout,
        retries=snmp.retries,
        total_timeout=timeout * (snmp.retries + 1) + 1.0,
        max_in_flight=snmp.max_in_flight,
    )


def snmp_target(spec: NtuSpec) -> SnmpTarget | None:
    """The poller's view of an NTU, or None when it has no ``snmp`` section."""
    cfg = spec.snmp
    if cfg is None:
        return None
    wan = None
    if cfg.wan is not None:
        for by in ("index", "name", "descr", "alias"):
            value = getattr(cfg.wan, by)
            if value is not None:
                wan = WanSelector(by=by, value=value)
    usm = None
    if cfg.version == "3":
        assert cfg.user is not None
        assert cfg.auth_key is not None
        usm = UsmCredentials(
            user=cfg.user,
            auth_protocol=AuthProtocol((cfg.auth_protocol or "SHA").lower()),
            auth_key=cfg.auth_key.get_secret_value(),
            priv_protocol=PrivProtocol(cfg.priv_protocol.lower()) if cfg.priv_protocol else None,
            priv_key=cfg.priv_key.get_secret_value() if cfg.priv_key else None,
        )
    return SnmpTarget(
        key=spec.id,
        address=spec.address,
        port=cfg.port,
        version=_VERSIONS[cfg.version],
        community=cfg.community.get_secret_value() if cfg.community else None,
        usm=usm,
        wan=wan,
    )


class SnmpLoop:
    """Polls the targets every ``settings.interval``, and one NTU at once on request.

    Args:
        poller: runs the GETs and walks (``SnmpPoller``).
        settings: the ``probes.snmp`` section (its ``interval`` is the cycle).
        publish: where each ``SnmpBatch`` goes (``Bus.publish``).
        clock: measures the cycles and waits for the next one.
    """

    def __init__(
        self,
        *,
        poller: Poller,
        settings: SnmpSettings,
        publish: Publish,
        clock: Clock,
    ) -> None:
        self._poller = poller
        self._interval = settings.interval.total_seconds()
        self._publish = publish
        self._clock = clock
        self._targets: dict[str, SnmpTarget] = {}
        self._made_of: dict[str, NtuSpec] = {}
        """The spec each target was made of: a reload reuses the specs (and so the
        targets) of the entries it did not parse again (``InventoryCache``)."""
        self._by_address: dict[IPAddress, tuple[str, str]] = {}
        self._urgent: set[str] = set()
        self._wake = asyncio.Event()
        self.cycles = 0
        self.errors = 0

    def set_targets(self, specs: Sequence[NtuSpec]) -> None:
        """Takes effect at the next poll; forgets what it knew of removed NTUs."""
        targets: dict[str, SnmpTarget] = {}
        made_of: dict[str, NtuSpec] = {}
        new = 0
        for spec in specs:
            if spec.snmp is None:
                continue
            target = self._targets.get(spec.id) if self._made_of.get(spec.id) is spec else None
            if target is None:
                target = snmp_target(spec)
                new += 1
            if target is not None:
                targets[spec.id] = target
                made_of[spec.id] = spec
        if not new and len(targets) == len(self._targets):
            # The same targets (an NTU's other fields changed, or none): only the order
            # of the polls may have moved.
            self._targets, self._made_of = targets, made_of
            return
        for gone in self._targets.keys() - targets.keys():
            self._poller.forget(gone)
        self._targets, self._made_of = targets, made_of
        # Traps are accepted from v1/v2c NTUs with their community (v3 traps: not yet).
        self._by_address = {
            t.address: (t.key, t.community) for t in targets.values() if t.community
        }

    def trap_source(self, address: IPAddress) -> tuple[str, str] | None:
        """The NTU key and community expected from a trap sender, or None if unknown."""
        return self._by_address.get(address)

    def on_trap(self, event: TrapEvent) -> None:
        """linkDown / linkUp / coldStart / warmStart: poll that NTU now."""
        log.info(
            "ntu=%s trap %s%s: polling now",
            event.key,
            event.kind,
            f" ifIndex {event.if_index}" if event.if_index is not None else "",
        )
        self.poll_now(event.key)

    def poll_now(self, key: str) -> None:
        """Poll this NTU at once (a trap said something happened)."""
        if key in self._targets:
            self._urgent.add(key)
            self._wake.set()

    async def run(self) -> None:
        """Poll at a fixed rate until cancelled, and at once after ``poll_now``."""
        next_cycle = self._clock.monotonic()
        while True:
            now = self._clock.monotonic()
            if now >= next_cycle:
                await self._poll(list(self._targets.values()))
                self.cycles += 1
                next_cycle += self._interval
                if self._clock.monotonic() > next_cycle:
                    next_cycle = self._clock.monotonic()
            if self._urgent:
                keys, self._urgent = self._urgent, set()
                await self._poll([self._targets[k] for k in keys if k in self._targets])
                continue
            self._wake.clear()
            await self._sleep_or_wake(max(0.0, next_cycle - self._clock.monotonic()))

    async def _sleep_or_wake(self, delay: float) -> None:
        """Wait on the clock for ``delay``, or less if ``poll_now`` wakes the loop."""
        sleep = asyncio.ensure_future(self._clock.sleep(delay))
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleep, wake), return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Whichever did not finish (and both, when we are cancelled) must not linger.
            sleep.cancel()
            wake.cancel()

    async def _poll(self, targets: list[SnmpTarget]) -> None:
        if not targets:
            return
        try:
            results = await self._poller.poll(targets)
        except Exception:
            self.errors += 1
            log.exception("SNMP poll of %d targets failed; retrying next interval", len(targets))
            return
        await self._publish(SnmpBatch(results=tuple(results)))
