"""Which URLs and addresses a fetch may reach.

Feeds name URLs we did not choose (comment feeds, redirects), so every hop is
checked: http/https only, and the host must resolve to public addresses unless
the source opted in with ``allow_private = true``. The rules here know about
the ways an internal address hides: numeric host forms the C resolver accepts
("2130706433", "0x7F.1", "127.1") and IPv6 forms that wrap an IPv4 address
(::ffff:0:0/96, 64:ff9b::/96, 2002::/16, ::/96), several of which Python's
``ipaddress`` calls global.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit

from aggregator.errors import BlockedURLError, FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}

# Each range with the word an ops reader understands. Python's own flags are
# not enough: 3.11 calls multicast, 3fff::/20 and 5f00::/16 global.
_V4_BLOCKED: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), kind)
    for net, kind in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "reserved"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # includes 255.255.255.255, broadcast
    )
)

_V6_BLOCKED: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), kind)
    for net, kind in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "private (local-use NAT64)"),
        ("100::/64", "reserved (discard)"),
        # Teredo's client address is obfuscated and no feed lives on one.
        ("2001::/32", "reserved (Teredo)"),
        ("2001::/23", "reserved"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "reserved (SRv6)"),
        ("fc00::/7", "private (unique local)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "private (site-local)"),
        ("ff00::/8", "multicast"),
    )
)

_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_V4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")

# What inet_aton accepts besides dotted quads: 1–4 parts in decimal, octal or hex.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.I)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition form carries, or None."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or ip in _V4_TRANSLATED or ip in _V4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_kind(ip: IPAddress) -> str | None:
    """Why an address is not public ("loopback", "private" …), or None if it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "link-local"
        if ip in _V4_COMPATIBLE and int(ip) <= 1:
            return "loopback" if int(ip) == 1 else "unspecified"
        inner = embedded_ipv4(ip)
        if inner is not None:
            kind = address_kind(inner)
            return f"{kind} (wrapped in IPv6)" if kind else None
        for net6, kind in _V6_BLOCKED:
            if ip in net6:
                return kind
        if ip not in _GLOBAL_UNICAST:
            return "reserved"
    else:
        for net4, kind in _V4_BLOCKED:
            if ip in net4:
                return kind
    if not ip.is_global:
        return "non-public"
    return None


def is_public_address(ip: IPAddress) -> bool:
    """True when ``ip`` is a globally reachable unicast address."""
    return address_kind(ip) is None


def check_url(url: str) -> tuple[str, int]:
    """Check scheme and host of ``url``; return (host, port).

    The host is lower-cased, without IPv6 brackets, as the URL writes it;
    :func:`resolve_and_check` decides which addresses it stands for.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise BlockedURLError(f"{url!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise BlockedURLError(
            f"{url!r}: only http and https URLs are fetched, not {scheme or 'no scheme'!r}"
        )
    if not host:
        raise BlockedURLError(f"{url!r} has no host")
    return host_key(host), port if port is not None else _DEFAULT_PORTS[scheme]


def host_key(host: str) -> str:
    """The form of a host name that two spellings of one host share."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def literal_address(host: str) -> IPAddress | None:
    """The address a numeric host stands for, read the way the C resolver reads it."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


async def _lookup(host: str, port: int) -> list[str]:
    """Addresses of ``host`` from the system resolver (a seam for tests)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve {host}: {exc.strerror}") from None
    except UnicodeError:
        raise FetchError(f"cannot resolve {host}: not a valid host name") from None
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        if sockaddr[0] not in addresses:
            addresses.append(str(sockaddr[0]))
    return addresses


async def resolve_and_check(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Resolve ``host``; return its addresses if every one may be fetched from.

    Every address must be public (one private answer is enough to refuse:
    the connection could go to any of them) unless ``allow_private``.
    """
    literal = literal_address(host)
    addresses = [str(literal)] if literal is not None else await _lookup(host, port)
    if not addresses:
        raise FetchError(f"cannot resolve {host}: no addresses")
    if allow_private:
        return addresses
    for address in addresses:
        kind = address_kind(ipaddress.ip_address(address))
        if kind is not None:
            raise BlockedURLError(
                f"{host} resolves to {address}, a {kind} address; "
                "set allow_private = true on the source if this is intended"
            )
    return addresses
