"""Shared test plumbing.

Integration tests need real things (root for the network-namespace lab, the
PostgreSQL server). Where one is missing they skip with a reason, except under
``CI=true``, where a missing capability is a failure, not a skip.
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip (or, under CI=true, fail) the calling test unless ``condition`` holds."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing capability under CI=true: {reason}")
    pytest.skip(reason)


def require_root() -> None:
    require(os.geteuid() == 0, "needs root (network namespaces and raw ICMP sockets)")
