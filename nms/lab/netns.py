"""Thin helpers around the ``ip``, ``sysctl`` and ``nft`` commands.

Everything the lab does to the kernel goes through :func:`run`, so a failing command
raises one :class:`LabCommandError` that carries the command line and its stderr.
Several ``ip`` commands are sent as one ``ip -batch -`` process: one fork per batch
instead of one per route keeps a fleet's ``up()`` in the tens of milliseconds.

    NmsError
    └── LabError              the simulated NTU lab could not do what was asked
        └── LabCommandError   one of ip / sysctl / nft / kill failed (argv, stderr)
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from nms.errors import NmsError

log = logging.getLogger("nms.lab")

NETNS_DIR = Path("/run/netns")
SYS_NET = Path("/sys/class/net")


class LabError(NmsError):
    """The simulated NTU lab could not do what was asked."""


class LabCommandError(LabError):
    """A command run by the lab failed; ``argv``, ``returncode`` and ``stderr`` say how."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)!r} failed with code {returncode}: {stderr.strip()}")
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr


def run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    """Run one command, return its stdout; raise :class:`LabCommandError` if it fails."""
    proc = subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, check=False, timeout=30
    )
    if check and proc.returncode != 0:
        raise LabCommandError(argv, proc.returncode, proc.stderr)
    return proc.stdout


def ip_batch(lines: Iterable[str], *, netns: str | None = None, force: bool = False) -> None:
    """Run ``ip`` commands (written without the leading ``ip``) as one batch.

    ``netns`` runs them inside that namespace (``ip -n NS``). Without ``force`` the
    batch stops at the first failing line; with it every line is tried and errors
    (e.g. deleting what is already gone) are ignored.
    """
    script = "".join(f"{line}\n" for line in lines)
    if not script:
        return
    argv = ["ip"]
    if netns is not None:
        argv += ["-n", netns]
    if force:
        argv.append("-force")
    argv += ["-batch", "-"]
    run(argv, stdin=script, check=not force)


def netns_exec(netns: str, argv: Sequence[str], *, stdin: str | None = None) -> str:
    """Run one command inside a namespace (``ip netns exec``)."""
    return run(["ip", "netns", "exec", netns, *argv], stdin=stdin)


def sysctl_in(netns: str, settings: dict[str, str]) -> None:
    """Set sysctls inside a namespace in one process."""
    netns_exec(netns, ["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in settings.items())])


def nft_in(netns: str, script: str) -> None:
    """Load an nftables script (one atomic transaction) inside a namespace."""
    netns_exec(netns, ["nft", "-f", "-"], stdin=script)


def write_host_sysctl(key: str, value: str) -> None:
    """Set a sysctl of the host namespace by writing its /proc file (no fork)."""
    Path("/proc/sys", *key.split(".")).write_text(f"{value}\n")


def namespaces() -> set[str]:
    """Names of the network namespaces known to ``ip netns`` on this machine."""
    try:
        return {entry.name for entry in NETNS_DIR.iterdir()}
    except FileNotFoundError:
        return set()


def link_exists(name: str) -> bool:
    """Whether a network device of that name exists in the host namespace."""
    return (SYS_NET / name).exists()


def wait_links_gone(names: Iterable[str], *, timeout: float = 10.0) -> None:
    """Wait until the host-side devices are gone: ``ip netns del`` is asynchronous."""
    pending = [name for name in names if link_exists(name)]
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise LabError(f"devices still present {timeout:.0f} s after netns del: {pending}")
        time.sleep(0.01)
        pending = [name for name in pending if link_exists(name)]


def netns_pids(netns: str) -> set[int]:
    """PIDs of the processes running inside a namespace."""
    out = run(["ip", "netns", "pids", netns], check=False)
    return {int(word) for word in out.split() if word.isdigit()}


def process_start_time(pid: int) -> int | None:
    """Start time of a process (clock ticks since boot), or None if it does not exist.

    Recorded next to a PID so that a recycled PID is not taken for the original owner.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # a zombie has exited; it only waits to be reaped
        return None
    return int(fields[19])


def pid_alive(pid: int, start_time: int | None) -> bool:
    """Whether the process ``pid`` that started at ``start_time`` still runs."""
    now_start = process_start_time(pid)
    if now_start is None:
        return False
    return start_time is None or now_start == start_time


def kill_pid(pid: int, *, start_time: int | None, timeout: float = 3.0) -> None:
    """Terminate one process we started (SIGTERM, then SIGKILL), if it is still ours."""
    if not pid_alive(pid, start_time):
        return
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid, start_time):
        if time.monotonic() > deadline:
            log.warning("pid %d ignored SIGTERM; sending SIGKILL", pid)
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                return
            break
        time.sleep(0.01)
