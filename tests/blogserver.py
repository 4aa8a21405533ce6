"""A real HTTP server on 127.0.0.1 that plays the blogs of the seedblogs fixture.

Tests of fetching, polling, comments and dedupe run against it instead of the
internet. It serves the documents listed in ``fixtures/seedblogs/manifest.json``
with ``{{BASE}}`` replaced by its own ``http://127.0.0.1:PORT``, behaves like a
well-configured blog host (strong ETags, Last-Modified, 304s, gzip), and
records every request so a test can check what a client did: how often it
asked, with which validators, and how many requests it had in flight at once.

Usage::

    with BlogServer() as blogs:
        url = blogs.base_url + "/marketingfacts/feed/"
        ...
        blogs.set_route("/marketingfacts/feed/", new_body, content_type=RSS)
        assert blogs.count("/marketingfacts/feed/") == 2
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: Where the fixture blogs live; the default root of a BlogServer.
SEEDBLOGS = Path(__file__).parent / "fixtures" / "seedblogs"
#: The placeholder fixture documents use for the server's own origin.
BASE_PLACEHOLDER = "{{BASE}}"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the server answered, as the client sent it."""

    #: HTTP method, e.g. "GET".
    method: str
    #: The request target as sent: path plus query string, e.g. "/a/feed/?x=1".
    path: str
    #: Request headers, names lower-cased (the last value wins for repeats).
    headers: dict[str, str]
    #: The status code sent back.
    status: int
    #: When the request arrived (time.time()).
    time: float
    #: Seconds from arrival to the last byte of the response.
    duration: float = 0.0
    #: Bytes of body sent (after gzip, 0 for HEAD and 304).
    body_bytes: int = 0

    @property
    def route(self) -> str:
        """The path without its query string."""
        return urlsplit(self.path).path


@dataclass(slots=True)
class _Document:
    """One servable document, before {{BASE}} is filled in."""

    body: bytes
    content_type: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: Last-Modified as an HTTP-date, or None to send none.
    last_modified: str | None = None


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha1(body).hexdigest() + '"'


def _accepts_gzip(accept_encoding: str) -> bool:
    """True when Accept-Encoding allows gzip (RFC 9110 §12.5.3: q=0 means "not")."""
    wildcard = False
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name in ("gzip", "x-gzip"):
            return q > 0
        if name == "*":
            wildcard = q > 0
    return wildcard


def _opaque(tag: str) -> str:
    """An entity-tag without its weak marker, for weak comparison (RFC 9110 §8.8.3.2)."""
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


class _Server(ThreadingHTTPServer):
    """Keeps the open connections so stop() can close idle keep-alive ones."""

    daemon_threads = True
    blog: BlogServer

    def __init__(self, address: tuple[str, int], blog: BlogServer) -> None:
        self.blog = blog
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed mid-request (the crash tests do that on purpose)
        # resets its connection; that is expected, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "seedblogs/1.0"
    # An idle keep-alive connection is dropped after this many seconds.
    timeout = 10
    server: _Server

    def do_GET(self) -> None:
        self.server.blog._answer(self)

    def do_HEAD(self) -> None:
        self.server.blog._answer(self)

    def log_message(self, format: str, *args: Any) -> None:
        # Requests are recorded in BlogServer.requests; stderr noise helps nobody.
        return


class BlogServer:
    """The fixture blogs on a threaded HTTP server at 127.0.0.1:<free port>."""

    def __init__(
        self, root: Path = SEEDBLOGS, *, host: str = "127.0.0.1", delay: float = 0.0
    ) -> None:
        """Serve the manifest under ``root``; ``delay`` seconds before every answer."""
        self.root = Path(root)
        self.host = host
        self.base_url = ""
        #: Every request answered, in order of completion. Safe to read or clear().
        self.requests: list[RecordedRequest] = []
        self._default_delay = delay
        self._delays: dict[str, float] = {}
        self._routes: dict[str, _Document] = {}
        self._lock = threading.Lock()
        # (+1 or -1, path, host header), replayed by max_concurrent().
        self._flight_events: list[tuple[int, str, str]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._load_manifest()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Bind a free port and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("BlogServer already started")
        self._server = _Server((self.host, 0), self)
        port = self._server.server_address[1]
        self.base_url = f"http://{self.host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"blogserver:{port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close every connection, idle keep-alive ones too."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with server.connections_lock:
            open_connections = list(server.connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> BlogServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ routes

    def paths(self) -> list[str]:
        """Every path currently served, sorted."""
        with self._lock:
            return sorted(self._routes)

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + path

    def set_route(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        delay: float | None = None,
    ) -> None:
        """Add or replace the document at ``path`` (``{{BASE}}`` is filled in when served).

        ``headers`` are sent as given and win over the computed ones (a custom
        ``ETag`` or ``Last-Modified`` is then what conditional requests are
        checked against). Last-Modified defaults to now. Conditional requests
        get a 304 only when ``status`` is 200.
        """
        raw = body.encode("utf-8") if isinstance(body, str) else body
        extra = dict(headers or {})
        last_modified = _pop_header(extra, "last-modified") or _http_date(datetime.now(UTC))
        with self._lock:
            self._routes[path] = _Document(raw, content_type, status, extra, last_modified)
            if delay is not None:
                self._delays[path] = delay

    def remove_route(self, path: str) -> None:
        """Stop serving ``path``: it answers 404 from now on."""
        with self._lock:
            self._routes.pop(path, None)

    def set_delay(self, path: str, seconds: float) -> None:
        """Wait ``seconds`` before answering ``path`` (a path, or a prefix ending in "*")."""
        with self._lock:
            self._delays[path] = seconds

    # ------------------------------------------------------------------ observations

    def count(self, path: str | None = None) -> int:
        """Requests answered so far: all, or for ``path`` (query ignored unless given)."""
        with self._lock:
            recorded = list(self.requests)
        if path is None:
            return len(recorded)
        if "?" in path:
            return sum(1 for r in recorded if r.path == path)
        return sum(1 for r in recorded if r.route == path)

    def max_concurrent(self, host_prefix: str = "") -> int:
        """The peak number of requests in flight at once since start (or reset()).

        Only requests whose path, or whose Host header, starts with
        ``host_prefix`` are counted: ``"/marketingfacts/"`` gives the peak for
        one blog, ``"127.0.0.1"`` the peak for one host name.
        """
        with self._lock:
            events = list(self._flight_events)
        in_flight = peak = 0
        for step, path, host in events:
            if path.startswith(host_prefix) or host.startswith(host_prefix):
                in_flight += step
                peak = max(peak, in_flight)
        return peak

    def reset(self) -> None:
        """Forget recorded requests and the concurrency peak; routes stay."""
        with self._lock:
            self.requests.clear()
            # Requests still in flight keep their +1, so their -1 later balances.
            in_flight: Counter[tuple[str, str]] = Counter()
            for step, path, host in self._flight_events:
                in_flight[path, host] += step
            self._flight_events = [
                (1, path, host) for (path, host), n in in_flight.items() for _ in range(n)
            ]

    # ------------------------------------------------------------------ serving

    def _load_manifest(self) -> None:
        manifest = json.loads((self.root / "manifest.json").read_text(encoding="utf-8"))
        for path, entry in manifest["documents"].items():
            file = self.root / entry["file"]
            last_modified = entry.get("last_modified") or _http_date(
                datetime.fromtimestamp(file.stat().st_mtime, UTC)
            )
            self._routes[path] = _Document(
                file.read_bytes(),
                entry["content_type"],
                int(entry.get("status", 200)),
                dict(entry.get("headers", {})),
                last_modified,
            )

    def _delay_for(self, path: str) -> float:
        with self._lock:
            if path in self._delays:
                return self._delays[path]
            for pattern, seconds in self._delays.items():
                if pattern.endswith("*") and path.startswith(pattern[:-1]):
                    return seconds
        return self._default_delay

    def _fill(self, raw: bytes) -> bytes:
        return raw.replace(BASE_PLACEHOLDER.encode(), self.base_url.encode())

    def _answer(self, handler: _Handler) -> None:
        arrived = time.time()
        target = handler.path
        route = urlsplit(target).path
        headers = {name.lower(): value for name, value in handler.headers.items()}
        host = headers.get("host", "")
        with self._lock:
            self._flight_events.append((1, target, host))
            # An exact target (with its query) wins; otherwise the query is ignored,
            # as a blog ignores ?utm_source=… on a post's URL.
            document = self._routes.get(target) or self._routes.get(route)
            slash_redirect = (
                document is None and not route.endswith("/") and (route + "/" in self._routes)
            )
        status, out, body = 500, {}, b""
        try:
            delay = self._delay_for(route)
            if delay > 0:
                time.sleep(delay)
            if slash_redirect:
                # WordPress' canonical redirect: /blog/post → /blog/post/
                status, out, body = 301, {"Location": self.base_url + route + "/"}, b""
            else:
                status, out, body = self._respond(document, headers)
        finally:
            # Recorded before the first byte goes out, so a client that has its
            # answer always finds its request counted and no longer in flight.
            sent = 0 if handler.command == "HEAD" or status == 304 else len(body)
            with self._lock:
                self._flight_events.append((-1, target, host))
                self.requests.append(
                    RecordedRequest(
                        method=handler.command,
                        path=target,
                        headers=headers,
                        status=status,
                        time=arrived,
                        duration=time.time() - arrived,
                        body_bytes=sent,
                    )
                )
        self._send(handler, status, body, out)

    def _respond(
        self, document: _Document | None, request_headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for one request (pure: writes nothing)."""
        if document is None:
            body = b"<!DOCTYPE html><title>404 Not Found</title><h1>Not Found</h1>\n"
            return 404, {"Content-Type": "text/html; charset=UTF-8"}, body

        body = self._fill(document.body)
        extra = {
            name: self._fill(value.encode()).decode() for name, value in document.headers.items()
        }
        out: dict[str, str] = {"Content-Type": document.content_type}
        if document.status != 200:
            out.update(extra)
            return document.status, out, body

        use_gzip = _accepts_gzip(request_headers.get("accept-encoding", ""))
        # mtime=0 keeps the gzip bytes, and so their ETag, the same on every request.
        gzipped = gzip.compress(body, mtime=0)
        # Strong ETags differ per representation (RFC 9110 §8.8.3); a tag of
        # either representation still validates, so a client that changes its
        # Accept-Encoding between polls is not punished.
        known_tags = {_etag(body), _etag(gzipped)}
        served_tag = _etag(gzipped) if use_gzip else _etag(body)
        custom_tag = _pop_header(extra, "etag")
        if custom_tag is not None:
            served_tag = custom_tag
            known_tags = {_opaque(custom_tag)}
        out["ETag"] = served_tag
        if document.last_modified:
            out["Last-Modified"] = document.last_modified
        out["Vary"] = "Accept-Encoding"
        out.update(extra)

        if _not_modified(request_headers, known_tags, document.last_modified):
            validators = {k: v for k, v in out.items() if k in ("ETag", "Last-Modified", "Vary")}
            return 304, validators, b""

        if use_gzip:
            out["Content-Encoding"] = "gzip"
            body = gzipped
        return 200, out, body

    @staticmethod
    def _send(handler: _Handler, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        if status != 304:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command == "HEAD" or status == 304:
            return
        # A client that gave up (a timeout test) needs no answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            handler.wfile.write(body)


def _pop_header(headers: dict[str, str], name: str) -> str | None:
    for key in list(headers):
        if key.lower() == name:
            return headers.pop(key)
    return None


def _not_modified(
    request_headers: Mapping[str, str], known_tags: set[str], last_modified: str | None
) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = request_headers.get("if-none-match")
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        return any(_opaque(tag) in known_tags for tag in if_none_match.split(","))
    if_modified_since = request_headers.get("if-modified-since")
    if if_modified_since and last_modified:
        try:
            since = parsedate_to_datetime(if_modified_since)
            modified = parsedate_to_datetime(last_modified)
        except (TypeError, ValueError):
            return False  # an unparseable date is ignored, as the RFC says
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return modified <= since
    return False
