"""``nms demo``: the whole proactive loop on a simulated fleet, in about a minute.

It builds a lab fleet (network namespaces, needs root), starts ``nms run`` as a
subprocess with compressed time, and plays a script: an NTU goes dark and becomes a
P1, an engineer takes it, another NTU turns lossy and becomes a P2, both recover
(solved, monitoring window), the engineer writes and publishes the RFOs, and the
cases close. It narrates each step with the API URL to look at, prints the cases and
a few metrics at the end, and leaves the database and logs in its work directory.

The lab is torn down however the demo ends (Ctrl-C, SIGTERM, an error).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import httpx

from nms.lab.procs import stop_process

EXIT_NEEDS_ROOT = 2
LOSS_PERCENT = 30
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Pace:
    """Compressed time: what 10 minutes, 24 hours... become in the demo."""

    down_after: str
    window: str
    clear_after: str
    monitoring: str
    timeout: float  # how long any one step may take before the demo gives up

    def env(self) -> dict[str, str]:
        return {
            "NMS_DETECTOR__DOWN_AFTER": self.down_after,
            "NMS_DETECTOR__RESTORE_AFTER": "2",
            "NMS_DETECTOR__STALE_AFTER": "5s",
            "NMS_DETECTOR__TICK": "200ms",
            "NMS_DETECTOR__DEGRADED__WINDOW": self.window,
            "NMS_DETECTOR__DEGRADED__CLEAR_AFTER": self.clear_after,
            "NMS_PROBES__ICMP__INTERVAL": "1s",
            "NMS_PROBES__ICMP__COUNT": "5",
            "NMS_PROBES__ICMP__SPACING": "50ms",
            "NMS_PROBES__ICMP__TIMEOUT": "400ms",
            "NMS_PROBES__SNMP__ENABLED": "false",
            "NMS_CASES__MONITORING_WINDOW__P1": self.monitoring,
            "NMS_CASES__MONITORING_WINDOW__P2": self.monitoring,
            "NMS_CASES__TICKER_INTERVAL": "500ms",
            "NMS_INVENTORY__WATCH_INTERVAL": "1s",
        }


DEFAULT = Pace(down_after="8s", window="8s", clear_after="5s", monitoring="15s", timeout=60)
FAST = Pace(down_after="4s", window="5s", clear_after="3s", monitoring="6s", timeout=40)


def add_demo_command(subparsers: Any) -> None:
    """Add ``demo`` to the ``nms`` sub-commands."""
    demo = subparsers.add_parser(
        "demo",
        help="watch the proactive loop on a simulated fleet (needs root)",
        description=(
            "Build a simulated NTU fleet in network namespaces (needs root), run nms on "
            "it with compressed time (10 min of down -> 8 s) and play a scenario: an "
            "outage becomes a P1, packet loss a P2, both recover, the RFOs are "
            "published and the cases close. Takes about a minute."
        ),
    )
    demo.add_argument("--fast", action="store_true", help="compress time further (tests)")
    demo.add_argument("--workdir", type=Path, metavar="DIR", help="where the database and logs go")
    demo.add_argument("--port", type=int, default=0, help="API port (default: a free one)")
    demo.add_argument("--report", type=Path, metavar="FILE", help="also write the cases as JSON")
    demo.add_argument(
        "--keep",
        action="store_true",
        help="after the scenario, keep nms and the lab running until Ctrl-C (API key printed)",
    )


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; 0 when the scenario played to the end."""
    if os.geteuid() != 0:
        print(
            "nms demo needs root: it creates network namespaces and sends raw ICMP.\n"
            "Run it as root, e.g.: sudo nms demo",
            file=sys.stderr,
        )
        return EXIT_NEEDS_ROOT
    from nms.lab import LabFleet

    pace = FAST if args.fast else DEFAULT
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nms-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    fleet = LabFleet(hosts=2, ntus_per_host=1)
    demo = Demo(workdir=workdir, pace=pace, port=args.port or _free_port())
    try:
        say("Building the lab: 2 simulated NTUs in network namespaces (169.254.0.0/16)")
        fleet.up()
        demo.start(fleet)
        demo.play(fleet)
        demo.summary(args.report, keep=args.keep)
        if args.keep:
            demo.stay()
        return 0
    except KeyboardInterrupt:
        say("Interrupted: tearing down")
        return 130
    except DemoError as exc:
        print(f"nms demo: {exc}\n  see the log: {demo.log_path}", file=sys.stderr)
        return 1
    finally:
        demo.stop()
        fleet.down()
        signal.signal(signal.SIGTERM, previous)
        say(f"Lab torn down. Database: {demo.database}  log: {demo.log_path}")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class DemoError(Exception):
    """A step of the scenario did not happen in time."""


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Demo:
    def __init__(self, *, workdir: Path, pace: Pace, port: int) -> None:
        self.workdir = workdir
        self.pace = pace
        self.port = port
        self.database = workdir / "nms.db"
        self.log_path = workdir / "nms.log"
        self.inventory = workdir / "inventory.yaml"
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.key = ""
        self.refs: dict[str, str] = {}

    # -- process ---------------------------------------------------------------------

    def start(self, fleet: Any) -> None:
        lines = ["customers:", "  - {id: acme, name: ACME Retail}", "ntus:"]
        for i, (site, address) in enumerate(zip(("Lyon", "Porto"), fleet.addresses, strict=True)):
            lines.append(
                f"  - {{id: ntu-{i}, customer: acme, service_id: SVC-{i}, site: {site}, "
                f'address: "{address}"}}'
            )
        self.inventory.write_text("\n".join(lines) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("NMS_")}
        env.update(self.pace.env())
        db_url = f"sqlite+aiosqlite:///{self.database}"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nms.app.cli", "run", "--inventory", str(self.inventory),
                 "--listen", f"127.0.0.1:{self.port}", "--database", db_url],
                cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.wait("the API to answer", self._healthy, timeout=30)
        made = subprocess.run(
            [sys.executable, "-m", "nms.app.cli", "apikey", "create", "--role", "engineer",
             "--name", "demo-engineer", "--database", db_url],
            capture_output=True, text=True, timeout=60, cwd=self.workdir, env=env, check=False,
        )  # fmt: skip
        if made.returncode != 0:
            raise DemoError(f"cannot create an API key: {made.stderr.strip()}")
        self.key = made.stdout.strip()
        say(f"nms is running: API {self.url}/docs, metrics {self.url}/metrics")
        say(f"  engineer API key, while the demo runs: {self.key}")
        say(f"  (10 min of down is {self.pace.down_after} here, a 24 h window "
            f"{self.pace.monitoring})")  # fmt: skip

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise DemoError(f"nms run exited with {self.proc.returncode}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=15)

    def stay(self) -> None:
        """Keep nms (and the lab) up until Ctrl-C or SIGTERM."""
        assert self.proc is not None
        while self.proc.poll() is None:
            time.sleep(0.5)
        raise DemoError(f"nms run exited with {self.proc.returncode}")

    # -- API -------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(
            method,
            self.url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=10,
        )
        if response.status_code >= 400:
            raise DemoError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def case(self, ref: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/v1/cases/{ref}"))

    def cases(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/v1/cases?limit=100")["data"])

    def wait(self, what: str, probe: Callable[[], T | None], *, timeout: float | None = None) -> T:
        deadline = time.monotonic() + (timeout or self.pace.timeout)
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            time.sleep(0.25)
        raise DemoError(f"timed out waiting for {what}")

    def status_of(self, ntu: str) -> str:
        return str(self.call("GET", f"/v1/ntus/{ntu}/status")["status"])

    def _is_up(self, ntu: str) -> Callable[[], bool]:
        return lambda: self.status_of(ntu) == "up"

    def case_for(self, ntu: str, priority: str) -> dict[str, Any] | None:
        for case in self.cases():
            if case["ntu_id"] == ntu and case["priority"] == priority:
                return case
        return None

    def wait_case_status(self, ref: str, *statuses: str) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            case = self.case(ref)
            return case if case["status"] in statuses else None

        return self.wait(f"{ref} to be {' or '.join(statuses)}", probe)

    # -- the scenario ----------------------------------------------------------------

    def play(self, fleet: Any) -> None:
        for ntu in ("ntu-0", "ntu-1"):
            self.wait(f"{ntu} to be up", self._is_up(ntu))
        say("Both NTUs answer: ntu-0 (Lyon) and ntu-1 (Porto) are up")

        say(f"FAULT: ntu-0's address stops answering. Down after {self.pace.down_after} -> P1")
        fleet.drop_address(fleet.addresses[0])
        p1 = self.wait("the P1 case", lambda: self.case_for("ntu-0", "P1"))
        self.refs["P1"] = ref = p1["ref"]
        say(f"P1 {ref} opened: outage since {p1['outage_start']}, detected {p1['detected_at']}")
        say(f"  look: {self.url}/v1/cases/{ref}   {self.url}/v1/ntus/ntu-0/status")
        self.call("POST", f"/v1/cases/{ref}/take")
        body = "We see the outage at your Lyon site and are working with the supplier."
        self.call("POST", f"/v1/cases/{ref}/comments", {"body": body, "visibility": "public"})
        say(f"Engineer takes {ref} and tells the customer (first response, inside 30 min)")

        say(
            f"FAULT: ntu-1 drops {LOSS_PERCENT} % of the echoes sent to it -> P2 (degraded) "
            f"once the loss measured over the last {self.pace.window} passes 5 %"
        )
        fleet.set_loss(fleet.hosts[1], LOSS_PERCENT)
        p2 = self.wait("the P2 case", lambda: self.case_for("ntu-1", "P2"))
        self.refs["P2"] = p2["ref"]
        say(f"P2 {p2['ref']} opened: {p2['summary']}")
        say(
            f"  (the loss measured when it opened; the {self.pace.window} window still "
            "held bursts from before the fault)"
        )

        say("REPAIR: ntu-0 answers again; the loss on ntu-1 stops")
        fleet.restore_address(fleet.addresses[0])
        fleet.clear_loss(fleet.hosts[1])
        for priority in ("P1", "P2"):
            solved = self.wait_case_status(self.refs[priority], "solved")
            say(
                f"{priority} {solved['ref']} solved (restored {solved['restored_at']}); "
                f"monitoring window until {solved['monitoring_until']}"
            )

        self.publish_rfo(self.refs["P1"], "access_circuit", "Fibre cut on the access circuit.")
        closed = self.wait_case_status(self.refs["P1"], "closed")
        say(f"P1 {closed['ref']} closed: window passed, no recurrence, RFO published")
        pending = self.wait_case_status(self.refs["P2"], "rfo_pending", "closed")
        if pending["status"] == "rfo_pending":
            say(f"P2 {pending['ref']} window ended: rfo_pending (it closes once the RFO is out)")
            self.publish_rfo(pending["ref"], "supplier", "Congested supplier backhaul.")
        closed = self.wait_case_status(self.refs["P2"], "closed")
        say(f"P2 {closed['ref']} closed")

    def publish_rfo(self, ref: str, category: str, cause: str) -> None:
        self.call(
            "PUT",
            f"/v1/cases/{ref}/rfo",
            {
                "root_cause_category": category,
                "root_cause": cause,
                "corrective_actions": "Supplier repaired the circuit; service verified.",
                "preventive_actions": "Route diversity requested from the supplier.",
            },
        )
        rfo = self.call("POST", f"/v1/cases/{ref}/rfo/publish")
        say(f"Engineer publishes RFO v{rfo['version']} of {ref}: {cause}")
        say(f"  look: {self.url}/v1/cases/{ref}/rfo?format=md")

    def summary(self, report: Path | None, *, keep: bool) -> None:
        cases = self.cases()
        print("\nCases:")
        print(f"  {'ref':<18} {'prio':<5} {'ntu':<7} {'status':<8} {'outage start':<27} restored")
        for c in cases:
            print(
                f"  {c['ref']:<18} {c['priority']:<5} {c['ntu_id']:<7} {c['status']:<8} "
                f"{c['outage_start']:<27} {c['restored_at']}"
            )
        page = httpx.get(self.url + "/metrics", timeout=10).text
        wanted = (
            "nms_ntus{",
            "nms_detector_cases_opened_total",
            "nms_detection_latency_seconds_count",
        )
        print("\nMetrics (excerpt of /metrics, as the scenario ended):")
        for line in page.splitlines():
            if line.startswith(wanted):
                print(f"  {line}")
        rfo = httpx.get(
            f"{self.url}/v1/cases/{self.refs['P1']}/rfo?format=md",
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=10,
        )
        print(f"\nThe published RFO of {self.refs['P1']}:\n")
        print("  " + rfo.text.strip().replace("\n", "\n  "))
        if keep:
            print(
                f"\nStill running (Ctrl-C stops nms and tears the lab down):\n"
                f"  the cases      {self.url}/v1/cases\n"
                f"  an RFO         {self.url}/v1/cases/{self.refs['P1']}/rfo?format=md\n"
                f"  metrics        {self.url}/metrics\n"
                f"  with           Authorization: Bearer {self.key}\n"
            )
        else:
            print(
                f"\nnms stops with the demo (run it with --keep to look around first).\n"
                f"  work directory {self.workdir} (nms.db, nms.log, inventory.yaml)\n"
                f"  dashboards     dashboards/grafana/*.json (Grafana over Prometheus)\n"
            )
        if report is not None:
            rfos = {
                c["ref"]: self.call("GET", f"/v1/cases/{c['ref']}/rfo")["status"] for c in cases
            }
            data = {
                "database": str(self.database),
                "log": str(self.log_path),
                "inventory": str(self.inventory),
                "cases": [
                    {
                        "ref": c["ref"],
                        "priority": c["priority"],
                        "ntu_id": c["ntu_id"],
                        "status": c["status"],
                        "rfo": rfos[c["ref"]],
                    }
                    for c in cases
                ],
            }
            report.write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m nms.app.demo`` (the same as ``nms demo``)."""
    parser = argparse.ArgumentParser(prog="nms")
    sub = parser.add_subparsers(dest="command", required=True)
    add_demo_command(sub)
    return run_demo(parser.parse_args(["demo", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
