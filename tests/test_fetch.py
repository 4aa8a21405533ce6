"""Fetcher against real local HTTP servers (aiohttp on 127.0.0.x)."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import ssl
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import cache

import pytest
import trustme
from aiohttp import web

from aggregator import fetch as fetch_module
from aggregator import netcheck
from aggregator.config import FetchSettings
from aggregator.errors import (
    BlockedURLError,
    FetchError,
    FetchTimeoutError,
    HTTPStatusError,
    ResponseTooLargeError,
    TooManyRedirectsError,
)
from aggregator.fetch import ACCEPT, Fetcher
from aggregator.types import FetchResult, Validators

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SETTINGS = FetchSettings(
    user_agent="aggregator-test/0.1 (+http://aggregator.example/contact)",
    connect_timeout=2.0,
    read_timeout=5.0,
    total_timeout=10.0,
    max_bytes=1_000_000,
    max_redirects=3,
    per_host=4,
)
FEED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"


@asynccontextmanager
async def serve(routes: dict[str, Handler], host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Run an aiohttp app on ``host`` and a free port; yield its base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def run(coro: Awaitable[object]) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def fetch_once(
    url: str,
    validators: Validators | None = None,
    settings: FetchSettings = SETTINGS,
    private_ok_host: str | None = "127.0.0.1",
) -> FetchResult:
    """One fetch with a fresh Fetcher; the local servers' host is allowed by default."""
    async with Fetcher(settings) as fetcher:
        return await fetcher.fetch(
            url, validators or Validators(), private_ok_host=private_ok_host
        )


# --------------------------------------------------------------------------- conditional GET


def test_conditional_get_round_trip_sends_validators_verbatim() -> None:
    etag = 'W/"feed-42; v=1"'
    last_modified = "Tue, 03 Jun 2025 10:00:00 GMT"
    seen: list[dict[str, str | None]] = []

    async def feed(request: web.Request) -> web.Response:
        seen.append({
            "inm": request.headers.get("If-None-Match"),
            "ims": request.headers.get("If-Modified-Since"),
        })
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=FEED, headers={"ETag": etag, "Last-Modified": last_modified})

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base, Fetcher(SETTINGS) as fetcher:
            first = await fetcher.fetch(f"{base}/feed", private_ok_host="127.0.0.1")
            assert first.status == 200
            assert first.body == FEED
            assert first.validators == Validators(etag=etag, last_modified=last_modified)
            second = await fetcher.fetch(
                f"{base}/feed", first.validators, private_ok_host="127.0.0.1"
            )
            assert second.status == 304
            assert second.body == b""
            # The 304 carried no Last-Modified: the stored one is kept.
            assert second.validators == first.validators

    run(scenario())
    assert seen == [{"inm": None, "ims": None}, {"inm": etag, "ims": last_modified}]


def test_304_with_new_validators_replaces_them() -> None:
    async def feed(request: web.Request) -> web.Response:
        return web.Response(status=304, headers={"ETag": '"new"'})

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base:
            result = await fetch_once(f"{base}/feed", Validators('"old"', "Mon, 01 Jan 2024"))
        assert result.validators == Validators('"new"', "Mon, 01 Jan 2024")

    run(scenario())


@pytest.mark.parametrize("bad_etag", ['"café"', '"a"\r\nX-Evil: 1', '"tab\x00null"', ""])
def test_invalid_validator_is_dropped_not_sent(bad_etag: str) -> None:
    seen: list[tuple[str | None, str | None, str | None]] = []

    async def feed(request: web.Request) -> web.Response:
        headers = request.headers
        seen.append((
            headers.get("If-None-Match"), headers.get("If-Modified-Since"), headers.get("X-Evil")
        ))
        return web.Response(body=FEED)

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base:
            stored = Validators(etag=bad_etag, last_modified="Mon, 01 Jan 2024 00:00 GMT")
            result = await fetch_once(f"{base}/feed", stored)
        assert result.status == 200

    run(scenario())
    assert seen == [(None, "Mon, 01 Jan 2024 00:00 GMT", None)]


# --------------------------------------------------------------------------- headers, cookies


def test_request_headers_are_ours() -> None:
    seen: list[dict[str, str]] = []

    async def feed(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(body=FEED, headers={"X-Mixed-Case": "Yes"})

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base:
            result = await fetch_once(f"{base}/feed")
        assert result.headers["x-mixed-case"] == "Yes"
        assert all(name == name.lower() for name in result.headers)

    run(scenario())
    assert seen[0]["Accept-Encoding"] == "gzip, deflate"
    assert seen[0]["User-Agent"] == SETTINGS.user_agent
    assert seen[0]["Accept"] == ACCEPT
    assert "Cookie" not in seen[0]


def test_cookies_are_never_sent_back() -> None:
    cookies_seen: list[str | None] = []

    async def set_cookie(request: web.Request) -> web.Response:
        response = web.Response(body=FEED)
        response.set_cookie("session", "tracking-id", path="/")
        return response

    async def check(request: web.Request) -> web.Response:
        cookies_seen.append(request.headers.get("Cookie"))
        return web.Response(body=FEED)

    async def scenario() -> None:
        async with serve({"/set": set_cookie, "/check": check}) as base, Fetcher(SETTINGS) as f:
            first = await f.fetch(f"{base}/set", private_ok_host="127.0.0.1")
            assert "session=tracking-id" in first.headers["set-cookie"]
            await f.fetch(f"{base}/check", private_ok_host="127.0.0.1")

    run(scenario())
    assert cookies_seen == [None]


# --------------------------------------------------------------------------- bodies


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(FEED)),
        ("x-gzip", gzip.compress(FEED)),
        ("gzip", gzip.compress(FEED[:20]) + gzip.compress(FEED[20:])),  # two members
        ("deflate", zlib.compress(FEED)),
        ("deflate", _raw_deflate(FEED)),
        ("identity", FEED),
        ("gzip", b""),  # an empty body stays empty whatever its label
    ],
)
def test_encoded_body_is_decoded(encoding: str, body: bytes) -> None:
    async def feed(request: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Encoding": encoding})

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base:
            result = await fetch_once(f"{base}/feed")
        assert result.body == (FEED if body else b"")

    run(scenario())


@cache
def bomb(wbits: int = 31) -> bytes:
    """100 MB of zeros, compressed to about 100 KB, built without holding 100 MB."""
    compressor = zlib.compressobj(9, wbits=wbits)
    zeros = bytes(1024 * 1024)
    parts = [compressor.compress(zeros) for _ in range(100)]
    return b"".join(parts) + compressor.flush()


@pytest.mark.parametrize(("encoding", "wbits"), [("gzip", 31), ("deflate", 15), ("deflate", -15)])
def test_compression_bomb_stops_at_the_cap_fast_and_small(encoding: str, wbits: int) -> None:
    body = bomb(wbits)
    assert len(body) < 200_000

    async def feed(request: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Encoding": encoding})

    async def scenario() -> float:
        async with serve({"/feed": feed}) as base:
            tracemalloc.start()
            started = time.monotonic()
            try:
                with pytest.raises(ResponseTooLargeError):
                    await fetch_once(f"{base}/feed")
                return time.monotonic() - started
            finally:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                # The cap is 1 MB: a decoder that inflated whole chunks would
                # reach tens of MB here.
                assert peak < 12 * 1024 * 1024, peak

    elapsed = run(scenario())
    assert isinstance(elapsed, float)
    assert elapsed < 2.0


def test_body_at_the_cap_is_accepted() -> None:
    body = b"x" * SETTINGS.max_bytes

    async def feed(request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(body), headers={"Content-Encoding": "gzip"})

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base:
            result = await fetch_once(f"{base}/feed")
        assert len(result.body) == SETTINGS.max_bytes

    run(scenario())


@pytest.mark.parametrize("chunked", [False, True])
def test_big_body_is_refused(chunked: bool) -> None:
    async def feed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        if chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = SETTINGS.max_bytes + 1
        await response.prepare(request)
        for _ in range(SETTINGS.max_bytes // 65536 + 1):
            await response.write(b"y" * 65536)
        return response

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base:
            with pytest.raises(ResponseTooLargeError):
                await fetch_once(f"{base}/feed")

    run(scenario())


def test_declared_length_over_the_cap_is_refused_before_reading() -> None:
    async def feed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 50 * SETTINGS.max_bytes
        await response.prepare(request)
        await response.write(b"<rss>")
        await asyncio.sleep(5)  # a fetch that waited for the body would time out
        return response

    async def scenario() -> float:
        async with serve({"/feed": feed}) as base:
            started = time.monotonic()
            with pytest.raises(ResponseTooLargeError, match="more than"):
                await fetch_once(f"{base}/feed")
            return time.monotonic() - started

    elapsed = run(scenario())
    assert isinstance(elapsed, float)
    assert elapsed < 1.5


def test_unknown_content_encoding_is_an_error() -> None:
    async def feed(request: web.Request) -> web.Response:
        return web.Response(body=b"\x1b\x00", headers={"Content-Encoding": "br"})

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base:
            with pytest.raises(FetchError, match="unsupported Content-Encoding 'br'"):
                await fetch_once(f"{base}/feed")

    run(scenario())


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"\x1f\x8b\x09\x00garbage!", "corrupt"),
        (gzip.compress(FEED)[:-12], "truncated"),
    ],
)
def test_broken_gzip_is_an_error(body: bytes, match: str) -> None:
    async def feed(request: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base:
            with pytest.raises(FetchError, match=match):
                await fetch_once(f"{base}/feed")

    run(scenario())


# --------------------------------------------------------------------------- redirects


def _hop_routes() -> dict[str, Handler]:
    async def hop(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n == 0:
            return web.Response(body=FEED)
        raise web.HTTPFound(f"/hop/{n - 1}")

    return {"/hop/{n}": hop}


def test_redirect_chain_within_the_cap_is_followed() -> None:
    async def scenario() -> None:
        async with serve(_hop_routes()) as base:
            result = await fetch_once(f"{base}/hop/3")
        assert result.final_url == f"{base}/hop/0"
        assert result.body == FEED
        assert result.permanent_redirect is None

    run(scenario())


def test_redirect_chain_over_the_cap_fails() -> None:
    async def scenario() -> None:
        async with serve(_hop_routes()) as base:
            with pytest.raises(TooManyRedirectsError, match="more than 3 redirects"):
                await fetch_once(f"{base}/hop/4")

    run(scenario())


def test_redirect_loop_is_detected() -> None:
    async def a(request: web.Request) -> web.Response:
        raise web.HTTPFound("/b")

    async def b(request: web.Request) -> web.Response:
        raise web.HTTPFound("/a")

    async def scenario() -> None:
        settings = replace(SETTINGS, max_redirects=20)
        async with serve({"/a": a, "/b": b}) as base:
            with pytest.raises(TooManyRedirectsError, match="loop"):
                await fetch_once(f"{base}/a", settings=settings)

    run(scenario())


@pytest.mark.parametrize(
    ("first", "expected_permanent"), [(301, True), (308, True), (302, False), (307, False)]
)
def test_permanent_redirect_on_first_hop_is_reported(first: int, expected_permanent: bool) -> None:
    async def old(request: web.Request) -> web.Response:
        return web.Response(status=first, headers={"Location": "new/feed.xml"})

    async def new(request: web.Request) -> web.Response:
        return web.Response(body=FEED)

    async def scenario() -> None:
        async with serve({"/blog/old": old, "/blog/new/feed.xml": new}) as base:
            result = await fetch_once(f"{base}/blog/old")
        target = f"{base}/blog/new/feed.xml"
        assert result.final_url == target
        assert result.permanent_redirect == (target if expected_permanent else None)

    run(scenario())


def test_permanent_redirect_after_a_temporary_one_is_not_reported() -> None:
    async def start(request: web.Request) -> web.Response:
        raise web.HTTPFound("/moved")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/feed")

    async def feed(request: web.Request) -> web.Response:
        return web.Response(body=FEED)

    async def scenario() -> None:
        async with serve({"/start": start, "/moved": moved, "/feed": feed}) as base:
            result = await fetch_once(f"{base}/start")
        assert result.permanent_redirect is None
        assert result.body == FEED

    run(scenario())


# --------------------------------------------------------------------------- limits


def test_slow_trickle_hits_the_total_deadline() -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(60):
            await response.write(b"<")
            await asyncio.sleep(0.5)
        return response

    async def scenario() -> float:
        settings = replace(SETTINGS, total_timeout=2.0)
        async with serve({"/feed": trickle}) as base:
            started = time.monotonic()
            with pytest.raises(FetchTimeoutError, match="total limit"):
                await fetch_once(f"{base}/feed", settings=settings)
            return time.monotonic() - started

    elapsed = run(scenario())
    assert isinstance(elapsed, float)
    assert 1.9 <= elapsed < 3.0


# The per_host=5 case shows the measurement can see overlap at all.
@pytest.mark.parametrize(("per_host", "least", "most_allowed"), [(1, 1, 1), (5, 2, 5)])
def test_per_host_limit_is_honoured(per_host: int, least: int, most_allowed: int) -> None:
    in_flight = 0
    most = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.15)
        in_flight -= 1
        return web.Response(body=FEED)

    async def scenario() -> None:
        settings = replace(SETTINGS, per_host=per_host, concurrency=20)
        async with serve({"/feed/{n}": slow}) as base, Fetcher(settings) as fetcher:
            results = await asyncio.gather(*(
                fetcher.fetch(f"{base}/feed/{n}", private_ok_host="127.0.0.1") for n in range(5)
            ))
        assert [r.status for r in results] == [200] * 5

    run(scenario())
    assert least <= most <= most_allowed


def test_global_concurrency_limit_spans_hosts() -> None:
    in_flight = 0
    most = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.15)
        in_flight -= 1
        return web.Response(body=FEED)

    async def scenario() -> None:
        settings = replace(SETTINGS, per_host=5, concurrency=2)
        async with (
            serve({"/feed/{n}": slow}) as one,
            serve({"/feed/{n}": slow}) as two,
            Fetcher(settings) as fetcher,
        ):
            await asyncio.gather(*(
                fetcher.fetch(f"{base}/feed/{n}", private_ok_host="127.0.0.1")
                for base in (one, two) for n in range(3)
            ))

    run(scenario())
    assert most == 2


# --------------------------------------------------------------------------- statuses


def test_429_with_retry_after_seconds() -> None:
    async def feed(request: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "120"})

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base:
            with pytest.raises(HTTPStatusError) as caught:
                await fetch_once(f"{base}/feed")
        assert caught.value.status == 429
        assert caught.value.retry_after == 120.0

    run(scenario())


def test_503_with_retry_after_http_date() -> None:
    async def feed(request: web.Request) -> web.Response:
        when = email.utils.formatdate(time.time() + 600, usegmt=True)
        return web.Response(status=503, headers={"Retry-After": when})

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base:
            with pytest.raises(HTTPStatusError) as caught:
                await fetch_once(f"{base}/feed")
        assert caught.value.status == 503
        assert caught.value.retry_after is not None
        assert 595 <= caught.value.retry_after <= 601

    run(scenario())


@pytest.mark.parametrize(("status", "match"), [(410, "gone"), (404, "404"), (500, "500")])
def test_error_statuses(status: int, match: str) -> None:
    async def feed(request: web.Request) -> web.Response:
        return web.Response(status=status, body=b"nope")

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base:
            with pytest.raises(HTTPStatusError, match=match) as caught:
                await fetch_once(f"{base}/feed")
        assert caught.value.status == status

    run(scenario())


@pytest.mark.parametrize(
    ("headers", "fresh_for", "retry_after"),
    [
        ({"Cache-Control": "public, s-maxage=10, max-age=600"}, 600.0, None),
        ({"Cache-Control": "max-age=600", "Age": "100"}, 500.0, None),
        ({"Cache-Control": "no-cache, max-age=600"}, None, None),
        ({"Cache-Control": "s-maxage=600"}, None, None),
        ({"Expires": "Thu, 01 Jan 2099 01:00:00 GMT", "Date": "Thu, 01 Jan 2099 00:00:00 GMT"},
         3600.0, None),
        ({"Expires": "0"}, 0.0, None),
        ({"Retry-After": "300"}, None, 300.0),
        ({}, None, None),
    ],
)
def test_freshness_of_a_200(
    headers: dict[str, str], fresh_for: float | None, retry_after: float | None
) -> None:
    async def feed(request: web.Request) -> web.Response:
        return web.Response(body=FEED, headers=headers)

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base:
            result = await fetch_once(f"{base}/feed")
        assert result.fresh_for == fresh_for
        assert result.retry_after == retry_after

    run(scenario())


def test_connection_refused_is_a_short_fetch_error() -> None:
    async def scenario() -> None:
        async with serve({}) as base:
            pass  # the port is free again
        with pytest.raises(FetchError, match="cannot connect") as caught:
            await fetch_once(f"{base}/feed")
        assert type(caught.value) is FetchError
        assert "Traceback" not in str(caught.value)

    run(scenario())


# --------------------------------------------------------------------------- address policy


def test_private_address_is_blocked_by_default() -> None:
    hits: list[str] = []

    async def feed(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=FEED)

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base:
            with pytest.raises(BlockedURLError, match="loopback address; set allow_private"):
                await fetch_once(f"{base}/feed", private_ok_host=None)

    run(scenario())
    assert hits == []


@pytest.mark.parametrize("target_host", ["127.0.0.2", "localhost"])
def test_redirect_to_another_private_host_is_blocked(target_host: str) -> None:
    hits: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=FEED)

    async def scenario() -> None:
        bind = "127.0.0.2" if target_host == "127.0.0.2" else "127.0.0.1"
        async with serve({"/secret": elsewhere}, host=bind) as other:
            port = other.rsplit(":", 1)[1]

            async def redirect(request: web.Request) -> web.Response:
                raise web.HTTPFound(f"http://{target_host}:{port}/secret")

            async with serve({"/feed": redirect}) as base:
                with pytest.raises(BlockedURLError, match=target_host):
                    await fetch_once(f"{base}/feed", private_ok_host="127.0.0.1")
            if target_host == "127.0.0.2":
                # The target is reachable when allowed: the block was the policy.
                result = await fetch_once(f"{other}/secret", private_ok_host=target_host)
                assert result.body == FEED

    run(scenario())
    assert len(hits) == (1 if target_host == "127.0.0.2" else 0)


def test_redirect_to_other_scheme_is_blocked() -> None:
    async def feed(request: web.Request) -> web.Response:
        raise web.HTTPFound("file:///etc/passwd")

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base:
            with pytest.raises(BlockedURLError, match="only http and https"):
                await fetch_once(f"{base}/feed")

    run(scenario())


def test_connection_goes_to_the_vetted_address_with_the_name_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The name is resolved by our check and the socket connects to that answer."""
    hosts_seen: list[str] = []

    async def lookup(host: str, port: int) -> list[str]:
        assert host == "blog.example.test"
        return ["127.0.0.1"]

    monkeypatch.setattr(netcheck, "_lookup", lookup)

    async def feed(request: web.Request) -> web.Response:
        hosts_seen.append(request.headers["Host"])
        return web.Response(body=FEED)

    async def scenario() -> str:
        async with serve({"/feed": feed}) as base:
            port = base.rsplit(":", 1)[1]
            result = await fetch_once(
                f"http://blog.example.test:{port}/feed", private_ok_host="blog.example.test"
            )
        assert result.body == FEED
        return port

    port = run(scenario())
    assert hosts_seen == [f"blog.example.test:{port}"]


def test_dns_rebinding_between_check_and_connect_is_blocked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    hits: list[str] = []

    async def lookup(host: str, port: int) -> list[str]:
        return next(answers)

    monkeypatch.setattr(netcheck, "_lookup", lookup)

    async def feed(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=FEED)

    async def scenario() -> None:
        async with serve({"/feed": feed}) as base:
            port = base.rsplit(":", 1)[1]
            with pytest.raises(BlockedURLError, match=r"resolves to 127\.0\.0\.1"):
                await fetch_once(f"http://rebind.example.test:{port}/feed", private_ok_host=None)

    run(scenario())
    assert hits == []


# --------------------------------------------------------------------------- connections


class RawServer:
    """A bare HTTP/1.1 server that records each connection and what came on it.

    ``answer(connection_number, request_number, request_line)`` returns the
    response bytes, or None to close the connection without answering.
    """

    def __init__(self, answer: Callable[[int, int, str], bytes | None]) -> None:
        self.answer = answer
        self.requests: list[tuple[int, str]] = []  # (connection number, request line)
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections = self.connections + 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            for request_number in range(1000):
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
                    return
                line = head.split(b"\r\n", 1)[0].decode()
                self.requests.append((number, line))
                response = self.answer(number, request_number, line)
                if response is None:
                    return
                writer.write(response)
                await writer.drain()
        finally:
            self.open -= 1
            writer.close()


def _response(status: str, body: bytes = b"", headers: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n").encode() + body


def _feed_with_etag(connection: int, request: int, line: str) -> bytes:
    if line.startswith("GET /moved"):
        return _response("302 Found", b"moved", "Location: /feed\r\n")
    if request % 2:
        return _response("304 Not Modified", headers='ETag: "v1"\r\n')
    return _response("200 OK", FEED, 'ETag: "v1"\r\nContent-Type: application/rss+xml\r\n')


def test_one_connection_serves_200s_304s_and_redirects_in_turn() -> None:
    server = RawServer(_feed_with_etag)

    async def scenario() -> list[int]:
        async with server as base, Fetcher(SETTINGS) as fetcher:
            statuses = []
            for n in range(6):
                path = "/moved" if n == 3 else "/feed"
                result = await fetcher.fetch(f"{base}{path}", Validators(etag='"v1"'),
                                             private_ok_host="127.0.0.1")
                statuses.append(result.status)
            return statuses

    statuses = run(scenario())
    # The server answers every second request on a connection with a 304;
    # the redirect is a request of its own.
    assert statuses == [200, 304, 200, 200, 304, 200]
    assert len(server.requests) == 7
    assert server.connections == 1


def test_a_kept_alive_connection_closed_by_the_server_is_retried_once() -> None:
    # The server takes the second request on its connection, then hangs up
    # without an answer: what a server closing an idle connection looks like
    # when the request crosses its close.
    server = RawServer(lambda c, r, line: None if r == 1 else _response("200 OK", FEED))

    async def scenario() -> tuple[int, int]:
        async with server as base, Fetcher(SETTINGS) as fetcher:
            first = await fetcher.fetch(f"{base}/feed", private_ok_host="127.0.0.1")
            second = await fetcher.fetch(f"{base}/feed", private_ok_host="127.0.0.1")
            return first.status, second.status

    assert run(scenario()) == (200, 200)
    assert [number for number, _ in server.requests] == [1, 1, 2]


def test_a_new_connection_closed_without_answer_is_an_error_not_retried() -> None:
    server = RawServer(lambda c, r, line: None)

    async def scenario() -> None:
        async with server as base, Fetcher(SETTINGS) as fetcher:
            with pytest.raises(FetchError):
                await fetcher.fetch(f"{base}/feed", private_ok_host="127.0.0.1")

    run(scenario())
    assert len(server.requests) == 1


def test_connections_kept_open_never_exceed_the_concurrency() -> None:
    open_at_request: list[int] = []

    def answer(connection: int, request: int, line: str) -> bytes:
        open_at_request.append(sum(server.open for server in servers))
        return _feed_with_etag(connection, request, line)

    servers = [RawServer(answer) for _ in range(4)]

    async def scenario() -> None:
        settings = replace(SETTINGS, concurrency=2)
        async with (servers[0] as a, servers[1] as b, servers[2] as c, servers[3] as d,
                    Fetcher(settings) as fetcher):
            for _ in range(3):
                for base in (a, b, c, d):
                    await fetcher.fetch(f"{base}/feed", private_ok_host="127.0.0.1")
                    await asyncio.sleep(0.01)  # lets a server see a close

    run(scenario())
    assert all(len(server.requests) == 3 for server in servers)
    assert len(open_at_request) == 12
    assert max(open_at_request) == 2


# --------------------------------------------------------------------------- TLS


@asynccontextmanager
async def serve_tls(handler: Handler, ca: trustme.CA) -> AsyncIterator[str]:
    """An aiohttp app over TLS on 127.0.0.1, with a certificate for "localhost"."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    app = web.Application()
    app.router.add_get("/feed", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    try:
        yield f"https://localhost:{runner.addresses[0][1]}/feed"
    finally:
        await runner.cleanup()


def test_https_is_fetched_over_one_verified_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    ca = trustme.CA()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    monkeypatch.setattr(fetch_module._Pool, "_tls_context", lambda self: client_context)
    peers: list[object] = []

    async def feed(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        if request.headers.get("If-None-Match") == '"t1"':
            return web.Response(status=304, headers={"ETag": '"t1"'})
        return web.Response(body=FEED, headers={"ETag": '"t1"'},
                            content_type="application/rss+xml")

    async def scenario() -> list[int]:
        async with serve_tls(feed, ca) as url, Fetcher(SETTINGS) as fetcher:
            first = await fetcher.fetch(url, private_ok_host="localhost")
            second = await fetcher.fetch(url, first.validators, private_ok_host="localhost")
            third = await fetcher.fetch(url, private_ok_host="localhost")
            assert first.body == FEED and third.body == FEED
            return [first.status, second.status, third.status]

    assert run(scenario()) == [200, 304, 200]
    assert len(peers) == 3 and len(set(peers)) == 1  # one TLS connection for all three


def test_a_certificate_nobody_vouches_for_is_a_fetch_error() -> None:
    async def feed(request: web.Request) -> web.Response:
        return web.Response(body=FEED)

    async def scenario() -> None:
        async with serve_tls(feed, trustme.CA()) as url, Fetcher(SETTINGS) as fetcher:
            with pytest.raises(FetchError, match=r"(?i)certificate"):
                await fetcher.fetch(url, private_ok_host="localhost")

    run(scenario())
