"""CPU of one ``/metrics`` page at fleet scale, in process (no lab, no network).

    python bench/metrics_scrape.py [--ntus 100000] [--scrapes 3] [--per-ntu all]

Builds N synthetic NTUs in a real ``Detector`` (93 % up with burst figures, 3 % down
with an open P1, 1 % each suspect, unknown, recovering, unreachable and up with an
open P2; every third with SNMP WAN figures), then
renders the page as ``GET /metrics`` does (``nms.noc.exposition.render``) and prints
the CPU seconds, size and sample count of a scrape. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import ipaddress
import resource
import time
from datetime import timedelta
from typing import cast, get_args

from nms.clock import FakeClock
from nms.detector.availability import NtuState, Rules, Status
from nms.detector.degradation import Thresholds
from nms.detector.engine import Detector
from nms.detector.fusion import Signals, SnmpView
from nms.detector.settings import DegradedSettings
from nms.detector.store import LastProbe
from nms.detector.tracked import Degraded, Outage, Tracked
from nms.inventory.model import NtuSpec, SnmpSpec
from nms.noc.exposition import render
from nms.noc.metrics import build_metrics
from nms.noc.ntu_metrics import PerNtu
from nms.noc.probe_metrics import ProbeStats


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# The fleet's mix, by i % 100: 3 % down with an open P1, 1 % each suspect, unknown,
# recovering and unreachable, 1 % up with an open P2; the rest up.
_MIX = {
    0: Status.DOWN,
    1: Status.DOWN,
    2: Status.DOWN,
    3: Status.SUSPECT,
    4: Status.UNKNOWN,
    5: Status.RECOVERING,
    6: Status.UNREACHABLE,
}
_OUTAGE = {Status.DOWN, Status.SUSPECT, Status.RECOVERING}


def synthetic_detector(ntus: int, clock: FakeClock) -> Detector:
    """A detector holding ``ntus`` NTUs in a realistic mix of states (no database use)."""
    detector = Detector(
        rules=Rules(
            down_after=timedelta(minutes=1), restore_after=2, stale_after=timedelta(minutes=2)
        ),
        degraded=DegradedSettings(),
        clock=clock,
        sink=cast("object", None),  # type: ignore[arg-type]  # never called: no batch
        sessionmaker=cast("object", None),  # type: ignore[arg-type]
    )
    now = clock.now()
    snmp = SnmpSpec.model_validate({"community": "public", "wan": {"name": "wan0"}})
    fleet = detector.ntus
    for i in range(ntus):
        address = ipaddress.ip_address(0x7F010000 + i)  # loopback, and never contacted
        spec = NtuSpec.model_construct(
            id=f"ntu-{i:06d}", customer="c", address=address, snmp=snmp if i % 3 == 0 else None
        )
        kind = i % 100
        status = _MIX.get(kind, Status.UP)
        seen = None if status == Status.UNKNOWN else now - timedelta(seconds=i % 60)
        state = NtuState(
            status=status,
            since=now - timedelta(hours=1),
            outage_start=now - timedelta(minutes=5) if status in _OUTAGE else None,
            last_observation_at=seen,
        )
        view = (
            SnmpView(
                wan_oper_status=2 if status == Status.DOWN else 1,
                wan_admin_status=1,
                in_bps=1_000_000.0 + i,
                out_bps=250_000.0 + i,
                error_rate=0.0,
                reboots=i % 2,
                icmp_filtered=kind == 8,
            )
            if spec.snmp is not None
            else SnmpView()
        )
        fleet[spec.id] = Tracked(
            spec=spec,
            thresholds=Thresholds(),
            state=state,
            outage=Outage(ref=f"C-{i}" if kind < 3 else None),
            degraded=Degraded(ref=f"D-{i}" if kind == 7 else None),
            signals=Signals(view=view),
            last_probe=None if seen is None else LastProbe(0.0123 + i * 1e-7, 0.0, 0.0011),
        )
    return detector


def main(ntus: int, scrapes: int, per_ntu: PerNtu) -> None:
    clock = FakeClock()
    detector = synthetic_detector(ntus, clock)
    metrics = build_metrics(
        detector=detector,
        probes=ProbeStats(),
        clock=clock,
        sessionmaker=cast("object", None),  # type: ignore[arg-type]  # no case figures
        per_ntu=per_ntu,
    )
    costs = []
    page = b""
    for _ in range(scrapes):
        start, wall = cpu(), time.perf_counter()
        page = render(metrics.registry)
        costs.append((cpu() - start, time.perf_counter() - wall))
    samples = sum(1 for line in page.splitlines() if not line.startswith(b"#"))
    best = min(costs)
    print(
        f"{ntus} NTUs, per_ntu={per_ntu}: {len(page) / 1e6:.1f} MB, {samples} samples; "
        f"CPU per scrape {best[0]:.2f} s (best of {scrapes}; wall {best[1]:.2f} s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ntus", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=3)
    parser.add_argument("--per-ntu", choices=get_args(PerNtu), default="all")
    args = parser.parse_args()
    main(args.ntus, args.scrapes, args.per_ntu)
