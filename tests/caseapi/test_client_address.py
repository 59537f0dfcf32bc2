"""Who the client is: the peer, or what trusted proxies appended; how it is counted."""

from __future__ import annotations

import ipaddress

import pytest

from caseapi.api.client_address import client_address
from caseapi.ratelimit.service import address_subject

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # Nobody trusted: the header is ignored, whatever it says.
        ("192.0.2.7", ["198.51.100.1"], "192.0.2.7"),
        ("192.0.2.7", [], "192.0.2.7"),
        # A trusted proxy: the rightmost hop that is not a trusted proxy.
        ("10.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.1", ["203.0.113.9, 198.51.100.1"], "198.51.100.1"),
        ("10.0.0.1", ["203.0.113.9", "198.51.100.1, 10.0.0.2"], "198.51.100.1"),
        # Only proxies: the leftmost is the closest thing to a client.
        ("10.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),
        # A trusted proxy that forwarded no header: the proxy itself.
        ("10.0.0.1", [], "10.0.0.1"),
        # Garbage ends the walk at the last good hop.
        ("10.0.0.1", ["198.51.100.1, junk, 10.0.0.2"], "10.0.0.2"),
        ("10.0.0.1", ["junk"], "10.0.0.1"),
        # IPv6, and IPv4 seen through a dual-stack socket.
        ("fd00::1", ["2001:db8::5"], "2001:db8::5"),
        ("::ffff:192.0.2.7", ["198.51.100.1"], "192.0.2.7"),
        ("10.0.0.1", ["::ffff:198.51.100.1"], "198.51.100.1"),
        # Not an IP peer (a test transport, a Unix socket): as given.
        ("testclient", ["198.51.100.1"], "testclient"),
        (None, ["198.51.100.1"], "unknown"),
    ],
)
def test_client_address(peer, forwarded, expected):
    assert client_address(peer, forwarded, trusted_proxies=PROXIES) == expected


def test_no_trusted_proxies_by_default():
    assert client_address("127.0.0.1", ["198.51.100.1"], trusted_proxies=()) == "127.0.0.1"


@pytest.mark.parametrize(
    ("address", "subject"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("unknown", "unknown"),
    ],
)
def test_an_ipv6_client_is_counted_by_its_64(address, subject):
    assert address_subject(address) == subject
