"""Runs ``nms run`` as a real subprocess for end-to-end tests, and talks to its API."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

from nms.lab.procs import kill_process, stop_process

T = TypeVar("T")

# Compressed time: an outage is confirmed after 4 s instead of 10 min.
FAST = {
    "NMS_DETECTOR__DOWN_AFTER": "4s",
    "NMS_DETECTOR__RESTORE_AFTER": "2",
    # Longer than a restart of nms (kill -9 and start: ~2-3 s under load), as in production
    # (2 min against seconds), so that a restart does not look like missing data.
    "NMS_DETECTOR__STALE_AFTER": "6s",
    "NMS_DETECTOR__TICK": "200ms",
    # An up NTU's figures (RTT, sysUpTime, ...) are written every refresh (1 min in
    # production): the tests read them from the API within seconds.
    "NMS_DETECTOR__REFRESH": "1s",
    "NMS_PROBES__ICMP__INTERVAL": "1s",
    "NMS_PROBES__ICMP__COUNT": "2",
    "NMS_PROBES__ICMP__SPACING": "100ms",
    "NMS_PROBES__ICMP__TIMEOUT": "300ms",
    "NMS_INVENTORY__WATCH_INTERVAL": "500ms",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    what: str, probe: Callable[[], T | None], *, timeout: float, interval: float = 0.1
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class NmsProcess:
    """One ``nms run`` process over a given inventory and database."""

    def __init__(
        self,
        *,
        workdir: Path,
        inventory: Path,
        database: Path,
        env: dict[str, str] | None = None,
        umask: int = -1,
    ) -> None:
        self.workdir = workdir
        self.umask = umask  # of the nms processes; -1: this process's
        self.inventory = inventory
        self.database = database
        self.port = free_port()
        self.env = {**FAST, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "nms.log"
        self.starts = 0
        self._key: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key(self) -> str:
        """A NOC API key for this database, made on first use with ``nms apikey create``."""
        if self._key is None:
            self._key = self.make_key("noc")
        return self._key

    def make_key(self, role: str, customer: str | None = None) -> str:
        """A new API key with ``role`` (for ``customer``), made with ``nms apikey create``."""
        made = subprocess.run(
            [
                sys.executable, "-m", "nms.app.cli", "apikey", "create",
                "--role", role, "--name", f"e2e-tests-{role}-{customer or 'staff'}",
                *(["--customer", customer] if customer else []),
                "--database", f"sqlite+aiosqlite:///{self.database}",
            ],
            capture_output=True, text=True, timeout=60, cwd=self.workdir, umask=self.umask,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    def start(self, **extra_env: str) -> None:
        assert self.proc is None or self.proc.poll() is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("NMS_")}
        env.update(self.env)
        env.update(extra_env)
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n----- start {self.starts} -----\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nms.app.cli",
                "run",
                "--inventory",
                str(self.inventory),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--database",
                f"sqlite+aiosqlite:///{self.database}",
            ],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            umask=self.umask,
        )
        log.close()
        wait_for("the API to answer", self._healthy, timeout=30)

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"nms exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        assert self.proc is not None
        kill_process(self.proc)

    def stop(self) -> int:
        """SIGTERM, and wait for the clean exit."""
        assert self.proc is not None
        if not stop_process(self.proc, timeout=15):
            raise AssertionError("nms did not stop within 15 s of SIGTERM")
        return self.proc.returncode

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.key}"}
        response = httpx.get(self.url + path, params=params, headers=headers, timeout=5)
        response.raise_for_status()
        return response.json()

    def call(
        self, method: str, path: str, *, json: Any = None, key: str | None = None
    ) -> httpx.Response:
        """One request with ``key`` (the NOC key by default); the response as it came."""
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return httpx.request(method, self.url + path, json=json, headers=headers, timeout=5)

    def cases(self, **params: Any) -> list[dict[str, Any]]:
        return list(self.get("/v1/cases", limit=500, **params)["data"])

    def status(self, ntu_id: str) -> dict[str, Any]:
        return dict(self.get(f"/v1/ntus/{ntu_id}/status"))

    def wait_status(self, ntu_id: str, *statuses: str, timeout: float = 20) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            status = self.status(ntu_id)
            return status if status["status"] in statuses else None

        return wait_for(f"{ntu_id} to be {'/'.join(statuses)}", probe, timeout=timeout)


@contextlib.contextmanager
def running(process: NmsProcess, **extra_env: str) -> Iterator[NmsProcess]:
    process.start(**extra_env)
    try:
        yield process
    finally:
        if process.proc is not None and process.proc.poll() is None:
            process.stop()


def write_inventory(path: Path, addresses: list[Any], *, prefix: str = "ntu") -> list[str]:
    """An inventory of one customer with one NTU per address; returns the NTU ids."""
    lines = ["customers:", "  - {id: cust1, name: Customer One}", "ntus:"]
    ids = []
    for i, address in enumerate(addresses):
        ntu_id = f"{prefix}-{i:03d}"
        ids.append(ntu_id)
        lines.append(
            f"  - {{id: {ntu_id}, customer: cust1, service_id: SVC-{i:03d}, "
            f'site: "Site {i}", address: "{address}"}}'
        )
    path.write_text("\n".join(lines) + "\n")
    return ids
