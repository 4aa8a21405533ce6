"""Split roles sharing one store: a fetcher, and a server that publishes what it fetched."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import feedparser
import httpx
import pytest
from blogserver import BlogServer
from test_daemon import free_port, wait_for
from test_end_to_end import EXPECTED, write_config


@pytest.fixture
def blog() -> Iterator[BlogServer]:
    with BlogServer() as server:
        yield server


def start(config: Path, role: str, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "AGGREGATOR_DATABASE_URL": database_url}
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "run", "--role", role],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )


def test_fetch_role_and_serve_role_share_one_store(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    fetch_dir = tmp_path / "fetcher"
    serve_dir = tmp_path / "server"
    fetch_dir.mkdir()
    serve_dir.mkdir()
    fetch_port, serve_port = free_port(), free_port()
    fetch_config = write_config(fetch_dir, blog, port=fetch_port)
    serve_config = write_config(serve_dir, blog, port=serve_port)
    fetcher = start(fetch_config, "fetch", database_url, tmp_path / "fetch.log")
    server = start(serve_config, "serve", database_url, tmp_path / "serve.log")
    client = httpx.Client(timeout=5)
    try:
        base = f"http://127.0.0.1:{serve_port}"

        def published() -> int:
            response = client.get(f"{base}/feeds/all.atom")
            return len(feedparser.parse(response.content).entries) if response.is_success else 0

        wait_for(lambda: published() == len(EXPECTED["posts"]) - 1, 120,
                 "the serve role to publish what the fetch role stored")
        # Only the fetch role fetched: each post feed was requested once.
        assert blog.count("/marketingfacts/feed/") == 1
        assert blog.count("/videopodcast/atom.xml") == 1
        # The fetch role runs no HTTP server.
        with pytest.raises(httpx.ConnectError):
            client.get(f"http://127.0.0.1:{fetch_port}/healthz")
        assert (serve_dir / "feeds" / "all.atom").exists()
    finally:
        client.close()
        for process in (fetcher, server):
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=15) for process in (fetcher, server)]
    assert codes == [0, 0], (tmp_path / "fetch.log").read_text() + (
        tmp_path / "serve.log").read_text()


def test_a_feeds_directory_behind_the_store_is_brought_up_to_date(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    """Machines sharing one store each keep their own feeds/ under the same path.

    One machine publishing news must not make another machine believe its
    own copy is current: what was published is recorded in the directory.
    """
    from passes import run_pass

    config = write_config(tmp_path, blog, sources=("marketingfacts",))
    run_pass(config, database_url)
    feeds = tmp_path / "feeds"
    other_machine = tmp_path / "other-machines-feeds"
    shutil.copytree(feeds, other_machine)  # that machine's copy, as of now
    write_config(tmp_path, blog, sources=("marketingfacts", "videopodcast"))
    report = run_pass(config, database_url)
    assert report.published  # this machine wrote the news
    newest = (feeds / "all.atom").read_bytes()
    # The other machine, same path, older files: its next publish must rewrite them.
    shutil.rmtree(feeds)
    shutil.copytree(other_machine, feeds)
    assert (feeds / "all.atom").read_bytes() != newest
    again = run_pass(config, database_url, force=False)
    assert feeds / "all.atom" in again.published
    assert (feeds / "all.atom").read_bytes() == newest
    # Nothing new since: nothing rewritten.
    assert run_pass(config, database_url, force=False).published == []
