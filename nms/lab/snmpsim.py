"""``snmpsim`` inside a lab namespace (or on loopback), serving recorded real devices.

The recordings come from the ``snmpsim-data`` package; each chosen one is
decompressed into a private temp directory, and snmpsim serves it under the
community equal to its file stem (snmpsim's convention). The process is started
and stopped by its PID only. snmpsim needs a writable cache directory for its
indices and, as root, a user to switch to: we keep root because its index
backend (``dbm``) fails to load after switching to ``nobody`` in this venv.
"""

from __future__ import annotations

import bz2
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path

from nms.lab import netns
from nms.lab.procs import stop_process

log = logging.getLogger("nms.lab")

# Recordings with a populated IF-MIB (ifTable and ifXTable), by community.
RECORDINGS: dict[str, str] = {
    "vyatta": "network/router/vyatta-unknown.snmprec.bz2",
    "c3560": "network/switch/cisco-c3560.snmprec.bz2",
    "mx960": "network/router/juniper-mx960-12-3r6-6.snmprec.bz2",
    "s5720": "network/router/huawei-s5720.snmprec.bz2",
}


def data_root() -> Path:
    """Where the ``snmpsim-data`` package keeps its recordings."""
    import snmpsim_data  # the package ships data only

    return Path(snmpsim_data.__file__).parent / "data"


class SnmpsimAgent:
    """One ``snmpsim-command-responder`` process serving ``RECORDINGS`` by community."""

    def __init__(
        self,
        *,
        address: IPv4Address,
        port: int = 161,
        netns: str | None = None,
        recordings: dict[str, str] | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        """Args:
        address: where to listen (127.0.0.0/8, or a lab address inside ``netns``).
        port: UDP port.
        netns: the lab namespace to run in; None runs on the host (loopback only).
        recordings: community -> path under :func:`data_root`.
        ready_timeout: seconds to wait for the first answer.
        """
        if netns is None and not address.is_loopback:
            raise ValueError("outside a lab namespace snmpsim may only listen on 127.0.0.0/8")
        self.address = address
        self.port = port
        self.netns = netns
        self.recordings = dict(recordings or RECORDINGS)
        self._ready_timeout = ready_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def data_file(self, community: str) -> Path:
        """The decompressed recording served under ``community`` (while running)."""
        assert self._workdir is not None
        return self._workdir / "data" / f"{community}.snmprec"

    def start(self) -> None:
        """Copy the recordings, start snmpsim and wait until it answers."""
        workdir = Path(tempfile.mkdtemp(prefix="nms-lab-snmpsim-"))
        self._workdir = workdir
        (workdir / "data").mkdir()
        (workdir / "cache").mkdir()
        root = data_root()
        for community, rel in self.recordings.items():
            source = root / rel
            target = workdir / "data" / f"{community}.snmprec"
            if source.suffix == ".bz2":
                target.write_bytes(bz2.decompress(source.read_bytes()))
            else:
                shutil.copyfile(source, target)
        responder = Path(sys.executable).with_name("snmpsim-command-responder")
        argv = [
            str(responder),
            f"--data-dir={workdir / 'data'}",
            f"--cache-dir={workdir / 'cache'}",
            f"--agent-udpv4-endpoint={self.address}:{self.port}",
            "--process-user=root",
            "--process-group=root",
            f"--logging-method=file:{workdir / 'snmpsim.log'}",
        ]
        if self.netns is not None:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_ready()
        log.info("snmpsim pid %d serving %s:%d", self._proc.pid, self.address, self.port)

    def _wait_ready(self) -> None:
        assert self._proc is not None
        community = next(iter(self.recordings))
        deadline = time.monotonic() + self._ready_timeout
        argv = ["snmpget", "-v2c", "-c", community, "-t", "0.5", "-r", "0", "-On"]
        argv += [f"{self.address}:{self.port}", "1.3.6.1.2.1.1.3.0"]
        if self.netns is not None:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.stop()
                raise netns.LabError("snmpsim exited at start")
            done = subprocess.run(argv, capture_output=True, check=False, timeout=10)
            if done.returncode == 0:
                return
            time.sleep(0.2)
        self.stop()
        raise netns.LabError("snmpsim did not answer in time")

    def stop(self) -> None:
        """Stop by PID (SIGTERM, then SIGKILL) and remove the temp dir. Idempotent."""
        proc = self._proc
        if proc is not None:
            stop_process(proc, timeout=5)
        self._proc = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
