"""A fault-injecting blog server: every hostile case is one source of one pass.

Each case must end as a recorded error or sanitized entries for that source
alone, in bounded time and memory, while a well-behaved source in the same
pass is fetched and published as usual.
"""

from __future__ import annotations

import asyncio
import gzip
import resource
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from aiohttp import web
from passes import run_pass

from aggregator.parse import MAX_ENTRIES

GOOD = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Good</title><link>http://127.0.0.1/good/</link>
<description>x</description>
<item><title>Klantgerichte merken winnen</title><link>http://127.0.0.1/good/1</link>
<guid isPermaLink="false">good-1</guid><pubDate>Mon, 14 Jan 2013 08:00:00 +0100</pubDate>
<description>Merken die naar hun klanten luisteren winnen vertrouwen.</description></item>
<item><title>Communities rond merken</title><link>http://127.0.0.1/good/2</link>
<guid isPermaLink="false">good-2</guid><pubDate>Tue, 15 Jan 2013 08:00:00 +0100</pubDate>
<description>Fans bouwen mee aan het merk.</description></item>
</channel></rss>"""


def rss(items: str, *, encoding: str = "UTF-8", prolog: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="{encoding}"?>{prolog}<rss version="2.0"><channel>'
            f"<title>Hostile</title><link>http://127.0.0.1/h/</link><description>x</description>"
            f"{items}</channel></rss>").encode()


def item(title: str, guid: str = "g", body: str = "tekst") -> str:
    return (f"<item><title>{title}</title><guid isPermaLink=\"false\">{guid}</guid>"
            f"<description>{body}</description></item>")


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
                  + b"".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'
                             .encode() for i in range(9))
                  + b']><rss version="2.0"><channel><title>&j;</title><item><title>&j;</title>'
                  b"</item></channel></rss>")
QUADRATIC = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x "' + b"x" * 50_000 + b'">]>'
             b'<rss version="2.0"><channel><title>q</title><item><description>'
             + b"&x;" * 5_000 + b"</description></item></channel></rss>")
EXTERNAL = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b'<rss version="2.0"><channel><title>e</title><item><title>&e;</title>'
            b"<guid>e</guid></item></channel></rss>")
DEEP = rss(item("Diep", body="&lt;div&gt;" * 20_000 + "bodem" + "&lt;/div&gt;" * 20_000))
NESTED_XML = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>n</title><item>'
              b"<title>n</title>" + b"<x>" * 20_000 + b"</x>" * 20_000
              + b"</item></channel></rss>")
MANY = rss("".join(f"<item><title>B{i}</title><guid>m{i}</guid></item>" for i in range(50_000)))
HUGE_TITLE = rss(item("Lang" * 250_000))
BAD_UTF8 = rss(item("Kapot \xff\xfe teken")).replace("\u00ff\u00fe".encode(), b"\xff\xfe")
UTF16 = ('<?xml version="1.0" encoding="UTF-16"?><rss version="2.0"><channel><title>U'
         '</title><item><title>Übergröße für Märkte</title><guid>u16</guid></item>'
         "</channel></rss>").encode("utf-16")
MISLABELLED = rss(item("Café Größe"), encoding="ISO-8859-1")
CONTROL = rss(item("Nul\x01\x02 teken", guid="ctl\x03")).replace(b"\x01", b"&#1;")
SURROGATE = rss(item("Half &#xD800; teken", guid="sur"))
DUPLICATE_GUIDS = rss(item("Een", "same") + item("Twee", "same"))
NO_GUIDS = rss("<item><title>Zonder guid</title><description>a</description></item>"
               "<item><title>Ook zonder</title><description>b</description></item>")
ABSURD_DATES = rss("".join(
    f"<item><title>Datum {i}</title><guid>d{i}</guid><pubDate>{date}</pubDate></item>"
    for i, date in enumerate(["Mon, 01 Jan 0001 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
                              "Thu, 01 Jan 1970 00:00:00 GMT", "Mon, 30 Feb 2015 10:00:00 GMT",
                              "gisteren"])))


class FaultServer:
    """An aiohttp server on 127.0.0.1 in its own thread, one route per fault."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.hits: dict[str, int] = {}
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop: asyncio.Event | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        site = web.SockSite(runner, sock)
        await site.start()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> FaultServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] = self.hits.get(path, 0) + 1
        static = {
            "/good": GOOD, "/billion": BILLION_LAUGHS, "/quadratic": QUADRATIC,
            "/external": EXTERNAL, "/deep": DEEP, "/nested": NESTED_XML, "/many": MANY,
            "/title": HUGE_TITLE, "/badutf8": BAD_UTF8, "/utf16": UTF16,
            "/mislabelled": MISLABELLED, "/control": CONTROL, "/surrogate": SURROGATE,
            "/dupes": DUPLICATE_GUIDS, "/noguid": NO_GUIDS, "/dates": ABSURD_DATES,
            "/path": b"/etc/passwd", "/html": b"<html><body>Geen feed</body></html>",
            "/empty": b"", "/binary": bytes(range(256)) * 64,
        }
        if path in static:
            return web.Response(body=static[path], content_type="application/rss+xml")
        if path == "/gzipbomb":
            return web.Response(body=GZIP_BOMB, headers={
                "Content-Encoding": "gzip", "Content-Type": "application/rss+xml"})
        if path == "/deflatebomb":
            return web.Response(body=DEFLATE_BOMB, headers={
                "Content-Encoding": "deflate", "Content-Type": "application/rss+xml"})
        if path == "/unknown-encoding":
            return web.Response(body=b"xx", headers={
                "Content-Encoding": "x-weird", "Content-Type": "application/rss+xml"})
        if path in ("/big-cl", "/big-chunked"):
            response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
            if path == "/big-cl":
                response.content_length = 50 * 1024 * 1024
            await response.prepare(request)
            chunk = b"<!-- padding -->" * 4096
            try:
                for _ in range(50 * 1024 * 1024 // len(chunk)):
                    await response.write(chunk)
            except (ConnectionError, RuntimeError):
                pass
            return response
        if path == "/trickle":
            response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
            await response.prepare(request)
            try:
                for _ in range(120):
                    await response.write(b" ")
                    await asyncio.sleep(0.5)
            except (ConnectionError, RuntimeError):
                pass
            return response
        if path.startswith("/loop/"):
            target = "/loop/b" if path == "/loop/a" else "/loop/a"
            raise web.HTTPFound(self.url(target))
        if path.startswith("/chain/"):
            hop = int(path.rsplit("/", 1)[1])
            raise web.HTTPFound(self.url(f"/chain/{hop + 1}"))
        if path == "/to-other-host":
            # Another host name for the same machine: allow_private covers 127.0.0.1 only.
            raise web.HTTPFound(f"http://localhost:{self.port}/good")
        if path == "/cookie":
            response = web.Response(body=GOOD, content_type="application/rss+xml")
            response.set_cookie("session", "abc")
            return response
        raise web.HTTPNotFound()


GZIP_BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024), 9)
DEFLATE_BOMB = zlib.compress(b"\0" * (64 * 1024 * 1024), 9)
CASES = [
    "billion", "quadratic", "external", "deep", "nested", "many", "title", "badutf8",
    "utf16", "mislabelled", "control", "surrogate", "dupes", "noguid", "dates", "path",
    "html", "empty", "binary", "gzipbomb", "deflatebomb", "unknown-encoding", "big-cl",
    "big-chunked", "trickle", "loop/a", "chain/0", "to-other-host", "cookie",
]


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def test_every_hostile_case_stays_with_its_source(
    tmp_path: Path, faults: FaultServer, database_url: str,
) -> None:
    text = """[aggregator]
title = "Hostile"
base_url = "http://127.0.0.1:8080/"
feeds_dir = "feeds"
[fetch]
allow_short_intervals = true
interval = "1m"
per_host = 16
concurrency = 16
timeouts = { connect = 2, read = 2, total = 4 }
"""
    for name in ["good", *CASES]:
        text += f"""
[[sources]]
name = "{name}"
url = "{faults.url('/' + name)}"
allow_private = true
"""
    config = tmp_path / "config.toml"
    config.write_text(text, "utf-8")
    faults.hits.clear()
    started = time.monotonic()
    report = run_pass(config, database_url, processes=True)
    elapsed = time.monotonic() - started
    assert elapsed < 60, elapsed
    # The test process (server included) stays bounded: no bomb was inflated here.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 900 * 1024

    outcomes = {o.name: o for o in report.outcomes}
    assert set(outcomes) == {"good", *CASES}
    good = outcomes["good"].report
    assert outcomes["good"].result == "updated" and good.new_posts + good.merged_posts == 2
    must_fail = {"billion", "quadratic", "external", "path", "html", "empty", "binary",
                 "gzipbomb", "deflatebomb", "unknown-encoding", "big-cl", "big-chunked",
                 "trickle", "loop/a", "chain/0", "to-other-host"}
    for name in must_fail:
        assert outcomes[name].result == "error", (name, outcomes[name])
        assert outcomes[name].error
    assert faults.hits.get("/good", 0) == 1  # the redirect to another host was not followed
    for name in set(CASES) - must_fail:
        assert outcomes[name].result in ("updated", "error"), (name, outcomes[name])
    assert outcomes["dupes"].report.new_posts == 1
    assert outcomes["noguid"].report.new_posts == 2
    assert outcomes["cookie"].result == "updated"
    # 50,000 entries: read up to the parser's cap, in bounded time.
    assert outcomes["many"].result == "updated"
    assert outcomes["many"].report.new_posts == MAX_ENTRIES

    published = feedparser.parse((tmp_path / "feeds" / "all.atom").read_bytes())
    assert not published.bozo
    titles = [entry.title for entry in published.entries]
    for title in titles:
        assert len(title) <= 1000
        assert not any(ord(ch) < 32 for ch in title)
    for entry in published.entries:
        assert 1990 <= entry.published_parsed.tm_year <= time.gmtime().tm_year
