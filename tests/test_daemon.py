"""`aggregator run` end to end: ticks, server, hot config reload, clean SIGTERM."""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import feedparser
import httpx
import pytest
from blogserver import BlogServer
from test_end_to_end import EXPECTED, source_block, write_config

NEW_BLOG = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Word of Mouth Weekly</title>
  <link>{{BASE}}/wom/</link>
  <description>Notes on word of mouth marketing</description>
  <language>en</language>
  <item>
    <title>Why word of mouth still beats advertising</title>
    <link>{{BASE}}/wom/2013/why-word-of-mouth/</link>
    <guid isPermaLink="false">wom-1</guid>
    <pubDate>Tue, 05 Feb 2013 09:00:00 +0000</pubDate>
    <dc:creator>Pat Reyes</dc:creator>
    <description>People trust people. Recommendations from friends and colleagues carry
    more weight than any banner, which is why brands keep trying to earn them rather than
    buy them. The best campaigns give customers something worth talking about.</description>
  </item>
</channel>
</rss>
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def blog() -> Iterator[BlogServer]:
    with BlogServer() as server:
        yield server


def test_run_serves_reloads_and_stops_cleanly(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    port = free_port()
    config = write_config(tmp_path, blog, port=port)
    log_path = tmp_path / "daemon.log"
    env = {**os.environ, "AGGREGATOR_DATABASE_URL": database_url}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
    base = f"http://127.0.0.1:{port}"
    client = httpx.Client(timeout=5)
    try:
        wait_for(lambda: client.get(f"{base}/healthz").status_code == 200, 30, "/healthz")
        expected_posts = len(EXPECTED["posts"]) - 1  # one cross-post merged

        def entries() -> list:
            response = client.get(f"{base}/feeds/all.atom")
            if response.status_code != 200:
                return []
            return feedparser.parse(response.content).entries

        wait_for(lambda: len(entries()) == expected_posts, 60, "the first publish")

        # Conditional GET against the built-in server.
        first = client.get(f"{base}/feeds/all.atom")
        assert first.headers["content-type"].startswith("application/atom+xml")
        etag = first.headers["etag"]
        again = client.get(f"{base}/feeds/all.atom", headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        since = client.get(f"{base}/all.atom",
                           headers={"If-Modified-Since": first.headers["last-modified"]})
        assert since.status_code == 304
        raw = httpx.get(f"{base}/feeds/all.atom", headers={"Accept-Encoding": "gzip"})
        assert raw.headers.get("content-encoding") == "gzip"
        assert feedparser.parse(raw.content).entries  # httpx decoded it: it was valid gzip
        # index.html is the last file of a publish: wait for it to be there.
        wait_for(lambda: client.get(f"{base}/").status_code == 200, 10, "index.html")
        index = client.get(f"{base}/")
        assert index.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'none'" in index.headers["content-security-policy"]
        assert client.get(f"{base}/../config.toml").status_code == 404

        # The thread feed of the German post: every comment, threaded.
        post = next(e for e in entries() if e.title.startswith("33:"))
        replies = next(link.href for link in post.links if link.rel == "replies")
        thread_path = replies.split(f":{port}", 1)[1]
        thread = feedparser.parse(client.get(f"{base}{thread_path}").content)
        assert len(thread.entries) == 10

        # An edited config.toml is picked up without a restart.
        blog.set_route("/wom/feed/", NEW_BLOG, content_type="application/rss+xml")
        good = config.read_text("utf-8") + source_block("wom", blog.url("/wom/feed/"), "en")
        config.write_text(good, "utf-8")
        wait_for(lambda: any(e.title.startswith("Why word of mouth") for e in entries()),
                 30, "the new source's post")

        # A broken edit is reported and the last good config stays in force.
        config.write_text(good + "\n[fetch]\nper_host = 'x'\n", "utf-8")
        time.sleep(3)
        assert process.poll() is None
        assert client.get(f"{base}/healthz").status_code == 200
        assert "keeping the last good config" in log_path.read_text("utf-8")
        config.write_text(good, "utf-8")

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        assert code == 0, log_path.read_text("utf-8")
        assert time.monotonic() - started < 10
    finally:
        client.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log_path.read_text("utf-8")
    assert "stopped" in output
    assert "Traceback" not in output, output
    # One line per fetch, with the source bound to it.
    assert "source=marketingfacts" in output and "source=wom" in output


def test_gzip_body_is_the_same_feed(tmp_path: Path) -> None:
    """The server's gzip variant decompresses to exactly the file on disk."""
    from aiohttp.test_utils import make_mocked_request

    from aggregator.server import make_representation, respond

    body = b"<feed>" + b"x" * 5000 + b"</feed>"
    from datetime import UTC, datetime

    rep = make_representation(body, "application/atom+xml", datetime.now(UTC))
    request = make_mocked_request("GET", "/all.atom", headers={"Accept-Encoding": "gzip"})
    response = respond(request, rep)
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.body) == body  # type: ignore[arg-type]
    conditional = make_mocked_request("GET", "/all.atom", headers={"If-None-Match": rep.etag})
    assert respond(conditional, rep).status == 304
