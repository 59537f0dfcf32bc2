"""Benchmark: our ICMP sweeper against ``fping``, one echo per target.

    python bench/icmp_sweep.py [--quick] [--timeout S] [--repeat N] [--scenario a|b|all]

Two scenarios, each run with both tools, same targets, same timeout:

(a) 10,000 loopback addresses 127.1.x.y, all alive (throughput);
(b) 3,000 lab addresses (3 hosts x 1,000 NTUs of the simulated lab, needs root) with
    one host's link down, so a third of the targets never answer (wall time is then
    bounded by the timeout; what matters is not waiting longer than needed).

For each tool it prints wall seconds, hosts per second and CPU seconds per 1,000
hosts: ``getrusage(RUSAGE_SELF)`` deltas around our sweep (it runs in this process),
``getrusage(RUSAGE_CHILDREN)`` deltas around the fping subprocess (our sweep starts
after a ``gc.collect()`` of the harness's own garbage, the target list it just built:
in a running ``nms`` the targets are old objects). The two tools take
turns (ours, fping, fping, ours, ...), so each run's ratio compares runs made under the
same machine load; each figure in the tables is the median of ``--repeat`` runs, and
the last lines say, run by run, whether ours reached fping's throughput. Not a
pass/fail test: it prints ratios (ours / fping) next to the goals.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address

from nms.app.loop import environment_loop, run
from nms.lab import LabFleet
from probes.icmp.sweeper import IcmpSweeper, SweepSettings
from probes.observation import IPAddress, PingTarget

_FPING_ALIVE = re.compile(r"^\S+\s*: xmt/rcv/%loss = 1/1/")


@dataclass(frozen=True, slots=True)
class Run:
    wall: float
    cpu: float
    alive: int


@dataclass(frozen=True, slots=True)
class Summary:
    tool: str
    hosts: int
    wall: float
    cpu: float
    alive: int

    @property
    def rate(self) -> float:
        return self.hosts / self.wall

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu / self.hosts * 1000


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_ours(addresses: Sequence[IPAddress], timeout: float) -> Run:
    targets = [PingTarget(f"ntu-{i}", address) for i, address in enumerate(addresses)]
    settings = SweepSettings(count=1, spacing=0.0, timeout=timeout, spread=0.0)

    async def main() -> tuple[float, float, int]:
        gc.collect()  # start without the harness's garbage (the target list just built)
        cpu0 = _cpu(resource.RUSAGE_SELF)
        wall0 = time.perf_counter()
        async with IcmpSweeper(settings=settings) as sweeper:
            results = await sweeper.sweep_all(targets)
        wall = time.perf_counter() - wall0
        cpu = _cpu(resource.RUSAGE_SELF) - cpu0
        return wall, cpu, sum(1 for r in results if r.received)

    # On the loop nms runs the sweeper on (runtime.event_loop; NMS_RUNTIME__EVENT_LOOP).
    wall, cpu, alive = run(main(), event_loop=environment_loop())
    return Run(wall, cpu, alive)


def run_fping(addresses: Sequence[IPAddress], timeout: float) -> Run:
    with tempfile.NamedTemporaryFile("w", prefix="bench-fping-", suffix=".txt") as listing:
        listing.write("".join(f"{address}\n" for address in addresses))
        listing.flush()
        argv = ["fping", "-c1", "-i0", "-q", "-t", str(round(timeout * 1000)), "-f", listing.name]
        cpu0 = _cpu(resource.RUSAGE_CHILDREN)
        wall0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - wall0
        cpu = _cpu(resource.RUSAGE_CHILDREN) - cpu0
    if proc.returncode not in (0, 1):  # 1: some targets unreachable
        raise SystemExit(f"fping failed ({proc.returncode}): {proc.stderr[-500:]}")
    alive = sum(1 for line in proc.stderr.splitlines() if _FPING_ALIVE.match(line))
    return Run(wall, cpu, alive)


def _summary(tool: str, hosts: int, runs: Sequence[Run]) -> Summary:
    return Summary(
        tool=tool,
        hosts=hosts,
        wall=statistics.median(r.wall for r in runs),
        cpu=statistics.median(r.cpu for r in runs),
        alive=min(r.alive for r in runs),
    )


def measure(
    addresses: Sequence[IPAddress], timeout: float, repeat: int
) -> tuple[list[Run], list[Run]]:
    """Run both tools ``repeat`` times, taking turns; return (ours, fping) runs."""
    ours: list[Run] = []
    fping: list[Run] = []
    for i in range(repeat):
        if i % 2 == 0:
            ours.append(run_ours(addresses, timeout))
            fping.append(run_fping(addresses, timeout))
        else:
            fping.append(run_fping(addresses, timeout))
            ours.append(run_ours(addresses, timeout))
    return ours, fping


def report_runs(ours: Sequence[Run], fping: Sequence[Run], hosts: int) -> bool:
    """Print each run's throughput ratio; return whether ours >= fping in every run."""
    print("  run by run (the two tools back to back, same load):")
    every = True
    for i, (a, b) in enumerate(zip(ours, fping, strict=True), start=1):
        ratio = b.wall / a.wall  # (hosts / a.wall) / (hosts / b.wall)
        ok = ratio >= 1.0
        every = every and ok
        print(
            f"    run {i}: hosts/s ours {hosts / a.wall:>7.0f} fping {hosts / b.wall:>7.0f}"
            f" ({ratio:.2f}x); CPU s/1000 hosts ours {a.cpu / hosts * 1000:.4f}"
            f" fping {b.cpu / hosts * 1000:.4f}; ours >= fping: {'yes' if ok else 'NO'}"
        )
    return every


def report(title: str, ours: Summary, fping: Summary, goal: str, met: bool) -> None:
    print(f"\n{title}")
    print(f"  {'tool':<6} {'wall s':>8} {'hosts/s':>10} {'CPU s/1000 hosts':>17} {'alive':>7}")
    for s in (ours, fping):
        print(
            f"  {s.tool:<6} {s.wall:>8.3f} {s.rate:>10.0f} {s.cpu_per_1000:>17.4f}"
            f" {s.alive:>7}/{s.hosts}"
        )
    print(
        f"  ours/fping: wall {ours.wall / fping.wall:.2f}x, hosts/s {ours.rate / fping.rate:.2f}x,"
        f" CPU per 1000 hosts {ours.cpu_per_1000 / fping.cpu_per_1000:.2f}x"
    )
    print(f"  {goal}: {'MET' if met else 'NOT MET'}")


def loopback(n: int) -> list[IPAddress]:
    base = int(IPv4Address("127.1.0.1"))
    return [IPv4Address(base + i) for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer targets, one run each")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds (default 1.0)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per tool (median)")
    parser.add_argument(
        "--scenario",
        choices=("a", "b", "all"),
        default="all",
        help="a: loopback throughput only; b: lab, 1/3 dead, only; all (default)",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (raw ICMP sockets, network namespaces)", file=sys.stderr)
        return 2
    repeat = args.repeat or (1 if args.quick else 3)
    if repeat < 1:
        parser.error("--repeat must be >= 1")
    n_loop = 2_000 if args.quick else 10_000
    per_host = 200 if args.quick else 1_000
    timeout: float = args.timeout
    print(f"ICMP sweep benchmark: count=1, timeout {timeout:.1f} s, median of {repeat} run(s)")
    print(f"load average at start: {_loadavg()}")
    verdicts: list[str] = []

    if args.scenario in ("a", "all"):
        addresses = loopback(n_loop)
        ours_runs, fping_runs = measure(addresses, timeout, repeat)
        ours = _summary("ours", n_loop, ours_runs)
        fping = _summary("fping", n_loop, fping_runs)
        report(
            f"(a) {n_loop} loopback addresses 127.1.x.y, all alive",
            ours,
            fping,
            "goal: throughput >= fping (all alive)",
            ours.rate >= fping.rate,
        )
        every = report_runs(ours_runs, fping_runs, n_loop)
        verdicts.append(f"(a) ours >= fping in each of {repeat} run(s): {'yes' if every else 'NO'}")

    if args.scenario in ("b", "all"):
        with LabFleet(hosts=3, ntus_per_host=per_host) as fleet:
            fleet.link_down(fleet.hosts[0])
            lab = list(fleet.ipv4_addresses)
            ours_runs, fping_runs = measure(lab, timeout, repeat)
        hosts = len(lab)
        ours = _summary("ours", hosts, ours_runs)
        fping = _summary("fping", hosts, fping_runs)
        report(
            f"(b) {hosts} lab addresses (3 hosts x {per_host}), one host link down (1/3 dead)",
            ours,
            fping,
            "goal: wall <= 1.2x fping (1/3 dead)",
            ours.wall <= 1.2 * fping.wall,
        )
        report_runs(ours_runs, fping_runs, hosts)
        every = all(a.wall <= 1.2 * b.wall for a, b in zip(ours_runs, fping_runs, strict=True))
        verdicts.append(
            f"(b) ours wall <= 1.2x fping's in each of {repeat} run(s): {'yes' if every else 'NO'}"
        )

    print(f"\nload average at end: {_loadavg()}")
    for line in verdicts:
        print(line)
    return 0


def _loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


if __name__ == "__main__":
    sys.exit(main())
