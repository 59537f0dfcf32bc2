"""Shared test plumbing.

Integration tests need real things (root for the network-namespace lab, the
PostgreSQL server). Where one is missing they skip with a reason, except under
``CI=true``, where a missing capability is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from nms.app.loop import loop_factory

IN_CI = os.environ.get("CI", "").lower() == "true"
#: The ``user_properties`` name of a Schemathesis run's one-line summary
#: (tests/caseapi/test_schemathesis.py), printed after the run. Here, not in
#: tests/caseapi: with pytest-xdist only this conftest is loaded in the main process,
#: and a report's properties reach it from the workers (their ``config.stash`` would not).
SCHEMATHESIS_SUMMARY = "schemathesis summary"
_schemathesis_runs: list[str] = []


def require(condition: bool, reason: str) -> None:
    """Skip (or, under CI=true, fail) the calling test unless ``condition`` holds."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing capability under CI=true: {reason}")
    pytest.skip(reason)


def require_root() -> None:
    require(os.geteuid() == 0, "needs root (network namespaces and raw ICMP sockets)")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Async tests run on the loop the processes run on (nms.app.loop: uvloop)."""
    return {"uvloop": loop_factory("uvloop")}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":  # the set-up and teardown reports carry them too
        return
    _schemathesis_runs.extend(
        str(value) for name, value in report.user_properties if name == SCHEMATHESIS_SUMMARY
    )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print each Schemathesis run's summary line (operations, requests, failures)."""
    if _schemathesis_runs:
        terminalreporter.section("schemathesis")
        for line in _schemathesis_runs:
            terminalreporter.write_line(line)
