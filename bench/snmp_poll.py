"""Benchmark: SNMP GET of 3 OIDs from 1,000 agents, ours vs snmp_exporter vs pysnmp.

Run: ``python bench/snmp_poll.py [--quick]``. Not a test; it prints figures.

Setup (loopback only, no root needed): one net-snmp ``snmpd`` listening on 1,000
loopback addresses 127.2.x.y (a high UDP port, so nothing clashes with a system
agent); every client GETs sysUpTime.0, ifOperStatus.1 and ifHCInOctets.1 from each.

* **ours**: :class:`probes.snmp.client.SnmpClient` (one socket, ``run_many``);
  CPU is this process's (``time.process_time``).
* **snmp_exporter** (Debian ``prometheus-snmp-exporter``): a generated module for
  the 3 OIDs, driven by concurrent HTTP ``/snmp?target=...&module=bench`` from
  asyncio + httpx; CPU is the exporter process's, from ``/proc/<pid>/stat``
  (HTTP client CPU on our side is not counted against it).
* **pysnmp** high-level asyncio API (``get_cmd``), same 3 OIDs, 200 concurrent;
  CPU is this process's.

Then the *first* poll of never-seen targets with a fresh client: 1,000 vs 10,000
distinct loopback addresses (127.3.0.0/16) served by a second ``snmpd`` listening
on the wildcard address (an argv cannot hold 10,000 listen addresses; snmpd answers
each from the address asked, so to the client they are 10,000 distinct agents, but
they are one agent process). Each size is polled ``REPEATS`` times, with the garbage
collector on and then off; every run prints its per-target CPU and wall time and the
time spent in the collector (``gc.callbacks``), and the ratio uses the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from probes.snmp.ber import Oid, parse_oid
from probes.snmp.client import ClientSettings, SnmpClient
from probes.snmp.flows import get_flow
from probes.snmp.target import SnmpTarget

PORT = 11161
# In-flight window. One snmpd's default socket buffer (rmem_default) drops bursts of
# ~250+ requests, which turns into retransmissions; 100 keeps it loss-free.
WINDOW = 100
REPEATS = 3  # first-poll measurements per size
EXPORTER_PORT = 19116
OIDS: tuple[Oid, ...] = (
    parse_oid("1.3.6.1.2.1.1.3.0"),
    parse_oid("1.3.6.1.2.1.2.2.1.8.1"),
    parse_oid("1.3.6.1.2.1.31.1.1.1.6.1"),
)
TICKS = os.sysconf("SC_CLK_TCK")


def loopback(prefix: str, n: int) -> list[str]:
    """n addresses 127.P.x.y, skipping .0 and .255 in the last octet."""
    out: list[str] = []
    for i in range(n):
        out.append(f"127.{prefix}.{i // 250}.{i % 250 + 1}")
    return out


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_snmpd(workdir: Path, listen: str, name: str) -> subprocess.Popen[bytes]:
    conf = workdir / f"{name}.conf"
    conf.write_text("rocommunity public 127.0.0.0/8\nsysName bench\n")
    log = workdir / f"{name}.log"
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(workdir), "MIBS": ""}
    proc = subprocess.Popen(
        ["snmpd", "-f", "-C", "-c", str(conf), "-Lf", str(log), listen],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if log.exists() and "NET-SNMP version" in log.read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            raise SystemExit(f"snmpd failed: {log.read_text(errors='replace')[-500:]}")
        time.sleep(0.05)
    proc.terminate()
    raise SystemExit("snmpd not ready")


def targets_for(addresses: list[str]) -> list[SnmpTarget]:
    return [
        SnmpTarget(
            key=f"ntu-{i}",
            address=ipaddress.IPv4Address(a),
            port=PORT,
            community="public",
        )
        for i, a in enumerate(addresses)
    ]


async def run_ours(targets: list[SnmpTarget], rounds: int) -> tuple[float, float, int]:
    """(wall s, CPU s, GETs answered) over ``rounds`` polls of every target."""
    settings = ClientSettings(timeout=2.0, retries=1, total_timeout=5.0, max_in_flight=WINDOW)
    async with SnmpClient(settings=settings) as client:
        await client.run_many([(t, get_flow(OIDS)) for t in targets])  # warm-up
        ok = 0
        cpu0, t0 = time.process_time(), time.perf_counter()
        for _ in range(rounds):
            results = await client.run_many([(t, get_flow(OIDS)) for t in targets])
            ok += sum(1 for r in results if isinstance(r, tuple))
        return time.perf_counter() - t0, time.process_time() - cpu0, ok


class GcMeter:
    """Collections per generation and seconds spent in the collector (gc.callbacks)."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1


async def first_poll(addresses: list[str], *, gc_on: bool) -> tuple[float, float, int, GcMeter]:
    """A fresh client's first poll of never-seen targets: (wall s, CPU s, answered, gc)."""
    targets = targets_for(addresses)
    gc.collect()
    if not gc_on:
        gc.disable()
    meter = GcMeter()
    gc.callbacks.append(meter)
    settings = ClientSettings(timeout=2.0, retries=1, total_timeout=5.0, max_in_flight=WINDOW)
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        async with SnmpClient(settings=settings) as client:
            results = await client.run_many([(t, get_flow(OIDS)) for t in targets])
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        gc.callbacks.remove(meter)
        gc.enable()
    ok = sum(1 for r in results if isinstance(r, tuple))
    return wall, cpu, ok, meter


EXPORTER_CONF = """bench:
  version: 2
  auth:
    community: public
  timeout: 2s
  retries: 1
  get:
    - 1.3.6.1.2.1.1.3.0
    - 1.3.6.1.2.1.2.2.1.8.1
    - 1.3.6.1.2.1.31.1.1.1.6.1
  metrics:
    - name: sysUpTime
      oid: 1.3.6.1.2.1.1.3
      type: gauge
      help: sysUpTime
    - name: ifOperStatus
      oid: 1.3.6.1.2.1.2.2.1.8
      type: gauge
      help: ifOperStatus
      indexes:
        - labelname: ifIndex
          type: gauge
    - name: ifHCInOctets
      oid: 1.3.6.1.2.1.31.1.1.1.6
      type: counter
      help: ifHCInOctets
      indexes:
        - labelname: ifIndex
          type: gauge
"""


async def run_exporter(
    workdir: Path, addresses: list[str], rounds: int
) -> tuple[float, float, int] | None:
    binary = shutil.which("prometheus-snmp-exporter")
    if binary is None:
        print("snmp_exporter: not installed (apt-get install prometheus-snmp-exporter)")
        return None
    conf = workdir / "snmp.yml"
    conf.write_text(EXPORTER_CONF)
    proc = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={conf}",
        f"--web.listen-address=127.0.0.1:{EXPORTER_PORT}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{EXPORTER_PORT}"
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
            for _ in range(100):
                try:
                    await http.get("/metrics")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            slots = asyncio.Semaphore(200)

            async def scrape(address: str) -> bool:
                async with slots:
                    r = await http.get(
                        "/snmp", params={"target": f"{address}:{PORT}", "module": "bench"}
                    )
                    return r.status_code == 200 and "ifHCInOctets{" in r.text

            await asyncio.gather(*(scrape(a) for a in addresses[:100]))  # warm-up
            cpu0, t0 = proc_cpu(proc.pid), time.perf_counter()
            ok = 0
            for _ in range(rounds):
                ok += sum(await asyncio.gather(*(scrape(a) for a in addresses)))
            return time.perf_counter() - t0, proc_cpu(proc.pid) - cpu0, ok
    finally:
        proc.terminate()
        await proc.wait()


async def run_pysnmp(addresses: list[str]) -> tuple[float, float, int]:
    from pysnmp.hlapi.v3arch import asyncio as h

    engine = h.SnmpEngine()
    slots = asyncio.Semaphore(200)
    names = [h.ObjectType(h.ObjectIdentity(".".join(map(str, oid)))) for oid in OIDS]

    async def one(address: str) -> bool:
        async with slots:
            transport = await h.UdpTransportTarget.create((address, PORT), timeout=2, retries=1)
            error, status, _, binds = await h.get_cmd(
                engine,
                h.CommunityData("public", mpModel=1),
                transport,
                h.ContextData(),
                *names,
                lookupMib=False,
            )
            return error is None and not int(status) and len(binds) == 3

    cpu0, t0 = time.process_time(), time.perf_counter()
    ok = sum(await asyncio.gather(*(one(a) for a in addresses)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    engine.close_dispatcher()
    return wall, cpu, ok


def line(name: str, wall: float, cpu: float, ok: int, gets: int) -> tuple[float, float]:
    rate = ok / wall if wall else 0.0
    per_k = cpu / gets * 1000 if gets else 0.0
    print(
        f"{name:<14} {gets:>7} GETs {ok:>7} ok  {rate:>9.0f} GETs/s  {per_k:>7.3f} CPU s/1000 GETs"
    )
    return rate, per_k


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, 5,000 in scale test")
    args = parser.parse_args()
    rounds = 2 if args.quick else 5
    big = 5_000 if args.quick else 10_000
    workdir = Path(tempfile.mkdtemp(prefix="nms-bench-snmp-"))
    agents: list[subprocess.Popen[bytes]] = []
    try:
        addresses = loopback("2", 1000)
        agents.append(start_snmpd(workdir, ",".join(f"udp:{a}:{PORT}" for a in addresses), "many"))
        print(f"snmpd pid {agents[0].pid} on 1000 loopback addresses, port {PORT}")
        targets = targets_for(addresses)
        ours = await run_ours(targets, rounds)
        ours_rate, ours_cpu = line("ours", *ours, gets=rounds * 1000)
        exp = await run_exporter(workdir, addresses, rounds)
        exp_rate = exp_cpu = 0.0
        if exp is not None:
            exp_rate, exp_cpu = line("snmp_exporter", *exp, gets=rounds * 1000)
        pys = await run_pysnmp(addresses)
        pys_rate, pys_cpu = line("pysnmp hlapi", *pys, gets=1000)
        if exp_rate:
            print(f"throughput ours / snmp_exporter: {ours_rate / exp_rate:6.1f}x (goal >= 4x)")
            print(f"CPU per GET snmp_exporter / ours: {exp_cpu / ours_cpu:6.1f}x")
        if pys_rate:
            print(f"throughput ours / pysnmp:        {ours_rate / pys_rate:6.1f}x")
            print(f"CPU per GET pysnmp / ours:        {pys_cpu / ours_cpu:6.1f}x")
        agents[0].terminate()
        agents[0].wait()
        agents.clear()
        agents.append(start_snmpd(workdir, f"udp:0.0.0.0:{PORT}", "wild"))
        print(f"snmpd pid {agents[0].pid} on the wildcard address: first poll, fresh client")
        # Each size is measured REPEATS times, alternating, and every run is printed;
        # the ratio uses the median per-target CPU of each size.
        for gc_on in (True, False):
            gc_state = "on" if gc_on else "off"
            per: dict[int, list[float]] = {1000: [], big: []}
            for _ in range(REPEATS):
                for n in (1000, big):
                    addrs = loopback("3", n) if n <= 1000 else loopback_many(n)
                    wall, cpu, ok, meter = await first_poll(addrs, gc_on=gc_on)
                    per[n].append(cpu / n * 1000)
                    print(
                        f"first poll {n:>6} targets (gc {gc_state}): {ok:>6} ok  "
                        f"wall {wall:5.2f} s  CPU {cpu:5.2f} s  per target "
                        f"{cpu / n * 1000:.4f} ms CPU  gc {meter.seconds * 1000:6.1f} ms "
                        f"({meter.seconds / cpu:4.0%} of CPU; collections gen0/1/2 "
                        f"{'/'.join(map(str, meter.collections))})"
                    )
            small_cpu, big_cpu = statistics.median(per[1000]), statistics.median(per[big])
            print(
                f"  median per-target CPU {big} vs 1000 targets (gc {gc_state}):"
                f" {big_cpu:.4f} vs {small_cpu:.4f} ms = {big_cpu / small_cpu:.2f}x"
                " (1.0 = linear growth)"
            )
    finally:
        for agent in agents:
            agent.terminate()
            agent.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def loopback_many(n: int) -> list[str]:
    """n distinct addresses in 127.3.0.0/16 (x.1-250)."""
    return [f"127.3.{i // 250}.{i % 250 + 1}" for i in range(n)]


if __name__ == "__main__":
    asyncio.run(main())
