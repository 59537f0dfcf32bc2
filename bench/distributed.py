"""Distributed mode end to end: probe shards -> Mosquitto -> detector -> PostgreSQL.

    .venv/bin/python bench/distributed.py [--ntus 10000] [--shards 2] [--interval 5s]
                                          [--seconds 60] [--count 2] [--keep]

Starts a private Mosquitto on a free 127.0.0.1 port (the deploy/mosquitto settings:
persistence, autosave 30 s, large queues, no per-message logging), a fresh PostgreSQL
database ``nms_bench_<pid>`` on the machine's server, ONE ``nms detector`` and
``--shards`` ``nms probe --shard i/N`` subprocesses over an inventory of N NTUs on
loopback addresses 127.1.x.y (every 127/8 address answers ping: all NTUs are up).
It waits until the detector reports every NTU up and has worked off what queued up
meanwhile (its observation rate back at N / interval), then measures over ``--seconds``:

- observations per second into the detector (``nms_detector_observations_total``);
- CPU of every process (``/proc/<pid>/stat`` utime + stime): the detector, each probe,
  mosquitto and the PostgreSQL backends of the bench database, as % of one core and
  CPU ms per 1000 observations;
- the delay from a probe publishing a batch to the detector having saved it: median and
  p99 from the ``nms_bus_observation_delay_seconds`` histogram delta over the window,
  interpolated within buckets as Prometheus' ``histogram_quantile`` does;
- the probes' cycle duration against the interval, overruns, bus buffered / dropped;
- how far one probe worker goes (extrapolated from its CPU per target).

The detector's /metrics carries per-NTU series: at 10k NTUs one scrape costs it seconds
of CPU, during which its event loop does nothing else. The bench scrapes it sparingly
(the window's start and end, not inside it) and prints what one scrape costs.

Needs root (raw ICMP). Sends traffic to 127.0.0.0/8 only. Everything it starts (the
processes, the broker, the database, the work directory) is removed at the end, also
on Ctrl-C or an error. Not a test: it prints figures, ending with a table for a README.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import math
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from nms.app.settings import parse_duration
from nms.noc.cluster_metrics import DELAY_BUCKETS as DELAY_BOUNDS

PG_ADMIN_URL = os.environ.get(
    "NMS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
FIRST_ADDRESS = ipaddress.IPv4Address("127.1.0.1")
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
CLK_TCK = os.sysconf("SC_CLK_TCK")
DELAY = "nms_bus_observation_delay_seconds"
EXTRAPOLATE_INTERVAL = 30.0  # s: the production ICMP interval
EXTRAPOLATE_SHARE = 0.5  # of one core

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class BenchError(Exception):
    """Something the bench needs did not come up; the message says what."""


# -- helpers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    what: str, check: Callable[[], bool], *, timeout: float, every: float = 0.5
) -> float:
    """Poll ``check`` until true; returns the seconds it took, raises BenchError on timeout."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return time.monotonic() - start


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), None if it is gone or unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # field 3 (state) is fields[0]
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs from /proc/stat (idle and iowait are not busy)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])  # guest time is already in user
    return total - fields[3] - fields[4], total


def scrape(url: str) -> Samples:
    response = httpx.get(url + "/metrics", timeout=30)
    response.raise_for_status()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def histogram_delta(before: Samples, after: Samples, name: str) -> list[tuple[float, float]]:
    """Cumulative (upper bound, count) buckets of ``after - before``, sorted, +Inf last."""
    buckets = []
    for (sample, labels), count in after.items():
        if sample == name + "_bucket":
            le = dict(labels)["le"]
            buckets.append((float(le), count - before.get((sample, labels), 0.0)))
    return sorted(buckets)


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus' ``histogram_quantile``: linear interpolation within the bucket."""
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]) or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    b = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    if b == len(buckets) - 1:
        return buckets[-2][0]  # in the +Inf bucket: the highest finite bound
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, end, count = 0.0, buckets[b][0], buckets[b][1]
    if b > 0:
        start = buckets[b - 1][0]
        count -= buckets[b - 1][1]
        rank -= buckets[b - 1][1]
    return start + (end - start) * (rank / count)


def loopback_addresses(n: int) -> list[ipaddress.IPv4Address]:
    addresses = [FIRST_ADDRESS + i for i in range(n)]
    if addresses and addresses[-1] not in LOOPBACK:  # the lab safety rule: 127/8 only
        raise BenchError(f"{n} NTUs do not fit in 127.0.0.0/8 from {FIRST_ADDRESS}")
    return addresses


def write_inventory(path: Path, n: int) -> None:
    lines = ["customers:", "  - {id: bench, name: Bench Customer}", "ntus:"]
    for i, address in enumerate(loopback_addresses(n)):
        ntu = f"id: ntu-{i:05d}, customer: bench, service_id: SVC-{i:05d}"
        lines.append(f'  - {{{ntu}, address: "{address}"}}')
    path.write_text("\n".join(lines) + "\n")


def check_loopback_url(url: str) -> None:
    host = make_url(url).host or "127.0.0.1"
    if host != "localhost" and ipaddress.ip_address(host) not in LOOPBACK:
        raise BenchError(f"{url}: the bench talks to 127.0.0.0/8 only")


# -- PostgreSQL ---------------------------------------------------------------------------


def sql(statement: str, **params: Any) -> list[tuple[Any, ...]]:
    """One statement on the admin database, outside a transaction (CREATE/DROP DATABASE)."""

    async def run() -> list[tuple[Any, ...]]:
        engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                result = await conn.execute(text(statement), params)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def backend_pids(database: str) -> list[int]:
    rows = sql("SELECT pid FROM pg_stat_activity WHERE datname = :db", db=database)
    return [int(row[0]) for row in rows]


# -- processes ----------------------------------------------------------------------------


class Proc:
    """A subprocess of the bench, in its own session (Ctrl-C reaches only the bench)."""

    def __init__(self, name: str, argv: list[str], *, log: Path, port: int | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.port = port
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self, env: dict[str, str], cwd: Path) -> None:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise BenchError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; only this process, by its pid."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"  {self.name} did not stop within {timeout:.0f} s: killed", file=sys.stderr)
            self.popen.kill()
            self.popen.wait()

    def complaints(self) -> list[str]:
        """Warning, error and traceback lines of the log (timestamps cut)."""
        if not self.log.exists():
            return []
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if re.search(r"\b(WARNING|ERROR|CRITICAL|Traceback)\b|\b(warning|error):", line):
                found.append(line.strip())
        return found


def mosquitto_config(directory: Path, port: int) -> Path:
    """deploy/mosquitto/mosquitto.conf on 127.0.0.1, without per-message logging."""
    config = directory / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence true\n"
        f"persistence_location {directory}/\n"
        "autosave_interval 30\n"
        "max_queued_messages 100000\n"
        "max_queued_bytes 536870912\n"
        f"log_dest file {directory}/mosquitto.log\n"
        "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        f"user {pwd.getpwuid(os.getuid()).pw_name}\n"  # else, as root, it drops to 'mosquitto'
    )
    return config


# -- the measurement ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    cpu: dict[str, float | None]
    pg_cpu: dict[int, float | None]
    busy: tuple[float, float]
    detector: Samples
    probes: list[Samples]


@dataclass(frozen=True, slots=True)
class Usage:
    name: str
    cpu: float
    rss: float | None
    observations: float  # the observations this process handled in the window

    def share(self, wall: float) -> float:
        return self.cpu / wall

    @property
    def ms_per_1000(self) -> float:
        return self.cpu * 1e6 / self.observations if self.observations else math.nan


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.ntus: int = args.ntus
        self.shards: int = args.shards
        self.interval: float = parse_duration(args.interval).total_seconds()
        self.interval_text: str = args.interval
        self.count: int = args.count
        self.seconds: float = args.seconds
        self.warmup_timeout: float = args.warmup_timeout
        self.settle_timeout: float = args.settle_timeout
        self.workdir = workdir
        self.database = f"nms_bench_{os.getpid()}"
        self.database_created = False
        self.broker_port = free_port()
        self.broker = Proc(
            "mosquitto",
            [MOSQUITTO, "-c", str(mosquitto_config(workdir, self.broker_port))],
            log=workdir / "mosquitto.stderr",
        )
        inventory = ["--inventory", str(workdir / "inventory.yaml")]
        nms = [sys.executable, "-m", "nms.app.cli"]

        def listen(port: int) -> list[str]:
            return ["--listen", f"127.0.0.1:{port}"]

        port = free_port()
        self.detector = Proc(
            "detector",
            [*nms, "detector", *inventory, *listen(port)],
            log=workdir / "detector.log",
            port=port,
        )
        self.probes = []
        for i in range(1, self.shards + 1):
            port = free_port()
            self.probes.append(
                Proc(
                    f"probe {i}/{self.shards}",
                    [*nms, "probe", "--shard", f"{i}/{self.shards}", *inventory, *listen(port)],
                    log=workdir / f"probe-{i}.log",
                    port=port,
                )
            )

    @property
    def procs(self) -> list[Proc]:
        return [self.detector, *self.probes, self.broker]

    def env(self) -> dict[str, str]:
        url = make_url(PG_ADMIN_URL).set(database=self.database)
        return {k: v for k, v in os.environ.items() if not k.startswith("NMS_")} | {
            "NMS_BUS__URL": f"mqtt://127.0.0.1:{self.broker_port}",
            "NMS_DATABASE__URL": url.render_as_string(hide_password=False),
            "NMS_PROBES__SNMP__ENABLED": "false",
            "NMS_PROBES__ICMP__INTERVAL": self.interval_text,
            "NMS_PROBES__ICMP__COUNT": str(self.count),
            "NMS_LOG__LEVEL": "warning",
        }

    def check_alive(self) -> None:
        for proc in self.procs:
            proc.check()

    # -- set up -----------------------------------------------------------------------

    def start(self) -> None:
        t0 = time.monotonic()
        write_inventory(self.workdir / "inventory.yaml", self.ntus)
        sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        sql(f'CREATE DATABASE "{self.database}"')
        self.database_created = True
        self.broker.start({**os.environ}, self.workdir)
        wait_until("mosquitto to accept connections", self._broker_up, timeout=10, every=0.05)
        env = self.env()
        self.detector.start(env, self.workdir)
        took = wait_until(
            "the detector to lead, connected to the broker", self._leading, timeout=180
        )
        print(f"  detector leading and subscribed after {took:.1f} s (migrate, inventory, load)")
        for probe in self.probes:
            probe.start(env, self.workdir)
        for probe in self.probes:
            wait_until(f"{probe.name} connected to the broker", self._connected(probe), timeout=60)
        print(f"  {self.shards} probe(s) connected; set-up {time.monotonic() - t0:.1f} s")

    def _broker_up(self) -> bool:
        self.broker.check()
        try:
            with socket.create_connection(("127.0.0.1", self.broker_port), timeout=0.5):
                return True
        except OSError:
            return False

    def _leading(self) -> bool:
        """Leader (/healthz) and connected (the broker's log): the detector's /metrics
        costs it seconds at 10k NTUs, so it is not polled for this."""
        self.check_alive()
        try:
            response = httpx.get(self.detector.url + "/healthz", timeout=5)
        except httpx.HTTPError:
            return False
        if response.status_code != 200 or not response.json().get("leader"):
            return False
        log = self.workdir / "mosquitto.log"
        return log.exists() and " as nms-detector " in log.read_text(errors="replace")

    def _connected(self, probe: Proc) -> Callable[[], bool]:
        def check() -> bool:
            self.check_alive()
            try:
                return value(scrape(probe.url), "nms_bus_connected", role="probe") == 1
            except httpx.HTTPError:
                return False

        return check

    def warm_up(self) -> None:
        """Until the detector reports every NTU up. A scrape of its /metrics costs it
        seconds of CPU at 10k NTUs (per-NTU series): poll no faster than it answers."""
        start = time.monotonic()
        while True:
            self.check_alive()
            asked = time.monotonic()
            up = value(scrape(self.detector.url), "nms_ntus", state="up")
            took = time.monotonic() - asked
            if up >= self.ntus:
                print(f"  all {self.ntus:,} NTUs up after {time.monotonic() - start:.1f} s")
                return
            if time.monotonic() - start > self.warmup_timeout:
                print(
                    f"  WARNING: only {up:,.0f} of {self.ntus:,} NTUs up after"
                    f" {self.warmup_timeout:.0f} s; measuring anyway (the detector is behind?)"
                )
                return
            time.sleep(max(2.0, 3 * took))

    def sleep(self, seconds: float) -> None:
        """Sleep, checking every second that every process still runs."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.check_alive()
            time.sleep(min(1.0, left))

    def settle(self, pg: list[int]) -> Snapshot:
        """Until the detector has worked off what queued for it during start and warm-up
        (in the broker and in its own receive queue): between two scrapes a whole number
        of intervals apart (the same phase of the probe cycles), observations at no more
        than N / interval + 5 %. Returns the last snapshot: the window's start (one
        scrape fewer; each stalls the detector)."""
        expected = self.ntus / self.interval
        step = self.interval * math.ceil(10.0 / self.interval)
        prev = self.snapshot(cpu_first=False, pg=pg)
        start = prev.at
        while True:
            self.sleep(step)
            cur = self.snapshot(cpu_first=False, pg=pg)
            obs = "nms_detector_observations_total"
            rate = (value(cur.detector, obs) - value(prev.detector, obs)) / (cur.at - prev.at)
            median = histogram_quantile(0.5, histogram_delta(prev.detector, cur.detector, DELAY))
            print(
                f"  settling: {rate:,.0f} observations/s ({rate / expected:.0%} of N/interval),"
                f" median delay {median * 1000:,.0f} ms"
            )
            if 0.9 <= rate / expected <= 1.05:
                return cur
            if cur.at - start > self.settle_timeout:
                print(
                    f"  WARNING: the detector did not settle within {self.settle_timeout:.0f} s"
                    " (still working off a backlog, or not keeping up); measuring anyway"
                )
                return cur
            prev = cur

    # -- measure ----------------------------------------------------------------------

    def snapshot(self, *, cpu_first: bool, pg: list[int]) -> Snapshot:
        """CPU read before the scrapes at the end (after them at the start): the bench's
        own scrapes of a 10k-NTU /metrics stay out of the window."""

        def cpu() -> tuple[dict[str, float | None], dict[int, float | None], tuple[float, float]]:
            return (
                {p.name: cpu_seconds(p.pid) for p in self.procs},
                {pid: cpu_seconds(pid) for pid in pg},
                machine_busy(),
            )

        if cpu_first:
            at, (procs, pg_cpu, busy) = time.monotonic(), cpu()
            detector, probes = scrape(self.detector.url), [scrape(p.url) for p in self.probes]
        else:
            detector, probes = scrape(self.detector.url), [scrape(p.url) for p in self.probes]
            at, (procs, pg_cpu, busy) = time.monotonic(), cpu()
        return Snapshot(at, procs, pg_cpu, busy, detector, probes)

    def measure(self) -> None:
        pg_before = backend_pids(self.database)
        a = self.settle(pg_before)
        self.sleep(a.at + self.seconds - time.monotonic())
        pg_after = sorted(set(pg_before) | set(backend_pids(self.database)))
        b = self.snapshot(cpu_first=True, pg=pg_after)
        scrape_wall = time.monotonic()
        scrape_cpu = cpu_seconds(self.detector.pid)
        samples = scrape(self.detector.url)
        scrape_wall = time.monotonic() - scrape_wall
        after = cpu_seconds(self.detector.pid)
        scrape_cost = (
            after - scrape_cpu if after is not None and scrape_cpu is not None else math.nan
        )
        Report(self, a, b, pg_before).show(
            scrape=(len(samples), scrape_wall, scrape_cost),
        )

    # -- tear down --------------------------------------------------------------------

    def close(self) -> None:
        for proc in [*self.probes, self.detector, self.broker]:
            try:
                proc.stop()
            except Exception as exc:  # keep cleaning up the rest
                print(f"  could not stop {proc.name}: {exc}", file=sys.stderr)
        if self.database_created:
            try:
                sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            except Exception as exc:
                print(f"  could not drop database {self.database}: {exc}", file=sys.stderr)

    def complaints(self) -> None:
        print("\nWarnings and errors in the process logs:")
        quiet = True
        for proc in self.procs:
            lines = proc.complaints()
            broker_log = self.workdir / "mosquitto.log"
            if proc is self.broker and broker_log.exists():
                text_ = broker_log.read_text(errors="replace").splitlines()
                lines += [ln for ln in text_ if re.search(r"(?i)\b(error|warning)\b", ln)]
            if lines:
                quiet = False
                # one line per message, timestamps aside: the first, with its time
                distinct: dict[str, str] = {}
                for line in lines:
                    distinct.setdefault(re.sub(r"^\S+Z\s+|^\d+:\s+", "", line), line)
                print(f"  {proc.name}: {len(lines)} line(s), e.g.")
                for line in list(distinct.values())[:5]:
                    print(f"    {line[:200]}")
        if quiet:
            print("  none")


def pct(share: float) -> str:
    return f"{share:.0%}" if share >= 0.1 else f"{share:.1%}"


def per_1000(usage: Usage) -> str:
    return f"{usage.ms_per_1000:.0f}" if usage.ms_per_1000 >= 10 else f"{usage.ms_per_1000:.1f}"


@dataclass(frozen=True, slots=True)
class ProbeFigures:
    name: str
    targets: float
    duration: float
    cycles: float
    overruns: float
    overruns_total: float
    batches: float
    buffered: float
    dropped: float


class Report:
    """The figures of one window, between snapshots ``a`` and ``b``."""

    def __init__(self, bench: Bench, a: Snapshot, b: Snapshot, pg_before: list[int]) -> None:
        self.bench = bench
        self.a = a
        self.b = b
        self.wall = b.at - a.at
        self.observations = self.delta(a.detector, b.detector, "nms_detector_observations_total")
        self.pg_before = set(pg_before)

    @staticmethod
    def delta(a: Samples, b: Samples, name: str, **labels: str) -> float:
        return value(b, name, **labels) - value(a, name, **labels)

    def cpu(self, name: str) -> float:
        before, after = self.a.cpu.get(name), self.b.cpu.get(name)
        if before is None or after is None:
            raise BenchError(f"{name}: no CPU figures (process gone?)")
        return after - before

    def usages(self) -> list[Usage]:
        """Detector, probes..., mosquitto, postgres: in this order."""
        bench, obs = self.bench, self.observations
        usages = [Usage("detector", self.cpu("detector"), rss_mib(bench.detector.pid), obs)]
        cycles = self.wall / bench.interval  # steady state: every target once per interval
        for proc, samples in zip(bench.probes, self.b.probes, strict=True):
            swept = value(samples, "nms_probe_targets", probe="icmp") * cycles
            usages.append(Usage(proc.name, self.cpu(proc.name), rss_mib(proc.pid), swept))
        usages.append(Usage("mosquitto", self.cpu("mosquitto"), rss_mib(bench.broker.pid), obs))
        pg = 0.0
        for pid, after in self.b.pg_cpu.items():
            before = self.a.pg_cpu.get(pid) if pid in self.pg_before else 0.0
            if after is not None and before is not None:
                pg += after - before
        backends = f"postgres ({len(self.b.pg_cpu)} backends)"
        usages.append(Usage(backends, pg, None, obs))
        return usages

    def probes(self) -> list[ProbeFigures]:
        figures = []
        for proc, pa, pb in zip(self.bench.probes, self.a.probes, self.b.probes, strict=True):
            icmp = {"probe": "icmp"}
            figures.append(
                ProbeFigures(
                    name=proc.name,
                    targets=value(pb, "nms_probe_targets", **icmp),
                    duration=value(pb, "nms_probe_cycle_duration_seconds", **icmp),
                    cycles=self.delta(pa, pb, "nms_probe_cycles_total", **icmp),
                    overruns=self.delta(pa, pb, "nms_probe_cycle_overruns_total", **icmp),
                    overruns_total=value(pb, "nms_probe_cycle_overruns_total", **icmp),
                    batches=self.delta(pa, pb, "nms_bus_messages_published_total", kind="ping"),
                    buffered=value(pb, "nms_bus_buffered_batches"),
                    dropped=value(pb, "nms_bus_dropped_batches_total"),
                )
            )
        return figures

    def delay(self) -> tuple[float, float, float, float]:
        """(median, p99, mean, count) of the delay histogram's delta over the window."""
        a, b = self.a.detector, self.b.detector
        buckets = histogram_delta(a, b, DELAY)
        count = self.delta(a, b, DELAY + "_count")
        total = self.delta(a, b, DELAY + "_sum")
        mean = total / count if count else math.nan
        return histogram_quantile(0.5, buckets), histogram_quantile(0.99, buckets), mean, count

    def show(self, *, scrape: tuple[int, float, float]) -> None:
        bench, wall = self.bench, self.wall
        expected = bench.ntus / bench.interval
        rate = self.observations / wall
        print(
            f"\nWindow {wall:.1f} s: {self.observations:,.0f} observations into the detector"
            f" = {rate:,.0f}/s (N / interval = {expected:,.0f}/s: {rate / expected:.0%})"
        )
        if rate > 1.05 * expected:
            print("  more than the probes send: the detector was working off a backlog")
        elif rate < 0.95 * expected:
            print("  less than the probes send: the detector is falling behind")
        median, p99, mean, count = self.delay()
        bounds = ", ".join(f"{ub:g}" for ub in DELAY_BOUNDS)
        print(
            f"Delay probe publish -> detector state saved, per observation ({count:,.0f}):"
            f" median {median * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, mean {mean * 1000:.1f} ms"
            "\n  (quantiles interpolated linearly within the histogram buckets, as Prometheus'"
            f" histogram_quantile does; bucket bounds {bounds} s. The window starts with one"
            " scrape of the detector's /metrics (rendered in a thread, it competes for the"
            " GIL with the consumer): the figures include one scrape per window)"
        )
        usages = self.usages()
        self.show_cpu(usages, scrape)
        probes = self.probes()
        self.show_probes(probes)
        reach = self.show_worker(usages)

        det, broker, pg = usages[0], usages[-2], usages[-1]
        workers = [u for u in usages if u.name.startswith("probe")]
        rows = [
            ("NTUs / probe shards / ICMP interval / echoes",
             f"{bench.ntus:,} / {bench.shards} / {bench.interval:g} s / {bench.count}"),
            ("observations into the detector",
             f"{rate:,.0f}/s ({rate / expected:.0%} of N/interval)"),
            ("delay publish -> state saved, median / p99",
             f"{median * 1000:.0f} ms / {p99 * 1000:.0f} ms"),
            ("detector CPU", f"{pct(det.share(wall))} of a core, {per_1000(det)} ms/1000 obs"),
            ("probe worker CPU (each)",
             " / ".join(f"{pct(u.share(wall))}" for u in workers) + " of a core, "
             + " / ".join(per_1000(u) for u in workers) + " ms/1000 obs"),
            ("mosquitto CPU",
             f"{pct(broker.share(wall))} of a core, {per_1000(broker)} ms/1000 obs"),
            ("PostgreSQL CPU (the bench DB's backends)",
             f"{pct(pg.share(wall))} of a core, {per_1000(pg)} ms/1000 obs"),
            ("probe cycle / interval, overruns in window",
             " / ".join(f"{p.duration:.1f}" for p in probes)
             + f" s of {bench.interval:g} s, {sum(p.overruns for p in probes):.0f}"),
            ("bus buffered / dropped",
             f"{sum(p.buffered for p in probes):.0f} / {sum(p.dropped for p in probes):.0f}"),
            (f"one worker at {EXTRAPOLATE_INTERVAL:g} s, {EXTRAPOLATE_SHARE:.0%} of a core",
             f"~{reach:,.0f} NTUs (extrapolated from CPU)"),
        ]  # fmt: skip
        width = max(len(k) for k, _ in rows)
        vwidth = max(len(v) for _, v in rows)
        print(
            f"\nSummary ({wall:.0f} s window, {os.cpu_count()} cores; delay quantiles"
            " interpolated within histogram buckets):\n"
        )
        print(f"| {'figure':<{width}} | {'value':<{vwidth}} |")
        print(f"|{'-' * (width + 2)}|{'-' * (vwidth + 2)}|")
        for k, v in rows:
            print(f"| {k:<{width}} | {v:<{vwidth}} |")

    def show_cpu(self, usages: list[Usage], scrape: tuple[int, float, float]) -> None:
        a, b, wall, cores = self.a, self.b, self.wall, os.cpu_count() or 1
        print(f"\nCPU over the window ({cores} cores on this machine):")
        print(
            f"  {'process':<24} {'CPU s':>7} {'% of 1 core':>12} {'ms/1000 obs':>12} {'RSS MiB':>8}"
        )
        for u in usages:
            rss = f"{u.rss:8.0f}" if u.rss is not None else f"{'-':>8}"
            print(f"  {u.name:<24} {u.cpu:7.2f} {u.share(wall):12.1%} {u.ms_per_1000:12.1f} {rss}")
        busy = (b.busy[0] - a.busy[0]) / max(b.busy[1] - a.busy[1], 1) * cores
        samples, scrape_wall, scrape_cpu = scrape
        print(
            f"  whole machine (anything running on it): {busy:.2f} of {cores} cores busy\n"
            "  (probe ms/1000 obs: per target swept, targets x window / interval)\n"
            f"  one scrape of the detector's /metrics ({samples:,} samples, per-NTU series):"
            f" {scrape_wall * 1000:.0f} ms wall, {scrape_cpu * 1000:.0f} ms detector CPU"
            " (outside the window)"
        )

    def show_probes(self, probes: list[ProbeFigures]) -> None:
        bench, det = self.bench, self.b.detector
        print(
            f"\nProbes (interval {bench.interval:g} s, {bench.count} echo(es) per NTU per cycle):"
        )
        for p in probes:
            print(
                f"  {p.name}: {p.targets:,.0f} targets, last cycle {p.duration:.2f} s of"
                f" {bench.interval:g} s, {p.cycles:.0f} cycles and {p.overruns:.0f} overruns"
                f" in the window ({p.overruns_total:.0f} in all), {p.batches / self.wall:.1f}"
                f" batches/s; bus buffered {p.buffered:.0f}, dropped {p.dropped:.0f}"
            )

        def total(name: str) -> float:
            return sum(v for (n, _), v in det.items() if n == name)

        print(
            "  detector: received"
            f" {value(det, 'nms_bus_messages_received_total', kind='ping'):,.0f} ping batches,"
            f" rejected {total('nms_bus_messages_rejected_total'):.0f},"
            f" duplicates {value(det, 'nms_bus_duplicates_total'):.0f}; published"
            f" {value(det, 'nms_bus_messages_published_total', kind='ntu_state'):,.0f} ntu_state,"
            f" dropped {value(det, 'nms_bus_dropped_batches_total'):,.0f} (since start);"
            f" shards up {total('nms_probe_shard_up'):.0f}/{bench.shards};"
            f" NTUs up {value(det, 'nms_ntus', state='up'):,.0f}/{bench.ntus:,}"
        )

    def show_worker(self, usages: list[Usage]) -> float:
        """How far one probe worker goes; returns the extrapolated NTUs."""
        bench, workers = self.bench, [u for u in usages if u.name.startswith("probe")]
        busiest = max(workers, key=lambda u: u.cpu / u.observations if u.observations else 0.0)
        if not busiest.observations:
            return math.nan
        per_target = busiest.cpu / busiest.observations
        reach = EXTRAPOLATE_SHARE * EXTRAPOLATE_INTERVAL / per_target
        print(
            f"\nOne probe worker: {bench.ntus / bench.shards:,.0f} targets every"
            f" {bench.interval:g} s = {busiest.share(self.wall):.1%} of one core"
            f" ({per_target * 1000:.3f} ms CPU per target sweep of {bench.count} echo(es),"
            " busiest worker).\n  Extrapolated (CPU-bound, linear): one worker sweeps"
            f" ~{reach:,.0f} NTUs every {EXTRAPOLATE_INTERVAL:g} s with"
            f" {EXTRAPOLATE_SHARE:.0%} of one core."
        )
        return reach


# -- main ---------------------------------------------------------------------------------


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def parse(argv: Iterable[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--ntus", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--interval", default="5s", help="ICMP interval (default 5s)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring window")
    parser.add_argument("--count", type=int, default=2, choices=(1, 2), help="echoes per NTU")
    parser.add_argument("--warmup-timeout", type=float, default=120.0, metavar="S")
    parser.add_argument(
        "--settle-timeout", type=float, default=60.0, metavar="S", help="backlog drain wait"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(None if argv is None else list(argv))
    if args.ntus < 1 or args.shards < 1 or args.seconds <= 0:
        parser.error("--ntus, --shards and --seconds must be positive")
    return args


def main(argv: Iterable[str] | None = None) -> int:
    args = parse(argv)
    if os.geteuid() != 0:
        print("needs root (raw ICMP sockets)", file=sys.stderr)
        return 2
    check_loopback_url(PG_ADMIN_URL)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    workdir = Path(tempfile.mkdtemp(prefix="nms-bench-distributed-"))
    bench = Bench(args, workdir)
    print(
        f"Distributed bench: {bench.ntus:,} NTUs on 127.1.x.y, {bench.shards} probe shard(s), "
        f"ICMP every {bench.interval:g} s x {bench.count} echo(es), 1 detector, "
        f"window {bench.seconds:g} s; database {bench.database}, broker port {bench.broker_port}"
    )
    try:
        bench.start()
        bench.warm_up()
        bench.measure()
        bench.complaints()
        return 0
    except BenchError as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        bench.complaints()
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        bench.close()
        if args.keep:
            print(f"\nlogs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
