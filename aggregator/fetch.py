"""Fetching feed URLs politely and within limits: the only room that knows httpx.

One :class:`Fetcher` serves a whole run. It sends conditional GETs with the
validators stored from last time, follows redirects by hand so each hop is
checked (scheme, address, loops, count), holds a global and a per-host slot
while a request is in flight, and decodes gzip/deflate itself from the raw
stream so a compression bomb stops at the byte cap instead of inflating a
whole chunk in memory. What comes out is a :class:`FetchResult` or a
:class:`FetchError`; httpx types never leave this module.

Connections are pinned: the transport resolves and checks the host again at
connect time and connects only to an address it vetted (Host header and TLS
SNI keep the name), so a DNS answer that changes between the check and the
connect (DNS rebinding) cannot reach a private address.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import http.cookiejar
import ssl
import time
import typing
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager, nullcontext
from datetime import UTC
from types import TracebackType

import httpcore
import httpx

from aggregator import __version__, netcheck
from aggregator.config import FetchSettings
from aggregator.errors import (
    AggregatorError,
    BlockedURLError,
    FetchError,
    FetchTimeoutError,
    HTTPStatusError,
    ResponseTooLargeError,
    TooManyRedirectsError,
)
from aggregator.types import FetchResult, Validators

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, "
    "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
# Only what we decode ourselves; httpx would add br/zstd when those packages exist.
ACCEPT_ENCODING = "gzip, deflate"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})
_MESSAGE_LIMIT = 200

# The one host the current fetch may reach on a private address. A context
# variable because httpcore calls the network backend from the fetching task
# without any way to pass per-request data down to it.
_private_ok: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "aggregator_private_ok_host", default=None
)

# One leased source's lane (see one_request_at_a_time), inherited by the tasks
# that fetch its comment feeds.
_lane: contextvars.ContextVar[asyncio.Semaphore | None] = contextvars.ContextVar(
    "aggregator_lane", default=None
)


@contextmanager
def one_request_at_a_time() -> Iterator[None]:
    """Fetches made within this block, and by tasks started in it, take turns.

    A fetch pass wraps each leased source's work (its feed, then its comment
    feeds) in one: a lease then stands for at most one request to its host,
    so ``[fetch] per_host``, counted in leases when sources are claimed, holds
    across every worker sharing the database. (A worker that holds the only
    leases may lease more of a host's sources than that; its own per-host
    limit below keeps their requests to ``per_host``.)
    """
    token = _lane.set(asyncio.Semaphore(1))
    try:
        yield
    finally:
        _lane.reset(token)


# --------------------------------------------------------------------------- transport


class _NoCookies(http.cookiejar.CookiePolicy):
    """Refuse every cookie: a feed fetch must not be tracked or carry state."""

    netscape = True
    rfc2965 = False
    hide_cookie2 = True

    def set_ok(self, cookie: http.cookiejar.Cookie, request: typing.Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: typing.Any) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: typing.Any) -> bool:
        return False

    def path_return_ok(self, path: str, request: typing.Any) -> bool:
        return False


#: Bytes a connection buffers before it stops reading from the socket.
_READ_CHUNK = 64 * 1024


class _AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection as plain asyncio streams.

    httpcore's own asyncio backend goes through anyio, whose cancel scope per
    read and per-call socket attribute dictionary cost about as much CPU as
    the rest of a conditional GET; the connection pool asks every idle
    connection whether it is still readable on every request, too.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            if timeout is None:
                return await self._reader.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("timed out reading") from None
        except (OSError, RuntimeError) as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            if timeout is None:
                await self._writer.drain()
                return
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout("timed out sending") from None
        except (OSError, RuntimeError) as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        # Not waiting for the close to complete: a peer that never answers a
        # TLS close_notify must not hold the task.
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            self._writer.close()
            raise httpcore.ConnectTimeout("the TLS handshake timed out") from None
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._writer.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            # Idle in the pool and readable: the server closed it or sent
            # something unasked; either way it must not be reused. The event
            # loop reads every socket as data comes, so its buffer tells, with
            # no system call per idle connection on every request.
            # (StreamReader has no public size of what it holds, hence _buffer.)
            return bool(self._reader.at_eof() or self._writer.is_closing()
                        or getattr(self._reader, "_buffer", None))
        name = {"ssl_object": "ssl_object", "client_addr": "sockname",
                "server_addr": "peername", "socket": "socket"}.get(info)
        return None if name is None else self._writer.get_extra_info(name)


class _VettedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses that passed the address policy just now."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        allow = _private_ok.get() == netcheck.host_key(host)
        try:
            async with asyncio.timeout(timeout):
                addresses = await netcheck.resolve_and_check(host, port, allow_private=allow)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._connect(address, port, timeout, local_address,
                                           socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None  # resolve_and_check never returns an empty list
        raise last_error

    @staticmethod
    async def _connect(
        address: str,
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> _AsyncioStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    address, port, local_addr=(local_address, 0) if local_address else None,
                    limit=_READ_CHUNK)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"connecting to {address}:{port} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("feeds are fetched over TCP only")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


#: (scheme, host, port): httpcore's Origin is not hashable.
_OriginKey = tuple[bytes, bytes, int]


def _key(origin: httpcore.Origin) -> _OriginKey:
    return origin.scheme, origin.host, origin.port


class _Pool:
    """Keep-alive HTTP/1.1 connections by origin, in place of httpcore's pool.

    httpcore's pool walks every connection, several times over, on each
    request and each response: with twenty connections that bookkeeping cost
    more CPU than the conditional GET itself. The fetcher already bounds the
    requests in flight with its own slots, so all this pool has to do is hand
    out the most recently used idle connection of an origin, or a new one,
    and take it back when its response is closed.
    """

    def __init__(self, limits: httpx.Limits, network_backend: httpcore.AsyncNetworkBackend) -> None:
        # Made for the first https origin: loading the CA bundle takes tens of
        # milliseconds, which a pass over plain-http feeds need not pay.
        self._ssl_context: ssl.SSLContext | None = None
        self._max = max(1, limits.max_connections or 1)
        self._max_idle = limits.max_keepalive_connections or 0
        self._expiry = limits.keepalive_expiry
        self._backend = network_backend
        self._gate = asyncio.Semaphore(self._max)
        # By _key(origin); an origin with no idle connection has no entry, so
        # making room never walks the origins of every feed ever fetched.
        self._idle: dict[_OriginKey, list[httpcore.AsyncHTTPConnection]] = {}
        self._idle_count = 0
        self._busy = 0  # connections lent out
        self._closed = False

    async def __aenter__(self) -> _Pool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle, self._idle_count = self._idle, {}, 0
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        origin = request.url.origin
        await self._gate.acquire()
        self._busy += 1
        try:
            while True:
                connection, reused = await self._checkout(origin)
                try:
                    response = await connection.handle_async_request(request)
                except httpcore.ConnectionNotAvailable:
                    await connection.aclose()
                    continue
                except (httpcore.RemoteProtocolError, httpcore.ReadError,
                        httpcore.WriteError):
                    await connection.aclose()
                    # A kept-alive connection the server closed just as we
                    # reused it: try once more, on a new connection, as
                    # every HTTP client does. A new connection's error stands.
                    if reused:
                        continue
                    raise
                except BaseException:
                    await connection.aclose()
                    raise
                break
        except BaseException:
            self._busy -= 1
            self._gate.release()
            raise
        return httpcore.Response(
            status=response.status, headers=response.headers,
            content=_ReturnsConnection(response.stream, connection, _key(origin), self),
            extensions=response.extensions,
        )

    async def _checkout(
        self, origin: httpcore.Origin,
    ) -> tuple[httpcore.AsyncHTTPConnection, bool]:
        key = _key(origin)
        while key in self._idle:
            connection = self._take(key, -1)
            if connection.is_idle() and not connection.has_expired():
                return connection, True
            await connection.aclose()
        # Room for one more: an idle connection of another origin goes, the
        # longest-idle one of the origin that has had idle ones the longest.
        while self._idle_count and self._busy + self._idle_count > self._max:
            await self._take(next(iter(self._idle)), 0).aclose()
        return httpcore.AsyncHTTPConnection(
            origin=origin, ssl_context=self._tls_context() if origin.scheme == b"https" else None,
            keepalive_expiry=self._expiry,
            network_backend=self._backend,
        ), False

    def _take(self, key: _OriginKey, index: int) -> httpcore.AsyncHTTPConnection:
        connections = self._idle[key]
        connection = connections.pop(index)
        if not connections:
            del self._idle[key]
        self._idle_count -= 1
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context(trust_env=False)
        return self._ssl_context

    async def checkin(self, connection: httpcore.AsyncHTTPConnection, key: _OriginKey) -> None:
        """Take back a connection whose response is closed."""
        self._busy -= 1
        self._gate.release()
        if (self._closed or self._idle_count >= self._max_idle or not connection.is_idle()
                or connection.has_expired()):
            await connection.aclose()
            return
        self._idle.setdefault(key, []).append(connection)
        self._idle_count += 1


class _ReturnsConnection:
    """A response body that gives its connection back to the pool once closed."""

    def __init__(self, stream: typing.Any, connection: httpcore.AsyncHTTPConnection,
                 key: _OriginKey, pool: _Pool) -> None:
        self._stream = stream
        self._connection = connection
        self._key = key
        self._pool: _Pool | None = pool

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await self._stream.aclose()
        finally:
            await pool.checkin(self._connection, self._key)


class _VettedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over :class:`_Pool`, which connects with :class:`_VettedBackend`."""

    def __init__(self, limits: httpx.Limits) -> None:
        # httpx has no parameter for the pool or the network backend. Its
        # __init__ would only build a pool of its own (and load the CA bundle
        # for it) to be replaced, so it is not called: request mapping,
        # exception mapping and closing all go through self._pool alone.
        self._pool = _Pool(limits, _VettedBackend())  # type: ignore[assignment]


# --------------------------------------------------------------------------- body


class _CappedDecoder:
    """Undoes one Content-Encoding, never producing more than ``cap`` bytes."""

    def __init__(self, encoding: str, cap: int) -> None:
        self._encoding = encoding
        self._cap = cap
        self._size = 0
        self._pending = b""  # deflate: bytes held until the header can be judged
        self._inflater: typing.Any = None
        self._complete = False  # one whole stream (gzip member) was decoded
        self._done = False  # the rest of the body is ignored
        self._fed = False
        if encoding == "gzip":
            self._inflater = zlib.decompressobj(wbits=31)

    def _count(self, piece: bytes) -> bytes:
        self._size += len(piece)
        if self._size > self._cap:
            raise ResponseTooLargeError(f"the body is larger than the {self._cap} byte limit")
        return piece

    def _inflate(self, data: bytes) -> bytes:
        out: list[bytes] = []
        while data and not self._done:
            # One byte over the cap is enough to know; max_length keeps a bomb
            # from allocating its whole expansion.
            room = self._cap - self._size + 1
            try:
                piece = self._inflater.decompress(data, room)
            except zlib.error as exc:
                if not self._complete:
                    raise FetchError(f"the {self._encoding} body is corrupt ({exc})") from None
                self._done = True  # padding or garbage after a complete stream
                break
            out.append(self._count(piece))
            data = self._inflater.unconsumed_tail
            if self._inflater.eof:
                self._complete = True
                # A gzip body may hold several members, back to back.
                data = self._inflater.unused_data if self._encoding == "gzip" else b""
                if data:
                    self._inflater = zlib.decompressobj(wbits=31)
        return b"".join(out)

    def feed(self, chunk: bytes) -> bytes:
        self._fed = self._fed or bool(chunk)
        if self._encoding == "identity":
            return self._count(chunk)
        if self._inflater is None:
            # "deflate" is zlib-wrapped by the RFC but raw from many servers.
            self._pending += chunk
            if len(self._pending) < 2:
                return b""
            chunk, self._pending = self._pending, b""
            self._inflater = zlib.decompressobj(wbits=15)
            try:
                return self._inflate(chunk)
            except FetchError:
                if self._size:
                    raise
                self._inflater = zlib.decompressobj(wbits=-15)
        return self._inflate(chunk)

    def finish(self) -> bytes:
        head = b""
        if self._pending:  # a deflate body too short to judge its header: raw
            self._inflater = zlib.decompressobj(wbits=-15)
            pending, self._pending = self._pending, b""
            head = self._inflate(pending)
        if self._inflater is None or not self._fed:
            return head
        tail = self._count(self._inflater.flush())
        if not self._complete:
            # A cut-off feed would parse into fewer entries and still look valid.
            raise FetchError(f"the {self._encoding} body is truncated")
        return head + tail


def _content_encoding(headers: httpx.Headers) -> str:
    codings = [
        token.strip().lower()
        for token in headers.get("content-encoding", "").split(",")
        if token.strip() and token.strip().lower() != "identity"
    ]
    if not codings:
        return "identity"
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip"):
        return "gzip"
    if codings == ["deflate"]:
        return "deflate"
    raise FetchError(
        f"unsupported Content-Encoding {', '.join(codings)!r} (we asked for {ACCEPT_ENCODING})"
    )


async def _read_body(response: httpx.Response, cap: int) -> bytes:
    encoding = _content_encoding(response.headers)
    declared = response.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > cap:
        raise ResponseTooLargeError(
            f"the body is {int(declared)} bytes, more than the {cap} byte limit"
        )
    decoder = _CappedDecoder(encoding, cap)
    parts: list[bytes] = []
    async for chunk in response.aiter_raw():
        parts.append(decoder.feed(chunk))
    parts.append(decoder.finish())
    return b"".join(parts)


async def _drain(response: httpx.Response, limit: int = 64 * 1024) -> None:
    """Read a body we do not want (304, redirect) so its connection can be reused.

    A response closed before its end closes the connection with it, and a new
    one costs a connect per request. Past ``limit`` the connection is let go.
    """
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            return


# --------------------------------------------------------------------------- headers


def _valid_header_value(value: str | None) -> bool:
    # Visible ASCII, space and tab only: anything else makes httpx/h11 raise,
    # or worse, would split the request (CR/LF).
    return bool(value) and all(c == "\t" or " " <= c <= "~" for c in value or "")


def _conditional_headers(validators: Validators) -> dict[str, str]:
    headers: dict[str, str] = {}
    if validators.etag is not None and _valid_header_value(validators.etag):
        headers["If-None-Match"] = validators.etag
    if validators.last_modified is not None and _valid_header_value(validators.last_modified):
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def _http_date(value: str | None) -> float | None:
    """Seconds since the epoch of an HTTP-date, or None if it is not one."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # "-0000" means UTC without saying so
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _server_now(headers: httpx.Headers) -> float:
    # Dates a server sends are judged against its own clock when it states one.
    return _http_date(headers.get("date")) or time.time()


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Retry-After as seconds from now (delta-seconds or HTTP-date), or None."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    return max(0.0, when - _server_now(headers))


def fresh_for_seconds(headers: httpx.Headers) -> float | None:
    """How long the response stays fresh (RFC 9111 §4.2.1), or None if unstated."""
    directives: dict[str, str] = {}
    for part in headers.get("cache-control", "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            directives[name.strip().lower()] = value.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return None
    # s-maxage is for shared caches; we are a private one.
    if "max-age" in directives:
        try:
            max_age = int(directives["max-age"])
        except ValueError:
            return None
        age = headers.get("age", "").strip()
        return float(max(0, max_age - (int(age) if age.isdigit() else 0)))
    expires = headers.get("expires")
    if expires is None:
        return None
    when = _http_date(expires)
    # An invalid Expires ("0", "-1") means already expired.
    return 0.0 if when is None else max(0.0, when - _server_now(headers))


# --------------------------------------------------------------------------- errors


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def _status_error(url: str, response: httpx.Response) -> HTTPStatusError:
    status = response.status_code
    reason = response.reason_phrase or ""
    retry_after = retry_after_seconds(response.headers)
    if status == 410:
        return HTTPStatusError(
            f"{url} is gone (HTTP 410): polling stops; remove or replace it in config.toml",
            status=410,
        )
    if status in (429, 503):
        wait = f"; it asks us to wait {retry_after:.0f} s" if retry_after is not None else ""
        return HTTPStatusError(
            f"{url} answered HTTP {status} {reason}{wait}", status=status, retry_after=retry_after
        )
    hint = "; check the URL in config.toml" if status in (401, 403, 404) else ""
    return HTTPStatusError(
        f"{url} answered HTTP {status} {reason}{hint}", status=status, retry_after=retry_after
    )


# --------------------------------------------------------------------------- fetcher


class Fetcher:
    """Conditional GETs of feed URLs, within the limits of ``[fetch]``."""

    def __init__(
        self, settings: FetchSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        limits = httpx.Limits(
            max_connections=max(1, settings.concurrency),
            max_keepalive_connections=max(1, settings.concurrency),
        )
        self._client = httpx.AsyncClient(
            transport=transport if transport is not None else _VettedTransport(limits),
            headers={
                "User-Agent": settings.user_agent or f"aggregator/{__version__}",
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            cookies=http.cookiejar.CookieJar(policy=_NoCookies()),
            timeout=httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.read_timeout,
                write=settings.read_timeout,
                pool=settings.total_timeout,
            ),
            follow_redirects=False,
            trust_env=False,
        )
        self._all = asyncio.Semaphore(max(1, settings.concurrency))
        self._per_host: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    @asynccontextmanager
    async def _slot(self, host: str, port: int) -> AsyncIterator[None]:
        key = f"{host}:{port}"
        host_slot = self._per_host.get(key)
        if host_slot is None:
            host_slot = self._per_host[key] = asyncio.Semaphore(max(1, self._settings.per_host))
        lane = _lane.get()
        # Lane, host, then global: a task queued behind a busy host must not
        # hold one of the slots other sources or hosts could use meanwhile.
        async with lane if lane is not None else nullcontext(), host_slot, self._all:
            yield

    async def fetch(
        self,
        url: str,
        validators: Validators = Validators(),  # noqa: B008 - frozen, safe to share
        *,
        private_ok_host: str | None = None,
    ) -> FetchResult:
        """GET ``url`` conditionally; return what came back or raise a FetchError.

        ``private_ok_host`` is the one host that may be on a private or
        loopback address (a source's own host when it has ``allow_private``);
        every other host a fetch reaches, redirects included, must be public.
        The total deadline starts when the first request gets its slots, so
        time spent queued behind other fetches of the same host does not count.
        """
        token = _private_ok.set(netcheck.host_key(private_ok_host) if private_ok_host else None)
        try:
            async with asyncio.timeout(None) as deadline:
                return await self._follow(url, validators, deadline)
        except TimeoutError:
            raise FetchTimeoutError(
                f"{url} took longer than the {self._settings.total_timeout:g} s total limit"
            ) from None
        except AggregatorError:
            raise
        except httpx.TimeoutException as exc:
            raise FetchTimeoutError(f"{url}: {_timeout_kind(exc)} timed out") from None
        except httpx.ConnectError as exc:
            raise FetchError(f"{url}: cannot connect ({_short(exc)})") from None
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise FetchError(f"{url}: {_short(exc)}") from None
        finally:
            _private_ok.reset(token)

    async def _follow(
        self, url: str, validators: Validators, deadline: asyncio.Timeout
    ) -> FetchResult:
        try:
            current = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise BlockedURLError(f"{url!r} is not a valid URL ({_short(exc)})") from None
        visited = {str(current)}
        permanent: str | None = None
        loop = asyncio.get_running_loop()
        private_ok = _private_ok.get()
        for hop in range(self._settings.max_redirects + 1):
            host, port = netcheck.check_url(str(current))
            async with self._slot(host, port):
                if hop == 0:
                    deadline.reschedule(loop.time() + self._settings.total_timeout)
                # Checked before connecting; the transport checks again at
                # connect time, and this also covers a pooled connection.
                await netcheck.resolve_and_check(host, port, allow_private=host == private_ok)
                request = self._client.build_request(
                    "GET", current, headers=_conditional_headers(validators)
                )
                response = await self._client.send(request, stream=True)
                try:
                    status = response.status_code
                    location = response.headers.get("location")
                    if status not in _REDIRECTS or not location:
                        return await self._result(url, current, response, validators, permanent)
                    await _drain(response)
                finally:
                    await response.aclose()
            try:
                target = current.join(location.strip())
            except httpx.InvalidURL as exc:
                raise FetchError(f"{current} redirects to an invalid URL ({_short(exc)})") from None
            if hop == 0 and status in _PERMANENT:
                permanent = str(target)
            if str(target) in visited:
                raise TooManyRedirectsError(f"{url}: redirect loop back to {target}")
            visited.add(str(target))
            current = target
        raise TooManyRedirectsError(
            f"{url}: more than {self._settings.max_redirects} redirects (last to {current})"
        )

    async def _result(
        self,
        url: str,
        final_url: httpx.URL,
        response: httpx.Response,
        validators: Validators,
        permanent: str | None,
    ) -> FetchResult:
        status = response.status_code
        if status == 304:
            body = b""
            await _drain(response)
            validators = Validators(
                etag=response.headers.get("etag", validators.etag),
                last_modified=response.headers.get("last-modified", validators.last_modified),
            )
        elif 200 <= status < 300:
            body = await _read_body(response, self._settings.max_bytes)
            validators = Validators(
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )
        else:
            raise _status_error(url, response)
        return FetchResult(
            url=url,
            final_url=str(final_url),
            status=status,
            body=body,
            headers={name.lower(): value for name, value in response.headers.items()},
            validators=validators,
            permanent_redirect=permanent,
            retry_after=retry_after_seconds(response.headers),
            fresh_for=fresh_for_seconds(response.headers),
        )


def _timeout_kind(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connecting"
    if isinstance(exc, httpx.ReadTimeout):
        return "reading"
    if isinstance(exc, httpx.WriteTimeout):
        return "sending"
    return "waiting for a connection"
