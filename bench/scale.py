"""``nms run`` with 10,000 and 100,000 NTUs at production intervals: CPU, memory, start-up.

    python bench/scale.py [--ntus 10000 100000] [--warmup 120] [--window 600] [--sample 30]

For each size: writes an inventory of loopback NTUs (127.1.0.0 up, an aggregation
node per 500 at 127.200.0.0 up; every ``--snmp-every``-th NTU with SNMP on one
net-snmp ``snmpd`` that listens on a high port of the wildcard address and answers
from each loopback address asked: the NTUs' ``snmp.port`` points at it), starts
``nms run`` on a fresh SQLite file at the production intervals (ICMP 5 echoes every
30 s, SNMP every 60 s), and prints:

* start-up: from the process start to "nms running" (inventory read, database
  synced, detector state loaded), then to every NTU ``up``;
* after ``--warmup`` seconds more: % of one core from ``/proc/<pid>/stat`` over
  ``--window`` seconds, and RSS every ``--sample`` seconds (the curve, to show it
  flat), with the machine's load average (the machine is shared);
* a reload of the inventory file that changes one NTU (SIGHUP to "inventory reloaded");
* ``/metrics`` per ``metrics.per_ntu`` mode (``?per_ntu=``): bytes, samples and
  the process's CPU per scrape (its background rate over the scrape subtracted);
* a clean stop (writes what ``detector.refresh`` held back) and a restart that
  resumes the saved states, to "nms running".

Traffic goes to 127.0.0.0/8 only. Every process is started by the bench and stopped
by its pid. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

FIRST_NTU = ipaddress.IPv4Address("127.1.0.0")
FIRST_NODE = ipaddress.IPv4Address("127.200.0.0")
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
SNMP_PORT = 11161
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class BenchError(Exception):
    """Something the bench needs did not come up; the message says what."""


# -- the machine and a process ------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * PAGE / 2**20


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- inventory ----------------------------------------------------------------------------


def ntu_address(i: int) -> ipaddress.IPv4Address:
    address = FIRST_NTU + i + 1
    if address not in LOOPBACK:
        raise BenchError(f"NTU {i} does not fit in 127.0.0.0/8")
    return address


def write_inventory(path: Path, ntus: int, snmp_every: int, *, moved: str | None = None) -> None:
    """Written to a temporary name and renamed: a reload never reads half a file.

    ``moved``: the new site of the middle NTU (a reload that changes one NTU; not the
    first, whose ``snmp`` block the others alias).
    """
    lines = ["customers:"]
    lines += [f"  - {{id: cust{c}, name: Customer {c}}}" for c in range((ntus + 19) // 20)]
    lines.append("nodes:")
    for n in range((ntus + 499) // 500):
        lines.append(f'  - {{id: agg-{n}, kind: aggregation, address: "{FIRST_NODE + n + 1}"}}')
    lines.append("ntus:")
    anchored = False
    for i in range(ntus):
        site = moved if moved is not None and i == ntus // 2 else f"Site {i}"
        entry = (
            f"  - id: ntu-{i:06d}\n    customer: cust{i // 20}\n    service_id: SVC-{i}\n"
            f'    site: {site}\n    address: "{ntu_address(i)}"\n    parent: agg-{i // 500}'
        )
        if snmp_every and i % snmp_every == 0:
            if not anchored:
                entry += (
                    f"\n    snmp: &snmp {{community: public, port: {SNMP_PORT}, wan: {{index: 1}}}}"
                )
                anchored = True
            else:
                entry += "\n    snmp: *snmp"
        lines.append(entry)
    temporary = path.with_suffix(".tmp")
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    temporary.replace(path)


# -- processes ----------------------------------------------------------------------------


class Proc:
    """A subprocess of the bench in its own session; stopped by its pid only."""

    def __init__(self, name: str, argv: list[str], *, log: Path, env: dict[str, str]) -> None:
        self.name, self.argv, self.log, self.env = name, argv, log, env
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self, cwd: Path) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise BenchError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")

    def stop(self, timeout: float = 120.0) -> float:
        """SIGTERM, then SIGKILL after ``timeout``; returns the seconds it took."""
        t0 = time.monotonic()
        if self.popen is None or self.popen.poll() is not None:
            return 0.0
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        return time.monotonic() - t0

    def log_count(self, pattern: str) -> int:
        if not self.log.exists():
            return 0
        return len(re.findall(pattern, self.log.read_text(errors="replace")))

    def wait_log(self, pattern: str, count: int, timeout: float) -> float:
        """Seconds until the log holds ``count`` lines matching ``pattern``."""
        t0 = time.monotonic()
        while self.log_count(pattern) < count:
            self.check()
            if time.monotonic() - t0 > timeout:
                raise BenchError(f"{self.name}: no {pattern!r} within {timeout:.0f} s")
            time.sleep(0.05)
        return time.monotonic() - t0


def start_snmpd(workdir: Path) -> Proc:
    snmpd = shutil.which("snmpd") or "/usr/sbin/snmpd"
    conf = workdir / "snmpd.conf"
    conf.write_text("rocommunity public 127.0.0.0/8\nsysName bench\n")
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(workdir), "MIBS": ""}
    log = workdir / "snmpd.log"
    # The wildcard address: an argv cannot list 30,000 addresses; snmpd answers from
    # the address asked, so to the poller these are distinct agents. Only loopback
    # addresses are asked (and only 127.0.0.0/8 may read the community).
    proc = Proc(
        "snmpd",
        [snmpd, "-f", "-C", "-c", str(conf), "-Lf", str(log), f"udp:0.0.0.0:{SNMP_PORT}"],
        log=workdir / "snmpd.out",
        env=env,
    )
    proc.start(workdir)
    deadline = time.monotonic() + 30
    while not (log.exists() and "NET-SNMP version" in log.read_text(errors="replace")):
        proc.check()
        if time.monotonic() > deadline:
            proc.stop()
            raise BenchError("snmpd not ready")
        time.sleep(0.05)
    return proc


# -- /metrics -----------------------------------------------------------------------------


def scrape(url: str, mode: str = "none", timeout: float = 120.0) -> bytes:
    response = httpx.get(f"{url}/metrics", params={"per_ntu": mode}, timeout=timeout)
    response.raise_for_status()
    return response.content


def gauge(page: bytes, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    prefix = f"{name}{{{wanted}}} ".encode() if labels else f"{name} ".encode()
    total = 0.0
    for line in page.splitlines():
        if line.startswith(prefix):
            total += float(line.split()[-1])
    return total


_COUNTERS = re.compile(
    rb"^(nms_probe_cycles_total|nms_probe_cycle_overruns_total|nms_probe_errors_total"
    rb"|nms_detector_observations_total|nms_detector_snmp_observations_total"
    rb"|nms_snmp_client_total)(\{[^}]*\})? (\S+)$"
)


def probe_counters(page: bytes) -> dict[str, float]:
    """Probe cycles, overruns, errors, observations and SNMP client events, by series."""
    found = {}
    for line in page.splitlines():
        match = _COUNTERS.match(line)
        if match:
            name = (match.group(1) + (match.group(2) or b"")).decode()
            found[name.removeprefix("nms_")] = float(match.group(3))
    return found


# -- one size -----------------------------------------------------------------------------


@dataclass
class Figures:
    ntus: int
    startup: float = 0.0
    startup_cpu: float = 0.0
    all_up: float | None = None
    window: float = 0.0
    core_share: float = 0.0
    rss: list[tuple[float, float]] = field(default_factory=list)
    shares: list[float] = field(default_factory=list)
    load_before: str = ""
    load_after: str = ""
    reload: float | None = None
    reload_cpu: float | None = None
    scrapes: dict[str, tuple[int, int, float]] = field(default_factory=dict)
    stop: float = 0.0
    restart: float | None = None
    observed: float = 0.0
    production_share: float = 0.0


def run_size(args: argparse.Namespace, ntus: int, workdir: Path) -> Figures:
    fig = Figures(ntus)
    inventory = workdir / "inventory.yaml"
    write_inventory(inventory, ntus, args.snmp_every)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMS_")} | {
        "NMS_PROBES__ICMP__INTERVAL": "30s",
        "NMS_PROBES__ICMP__COUNT": "5",
        "NMS_PROBES__SNMP__INTERVAL": "60s",
        "NMS_PROBES__SNMP__ENABLED": "true" if args.snmp_every else "false",
        "NMS_DETECTOR__REFRESH": args.refresh,
        # Reloads by SIGHUP only, so the bench times exactly one.
        "NMS_INVENTORY__WATCH_INTERVAL": "24h",
        "NMS_LOG__LEVEL": "info",
    }
    argv = [
        sys.executable,
        "-m",
        "nms.app.cli",
        "run",
        "--inventory",
        str(inventory),
        "--listen",
        f"127.0.0.1:{port}",
        "--database",
        f"sqlite+aiosqlite:///{workdir / 'nms.db'}",
    ]
    nms = Proc("nms run", argv, log=workdir / "nms.log", env=env)
    snmpd = start_snmpd(workdir) if args.snmp_every else None
    try:
        print(f"\n== {ntus:,} NTUs (load average {load_average()}) ==", flush=True)
        nms.start(workdir)
        fig.startup = nms.wait_log(r"nms running", 1, timeout=args.startup_timeout)
        fig.startup_cpu = cpu_seconds(nms.pid)
        print(
            f"  start-up to 'nms running': {fig.startup:.1f} s ({fig.startup_cpu:.1f} s CPU)",
            flush=True,
        )
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.up_timeout:
            nms.check()
            up = gauge(scrape(url), "nms_ntus", state="up")
            if up >= ntus:
                fig.all_up = fig.startup + time.monotonic() - t0
                break
            time.sleep(5)
        print(
            f"  every NTU up after {fig.all_up:.1f} s"
            if fig.all_up is not None
            else f"  WARNING: not every NTU up after {args.up_timeout:.0f} s; measuring anyway",
            flush=True,
        )
        sleep_checking(nms, args.warmup)
        before = probe_counters(scrape(url))
        measure_window(args, nms, fig)
        page = scrape(url)
        after = probe_counters(page)
        work_normalised(args, fig, before, after, page)
        print(
            "  in the window: "
            + ", ".join(
                f"{name} +{after[name] - before.get(name, 0.0):,.0f}" for name in sorted(after)
            ),
            flush=True,
        )
        measure_reload(args, nms, inventory, fig)
        measure_scrapes(nms, url, fig)
        fig.stop = nms.stop()
        print(f"  clean stop: {fig.stop:.1f} s", flush=True)
        if args.restart:
            nms.start(workdir)
            fig.restart = nms.wait_log(r"nms running", 2, timeout=args.startup_timeout)
            print(
                f"  restart (resumes saved states) to 'nms running': {fig.restart:.1f} s "
                f"({cpu_seconds(nms.pid):.1f} s CPU)"
            )
    finally:
        nms.stop()
        if snmpd is not None:
            snmpd.stop()
    return fig


def sleep_checking(proc: Proc, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        proc.check()
        time.sleep(min(1.0, left))


def measure_window(args: argparse.Namespace, nms: Proc, fig: Figures) -> None:
    fig.load_before = load_average()
    print(f"  window of {args.window:.0f} s (load average {fig.load_before}):", flush=True)
    t0 = last_t = time.monotonic()
    c0 = last_c = cpu_seconds(nms.pid)
    fig.rss.append((0.0, rss_mib(nms.pid)))
    print(f"    {0:6.0f} s  RSS {fig.rss[-1][1]:7.1f} MiB", flush=True)
    while (now := time.monotonic()) - t0 < args.window:
        sleep_checking(nms, min(args.sample, args.window - (now - t0)))
        t, c = time.monotonic(), cpu_seconds(nms.pid)
        share = (c - last_c) / (t - last_t)
        fig.shares.append(share)
        fig.rss.append((t - t0, rss_mib(nms.pid)))
        print(
            f"    {t - t0:6.0f} s  RSS {fig.rss[-1][1]:7.1f} MiB  "
            f"{share * 100:5.1f} % of a core (load {load_average()})",
            flush=True,
        )
        last_t, last_c = t, c
    fig.window = last_t - t0
    fig.core_share = (last_c - c0) / fig.window
    fig.load_after = load_average()


def work_normalised(
    args: argparse.Namespace,
    fig: Figures,
    before: dict[str, float],
    after: dict[str, float],
    page: bytes,
) -> None:
    """CPU per observation in the window, and what the production rate would cost: a
    process starved by a busy machine falls behind (fewer observations), so its
    share of a core alone understates the cost."""

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    icmp = delta("detector_observations_total")
    snmp = delta("detector_snmp_observations_total")
    nodes = (fig.ntus + 499) // 500
    wanted = (fig.ntus + nodes) / 30 * fig.window + (
        (fig.ntus + args.snmp_every - 1) // args.snmp_every / 60 * fig.window
        if args.snmp_every
        else 0.0
    )
    fig.observed = (icmp + snmp) / wanted if wanted else 0.0
    cpu = fig.core_share * fig.window
    per_obs = cpu / (icmp + snmp) if icmp + snmp else float("nan")
    fig.production_share = per_obs * wanted / fig.window
    unknown = gauge(page, "nms_ntus", state="unknown")
    print(
        f"  observations: {icmp:,.0f} ICMP + {snmp:,.0f} SNMP = {fig.observed * 100:.0f} % of the "
        f"production rate; {per_obs * 1e6:.0f} us CPU each -> {fig.production_share * 100:.1f} % "
        f"of a core at the production rate; {unknown:,.0f} NTUs unknown at the end",
        flush=True,
    )


def measure_reload(args: argparse.Namespace, nms: Proc, inventory: Path, fig: Figures) -> None:
    """One NTU's site changes; SIGHUP; until the process logs the reload done."""
    write_inventory(inventory, fig.ntus, args.snmp_every, moved="Site moved")
    done = nms.log_count(r"inventory reloaded from")
    c0 = cpu_seconds(nms.pid)
    assert nms.popen is not None
    nms.popen.send_signal(signal.SIGHUP)
    fig.reload = nms.wait_log(r"inventory reloaded from", done + 1, timeout=300)
    fig.reload_cpu = cpu_seconds(nms.pid) - c0
    print(
        f"  reload changing one NTU: {fig.reload:.2f} s to applied "
        f"({fig.reload_cpu:.2f} s CPU, probes included)",
        flush=True,
    )


def measure_scrapes(nms: Proc, url: str, fig: Figures, repeats: int = 3) -> None:
    """The process's whole CPU over each scrape (the probes' share of those seconds
    included: an upper bound), best of ``repeats``."""
    for mode in ("all", "not_up", "none"):
        costs = []
        page = b""
        for _ in range(repeats):
            c = cpu_seconds(nms.pid)
            page = scrape(url, mode)
            costs.append(cpu_seconds(nms.pid) - c)
        samples = sum(1 for line in page.splitlines() if line and not line.startswith(b"#"))
        fig.scrapes[mode] = (len(page), samples, min(costs))
        print(
            f"  /metrics?per_ntu={mode}: {len(page) / 1e6:.2f} MB, {samples:,} samples, "
            f"{min(costs):.2f} s CPU per scrape (best of {repeats}, the process's whole CPU)",
            flush=True,
        )


def report(figures: list[Figures], args: argparse.Namespace) -> None:
    print(
        f"\nSummary (ICMP 5 echoes / 30 s, SNMP / 60 s on every {args.snmp_every}th NTU, "
        f"detector.refresh {args.refresh}; one window of {args.window:.0f} s after "
        f"{args.warmup:.0f} s warm-up)"
    )
    print(
        "| NTUs | start-up | all up | % of a core (observed share of the production rate; "
        "at the production rate) | RSS first -> last (max) | RSS slope "
        "| reload 1 NTU | scrape all / not_up / none (CPU s, MB) | stop | restart | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for f in figures:
        first, last = f.rss[0][1], f.rss[-1][1]
        peak = max(r for _, r in f.rss)
        slope = (last - first) / (f.rss[-1][0] / 600) if f.rss[-1][0] else 0.0
        scrapes = " / ".join(
            f"{f.scrapes[m][2]:.2f} ({f.scrapes[m][0] / 1e6:.1f})"
            for m in ("all", "not_up", "none")
        )
        print(
            f"| {f.ntus:,} | {f.startup:.1f} s ({f.startup_cpu:.0f} s CPU) | "
            f"{'-' if f.all_up is None else f'{f.all_up:.0f} s'} | "
            f"{f.core_share * 100:.1f} % ({f.observed * 100:.0f} %; "
            f"{f.production_share * 100:.1f} %) | {first:.0f} -> {last:.0f} ({peak:.0f}) MiB | "
            f"{slope:+.1f} MiB/10 min | {f.reload:.2f} s | {scrapes} | {f.stop:.1f} s | "
            f"{'-' if f.restart is None else f'{f.restart:.1f} s'} | "
            f"{f.load_before} -> {f.load_after} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ntus", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--warmup", type=float, default=120.0, help="s after every NTU is up")
    parser.add_argument("--window", type=float, default=600.0, help="s of measurement")
    parser.add_argument("--sample", type=float, default=30.0, help="s between RSS samples")
    parser.add_argument(
        "--snmp-every", type=int, default=3, help="every Nth NTU has SNMP (0: none)"
    )
    parser.add_argument("--refresh", default="1m", help="detector.refresh")
    parser.add_argument("--snmp-port", type=int, default=11161, help="of the bench's snmpd")
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--up-timeout", type=float, default=300.0)
    parser.add_argument("--no-restart", dest="restart", action="store_false")
    parser.add_argument("--keep", action="store_true", help="keep the work directories")
    args = parser.parse_args()
    global SNMP_PORT  # one snmpd per bench run, named in the inventory
    SNMP_PORT = args.snmp_port
    figures = []
    for ntus in args.ntus:
        workdir = Path(tempfile.mkdtemp(prefix=f"nms-scale-{ntus}-"))
        try:
            figures.append(run_size(args, ntus, workdir))
        finally:
            if args.keep:
                print(f"  kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    report(figures, args)


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        raise SystemExit(f"bench failed: {exc}") from None
