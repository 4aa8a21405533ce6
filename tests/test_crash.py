"""kill -9 at random points of fetch passes: nothing lost, nothing duplicated, nothing torn.

Issue 3, "Nothing is lost or duplicated". A generated corpus of ~30 local
blogs (RSS and Atom, posts with comment feeds, cross-posts of one article on
two blogs) is served by BlogServer with small delays, so that one
``aggregator fetch --all`` takes a few seconds. The CLI is started as a real
process many times and SIGKILLed after a random delay (during fetch, parse,
store or publish); the corpus changes between runs so that publishing
rewrites files while it is being killed. After every kill:

- the database passes its integrity check and can be opened and counted;
- every published file is complete, well-formed XML/JSON/HTML (atomic replace);
- no article is split over two entries, nothing unknown was stored;
- validators advance only together with the entries they describe: every
  feed is served with an ETag and a Last-Modified that name its version, and
  whichever version the store's validators name, every entry of that version
  is in the store.

Then two passes without a kill must converge: every post once (cross-posts
merged, with both appearances), every comment once under its post, the
published feeds listing the newest of them, and the second pass changing no
published file.

The kill schedule is seeded: set AGGREGATOR_CRASH_SEED to replay a failure
(the seed is printed and is in every assertion message).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest
import sqlalchemy
from blogserver import BlogServer
from lxml import etree
from lxml import html as lxml_html

from aggregator.store import Store

ATOM = "{http://www.w3.org/2005/Atom}"
RSS_TYPE = "application/rss+xml; charset=UTF-8"
ATOM_TYPE = "application/atom+xml; charset=UTF-8"

BLOGS = 30
#: Kills per back end; with the final passes this keeps the test near a minute each.
KILLS = {"sqlite": 12, "postgresql": 8}
#: Upper bound of the random kill delay: about one pass of this corpus, start-up included.
PASS_SECONDS = 4.0
#: Upper bound of the delay of a kill aimed at publishing (writing ~20 files takes ~0.1 s).
PUBLISH_SECONDS = 0.3
#: Delay of every post feed (304s included) and of every comment feed.
POST_FEED_DELAY = 0.35
COMMENT_FEED_DELAY = 0.04
#: Entries per published feed (aggregator.pipeline.MAX_FEED_ENTRIES).
FEED_CAP = 100

WORDS = (
    "brand", "community", "marketing", "social", "media", "content", "audience", "campaign",
    "budget", "agency", "strategy", "customer", "loyalty", "engagement", "advertising",
    "channel", "search", "email", "video", "podcast", "influencer", "growth", "funnel",
    "conversion", "insight", "data", "privacy", "trust", "story", "launch", "product",
    "feedback", "review", "forum", "newsletter", "partner", "event", "webinar", "retail",
    "mobile", "platform",
)
NAMES = ("Anna", "Bram", "Chris", "Daan", "Eva", "Femke", "Gijs", "Hanna", "Ingrid",
         "Joost", "Karin", "Lotte", "Martin", "Nina", "Otto", "Petra")

#: A parser that never fetches or expands anything a published file might name.
SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


# --------------------------------------------------------------------------- the corpus


@dataclass
class Comment:
    guid: str
    author: str
    published: datetime
    text: str


@dataclass
class Thread:
    """A post's comment feed, and every version of it the server has served."""

    path: str
    #: Does the post feed state the comment count (slash:comments, thr:count)?
    declared: bool
    comments: list[Comment] = field(default_factory=list)
    version: int = 0
    #: version → the comment GUIDs that version carried.
    versions: dict[int, frozenset[str]] = field(default_factory=dict)


@dataclass
class Post:
    guid: str
    #: The article this post is a copy of: cross-posts on two blogs share it.
    article: str
    title: str
    path: str
    published: datetime
    body: str
    thread: Thread | None


@dataclass
class Blog:
    name: str
    atom: bool
    posts: list[Post] = field(default_factory=list)
    version: int = 0
    #: version → the post GUIDs that version carried.
    versions: dict[int, frozenset[str]] = field(default_factory=dict)

    @property
    def feed_path(self) -> str:
        return f"/{self.name}/atom.xml" if self.atom else f"/{self.name}/feed/"


def _http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Corpus:
    """Blogs, their posts and comments, served by a BlogServer; the ground truth."""

    def __init__(self, rng: random.Random, server: BlogServer) -> None:
        self.rng = rng
        self.server = server
        # Every item gets its own second, so "newest first" has no ties.
        self._start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
        self._clock = itertools.count()
        self._serial = itertools.count()
        #: Validator string → (feed path, version), for ETags and Last-Modified alike.
        self.validators: dict[str, tuple[str, int]] = {}
        self.blogs = [Blog(f"b{i:02d}", atom=i % 2 == 1) for i in range(BLOGS)]
        for blog in self.blogs:
            for _ in range(rng.randint(5, 20)):
                self._new_post(blog)
        # Cross-posts: the same article (same body) later on another blog.
        for _ in range(6):
            original_blog, copy_blog = rng.sample(self.blogs, 2)
            original = rng.choice(original_blog.posts)
            if any(p.article == original.article for p in copy_blog.posts):
                continue
            self._new_post(copy_blog, copy_of=original)
        for blog in self.blogs:
            server.set_delay(f"/{blog.name}/*", COMMENT_FEED_DELAY)
            self.serve(blog)
            for post in blog.posts:
                if post.thread is not None:
                    self.serve_thread(blog, post)

    def _moment(self) -> datetime:
        return self._start + timedelta(seconds=61 * next(self._clock))

    def _new_post(self, blog: Blog, copy_of: Post | None = None) -> Post:
        number = next(self._serial)
        slug = f"post-{number}"
        if copy_of is None:
            article = f"art{number:04d}"
            words = " ".join(self.rng.choice(WORDS) for _ in range(60))
            body = f"{words} {article} closing remarks"
            title = f"{self.rng.choice(WORDS).title()} {self.rng.choice(WORDS)} {article}"
        else:
            article, body, title = copy_of.article, copy_of.body, f"Cross-post: {copy_of.title}"
        thread = None
        if self.rng.random() < 0.45:
            suffix = "comments.atom" if blog.atom else "feed/"
            thread = Thread(path=f"/{blog.name}/{slug}/{suffix}",
                            declared=self.rng.random() < 0.6)
        post = Post(guid=f"tag:{blog.name}.example,2024:{slug}", article=article, title=title,
                    path=f"/{blog.name}/{slug}/", published=self._moment(), body=body,
                    thread=thread)
        if thread is not None:
            for _ in range(self.rng.randint(1, 5)):
                self._new_comment(post)
        blog.posts.append(post)
        return post

    def _new_comment(self, post: Post) -> None:
        assert post.thread is not None
        number = next(self._serial)
        post.thread.comments.append(Comment(
            guid=f"{post.guid}/comment-{number}", author=self.rng.choice(NAMES),
            published=self._moment(),
            text=f"Comment {number} on {post.article}: {self.rng.choice(WORDS)} indeed.",
        ))

    # ------------------------------------------------------------------ serving

    def _validators(self, path: str, version: int) -> dict[str, str]:
        etag = f'"{path.strip("/").replace("/", "~")}~v{version}"'
        # A Last-Modified of its own per (feed, version), so it names the version too.
        moment = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(
            seconds=len(self.validators) * 7 + version)
        last_modified = _http_date(moment)
        self.validators[etag] = (path, version)
        self.validators[last_modified] = (path, version)
        return {"ETag": etag, "Last-Modified": last_modified}

    def serve(self, blog: Blog) -> None:
        """Publish the next version of ``blog``'s post feed."""
        blog.version += 1
        blog.versions[blog.version] = frozenset(p.guid for p in blog.posts)
        body = _atom_feed(blog) if blog.atom else _rss_feed(blog)
        self.server.set_route(
            blog.feed_path, body, content_type=ATOM_TYPE if blog.atom else RSS_TYPE,
            headers=self._validators(blog.feed_path, blog.version), delay=POST_FEED_DELAY,
        )

    def serve_thread(self, blog: Blog, post: Post) -> None:
        thread = post.thread
        assert thread is not None
        thread.version += 1
        thread.versions[thread.version] = frozenset(c.guid for c in thread.comments)
        body = _atom_comments(blog, post) if blog.atom else _rss_comments(blog, post)
        self.server.set_route(
            thread.path, body, content_type=ATOM_TYPE if blog.atom else RSS_TYPE,
            headers=self._validators(thread.path, thread.version),
        )

    def evolve(self) -> str:
        """New posts on some blogs, new comments in some threads; returns what changed."""
        changed_blogs: set[str] = set()
        for blog in self.rng.sample(self.blogs, 2):
            self._new_post(blog)
            new = blog.posts[-1]
            if new.thread is not None:
                self.serve_thread(blog, new)
            changed_blogs.add(blog.name)
        threads = [(b, p) for b in self.blogs for p in b.posts if p.thread is not None]
        for blog, post in self.rng.sample(threads, 3):
            assert post.thread is not None
            self._new_comment(post)
            self.serve_thread(blog, post)
            if post.thread.declared:
                # The post feed states the new count: it changes too.
                changed_blogs.add(blog.name)
        for blog in self.blogs:
            if blog.name in changed_blogs:
                self.serve(blog)
        return ",".join(sorted(changed_blogs))

    # ------------------------------------------------------------------ ground truth

    def thread_by_path(self) -> dict[str, Thread]:
        return {p.thread.path: p.thread for b in self.blogs for p in b.posts if p.thread}

    def appearance_article(self) -> dict[tuple[str, str], str]:
        """(source name, GUID) → article, for every post ever served."""
        return {(b.name, p.guid): p.article for b in self.blogs for p in b.posts}

    def comment_article(self) -> dict[tuple[str, str], str]:
        """(source name, comment GUID) → the article it comments on."""
        return {(b.name, c.guid): p.article for b in self.blogs for p in b.posts
                if p.thread for c in p.thread.comments}

    def articles(self) -> dict[str, list[tuple[Blog, Post]]]:
        """article → its copies, the original (earliest) first."""
        found: dict[str, list[tuple[Blog, Post]]] = {}
        for blog in self.blogs:
            for post in blog.posts:
                found.setdefault(post.article, []).append((blog, post))
        for copies in found.values():
            copies.sort(key=lambda copy: copy[1].published)
        return found


def _rss_feed(blog: Blog) -> str:
    items = []
    for post in reversed(blog.posts):
        comments = ""
        if post.thread is not None:
            comments = f"<wfw:commentRss>{{{{BASE}}}}{post.thread.path}</wfw:commentRss>"
            if post.thread.declared:
                comments += f"<slash:comments>{len(post.thread.comments)}</slash:comments>"
        items.append(f"""
  <item>
    <title>{escape(post.title)}</title>
    <link>{{{{BASE}}}}{post.path}</link>
    <guid isPermaLink="false">{post.guid}</guid>
    <pubDate>{_http_date(post.published)}</pubDate>
    <dc:creator>{blog.name} author</dc:creator>
    <content:encoded><![CDATA[<p>{post.body}</p>]]></content:encoded>
    {comments}
  </item>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
  xmlns:wfw="http://wellformedweb.org/CommentAPI/" xmlns:dc="http://purl.org/dc/elements/1.1/"
  xmlns:slash="http://purl.org/rss/1.0/modules/slash/">
<channel>
  <title>Blog {blog.name}</title>
  <link>{{{{BASE}}}}/{blog.name}/</link>
  <description>Marketing notes from {blog.name}</description>
  <language>en</language>{"".join(items)}
</channel>
</rss>
"""


def _atom_feed(blog: Blog) -> str:
    entries = []
    for post in reversed(blog.posts):
        replies = ""
        if post.thread is not None:
            count = f' thr:count="{len(post.thread.comments)}"' if post.thread.declared else ""
            replies = (f'<link rel="replies" type="application/atom+xml" '
                       f'href="{{{{BASE}}}}{post.thread.path}"{count}/>')
        entries.append(f"""
  <entry>
    <id>{post.guid}</id>
    <title>{escape(post.title)}</title>
    <link rel="alternate" type="text/html" href="{{{{BASE}}}}{post.path}"/>
    {replies}
    <published>{_iso(post.published)}</published>
    <updated>{_iso(post.published)}</updated>
    <author><name>{blog.name} author</name></author>
    <content type="html">{escape(f"<p>{post.body}</p>")}</content>
  </entry>""")
    updated = max(p.published for p in blog.posts)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:thr="http://purl.org/syndication/thread/1.0"
  xml:lang="en">
  <id>urn:blog:{blog.name}</id>
  <title>Blog {blog.name}</title>
  <updated>{_iso(updated)}</updated>
  <link rel="alternate" type="text/html" href="{{{{BASE}}}}/{blog.name}/"/>
  <link rel="self" type="application/atom+xml"
    href="{{{{BASE}}}}{blog.feed_path}"/>{"".join(entries)}
</feed>
"""


def _rss_comments(blog: Blog, post: Post) -> str:
    assert post.thread is not None
    items = "".join(f"""
  <item>
    <title>By: {comment.author}</title>
    <link>{{{{BASE}}}}{post.path}#{comment.guid.rpartition("/")[2]}</link>
    <guid isPermaLink="false">{comment.guid}</guid>
    <pubDate>{_http_date(comment.published)}</pubDate>
    <dc:creator>{comment.author}</dc:creator>
    <description>{escape(comment.text)}</description>
  </item>""" for comment in post.thread.comments)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Comments on: {escape(post.title)}</title>
  <link>{{{{BASE}}}}{post.path}</link>
  <description>Comments on {post.guid}</description>{items}
</channel>
</rss>
"""


def _atom_comments(blog: Blog, post: Post) -> str:
    assert post.thread is not None
    entries = "".join(f"""
  <entry>
    <id>{comment.guid}</id>
    <title>By: {comment.author}</title>
    <link rel="alternate" type="text/html"
      href="{{{{BASE}}}}{post.path}#{comment.guid.rpartition("/")[2]}"/>
    <thr:in-reply-to ref={quoteattr(post.guid)} href="{{{{BASE}}}}{post.path}"/>
    <published>{_iso(comment.published)}</published>
    <updated>{_iso(comment.published)}</updated>
    <author><name>{comment.author}</name></author>
    <content type="text">{escape(comment.text)}</content>
  </entry>""" for comment in post.thread.comments)
    updated = max([post.published, *(c.published for c in post.thread.comments)])
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:thr="http://purl.org/syndication/thread/1.0">
  <id>urn:comments:{post.guid}</id>
  <title>Comments on: {escape(post.title)}</title>
  <updated>{_iso(updated)}</updated>
  <link rel="alternate" type="text/html" href="{{{{BASE}}}}{post.path}"/>{entries}
</feed>
"""


# --------------------------------------------------------------------------- running


def write_config(directory: Path, corpus: Corpus) -> Path:
    text = f"""# crash test: {BLOGS} local blogs
[aggregator]
title = "Crash corpus"
base_url = "http://127.0.0.1:8080/"
feeds_dir = "feeds"

[fetch]
allow_short_intervals = true
interval = "1m"
tick = 1
per_host = 8
concurrency = 8
comments_days = 36500

[[topics]]
slug = "community"
title = "Community"
keywords = ["community", "forum"]
"""
    for blog in corpus.blogs:
        text += f"""
[[sources]]
name = "{blog.name}"
url = "{corpus.server.url(blog.feed_path)}"
language = "en"
allow_private = true
"""
    path = directory / "config.toml"
    path.write_text(text, "utf-8")
    return path


@dataclass
class Run:
    seconds: float
    killed: bool
    returncode: int | None
    #: Where the pass was when it ended: "fetching, 12/30 sources done", "publishing", "done".
    phase: str


def _phase(log: Path, finished: bool) -> str:
    # One "source=NAME result=…" line per source, logged once it is wholly done.
    done = len(re.findall(r" source=\S+ result=", log.read_text("utf-8", "replace")))
    if finished:
        return "done"
    if done >= BLOGS:
        return "publishing"
    return f"fetching, {done}/{BLOGS} sources done"


def fetch_all(
    config: Path, database_url: str, log: Path, *,
    kill_after: float | None = None, kill_in_publish: float | None = None,
) -> Run:
    """``aggregator fetch --all`` as its own process, SIGKILLed at a chosen point.

    ``kill_after``: seconds after the start. ``kill_in_publish``: seconds after
    the last source's outcome is logged, i.e. while the feeds are written.
    Neither: the pass runs to its end.
    """
    env = {**os.environ, "AGGREGATOR_DATABASE_URL": database_url}
    started = time.monotonic()
    kill_at = started + kill_after if kill_after is not None else None
    with log.open("wb") as err, open(os.devnull, "wb") as out:
        # Its own process group, so that the parser workers the kill orphans
        # can be cleaned up afterwards (they never touch the store or feeds/).
        process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "fetch", "--all"],
            stdout=out, stderr=err, env=env, start_new_session=True,
        )
        killed = False
        try:
            while process.poll() is None:
                now = time.monotonic()
                if kill_at is None and kill_in_publish is not None and \
                        _phase(log, False) == "publishing":
                    kill_at = now + kill_in_publish
                if kill_at is not None and now >= kill_at:
                    phase = _phase(log, False)
                    process.send_signal(signal.SIGKILL)
                    killed = True
                    break
                assert now - started < 120, "a fetch pass took more than two minutes"
                time.sleep(0.005)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    seconds = time.monotonic() - started
    if not killed:
        phase = _phase(log, True)
    return Run(seconds, killed, None if killed else process.returncode, phase)


def export(config: Path, database_url: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), "export"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "AGGREGATOR_DATABASE_URL": database_url},
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# --------------------------------------------------------------------------- checks


def check_database_integrity(database_url: str, context: str) -> dict[str, int]:
    """The store opens, counts, and (SQLite) passes PRAGMA integrity_check."""
    if database_url.startswith("sqlite"):
        # Read with the stdlib driver, not the code under test.
        connection = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        try:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)], context
            assert connection.execute("PRAGMA foreign_key_check").fetchall() == [], context
        finally:
            connection.close()
    store = Store(database_url)
    try:
        assert store.integrity_ok(), context
        return store.counts()
    finally:
        store.close()


def check_every_source_fetched(database_url: str, since: datetime, context: str) -> None:
    """A pass that ran to its end fetched every source, whoever held it before."""
    store = Store(database_url)
    try:
        stale = sorted(row.name for row in store.status()
                       if row.last_fetch_at is None or row.last_fetch_at < since)
    finally:
        store.close()
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            leases = connection.execute(sqlalchemy.text(
                "SELECT name, lease_owner, lease_until FROM source "
                "WHERE lease_owner IS NOT NULL ORDER BY name")).all()
    finally:
        engine.dispose()
    assert not stale, (
        f"{context}: fetch --all did not fetch {len(stale)} source(s) {stale}; "
        f"still leased: {[tuple(map(str, lease)) for lease in leases]}")


def _versions(
    corpus: Corpus, etag: str | None, last_modified: str | None, where: str,
) -> set[tuple[str, int]]:
    """The (feed, version) the stored validators name: at most one."""
    versions = set()
    for validator in (etag, last_modified):
        if validator is not None:
            assert validator in corpus.validators, f"{where}: {validator!r} was never served"
            versions.add(corpus.validators[validator])
    assert len(versions) <= 1, f"{where}: ETag and Last-Modified name different versions"
    return versions


def check_store_consistent(database_url: str, corpus: Corpus, context: str) -> None:
    """No unknown or split entry; validators never ahead of the entries they describe."""
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            sources = connection.execute(sqlalchemy.text(
                "SELECT name, etag, last_modified FROM source")).all()
            appearances = connection.execute(sqlalchemy.text(
                "SELECT s.name, a.kind, a.original_id, a.entry_id FROM appearance a "
                "JOIN source s ON s.id = a.source_id")).all()
            entry_post = dict(connection.execute(sqlalchemy.text(
                "SELECT id, post_id FROM entry")).all())
            comment_feeds = connection.execute(sqlalchemy.text(
                "SELECT s.name, c.url, c.etag, c.last_modified FROM comment_feed c "
                "JOIN source s ON s.id = c.source_id")).all()
    finally:
        engine.dispose()

    post_article = corpus.appearance_article()
    comment_article = corpus.comment_article()
    stored_posts: set[tuple[str, str]] = set()
    stored_comments: set[tuple[str, str]] = set()
    entry_of_article: dict[str, set[int]] = {}
    for name, kind, guid, entry_id in appearances:
        if kind == "post":
            assert (name, guid) in post_article, f"{context}: unknown post {name} {guid}"
            stored_posts.add((name, guid))
            entry_of_article.setdefault(post_article[name, guid], set()).add(entry_id)
    for article, entry_ids in entry_of_article.items():
        assert len(entry_ids) == 1, f"{context}: {article} split over entries {entry_ids}"
    for name, kind, guid, entry_id in appearances:
        if kind == "comment":
            assert (name, guid) in comment_article, f"{context}: unknown comment {name} {guid}"
            assert (name, guid) not in stored_comments, f"{context}: comment {guid} twice"
            stored_comments.add((name, guid))
            (post_entry,) = entry_of_article[comment_article[name, guid]]
            assert entry_post[entry_id] == post_entry, f"{context}: {guid} under the wrong post"

    blogs = {blog.name: blog for blog in corpus.blogs}
    for name, etag, last_modified in sources:
        blog = blogs[name]
        versions = _versions(corpus, etag, last_modified, f"{context}: {name}")
        for path, version in versions:
            assert path == blog.feed_path
            missing = {(name, g) for g in blog.versions[version]} - stored_posts
            assert not missing, (f"{context}: {name} holds the validators of version "
                                 f"{version} but not its posts {sorted(missing)}")
    threads = corpus.thread_by_path()
    for name, url, etag, last_modified in comment_feeds:
        thread = threads[url.removeprefix(corpus.server.base_url)]
        versions = _versions(corpus, etag, last_modified, f"{context}: {url}")
        for path, version in versions:
            assert path == thread.path
            missing = {(name, g) for g in thread.versions[version]} - stored_comments
            assert not missing, (f"{context}: {url} holds the validators of version "
                                 f"{version} but not its comments {sorted(missing)}")


def check_published_files(feeds: Path, context: str) -> tuple[int, int]:
    """Every published file is whole and well-formed.

    Returns how many there are, and how many temporary files interrupted
    atomic writes left behind (dot-files, never served as feeds).
    """
    count = leftovers = 0
    for path in sorted(feeds.rglob("*")):
        if not path.is_file():
            continue
        if path.name.startswith("."):
            leftovers += 1
            continue
        count += 1
        data = path.read_bytes()
        where = f"{context}: {path.relative_to(feeds)}"
        if path.suffix == ".json":
            document = json.loads(data)
            assert document["version"] == "https://jsonfeed.org/version/1.1", where
            ids = [item["id"] for item in document["items"]]
        elif path.suffix == ".html":
            assert data.rstrip().endswith(b"</html>"), where
            lxml_html.document_fromstring(data)
            continue
        else:
            try:
                root = etree.fromstring(data, SAFE_XML)
            except etree.XMLSyntaxError as error:
                raise AssertionError(f"{where}: not well-formed XML: {error}") from error
            if path.suffix == ".opml":
                continue
            if path.suffix == ".atom":
                ids = [e.findtext(f"{ATOM}id") for e in root.iter(f"{ATOM}entry")]
            else:
                ids = [e.findtext("guid") for e in root.iter("item")]
        assert len(ids) == len(set(ids)), f"{where}: an entry twice"
        # all.atom and comments.atom also carry the entries no RFC 5005
        # archive document holds yet: fewer than a block more.
        archived = path.name in ("all.atom", "comments.atom") and path.parent == feeds
        assert len(ids) <= (2 * FEED_CAP - 1 if archived else FEED_CAP), where
    return count, leftovers


def archived_ids(feeds: Path, stem: str) -> set[str]:
    """Every entry id of ``stem``.atom and the archive documents it leads to (RFC 5005 §4.2)."""
    ids: set[str] = set()
    path: Path | None = feeds / f"{stem}.atom"
    visited = 0
    while path is not None:
        root = etree.parse(str(path), SAFE_XML).getroot()
        ids |= {e.findtext(f"{ATOM}id") for e in root.iter(f"{ATOM}entry")}
        older = [link.get("href") for link in root.findall(f"{ATOM}link[@rel='prev-archive']")]
        path = feeds / "archive" / older[0].split("/archive/", 1)[1] if older else None
        visited += 1
        assert visited < 1000
    return ids


def check_converged(
    records: list[dict[str, Any]], corpus: Corpus, feeds: Path, context: str,
) -> None:
    """Every article once (copies merged), every comment once under its post, feeds newest."""
    posts = [r for r in records if r["kind"] == "post"]
    comments = [r for r in records if r["kind"] == "comment"]
    post_article = corpus.appearance_article()
    record_of_article: dict[str, dict[str, Any]] = {}
    for record in posts:
        articles = {post_article.get((a["source"], a["original_id"]))
                    for a in record["appearances"]}
        assert len(articles) == 1 and None not in articles, f"{context}: {record}"
        (article,) = articles
        assert article not in record_of_article, f"{context}: {article} stored twice"
        record_of_article[article] = record
    expected = corpus.articles()
    assert set(record_of_article) == set(expected), (
        f"{context}: lost {sorted(set(expected) - set(record_of_article))}, "
        f"unexpected {sorted(set(record_of_article) - set(expected))}")
    for article, copies in expected.items():
        record = record_of_article[article]
        assert sorted((a["source"], a["original_id"]) for a in record["appearances"]) == sorted(
            (blog.name, post.guid) for blog, post in copies), f"{context}: {article}"
        # The earliest copy is the canonical one.
        assert record["source"] == copies[0][0].name, f"{context}: {article}"
        wanted = sum(len(p.thread.comments) for _, p in copies if p.thread)
        assert record["comments"] == wanted, f"{context}: {article} comments"

    comment_article = corpus.comment_article()
    seen: set[tuple[str, str]] = set()
    for record in comments:
        (appearance,) = record["appearances"]
        key = (appearance["source"], appearance["original_id"])
        assert key in comment_article, f"{context}: unknown comment {key}"
        assert key not in seen, f"{context}: comment {key} twice"
        seen.add(key)
        assert record["post"] == record_of_article[comment_article[key]]["id"], (
            f"{context}: comment {key} is not under its post")
    assert seen == set(comment_article), (
        f"{context}: lost comments {sorted(set(comment_article) - seen)}")

    # The published feeds list the newest FEED_CAP of them, newest first; the
    # Atom ones and their archive documents every one of them.
    newest_posts = sorted(expected, key=lambda a: expected[a][0][1].published, reverse=True)
    rss = etree.parse(str(feeds / "all.rss"), SAFE_XML)
    assert [e.findtext("guid") for e in rss.iter("item")] == [
        record_of_article[a]["id"] for a in newest_posts[:FEED_CAP]], f"{context}: all.rss"
    atom = etree.parse(str(feeds / "all.atom"), SAFE_XML)
    atom_ids = [e.findtext(f"{ATOM}id") for e in atom.iter(f"{ATOM}entry")]
    assert set(atom_ids) >= {record_of_article[a]["id"] for a in newest_posts[:FEED_CAP]}, (
        f"{context}: all.atom")
    assert archived_ids(feeds, "all") == {r["id"] for r in posts}, f"{context}: archives"
    comment_ids = {key: r["id"] for r in comments
                   for key in [(r["appearances"][0]["source"],
                                r["appearances"][0]["original_id"])]}
    published = {(b.name, c.guid): c.published for b in corpus.blogs for p in b.posts
                 if p.thread for c in p.thread.comments}
    newest_comments = sorted(comment_article, key=published.__getitem__, reverse=True)
    rss = etree.parse(str(feeds / "comments.rss"), SAFE_XML)
    assert [e.findtext("guid") for e in rss.iter("item")] == [
        comment_ids[k] for k in newest_comments[:FEED_CAP]], f"{context}: comments.rss"
    assert archived_ids(feeds, "comments") == {r["id"] for r in comments}, (
        f"{context}: comment archives")


# --------------------------------------------------------------------------- the test


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("AGGREGATOR_CRASH_SEED") or time.time_ns() % 1_000_000)
    print(f"\ncrash test seed: AGGREGATOR_CRASH_SEED={value}")
    return value


@pytest.fixture
def blog_server() -> Iterator[BlogServer]:
    with BlogServer() as server:
        yield server


@pytest.mark.timeout(300)
def test_kill_nine_at_random_points_loses_and_duplicates_nothing(
    tmp_path: Path, blog_server: BlogServer, database_url: str, seed: int,
) -> None:
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    rng = random.Random(seed)
    corpus = Corpus(rng, blog_server)
    config = write_config(tmp_path, corpus)
    feeds = tmp_path / "feeds"
    log = tmp_path / "fetch.log"
    pass_seconds = PASS_SECONDS
    killed_in: list[str] = []
    for number in range(KILLS[backend]):
        changed = corpus.evolve() if number and rng.random() < 0.75 else "-"
        if number % 4 == 3:
            # Aimed at the short publish step, which a uniform delay rarely hits.
            delay = round(rng.uniform(0, PUBLISH_SECONDS), 3)
            run = fetch_all(config, database_url, log, kill_in_publish=delay)
            aim = f"{delay:.2f}s into publishing"
        else:
            delay = round(rng.uniform(0, pass_seconds), 3)
            run = fetch_all(config, database_url, log, kill_after=delay)
            aim = f"at {delay:.2f}s"
        context = f"seed {seed}, {backend} run {number} killed {aim} ({run.phase})"
        print(f"run {number:2d}: kill {aim:24} {run.seconds:5.2f}s "
              f"{'killed' if run.killed else 'not killed'} while {run.phase}; changed {changed}")
        if run.killed:
            killed_in.append(run.phase)
        else:
            assert run.returncode == 0, f"{context}: {log.read_text('utf-8', 'replace')}"
            # The kill window follows this machine's speed.
            pass_seconds = max(PASS_SECONDS, run.seconds)
        counts = check_database_integrity(database_url, context)
        check_store_consistent(database_url, corpus, context)
        files, leftovers = check_published_files(feeds, context) if feeds.exists() else (0, 0)
        print(f"        store {counts}, {files} published file(s) whole, "
              f"{leftovers} temporary file(s) left")

    # Recovery: a whole pass fetches every source and converges...
    corpus.evolve()
    since = datetime.now(UTC) - timedelta(seconds=1)
    final = fetch_all(config, database_url, log)
    context = f"seed {seed}, {backend} pass after the kills"
    print(f"final pass: {final.seconds:.2f}s")
    assert final.returncode == 0, f"{context}: {log.read_text('utf-8', 'replace')}"
    # A pass's publish spends at most half a second on archive documents; a
    # slow machine may leave some, which `publish` writes (a no-op otherwise).
    published = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), "publish"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "AGGREGATOR_DATABASE_URL": database_url})
    assert published.returncode == 0, published.stderr
    check_database_integrity(database_url, context)
    check_every_source_fetched(database_url, since, context)
    check_store_consistent(database_url, corpus, context)
    check_published_files(feeds, context)
    records = export(config, database_url)
    check_converged(records, corpus, feeds, context)

    # ...and the next one has nothing left to do.
    mtimes = {p: p.stat().st_mtime_ns for p in feeds.rglob("*") if p.is_file()}
    again = fetch_all(config, database_url, log)
    print(f"extra pass: {again.seconds:.2f}s")
    assert again.returncode == 0, log.read_text("utf-8", "replace")
    assert {p: p.stat().st_mtime_ns for p in feeds.rglob("*") if p.is_file()} == mtimes, (
        f"seed {seed}: a pass with nothing new rewrote published files")
    assert sorted(map(json.dumps, export(config, database_url))) == sorted(
        map(json.dumps, records)), f"seed {seed}: a pass with nothing new changed the store"

    print(f"killed while: {killed_in}")
    assert len(killed_in) >= KILLS[backend] // 3, f"seed {seed}: too few runs were killed"
