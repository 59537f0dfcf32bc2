"""Pytest fixtures and helpers for tests that need the simulated NTU lab (LAB.md).

Use from a test module with ``from tests.lab_fixtures import lab_fleet`` (or add
``pytest_plugins = ["tests.lab_fixtures"]`` to the root conftest)::

    @pytest.mark.lab
    def test_something(lab_fleet):
        fleet = lab_fleet(hosts=2, ntus_per_host=50)
        fleet.link_down(fleet.hosts[0])
        ...

Every fleet the factory made is torn down after the test, pass or fail.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

import pytest

from nms.lab import LabFleet
from tests.conftest import require_root


class LabFleetFactory(Protocol):
    def __call__(
        self, *, hosts: int = 1, ntus_per_host: int = 16, ipv6: bool = False
    ) -> LabFleet: ...


@pytest.fixture
def lab_fleet() -> Iterator[LabFleetFactory]:
    """A factory of running lab fleets; all of them are torn down after the test."""
    require_root()
    made: list[LabFleet] = []

    def make(*, hosts: int = 1, ntus_per_host: int = 16, ipv6: bool = False) -> LabFleet:
        fleet = LabFleet(hosts=hosts, ntus_per_host=ntus_per_host, ipv6=ipv6)
        made.append(fleet)
        fleet.up()
        return fleet

    try:
        yield make
    finally:
        failures: list[BaseException] = []
        for fleet in reversed(made):
            try:
                fleet.down()
            except Exception as exc:  # tear down the others before reporting
                failures.append(exc)
        if failures:
            raise failures[0]


@dataclass(frozen=True, slots=True)
class FpingResult:
    """What fping saw for one address."""

    sent: int
    received: int
    errors: list[str]

    @property
    def loss(self) -> float:
        return 1.0 - self.received / self.sent if self.sent else 1.0


_SUMMARY = re.compile(r"^(\S+)\s*: xmt/rcv/%loss = (\d+)/(\d+)/")
_SEND_ERROR = re.compile(r"^(\S+): error while sending ping: (.*)$")
_VERDICT = re.compile(r"^(\S+) is (alive|unreachable)")


def fping(
    addresses: Iterable[IPv4Address | IPv6Address | str],
    *,
    count: int = 1,
    period_ms: int = 10,
    timeout_ms: int = 300,
) -> dict[str, FpingResult]:
    """Ping every address ``count`` times with fping; return what it saw per address.

    With ``count == 1`` fping runs in its default (alive/unreachable) mode, the only
    one in which fping 5.1 reports send errors such as "No route to host"
    (EHOSTUNREACH); they are collected per address.
    """
    targets = [str(a) for a in addresses]
    argv = ["fping", "-i", "1", "-t", str(timeout_ms), "-r", "0", "-f", "-"]
    if count > 1:
        argv += ["-c", str(count), "-p", str(period_ms)]
    proc = subprocess.run(
        argv, input="\n".join(targets) + "\n", capture_output=True, text=True, check=False,
        timeout=60,
    )  # fmt: skip
    errors: dict[str, list[str]] = {}
    results: dict[str, FpingResult] = {}
    for line in proc.stderr.splitlines():
        if m := _SEND_ERROR.match(line):
            errors.setdefault(m[1], []).append(m[2])
    for line in proc.stderr.splitlines():
        if m := _SUMMARY.match(line):
            results[m[1]] = FpingResult(int(m[2]), int(m[3]), errors.get(m[1], []))
    for line in proc.stdout.splitlines():
        if m := _VERDICT.match(line):
            results[m[1]] = FpingResult(1, int(m[2] == "alive"), errors.get(m[1], []))
    missing = [t for t in targets if t not in results]
    if missing:
        raise AssertionError(f"fping reported nothing for {missing[:5]}: {proc.stderr[-500:]}")
    return results
