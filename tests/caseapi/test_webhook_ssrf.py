"""Webhooks cannot reach the provider's network: URL and address rules, at subscription
and at every connection (DNS rebinding), and no redirects.

Nothing here is sent outside 127.0.0.0/8: forbidden addresses are refused before any
connection (a listener on 127.0.0.1 counts connections to prove it), host names are
answered by a resolver the test controls (the system resolver is never asked), and
the receivers listen on loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
import trustme
from fastapi import FastAPI

from caseapi.api.app import create_app
from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.incidents import IncidentService
from caseapi.notifications.addresses import (
    AddressClass,
    IPAddress,
    WebhookPolicy,
    WebhookUrlError,
    classify,
)
from caseapi.notifications.config import DEFAULT_DISPATCHER, NotificationSettings
from caseapi.notifications.dispatcher import NotificationDispatcher
from caseapi.notifications.service import WebhookService
from caseapi.notifications.transport import (
    ForbiddenAddressError,
    GuardedTransport,
    UnresolvableHostError,
    guarded_client,
    system_resolver,
)
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import authed_client
from tests.caseapi.conftest import START, Database, incident
from tests.caseapi.notification_fixtures import (
    WebhookSink,
    webhook_sink_fixture,  # noqa: F401
)

ip = ipaddress.ip_address
net = ipaddress.ip_network

# One or more addresses of every class, IPv4 and IPv6.
CLASSES: dict[AddressClass, list[str]] = {
    AddressClass.LOOPBACK: ["127.0.0.1", "127.255.255.254", "::1"],
    AddressClass.LINK_LOCAL: ["169.254.169.254", "169.254.0.1", "fe80::1"],
    AddressClass.PRIVATE: ["10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "fd00::1"],
    AddressClass.SHARED: ["100.64.0.1", "100.127.255.254"],
    AddressClass.MULTICAST: ["224.0.0.1", "239.255.255.250", "ff02::1"],
    AddressClass.UNSPECIFIED: ["0.0.0.0", "0.1.2.3", "::"],
    AddressClass.BROADCAST: ["255.255.255.255"],
    AddressClass.DOCUMENTATION: ["192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1"],
    AddressClass.RESERVED: ["240.0.0.1", "198.18.0.1", "192.0.0.8", "2001::1", "100::1", "4000::1"],
    AddressClass.IPV4_MAPPED: ["::ffff:127.0.0.1", "::ffff:8.8.8.8"],
    AddressClass.PUBLIC: ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111"],
}


@pytest.mark.parametrize(
    ("address", "expected"),
    [(address, kind) for kind, addresses in CLASSES.items() for address in addresses],
)
def test_every_address_class(address: str, expected: AddressClass) -> None:
    assert classify(ip(address)) is expected
    allowed = WebhookPolicy().verdict(ip(address))
    assert allowed is (None if expected is AddressClass.PUBLIC else expected)


def test_gateway_forms_are_judged_by_the_ipv4_inside() -> None:
    assert classify(ip("64:ff9b::7f00:1")) is AddressClass.LOOPBACK  # NAT64 of 127.0.0.1
    assert classify(ip("64:ff9b::808:808")) is AddressClass.PUBLIC  # NAT64 of 8.8.8.8
    assert classify(ip("2002:a00:1::1")) is AddressClass.PRIVATE  # 6to4 of 10.0.0.1
    assert classify(ip("2002:808:808::1")) is AddressClass.PUBLIC


def test_internal_networks_and_the_allow_list() -> None:
    policy = WebhookPolicy(
        internal_networks=(net("8.8.0.0/16"), net("2606:4700::/32")),
        allow_networks=(net("10.1.2.0/24"), net("8.8.8.8/32")),
    )
    assert policy.verdict(ip("8.8.4.4")) is AddressClass.INTERNAL
    assert policy.verdict(ip("2606:4700::1")) is AddressClass.INTERNAL
    assert policy.verdict(ip("8.8.8.8")) is None  # the allow-list wins over internal
    assert policy.verdict(ip("10.1.2.3")) is None  # a legitimate internal receiver
    assert policy.verdict(ip("10.1.3.1")) is AddressClass.PRIVATE
    assert policy.verdict(ip("1.1.1.1")) is None
    # A v4 allow-list never matches a v6 address (and the reverse).
    assert WebhookPolicy(allow_networks=(net("0.0.0.0/0"),)).verdict(ip("::1")) is not None


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://hooks.example.net/x", "scheme"),
        ("ftp://hooks.example.net/x", "scheme"),
        ("https://user:pw@hooks.example.net/x", "userinfo"),
        ("https://token@hooks.example.net/x", "userinfo"),
        ("https:///x", "host"),
        ("https://hooks.example.net:99999/x", "host"),
    ],
)
def test_url_rules(url: str, rule: str) -> None:
    with pytest.raises(WebhookUrlError) as caught:
        WebhookPolicy().check_url(url)
    assert caught.value.rule == rule


def test_url_targets() -> None:
    policy = WebhookPolicy(allow_http=True)
    assert policy.check_url("http://h.example.net/x").port == 80
    assert policy.check_url("https://H.example.net/x").host == "h.example.net"
    assert policy.check_url("https://[::1]:8443/x").port == 8443


class Resolver:
    """DNS answers the test controls; records every question."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        self.asked.append(host)
        return [ip(a) for a in self.answers.get(host, [])]


def hook_app(
    database: Database,
    clock: FakeClock,
    service: CaseService,
    policy: WebhookPolicy,
    resolver: Resolver | None = None,
) -> FastAPI:
    """The API with a webhook service under ``policy`` (``RESOLVER`` unless told)."""
    app = create_app(sessionmaker=database.sessionmaker, case_service=service, clock=clock)
    app.state.webhook_service = WebhookService(
        sessionmaker=database.sessionmaker,
        clock=clock,
        settings=replace(DEFAULT_DISPATCHER, webhook_policy=policy),
        resolver=resolver or RESOLVER,
    )
    return app


RESOLVER = Resolver(
    {
        "hooks.example.net": ["8.8.8.8"],
        "mixed.example.net": ["8.8.8.8", "10.0.0.7"],  # one bad answer is enough
        "metadata.example.net": ["169.254.169.254"],
    }
)


async def test_subscribe_refuses_each_rule_with_a_422_naming_it(
    database: Database, service: CaseService, clock: FakeClock
) -> None:
    app = hook_app(database, clock, service, WebhookPolicy(internal_networks=(net("8.8.4.0/24"),)))
    refused: dict[str, tuple[str, str | None]] = {
        **{
            f"https://{address if ':' not in address else f'[{address}]'}/hook": (
                "webhook_address_forbidden",
                kind.value,
            )
            for kind, addresses in CLASSES.items()
            if kind is not AddressClass.PUBLIC
            for address in addresses[:1]
        },
        "https://8.8.4.4/hook": ("webhook_address_forbidden", "internal"),
        "https://mixed.example.net/hook": ("webhook_address_forbidden", "private"),
        "https://metadata.example.net/hook": ("webhook_address_forbidden", "link_local"),
        "http://hooks.example.net/hook": ("webhook_scheme_forbidden", None),
        "https://u:p@hooks.example.net/hook": ("webhook_userinfo_forbidden", None),
        "https://nowhere.example.net/hook": ("webhook_host_unresolvable", None),
    }
    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        for url, (code, kind) in refused.items():
            answer = await customer.post("/v1/webhooks", json={"url": url})
            assert answer.status_code == 422, (url, answer.text)
            problem = answer.json()
            assert (problem["code"], problem.get("address_class")) == (code, kind), url
            assert problem["field"] == "url"
        assert (await customer.get("/v1/webhooks")).json()["count"] == 0
        created = await customer.post("/v1/webhooks", json={"url": "https://hooks.example.net/h"})
        assert created.status_code == 201, created.text
        hook_id = created.json()["id"]
        moved = await customer.patch(
            f"/v1/webhooks/{hook_id}", json={"url": "https://metadata.example.net/h"}
        )
        assert moved.status_code == 422 and moved.json()["address_class"] == "link_local"
        kept = await customer.get(f"/v1/webhooks/{hook_id}")
        assert kept.json()["url"] == "https://hooks.example.net/h"


@pytest.fixture(name="listener")
async def listener_fixture() -> AsyncIterator[tuple[int, list[int]]]:
    """A TCP listener on 127.0.0.1 that counts connections: (port, [count])."""
    count = [0]

    def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        count[0] += 1
        writer.close()

    server = await asyncio.start_server(accepted, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, count
    finally:
        server.close()
        await server.wait_closed()


async def test_every_connection_is_checked_and_nothing_forbidden_is_connected(
    listener: tuple[int, list[int]],
) -> None:
    """For each forbidden class the transport refuses before connecting."""
    port, connections = listener
    for kind, addresses in CLASSES.items():
        if kind is AddressClass.PUBLIC:
            continue
        for address in addresses:
            resolver = Resolver({"hooks.example.net": [address]})
            policy = WebhookPolicy(allow_http=True)
            async with guarded_client(policy=policy, resolver=resolver) as client:
                with pytest.raises(ForbiddenAddressError) as caught:
                    await client.post(f"http://hooks.example.net:{port}/hook", content=b"{}")
            assert caught.value.address_class is kind, address
            assert resolver.asked == ["hooks.example.net"]
    # The provider's own networks, as configured.
    internal = WebhookPolicy(allow_http=True, internal_networks=(net("8.8.4.0/24"),))
    resolver = Resolver({"hooks.example.net": ["8.8.4.4"]})
    async with guarded_client(policy=internal, resolver=resolver) as client:
        with pytest.raises(ForbiddenAddressError) as caught:
            await client.post(f"http://hooks.example.net:{port}/hook", content=b"{}")
    assert caught.value.address_class is AddressClass.INTERNAL
    # A literal URL is checked without asking any resolver.
    async with guarded_client(policy=WebhookPolicy(allow_http=True), resolver=Resolver({})) as c:
        with pytest.raises(ForbiddenAddressError):
            await c.post(f"http://127.0.0.1:{port}/hook", content=b"{}")
    # No answer at all: a failure to retry, not a connection either.
    async with guarded_client(policy=WebhookPolicy(allow_http=True), resolver=Resolver({})) as c:
        with pytest.raises(UnresolvableHostError):
            await c.post(f"http://gone.example.net:{port}/hook", content=b"{}")
    assert connections[0] == 0
    # The control: allowed, the same listener is reached (so 0 above means refused).
    allowed = WebhookPolicy(allow_http=True, allow_networks=(net("127.0.0.1/32"),))
    async with guarded_client(policy=allowed, resolver=Resolver({})) as client:
        with pytest.raises(httpx.HTTPError):
            await client.post(f"http://127.0.0.1:{port}/hook", content=b"{}")
    assert connections[0] == 1


def dispatcher(
    database: Database, clock: FakeClock, policy: WebhookPolicy, resolver: Resolver
) -> NotificationDispatcher:
    settings = replace(
        DEFAULT_DISPATCHER,
        webhook_policy=policy,
        send_timeout=15.0,
        claim_timeout=timedelta(seconds=30),
        max_attempts=3,
    )
    return NotificationDispatcher(
        sessionmaker=database.sessionmaker,
        settings=settings,
        clock=clock,
        rng=lambda: 1.0,
        resolver=resolver,
    )


async def subscribe(app: FastAPI, url: str) -> None:
    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        created = await customer.post("/v1/webhooks", json={"url": url})
        assert created.status_code == 201, created.text


async def failed_deliveries(app: FastAPI) -> list[dict[str, object]]:
    async with authed_client(app, role=Role.NOC) as noc:
        page = (await noc.get("/v1/notifications", params={"state": "failed"})).json()
        return list(page["data"])


async def test_a_name_rebound_to_loopback_after_subscription_is_refused_at_delivery(
    database: Database,
    service: CaseService,
    incidents: IncidentService,
    clock: FakeClock,
    webhook_sink: WebhookSink,
) -> None:
    port = httpx.URL(webhook_sink.url).port
    # Subscribed while the name pointed at an allow-listed receiver (127.0.0.2)...
    policy = WebhookPolicy(allow_http=True, allow_networks=(net("127.0.0.2/32"),))
    resolver = Resolver({"hooks.example.net": ["127.0.0.2"]})
    app = hook_app(database, clock, service, policy, resolver)
    await subscribe(app, f"http://hooks.example.net:{port}/hook")
    # ... then rebound to 127.0.0.1, where the sink (standing for our own API) listens.
    resolver.answers["hooks.example.net"] = ["127.0.0.1"]
    resolver.asked.clear()
    await incidents.open_incident(incident("ntu-1"))
    sender = dispatcher(database, clock, policy, resolver)
    assert await sender.run_once(START) == 1
    assert resolver.asked == ["hooks.example.net"]  # resolved again at the connection
    assert webhook_sink.requests == []
    [failed] = await failed_deliveries(app)
    assert failed["attempts"] == 1  # permanent: not retried
    error = str(failed["last_error"])
    assert "hooks.example.net resolves to 127.0.0.1, a loopback address" in error
    assert await sender.run_once(START + timedelta(days=1)) == 0
    assert webhook_sink.requests == []


async def test_rules_tightened_after_subscription_apply_at_delivery(
    database: Database,
    service: CaseService,
    incidents: IncidentService,
    clock: FakeClock,
    webhook_sink: WebhookSink,
) -> None:
    lab = WebhookPolicy(allow_http=True, allow_networks=(net("127.0.0.0/8"),))
    app = hook_app(database, clock, service, lab)
    await subscribe(app, webhook_sink.url)
    await incidents.open_incident(incident("ntu-1"))
    # Restarted without the lab settings: http and loopback are no longer allowed.
    assert await dispatcher(database, clock, WebhookPolicy(), Resolver({})).run_once(START) == 1
    assert webhook_sink.requests == []
    [failed] = await failed_deliveries(app)
    assert failed["attempts"] == 1 and "must use https" in str(failed["last_error"])


async def test_delivery_connects_to_the_checked_address_with_the_name_as_host(
    database: Database,
    service: CaseService,
    incidents: IncidentService,
    clock: FakeClock,
    webhook_sink: WebhookSink,
) -> None:
    """The resolver's answer is what is connected to; the name stays in ``Host``."""
    port = httpx.URL(webhook_sink.url).port
    policy = WebhookPolicy(allow_http=True, allow_networks=(net("127.0.0.1/32"),))
    resolver = Resolver({"receiver.test": ["127.0.0.1"]})
    app = hook_app(database, clock, service, policy, resolver)
    await subscribe(app, f"http://receiver.test:{port}/hook")
    await incidents.open_incident(incident("ntu-1"))
    assert await dispatcher(database, clock, policy, resolver).run_once(START) == 1
    [request] = webhook_sink.requests
    assert request.headers["host"] == f"receiver.test:{port}"


async def test_redirects_are_not_followed(
    database: Database,
    service: CaseService,
    incidents: IncidentService,
    clock: FakeClock,
    webhook_sink: WebhookSink,
) -> None:
    webhook_sink.status = 307
    webhook_sink.headers = {"Location": "http://169.254.169.254/latest/meta-data/"}
    policy = WebhookPolicy(allow_http=True, allow_networks=(net("127.0.0.0/8"),))
    settings = NotificationSettings.model_validate(
        {"webhooks": {"allow_http": True, "allow_networks": ["127.0.0.0/8"]}}
    )
    app = create_app(
        sessionmaker=database.sessionmaker,
        case_service=service,
        clock=clock,
        notifications=settings,
    )
    await subscribe(app, webhook_sink.url)
    await incidents.open_incident(incident("ntu-1"))
    assert await dispatcher(database, clock, policy, Resolver({})).run_once(START) == 1
    assert len(webhook_sink.requests) == 1
    [failed] = await failed_deliveries(app)
    assert failed["attempts"] == 1
    assert "HTTP 307" in str(failed["last_error"])
    assert "redirect to http://169.254.169.254/latest/meta-data/ not followed" in str(
        failed["last_error"]
    )


async def test_the_system_resolver_reads_literals_without_asking_dns() -> None:
    # Numeric hosts only: a name would send a query off this machine.
    assert await system_resolver("127.0.0.1", 80) == [ip("127.0.0.1")]
    assert await system_resolver("::1", 80) == [ip("::1")]
    assert await system_resolver("2130706433", 80) == [ip("127.0.0.1")]  # inet_aton form


async def test_tls_to_the_pinned_address_is_verified_against_the_host_name() -> None:
    """SNI and the certificate check use the URL's name, not the address connected to."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("receiver.test").configure_cert(server_context)
    names: list[str | None] = []
    server_context.sni_callback = lambda _socket, name, _context: names.append(name)
    requests: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    policy = WebhookPolicy(allow_networks=(net("127.0.0.1/32"),))
    resolver = Resolver({"receiver.test": ["127.0.0.1"], "impostor.test": ["127.0.0.1"]})
    transport = GuardedTransport(policy=policy, resolver=resolver, ssl_context=client_context)
    try:
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            answer_ = await client.post(f"https://receiver.test:{port}/hook", content=b"{}")
            assert answer_.status_code == 204
            # Same address, another name: the certificate does not match it.
            with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                await client.post(f"https://impostor.test:{port}/hook", content=b"{}")
    finally:
        server.close()
        await server.wait_closed()
    assert names[0] == "receiver.test" and names[1] == "impostor.test"
    assert requests[0].startswith(b"POST /hook HTTP/1.1\r\n")
    assert f"host: receiver.test:{port}".encode() in requests[0].lower()
