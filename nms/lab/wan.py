"""A WAN interface inside a lab host, whose carrier can be lost while management answers.

Real NTUs manage through one port and carry the customer's service on another. Here
the service port is a veth pair inside the namespace: ``wan0`` (what SNMP reports)
and ``wan0peer``. Taking the peer down drops ``wan0``'s carrier: ifOperStatus down,
ifAdminStatus still up - a service outage while ping and SNMP to the NTU's management
address keep answering. Taking ``wan0`` itself down is an administrative shutdown.
"""

from __future__ import annotations

import logging

from nms.lab import netns
from nms.lab.plan import LabHost

log = logging.getLogger("nms.lab")

WAN = "wan0"
_PEER = "wan0peer"


def add_wan(host: LabHost) -> None:
    netns.ip_batch(
        [
            f"link add {WAN} type veth peer name {_PEER}",
            f"link set {_PEER} up",
            f"link set {WAN} up",
        ],
        netns=host.netns,
    )


def carrier_down(host: LabHost) -> None:
    netns.ip_batch([f"link set {_PEER} down"], netns=host.netns)
    log.info("fault: %s %s carrier lost (admin up)", host.netns, WAN)


def carrier_up(host: LabHost) -> None:
    netns.ip_batch([f"link set {_PEER} up"], netns=host.netns)
    log.info("undo: %s %s carrier back", host.netns, WAN)


def admin_down(host: LabHost) -> None:
    netns.ip_batch([f"link set {WAN} down"], netns=host.netns)
    log.info("fault: %s %s administratively down", host.netns, WAN)


def admin_up(host: LabHost) -> None:
    netns.ip_batch([f"link set {WAN} up"], netns=host.netns)
    log.info("undo: %s %s administratively up", host.netns, WAN)
