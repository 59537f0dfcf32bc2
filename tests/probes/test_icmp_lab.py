"""The ICMP sweeper against the simulated NTU lab: real namespaces, real faults."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from nms.lab import LabFleet
from probes.icmp.sweeper import IcmpSweeper, SweepSettings
from probes.observation import IPAddress, PingResult, PingTarget
from tests.lab_fixtures import LabFleetFactory
from tests.lab_fixtures import lab_fleet as lab_fleet  # the fixture

pytestmark = pytest.mark.lab

SETTINGS = SweepSettings(count=3, spacing=0.02, timeout=1.0)


def targets(addresses: Sequence[IPAddress]) -> list[PingTarget]:
    return [PingTarget(f"ntu-{address}", address) for address in addresses]


async def sweep(
    fleet_addresses: Sequence[IPAddress], settings: SweepSettings = SETTINGS
) -> tuple[dict[IPAddress, PingResult], float]:
    """Sweep the addresses once; results by address, and the wall time it took."""
    async with IcmpSweeper(settings=settings) as sweeper:
        started = time.monotonic()
        results = await sweeper.sweep_all(targets(fleet_addresses))
        elapsed = time.monotonic() - started
    by_address = {result.address: result for result in results}
    assert len(by_address) == len(results) == len(fleet_addresses)
    return by_address, elapsed


def assert_all_answer(results: dict[IPAddress, PingResult], addresses: Sequence[IPAddress]) -> None:
    for address in addresses:
        result = results[address]
        assert (result.sent, result.received, result.loss, result.error) == (
            SETTINGS.count,
            SETTINGS.count,
            0.0,
            None,
        ), result


def assert_all_lost(results: dict[IPAddress, PingResult], addresses: Sequence[IPAddress]) -> None:
    for address in addresses:
        result = results[address]
        assert (result.sent, result.received, result.loss) == (SETTINGS.count, 0, 1.0), result


def burst_bound(settings: SweepSettings) -> float:
    """What a sweep with dead targets may take: one timeout, the burst, and slack."""
    return settings.timeout + settings.count * settings.spacing + 1.5


@pytest.fixture
def fleet(lab_fleet: LabFleetFactory) -> LabFleet:
    return lab_fleet(hosts=3, ntus_per_host=100)


async def test_whole_fleet_answers(fleet: LabFleet) -> None:
    results, elapsed = await sweep(fleet.ipv4_addresses)
    assert_all_answer(results, fleet.ipv4_addresses)
    assert elapsed < burst_bound(SETTINGS)


async def test_link_down_host_times_out_and_the_rest_is_unaffected(fleet: LabFleet) -> None:
    dead, *alive = fleet.hosts
    fleet.link_down(dead)
    results, elapsed = await sweep(fleet.ipv4_addresses)
    assert elapsed < burst_bound(SETTINGS)
    assert_all_lost(results, dead.ntus_v4)
    assert all(results[a].error is None for a in dead.ntus_v4)  # timeouts, not errors
    for host in alive:
        assert_all_answer(results, host.ntus_v4)
    fleet.link_up(dead)
    results, _ = await sweep(fleet.ipv4_addresses)
    assert_all_answer(results, fleet.ipv4_addresses)


async def test_our_side_down_fails_at_once(fleet: LabFleet) -> None:
    dead = fleet.hosts[1]
    fleet.our_side_down(dead)
    results, elapsed = await sweep(dead.ntus_v4)
    assert elapsed < SETTINGS.timeout  # the kernel refuses every send; nothing waits
    assert_all_lost(results, dead.ntus_v4)
    assert {results[a].error for a in dead.ntus_v4} == {"EHOSTUNREACH"}
    fleet.our_side_up(dead)
    results, _ = await sweep(dead.ntus_v4)
    assert_all_answer(results, dead.ntus_v4)


async def test_silenced_host_loses_everything(fleet: LabFleet) -> None:
    quiet, *alive = fleet.hosts
    fleet.silence(quiet)
    results, elapsed = await sweep(fleet.ipv4_addresses)
    assert elapsed < burst_bound(SETTINGS)
    assert_all_lost(results, quiet.ntus_v4)
    for host in alive:
        assert_all_answer(results, host.ntus_v4)
    fleet.unsilence(quiet)
    results, _ = await sweep(quiet.ntus_v4)
    assert_all_answer(results, quiet.ntus_v4)


async def test_dropped_address_is_the_only_loser(fleet: LabFleet) -> None:
    gone = fleet.hosts[2].ntus_v4[41]
    fleet.drop_address(gone)
    results, _ = await sweep(fleet.ipv4_addresses)
    losers = [r.key for r in results.values() if r.loss > 0]
    assert losers == [f"ntu-{gone}"]
    assert results[gone].loss == 1.0
    fleet.restore_address(gone)
    results, _ = await sweep([gone])
    assert results[gone].loss == 0.0


async def test_random_loss_is_about_the_set_share(fleet: LabFleet) -> None:
    lossy, clean, _ = fleet.hosts
    fleet.set_loss(lossy, 30)
    settings = SweepSettings(count=20, spacing=0.005, timeout=0.5)
    addresses = [*lossy.ntus_v4[:25], *clean.ntus_v4[:25]]
    results, _ = await sweep(addresses, settings)
    lossy_results = [results[a] for a in lossy.ntus_v4[:25]]
    sent = sum(r.sent for r in lossy_results)
    lost = sum(r.sent - r.received for r in lossy_results)
    assert sent == 25 * 20
    assert 0.1 <= lost / sent <= 0.5, lost / sent
    assert all(results[a].loss == 0.0 for a in clean.ntus_v4[:25])
    fleet.clear_loss(lossy)


async def test_ipv6_lab_faults(lab_fleet: LabFleetFactory) -> None:
    fleet = lab_fleet(hosts=2, ntus_per_host=20, ipv6=True)
    down, up = fleet.hosts
    fleet.link_down(down)
    gone = up.ntus_v6[3]
    fleet.drop_address(gone)
    results, elapsed = await sweep(fleet.ipv6_addresses)
    assert elapsed < burst_bound(SETTINGS)
    assert_all_lost(results, [*down.ntus_v6, gone])
    assert_all_answer(results, [a for a in up.ntus_v6 if a != gone])
