"""Faults a lab host can be put into, each with its undo (LAB.md, "Faults that work").

| fault            | how                                              | a pinger sees      |
|------------------|--------------------------------------------------|--------------------|
| NTU link lost    | ``ip -n ntulab<k> link set eth0 down``           | timeouts           |
| our side down    | ``ip link set vntu<k> down``                     | EHOSTUNREACH       |
| NTU silent       | ``icmp_echo_ignore_all=1`` (v4 and v6) inside    | timeouts           |
| one address gone | ``blackhole <addr>/32 table local`` inside       | that one times out |
| random loss p%   | nftables ``numgen random`` drop of echo requests | ~p% lost           |

Every function is idempotent. A link going down flushes its routes and pinned
neighbours, so both ``*_up`` functions re-pin both sides (v4 and v6) afterwards.
"""

from __future__ import annotations

import logging
from ipaddress import IPv4Address, IPv6Address

from nms.lab import netns
from nms.lab.plan import INNER_VETH, LabHost, host_pin_lines, inner_pin_lines

log = logging.getLogger("nms.lab")

LOSS_TABLE = "nms_lab_loss"
# numgen draws from 0..LOSS_SCALE-1, so loss percentages have two decimals.
LOSS_SCALE = 10_000


def repin(host: LabHost) -> None:
    """Re-install routes and permanent neighbours on both sides of the host's veth."""
    netns.ip_batch(inner_pin_lines(host), netns=host.netns)
    netns.ip_batch(host_pin_lines(host))


def link_down(host: LabHost) -> None:
    """Take the NTU side of the link down: the host's NTUs time out."""
    netns.ip_batch([f"link set {INNER_VETH} down"], netns=host.netns)
    log.info("fault: %s link down (NTU side)", host.netns)


def link_up(host: LabHost) -> None:
    """Undo :func:`link_down` and re-pin neighbours."""
    netns.ip_batch([f"link set {INNER_VETH} up", *inner_pin_lines(host)], netns=host.netns)
    netns.ip_batch(host_pin_lines(host))
    log.info("undo: %s link up (NTU side), neighbours re-pinned", host.netns)


def our_side_down(host: LabHost) -> None:
    """Take our side of the veth down: sends fail at once with EHOSTUNREACH.

    The routes via the veth vanish with it, so the safety route (unreachable
    169.254.0.0/16) answers instead of the machine's default route.
    """
    netns.ip_batch([f"link set {host.veth} down"])
    log.info("fault: %s down (our side)", host.veth)


def our_side_up(host: LabHost) -> None:
    """Undo :func:`our_side_down`: link up, routes back, neighbours re-pinned."""
    netns.ip_batch([f"link set {host.veth} up", *host_pin_lines(host)])
    netns.ip_batch(inner_pin_lines(host), netns=host.netns)
    log.info("undo: %s up (our side), routes and neighbours re-pinned", host.veth)


def _echo_ignore(host: LabHost, value: str) -> None:
    settings = {"net.ipv4.icmp_echo_ignore_all": value}
    if host.ntu_side_v6 is not None:
        settings["net.ipv6.icmp.echo_ignore_all"] = value
    netns.sysctl_in(host.netns, settings)


def silence(host: LabHost) -> None:
    """The host stays up but ignores echo requests (SNMP still answers)."""
    _echo_ignore(host, "1")
    log.info("fault: %s silenced (echo ignored)", host.netns)


def unsilence(host: LabHost) -> None:
    """Undo :func:`silence`."""
    _echo_ignore(host, "0")
    log.info("undo: %s answers echoes again", host.netns)


def _host_route(address: IPv4Address | IPv6Address) -> str:
    return f"{address}/{address.max_prefixlen}"


def drop_address(host: LabHost, address: IPv4Address | IPv6Address) -> None:
    """Make one NTU address vanish: a more specific blackhole beats the local /20."""
    netns.ip_batch(
        [f"route replace blackhole {_host_route(address)} table local"], netns=host.netns
    )
    log.info("fault: %s dropped in %s", address, host.netns)


def restore_address(host: LabHost, address: IPv4Address | IPv6Address) -> None:
    """Undo :func:`drop_address` (a no-op if the address was not dropped)."""
    netns.ip_batch(
        [f"route del blackhole {_host_route(address)} table local"], netns=host.netns, force=True
    )
    log.info("undo: %s restored in %s", address, host.netns)


def set_loss(host: LabHost, percent: float) -> None:
    """Drop ``percent`` % of the echo requests (v4 and v6) reaching the host, at random.

    The table is replaced in one nft transaction (``add`` + ``delete`` + definition),
    so calling it again just changes the rate.
    """
    if not 0.0 <= percent <= 100.0:
        raise ValueError(f"loss percent must be within 0..100, got {percent}")
    threshold = round(percent * LOSS_SCALE / 100)
    rule = f"numgen random mod {LOSS_SCALE} < {threshold} counter drop"
    netns.nft_in(
        host.netns,
        f"add table inet {LOSS_TABLE}\n"
        f"delete table inet {LOSS_TABLE}\n"
        f"table inet {LOSS_TABLE} {{\n"
        "  chain input {\n"
        "    type filter hook input priority 0; policy accept;\n"
        f"    icmp type echo-request {rule}\n"
        f"    icmpv6 type echo-request {rule}\n"
        "  }\n"
        "}\n",
    )
    log.info("fault: %s loses %.2f%% of echo requests", host.netns, percent)


def clear_loss(host: LabHost) -> None:
    """Undo :func:`set_loss` (a no-op if no loss was set)."""
    netns.nft_in(host.netns, f"add table inet {LOSS_TABLE}\ndelete table inet {LOSS_TABLE}\n")
    log.info("undo: %s loses no echo requests", host.netns)
