"""``nms_api_rate_limited_total{limit}``: 429s counted per limit, scraped from /metrics."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.app import Limit, RateLimitStats, build_services
from nms.app.settings import ApiSettings
from nms.app.wiring import build_api, build_rate_limiter
from nms.clock import FakeClock
from nms.noc.api_metrics import LIVE_WITHIN, RateLimitCollector, SharedStats, stats_to_json
from nms.noc.metrics import metrics_router
from nms.noc.process_metrics import ProcessFigures
from tests.caseapi.conftest import START

LIMITS = (
    "auth_failures_per_address",
    "auth_failures_per_key",
    "login_failures_per_address",
    "login_failures_per_account",
    "case_creation_per_customer",
    "comments_per_customer",
)


async def test_refusals_are_counted_per_limit_on_metrics(
    sqlite_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await _check(sqlite_sessionmaker)


async def _check(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = FakeClock(start=START)
    settings = ApiSettings(rate_limits={"auth_failures_per_address": "1/minute"})
    limiter = build_rate_limiter(settings)
    registry = CollectorRegistry()
    registry.register(RateLimitCollector(limiter.stats))
    app = build_api(
        sessionmaker,
        clock,
        build_services(sessionmaker=sessionmaker, clock=clock),
        settings=settings,
        rate_limiter=limiter,
        extra_routers=(metrics_router(registry),),
    )
    transport = httpx.ASGITransport(app=app, client=("127.0.0.2", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        bad = {"Authorization": "Bearer nms_" + "x" * 43}
        statuses = [(await client.get("/v1/cases", headers=bad)).status_code for _ in range(3)]
        page = (await client.get("/metrics")).text
    assert statuses == [401, 429, 429]
    families = {f.name: f for f in text_string_to_metric_families(page)}
    samples = {s.labels["limit"]: s.value for s in families["nms_api_rate_limited"].samples}
    assert samples == {limit: (2.0 if limit == LIMITS[0] else 0.0) for limit in LIMITS}
    assert families["nms_api_rate_limit_storage_errors"].samples[0].value == 0
    assert (
        registry.get_sample_value(
            "nms_api_rate_limited_total", {"limit": "auth_failures_per_address"}
        )
        == 2
    )


def test_workers_counters_are_summed_and_never_go_back(tmp_path: Path) -> None:
    one, two = RateLimitStats(), RateLimitStats()
    first = SharedStats(tmp_path, "worker-1", one)
    second = SharedStats(tmp_path, "worker-2", two)
    one.rejected[Limit.AUTH_FAILURES_PER_ADDRESS] += 2
    two.rejected[Limit.AUTH_FAILURES_PER_ADDRESS] += 3
    two.storage_errors += 1
    second.publish()
    # Whichever answers the scrape: its own figures now, the other's as published.
    for answering in (first, second):
        total = answering.total()
        assert total.rejected[Limit.AUTH_FAILURES_PER_ADDRESS] == 5
        assert total.storage_errors == 1
    # Worker 1 ends and a new process takes its place from zero: the sum stays.
    restarted = SharedStats(tmp_path, "worker-3", RateLimitStats())
    assert restarted.total().rejected[Limit.AUTH_FAILURES_PER_ADDRESS] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "worker-1.json",
        "worker-2.json",
        "worker-3.json",
    ]


def test_workers_process_figures_are_summed_memory_only_of_live_ones(tmp_path: Path) -> None:
    one = ProcessFigures(1.5, 100 << 20, (10, 2, 1), (0.5, 0.25, 1.0), (7, 0, 3))
    two = ProcessFigures(2.0, 50 << 20, (1, 1, 1), (0.5, 0.5, 0.5), (1, 1, 1))
    first = SharedStats(tmp_path, "worker-1", RateLimitStats(), figures=lambda: one)
    second = SharedStats(tmp_path, "worker-2", RateLimitStats(), figures=lambda: two)
    second.publish()
    both = first.process_total()
    assert both == ProcessFigures(3.5, 150 << 20, (11, 3, 2), (1.0, 0.75, 1.5), (8, 1, 4))
    # Worker 2 stops publishing (it died): its memory leaves the sum, its counters stay.
    dead = time.time() - LIVE_WITHIN - 1
    os.utime(tmp_path / "worker-2.json", (dead, dead))
    assert first.process_total() == ProcessFigures(
        3.5, 100 << 20, (11, 3, 2), (1.0, 0.75, 1.5), (8, 1, 4)
    )
    # A file of an older version (no process figures) adds nothing and breaks nothing.
    (tmp_path / "worker-0.json").write_text(stats_to_json(RateLimitStats()))
    assert first.process_total().cpu_seconds == 3.5
    assert first.total().storage_errors == 0
