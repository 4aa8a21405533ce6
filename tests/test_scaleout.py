"""Scale-out on PostgreSQL: three real `aggregator run --role fetch` workers share one store.

Issue 5: several workers claim due sources with leases, never fetch a source
twice in one interval, respect ``[fetch] per_host`` across workers, and a
worker killed mid-pass loses nothing: its sources are taken over once its
lease expired. Four local blog hosts (127.0.0.1 … 127.0.0.4, one counting
BlogServer each) serve slow feeds so that the workers' passes overlap.

Each worker runs as if on its own machine (its own host name), so the lease
of a killed worker is not recognised as a dead local process and must expire.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from blogserver import BlogServer
from lxml import etree
from test_crash import WORDS
from test_end_to_end import source_block

from aggregator.pipeline import owner_is_dead, worker_name
from aggregator.store import Store

HOSTS = 4
SOURCES_PER_HOST = 10
POSTS = 2
PER_HOST = 2
CONCURRENCY = 3
LEASE_SECONDS = 6
POST_FEED_DELAY = 0.3
COMMENT_FEED_DELAY = 0.1
#: One feed slower than a lease: its worker must renew the lease, or another takes it.
SLOW_FEED_DELAY = LEASE_SECONDS + 1.5
WORKERS = ("worker-a", "worker-b", "worker-c")

RSS = "application/rss+xml; charset=UTF-8"

#: Runs the real CLI as if on another machine: only the host name differs.
AS_MACHINE = (
    "import runpy, socket, sys\n"
    "name = sys.argv.pop(1)\n"
    "socket.gethostname = lambda: name\n"
    "runpy.run_module('aggregator', run_name='__main__', alter_sys=True)\n"
)


@dataclass
class Source:
    name: str
    server: BlogServer
    feed_path: str
    posts: list[str]
    comment_paths: list[str]
    comments: list[str]


class Blogs:
    """Four hosts of slow, distinct blogs; half of them with a comment feed per post."""

    def __init__(self, root: Path, *, comments: bool, slow: bool = False) -> None:
        root.mkdir()
        (root / "manifest.json").write_text('{"documents": {}}', "utf-8")
        self.rng = random.Random(5)
        self.servers = [BlogServer(root, host=f"127.0.0.{n + 1}") for n in range(HOSTS)]
        self.sources: list[Source] = []
        self._comments = comments
        self._slow = slow

    def __enter__(self) -> Blogs:
        published = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
        for host, server in enumerate(self.servers):
            server.start()
            server.set_delay("*", POST_FEED_DELAY)
            for number in range(SOURCES_PER_HOST):
                name = f"h{host}-s{number:02d}"
                with_comments = self._comments and number % 2 == 0
                source = Source(name, server, f"/{name}/feed/", [], [], [])
                items = []
                for post in range(POSTS):
                    guid = f"{name}-p{post}"
                    published -= timedelta(minutes=37)
                    source.posts.append(guid)
                    comment_link = ""
                    if with_comments:
                        path = f"/{name}/p{post}/feed/"
                        source.comment_paths.append(path)
                        comment_link = f"<wfw:commentRss>{{{{BASE}}}}{path}</wfw:commentRss>"
                        self._comment_feed(server, source, guid, path, published)
                    items.append(
                        f"<item><title>{self._text(6)} {guid}</title>"
                        f"<link>{{{{BASE}}}}/{name}/{post}/</link>"
                        f'<guid isPermaLink="false">{guid}</guid>'
                        f"<pubDate>{format_datetime(published)}</pubDate>"
                        f"<description>{self._text(70)}</description>{comment_link}</item>")
                server.set_route(source.feed_path, _rss(name, f"/{name}/", items),
                                 content_type=RSS)
                if self._slow and host == HOSTS - 1 and number == 1:
                    server.set_delay(source.feed_path, SLOW_FEED_DELAY)
                self.sources.append(source)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for server in self.servers:
            server.stop()

    def _text(self, words: int) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(words))

    def _comment_feed(self, server: BlogServer, source: Source, post: str, path: str,
                      published: datetime) -> None:
        items = []
        for number in range(2):
            guid = f"{post}-c{number}"
            source.comments.append(guid)
            items.append(
                f"<item><title>Re: {post}</title><link>{{{{BASE}}}}{path}#c{number}</link>"
                f'<guid isPermaLink="false">{guid}</guid>'
                f"<pubDate>{format_datetime(published + timedelta(hours=number + 1))}</pubDate>"
                f"<dc:creator>Reader {number}</dc:creator>"
                f"<description>{self._text(25)}</description></item>")
        server.set_route(path, _rss(f"Comments on {post}", path, items), content_type=RSS,
                         delay=COMMENT_FEED_DELAY)

    def requests(self, source: Source, path: str | None = None) -> list[Any]:
        wanted = path or source.feed_path
        return [r for r in list(source.server.requests) if r.route == wanted]


def _rss(title: str, link: str, items: list[str]) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        'xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>{title}</title><link>{{{{BASE}}}}{link}</link><description>x</description>"
        f"<language>en</language>{''.join(items)}</channel></rss>")


def write_config(directory: Path, blogs: Blogs) -> Path:
    text = f"""# scale-out test: {len(blogs.sources)} blogs on {HOSTS} hosts
[aggregator]
title = "Scale-out"
base_url = "http://127.0.0.1:8080/"
feeds_dir = "feeds"

[fetch]
allow_short_intervals = true
interval = "30m"
tick = 1
per_host = {PER_HOST}
concurrency = {CONCURRENCY}
lease_seconds = {LEASE_SECONDS}
comments_days = 36500
"""
    text += "".join(source_block(s.name, s.server.url(s.feed_path), "en")
                    for s in blogs.sources)
    path = directory / "config.toml"
    path.write_text(text, "utf-8")
    return path


class Workers:
    """Three `aggregator run --role fetch` processes, each as if on its own machine."""

    def __init__(self, directory: Path, config: Path, database_url: str) -> None:
        self.directory = directory
        self.config = config
        self.database_url = database_url
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        env = {**os.environ, "AGGREGATOR_DATABASE_URL": self.database_url}
        with self.log(name).open("w") as out:
            # Its own process group: a kill takes its parser processes along.
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-c", AS_MACHINE, name, "--config", str(self.config),
                 "run", "--role", "fetch"],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def log(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def logs(self) -> str:
        return "".join(f"\n--- {name}\n{self.log(name).read_text('utf-8', 'replace')[-3000:]}"
                       for name in self.processes)

    def kill(self, name: str) -> None:
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def fetched_by(self) -> dict[str, set[str]]:
        """source → the workers that logged an outcome for it."""
        seen: dict[str, set[str]] = {}
        for name in self.processes:
            for source in re.findall(r"source=(\S+) result=", self.log(name).read_text("utf-8")):
                seen.setdefault(source, set()).add(name)
        return seen

    def stop(self) -> dict[str, int | None]:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = {}
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                codes[name] = process.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # stray parser processes
        return codes


@pytest.fixture
def engine(postgres_url: str) -> Iterator[sqlalchemy.Engine]:
    """The test's own view of the store (whose schema exists before any worker starts)."""
    Store(postgres_url).close()
    engine = sqlalchemy.create_engine(postgres_url)
    yield engine
    engine.dispose()


def rows(engine: sqlalchemy.Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(sqlalchemy.text(sql), params))


def wait_for(condition: Callable[[], bool], seconds: float, what: str,
             workers: Workers) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        for name, process in workers.processes.items():
            assert process.poll() is None or process.returncode == -signal.SIGKILL, (
                f"{name} exited with {process.returncode}{workers.logs()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}{workers.logs()}"
        time.sleep(0.02)


def stored(postgres_url: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """source → original ids of its posts, and of its comments, as exported."""
    store = Store(postgres_url)
    try:
        records = list(store.export_records())
    finally:
        store.close()
    posts: dict[str, list[str]] = {}
    comments: dict[str, list[str]] = {}
    for record in records:
        into = posts if record["kind"] == "post" else comments
        for appearance in record["appearances"]:
            into.setdefault(appearance["source"], []).append(appearance["original_id"])
    return posts, comments


def check_everything_stored(postgres_url: str, blogs: Blogs, *, comments: bool) -> None:
    posts, stored_comments = stored(postgres_url)
    assert {name: sorted(ids) for name, ids in posts.items()} == {
        s.name: sorted(s.posts) for s in blogs.sources}, "posts lost or stored twice"
    if comments:
        assert {name: sorted(ids) for name, ids in stored_comments.items()} == {
            s.name: sorted(s.comments) for s in blogs.sources if s.comments}


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def all_fetched_and_released(engine: sqlalchemy.Engine, count: int) -> bool:
    """Every source fetched, and no lease held any more (none at all, or none live)."""
    now = datetime.now(UTC)
    sources = rows(engine, "SELECT last_fetch_at, lease_until FROM source")
    return len(sources) == count and all(fetched for fetched, _ in sources) and not any(
        until and aware(until) > now for _, until in sources)


# --------------------------------------------------------------------------- the tests


@pytest.mark.timeout(120)
def test_three_workers_fetch_every_source_once_within_per_host(
    tmp_path: Path, postgres_url: str, engine: sqlalchemy.Engine,
) -> None:
    """Every feed and comment feed requested exactly once, ticks go on, nothing is due again.

    No host ever sees more than per_host requests at once over all three
    workers (comment feeds included); every source is logged by exactly one
    worker and the work is spread; one feed slower than a lease is still
    fetched once (its worker renews the lease); everything is stored and
    published into the shared feeds directory.
    """
    started = time.monotonic()
    with Blogs(tmp_path / "blogs", comments=True, slow=True) as blogs:
        config = write_config(tmp_path, blogs)
        workers = Workers(tmp_path, config, postgres_url)
        try:
            for name in WORKERS:
                workers.start(name)
            comment_feeds = sum(len(s.comment_paths) for s in blogs.sources)
            wait_for(lambda: all_fetched_and_released(engine, len(blogs.sources))
                     and sum(len(blogs.requests(s, p)) for s in blogs.sources
                             for p in s.comment_paths) >= comment_feeds,
                     60, "every source and comment feed to be fetched", workers)
            done = time.monotonic()
            # More ticks of all three workers: nothing is due again within the interval.
            time.sleep(2.5)
            assert rows(engine, "SELECT name, lease_owner FROM source "
                                "WHERE lease_owner IS NOT NULL") == [], "leases not handed back"
            for source in blogs.sources:
                assert len(blogs.requests(source)) == 1, (source.name, workers.logs())
                for path in source.comment_paths:
                    assert len(blogs.requests(source, path)) == 1, (path, workers.logs())
            peaks = [server.max_concurrent() for server in blogs.servers]
            # Reached (workers have more slots than the hosts) and never exceeded.
            assert max(peaks) == PER_HOST, (peaks, workers.logs())
            fetched_by = workers.fetched_by()
            assert sorted(fetched_by) == sorted(s.name for s in blogs.sources)
            assert all(len(names) == 1 for names in fetched_by.values()), fetched_by
            share = {name: sum(name in names for names in fetched_by.values())
                     for name in WORKERS}
            assert sum(1 for n in share.values() if n) >= 2, share
            check_everything_stored(postgres_url, blogs, comments=True)
            # Whoever published last, the shared feeds directory holds every post.
            all_atom = tmp_path / "feeds" / "all.atom"
            wait_for(lambda: all_atom.exists() and len(etree.parse(str(all_atom)).findall(
                "{http://www.w3.org/2005/Atom}entry")) == HOSTS * SOURCES_PER_HOST * POSTS,
                20, "the published feed to list every post", workers)
        finally:
            codes = workers.stop()
    assert codes == dict.fromkeys(WORKERS, 0), workers.logs()
    print(f"\n{len(blogs.sources)} sources over {HOSTS} hosts fetched in "
          f"{done - started:.1f}s from start-up; per-host peaks {peaks}; "
          f"sources per worker {share}; test {time.monotonic() - started:.1f}s")


@pytest.mark.timeout(120)
def test_killed_worker_loses_nothing_and_its_leases_expire_before_takeover(
    tmp_path: Path, postgres_url: str, engine: sqlalchemy.Engine,
) -> None:
    """kill -9 of one of three workers while it fetches.

    The sources it was fetching (leased, not stored) are fetched again by a
    survivor exactly once, and only after their lease expired; those it had
    stored are not fetched again (not due); every other source is fetched
    once; every post ends up stored once.
    """
    started = time.monotonic()
    victim = "worker-b"
    with Blogs(tmp_path / "blogs", comments=False) as blogs:
        config = write_config(tmp_path, blogs)
        workers = Workers(tmp_path, config, postgres_url)
        try:
            for name in (victim, *(w for w in WORKERS if w != victim)):
                workers.start(name)

            def victim_mid_fetch() -> bool:
                # The victim holds a source it has not stored yet, and the
                # others are at work too: a kill now is mid-pass for everyone.
                holders = rows(engine, "SELECT lease_owner, last_fetch_at FROM source "
                                       "WHERE lease_owner IS NOT NULL")
                return (any(o.startswith(f"{victim}:") and f is None for o, f in holders)
                        and any(not o.startswith(f"{victim}:") for o, _ in holders))

            wait_for(victim_mid_fetch, 40, f"{victim} to be mid-fetch", workers)
            workers.kill(victim)
            killed_at = time.time()
            kill_offset = time.monotonic() - started
            # Let PostgreSQL finish whatever the victim's connection had sent.
            time.sleep(0.3)
            held = rows(engine, "SELECT name, lease_until, last_fetch_at FROM source "
                                "WHERE lease_owner LIKE :owner", owner=f"{victim}:%")
            cut = {name: aware(until).timestamp() for name, until, fetched in held
                   if fetched is None}
            stored_before_kill = {name for name, _, fetched in held if fetched is not None}
            assert cut, held
            wait_for(lambda: all_fetched_and_released(engine, len(blogs.sources)),
                     LEASE_SECONDS + 30, "the survivors to take over every source", workers)
            done = time.time()
            time.sleep(1.5)  # more ticks: nothing else is fetched again

            by_name = {s.name: s for s in blogs.sources}
            taken_over = {}
            for name, lease_until in cut.items():
                # Cut mid-fetch: at most the victim's own request before the
                # kill, then exactly one by a survivor, after the lease expired.
                requests = blogs.requests(by_name[name])
                before = [r for r in requests if r.time < killed_at]
                after = [r for r in requests if r.time >= killed_at]
                assert len(before) <= 1 and len(after) == 1, (name, requests)
                assert after[0].time >= lease_until, (
                    f"{name} taken over {lease_until - after[0].time:.2f}s before its "
                    f"lease expired")
                taken_over[name] = after[0].time - lease_until
            for source in blogs.sources:
                if source.name not in cut:
                    # Fetched once: by a survivor, or by the victim before the
                    # kill (stored, so not due again, even if still leased).
                    assert len(blogs.requests(source)) == 1, (source.name, workers.logs())
            survivors = workers.fetched_by()
            for name in cut:
                assert victim not in survivors.get(name, set()), (name, survivors)
                assert survivors.get(name), (name, survivors)
            check_everything_stored(postgres_url, blogs, comments=False)
            assert max(server.max_concurrent() for server in blogs.servers) <= PER_HOST
        finally:
            codes = workers.stop()
    assert codes[victim] == -signal.SIGKILL
    assert {n: c for n, c in codes.items() if n != victim} == {
        n: 0 for n in WORKERS if n != victim}, workers.logs()
    print(f"\nkilled {victim} {kill_offset:.1f}s in, holding {len(cut)} source(s) mid-fetch "
          f"and {len(stored_before_kill)} stored; "
          f"taken over {', '.join(f'{d:.2f}' for d in taken_over.values())}s after their "
          f"leases expired ({LEASE_SECONDS}s); all stored {done - killed_at:.1f}s after the "
          f"kill; test {time.monotonic() - started:.1f}s")


def test_lease_of_another_machine_is_never_taken_before_it_expires(postgres_url: str) -> None:
    from aggregator.config import SourceConfig

    now = datetime.now(UTC)
    store = Store(postgres_url)
    try:
        store.sync_sources([SourceConfig(name=n, url=f"https://{n}.example/feed/")
                            for n in ("a", "b", "c")], now)
        me = worker_name()
        host, pid, start, scope = me.split(":")
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        elsewhere = f"elsewhere:{pid}:{start}:{scope}"    # another host name, our live pid
        same_name = f"{host}:{gone.pid}:1:{scope}0"       # our host name, another boot
        dead_here = f"{host}:{gone.pid}:1:{scope}"        # a process gone from this machine
        assert not owner_is_dead(elsewhere) and not owner_is_dead(same_name)
        assert owner_is_dead(dead_here) and not owner_is_dead(me)
        lease = timedelta(seconds=60)
        for owner, name in ((elsewhere, "a"), (same_name, "b"), (dead_here, "c")):
            assert [s.name for s in store.claim_due(
                now=now, owner=owner, lease=lease, names=[name])] == [name]
        claim = store.claim_due(now=now + timedelta(seconds=59), owner=me, lease=lease,
                                names=["a", "b", "c"], stale_owner=owner_is_dead)
        assert [s.name for s in claim] == ["c"]
        claim = store.claim_due(now=now + timedelta(seconds=61), owner=me, lease=lease,
                                names=["a", "b"], stale_owner=owner_is_dead)
        assert sorted(s.name for s in claim) == ["a", "b"]
    finally:
        store.close()


def test_per_host_counts_every_workers_leases(postgres_url: str) -> None:
    from aggregator.config import SourceConfig

    now = datetime.now(UTC)
    store = Store(postgres_url)
    try:
        names = [f"{host}{n}" for host in "xy" for n in range(3)]
        store.sync_sources([SourceConfig(name=n, url=f"https://{n[0]}.example/{n}/feed/")
                            for n in names], now)
        lease = timedelta(minutes=5)
        first = store.claim_due(now=now, owner="w1", lease=lease, names=names, per_host=2,
                                limit=1)
        assert [s.name for s in first] == ["x0"] and "x1" in first.waiting
        second = store.claim_due(now=now, owner="w2", lease=lease, names=names, per_host=2)
        # x has one slot left (w1 holds x0), y has two.
        assert sorted(s.name for s in second) == ["x1", "y0", "y1"]
        assert second.waiting == ["x2", "y2"] and second.full_hosts == {
            "x.example:443", "y.example:443"}
        assert store.claim_due(now=now, owner="w3", lease=lease, names=names, per_host=2) == []
        store.release([s.id for s in first], "w1")
        third = store.claim_due(now=now, owner="w3", lease=lease, names=names, per_host=2)
        assert [s.name for s in third] == ["x0"] and third.waiting == ["x2", "y2"]
        # Ten minutes on, w3's lease (x0) has expired and w2's renewed ones still count.
        store.renew([s.id for s in second], "w2", until=now + timedelta(minutes=20))
        later = store.claim_due(now=now + timedelta(minutes=10), owner="w4", lease=lease,
                                names=names, per_host=2)
        assert [s.name for s in later] == ["x0"] and later.waiting == ["x2", "y2"]
    finally:
        store.close()


def test_one_publisher_at_a_time(postgres_url: str, tmp_path: Path) -> None:
    first, second = Store(postgres_url), Store(postgres_url)
    try:
        with first.publish_lock(tmp_path / "feeds") as mine:
            assert mine
            with second.publish_lock(tmp_path / "feeds") as theirs:
                assert not theirs
            with second.publish_lock(tmp_path / "other") as elsewhere:
                assert elsewhere
        with second.publish_lock(tmp_path / "feeds") as theirs:
            assert theirs
    finally:
        first.close()
        second.close()

