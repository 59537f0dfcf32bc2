"""Who owns which lab namespace, across processes.

Several fleets may be built at once on one machine (other test runs, the demo, a
benchmark). They coordinate through an exclusive ``flock`` on ``/run/nms-lab.lock``:

- under the lock a fleet picks free host indices (no ``ntulab<k>`` namespace, no
  leftover ``vntu<k>`` device) and writes an owner record
  ``/run/nms-lab/ntulab<k>.json`` (PID, process start time, fleet token, PIDs of the
  processes it started inside) *before* it creates the namespace;
- the safety routes (unreachable 169.254.0.0/16 and fd4e:5455::/32) are installed
  before any lab address exists and removed only when, after a teardown, no
  ``ntulab`` namespace (and no hold) is left - all under the same lock;
- :func:`safety_routes` holds the safety routes for code that uses lab addresses
  without a fleet (recorded as ``/run/nms-lab/hold-<token>.json``, dropped if its
  process is gone);
- :func:`cleanup_stale` removes namespaces whose owner process is gone (a run that
  was killed), after stopping the processes that owner recorded as started inside.

The lock is not re-entrant: functions named ``*_locked`` expect the caller to hold it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from nms.lab import netns
from nms.lab.plan import MAX_HOSTS, NETNS_PREFIX, VETH_PREFIX, safety_route_lines

log = logging.getLogger("nms.lab")

LOCK_PATH = Path("/run/nms-lab.lock")
STATE_DIR = Path("/run/nms-lab")
_LAB_NETNS = re.compile(rf"^{NETNS_PREFIX}(\d+)$")
_HOLD_PREFIX = "hold-"


@dataclass(slots=True)
class OwnerRecord:
    """Who created a lab namespace, and which processes it started inside."""

    pid: int
    start_time: int | None
    token: str
    procs: list[tuple[int, int | None]] = field(default_factory=list)

    def alive(self) -> bool:
        return netns.pid_alive(self.pid, self.start_time)


@contextmanager
def locked() -> Iterator[None]:
    """Hold the machine-wide lab lock."""
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_PATH.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lab_namespaces() -> set[str]:
    """The ``ntulab<k>`` namespaces that exist now (any owner)."""
    return {name for name in netns.namespaces() if _LAB_NETNS.match(name)}


def _record_path(name: str) -> Path:
    return STATE_DIR / f"{name}.json"


def read_record(name: str) -> OwnerRecord | None:
    """The owner record of a namespace, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads(_record_path(name).read_text())
        return OwnerRecord(
            pid=int(data["pid"]),
            start_time=data["start_time"],
            token=str(data["token"]),
            procs=[(int(pid), start) for pid, start in data.get("procs", [])],
        )
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def write_record(name: str, record: OwnerRecord) -> None:
    """Write (atomically replace) the owner record of a namespace."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    path = _record_path(name)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {
                "pid": record.pid,
                "start_time": record.start_time,
                "token": record.token,
                "procs": record.procs,
            }
        )
    )
    tmp.replace(path)


def remove_record(name: str) -> None:
    _record_path(name).unlink(missing_ok=True)


def new_record(token: str) -> OwnerRecord:
    """An owner record for the current process."""
    pid = os.getpid()
    return OwnerRecord(pid=pid, start_time=netns.process_start_time(pid), token=token)


def allocate_locked(count: int) -> list[int]:
    """Pick ``count`` free host indices (lowest first); the caller holds the lock."""
    taken = lab_namespaces()
    free = [
        k
        for k in range(1, MAX_HOSTS + 1)
        if f"{NETNS_PREFIX}{k}" not in taken and not netns.link_exists(f"{VETH_PREFIX}{k}")
    ]
    if len(free) < count:
        raise netns.LabError(
            f"need {count} free lab host indices, only {len(free)} of {MAX_HOSTS} are free"
            f" (lab namespaces in use: {sorted(taken)})"
        )
    return free[:count]


def install_safety_routes_locked() -> None:
    """Unreachable routes for the whole lab range: a down lab link fails locally."""
    netns.ip_batch(safety_route_lines("replace"))


def _live_holds_locked() -> list[str]:
    """Holds (see :func:`safety_routes`) whose process still runs; drops stale ones."""
    live = []
    for path in STATE_DIR.glob(f"{_HOLD_PREFIX}*.json") if STATE_DIR.exists() else []:
        record = read_record(path.stem)
        if record is not None and record.alive():
            live.append(path.stem)
        else:
            path.unlink(missing_ok=True)
    return live


def remove_safety_routes_if_unused_locked() -> bool:
    """Remove the safety routes if no lab namespace or hold is left; return whether removed."""
    remaining = sorted(lab_namespaces()) + _live_holds_locked()
    if remaining:
        log.debug("keeping lab safety routes: %s still exist", remaining)
        return False
    netns.ip_batch(safety_route_lines("del"), force=True)
    log.info("lab safety routes removed (no lab namespace left)")
    return True


def delete_namespaces_locked(names: list[str], veths: list[str]) -> None:
    """Delete namespaces and wait until their host-side veths are gone."""
    existing = netns.namespaces()
    netns.ip_batch([f"netns del {name}" for name in names if name in existing], force=True)
    netns.wait_links_gone(veths)


def stop_recorded_procs(name: str, record: OwnerRecord) -> None:
    """Stop the processes the owner recorded as started inside namespace ``name``.

    Only PIDs that are both recorded by the lab and still inside that namespace are
    signalled, so a recycled PID elsewhere is never touched.
    """
    inside = netns.netns_pids(name) if name in netns.namespaces() else set()
    for pid, start_time in record.procs:
        if pid in inside:
            log.info("stopping pid %d left in %s", pid, name)
            netns.kill_pid(pid, start_time=start_time)


@contextmanager
def safety_routes() -> Iterator[None]:
    """Install the lab safety routes and keep them for the duration of the block.

    For code that sends to lab addresses without a fleet (e.g. to see EHOSTUNREACH):
    a fleet being torn down elsewhere meanwhile will not remove the routes under it.
    """
    token = uuid.uuid4().hex
    name = f"{_HOLD_PREFIX}{token}"
    with locked():
        write_record(name, new_record(token))
        install_safety_routes_locked()
    try:
        yield
    finally:
        with locked():
            remove_record(name)
            remove_safety_routes_if_unused_locked()


def cleanup_stale() -> list[str]:
    """Delete lab namespaces whose owner process no longer runs; return their names."""
    with locked():
        return cleanup_stale_locked()


def cleanup_stale_locked() -> list[str]:
    """:func:`cleanup_stale` for a caller that already holds the lock."""
    stale: list[str] = []
    for name in sorted(lab_namespaces()):
        record = read_record(name)
        if record is not None and record.alive():
            continue
        if record is not None:
            stop_recorded_procs(name, record)
        stale.append(name)
    if stale:
        veths = [VETH_PREFIX + name.removeprefix(NETNS_PREFIX) for name in stale]
        log.warning("removing stale lab namespaces (owner gone): %s", stale)
        delete_namespaces_locked(stale, veths)
    # Records without a namespace are leftovers of a killed run, never of a live one:
    # a live owner writes its record and creates its namespace under one lock hold.
    if STATE_DIR.exists():
        live = lab_namespaces()
        for path in STATE_DIR.glob(f"{NETNS_PREFIX}*.json"):
            if path.stem not in live:
                path.unlink(missing_ok=True)
    if stale:
        remove_safety_routes_if_unused_locked()
    return stale
