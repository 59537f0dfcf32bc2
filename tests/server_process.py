"""What the test servers (``tests.dovecot``, ``tests.mosquitto``) share: starting one
in the background, and its logs for a failure message."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


def spawn(
    argv: Sequence[str], stderr_path: Path, *, own_group: bool = False
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with no input, its output discarded and its errors appended to
    ``stderr_path``; ``own_group``: in a process group of its own (to end it with its
    children at once)."""
    with stderr_path.open("ab") as stderr:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=own_group,
        )


def log_tails(*paths: Path) -> str:
    """The last 2000 characters of each of ``paths`` that exists, for an error message."""
    parts = []
    for path in paths:
        if path.exists():
            parts.append(f"{path.name}: {path.read_text(errors='replace')[-2000:]}")
    return "; ".join(parts) or "no output"
