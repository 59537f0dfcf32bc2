"""Resolving a webhook host and connecting only to an address the policy allows.

The address check of ``caseapi.notifications.addresses`` runs at subscription
(``checked_addresses``) and again inside every TCP connection the dispatcher opens
(``GuardedTransport``, ``guarded_client``): the transport's network backend resolves
the host through the same resolver, refuses the connection if any answer is
forbidden, and connects to one of the addresses it has just checked. Nothing
resolves the name a second time after the check, so a DNS answer that changes
between subscription and delivery, or between the check and the connect
(rebinding), reaches nothing. TLS still runs against the host name (SNI and
certificate verification), and the ``Host`` header is the URL's, because httpx
starts TLS with the origin's name on the stream this backend returns.

The resolver is injectable (``Resolver``): tests pass one they control; the default
asks the system (``getaddrinfo``). Proxies from the environment are never used
(``trust_env=False``): a proxy would make the connection on our behalf unchecked.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import httpcore
import httpx

from caseapi.notifications.addresses import (
    AddressClass,
    IPAddress,
    WebhookPolicy,
    literal_address,
)

#: ``resolver(host, port)``: the addresses of ``host`` (a name, never a literal).
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]


class ForbiddenAddressError(Exception):
    """``host`` resolved to ``address``, which the webhook policy forbids."""

    def __init__(self, *, host: str, address: IPAddress, address_class: AddressClass) -> None:
        self.host = host
        self.address = address
        self.address_class = address_class
        kind = address_class.value.replace("_", "-")
        where = (
            f"{address} is"
            if literal_address(host) is not None
            else f"{host} resolves to {address},"
        )
        article = "an" if kind[0] in "aeiou" else "a"
        super().__init__(
            f"{where} {article} {kind} address: webhooks may only reach public addresses "
            "(exceptions: notifications.webhooks.allow_networks)"
        )


class UnresolvableHostError(Exception):
    """``host`` has no address (or the lookup failed)."""

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        super().__init__(f"cannot resolve webhook host {host!r}: {reason}")


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for ``host`` (TCP), in its order."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHostError(host, str(exc)) from exc
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        # A scoped IPv6 address comes back as "fe80::1%eth0": the scope is no help here.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


async def checked_addresses(
    host: str, port: int, *, policy: WebhookPolicy, resolver: Resolver
) -> list[IPAddress]:
    """The addresses of ``host``, every one of them allowed by ``policy``.

    Raises:
        ForbiddenAddressError: Any address is forbidden (one bad answer is enough:
            which one a client would use is not ours to know).
        UnresolvableHostError: No address.
    """
    literal = literal_address(host)
    addresses = [literal] if literal is not None else list(await resolver(host, port))
    if not addresses:
        raise UnresolvableHostError(host, "no address")
    for address in addresses:
        kind = policy.verdict(address)
        if kind is not None:
            raise ForbiddenAddressError(host=host, address=address, address_class=kind)
    return addresses


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects to checked addresses only (see the module docstring)."""

    def __init__(self, *, policy: WebhookPolicy, resolver: Resolver) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(
            host, port, policy=self._policy, resolver=self._resolver
        )
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks never use Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def _verifying_context() -> ssl.SSLContext:
    # Loading the CA bundle takes tens of milliseconds; a context is safe to share.
    return httpx.create_ssl_context(trust_env=False)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose every connection is checked."""

    def __init__(
        self,
        *,
        policy: WebhookPolicy,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(verify=ssl_context or _verifying_context(), trust_env=False)
        # httpx takes no network backend of its own; its pool does. Replacing the
        # pool keeps httpx's request conversion and exception mapping unchanged.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or _verifying_context(),
            network_backend=_GuardedBackend(policy=policy, resolver=resolver),
        )


def guarded_client(
    *, policy: WebhookPolicy, resolver: Resolver = system_resolver
) -> httpx.AsyncClient:
    """The dispatcher's HTTP client: checked connections, no redirects, no env proxies."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy=policy, resolver=resolver),
        follow_redirects=False,
        trust_env=False,
    )
