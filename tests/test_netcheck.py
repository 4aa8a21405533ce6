"""The address policy: which URLs and addresses a fetch may reach."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.errors import BlockedURLError
from aggregator.netcheck import (
    check_url,
    embedded_ipv4,
    is_public_address,
    literal_address,
    resolve_and_check,
)

NON_PUBLIC_V4 = [
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
]


def addresses_in(networks: list[str]) -> st.SearchStrategy[ipaddress.IPv4Address]:
    def within(net: str) -> st.SearchStrategy[ipaddress.IPv4Address]:
        network = ipaddress.IPv4Network(net)
        first = int(network.network_address)
        return st.integers(first, first + network.num_addresses - 1).map(ipaddress.IPv4Address)

    return st.one_of(*(within(net) for net in networks))


def wrappings(v4: ipaddress.IPv4Address) -> list[ipaddress.IPv6Address]:
    """The IPv6 forms that carry ``v4`` inside."""
    n = int(v4)
    return [
        ipaddress.IPv6Address(0xFFFF << 32 | n),  # ::ffff:a.b.c.d (mapped)
        ipaddress.IPv6Address(0x64FF9B << 96 | n),  # 64:ff9b::a.b.c.d (NAT64)
        ipaddress.IPv6Address(0x2002 << 112 | n << 80 | 1),  # 2002:aabb:ccdd::1 (6to4)
        ipaddress.IPv6Address(0xFFFF << 48 | n),  # ::ffff:0:a.b.c.d (translated)
        ipaddress.IPv6Address(n),  # ::a.b.c.d (compatible)
    ]


@given(addresses_in(NON_PUBLIC_V4))
def test_non_public_ipv4_and_every_wrapping_is_not_public(v4: ipaddress.IPv4Address) -> None:
    assert not is_public_address(v4)
    for v6 in wrappings(v4):
        assert embedded_ipv4(v6) == v4 or int(v4) <= 1
        assert not is_public_address(v6), v6


@given(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address))
def test_public_ipv4_wrapped_stays_public(v4: ipaddress.IPv4Address) -> None:
    # The wrappers add nothing: the embedded address alone decides.
    if is_public_address(v4):
        assert all(is_public_address(v6) for v6 in wrappings(v4))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.31.255.255", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "255.255.255.255", "224.0.0.251", "192.0.2.10",
        "::1", "::", "fe80::1", "fe80::1%1", "fc00::1", "fd12:3456::1", "ff02::1",
        "2001:db8::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe",
        "64:ff9b::7f00:1", "2002:7f00:1::", "2002:a9fe:a9fe::1", "::7f00:1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "64:ff9b:1::1", "3fff::1", "5f00::1", "100::1", "4000::1",
    ],
)
def test_traps_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700::6810:84e5", "::ffff:8.8.8.8",
                "64:ff9b::808:808", "2002:808:808::1"],
)
def test_public_addresses_are_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7F.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("blog.example", None),
        ("1.example", None),
    ],
)
def test_numeric_hosts_are_read_like_the_c_resolver(host: str, expected: str | None) -> None:
    address = literal_address(host)
    assert (str(address) if address else None) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/feed", "http://0x7F.1/feed", "http://127.1/", "http://0177.0.0.1/",
        "http://[::ffff:127.0.0.1]/", "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "http://[2002:7f00:1::]/", "https://169.254.169.254/", "http://[::1]:8080/",
    ],
)
def test_odd_numeric_urls_are_blocked(url: str) -> None:
    host, port = check_url(url)
    with pytest.raises(BlockedURLError, match="set allow_private = true"):
        asyncio.run(resolve_and_check(host, port, allow_private=False))
    # The same host is fine for a source that opted in.
    assert asyncio.run(resolve_and_check(host, port, allow_private=True))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://Blog.Example/feed", ("blog.example", 80)),
        ("https://blog.example/feed", ("blog.example", 443)),
        ("HTTPS://blog.example:8443/", ("blog.example", 8443)),
        ("http://[2606:4700::1]/", ("2606:4700::1", 80)),
        ("http://blog.example./", ("blog.example", 80)),
        ("http://bücher.example/", ("xn--bcher-kva.example", 80)),
    ],
)
def test_check_url_returns_host_and_port(url: str, expected: tuple[str, int]) -> None:
    assert check_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://blog.example/feed", "file:///etc/passwd", "javascript:alert(1)",
        "gopher://127.0.0.1:6379/_", "http:///feed", "//blog.example/feed", "http://[::1/",
        "http://blog.example:99999/",
    ],
)
def test_check_url_refuses(url: str) -> None:
    with pytest.raises(BlockedURLError):
        check_url(url)


def test_message_says_what_to_do() -> None:
    with pytest.raises(BlockedURLError) as caught:
        asyncio.run(resolve_and_check("127.0.0.1", 80, allow_private=False))
    assert str(caught.value) == (
        "127.0.0.1 resolves to 127.0.0.1, a loopback address; "
        "set allow_private = true on the source if this is intended"
    )


def test_localhost_name_is_resolved_and_blocked() -> None:
    with pytest.raises(BlockedURLError, match="loopback"):
        asyncio.run(resolve_and_check("localhost", 80, allow_private=False))
