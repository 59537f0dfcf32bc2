"""The state of one ICMP sweep, in flat lists by target index (see ``sweeper``).

A sweep of 10,000 targets must not build 10,000 mutable objects: every one is work for
the garbage collector while replies are due. So a sweep keeps per-target facts in
lists indexed by target, and builds each target's ``PingResult`` once, at the end.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address

from probes.icmp.sockets import IcmpChannel
from probes.observation import PingResult, PingTarget


def _result_maker() -> Callable[
    [str, IPv4Address | IPv6Address, datetime, int, int, tuple[float, ...], str | None],
    PingResult,
]:
    """``PingResult(...)`` at half the cost, for the sweep's one result per target.

    A frozen dataclass's ``__init__`` sets every field through ``object.__setattr__``
    (1.4 us for PingResult's seven); writing its slots directly builds the same frozen
    object in 0.7 us. Refuses to load if PingResult's fields change under it.
    """
    names = ("key", "address", "started_at", "sent", "received", "rtts", "error")
    if tuple(f.name for f in fields(PingResult)) != names or not hasattr(PingResult, "__slots__"):
        raise RuntimeError("PingResult's fields changed: update probes.icmp.sweep_state")
    new = object.__new__
    s_key, s_address, s_started, s_sent, s_received, s_rtts, s_error = (
        getattr(PingResult, name).__set__ for name in names
    )

    def make(
        key: str,
        address: IPv4Address | IPv6Address,
        started_at: datetime,
        sent: int,
        received: int,
        rtts: tuple[float, ...],
        error: str | None,
    ) -> PingResult:
        result: PingResult = new(PingResult)
        s_key(result, key)
        s_address(result, address)
        s_started(result, started_at)
        s_sent(result, sent)
        s_received(result, received)
        s_rtts(result, rtts)
        s_error(result, error)
        return result

    return make


make_result = _result_maker()


NOT_STARTED = datetime.min.replace(tzinfo=UTC)  # placeholder until echo 0 goes out


class Echo:
    """Echo number ``k`` of one sweep: the targets still waiting for it, and when each
    was sent. ``IcmpSweeper._pending`` maps its sequence number here."""

    __slots__ = ("sent_at", "sweep", "waiting")

    def __init__(self, sweep: SweepState, n: int) -> None:
        self.sweep = sweep
        self.waiting: dict[str, int] = {}  # host -> target index, until resolved
        self.sent_at = [0.0] * n  # monotonic send time by target index


@dataclass(frozen=True, slots=True)
class Group:
    """Target indices ``start:end`` of one address family, sent through ``channel``."""

    start: int
    end: int
    channel: IcmpChannel
    packets: list[bytes]  # by echo number


@dataclass(slots=True, eq=False)
class SweepState:
    """One sweep's state, kept in flat lists indexed by target (no object per target:
    fewer allocations, so less garbage-collector work while sweeping).

    Indices ``0:n`` are the sendable targets grouped by address family; ``n:`` those
    without a socket for their family (reported at once).
    """

    count: int
    seqs: list[int]
    targets: list[PingTarget]  # one per distinct address
    hosts: list[str]  # the address as the socket reports a reply's source
    sockaddrs: list[tuple[str, int]]
    n: int
    groups: list[Group] = field(default_factory=list)
    echoes: list[Echo] = field(default_factory=list)
    extra: dict[int, list[PingTarget]] = field(default_factory=dict)  # same address
    rtts: list[tuple[float, ...]] = field(default_factory=list)  # in arrival order
    resolved: list[int] = field(default_factory=list)  # echoes answered, lost or failed
    started: list[datetime] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    done: list[int] = field(default_factory=list)  # complete, not yet yielded
    # (deadline of the batch's last echo, k, first index, end index), in send order
    expiry: deque[tuple[float, int, int, int]] = field(default_factory=deque)
    waiter: asyncio.Future[None] | None = None
    failure: BaseException | None = None

    def resolve(self, i: int) -> None:
        """One more echo of target ``i`` is settled; the burst completes at ``count``."""
        resolved = self.resolved[i] + 1
        self.resolved[i] = resolved
        if resolved == self.count:
            self.done.append(i)

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def release(self) -> None:
        """Drop the per-target state once the sweep is over: the cancelled driver's
        traceback keeps the sweep itself alive until the next sweep."""
        self.targets = []
        self.hosts = []
        self.sockaddrs = []
        self.groups = []
        self.echoes = []
        self.extra = {}
        self.rtts = []
        self.resolved = []
        self.started = []
        self.errors = {}
        self.done = []
        self.expiry.clear()
