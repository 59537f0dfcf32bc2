"""``nms probe --shard I/N``: one probe worker of the distributed wiring.

It sweeps the NTUs (and upstream nodes) whose id hashes to its shard, publishes the
results and a heartbeat to the MQTT bus, and applies the ``skip`` maintenance set the
detector publishes. It needs no database, so a database outage never stops probing;
while the broker is away it keeps a bounded buffer (oldest dropped, counted). The
broker sends the worker's will when it vanishes, so the detector sees it go at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Any, cast

from prometheus_client import CollectorRegistry

from caseapi.database import mask_url
from nms.app.process import (
    FileWatch,
    StopRequestedError,
    api_server,
    instance_name,
    listen_socket,
    remove_signal_handlers,
    status_app,
    stop_event,
)
from nms.app.settings import Settings, format_duration
from nms.app.wiring import (
    bus_settings,
    load_checked_inventory,
    load_settings_inventory,
    open_probes,
)
from nms.bus.mqtt import MqttBus
from nms.bus.wire import Heartbeat, SkipSet
from nms.clock import Clock
from nms.errors import InventoryError
from nms.inventory.model import Inventory
from nms.noc.cluster_metrics import BusCollector
from nms.noc.probe_metrics import ProbeCollector, ProbeStats
from nms.noc.process_metrics import register_process_metrics
from nms.probing.shard import Shard
from nms.probing.targets import TargetPlanner

log = logging.getLogger("nms.probe")


def shard_inventory(inventory: Inventory, shard: Shard) -> Inventory:
    """The NTUs and upstream nodes this shard probes (customers and profiles stay)."""
    return Inventory(
        customers=inventory.customers,
        ntus=tuple(n for n in inventory.ntus if shard.owns(n.id)),
        source=inventory.source,
        profiles=inventory.profiles,
        nodes=tuple(n for n in inventory.nodes if shard.owns(n.id)),
    )


async def run_probe(settings: Settings, shard: Shard, *, clock: Clock) -> None:
    """Probe shard ``shard`` of the inventory until SIGTERM / SIGINT."""
    inventory = load_checked_inventory(settings)
    mine = shard_inventory(inventory, shard)
    source = instance_name(f"probe-{shard.slug}")
    bus_config = bus_settings(settings)  # before the socket: a config error leaks nothing
    listener = listen_socket(settings.cluster.probe_listen, "cluster.probe_listen")
    stats = ProbeStats()
    bus = MqttBus(
        bus_config,
        client_id=source,
        source=source,
        # Its topics: probes/probe-<I>of<N>/..., the user name the broker's ACL lets
        # this shard write under (its certificate's common name).
        sender=f"probe-{shard.slug}",
        subscribe=["control/skip"],
        will=Heartbeat(
            shard=shard.label,
            alive=False,
            icmp_targets=0,
            snmp_targets=0,
            cycles=0,
            overruns=0,
            buffered=0,
            dropped=0,
        ),
        clock=clock,
    )
    registry = CollectorRegistry()
    register_process_metrics(registry)
    probe_collector = ProbeCollector(stats)
    registry.register(probe_collector)
    registry.register(BusCollector(bus.stats, role="probe"))

    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "role": "probe",
            "shard": shard.label,
            "ntus": len(mine.ntus) + len(mine.nodes),
            "bus_connected": bus.stats.connected,
        }

    app = status_app(health=health, registry=lambda: registry)
    server = api_server(app)
    stop = stop_event()
    try:
        async with contextlib.AsyncExitStack() as stack:
            probes = await open_probes(
                stack, settings, publish=bus.publish, stats=stats, clock=clock
            )
            if probes.snmp is not None:
                probe_collector.attach_snmp(probes.snmp, probes.snmp_client, probes.traps)
            planner = TargetPlanner(inventory=mine, icmp=probes.icmp, snmp=probes.snmp)

            async def reload() -> None:
                nonlocal mine
                try:
                    new = load_settings_inventory(settings, cast(Path, settings.inventory.path))
                except InventoryError as exc:
                    log.error(
                        "inventory reload rejected, keeping the running one:\n  %s",
                        "\n  ".join(exc.problems),
                    )
                    return
                mine = shard_inventory(new, shard)
                planner.set_inventory(mine)
                log.info("inventory reloaded: %d NTUs in shard %s", len(mine.ntus), shard)

            def heartbeat(alive: bool) -> Heartbeat:
                return Heartbeat(
                    shard=shard.label,
                    alive=alive,
                    icmp_targets=stats.targets,
                    snmp_targets=sum(1 for n in mine.ntus if n.snmp is not None),
                    cycles=stats.cycles,
                    overruns=stats.overruns,
                    buffered=bus.stats.buffered,
                    dropped=bus.stats.dropped,
                )

            async def beat() -> None:
                period = settings.bus.heartbeat.total_seconds()
                while True:
                    await bus.send(heartbeat(alive=True))
                    await clock.sleep(period)

            async def control() -> None:
                async for message in bus.received():
                    if isinstance(message.payload, SkipSet):
                        planner.set_skip(frozenset(message.payload.ntu_ids))

            async def stopper() -> None:
                await stop.wait()
                log.info("stopping: telling the detector this shard is going")
                server.should_exit = True
                await _say_goodbye(bus, heartbeat(alive=False))
                raise StopRequestedError

            watcher = FileWatch(cast(Path, settings.inventory.path), reload, clock=clock)
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, watcher.requested.set)
            log.info(
                "probe shard %s: %d of %d NTUs (+%d upstream nodes), ICMP every %s; "
                "bus %s; /metrics on http://%s",
                shard,
                len(mine.ntus),
                len(inventory.ntus),
                len(mine.nodes),
                format_duration(settings.probes.icmp.interval),
                mask_url(settings.bus.url or ""),  # it may carry a password
                settings.cluster.probe_listen,
            )
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(server.serve(sockets=[listener]), name="status")
                    tasks.create_task(bus.run(), name="bus")
                    tasks.create_task(beat(), name="heartbeat")
                    tasks.create_task(control(), name="control")
                    tasks.create_task(
                        watcher.run(settings.inventory.watch_interval.total_seconds()),
                        name="inventory-watch",
                    )
                    if probes.icmp is not None:
                        tasks.create_task(probes.icmp.run(), name="icmp-probe")
                    if probes.snmp is not None:
                        tasks.create_task(probes.snmp.run(), name="snmp-probe")
                    tasks.create_task(stopper(), name="stop")
            except* StopRequestedError:
                pass
    finally:
        remove_signal_handlers()
        listener.close()
    log.info("stopped cleanly")


async def _say_goodbye(bus: MqttBus, heartbeat: Heartbeat) -> None:
    """A clean stop says so at once (the broker sends the will only when we vanish)."""
    await bus.send(heartbeat)
    try:
        async with asyncio.timeout(2):
            await bus.flush()
    except TimeoutError:
        log.warning("could not tell the broker this shard stops; it goes stale instead")
