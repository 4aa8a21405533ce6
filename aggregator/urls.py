"""Canonical URLs: one key for every spelling of the same article's address.

Dedupe compares entries from different sources by the canonical form of
their links. Blogs and their feeds spell one address many ways: http or
https, with or without "www." or a mobile "m." host, a trailing slash or
"index.html", tracking parameters from feed services and newsletters, an AMP
variant. canonical_url maps all of those to one string. The key is for
matching only; it is never published as a link, so it may drop parts (the
fragment, credentials) that a reader would need.

canonical_url is idempotent and never raises, which tests/test_urls.py
checks with hypothesis.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

__all__ = ["TRACKING_PARAMETERS", "canonical_url", "fast_urljoin"]

#: Query parameters that only tell who sent the reader. Kept to well-known
#: ones: a general name such as "ref" or "source" can select content.
TRACKING_PARAMETERS: frozenset[str] = frozenset(
    {
        "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_hsenc", "_hsmi",
        "igshid", "yclid", "wt_mc", "wt.mc_id", "at_medium", "at_campaign", "ref_src",
        "cmpid",
        # The AMP flag: "?amp", "?amp=1" show the same article.
        "amp",
    }
)  # fmt: skip

#: Characters a browser drops from a URL (tabs, newlines) or that no URL has.
_URL_JUNK = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
#: A percent-escape, or a "%" that starts none (which is then escaped itself,
#: so that "%%41" cannot turn into a new escape on a second pass).
_PERCENT_ESCAPE = re.compile("%([0-9A-Fa-f]{2})?")
#: RFC 3986 unreserved characters: "%41" and "A" are the same URL.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
#: What may stand unescaped in a path; "%" stays so existing escapes survive.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
#: A host name as it may appear: no spaces, delimiters or escapes.
_HOST = re.compile(r"[^\s/\\?#@:<>\"'`{}|^%\[\]]+")
_SCHEMES = frozenset({"http", "https"})
#: Both default ports go: the key always says https, so keeping ":443" from an
#: http URL would make the key of a key differ from the key.
_DEFAULT_PORTS = frozenset({80, 443})
_HOST_PREFIXES = ("www.", "m.")
#: Last path segments that name the same page as their directory.
_INDEX_FILES = ("/index.html", "/index.php", "/amp")


# An absolute http(s) URL that urllib's urljoin gives back unchanged whatever
# the (http or https) base: ASCII host, no ";" params, no empty "?" or "#",
# nothing urlsplit strips or rejects (it strips and rejects ASCII only, and
# only the host is checked further). Most links in posts are of this kind.
_PLAIN_ABSOLUTE = re.compile(
    "https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[!-\"$-:<->@-~\x80-\U0010ffff]*)?"
    "(?:\\?[!-\"$-~\x80-\U0010ffff]+)?(?:\\#[!-~\x80-\U0010ffff]+)?\\Z")
_PLAIN_BASE = re.compile(r"(https?://[A-Za-z0-9.-]+(?::[0-9]+)?)(?:[/?#][!-~]*)?\Z")
# A path from the root ("/wp-content/a.jpg") without dot segments, params or
# an empty query or fragment: urljoin puts it after the base's host as it is.
_PLAIN_ROOTED = re.compile(r"/(?![/.])(?:[!-\"$-:<->@-~](?!\.\.?(?:[/?#]|\Z)))*"
                           r"(?:\?[!-\"$-~]+)?(?:\#[!-~]+)?\Z")
_SLASH_DOT = re.compile(r"/\.\.?(?:[/?#]|\Z)")
# Schemes urljoin never resolves (not in urllib's uses_relative), common as
# entry ids ("tag:blogger.com,1999:…", "urn:uuid:…"): such an id comes back
# as it is. Without "//" after the colon, which feedparser's join rewrites.
_UNRESOLVED_SCHEMES = ("tag:", "urn:")


def fast_urljoin(base: str, uri: str) -> str | None:
    """urljoin(base, uri) in the plain cases, without urllib; None for the others.

    Also feedparser's join (its _urljoin) in those cases. tests/test_urls.py
    compares both on generated URLs.
    """
    if _PLAIN_ABSOLUTE.match(uri):
        return uri if _PLAIN_BASE.match(base) else None
    if uri[:1] == "/":
        if _PLAIN_ROOTED.match(uri) and not _SLASH_DOT.search(uri):
            origin = _PLAIN_BASE.match(base)
            if origin is not None:
                return origin.group(1) + uri
        return None
    if uri.startswith(_UNRESOLVED_SCHEMES) and uri[4:6] != "//" and _PLAIN_BASE.match(base):
        return uri
    return None


def _normalize_escape(match: re.Match[str]) -> str:
    hex_digits = match.group(1)
    if hex_digits is None:
        return "%25"
    char = chr(int(hex_digits, 16))
    return char if char in _UNRESERVED else "%" + hex_digits.upper()


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 §5.2.4, on whole segments.
    if "." not in path:
        return path
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    result = "/".join(output)
    return result if result.startswith("/") else "/" + result


def _canonical_path(path: str) -> str:
    path = _PERCENT_ESCAPE.sub(_normalize_escape, path)
    path = quote(path, safe=_PATH_SAFE)
    path = _remove_dot_segments(path)
    # Strip "/index.html", "/amp" and trailing slashes in any order until
    # nothing changes, so that a second pass has nothing left to strip.
    while True:
        before = path
        path = path.rstrip("/")
        for suffix in _INDEX_FILES:
            if path.lower().endswith(suffix):
                path = path[: -len(suffix)]
        if path == before:
            break
    return path or "/"


def _canonical_host(hostname: str) -> str | None:
    host = hostname.rstrip(".").lower()
    if not host:
        return None
    if ":" in host:  # IPv6 literal; urlsplit took the brackets off.
        try:
            return f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            return None
    if not _HOST.fullmatch(host):
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
        # Nameprep can turn a character into a space plus an accent.
        if not _HOST.fullmatch(host):
            return None
    changed = True
    while changed:
        changed = False
        for prefix in _HOST_PREFIXES:
            rest = host[len(prefix) :]
            # "www.com" is a host of its own, not a www. variant of "com".
            if host.startswith(prefix) and "." in rest:
                host = rest
                changed = True
    return host


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = [
        (name, value)
        for name, value in parse_qsl(query, keep_blank_values=True, errors="replace")
        if name.lower() not in TRACKING_PARAMETERS and not name.lower().startswith("utm_")
    ]
    if not pairs:
        return ""
    pairs.sort()
    return "?" + urlencode(pairs)


def canonical_url(url: str) -> str | None:
    """Return the matching key of an http(s) *url*, or None when it has none.

    The key is "https://" + host (lower-case, without "www."/"m.", without a
    default port) + path (percent-escapes normalized, dot segments resolved,
    no trailing slash, "index.html"/"index.php"/"/amp" removed) + the query
    without tracking parameters, sorted. Credentials and the fragment go.
    """
    if not isinstance(url, str):
        return None
    cleaned = _URL_JUNK.sub("", url.strip())
    try:
        parts = urlsplit(cleaned)
        if parts.scheme.lower() not in _SCHEMES or not parts.hostname:
            return None
        port = parts.port
        host = _canonical_host(parts.hostname)
    except ValueError:
        return None
    if host is None:
        return None
    netloc = host if port is None or port in _DEFAULT_PORTS else f"{host}:{port}"
    return f"https://{netloc}{_canonical_path(parts.path)}{_canonical_query(parts.query)}"


def site_host(url: str | None) -> str | None:
    """The host of ``url`` lower-cased, without a leading ``www.``/``m.``; None if none."""
    try:
        host = urlsplit(url).hostname if url else None
    except ValueError:
        return None
    if not host:
        return None
    host = host.lower().rstrip(".")
    for prefix in ("www.", "m."):
        # "m.example" stays itself: only a prefix before a domain is dropped.
        if host.startswith(prefix) and "." in host[len(prefix):]:
            host = host[len(prefix):]
    return host


def same_site(url: str | None, *site_urls: str | None) -> bool:
    """Is ``url`` on the same host as one of ``site_urls`` (``www.``/``m.`` aside)?

    A blog's feed may name comment feeds anywhere; we only follow those on
    the blog's own host (its feed URL or its home page), so a feed cannot
    point us at somebody else's server.
    """
    host = site_host(url)
    return host is not None and any(host == site_host(site) for site in site_urls)
