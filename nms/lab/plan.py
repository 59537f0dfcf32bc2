"""The lab's address plan (LAB.md) and the ``ip`` commands that build one host.

Pure: nothing here touches the kernel, so the plan is testable without root.

Per lab host k (1..15):

- namespace ``ntulab<k>``; veth ``vntu<k>`` (host side) <-> ``eth0`` (inside), with
  fixed locally administered MACs ``02:4e:54:4c:<k>:01`` / ``:02`` so that neighbours
  can be pinned without asking the kernel first;
- link 169.254.k.1/24 <-> 169.254.k.2/24 (and fd4e:5455:k::1/64 <-> ::2/64);
- NTUs: ``local 169.254.<16k>.0/20 dev lo`` inside (the namespace answers every
  address of it), routed on the host via 169.254.k.2; IPv6 NTUs likewise in
  fd4e:5455:k:1::/64 via fd4e:5455:k::2.

The link /24s (169.254.1-15.x) and the NTU /20s (169.254.16.0 - 169.254.255.255)
never overlap because 16k >= 16 for k >= 1; everything stays inside the lab ranges
169.254.0.0/16 and fd4e:5455::/32, which the safety routes cover.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

LAB_V4 = IPv4Network("169.254.0.0/16")
LAB_V6 = IPv6Network("fd4e:5455::/32")
SAFETY_METRIC = 4000
MAX_HOSTS = 15
MAX_NTUS_PER_HOST = 4094
NETNS_PREFIX = "ntulab"
VETH_PREFIX = "vntu"
INNER_VETH = "eth0"


@dataclass(frozen=True, slots=True)
class LabHost:
    """One lab host: a namespace behind one veth, answering for many NTU addresses."""

    index: int
    netns: str
    veth: str
    our_v4: IPv4Address
    ntu_side_v4: IPv4Address
    ntu_net_v4: IPv4Network
    ntus_v4: tuple[IPv4Address, ...]
    our_mac: str
    ntu_side_mac: str
    our_v6: IPv6Address | None = None
    ntu_side_v6: IPv6Address | None = None
    ntu_net_v6: IPv6Network | None = None
    ntus_v6: tuple[IPv6Address, ...] = ()

    @property
    def addresses(self) -> tuple[IPv4Address | IPv6Address, ...]:
        """The host's NTU addresses: IPv4 first, then IPv6."""
        return (*self.ntus_v4, *self.ntus_v6)

    def owns(self, address: IPv4Address | IPv6Address) -> bool:
        """Whether ``address`` is one of this host's NTU addresses."""
        if isinstance(address, IPv4Address):
            offset = int(address) - int(self.ntu_net_v4.network_address)
            return 1 <= offset <= len(self.ntus_v4)
        if self.ntu_net_v6 is None:
            return False
        offset = int(address) - int(self.ntu_net_v6.network_address)
        return 1 <= offset <= len(self.ntus_v6)


def plan_host(index: int, *, ntus: int, ipv6: bool) -> LabHost:
    """The addresses and names of lab host ``index`` with ``ntus`` NTU addresses."""
    if not 1 <= index <= MAX_HOSTS:
        raise ValueError(f"lab host index must be in 1..{MAX_HOSTS}, got {index}")
    if not 1 <= ntus <= MAX_NTUS_PER_HOST:
        raise ValueError(f"ntus per host must be in 1..{MAX_NTUS_PER_HOST}, got {ntus}")
    net_v4 = IPv4Network(f"169.254.{16 * index}.0/20")
    our_v6 = ntu_side_v6 = None
    net_v6 = None
    ntus_v6: tuple[IPv6Address, ...] = ()
    if ipv6:
        our_v6 = IPv6Address(f"fd4e:5455:{index:x}::1")
        ntu_side_v6 = IPv6Address(f"fd4e:5455:{index:x}::2")
        net_v6 = IPv6Network(f"fd4e:5455:{index:x}:1::/64")
        ntus_v6 = tuple(net_v6[i] for i in range(1, ntus + 1))
    return LabHost(
        index=index,
        netns=f"{NETNS_PREFIX}{index}",
        veth=f"{VETH_PREFIX}{index}",
        our_v4=IPv4Address(f"169.254.{index}.1"),
        ntu_side_v4=IPv4Address(f"169.254.{index}.2"),
        ntu_net_v4=net_v4,
        ntus_v4=tuple(net_v4[i] for i in range(1, ntus + 1)),
        our_mac=f"02:4e:54:4c:{index:02x}:01",
        ntu_side_mac=f"02:4e:54:4c:{index:02x}:02",
        our_v6=our_v6,
        ntu_side_v6=ntu_side_v6,
        ntu_net_v6=net_v6,
        ntus_v6=ntus_v6,
    )


def safety_route_lines(verb: str) -> list[str]:
    """``ip`` batch lines that add (``replace``) or ``del`` the lab's unreachable routes."""
    return [
        f"route {verb} unreachable {LAB_V4} metric {SAFETY_METRIC}",
        f"route {verb} unreachable {LAB_V6} metric {SAFETY_METRIC}",
    ]


def host_create_lines(host: LabHost) -> list[str]:
    """Host-namespace batch: the namespace, the veth pair, our side's addresses, up."""
    lines = [
        f"netns add {host.netns}",
        f"link add {host.veth} address {host.our_mac} type veth"
        f" peer name {INNER_VETH} address {host.ntu_side_mac} netns {host.netns}",
        f"addr add {host.our_v4}/24 dev {host.veth}",
    ]
    if host.our_v6 is not None:
        lines.append(f"addr add {host.our_v6}/64 dev {host.veth} nodad")
    lines.append(f"link set {host.veth} up")
    return lines


def host_pin_lines(host: LabHost) -> list[str]:
    """Host-namespace batch: routes to the host's NTU prefixes and pinned neighbours.

    Re-run after every link up: a link going down flushes both (LAB.md).
    """
    lines = [
        f"route replace {host.ntu_net_v4} via {host.ntu_side_v4} dev {host.veth}",
        f"neigh replace {host.ntu_side_v4} lladdr {host.ntu_side_mac}"
        f" dev {host.veth} nud permanent",
    ]
    if host.ntu_net_v6 is not None:
        lines += [
            f"route replace {host.ntu_net_v6} via {host.ntu_side_v6} dev {host.veth}",
            f"neigh replace {host.ntu_side_v6} lladdr {host.ntu_side_mac}"
            f" dev {host.veth} nud permanent",
        ]
    return lines


def host_unroute_lines(host: LabHost) -> list[str]:
    """Host-namespace batch (run with -force): remove the routes to the NTU prefixes."""
    lines = [f"route del {host.ntu_net_v4} via {host.ntu_side_v4}"]
    if host.ntu_net_v6 is not None:
        lines.append(f"route del {host.ntu_net_v6} via {host.ntu_side_v6}")
    return lines


def inner_create_lines(host: LabHost) -> list[str]:
    """In-namespace batch: loopback, the NTU side's addresses and the local NTU prefixes."""
    lines = ["link set lo up", f"addr add {host.ntu_side_v4}/24 dev {INNER_VETH}"]
    if host.ntu_side_v6 is not None:
        lines.append(f"addr add {host.ntu_side_v6}/64 dev {INNER_VETH} nodad")
    lines.append(f"link set {INNER_VETH} up")
    lines.append(f"route replace local {host.ntu_net_v4} dev lo")
    if host.ntu_net_v6 is not None:
        lines.append(f"route replace local {host.ntu_net_v6} dev lo")
    return lines + inner_pin_lines(host)


def inner_pin_lines(host: LabHost) -> list[str]:
    """In-namespace batch: default routes back to the host side and pinned neighbours."""
    lines = [
        f"route replace default via {host.our_v4} dev {INNER_VETH}",
        f"neigh replace {host.our_v4} lladdr {host.our_mac} dev {INNER_VETH} nud permanent",
    ]
    if host.our_v6 is not None:
        lines += [
            f"route replace ::/0 via {host.our_v6} dev {INNER_VETH}",
            f"neigh replace {host.our_v6} lladdr {host.our_mac} dev {INNER_VETH} nud permanent",
        ]
    return lines


def inner_sysctls(host: LabHost) -> dict[str, str]:
    """Sysctls inside the namespace: keep IPv6 addresses across link down, no DAD.

    ``ip_nonlocal_bind``: IPv6, unlike IPv4, refuses to bind a socket (snmpd) to an
    address that is only covered by a ``local`` route, not assigned to a device.
    """
    if host.ntu_side_v6 is None:
        return {}
    return {
        f"net.ipv6.conf.{INNER_VETH}.keep_addr_on_down": "1",
        f"net.ipv6.conf.{INNER_VETH}.accept_dad": "0",
        "net.ipv6.ip_nonlocal_bind": "1",
    }


def host_sysctls(host: LabHost) -> dict[str, str]:
    """Sysctls of our side of the veth (same reasons as :func:`inner_sysctls`)."""
    if host.our_v6 is None:
        return {}
    return {
        f"net.ipv6.conf.{host.veth}.keep_addr_on_down": "1",
        f"net.ipv6.conf.{host.veth}.accept_dad": "0",
    }
