"""Integration tests for the ICMP sweeper: real sockets, loopback only.

Traffic goes only to 127.0.0.0/8, ::1, and 169.254.250.0/24 while the lab safety
route (``unreachable 169.254.0.0/16``) makes every send there fail locally.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import aclosing
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime

import pytest

from nms.lab import safety_routes
from probes.errors import IcmpPermissionError, LocalProtocolError, ProbeConfigError
from probes.icmp.sweep_state import Echo, SweepState, make_result
from probes.icmp.sweeper import _SEND_RETRY_DELAY, IcmpSweeper, SweepSettings
from probes.observation import PingResult, PingTarget
from tests.conftest import require_root

FAST = SweepSettings(count=3, spacing=0.02, timeout=1.0)


def loopback(n: int, *, offset: int = 0) -> list[PingTarget]:
    """``n`` targets 127.0.x.y (x.y from 0.1 on), keyed ``ntu-<i>``."""
    base = int(ipaddress.IPv4Address("127.0.0.1")) + offset
    return [PingTarget(f"ntu-{i}", ipaddress.IPv4Address(base + i)) for i in range(n)]


def by_key(results: list[PingResult]) -> dict[str, PingResult]:
    keys = [r.key for r in results]
    assert len(keys) == len(set(keys))
    return {r.key: r for r in results}


def assert_alive(result: PingResult, count: int) -> None:
    assert result.sent == count
    assert result.received == count
    assert result.loss == 0.0
    assert len(result.rtts) == count
    assert all(0 <= rtt < 1.0 for rtt in result.rtts)
    assert result.error is None


@pytest.fixture
def unreachable_lab_route() -> Iterator[list[ipaddress.IPv4Address]]:
    """Hold the lab safety routes for the test and check they cover our dead range.

    ``safety_routes`` registers a hold, so a lab fleet torn down elsewhere meanwhile
    cannot remove the routes while this test sends to 169.254.250.x.
    """
    require_root()
    dead = [ipaddress.IPv4Address(f"169.254.250.{i}") for i in range(1, 51)]
    with safety_routes():
        for address in (dead[0], dead[-1]):
            # "ip route get" fails ("No route to host") exactly when the route is unreachable.
            probe = subprocess.run(["ip", "route", "get", str(address)], capture_output=True)
            if probe.returncode == 0:
                pytest.fail(f"{address} is routed ({probe.stdout!r}); refusing to send there")
        yield dead


@pytest.fixture
def datagram_icmp_allowed() -> Iterator[None]:
    """Let every group open datagram ICMP sockets; restore the sysctl afterwards."""
    require_root()
    key = "net.ipv4.ping_group_range"
    old = subprocess.run(
        ["sysctl", "-n", key], check=True, capture_output=True, text=True
    ).stdout.split()
    subprocess.run(["sysctl", "-qw", f"{key}=0 2147483647"], check=True)
    try:
        yield
    finally:
        subprocess.run(["sysctl", "-qw", f"{key}={' '.join(old)}"], check=True)


async def test_sweeps_200_loopback_addresses() -> None:
    require_root()
    targets = loopback(200)
    async with IcmpSweeper(settings=FAST) as sweeper:
        assert sweeper.mode() == "raw"
        results = by_key(await sweeper.sweep_all(targets))
    assert set(results) == {t.key for t in targets}
    for target in targets:
        result = results[target.key]
        assert result.address == target.address
        assert_alive(result, FAST.count)


async def test_ipv6_loopback() -> None:
    require_root()
    target = PingTarget("v6", ipaddress.IPv6Address("::1"))
    async with IcmpSweeper(settings=FAST) as sweeper:
        results = await sweeper.sweep_all([target, *loopback(3)])
        assert sweeper.mode(ipv6=True) == "raw"
    assert_alive(by_key(results)["v6"], FAST.count)


async def test_results_stream_as_bursts_complete() -> None:
    require_root()
    settings = SweepSettings(count=1, timeout=1.0)
    seen: list[PingResult] = []
    async with IcmpSweeper(settings=settings) as sweeper:
        async for result in sweeper.sweep(loopback(20)):
            seen.append(result)
    assert len(by_key(seen)) == 20


async def test_duplicate_addresses_reported_under_every_key() -> None:
    require_root()
    address = ipaddress.IPv4Address("127.0.3.9")
    targets = [PingTarget("a", address), PingTarget("b", address), PingTarget("c", address)]
    async with IcmpSweeper(settings=FAST) as sweeper:
        results = by_key(await sweeper.sweep_all(targets))
    assert set(results) == {"a", "b", "c"}
    for result in results.values():
        assert result.address == address
        assert_alive(result, FAST.count)


async def test_spread_spaces_out_first_echoes() -> None:
    require_root()
    settings = SweepSettings(count=1, spread=0.5, timeout=1.0)
    async with IcmpSweeper(settings=settings) as sweeper:
        start = time.monotonic()
        results = await sweeper.sweep_all(loopback(100))
        elapsed = time.monotonic() - start
    assert 0.45 <= elapsed < 1.5
    firsts = sorted(r.started_at for r in results)
    assert (firsts[-1] - firsts[0]).total_seconds() >= 0.4
    assert all(r.loss == 0 for r in results)


async def test_started_at_comes_from_the_wall_clock() -> None:
    require_root()
    fixed = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with IcmpSweeper(settings=FAST, wall_clock=lambda: fixed) as sweeper:
        results = await sweeper.sweep_all(loopback(5))
    assert {r.started_at for r in results} == {fixed}


async def test_two_sweepers_do_not_steal_each_others_replies() -> None:
    require_root()
    targets = loopback(150, offset=1000)
    settings = SweepSettings(count=4, spacing=0.01, timeout=1.0)
    async with (
        IcmpSweeper(settings=settings) as first,
        IcmpSweeper(settings=settings) as second,
    ):
        a, b, c = await asyncio.gather(
            first.sweep_all(targets), second.sweep_all(targets), first.sweep_all(targets[:50])
        )
    for results, n in ((a, 150), (b, 150), (c, 50)):
        assert len(by_key(results)) == n
        for result in results:
            assert_alive(result, settings.count)


async def test_datagram_icmp_path(datagram_icmp_allowed: None) -> None:
    targets = [*loopback(50, offset=2000), PingTarget("v6", ipaddress.IPv6Address("::1"))]
    async with IcmpSweeper(settings=FAST, privileged=False) as sweeper:
        assert sweeper.mode() == "datagram"
        # A raw sweeper running at the same time sees these replies and must ignore them.
        async with IcmpSweeper(settings=FAST, privileged=True) as raw:
            results, raw_results = await asyncio.gather(
                sweeper.sweep_all(targets), raw.sweep_all(targets[:10])
            )
        assert sweeper.mode(ipv6=True) == "datagram"
    assert len(by_key(results)) == len(targets)
    for result in [*results, *raw_results]:
        assert_alive(result, FAST.count)


@pytest.mark.parametrize("privileged", [None, True, False])
async def test_permission_failure_says_how_to_fix(
    monkeypatch: pytest.MonkeyPatch, privileged: bool | None
) -> None:
    real = socket.socket

    def denied(family: int = -1, kind: int = -1, proto: int = -1, *rest: object) -> socket.socket:
        # ICMP sockets only: the loop opens sockets of its own (uvloop a socketpair for
        # signals, each time it starts running), which must keep working.
        if proto in (socket.IPPROTO_ICMP, socket.IPPROTO_ICMPV6):
            raise PermissionError(13, "Permission denied")
        return real(family, kind, proto, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "socket", denied)
    sweeper = IcmpSweeper(settings=FAST, privileged=privileged)
    with pytest.raises(IcmpPermissionError) as info:
        async with sweeper:
            pytest.fail("opened without permission")
    message = str(info.value)
    assert "root" in message
    assert "setcap cap_net_raw+ep" in message
    assert "ping_group_range" in message
    assert info.value.family == "IPv4"


async def test_unreachable_targets_fail_at_once(
    unreachable_lab_route: list[ipaddress.IPv4Address],
) -> None:
    dead = [PingTarget(f"dead-{a}", a) for a in unreachable_lab_route]
    live = loopback(50, offset=3000)
    mixed = [t for pair in zip(dead, live, strict=True) for t in pair]
    settings = SweepSettings(count=3, spacing=0.05, timeout=2.0)
    async with IcmpSweeper(settings=settings) as sweeper:
        start = time.monotonic()
        results = by_key(await sweeper.sweep_all(mixed))
        elapsed = time.monotonic() - start
    # Nothing waits for a timeout: the kernel refuses each send immediately.
    assert elapsed < settings.timeout
    for target in dead:
        result = results[target.key]
        assert result.sent == settings.count
        assert result.received == 0
        assert result.loss == 1.0
        assert result.error == "EHOSTUNREACH"
    for target in live:
        assert_alive(results[target.key], settings.count)


async def test_breaking_out_of_a_sweep_cleans_up() -> None:
    require_root()
    async with IcmpSweeper(settings=FAST) as sweeper:
        async with aclosing(sweeper.sweep(loopback(30))) as stream:
            async for _ in stream:
                break
        assert sweeper._pending == {}
        results = await sweeper.sweep_all(loopback(5))
    assert len(results) == 5


async def test_sweep_requires_async_with() -> None:
    sweeper = IcmpSweeper(settings=FAST)
    with pytest.raises(LocalProtocolError):
        await sweeper.sweep_all(loopback(1))


async def test_empty_sweep() -> None:
    require_root()
    async with IcmpSweeper(settings=FAST) as sweeper:
        assert await sweeper.sweep_all([]) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"count": 0}, "count"),
        ({"count": True}, "count"),
        ({"count": 2.0}, "count"),
        ({"spacing": -0.1}, "spacing"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"spread": float("nan")}, "spread"),
        ({"payload_size": -1}, "payload_size"),
        ({"payload_size": 70_000}, "payload_size"),
    ],
)
def test_settings_are_validated(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ProbeConfigError) as info:
        SweepSettings(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_settings_defaults() -> None:
    settings = SweepSettings()
    assert (settings.count, settings.spacing, settings.timeout, settings.spread) == (
        5,
        0.2,
        1.0,
        0.0,
    )


async def test_replies_later_than_the_timeout_count_as_lost() -> None:
    """Loopback answers in tens of microseconds: a 1 us timeout loses every echo."""
    require_root()
    settings = SweepSettings(count=2, spacing=0.01, timeout=1e-6)
    async with IcmpSweeper(settings=settings) as sweeper:
        start = time.monotonic()
        results = await sweeper.sweep_all(loopback(20, offset=4000))
        elapsed = time.monotonic() - start
        assert sweeper._pending == {}
    assert elapsed < 0.5
    for result in results:
        assert (result.sent, result.received, result.loss, result.error) == (2, 0, 1.0, None)


def test_fast_result_is_the_same_frozen_ping_result() -> None:
    """The sweeper builds results by writing slots; they must equal the dataclass's."""
    address = ipaddress.IPv4Address("127.0.0.9")
    started = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    for rtts, error in (((0.001, 0.002), None), ((), "EHOSTUNREACH")):
        fast = make_result("ntu-9", address, started, 2, len(rtts), rtts, error)
        slow = PingResult("ntu-9", address, started, 2, len(rtts), rtts, error)
        assert type(fast) is PingResult
        assert fast == slow
        assert hash(fast) == hash(slow)
        assert repr(fast) == repr(slow)
    with pytest.raises(FrozenInstanceError):
        fast.sent = 3  # type: ignore[misc]


async def test_cancelling_the_consumer_cancels_the_sweep() -> None:
    require_root()
    settings = SweepSettings(count=3, spacing=0.2, timeout=1.0)
    async with IcmpSweeper(settings=settings) as sweeper:
        task = asyncio.create_task(sweeper.sweep_all(loopback(40, offset=5000)))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sweeper._pending == {}
        assert sweeper._sweeps == set()
        results = await sweeper.sweep_all(loopback(5, offset=5000))
    assert len(results) == 5


async def test_nothing_of_a_finished_sweep_stays_alive() -> None:
    """A long-running process sweeps forever: no sweep state may outlive its sweep."""
    require_root()
    async with IcmpSweeper(settings=FAST) as sweeper:
        for _ in range(3):
            results = await sweeper.sweep_all(loopback(30, offset=6000))
            assert len(results) == 30
        del results
        gc.collect()
        kinds = (SweepState, Echo)
        assert [o for o in gc.get_objects() if isinstance(o, kinds)] == []
        assert sweeper._pending == {}


async def test_a_target_without_an_ip_address_is_refused() -> None:
    require_root()
    bad = PingTarget("ntu-bad", "127.0.0.1")  # type: ignore[arg-type]
    async with IcmpSweeper(settings=FAST) as sweeper:
        with pytest.raises(ProbeConfigError) as info:
            await sweeper.sweep_all([*loopback(3), bad])
        assert info.value.field == "targets"
        assert "ntu-bad" in str(info.value)
        assert sweeper._pending == {}


async def test_the_back_off_after_a_full_send_buffer_is_a_real_pause() -> None:
    # uvloop (the processes' loop, and the tests') rounds a delay to whole milliseconds:
    # a back-off under 0.5 ms would be no pause at all, a spin while the buffer is full.
    start = time.monotonic()
    for _ in range(20):
        await asyncio.sleep(_SEND_RETRY_DELAY)
    assert time.monotonic() - start >= 20 * 0.0005
