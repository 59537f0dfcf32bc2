"""Mass outage: N lab NTUs without topology go down in one cycle; how fast are the P1s?

    .venv/bin/python bench/mass_outage.py [--ntus 5000] [--down-after 20s]
                                          [--interval 5s] [--repeat 1] [--no-restore]

Builds a lab fleet (LAB.md: network namespaces, ``--ntus`` NTU addresses spread over
as many lab hosts as needed, at most 4,094 each), starts ``nms run`` on it (SQLite,
the embedded default; compressed ``--down-after`` and ICMP ``--interval``), waits
until every NTU is up, then takes every lab host's link down at once: a fault that
takes the whole address block away in one probe cycle. It waits until every NTU has
its P1 and prints:

- ``detected_at - outage_start`` over the cases (the detector's rule: down_after,
  plus up to one interval for the confirming probe), min / p50 / p99 / max;
- ``created_at - (outage_start + down_after)``: how long after its down_after each
  P1 opened (the issue's goal: every one within 30 s), min / p50 / p99 / max;
- ``created_at - detected_at``: the case opening alone (the detector's batch and the
  case service's transaction), min / p50 / p99 / max;
- the time from the fault to the last case opened, and from the first case to the last;
- that there is exactly one P1 per NTU, each with its notification queued;
- the API meanwhile: ``GET /v1/cases?limit=1`` every 0.2 s from a second thread,
  p50 / p99 / max latency and failures, from the fault until the last case opened;
- then the links come back (``--no-restore``: they do not): ``solved_at - link up``
  over the P1s (min / p50 / p99 / max), the time until the last is solved, and that
  each is solved exactly once (one ``restored`` entry, one ``case_solved``
  notification). Whether the detector kept up meanwhile: ``restored_at - link up``
  (``restored_at`` is the first good probe the detector took; a detector busy with
  the restorations takes the next batches late, and a new outage would wait as long
  for its P1), and the longest time its count of processed ICMP results
  (``nms_detector_observations_total``, scraped every second) stood still (coarse:
  a blocked batch's successor still counts its results in one go).

The load average is printed at start and end: the machine is shared. Needs root
(lab namespaces, raw ICMP); sends traffic only to lab addresses. The lab and the
process are torn down at the end, also on Ctrl-C or an error. Not a test: it prints
figures.
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# The nms process harness of the tests: run from the repository's root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from nms.app.settings import parse_duration
from nms.lab import LabFleet
from nms.lab.plan import MAX_NTUS_PER_HOST
from tests.nms.nms_process import NmsProcess, running, wait_for, write_inventory


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def quantiles(values: list[float]) -> str:
    ordered = sorted(values)
    if not ordered:
        return "-"

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1)]

    return (
        f"min {ordered[0]:6.2f}  p50 {statistics.median(ordered):6.2f}  "
        f"p99 {q(0.99):6.2f}  max {ordered[-1]:6.2f} s"
    )


@dataclass
class ApiProbe:
    """GETs one small page every ``period`` s from a thread; records the latencies."""

    url: str
    key: str
    period: float = 0.2
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="api-probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = client.get("/v1/cases", params={"limit": 1})
                    if response.status_code != 200:
                        self.failures.append(f"{response.status_code}")
                except httpx.HTTPError as exc:
                    self.failures.append(type(exc).__name__)
                self.latencies.append(time.monotonic() - started)
                self._stop.wait(max(0.0, self.period - (time.monotonic() - started)))


def p1_count(database: Path) -> int:
    """P1 incident cases in the database (read-only; SQLite WAL lets us read beside nms)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as db:
        row = db.execute(
            "SELECT count(*) FROM cases WHERE priority = 'P1' AND dedup_key LIKE 'ntu:%:down'"
        ).fetchone()
    return int(row[0])


def solved_count(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as db:
        row = db.execute("SELECT count(*) FROM cases WHERE status = 'solved'").fetchone()
    return int(row[0])


def notified(database: Path) -> int:
    """Cases of the P1s with at least one notification row queued."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as db:
        row = db.execute(
            "SELECT count(DISTINCT n.case_id) FROM notifications n JOIN cases c"
            " ON c.id = n.case_id WHERE c.priority = 'P1'"
        ).fetchone()
    return int(row[0])


def solved_once(database: Path) -> tuple[int, int]:
    """P1s with exactly one ``restored`` entry, and with exactly one ``case_solved``
    notification."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as db:
        entries = db.execute(
            "SELECT count(*) FROM (SELECT e.case_id FROM case_events e JOIN cases c"
            " ON c.id = e.case_id WHERE c.priority = 'P1' AND e.kind = 'restored'"
            " GROUP BY e.case_id HAVING count(*) = 1)"
        ).fetchone()
        notes = db.execute(
            "SELECT count(*) FROM (SELECT n.case_id FROM notifications n JOIN cases c"
            " ON c.id = n.case_id WHERE c.priority = 'P1' AND n.kind = 'case_solved'"
            " GROUP BY n.case_id HAVING count(*) = 1)"
        ).fetchone()
    return int(entries[0]), int(notes[0])


def observations(nms: NmsProcess) -> float:
    """The detector's count of processed ICMP results (``/metrics``)."""
    text = httpx.get(nms.url + "/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith("nms_detector_observations_total "):
            return float(line.split()[-1])
    return 0.0


def longest_stall(samples: list[tuple[float, float]]) -> float:
    """The longest time (s) between two increases of the sampled counter."""
    longest, since, last = 0.0, None, None
    for at, value in samples:
        if since is None or last is None or value > last:
            since, last = at, value
        longest = max(longest, at - since)
    return longest


def all_cases(nms: NmsProcess) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, "priority": "P1"}
        if cursor:
            params["cursor"] = cursor
        page = nms.get("/v1/cases", **params)
        cases.extend(page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            return cases


def fleet_up(nms: NmsProcess) -> int:
    text = httpx.get(nms.url + "/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith('nms_ntus{state="up"}'):
            return int(float(line.split()[-1]))
    return 0


def run_once(fleet: LabFleet, workdir: Path, args: argparse.Namespace) -> None:
    down_after = parse_duration(args.down_after).total_seconds()
    interval = parse_duration(args.interval).total_seconds()
    inventory = workdir / "inventory.yaml"
    ids = write_inventory(inventory, fleet.addresses)
    database = workdir / "nms.db"
    env = {
        "NMS_DETECTOR__DOWN_AFTER": args.down_after,
        "NMS_DETECTOR__STALE_AFTER": f"{int(interval * 6)}s",
        "NMS_DETECTOR__TICK": "1s",
        "NMS_PROBES__ICMP__INTERVAL": args.interval,
        "NMS_PROBES__ICMP__COUNT": "2",
        # A burst must fit in the interval: shorter for the CI test's 1 s.
        "NMS_PROBES__ICMP__SPACING": f"{int(min(0.2, interval / 10) * 1000)}ms",
        "NMS_PROBES__ICMP__TIMEOUT": f"{int(min(1.0, interval * 0.3) * 1000)}ms",
        "NMS_INVENTORY__WATCH_INTERVAL": "5s",
    }
    nms = NmsProcess(workdir=workdir, inventory=inventory, database=database, env=env)
    print(f"load average at start: {load()}", flush=True)
    with running(nms):
        started = time.monotonic()
        wait_for("every NTU up", lambda: fleet_up(nms) == len(ids), timeout=120, interval=1)
        print(f"{len(ids)} NTUs up after {time.monotonic() - started:.1f} s", flush=True)
        key = nms.key
        time.sleep(interval)  # one more clean cycle
        probe = ApiProbe(url=nms.url, key=key)
        probe.start()
        fault = datetime.now(UTC)
        for host in fleet.hosts:
            fleet.link_down(host)
        print(f"fault at {fault.isoformat(timespec='milliseconds')}", flush=True)
        deadline = down_after + 2 * interval + 120
        last_count = -1
        while (count := p1_count(database)) < len(ids):
            if count != last_count:
                elapsed = (datetime.now(UTC) - fault).total_seconds()
                print(f"  {elapsed:6.1f} s after the fault: {count} P1s", flush=True)
                last_count = count
            if (datetime.now(UTC) - fault).total_seconds() > deadline:
                break
            time.sleep(0.25)
        probe.stop()
        time.sleep(2 * interval)  # a duplicate would show up by now
        cases = all_cases(nms)
        queued = notified(database)
        if args.no_restore:
            print(f"load average at end: {load()}", flush=True)
            report(cases, ids, fault, down_after, queued, probe)
            return
        back_at, back = datetime.now(UTC), time.monotonic()
        for host in fleet.hosts:
            fleet.link_up(host)
        samples: list[tuple[float, float]] = []
        while (solved := solved_count(database)) < len(ids):
            samples.append((time.monotonic() - back, observations(nms)))
            if time.monotonic() - back > down_after + 600:
                print(f"  gave up: {solved} of {len(ids)} solved", flush=True)
                break
            time.sleep(1.0)
        restored = time.monotonic() - back
        samples.append((restored, observations(nms)))
        after = all_cases(nms)
        once = solved_once(database)
    print(f"load average at end: {load()}", flush=True)
    report(cases, ids, fault, down_after, queued, probe)
    report_restore(after, back_at, restored, once, longest_stall(samples), interval)


def report_restore(
    cases: list[dict[str, Any]],
    back_at: datetime,
    restored: float,
    once: tuple[int, int],
    stall: float,
    interval: float,
) -> None:
    solved = [c for c in cases if c["solved_at"]]
    print(
        f"links up -> every P1 solved: {restored:.1f} s; solved {len(solved)} of "
        f"{len(cases)}; with exactly one restored entry {once[0]}, one case_solved "
        f"notification {once[1]}"
    )
    if not solved:
        return
    spread = [(ts(c["solved_at"]) - back_at).total_seconds() for c in solved]
    seen = [(ts(c["restored_at"]) - back_at).total_seconds() for c in solved]
    print(f"restored_at - links up (good probe taken): {quantiles(seen)}")
    print(f"solved_at - links up:                      {quantiles(spread)}")
    print(
        f"detector meanwhile: longest stretch without a processed ICMP result "
        f"{stall:.1f} s (probe interval {interval:.0f} s; sampled every 1 s)"
    )


def report(
    cases: list[dict[str, Any]],
    ids: list[str],
    fault: datetime,
    down_after: float,
    queued: int,
    probe: ApiProbe,
) -> None:
    by_ntu: dict[str, int] = {}
    for case in cases:
        by_ntu[case["ntu_id"]] = by_ntu.get(case["ntu_id"], 0) + 1
    missing = [i for i in ids if i not in by_ntu]
    duplicated = [i for i, n in by_ntu.items() if n > 1]
    print(
        f"P1s: {len(cases)} for {len(ids)} NTUs; missing {len(missing)}, "
        f"more than one {len(duplicated)}; with a notification queued: {queued}"
    )
    if not cases:
        return
    detect = [(ts(c["detected_at"]) - ts(c["outage_start"])).total_seconds() for c in cases]
    late = [
        (
            ts(c["created_at"]) - ts(c["outage_start"]) - timedelta(seconds=down_after)
        ).total_seconds()
        for c in cases
    ]
    opening = [(ts(c["created_at"]) - ts(c["detected_at"])).total_seconds() for c in cases]
    created = sorted(ts(c["created_at"]) for c in cases)
    print(f"detected_at - outage_start:                 {quantiles(detect)}")
    print(f"created_at - (outage_start + down_after):   {quantiles(late)}")
    print(f"created_at - detected_at (case opening):    {quantiles(opening)}")
    print(
        f"fault -> last case opened: {(created[-1] - fault).total_seconds():.1f} s "
        f"(down_after {down_after:.0f} s); first -> last case: "
        f"{(created[-1] - created[0]).total_seconds():.1f} s"
    )
    print(
        f"API GET /v1/cases?limit=1 meanwhile: {len(probe.latencies)} requests, "
        f"{len(probe.failures)} failed; latency {quantiles(probe.latencies)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ntus", type=int, default=5000)
    parser.add_argument("--down-after", default="20s")
    parser.add_argument("--interval", default="5s")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-restore", action="store_true", help="stop after the opens")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (lab namespaces and raw ICMP)")
    hosts = max(1, math.ceil(args.ntus / MAX_NTUS_PER_HOST))
    per_host = math.ceil(args.ntus / hosts)
    print(f"{hosts} lab hosts x {per_host} NTUs", flush=True)
    with LabFleet(hosts=hosts, ntus_per_host=per_host) as fleet:
        for run in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="nms-mass-") as tmp:
                print(f"--- run {run + 1} of {args.repeat}", flush=True)
                run_once(fleet, Path(tmp), args)


if __name__ == "__main__":
    main()
