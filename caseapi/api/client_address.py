"""The client's address: the peer of the connection, or what trusted proxies say.

``X-Forwarded-For`` is anyone's to write, so it is believed only from a peer in
``api.trusted_proxies`` (none by default), and then read from the right: each
proxy appends the address it received the request from, so the rightmost entry
that is not itself a trusted proxy is the client. Entries left of it were written
by whoever sent the request and are ignored. A malformed entry ends the walk: the
proxy that wrote the last good one is the best we know.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: A peer that is not an IP address (a test transport, a Unix socket).
UNKNOWN = "unknown"


#: Addresses remembered parsed: every authenticated request asks for its client's.
_PARSED_CACHE_SIZE = 4096


@lru_cache(maxsize=_PARSED_CACHE_SIZE)
def _parse(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d: one client, one address.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    # ``in`` is False across IP versions, which is what we want.
    return any(address in network for network in proxies)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], *, trusted_proxies: Sequence[IPNetwork]
) -> str:
    """The client address of a request from ``peer`` carrying ``forwarded_for``.

    Args:
        peer: The connection's remote address (the ASGI ``client`` host).
        forwarded_for: Every ``X-Forwarded-For`` header value, in order.
        trusted_proxies: Networks whose ``X-Forwarded-For`` is believed.

    Returns:
        A normalised IP address, or ``peer`` as given (``unknown`` when absent)
        when it is not one.
    """
    if peer is None:
        return UNKNOWN
    address = _parse(peer)
    if address is None:
        return peer
    if not _trusted(address, trusted_proxies):
        return str(address)
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        parsed = _parse(hop)
        if parsed is None:
            break
        address = parsed
        if not _trusted(parsed, trusted_proxies):
            break
    return str(address)


def request_client_address(request: Request) -> str:
    """The client address of ``request`` under the app's ``trusted_proxies``."""
    proxies: Sequence[IPNetwork] = getattr(request.app.state, "trusted_proxies", ())
    peer = request.client.host if request.client is not None else None
    return client_address(peer, request.headers.getlist("x-forwarded-for"), trusted_proxies=proxies)


async def _client_address_dependency(request: Request) -> str:
    # A coroutine: FastAPI runs a plain function dependency in a worker thread.
    return request_client_address(request)


ClientAddress = Annotated[str, Depends(_client_address_dependency)]
