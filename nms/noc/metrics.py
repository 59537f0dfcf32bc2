"""Prometheus metrics of the detector process, collected at scrape time, and /metrics.

``build_metrics`` makes a fresh registry with the two collectors, both read at
scrape time and never updated from hot paths:

* ``nms.noc.ntu_metrics.NmsCollector``: the detector's in-memory state (per NTU and
  fleet), the probe loops' counters and the SNMP client / trap listener counters.
* ``nms.noc.case_metrics.CaseStatsCollector``: the ``nms.noc.case_stats.CaseStats``
  snapshot of the case figures, which ``metrics_router`` refreshes (at most once per
  TTL) before it renders the page (``nms.noc.exposition``).

and, when the API runs in the same process, ``nms.noc.api_metrics.RateLimitCollector``.

Label cardinality (all label values come from closed sets or from the inventory; no
case reference, customer name or free text is ever a label):

==========================  ==========================================  ================
label                       values                                      bound
==========================  ==========================================  ================
``ntu``                     inventory NTU ids                           fleet size (100k)
``state``                   unknown, up, suspect, down, recovering,     6
                            unreachable
``priority``                P1, P2, P3                                  3
``status``                  the open case statuses                      6
``level``                   L1, L2, L3                                  3
``sla``                     first_response, repair                      2
``outcome``                 met, breached                               2
``probe``                   icmp, snmp                                  2
``kind``                    fixed counter names of the SNMP client      < 10
``limit``                   the ``api.rate_limits`` limit names         4
==========================  ==========================================  ================

Per-NTU families (``metrics.per_ntu``, see ``nms.noc.ntu_metrics``): with ``all``, 8
series per ICMP-only NTU and 15 per SNMP NTU (one more during an outage), plus one
``nms_ntu_open_case_age_seconds`` series per open incident: about 1M series at 100k
NTUs (a third with SNMP). With ``not_up`` the same for the NTUs not up or with an open
incident only; with ``none`` nothing per NTU. Everything else is a few dozen series.
A scrape may ask for a narrower mode than configured (``/metrics?per_ntu=none``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import APIRouter, HTTPException, Response
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.app import RateLimitStats
from nms.clock import Clock
from nms.detector.engine import Detector
from nms.noc.api_metrics import RateLimitCollector
from nms.noc.case_metrics import CaseStatsCollector
from nms.noc.case_stats import CaseStats
from nms.noc.exposition import CONTENT_TYPE, render_async
from nms.noc.ntu_metrics import (
    SCRAPE_PER_NTU,
    NmsCollector,
    PerNtu,
    always_leader,
    parse_per_ntu,
)
from nms.noc.probe_metrics import ProbeStats
from nms.noc.process_metrics import ProcessFigures, register_process_metrics


def metrics_router(
    registry: CollectorRegistry, *, case_stats: CaseStats | None = None
) -> APIRouter:
    """``GET /metrics``: refresh the case snapshot if it is older than its TTL, then render."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics(per_ntu: str | None = None) -> Response:
        if case_stats is not None:
            await case_stats.maybe_refresh()
        return await scrape(registry, per_ntu)

    return router


def proxied_metrics_router(socket_path: Path) -> APIRouter:
    """``GET /metrics`` answered with the page another process serves on the Unix
    socket ``socket_path`` (an API worker of ``nms run``: the probes and the detector
    live in ``nms run`` itself); 503 if it does not answer."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics(per_ntu: str | None = None) -> Response:
        params = {} if per_ntu is None else {"per_ntu": per_ntu}
        transport = httpx.AsyncHTTPTransport(uds=str(socket_path))
        try:
            async with httpx.AsyncClient(transport=transport, timeout=PROXY_TIMEOUT) as client:
                answer = await client.get("http://nms-run/metrics", params=params)
        except httpx.HTTPError as exc:
            raise HTTPException(
                status_code=503, detail=f"nms run's metrics did not answer: {exc!r}"
            ) from None
        return Response(
            answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type"),
        )

    return router


#: Seconds a proxied scrape may take (100,000 NTUs with every per-NTU series: ~1 s).
PROXY_TIMEOUT = 30.0


async def scrape(registry: CollectorRegistry, per_ntu: str | None) -> Response:
    """The page, per-NTU series narrowed to ``per_ntu`` if a scrape asks (Prometheus
    ``params: {per_ntu: [none]}``): a second, fleet-only Prometheus, or a cheap one."""
    try:
        asked = parse_per_ntu(per_ntu)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    token = SCRAPE_PER_NTU.set(asked)
    try:
        # to_thread copies this context: the collector sees the mode asked for.
        page = await render_async(registry)
    finally:
        SCRAPE_PER_NTU.reset(token)
    return Response(page, media_type=CONTENT_TYPE)


@dataclass(frozen=True, slots=True)
class Metrics:
    """What ``build_metrics`` made: serve ``registry`` with ``metrics_router``."""

    registry: CollectorRegistry
    collector: NmsCollector
    case_stats: CaseStats

    def router(self) -> APIRouter:
        """The ``/metrics`` route of this registry (refreshing ``case_stats``)."""
        return metrics_router(self.registry, case_stats=self.case_stats)


def build_metrics(
    *,
    detector: Detector,
    probes: ProbeStats | None,
    clock: Clock,
    sessionmaker: async_sessionmaker[AsyncSession],
    case_ttl: timedelta = timedelta(seconds=10),
    at_risk_within: timedelta = timedelta(minutes=15),
    leader: Callable[[], bool] = always_leader,
    rate_limits: RateLimitStats | Callable[[], RateLimitStats] | None = None,
    per_ntu: PerNtu = "all",
    process: Callable[[], ProcessFigures] | None = None,
) -> Metrics:
    """A fresh registry with both collectors (SNMP counters: ``collector.attach_snmp``),
    the API's rate limit counters when given ``rate_limits``, and the process's CPU,
    memory and collections (``process``: figures of more than this process)."""
    registry = CollectorRegistry()
    register_process_metrics(registry, process)
    if rate_limits is not None:
        registry.register(RateLimitCollector(rate_limits))
    collector = NmsCollector(
        detector=detector, probes=probes, clock=clock, leader=leader, per_ntu=per_ntu
    )
    registry.register(collector)
    stats = CaseStats(
        sessionmaker=sessionmaker, clock=clock, ttl=case_ttl, at_risk_within=at_risk_within
    )

    def exported() -> Iterable[str]:
        # The NTUs with per-NTU series on this page: a case's age series follows them.
        if collector.mode() == "all":
            return detector.ntus
        return [ntu for ntu, tracked in detector.ntus.items() if collector.exported(tracked)]

    registry.register(CaseStatsCollector(stats=stats, clock=clock, ntus=exported))
    return Metrics(registry=registry, collector=collector, case_stats=stats)
