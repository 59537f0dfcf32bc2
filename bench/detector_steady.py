"""The detector's steady state, in process: CPU per simulated minute, windows full.

    python bench/detector_steady.py [--ntus 20000] [--minutes 20] [--measure 5]
                                    [--profile out.prof]

Feeds the real detector (with the case service and an SQLite file, as ``nms run``
wires them) the results ``bench/scale.py`` makes its probes produce - an ICMP burst
of 5 echoes per NTU every 30 s in batches of 256 (as ``nms.probing.icmp_loop`` sends
them at 100,000 NTUs: full, or a second old), an SNMP poll of every third NTU every
60 s in one batch a second, a tick every second - from a fake clock, so 20 minutes
take what they cost. The P2 windows (15 min) are full from minute 15 on; the last
``--measure`` minutes are timed (and profiled with ``--profile``). The cost per
result hardly depends on the fleet's size, so the figure is also given scaled to
100,000 NTUs (the bench's own cost of making the results included). Not a test: it
prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import random
import time
from datetime import timedelta
from pathlib import Path

from bench.detector import cpu, fleet, fleet_database
from caseapi.incidents import IncidentService
from nms.app.detector_service import build_detector
from nms.app.loop import tune_collector
from nms.app.settings import Settings
from nms.bus.batch import PingBatch, SnmpBatch
from nms.clock import FakeClock
from probes.observation import PingResult, SnmpResult

_ICMP_INTERVAL = 30
_SNMP_INTERVAL = 60
_BATCH = 256


async def main(ntus: int, minutes: int, measure: int, profile: Path | None) -> None:
    inventory = fleet(ntus)
    specs = inventory.ntus
    rng = random.Random(1)
    async with fleet_database(inventory) as sessionmaker:
        clock = FakeClock()
        # As ``nms run`` builds it (its default settings: refresh 1m, stale_after 2m).
        detector = build_detector(
            Settings(),
            sessionmaker=sessionmaker,
            clock=clock,
            sink=IncidentService(sessionmaker=sessionmaker, clock=clock),
        )
        await detector.load(inventory)
        octets = [0] * ntus
        # Each NTU is probed in its own second of the cycle, as a sweep spreads them.
        icmp_slots: list[list[int]] = [[] for _ in range(_ICMP_INTERVAL)]
        snmp_slots: list[list[int]] = [[] for _ in range(_SNMP_INTERVAL)]
        for i in range(ntus):
            icmp_slots[i % _ICMP_INTERVAL].append(i)
            if i % 3 == 0:
                snmp_slots[(i // 3) % _SNMP_INTERVAL].append(i)
        profiler = cProfile.Profile() if profile else None
        per_minute: list[tuple[float, float]] = []
        measured_cpu = measured_wall = 0.0
        results = 0
        waiting: list[PingResult] = []
        for minute in range(minutes):
            timed = minute >= minutes - measure
            if timed and profiler is not None and minute == minutes - measure:
                profiler.enable()
            c0, w0 = cpu(), time.perf_counter()
            for second in range(60):
                now = clock.now()
                pings: list[PingResult] = []
                for i in icmp_slots[second % _ICMP_INTERVAL]:
                    spec = specs[i]
                    rtt = 0.0005 + rng.random() * 0.0002
                    pings.append(
                        PingResult(
                            key=spec.id,
                            address=spec.address,
                            started_at=now,
                            sent=5,
                            received=5,
                            rtts=(rtt, rtt * 1.1, rtt * 0.9, rtt, rtt * 1.05),
                        )
                    )
                # Full batches as they fill; what is left waits up to a second more.
                waiting += pings
                while len(waiting) >= _BATCH:
                    await detector.observe(PingBatch(results=tuple(waiting[:_BATCH])))
                    del waiting[:_BATCH]
                if waiting and waiting[0].started_at < now:
                    await detector.observe(PingBatch(results=tuple(waiting)))
                    waiting = []
                polls = []
                for i in snmp_slots[second % _SNMP_INTERVAL]:
                    spec = specs[i]
                    octets[i] += rng.randrange(1_000_000, 2_000_000)
                    polls.append(
                        SnmpResult(
                            key=spec.id,
                            address=spec.address,
                            started_at=now,
                            reachable=True,
                            sys_uptime=int(clock.now().timestamp() * 100) - 1_000_000,
                            if_index=3,
                            if_oper_status=1,
                            if_admin_status=1,
                            in_octets=octets[i],
                            out_octets=octets[i] // 2,
                            counters_64bit=True,
                            in_errors=0,
                            out_errors=0,
                            in_discards=0,
                        )
                    )
                if polls:
                    await detector.observe(SnmpBatch(results=tuple(polls)))
                results += len(pings) + len(polls)
                await detector.tick()
                clock.advance(timedelta(seconds=1))
            used, wall = cpu() - c0, time.perf_counter() - w0
            per_minute.append((used, wall))
            if timed:
                measured_cpu += used
                measured_wall += wall
            print(
                f"minute {minute + 1:2d}: {used:6.2f} s CPU = {used / 60 * 100:5.1f} % of a core "
                f"at {ntus} NTUs ({used / 60 * 100 * 100_000 / ntus:5.1f} % at 100,000)"
                + ("  [measured]" if timed else ""),
                flush=True,
            )
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        counts = detector.counts()
    share = measured_cpu / (measure * 60)
    print(
        f"\n{ntus} NTUs, last {measure} of {minutes} simulated minutes: "
        f"{measured_cpu:.1f} s CPU ({measured_wall:.1f} s wall) = {share * 100:.1f} % of a core; "
        f"scaled to 100,000 NTUs: {share * 100 * 100_000 / ntus:.1f} % "
        f"(detector alone, no probing); statuses {dict(counts)}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ntus", type=int, default=20_000)
    parser.add_argument("--minutes", type=int, default=20)
    parser.add_argument("--measure", type=int, default=5, help="timed minutes at the end")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile output file")
    args = parser.parse_args()
    tune_collector(Settings().runtime.gc_threshold)  # as the nms processes run
    asyncio.run(main(args.ntus, args.minutes, min(args.measure, args.minutes), args.profile))
