"""Serve a generated corpus on 127.0.0.1 fast enough never to be what a benchmark measures.

``python bench/serve_corpus.py CORPUS_DIR [--port 0] [--no-gzip]`` loads every
document of ``CORPUS_DIR/manifest.json`` into memory once, with ``{{BASE}}``
filled in, a strong ETag and its Last-Modified, and a gzip copy made up
front. It then answers GET and HEAD like a well-configured blog host:
``If-None-Match`` (or, without it, ``If-Modified-Since``) that matches gets a
304 with no body; anything else gets the bytes, gzipped when the client
accepts gzip. When it listens it prints one line, ``READY http://127.0.0.1:PORT``.

Run it in its own process (bench/run_bench.py does): its CPU then stays out of
the measured process tree, and the runner can still read how much it used.
``GET /__stats`` returns the responses per status since the last
``GET /__stats?reset=1``, so a benchmark can confirm that a warm pass really
was all 304s.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from aiohttp import web

__all__ = ["Document", "load_documents", "main"]

BASE_PLACEHOLDER = b"{{BASE}}"


@dataclass(frozen=True, slots=True)
class Document:
    """One servable document, with both representations ready to send."""

    body: bytes
    gzipped: bytes
    content_type: str
    etag: str
    gzip_etag: str
    last_modified: str | None


def load_documents(root: Path, origin: str, *, compress: bool = True) -> dict[str, Document]:
    """Every manifest document under ``root``, ``{{BASE}}`` replaced by ``origin``."""
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    documents = {}
    for path, entry in manifest["documents"].items():
        body = (root / entry["file"]).read_bytes().replace(BASE_PLACEHOLDER, origin.encode())
        digest = hashlib.sha1(body).hexdigest()
        # Level 6 is what nginx and Apache blogs typically send; done once here
        # so the server spends no CPU compressing during a run.
        gzipped = gzip.compress(body, compresslevel=6, mtime=0) if compress else b""
        documents[path] = Document(
            body=body, gzipped=gzipped, content_type=entry["content_type"],
            # Each representation has its own strong tag, as RFC 9110 asks.
            etag=f'"{digest}"', gzip_etag=f'"{digest}-gzip"',
            last_modified=entry.get("last_modified"),
        )
    return documents


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _not_modified(request: web.BaseRequest, document: Document) -> bool:
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return document.etag in tags or document.gzip_etag in tags
    since = request.headers.get("If-Modified-Since")
    if since and document.last_modified:
        try:
            return parsedate_to_datetime(document.last_modified) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


class CorpusServer:
    """The request handler over an in-memory set of documents."""

    def __init__(self, documents: dict[str, Document]) -> None:
        self.documents = documents
        self.statuses: Counter[int] = Counter()
        self.bytes_sent = 0

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path == "/__stats":
            payload = {"statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                       "bytes": self.bytes_sent}
            if request.query.get("reset"):
                self.statuses.clear()
                self.bytes_sent = 0
            return web.Response(text=json.dumps(payload), content_type="application/json")
        if request.method not in ("GET", "HEAD"):
            self.statuses[405] += 1
            return web.Response(status=405, headers={"Allow": "GET, HEAD"})
        document = self.documents.get(path)
        if document is None:
            self.statuses[404] += 1
            return web.Response(status=404, text="not found")
        use_gzip = bool(document.gzipped) and _accepts_gzip(
            request.headers.get("Accept-Encoding", ""))
        headers = {"ETag": document.gzip_etag if use_gzip else document.etag,
                   "Vary": "Accept-Encoding"}
        if document.last_modified:
            headers["Last-Modified"] = document.last_modified
        if _not_modified(request, document):
            self.statuses[304] += 1
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = document.content_type
        body = document.gzipped if use_gzip else document.body
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
        self.statuses[200] += 1
        self.bytes_sent += len(body)
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(status=200, headers=headers)
        return web.Response(status=200, body=body, headers=headers)


async def serve(root: Path, host: str, port: int, compress: bool) -> None:
    loop = asyncio.get_running_loop()
    # Bind first: the documents need the real port in {{BASE}}.
    server = CorpusServer({})
    low_level = web.Server(server.handle, access_log=None)
    listener = await loop.create_server(low_level, host, port, backlog=1024)
    bound_port = listener.sockets[0].getsockname()[1]
    origin = f"http://{host}:{bound_port}"
    server.documents = await asyncio.to_thread(load_documents, root, origin, compress=compress)
    print(f"READY {origin} {len(server.documents)}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    listener.close()
    await low_level.shutdown(1.0)
    await listener.wait_closed()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus_dir", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--no-gzip", action="store_true", help="never send gzip")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.corpus_dir, args.host, args.port, not args.no_gzip))
    return 0


if __name__ == "__main__":
    sys.exit(main())
