"""Where a webhook may be delivered: the URL and address rules (pure, no I/O).

A webhook URL is chosen by a customer, so without rules the dispatcher is a way into
the provider's network (SSRF): ``http://127.0.0.1:8080/...`` reaches our own API,
``http://169.254.169.254/`` a cloud metadata service, ``http://10.0.0.5/`` an
internal system. The rules:

- the scheme is ``https`` (``http`` only with ``notifications.webhooks.allow_http``,
  for labs); no ``user:password@`` in the URL;
- every address the host resolves to must be a public unicast address: not loopback,
  link-local, private (RFC 1918, IPv6 ULA), shared (CGNAT 100.64/10), multicast,
  unspecified, broadcast, documentation, reserved (RFC 6890 special-purpose blocks,
  benchmarking, unallocated IPv6 outside 2000::/3), IPv4-mapped IPv6, and not in the
  provider's own ``notifications.webhooks.internal_networks``;
- ``notifications.webhooks.allow_networks`` lists the exceptions: legitimate
  internal receivers, allowed whatever their class.

IPv6 forms that carry an IPv4 address to a gateway (NAT64 ``64:ff9b::/96``, 6to4
``2002::/16``) are judged by the IPv4 address inside them; an IPv4-mapped address
(``::ffff:a.b.c.d``) is refused outright (no real AAAA record is one).

``check_url`` checks the URL; ``WebhookPolicy.verdict`` one address. The checks run
at subscription and again at every connection (``caseapi.notifications.transport``),
so a name that resolves elsewhere later (DNS rebinding) gets nowhere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeAlias
from urllib.parse import urlsplit

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressClass(StrEnum):
    """What kind of address a webhook host resolved to (the ``address_class`` of a 422)."""

    PUBLIC = "public"
    LOOPBACK = "loopback"
    LINK_LOCAL = "link_local"
    PRIVATE = "private"
    SHARED = "shared"
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"
    BROADCAST = "broadcast"
    DOCUMENTATION = "documentation"
    RESERVED = "reserved"
    IPV4_MAPPED = "ipv4_mapped"
    INTERNAL = "internal"


def _nets(kind: AddressClass, *cidrs: str) -> list[tuple[IPNetwork, AddressClass]]:
    return [(ipaddress.ip_network(cidr), kind) for cidr in cidrs]


# RFC 6890 and the IANA special-purpose registries; the first match wins, so the
# broadcast /32 comes before the reserved 240/4 that contains it.
_V4_TABLE: Final = [
    *_nets(AddressClass.BROADCAST, "255.255.255.255/32"),
    *_nets(AddressClass.UNSPECIFIED, "0.0.0.0/8"),
    *_nets(AddressClass.LOOPBACK, "127.0.0.0/8"),
    *_nets(AddressClass.LINK_LOCAL, "169.254.0.0/16"),
    *_nets(AddressClass.PRIVATE, "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
    *_nets(AddressClass.SHARED, "100.64.0.0/10"),
    *_nets(AddressClass.DOCUMENTATION, "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"),
    *_nets(AddressClass.MULTICAST, "224.0.0.0/4"),
    *_nets(
        AddressClass.RESERVED,
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "198.18.0.0/15",  # benchmarking
        "240.0.0.0/4",
    ),
]
_V6_TABLE: Final = [
    *_nets(AddressClass.UNSPECIFIED, "::/128"),
    *_nets(AddressClass.LOOPBACK, "::1/128"),
    *_nets(AddressClass.IPV4_MAPPED, "::ffff:0:0/96"),
    *_nets(AddressClass.LINK_LOCAL, "fe80::/10"),
    *_nets(AddressClass.PRIVATE, "fc00::/7", "fec0::/10"),
    *_nets(AddressClass.MULTICAST, "ff00::/8"),
    *_nets(AddressClass.DOCUMENTATION, "2001:db8::/32", "3fff::/20"),
    *_nets(
        AddressClass.RESERVED,
        "::/96",  # IPv4-compatible (deprecated)
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments: Teredo, benchmarking, ORCHID
    ),
]
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR: Final = ipaddress.IPv6Network("2002::/16")
_GLOBAL_UNICAST_V6: Final = ipaddress.IPv6Network("2000::/3")


def classify(address: IPAddress, *, internal: Iterable[IPNetwork] = ()) -> AddressClass:
    """The class of ``address``; ``internal`` are the provider's own networks."""
    for network in internal:
        if address.version == network.version and address in network:
            return AddressClass.INTERNAL
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64:
            return classify(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), internal=internal)
        if address in _SIX_TO_FOUR:
            embedded = ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
            return classify(embedded, internal=internal)
        table = _V6_TABLE
    else:
        table = _V4_TABLE
    for network, kind in table:
        if address in network:
            return kind
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST_V6:
        return AddressClass.RESERVED  # not allocated for unicast
    return AddressClass.PUBLIC


class WebhookUrlError(ValueError):
    """A webhook URL breaks a rule; ``rule`` is the problem code's tail."""

    def __init__(self, message: str, *, rule: str) -> None:
        self.rule = rule
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class UrlTarget:
    """Where a checked URL points: its scheme, host (name or literal) and port."""

    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookPolicy:
    """The ``notifications.webhooks`` rules, as the service and the transport apply them."""

    allow_http: bool = False
    internal_networks: tuple[IPNetwork, ...] = ()
    allow_networks: tuple[IPNetwork, ...] = ()

    def verdict(self, address: IPAddress) -> AddressClass | None:
        """``None`` when webhooks may connect to ``address``, else its forbidden class."""
        for network in self.allow_networks:
            if address.version == network.version and address in network:
                return None
        kind = classify(address, internal=self.internal_networks)
        return None if kind is AddressClass.PUBLIC else kind

    def check_url(self, url: str) -> UrlTarget:
        """Check scheme, credentials and host of ``url`` (not its addresses).

        Raises:
            WebhookUrlError: ``rule`` is ``scheme``, ``userinfo`` or ``host``.
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme != "https" and not (scheme == "http" and self.allow_http):
            allowed = "https (or http where notifications.webhooks.allow_http is set)"
            raise WebhookUrlError(
                f"webhook URLs must use {allowed}, not {scheme or 'no scheme'}", rule="scheme"
            )
        if parts.username is not None or parts.password is not None:
            raise WebhookUrlError(
                "webhook URLs must not carry user:password@ (the signature authenticates us)",
                rule="userinfo",
            )
        if not parts.hostname:
            raise WebhookUrlError("webhook URL has no host", rule="host")
        try:
            port = parts.port
        except ValueError as exc:
            raise WebhookUrlError(f"webhook URL: {exc}", rule="host") from None
        return UrlTarget(
            scheme=scheme, host=parts.hostname, port=port or (443 if scheme == "https" else 80)
        )


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is a literal (``[::1]`` without brackets), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
