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
    feeds) in one: a lease then stands for one request to its host, so
    ``[fetch] per_host``, counted in leases when sources are claimed, holds
    across every worker sharing the database.
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


class _VettedBackend(httpcore.AnyIOBackend):
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
                return await super().connect_tcp(
                    address, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None  # resolve_and_check never returns an empty list
        raise last_error


class _VettedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool that uses :class:`_VettedBackend`."""

    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False, limits=limits)
        # httpx has no parameter for the network backend, so the pool it built
        # is replaced by an equal one that has ours; the rest of the transport
        # (request mapping, exception mapping) is httpx's own.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_VettedBackend(),
        )


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
