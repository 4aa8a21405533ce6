"""Hostile feed documents through the real parse path, in a bounded worker.

Each document is made here (none is committed) and goes through
``parse_and_normalize`` in a ParserPool worker, as a fetch pass runs it. Every
one must end as a ParseError or as sanitized entries: never another exception,
never a hang, never more memory than the pool allows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.normalize import EARLIEST_PLAUSIBLE
from aggregator.parse import MAX_ENTRIES
from aggregator.parser_pool import ParserPool
from aggregator.reading import parse_and_normalize
from aggregator.sanitize import TITLE_MAX_LENGTH
from aggregator.types import NormalizedEntry, ParsedFeed

MEMORY_LIMIT = 1024 * 1024 * 1024
TIMEOUT = 20.0
FEED_URL = "https://blog.example/feed"
RSS_TYPE = {"content-type": "application/rss+xml"}
FIRST_SEEN = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

#: What XML 1.0 cannot carry and PostgreSQL text refuses, plus C1 controls.
FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
#: NUL and lone surrogates: what a ParsedFeed promises to be free of.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

Outcome = tuple[ParsedFeed, list[NormalizedEntry]]


def parse_measured(body: bytes, headers: dict[str, str]) -> tuple[Outcome, int]:
    """parse_and_normalize in the worker, and the worker's peak address space."""
    outcome = parse_and_normalize(body, headers, FEED_URL, "post", None, FIRST_SEEN)
    status = Path("/proc/self/status").read_text()
    peak_kib = int(re.search(r"VmPeak:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    return outcome, peak_kib * 1024


@pytest.fixture(scope="module")
def pool() -> Iterator[ParserPool]:
    pool = ParserPool(2, timeout=TIMEOUT, memory_limit=MEMORY_LIMIT,
                      preload=("aggregator.pipeline",))
    try:
        yield pool
    finally:
        pool.close()


def parse_hostile(pool: ParserPool, body: bytes,
                  headers: dict[str, str] = RSS_TYPE) -> Outcome | ParseError:
    """The ParseError, or the sanitized feed and entries: anything else fails."""
    try:
        outcome, peak = asyncio.run(pool.run(parse_measured, body, headers))
    except ParseError as error:
        assert str(error)
        return error
    assert peak <= MEMORY_LIMIT
    assert_sanitized(*outcome)
    return outcome


def assert_sanitized(feed: ParsedFeed, entries: list[NormalizedEntry]) -> None:
    for value in (feed.title, feed.link, feed.language, feed.warning, feed.comments_feed_url):
        assert not UNSTORABLE.search(value or ""), value
    for entry in entries:
        for field in dataclasses.fields(entry):
            value = getattr(entry, field.name)
            texts = value if isinstance(value, tuple) else (value,)
            for text in texts:
                if isinstance(text, str):
                    assert not FORBIDDEN.search(text), (field.name, text[:200])
        assert entry.title and len(entry.title) <= TITLE_MAX_LENGTH
        assert EARLIEST_PLAUSIBLE <= entry.published <= FIRST_SEEN
        assert entry.updated is None or EARLIEST_PLAUSIBLE <= entry.updated <= FIRST_SEEN
        for url in (entry.link, entry.comments_feed_url, entry.in_reply_to_link):
            assert url is None or url.startswith(("http://", "https://"))


def entries_of(result: Outcome | ParseError) -> list[NormalizedEntry]:
    assert not isinstance(result, ParseError), f"expected entries, got ParseError: {result}"
    return result[1]


# --------------------------------------------------------------------------- documents


def rss(items: bytes, *, encoding: bytes = b"utf-8", prolog: bytes = b"") -> bytes:
    return (b'<?xml version="1.0" encoding="' + encoding + b'"?>' + prolog
            + b'<rss version="2.0"><channel><title>Blog</title>'
            b"<link>https://blog.example/</link>" + items + b"</channel></rss>")


def item(title: bytes, guid: bytes | None = None, extra: bytes = b"") -> bytes:
    guid_element = b"" if guid is None else b'<guid isPermaLink="false">' + guid + b"</guid>"
    return (b"<item><title>" + title + b"</title>" + guid_element
            + b"<link>https://blog.example/post</link><description>Text.</description>"
            + extra + b"</item>")


def billion_laughs() -> bytes:
    levels = b"".join(b'<!ENTITY lol%d "%s">' % (level, b"&lol%d;" % (level - 1) * 10)
                      for level in range(1, 10))
    return rss(item(b"&lol9;", b"1"),
               prolog=b'<!DOCTYPE rss [<!ENTITY lol0 "lol">' + levels + b"]>")


def quadratic_blowup() -> bytes:
    entity = b'<!DOCTYPE rss [<!ENTITY a "' + b"A" * 50_000 + b'">]>'
    return rss(item(b"q", b"1", b"<content>" + b"&a;" * 5_000 + b"</content>"), prolog=entity)


def external_entity() -> bytes:
    return rss(item(b"&xxe;", b"1"),
               prolog=b'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>')


def deep_nesting() -> bytes:
    depth = 20_000
    return rss(item(b"deep", b"1", b"<x>" * depth + b"bottom" + b"</x>" * depth))


def deep_markup_in_description() -> bytes:
    depth = 20_000
    return rss(item(b"deep", b"1", b"<description>" + b"&lt;div&gt;" * depth + b"bottom"
                    + b"&lt;/div&gt;" * depth + b"</description>"))


def many_entries() -> bytes:
    return rss(b"".join(b"<item><guid>%d</guid></item>" % number for number in range(50_000)))


def control_characters() -> bytes:
    return rss(item(b"a\x00b\x01c\x1bd&#1;e&#x7f;f\x7fg&#x9f;h", b"id\x00\x01\x08x")
               + item(b"&#0;", b"\x00\x1f")
               + item(b"ok", b"2", b"<author>x\x00y@example.com (N\x02ame)</author>"
                      b"<category>c\x00at</category>"))


def lone_surrogates() -> bytes:
    return rss(item(b"a&#xD800;b&#55296;c&#xDFFF;", b"&#xD800;")
               + item(b"x", b"2", b"<author>&#xdbff;</author><category>&#xDC00;</category>")
               + b"<item><title>y</title><description>&#xD800;&#xDC00;</description></item>")


def absurd_dates() -> bytes:
    dates = [b"Mon, 01 Jan 0001 00:00:00 GMT", b"Fri, 31 Dec 9999 23:59:59 GMT",
             b"Thu, 01 Jan 1970 00:00:00 GMT", b"Sun, 30 Feb 2020 10:00:00 GMT",
             b"0001-01-01T00:00:00Z", b"9999-12-31T23:59:59+14:00", b"1970-01-01",
             b"Feb 30, 2021", b"Sat, 30 Feb 2019 99:99:99 +9999", b"soon"]
    rss_items = b"".join(b"<item><title>r%d</title><guid>r%d</guid><pubDate>%s</pubDate></item>"
                         % (number, number, date) for number, date in enumerate(dates))
    dc_items = b"".join(b"<item><title>d%d</title><guid>d%d</guid><dc:date>%s</dc:date></item>"
                        % (number, number, date) for number, date in enumerate(dates))
    return rss(rss_items + dc_items).replace(
        b'<rss version="2.0">',
        b'<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">')


def absurd_atom_dates() -> bytes:
    dates = [b"0001-01-01T00:00:00Z", b"9999-12-31T23:59:59Z", b"1970-01-01T00:00:00Z",
             b"2020-02-30T00:00:00Z", b"-0001-01-01T00:00:00Z", b"2020-13-45T25:61:61Z"]
    entries = b"".join(b"<entry><id>urn:e%d</id><title>a%d</title><published>%s</published>"
                       b"<updated>%s</updated></entry>" % (number, number, date, date)
                       for number, date in enumerate(dates))
    return (b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
            + entries + b"</feed>")


# --------------------------------------------------------------------------- refused outright


@pytest.mark.parametrize(("make", "headers"), [
    pytest.param(billion_laughs, RSS_TYPE, id="billion-laughs"),
    pytest.param(quadratic_blowup, RSS_TYPE, id="quadratic-entity-blowup"),
    pytest.param(external_entity, RSS_TYPE, id="external-entity"),
    pytest.param(lambda: b"", RSS_TYPE, id="empty-body"),
    pytest.param(lambda: b"  \r\n\t ", RSS_TYPE, id="blank-body"),
    pytest.param(lambda: b"/etc/passwd", RSS_TYPE, id="local-path"),
    pytest.param(lambda: random.Random(3).randbytes(100_000), RSS_TYPE, id="binary-garbage"),
    pytest.param(lambda: b"\x1f\x8b\x08\x00" + random.Random(4).randbytes(5_000), {},
                 id="undecoded-gzip"),
    pytest.param(lambda: b"<!DOCTYPE html><html><head><title>Blog</title></head><body>"
                 b"<p>Hello</p></body></html>", {"content-type": "text/html"}, id="html-page"),
    pytest.param(lambda: b'{"version": "https://jsonfeed.org/version/1.1", "items": '
                 + b"[" * 100_000 + b"]" * 100_000 + b"}", {"content-type": "application/json"},
                 id="json-nesting"),
])
def test_refused_as_a_parse_error(pool: ParserPool, make: Callable[[], bytes],
                                  headers: dict[str, str]) -> None:
    result = parse_hostile(pool, make(), headers)
    assert isinstance(result, ParseError)


def test_a_body_naming_a_local_feed_file_is_not_read_from_disk(
    pool: ParserPool, tmp_path: Path,
) -> None:
    # feedparser opens a file when given its name; the bytes are what was fetched.
    secret_feed = tmp_path / "feed.xml"
    secret_feed.write_bytes(rss(item(b"LOCAL-FILE-SECRET", b"1")))
    assert isinstance(parse_hostile(pool, str(secret_feed).encode()), ParseError)


# --------------------------------------------------------------------------- DTDs


@pytest.fixture
def dtd_server() -> Iterator[tuple[str, list[str]]]:
    """A local server offering a DTD; it records every request it gets."""
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            body = b'<!ENTITY xxe "SECRET-FROM-DTD">'
            self.send_response(200)
            self.send_header("Content-Type", "application/xml-dtd")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/evil.dtd", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_external_dtds_are_neither_fetched_nor_read(
    pool: ParserPool, tmp_path: Path, dtd_server: tuple[str, list[str]],
) -> None:
    url, requests = dtd_server
    local_dtd = tmp_path / "evil.dtd"
    local_dtd.write_bytes(b'<!ENTITY xxe "SECRET-FROM-DTD">')
    for dtd in (url, local_dtd.as_uri()):
        body = rss(item(b"a &xxe; b", b"1", b"<category>&xxe;</category>"),
                   prolog=b'<!DOCTYPE rss SYSTEM "' + dtd.encode() + b'">')
        result = parse_hostile(pool, body)
        if not isinstance(result, ParseError):
            for entry in result[1]:
                assert "SECRET" not in repr(entry)
    assert requests == []


# --------------------------------------------------------------------------- size and shape


def test_deep_nesting_inside_an_item(pool: ParserPool) -> None:
    for body in (deep_nesting(), deep_markup_in_description()):
        result = parse_hostile(pool, body)
        if not isinstance(result, ParseError):
            assert [entry.title for entry in result[1]] == ["deep"]


def test_fifty_thousand_entries_take_bounded_time_and_are_capped(pool: ParserPool) -> None:
    started = time.monotonic()
    result = parse_hostile(pool, many_entries())
    assert time.monotonic() - started < TIMEOUT
    entries = entries_of(result)
    assert 0 < len(entries) <= MAX_ENTRIES
    assert result[0].warning and "50000 entries" in result[0].warning


def test_a_one_megabyte_title_is_capped(pool: ParserPool) -> None:
    [entry] = entries_of(parse_hostile(pool, rss(item(b"word " * 200_000, b"1"))))
    assert len(entry.title) <= TITLE_MAX_LENGTH
    assert entry.title.startswith("word word") and entry.title.endswith("…")


# --------------------------------------------------------------------------- encodings


def test_invalid_utf8_in_a_feed_declared_utf8(pool: ParserPool) -> None:
    body = rss(item(b"caf\xc3 \xff\xfe bad \xed\xa0\x80 \xc0\xaf end", b"g\xff1"))
    [entry] = entries_of(parse_hostile(pool, body))
    assert entry.title.startswith("caf") and entry.title.endswith("end")


def test_utf16_with_a_byte_order_mark(pool: ParserPool) -> None:
    text = rss(item("Grüße aus Köln".encode(), b"1")).decode()
    body = text.replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
    assert body.startswith((b"\xff\xfe", b"\xfe\xff"))
    [entry] = entries_of(parse_hostile(pool, body))
    assert entry.title == "Grüße aus Köln"


@pytest.mark.parametrize(("declared", "payload"), [
    pytest.param(b"ISO-8859-1", "Grüße €".encode(), id="declared-latin1-really-utf8"),
    pytest.param(b"utf-8", "Grüße €".encode("cp1252"), id="declared-utf8-really-latin1"),
])
def test_mislabelled_encodings(pool: ParserPool, declared: bytes, payload: bytes) -> None:
    for headers in (RSS_TYPE, {"content-type": f"text/xml; charset={declared.decode()}"}):
        [entry] = entries_of(parse_hostile(pool, rss(item(payload, b"1"), encoding=declared),
                                           headers))
        assert entry.title.startswith("Gr")


def test_control_characters_and_nul_in_titles_and_guids(pool: ParserPool) -> None:
    entries = entries_of(parse_hostile(pool, control_characters()))
    assert entries
    ids = [entry.original_id for entry in entries]
    assert "idx" in ids  # the id keeps its printable characters, only controls go


def test_lone_surrogates_from_character_references(pool: ParserPool) -> None:
    entries = entries_of(parse_hostile(pool, lone_surrogates()))
    assert len(entries) == 3
    # A reference to a surrogate reads as U+FFFD, as for any undecodable character.
    assert entries[0].title.replace("\ufffd", "") == "abc"


# --------------------------------------------------------------------------- identity and dates


def test_the_same_guid_twice_in_one_document(pool: ParserPool) -> None:
    body = rss(item(b"one", b"same") + item(b"two", b"same"))
    entries = entries_of(parse_hostile(pool, body))
    assert {entry.identity_key for entry in entries} == {"guid:same"}


def test_entries_without_guids_still_get_distinct_identities(pool: ParserPool) -> None:
    body = rss(b"<item><title>a</title></item><item><title>b</title></item>"
               b"<item><description>only text</description></item>"
               b"<item><link>https://blog.example/x</link></item>")
    entries = entries_of(parse_hostile(pool, body))
    assert len(entries) == 4
    assert len({entry.identity_key for entry in entries}) == 4


@pytest.mark.parametrize("make", [absurd_dates, absurd_atom_dates], ids=["rss", "atom"])
def test_absurd_dates_end_up_plausible(pool: ParserPool, make: Callable[[], bytes]) -> None:
    # The range itself is asserted for every entry in assert_sanitized.
    entries = entries_of(parse_hostile(pool, make()))
    assert len(entries) >= 6
