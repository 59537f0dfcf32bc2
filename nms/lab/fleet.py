"""A fleet of simulated NTUs: lab hosts in network namespaces on this machine.

Usage::

    with LabFleet(hosts=3, ntus_per_host=100) as fleet:
        targets = fleet.addresses            # 300 IPv4 addresses that answer ping
        fleet.link_down(fleet.hosts[0])      # its 100 NTUs now time out
        fleet.link_up(fleet.hosts[0])

``up()`` takes the machine-wide lab lock (see :mod:`nms.lab.registry`), removes stale
namespaces of dead owners, installs the safety routes, picks free host indices,
records itself as their owner and builds every host with a handful of ``ip -batch``
processes. ``down()`` stops the processes the fleet started, deletes its namespaces
(their veths, routes and nft tables go with them), waits for the veths to vanish and
removes the safety routes if no lab namespace is left. ``down()`` is idempotent, runs
from ``__exit__`` whatever happened, after a failed ``up()`` and at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import time
import uuid
from ipaddress import IPv4Address, IPv6Address
from types import TracebackType
from typing import Self

from nms.lab import faults, netns, registry
from nms.lab.plan import (
    MAX_HOSTS,
    MAX_NTUS_PER_HOST,
    LabHost,
    host_create_lines,
    host_pin_lines,
    host_sysctls,
    host_unroute_lines,
    inner_create_lines,
    inner_sysctls,
    plan_host,
)
from nms.lab.snmpd import SNMP_PORT, SnmpdAgent

log = logging.getLogger("nms.lab")

Address = IPv4Address | IPv6Address


class LabFleet:
    """Lab hosts, each a namespace answering ping for ``ntus_per_host`` NTU addresses."""

    def __init__(self, *, hosts: int = 1, ntus_per_host: int = 16, ipv6: bool = False) -> None:
        if not 1 <= hosts <= MAX_HOSTS:
            raise ValueError(f"hosts must be within 1..{MAX_HOSTS}, got {hosts}")
        if not 1 <= ntus_per_host <= MAX_NTUS_PER_HOST:
            raise ValueError(
                f"ntus_per_host must be within 1..{MAX_NTUS_PER_HOST}, got {ntus_per_host}"
            )
        self.host_count = hosts
        self.ntus_per_host = ntus_per_host
        self.ipv6 = ipv6
        self.hosts: list[LabHost] = []
        self._token = uuid.uuid4().hex
        self._owned: list[LabHost] = []  # allocated to us: what down() must remove
        self._records: dict[str, registry.OwnerRecord] = {}
        self._agents: list[SnmpdAgent] = []
        self._atexit_registered = False

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    @property
    def token(self) -> str:
        """This fleet's owner token, as written in its namespaces' owner records."""
        return self._token

    @property
    def is_up(self) -> bool:
        return bool(self._owned)

    def up(self) -> None:
        """Create the fleet; on any failure undo what was created and re-raise."""
        if self._owned:
            raise netns.LabError("this fleet is already up")
        started = time.monotonic()
        with registry.locked():
            try:
                self._up_locked()
            except BaseException:
                log.exception("lab fleet up failed; tearing down what was created")
                self._down_locked()
                raise
        if not self._atexit_registered:
            atexit.register(self.down)
            self._atexit_registered = True
        log.info(
            "lab fleet up in %.3f s: %s",
            time.monotonic() - started,
            ", ".join(
                f"{h.netns} ({h.veth}, {h.ntu_net_v4}, {len(h.ntus_v4)} NTUs)" for h in self.hosts
            ),
        )

    def _up_locked(self) -> None:
        registry.cleanup_stale_locked()
        registry.install_safety_routes_locked()
        log.info("lab safety routes installed (unreachable 169.254.0.0/16, fd4e:5455::/32)")
        planned = [
            plan_host(k, ntus=self.ntus_per_host, ipv6=self.ipv6)
            for k in registry.allocate_locked(self.host_count)
        ]
        for host in planned:
            # Claim before creating: down() deletes only namespaces recorded as ours.
            record = registry.new_record(self._token)
            registry.write_record(host.netns, record)
            self._records[host.netns] = record
            self._owned.append(host)
        netns.ip_batch(line for host in planned for line in host_create_lines(host))
        for host in planned:
            for key, value in host_sysctls(host).items():
                netns.write_host_sysctl(key, value)
            if settings := inner_sysctls(host):
                netns.sysctl_in(host.netns, settings)
            netns.ip_batch(inner_create_lines(host), netns=host.netns)
        netns.ip_batch(line for host in planned for line in host_pin_lines(host))
        self.hosts = planned

    def down(self) -> None:
        """Tear down everything this fleet created. Idempotent."""
        if not self._owned:
            return
        started = time.monotonic()
        with registry.locked():
            self._down_locked()
        log.info("lab fleet down in %.3f s", time.monotonic() - started)

    def _down_locked(self) -> None:
        for agent in self._agents:
            agent.stop()
        self._agents.clear()
        mine = [h for h in self._owned if self._is_mine(h.netns)]
        if mine:
            names = [h.netns for h in mine]
            log.info("tearing down lab hosts %s", names)
            # The routes go with the veth anyway; removing them first means no packet
            # is ever routed at a half-deleted device.
            netns.ip_batch((line for h in mine for line in host_unroute_lines(h)), force=True)
            registry.delete_namespaces_locked(names, [h.veth for h in mine])
            for name in names:
                registry.remove_record(name)
        self._owned.clear()
        self._records.clear()
        registry.remove_safety_routes_if_unused_locked()
        if self._atexit_registered:
            atexit.unregister(self.down)
            self._atexit_registered = False

    def _is_mine(self, name: str) -> bool:
        record = registry.read_record(name)
        return record is not None and record.token == self._token

    @staticmethod
    def cleanup_stale() -> list[str]:
        """Delete lab namespaces left by processes that no longer run."""
        return registry.cleanup_stale()

    # -- addresses ---------------------------------------------------------------------

    @property
    def addresses(self) -> list[Address]:
        """All NTU addresses, host by host (each host: IPv4 first, then IPv6)."""
        return [address for host in self.hosts for address in host.addresses]

    @property
    def ipv4_addresses(self) -> list[IPv4Address]:
        return [address for host in self.hosts for address in host.ntus_v4]

    @property
    def ipv6_addresses(self) -> list[IPv6Address]:
        return [address for host in self.hosts for address in host.ntus_v6]

    def host_of(self, address: Address | str) -> LabHost:
        """The lab host that answers for an NTU address."""
        if isinstance(address, str):
            address = IPv4Address(address) if ":" not in address else IPv6Address(address)
        for host in self.hosts:
            if host.owns(address):
                return host
        raise KeyError(f"{address} is not an NTU address of this fleet")

    def _check(self, host: LabHost) -> LabHost:
        if not self.is_up or all(host.netns != h.netns for h in self.hosts):
            raise netns.LabError(f"{host.netns} is not a host of this (running) fleet")
        return host

    # -- faults (each idempotent, each with its undo) ----------------------------------

    def link_down(self, host: LabHost) -> None:
        """NTU side of the link down: the host's NTUs time out."""
        faults.link_down(self._check(host))

    def link_up(self, host: LabHost) -> None:
        faults.link_up(self._check(host))

    def our_side_down(self, host: LabHost) -> None:
        """Our side of the veth down: sends to the host's NTUs fail with EHOSTUNREACH."""
        faults.our_side_down(self._check(host))

    def our_side_up(self, host: LabHost) -> None:
        faults.our_side_up(self._check(host))

    def silence(self, host: LabHost) -> None:
        """The host ignores echo requests (v4 and v6) but stays up."""
        faults.silence(self._check(host))

    def unsilence(self, host: LabHost) -> None:
        faults.unsilence(self._check(host))

    def drop_address(self, address: Address | str) -> None:
        """Only this NTU address stops answering."""
        host = self.host_of(address)
        faults.drop_address(host, self._addr(address))

    def restore_address(self, address: Address | str) -> None:
        host = self.host_of(address)
        faults.restore_address(host, self._addr(address))

    def set_loss(self, host: LabHost, percent: float) -> None:
        """Drop ``percent`` % of the echo requests reaching the host, at random."""
        faults.set_loss(self._check(host), percent)

    def clear_loss(self, host: LabHost) -> None:
        faults.clear_loss(self._check(host))

    @staticmethod
    def _addr(address: Address | str) -> Address:
        if isinstance(address, str):
            return IPv4Address(address) if ":" not in address else IPv6Address(address)
        return address

    # -- SNMP agents -------------------------------------------------------------------

    def start_snmpd(
        self,
        host: LabHost,
        *,
        addresses: list[Address] | None = None,
        community: str = "public",
        sys_name: str | None = None,
        port: int = SNMP_PORT,
    ) -> SnmpdAgent:
        """Start one net-snmp ``snmpd`` inside ``host`` answering for its NTU addresses.

        Without ``addresses`` the agent listens on the wildcard address (one socket that
        answers for every NTU address of the host, from the address asked); with them,
        on exactly those. The fleet stops it on ``down()``; its PID is recorded so that
        :meth:`cleanup_stale` can stop it if this process dies first.
        """
        self._check(host)
        agent = SnmpdAgent(
            netns=host.netns,
            addresses=list(addresses) if addresses is not None else [],
            community=community,
            sys_name=sys_name or host.netns,
            port=port,
            on_pid_change=lambda: self._record_procs(host),
        )
        self._agents.append(agent)
        agent.start()
        return agent

    def _record_procs(self, host: LabHost) -> None:
        record = self._records.get(host.netns)
        if record is None:
            return
        record.procs = [
            (agent.pid, netns.process_start_time(agent.pid))
            for agent in self._agents
            if agent.netns == host.netns and agent.pid is not None
        ]
        with registry.locked():
            registry.write_record(host.netns, record)
