"""How the parts are built from the settings: one builder each, used by every process.

The settings are read here and nowhere else: each builder hands a component the
section it owns (``settings.cases`` to the case services, ``settings.probes.icmp``
to the ICMP loop), once. ``nms run``, ``nms detector``, ``nms probe`` and ``nms api``
differ only in which of these they build and how they connect them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from caseapi.app import (
    CaseServices,
    CaseWorkers,
    ProbeShards,
    RateLimiter,
    build_services,
    configure_board,
    create_app,
)
from caseapi.database import DatabaseUnavailableError, mask_url, migrate
from caseapi.secrets import SecretBox, seal_webhook_secrets
from caseapi.settings import AttachmentSettings, BoardSettings
from nms.app.secrets import owned_box, settings_box, settings_keys
from nms.app.settings import ApiSettings, NotificationSettings, Settings, split_listen
from nms.bus.batch import Batch
from nms.bus.mqtt import MqttBusSettings
from nms.bus.mqtt.tls import TlsError, TlsFiles, client_context
from nms.clock import Clock
from nms.detector.engine import profile_thresholds
from nms.detector.migrate import migrate_detector_state
from nms.errors import ConfigError
from nms.inventory.loader import InventoryCache, load_inventory
from nms.inventory.model import Inventory
from nms.noc.probe_metrics import ProbeStats
from nms.organisation.loader import load_organisation
from nms.organisation.model import Organisation
from nms.probing.icmp_loop import ProbeLoop, sweep_settings
from nms.probing.snmp_loop import SnmpLoop, client_settings
from probes.icmp.sweeper import IcmpSweeper
from probes.snmp.client import ClientStats, SnmpClient
from probes.snmp.poller import SnmpPoller
from probes.snmp.traps import TrapListener, TrapStats
from probes.snmp.traps import TrapSettings as ListenerSettings

log = logging.getLogger("nms.runtime")

Publish = Callable[[Batch], Awaitable[None]]

_DB_RETRY_CAP = 30.0


# -- inventory and bus --------------------------------------------------------------


def load_checked_inventory(
    settings: Settings, *, required: bool = True, cache: InventoryCache | None = None
) -> Inventory:
    """The inventory file of ``inventory.path``, validated with the detector's profiles.

    ``cache`` remembers the file's entries for the reloads (``InventoryReloader``).

    Raises:
        ConfigError: ``required`` and no inventory file is configured.
        InventoryError: the file is invalid (every problem, with file, line and field).
    """
    path = settings.inventory.path
    if path is None:
        if required:
            raise ConfigError(["inventory.path: needed by this command (--inventory FILE)"])
        log.warning("no inventory given (--inventory FILE): nothing to probe")
        return Inventory(customers=(), ntus=())
    inventory = load_settings_inventory(settings, path, cache=cache)
    profile_thresholds(inventory, settings.detector.degraded)
    return inventory


def load_checked_organisation(settings: Settings) -> Organisation:
    """The organisation file of ``organisation.file`` (empty when unset), checked
    against the calendars of ``cases.calendars`` and the mail template languages.

    Raises:
        OrganisationError: the file is invalid (every problem, with file, line and field).
    """
    path = settings.organisation.file
    if path is None:
        return Organisation()
    return load_organisation(
        path,
        calendars=frozenset(settings.cases.calendars),
        languages=settings.mail.templates().languages,
    )


def load_settings_inventory(
    settings: Settings, path: Path, *, cache: InventoryCache | None = None
) -> Inventory:
    """``load_inventory`` with the keys of ``settings`` for ``enc:`` SNMP credentials
    and the contact languages of its mail templates (``mail.templates_dir``).

    Raises:
        InventoryError: As ``load_inventory``.
        SecretKeyError: The keys cannot be used.
    """
    return load_inventory(
        path,
        secrets=settings_box(settings),
        languages=settings.mail.templates().languages,
        cache=cache,
    )


def bus_settings(settings: Settings) -> MqttBusSettings:
    """The MQTT bus of the distributed wiring (``bus.url`` is required there)."""
    bus = settings.bus
    if bus.url is None:
        raise ConfigError(["bus.url: needed by this command (e.g. NMS_BUS__URL=mqtt://host:1883)"])
    tls = None
    if bus.url.startswith("mqtts://"):
        tls = TlsFiles(ca=bus.tls_ca, cert=bus.tls_cert, key=bus.tls_key)
        try:
            client_context(tls)  # now, not at the first connect: bad PEM files exit 2
        except TlsError as exc:
            raise ConfigError([str(exc)]) from None
    return MqttBusSettings(
        url=bus.url,
        topic_prefix=bus.topic_prefix,
        session_expiry=bus.session_expiry.total_seconds(),
        buffer_batches=bus.buffer_batches,
        username=bus.username,
        password=bus.password.get_secret_value() if bus.password is not None else None,
        tls=tls,
    )


# -- the database -------------------------------------------------------------------


async def migrate_all(engine: AsyncEngine) -> None:
    """Bring the case service's tables, then the detector's, to their newest schema.

    The detector's first revision copies its state from the table older versions
    kept it in, which the case service's migrations created: so this order.
    """
    await migrate(engine)
    await migrate_detector_state(engine)


async def migrate_until_done(engine: AsyncEngine) -> None:
    """Migrate, waiting out a database that is not there yet (never a crash loop)."""
    delay = 0.5
    url = mask_url(str(engine.url))
    while True:
        try:
            await migrate_all(engine)
            log.info("database ready: %s", url)
            return
        except DatabaseUnavailableError as exc:
            log.warning("database unavailable (%s); retrying in %.0f s", exc, delay)
        # Real time, not the clock: this paces connection attempts to a real server.
        await asyncio.sleep(delay)
        delay = min(delay * 2, _DB_RETRY_CAP)


# -- the case side ------------------------------------------------------------------


def secret_box(settings: Settings) -> SecretBox | None:
    """The keys of a process that stores secrets (creates the default key file).

    Raises:
        SecretKeyError: The configured keys cannot be used.
    """
    return owned_box(keys=settings_keys(settings), database_url=settings.database.url)


async def seal_stored_secrets(
    sessionmaker: async_sessionmaker[AsyncSession], box: SecretBox | None
) -> None:
    """Check that every stored secret opens with ``box`` and encrypt any in clear.

    Raises:
        SecretDecryptError: The configured keys do not open them (exit 2).
    """
    stored = await seal_webhook_secrets(sessionmaker, box)
    if stored.rewritten:
        log.info("encrypted %d webhook secrets stored in clear", stored.rewritten)
    if stored.plain:
        log.warning("%d webhook secrets are stored in clear (no secret key)", stored.plain)


def build_case_services(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock
) -> CaseServices:
    """The case, incident (the detector's sink) and maintenance services."""
    return build_services(
        sessionmaker=sessionmaker,
        clock=clock,
        cases=settings.cases,
        maintenance=settings.maintenance,
    )


def build_case_workers(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    *,
    secrets: SecretBox | None = None,
) -> CaseWorkers:
    """The case ticker, the notification dispatcher and the maintenance notices."""
    return CaseWorkers(
        sessionmaker=sessionmaker,
        clock=clock,
        secrets=secrets,
        cases=settings.cases,
        notifications=settings.notifications,
        maintenance=settings.maintenance,
        audit=settings.audit,
        mail=settings.mail,
    )


def build_rate_limiter(settings: ApiSettings) -> RateLimiter:
    """The API's rate limits (``api.rate_limits``), shared with its metrics."""
    return RateLimiter(settings=settings.rate_limits)


def build_api(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    services: CaseServices,
    *,
    settings: ApiSettings | None = None,
    attachments: AttachmentSettings | None = None,
    rate_limiter: RateLimiter | None = None,
    extra_routers: Sequence[APIRouter] = (),
    notifications: NotificationSettings | None = None,
    secrets: SecretBox | None = None,
    board: BoardSettings | None = None,
    probe_shards: ProbeShards | None = None,
) -> FastAPI:
    """The case API over ``services`` (embedded and ``nms api``); rate limited by
    ``rate_limiter``, or by a new one from ``settings`` when omitted. Its console's NOC
    board gets ``board`` and shows ``probe_shards`` (``None``: not known here)."""
    api = settings or ApiSettings()
    app = create_app(
        sessionmaker=sessionmaker,
        case_service=services.cases,
        maintenance_service=services.maintenance,
        clock=clock,
        extra_routers=extra_routers,
        max_body_bytes=int(api.max_body),
        attachments=attachments,
        notifications=notifications,
        secrets=secrets,
        rate_limiter=rate_limiter or build_rate_limiter(api),
        trusted_proxies=api.trusted_proxies,
        sessions=api.sessions,
    )
    configure_board(app, settings=board or BoardSettings(), probe_shards=probe_shards)
    return app


def build_configured_api(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    services: CaseServices,
    *,
    rate_limiter: RateLimiter,
    secrets: SecretBox | None,
    extra_routers: Sequence[APIRouter],
    probe_shards: ProbeShards | None,
) -> FastAPI:
    """``build_api`` with the API, attachment, notification and board sections of
    ``settings`` (``nms run``'s API and ``nms api``'s workers)."""
    return build_api(
        sessionmaker,
        clock,
        services,
        settings=settings.api,
        attachments=settings.attachments,
        notifications=settings.notifications,
        board=settings.board,
        secrets=secrets,
        rate_limiter=rate_limiter,
        extra_routers=extra_routers,
        probe_shards=probe_shards,
    )


# -- the probes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probes:
    """The probe loops of this process (None: that probe is switched off)."""

    icmp: ProbeLoop | None
    snmp: SnmpLoop | None
    snmp_client: ClientStats | None
    traps: TrapStats | None


async def open_probes(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    *,
    publish: Publish,
    stats: ProbeStats,
    clock: Clock,
) -> Probes:
    """Open the ICMP sweeper, SNMP client and trap listener (closed with ``stack``)."""
    icmp = settings.probes.icmp
    probe_loop: ProbeLoop | None = None
    if icmp.enabled:
        sweeper = IcmpSweeper(settings=sweep_settings(icmp), privileged=icmp.privileged)
        await stack.enter_async_context(sweeper)
        probe_loop = ProbeLoop(
            sweeper=sweeper, settings=icmp, publish=publish, stats=stats, clock=clock
        )
    else:
        log.warning("ICMP probing is disabled (probes.icmp.enabled=false)")
    if not settings.probes.snmp.enabled:
        return Probes(icmp=probe_loop, snmp=None, snmp_client=None, traps=None)
    client = SnmpClient(settings=client_settings(settings.probes.snmp))
    await stack.enter_async_context(client)
    snmp_loop = SnmpLoop(
        poller=SnmpPoller(client=client, wall_clock=clock.now),
        settings=settings.probes.snmp,
        publish=publish,
        clock=clock,
    )
    trap_stats = None
    traps = settings.probes.snmp.traps
    if traps.enabled:
        trap_host, trap_port = split_listen(traps.listen)
        trap_listener = TrapListener(
            lookup=snmp_loop.trap_source,
            on_event=snmp_loop.on_trap,
            settings=ListenerSettings(host=trap_host, port=trap_port),
        )
        await stack.enter_async_context(trap_listener)
        trap_stats = trap_listener.stats
        log.info("listening for SNMP traps on %s", traps.listen)
    return Probes(icmp=probe_loop, snmp=snmp_loop, snmp_client=client.stats, traps=trap_stats)
