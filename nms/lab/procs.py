"""Stopping a child process we started: SIGTERM, a bounded wait, then SIGKILL.

Shared by the lab's agents (snmpd, snmpsim, the latency responder), the demo and the
tests' process fixtures, so every one of them stops the same way and none can hang a
run on a child that ignores SIGTERM. Only ever a process we started, by its handle.
"""

from __future__ import annotations

import signal
import subprocess


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str], *, timeout: float) -> bool:
    """SIGTERM ``proc`` and wait up to ``timeout`` s; SIGKILL it if it is still there.

    Returns:
        True if it was gone or exited by itself within ``timeout``, False if it had
        to be killed. Idempotent.
    """
    if proc.poll() is not None:
        return True
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_process(proc)
        return False
    return True


def kill_process(
    proc: subprocess.Popen[bytes] | subprocess.Popen[str], *, timeout: float = 10
) -> None:
    """``kill -9``: no chance to clean up (and wait, so no zombie is left)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=timeout)
