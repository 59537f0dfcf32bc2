"""One net-snmp ``snmpd`` inside a lab namespace, answering for many NTU addresses.

One agent listens on every address given on its command line, or, given none, on the
wildcard address: the namespace owns its whole NTU prefix, and snmpd answers from the
address a request was sent to, so one socket serves all of the host's NTUs.
:meth:`SnmpdAgent.restart` simulates a reboot: sysUpTime starts again from zero.
The agent is stopped by its PID only.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

from nms.lab import netns
from nms.lab.plan import LAB_V4, LAB_V6
from nms.lab.procs import stop_process

log = logging.getLogger("nms.lab")

SNMP_PORT = 161
_READY_MARK = "NET-SNMP version"


def listen_spec(addresses: list[IPv4Address | IPv6Address], *, port: int = SNMP_PORT) -> str:
    """snmpd's listening addresses; an empty list means every address (v4 and v6)."""
    if not addresses:
        return f"udp:0.0.0.0:{port},udp6:[::]:{port}"
    return ",".join(
        f"udp:{a}:{port}" if isinstance(a, IPv4Address) else f"udp6:[{a}]:{port}" for a in addresses
    )


def config_text(*, community: str, sys_name: str, sys_descr: str) -> str:
    """snmpd.conf: read-only community for the lab ranges and the system group."""
    return (
        f"rocommunity {community} {LAB_V4}\n"
        f"rocommunity {community} 127.0.0.0/8\n"
        f"rocommunity6 {community} {LAB_V6}\n"
        f"sysName {sys_name}\n"
        f"sysDescr {sys_descr}\n"
        "sysLocation nms lab\n"
        "sysContact nms-lab@example.invalid\n"
        "sysServices 72\n"
    )


class SnmpdAgent:
    """A net-snmp agent process inside one lab namespace."""

    def __init__(
        self,
        *,
        netns: str,
        addresses: list[IPv4Address | IPv6Address],
        community: str = "public",
        sys_name: str = "ntu",
        sys_descr: str = "nms lab NTU (net-snmp)",
        port: int = SNMP_PORT,
        on_pid_change: Callable[[], None] | None = None,
        ready_timeout: float = 10.0,
    ) -> None:
        if not community or any(c.isspace() for c in community):
            raise ValueError(f"community must be a non-empty word, got {community!r}")
        if not 1 <= port <= 65535:
            raise ValueError(f"port must be within 1..65535, got {port}")
        # One argv string may not exceed 128 KiB (MAX_ARG_STRLEN).
        if len(listen_spec(addresses, port=port)) > 100_000:
            raise ValueError(
                f"{len(addresses)} listening addresses are too many for one command line;"
                " pass none to listen on the wildcard address"
            )
        self.netns = netns
        self.addresses = list(addresses)
        self.community = community
        self.sys_name = sys_name
        self.sys_descr = sys_descr
        self.port = port
        self._on_pid_change = on_pid_change
        self._ready_timeout = ready_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None

    @property
    def pid(self) -> int | None:
        """PID of the running agent, or None."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the agent and wait until it has opened its sockets."""
        if self.running:
            return
        workdir = Path(tempfile.mkdtemp(prefix=f"nms-lab-snmpd-{self.netns}-"))
        self._workdir = workdir
        conf = workdir / "snmpd.conf"
        logfile = workdir / "snmpd.log"
        conf.write_text(
            config_text(community=self.community, sys_name=self.sys_name, sys_descr=self.sys_descr)
        )
        # Own persistent dir: agents of other hosts must not share /var/lib/snmp.
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(workdir), "MIBS": ""}
        argv = [
            "ip", "netns", "exec", self.netns,
            "snmpd", "-f", "-C", "-c", str(conf), "-Lf", str(logfile),
            "-p", str(workdir / "snmpd.pid"),
            listen_spec(self.addresses, port=self.port),
        ]  # fmt: skip
        # `ip netns exec` execs snmpd, so the Popen PID is snmpd's own.
        self._proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._wait_ready(logfile)
        log.info(
            "snmpd pid %d started in %s on %d address(es)",
            self._proc.pid, self.netns, len(self.addresses) or 1,
        )  # fmt: skip
        if self._on_pid_change is not None:
            self._on_pid_change()

    def _wait_ready(self, logfile: Path) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self._ready_timeout
        while True:
            text = logfile.read_text(errors="replace") if logfile.exists() else ""
            if _READY_MARK in text:
                return
            if self._proc.poll() is not None:
                self._cleanup()
                raise netns.LabError(f"snmpd in {self.netns} exited at start: {text.strip()}")
            if time.monotonic() > deadline:
                self.stop()
                raise netns.LabError(f"snmpd in {self.netns} not ready: {text.strip()}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop the agent (SIGTERM, then SIGKILL), by its PID. Idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            stop_process(proc, timeout=3)
            log.info("snmpd pid %d in %s stopped", proc.pid, self.netns)
        self._cleanup()

    def _cleanup(self) -> None:
        self._proc = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def restart(self) -> None:
        """Stop and start again: to a poller this looks like a reboot."""
        self.stop()
        self.start()
