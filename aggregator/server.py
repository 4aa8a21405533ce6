"""The built-in HTTP server: the published feeds, each post's thread, health.

Serves ``feeds/`` at ``/`` and at ``/feeds/`` (so both the base URL form and
the directory form work), ``/posts/<key>/comments.atom`` from the store,
``/healthz`` and ``/metrics``. Answers ETag and Last-Modified validators with
304 and gzips for clients that ask. Files are cached in memory by (mtime,
size), so a conditional hit costs no disk read and no hashing; the cache
holds at most CACHE_BYTES (least recently used files go first), because the
RFC 5005 archive documents of a large store are gigabytes.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from aiohttp import web

from aggregator.config import Config
from aggregator.pipeline import build_site_info
from aggregator.publish import render_thread_atom
from aggregator.store import Store

log = logging.getLogger("aggregator.server")

CONTENT_TYPES = {
    ".atom": "application/atom+xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # The index page has inline CSS and no scripts; nothing else is allowed.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: http:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}
SAFE_PATH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
#: Below this size gzip costs more than it saves.
GZIP_MIN_BYTES = 256
#: Most bytes (bodies and their gzip) the file cache keeps.
CACHE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Representation:
    """One cached response body with its validators."""

    body: bytes
    gzipped: bytes | None
    etag: str
    last_modified: datetime
    content_type: str


def make_representation(body: bytes, content_type: str, modified: datetime) -> Representation:
    digest = hashlib.sha256(body).hexdigest()[:32]
    gzipped = gzip.compress(body, 6, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
    return Representation(
        body=body, gzipped=gzipped, etag=f'"{digest}"',
        last_modified=modified.replace(microsecond=0), content_type=content_type,
    )


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    bare = etag.strip('"')
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tag = tag.strip('"')
        # Intermediaries add a suffix to the tag of the gzip variant; weak
        # comparison (RFC 9110 §13.1.2) treats both variants as one.
        if tag == bare or tag.removesuffix("-gzip") == bare:
            return True
    return False


def respond(request: web.Request, rep: Representation) -> web.StreamResponse:
    """A 200 or 304 for ``rep``, honouring validators and Accept-Encoding."""
    headers = {
        "ETag": rep.etag,
        "Last-Modified": format_datetime(rep.last_modified, usegmt=True),
        "Cache-Control": "public, max-age=300",
        "Vary": "Accept-Encoding",
        **SECURITY_HEADERS,
    }
    if_none_match = request.headers.get("If-None-Match")
    not_modified = False
    if if_none_match is not None:
        not_modified = _etag_matches(if_none_match, rep.etag)
    elif (since := request.headers.get("If-Modified-Since")) is not None:
        try:
            not_modified = rep.last_modified <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            not_modified = False
    if not_modified:
        return web.Response(status=304, headers=headers)
    body = rep.body
    if rep.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
        body = rep.gzipped
        headers["Content-Encoding"] = "gzip"
    headers["Content-Type"] = rep.content_type
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        return web.Response(status=200, headers=headers)
    return web.Response(status=200, body=body, headers=headers)


class FeedServer:
    """aiohttp application around the feeds directory and the store."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self._files: OrderedDict[Path, tuple[int, int, Representation]] = OrderedDict()
        self._cached_bytes = 0
        self._threads: dict[str, tuple[str, Representation]] = {}
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.requests = 0
        #: Bumped after each publish so thread feeds are rebuilt.
        self.generation = "0"
        self.app = self._make_app()

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._count])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/posts/{key}/comments.atom", self.thread)
        app.router.add_get("/feeds/posts/{key}/comments.atom", self.thread)
        app.router.add_get("/", self.index)
        app.router.add_get("/feeds/", self.index)
        app.router.add_get("/feeds/{path:.+}", self.static)
        app.router.add_get("/{path:.+}", self.static)
        return app

    @web.middleware
    async def _count(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        self.requests += 1
        return await handler(request)

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self._files.clear()
        self._cached_bytes = 0

    def published(self) -> None:
        """Called after a publish: thread feeds may have changed."""
        self.generation = datetime.now(UTC).isoformat()

    # ------------------------------------------------------------------ handlers

    async def index(self, request: web.Request) -> web.StreamResponse:
        return self._serve_file(request, "index.html")

    async def static(self, request: web.Request) -> web.StreamResponse:
        return self._serve_file(request, request.match_info["path"])

    def _serve_file(self, request: web.Request, relative: str) -> web.StreamResponse:
        if not SAFE_PATH.match(relative) or ".." in relative.split("/"):
            return _not_found()
        suffix = Path(relative).suffix
        content_type = CONTENT_TYPES.get(suffix)
        if content_type is None:
            return _not_found()
        root = self.config.aggregator.feeds_dir
        path = root / relative
        try:
            stat = path.stat()
        except OSError:
            return _not_found()
        cached = self._files.get(path)
        if cached is None or cached[0] != stat.st_mtime_ns or cached[1] != stat.st_size:
            try:
                body = path.read_bytes()
            except OSError:
                return _not_found()
            rep = make_representation(
                body, content_type, datetime.fromtimestamp(stat.st_mtime, UTC))
            self._remember(path, (stat.st_mtime_ns, stat.st_size, rep))
        else:
            rep = cached[2]
            self._files.move_to_end(path)
        return respond(request, rep)

    def _remember(self, path: Path, item: tuple[int, int, Representation]) -> None:
        old = self._files.pop(path, None)
        if old is not None:
            self._cached_bytes -= _cost(old[2])
        self._files[path] = item
        self._cached_bytes += _cost(item[2])
        while self._cached_bytes > CACHE_BYTES and len(self._files) > 1:
            _, evicted = self._files.popitem(last=False)
            self._cached_bytes -= _cost(evicted[2])

    async def thread(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        cached = self._threads.get(key)
        if cached is not None and cached[0] == self.generation:
            return respond(request, cached[1])
        found = await asyncio.to_thread(self.store.thread, key)
        if found is None:
            return _not_found()
        post, comments = found
        site = await asyncio.to_thread(build_site_info, self.config, self.store)
        body = render_thread_atom(site, post, comments)
        newest = max([post.updated, *(c.updated for c in comments)])
        rep = make_representation(body, CONTENT_TYPES[".atom"], newest)
        if len(self._threads) > 10_000:
            self._threads.clear()
        self._threads[key] = (self.generation, rep)
        return respond(request, rep)

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        ok = await asyncio.to_thread(self._database_ok)
        return web.json_response(
            {"status": "ok" if ok else "database unavailable"},
            status=200 if ok else 503, headers=SECURITY_HEADERS,
        )

    def _database_ok(self) -> bool:
        try:
            return self.store.ping()
        except Exception:  # health must answer, whatever the database does
            return False

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        counts = await asyncio.to_thread(self.store.counts)
        lines = [
            "# HELP aggregator_http_requests_total Requests served by this process.",
            "# TYPE aggregator_http_requests_total counter",
            f"aggregator_http_requests_total {self.requests}",
            "# HELP aggregator_entries Canonical entries in the store.",
            "# TYPE aggregator_entries gauge",
        ]
        for kind in ("post", "comment"):
            lines.append(f'aggregator_entries{{kind="{kind}"}} {counts.get(kind, 0)}')
        return web.Response(
            text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8",
            headers=SECURITY_HEADERS,
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.server.host, self.config.server.port,
                           reuse_address=True)
        await site.start()
        server = site._server  # aiohttp exposes the bound socket only here
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.config.server.port
        log.info("serving %s on http://%s:%s/", self.config.aggregator.feeds_dir,
                 self.config.server.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _cost(rep: Representation) -> int:
    return len(rep.body) + len(rep.gzipped or b"")


def _not_found() -> web.Response:
    return web.Response(status=404, text="not found\n", headers=SECURITY_HEADERS)
