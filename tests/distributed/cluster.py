"""A whole distributed deployment as real subprocesses, for end-to-end tests.

Two probe shards, two detectors and one API over a broker (``tests.mosquitto``) and a
fresh PostgreSQL database reached through a ``TcpProxy`` the test can cut. With a TLS
broker (``Mosquitto(..., pki=...)``) every process gets its own client certificate:
``probe-<I>of2`` for shard I/2, ``detector`` for both detectors - the user names the
broker's ACL file (``deploy/mosquitto/acl``) knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from nms.lab.procs import kill_process, stop_process
from tests.caseapi.conftest import PG_ADMIN_URL, _admin
from tests.nms.nms_process import FAST, free_port, wait_for
from tests.pki import Pki
from tests.tcp_proxy import TcpProxy

DISTRIBUTED = {
    **FAST,
    "NMS_BUS__HEARTBEAT": "500ms",
    "NMS_CLUSTER__LEADER_CHECK": "500ms",
    "NMS_CLUSTER__SHARD_STALE_AFTER": "3s",
    "NMS_PROBES__SNMP__ENABLED": "false",
}


class Proc:
    """One ``nms <command>`` subprocess with its log and status port."""

    def __init__(
        self,
        name: str,
        args: list[str],
        *,
        port: int,
        workdir: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.env = env or {}  # this process's own settings (its certificate)
        self.args = args
        self.port = port
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict[str, str]) -> None:
        full = {k: v for k, v in os.environ.items() if not k.startswith("NMS_")} | env | self.env
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "nms.app.cli",
                    *self.args,
                    "--listen",
                    f"127.0.0.1:{self.port}",
                ],
                cwd=self.workdir,
                env=full,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthz(self) -> dict[str, Any] | None:
        if not self.alive():
            raise AssertionError(f"{self.name} exited:\n{self.log()[-3000:]}")
        try:
            response = httpx.get(self.url + "/healthz", timeout=2)
        except httpx.HTTPError:
            return None
        return dict(response.json()) if response.status_code == 200 else None

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(self.url + "/metrics", timeout=5).text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def kill(self) -> None:
        assert self.proc is not None
        kill_process(self.proc)

    def stop(self) -> int:
        assert self.proc is not None
        if not stop_process(self.proc, timeout=15):
            raise AssertionError(f"{self.name} did not stop within 15 s")
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def create_database(name: str) -> str:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Cluster:
    def __init__(
        self,
        *,
        workdir: Path,
        inventory: Path,
        database: str,
        broker: str,
        env: dict[str, str],
        pki: Pki | None = None,
    ) -> None:
        self.workdir = workdir
        self.database = database  # direct URL (for tools); processes go through the proxy
        url = make_url(database)
        self.proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
        proxied = url.set(host="127.0.0.1", port=self.proxy.port)
        self.env = {
            **DISTRIBUTED,
            "NMS_DATABASE__URL": proxied.render_as_string(hide_password=False),
            "NMS_BUS__URL": broker,
            **env,
        }
        inv = ["--inventory", str(inventory)]

        def tls(name: str) -> dict[str, str]:
            if pki is None:
                return {}
            pair = pki.client(name)
            return {
                "NMS_BUS__TLS_CA": str(pki.ca),
                "NMS_BUS__TLS_CERT": str(pair.cert),
                "NMS_BUS__TLS_KEY": str(pair.key),
            }

        self.probes = [
            Proc(
                f"probe-{i}",
                ["probe", "--shard", f"{i}/2", *inv],
                port=free_port(),
                workdir=workdir,
                env=tls(f"probe-{i}of2"),
            )
            for i in (1, 2)
        ]
        self.detectors = [
            Proc(
                f"detector-{n}",
                ["detector", *inv],
                port=free_port(),
                workdir=workdir,
                env=tls("detector"),
            )
            for n in ("a", "b")
        ]
        self.api = Proc("api", ["api"], port=free_port(), workdir=workdir)
        self._key: str | None = None

    @property
    def procs(self) -> list[Proc]:
        return [*self.detectors, self.api, *self.probes]

    def start(self) -> None:
        # The first detector migrates the database; the others wait on the same lock.
        for proc in self.procs:
            proc.start(self.env)
        for proc in self.procs:
            wait_for(f"{proc.name} to answer /healthz", proc.healthz, timeout=60)
            # nms.app.loop: probe, detector and api run on uvloop, as in production.
            assert "event loop: uvloop" in proc.log(), proc.log()[-3000:]
        wait_for("a leading detector", self.leader, timeout=30)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.alive():
                proc.stop()
        self.proxy.close()

    def logs(self) -> str:
        return "\n".join(f"===== {p.name}\n{p.log()[-4000:]}" for p in self.procs)

    def leader(self) -> Proc | None:
        leading = [d for d in self.detectors if d.alive() and (d.healthz() or {}).get("leader")]
        assert len(leading) <= 1, "two detectors lead at once"
        return leading[0] if leading else None

    @property
    def key(self) -> str:
        if self._key is None:
            made = subprocess.run(
                [
                    sys.executable, "-m", "nms.app.cli", "apikey", "create",
                    "--role", "noc", "--name", "e2e", "--database", self.database,
                ],
                capture_output=True, text=True, timeout=60, cwd=self.workdir,
            )  # fmt: skip
            assert made.returncode == 0, made.stderr
            self._key = made.stdout.strip()
        return self._key

    def request(self, path: str, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.get(self.api.url + path, params=params, headers=headers, timeout=10)

    def get(self, path: str, **params: Any) -> Any:
        response = self.request(path, **params)
        response.raise_for_status()
        return response.json()

    def cases(self) -> list[dict[str, Any]]:
        return list(self.get("/v1/cases", limit=500)["data"])

    def status(self, ntu_id: str) -> str:
        return str(self.get(f"/v1/ntus/{ntu_id}/status")["status"])

    def wait_status(self, ntu_ids: list[str], status: str, *, timeout: float) -> None:
        def check() -> bool:
            return all(self.status(n) == status for n in ntu_ids)

        wait_for(f"{ntu_ids} to be {status}", check, timeout=timeout)


@contextlib.contextmanager
def running(cluster: Cluster) -> Iterator[Cluster]:
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
