"""The store at scale: publishing with 1,000,000 stored entries, and the daemon's memory.

    python bench/scale_store.py                     # SQLite: 10,000 sources, 1,000,000 entries
    python bench/scale_store.py --entries 100000    # a smaller store, built in seconds
    python bench/scale_store.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/scale_store.py --skip-daemon --profile   # publish only, with a cProfile of one
    python bench/scale_store.py --clean             # remove every cached store (and --database's)

The store is built once and cached, keyed by the arguments that shape it:
SQLite in /tmp/aggregator-scale-KEY/aggregator.db, PostgreSQL in a schema
``scale_KEY`` of the given database (``--rebuild`` starts again; ``--clean``
removes them all: the SQLite one of 1,000,000 entries is about 8 GB). It holds
what ingest would have written: 10,000 sources (nl/de/en blogs), posts of
2–6 KB of HTML with their plain text, titles, categories, topics and
languages, comments (about 10 % of posts have 1–8), one appearance per entry
plus a second one for 5 % of posts (merged duplicates), the 22 dedupe keys of
every post, its topic index rows and the comment-feed state of posts with
comments. Rows go in with SQLAlchemy Core executemany, indexes built after.

Then it measures and prints:

(a) **publish**: a new post is ingested through the store (as a fetch would),
    then ``Aggregator.publish()`` runs in this process: 3 rounds, the median
    wall time, and whether exactly the files whose bytes changed were
    rewritten (mtime and content of every file under feeds/ compared). Then
    the same with the CLI ``aggregator publish`` (interpreter start, config
    with 10,000 sources and imports included).
(b) **daemon**: ``aggregator run`` with a config.toml of all the sources,
    each pointing at a small aiohttp server on 127.0.0.1 (in its own process)
    that answers 304 to the ETag the store holds and a tiny one-post feed
    otherwise. Every source is made due; when the pass is over and the daemon
    is idle, VmRSS of the daemon and of its whole process tree (parser
    workers) is sampled for a few seconds. Passes after the first change
    ``--changed`` feeds, so they parse and store something.

It prints figures; it is not a test and exits 0 whatever they are. Each
round adds a post (and each changed feed one) to the cached store.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import html
import json
import os
import pstats
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy  # noqa: E402
from perf_corpus import _BRANDS, _CATEGORIES, _FIRST, _LAST, _Writer  # noqa: E402
from sqlalchemy import func, insert, select, text, update  # noqa: E402

from aggregator.config import Config, load_config  # noqa: E402
from aggregator.dedupe import BANDS  # noqa: E402
from aggregator.dedupe_index import DedupeKeyRow  # noqa: E402
from aggregator.parser_pool import IDLE_TIMEOUT  # noqa: E402
from aggregator.pipeline import Aggregator, topic_rules_signature  # noqa: E402
from aggregator.store import Store, key_hash  # noqa: E402
from aggregator.tables import (  # noqa: E402
    AppearanceRow,
    CommentFeedRow,
    EntryRow,
    MetaRow,
    SourceRow,
)
from aggregator.topic_index import EntryTopicRow  # noqa: E402

#: Changes whenever a change here changes the store built, so cached stores are remade.
BUILD_VERSION = 3
#: Entries are dated in the three years before this moment; new ones are newer.
END = datetime(2026, 6, 1, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)
LANGUAGES = (("nl", 0.45), ("de", 0.25), ("en", 0.30))
#: (slug, title, keywords, share of posts filed under it): common and rare topics.
TOPICS = (
    ("social-media", "Social media", ("social media", "instagram", "tiktok"), 0.20),
    ("content-marketing", "Content marketing", ("content marketing", "storytelling"), 0.12),
    ("retail", "Retail", ("retail", "webshop", "winkel"), 0.08),
    ("brand-communities", "Brand communities", ("community", "merken", "marken"), 0.05),
    ("data", "Data and privacy", ("privacy", "datenschutz", "cookies"), 0.03),
    ("video", "Video", ("youtube", "video"), 0.01),
    ("podcasts", "Podcasts", ("podcast",), 0.003),
    ("open-source-marketing", "Open source marketing", ("open source", "linux"), 0.0005),
)
COMMENTED_SHARE = 0.10
DUPLICATE_SHARE = 0.05
BATCH = 20_000
HOST = "127.0.0.1"


# --------------------------------------------------------------------------- text pools


class Pools:
    """Pre-made HTML blocks (with their plain text) and titles per language.

    Stitching posts from pools keeps the build fast while every post has the
    size, markup and vocabulary of a real one.
    """

    def __init__(self, rng: random.Random, blocks: int = 3000, titles: int = 5000) -> None:
        self.blocks: dict[str, list[tuple[str, str, int]]] = {}
        self.titles: dict[str, list[str]] = {}
        self.sentences: dict[str, list[str]] = {}
        for language, _ in LANGUAGES:
            writer = _Writer(rng, language)
            pool = []
            for number in range(blocks):
                block = writer.post_html(rng.randint(500, 1200),
                                         f"https://blog{number}.example", number)
                plain = html.unescape(re.sub(r"<[^>]+>", " ", block))
                pool.append((block, " ".join(plain.split()), len(block.encode())))
            self.blocks[language] = pool
            self.titles[language] = [writer.title() for _ in range(titles)]
            self.sentences[language] = [writer.sentence() for _ in range(titles)]

    def post(self, rng: random.Random, language: str) -> tuple[str, str]:
        """HTML of 2–6 KB and its text."""
        target = rng.randint(2000, 6000)
        pool, parts, texts, size = self.blocks[language], [], [], 0
        while size < target:
            block, plain, length = pool[rng.randrange(len(pool))]
            parts.append(block)
            texts.append(plain)
            size += length
        return "".join(parts), " ".join(texts)

    def comment(self, rng: random.Random, language: str) -> tuple[str, str]:
        text_ = " ".join(rng.choices(self.sentences[language], k=rng.randint(1, 5)))
        return f"<p>{html.escape(text_, quote=False)}</p>", text_


# --------------------------------------------------------------------------- building


def cache_key(args: argparse.Namespace) -> str:
    shape = (BUILD_VERSION, args.sources, args.entries, args.seed)
    return hashlib.sha256(repr(shape).encode()).hexdigest()[:12]


def _hex(number: int, salt: int, digits: int) -> str:
    mixed = (number * 0x9E3779B97F4A7C15 + salt) & ((1 << (4 * digits)) - 1)
    return f"{mixed:0{digits}x}"


def source_rows(count: int, rng: random.Random) -> list[dict[str, Any]]:
    languages = rng.choices([code for code, _ in LANGUAGES], [w for _, w in LANGUAGES],
                            k=count)
    old = END - timedelta(hours=1)
    return [{
        "id": number, "name": f"blog-{number:05d}", "url": source_url("http://127.0.0.1:9", number),
        "moved_to": None, "redirect_candidate": None, "redirect_count": 0,
        "title": f"{rng.choice(_BRANDS)} {rng.choice(_LAST)} blog {number}",
        "site_url": f"https://blog{number}.example/", "language": languages[number - 1],
        "etag": source_etag(number, 0), "last_modified": None, "body_hash": None,
        "last_fetch_at": old, "last_success_at": old, "last_status": 304, "last_error": None,
        "error_count": 0, "failing_since": None, "gone": False, "next_check_at": None,
        "lease_owner": None, "lease_until": None, "created_at": END - SPAN,
    } for number in range(1, count + 1)]


def source_url(base: str, number: int) -> str:
    return f"{base}/feed/{number}.xml"


def source_etag(number: int, generation: int) -> str:
    return f'"v{generation}-{number}"'


class Batch:
    """The rows of every table for one slice of the entries."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.appearances: list[dict[str, Any]] = []
        self.keys: list[dict[str, Any]] = []
        self.topics: list[dict[str, Any]] = []
        self.comment_feeds: list[dict[str, Any]] = []


def generate(args: argparse.Namespace, sources: list[dict[str, Any]],
             pools: Pools, rng: random.Random) -> Iterator[Batch]:
    """Posts in publication order, each followed by its comments, BATCH entries at a time."""
    total, number, appearance_id, batch = args.entries, 0, 0, Batch()
    # Posts with comments carry 4.5 on average: about this many posts fill the entries.
    step = SPAN / int(total / (1 + COMMENTED_SHARE * 4.5))
    post_no = -1
    while number < total:
        post_no += 1
        if len(batch.entries) >= BATCH:
            yield batch
            batch = Batch()
        number += 1
        source = sources[rng.randrange(len(sources))]
        language = source["language"] if rng.random() < 0.95 else "en"
        published = END - SPAN + step * post_no + timedelta(seconds=rng.randint(0, 600))
        first_seen = published + timedelta(minutes=rng.randint(1, 90))
        title = rng.choice(pools.titles[language])
        link = f"{source['site_url']}{published:%Y/%m}/post-{number}/"
        body, plain = pools.post(rng, language)
        comments = rng.randint(1, 8) if rng.random() < COMMENTED_SHARE else 0
        comments = min(comments, total - number)
        topics = [slug for slug, _, _, share in TOPICS if rng.random() < share]
        post_id = number
        batch.entries.append(entry_row(
            number, "post", source["id"], title=title, link=link, body=body, plain=plain,
            published=published, first_seen=first_seen, language=language,
            topics=topics, categories=rng.sample(_CATEGORIES, rng.randint(1, 3)),
            author=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            summary=html.escape(plain[:240]) + " […]" if rng.random() < 0.5 else "",
            comments_feed_url=f"{link}feed/" if comments else None,
            comment_count=comments if comments else None,
        ))
        batch.topics += [{"entry_id": number, "topic": slug, "published": published}
                         for slug in topics]
        batch.keys += [{"entry_id": number, "key": key, "kind": kind}
                       for key, kind in dedupe_keys(number)]
        places = [source]
        if rng.random() < DUPLICATE_SHARE:
            places.append(sources[rng.randrange(len(sources))])
        for place in dict((p["id"], p) for p in places).values():
            appearance_id += 1
            batch.appearances.append(appearance_row(
                appearance_id, number, place["id"], "post", f"{link}#{place['id']}",
                link, published, first_seen))
        if comments:
            batch.comment_feeds.append({
                "source_id": source["id"], "url": f"{link}feed/", "post_entry_id": number,
                "etag": f'"c{number}"', "last_modified": None, "body_hash": None,
                "post_first_seen": first_seen, "declared_count": comments,
                "fetched_for_count": comments, "last_fetch_at": first_seen + timedelta(days=1),
                "last_status": 200, "last_error": None, "error_count": 0,
                "created_at": first_seen,
            })
        parent = post_id
        for _ in range(comments):
            number += 1
            said = published + timedelta(minutes=rng.randint(5, 14 * 24 * 60))
            body, plain = pools.comment(rng, language)
            batch.entries.append(entry_row(
                number, "comment", source["id"], title=f"Reactie op {title[:40]}", link=None,
                body=body, plain=plain, published=said, first_seen=said, language=language,
                topics=[], categories=[], author=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                summary="", comments_feed_url=None, comment_count=None,
                post_id=post_id, parent_id=parent,
            ))
            appearance_id += 1
            batch.appearances.append(appearance_row(
                appearance_id, number, source["id"], "comment", f"{link}#comment-{number}",
                f"{link}#comment-{number}", said, said))
            # One reply in five answers the comment before it.
            parent = number if rng.random() < 0.2 else post_id
    if batch.entries:
        yield batch


def entry_row(number: int, kind: str, source_id: int, *, title: str, link: str | None,
              body: str, plain: str, published: datetime, first_seen: datetime,
              language: str, topics: list[str], categories: list[str], author: str,
              summary: str, comments_feed_url: str | None, comment_count: int | None,
              post_id: int | None = None, parent_id: int | None = None) -> dict[str, Any]:
    return {
        "id": number, "uid": _hex(number, 7, 32), "kind": kind, "source_id": source_id,
        "parent_id": parent_id, "post_id": post_id, "in_reply_to_ref": None,
        "in_reply_to_link": None, "title": title, "link": link, "canonical_url": link,
        "content_html": body, "summary_html": summary, "author": author,
        "published": published, "updated": published, "first_seen": first_seen,
        "categories": json.dumps(categories, ensure_ascii=False), "topics": json.dumps(topics),
        "language": language, "content_hash": _hex(number, 11, 64),
        "fingerprint": _hex(number, 13, 64) if kind == "post" else None,
        "comments_feed_url": comments_feed_url, "comment_count_declared": comment_count,
        "text": plain, "pruned": False,
    }


def appearance_row(appearance_id: int, entry_id: int, source_id: int, kind: str, guid: str,
                   link: str, published: datetime, first_seen: datetime) -> dict[str, Any]:
    return {
        "id": appearance_id, "entry_id": entry_id, "source_id": source_id, "kind": kind,
        "key_hash": key_hash("guid:" + guid), "identity_key": "guid:" + guid,
        "original_id": guid, "feed_url": f"https://blog{source_id}.example/feed/",
        "link": link, "published": published, "content_hash": _hex(entry_id, 11, 64),
        "first_seen": first_seen,
    }


def dedupe_keys(number: int) -> Iterator[tuple[str, str]]:
    """Keys of the shape aggregator.dedupe files a post under (BANDS bands, lead, title)."""
    for band in range(BANDS):
        yield f"b{band:02d}{_hex(number, band, 12)}", "band"
    yield f"l{_hex(number, 101, 12)}", "lead"
    yield f"t{_hex(number, 103, 12)}", "title"


BULK_TABLES = (EntryRow, AppearanceRow, DedupeKeyRow, EntryTopicRow, CommentFeedRow)


def build(url: str, args: argparse.Namespace, key: str, config_path: Path) -> None:
    started = time.perf_counter()
    Store(url).close()  # the schema, as the aggregator makes it
    engine = sqlalchemy.create_engine(url)
    rng = random.Random(args.seed)
    pools = Pools(rng)
    sources = source_rows(args.sources, rng)
    indexes = [index for row in BULK_TABLES
               for index in row.__table__.indexes]  # type: ignore[attr-defined]
    counts = dict.fromkeys(("entries", "appearances", "dedupe keys", "topic rows"), 0)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # Built into a file of its own that is renamed when complete, so a
            # journal buys nothing here.
            for pragma in ("journal_mode=OFF", "synchronous=OFF", "foreign_keys=OFF",
                           "cache_size=-262144"):
                connection.exec_driver_sql(f"PRAGMA {pragma}")
        for index in indexes:
            index.drop(connection)
        connection.execute(insert(SourceRow), sources)
        for batch in generate(args, sources, pools, rng):
            connection.execute(insert(EntryRow), batch.entries)
            connection.execute(insert(AppearanceRow), batch.appearances)
            connection.execute(insert(DedupeKeyRow), batch.keys)
            if batch.topics:
                connection.execute(insert(EntryTopicRow), batch.topics)
            if batch.comment_feeds:
                connection.execute(insert(CommentFeedRow), batch.comment_feeds)
            connection.commit()
            counts["entries"] += len(batch.entries)
            counts["appearances"] += len(batch.appearances)
            counts["dedupe keys"] += len(batch.keys)
            counts["topic rows"] += len(batch.topics)
            print(f"\r  {counts['entries']:,} entries, {time.perf_counter() - started:.0f} s",
                  end="", flush=True)
        print()
        for index in indexes:
            index.create(connection)
        if engine.dialect.name != "sqlite":
            for table in ("source", "entry", "appearance", "comment_feed"):
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))")
        config = load_config(config_path)
        for meta_key, value in (("content_generation", "1"),
                                ("topic_rules", topic_rules_signature(config)),
                                ("scale_bench", key)):
            connection.execute(insert(MetaRow).values(key=meta_key, value=value))
        connection.commit()
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        else:
            connection.exec_driver_sql("ANALYZE")  # what autovacuum does after a load
            connection.commit()
    engine.dispose()
    print(f"  built in {time.perf_counter() - started:.0f} s: "
          + ", ".join(f"{count:,} {what}" for what, count in counts.items()), flush=True)


def ensure_store(args: argparse.Namespace, work: Path, key: str, config_path: Path) -> str:
    """The store's URL, built first unless a complete one is cached."""
    if args.database is None:
        database = work / "aggregator.db"
        url = f"sqlite:///{database}"
        if database.exists() and not args.rebuild:
            return url
        partial = work / "building.db"
        for leftover in work.glob("building.db*"):
            leftover.unlink()
        print(f"building the store in {database} (once; cached)", flush=True)
        build(f"sqlite:///{partial}", args, key, config_path)
        partial.rename(database)
        return url
    schema = f"scale_{key}"
    engine = sqlalchemy.create_engine(args.database)
    with engine.begin() as connection:
        present = connection.execute(text(
            "SELECT 1 FROM information_schema.tables "
            "WHERE table_schema = :s AND table_name = 'meta'"
        ), {"s": schema}).first()
        complete = present and connection.execute(text(
            f'SELECT value FROM "{schema}".meta WHERE key = \'scale_bench\'')).scalar() == key
        if complete and not args.rebuild:
            engine.dispose()
            return _with_schema(args.database, schema)
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = _with_schema(args.database, schema)
    print(f"building the store in schema {schema} (once; cached)", flush=True)
    build(url, args, key, config_path)
    return url


def _with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def write_config(path: Path, url: str, sources: int, feeds_base: str, port: int) -> None:
    # base_url stays the same whatever port the daemon listens on: every archive
    # document names it, and a new one would have them all written again.
    lines = [
        "[aggregator]", 'title = "Scale benchmark"', f'base_url = "http://{HOST}:8080/"',
        f"database = {json.dumps(url)}", 'feeds_dir = "feeds"', "",
        "[server]", f'host = "{HOST}"', f"port = {port}", "",
        "[fetch]", "concurrency = 20", "per_host = 20", "tick = 2", "",
    ]
    for slug, title, keywords, _ in TOPICS:
        lines += ["[[topics]]", f'slug = "{slug}"', f'title = "{title}"',
                  "keywords = [" + ", ".join(json.dumps(k) for k in keywords) + "]", ""]
    for number in range(1, sources + 1):
        lines += ["[[sources]]", f'name = "blog-{number:05d}"',
                  f'url = "{source_url(feeds_base, number)}"', "allow_private = true", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


# --------------------------------------------------------------------------- (a) publish


def add_post(store: Store, config: Config, number: int) -> None:
    """Ingest one new post at a source, as a fetch pass would (then bump the generation)."""
    from aggregator.normalize import normalize_entry
    from aggregator.topics import TopicMatcher
    from aggregator.types import FetchResult, ParsedEntry, ParsedFeed, Validators

    name = config.sources[number % len(config.sources)].name
    [state] = store.claim_due(now=datetime.now(UTC), owner="scale-bench",
                              lease=timedelta(minutes=5), names=[name], force=True)
    now = datetime.now(UTC)
    # A new article (not a copy of the last round's, which dedupe would merge).
    writer = _Writer(random.Random(now.timestamp()), "nl")
    entry = ParsedEntry(guid=f"scale-bench-{now.timestamp()}", link=None,
                        title=writer.title(), content_html=writer.post_html(3000, "", number),
                        summary_html="", author="Bench", published=now, updated=None)
    # The feed's title as stored, so that sources.opml does not change.
    title = next(info.title for info in store.sources_info() if info.name == name)
    feed = ParsedFeed(format="rss20", title=title, link=None, language=None, entries=(entry,))
    normalized = normalize_entry(entry, kind="post", feed=feed, feed_url=state.fetch_url,
                                 source_language="nl", first_seen=now)
    matcher = TopicMatcher(config.topics)
    store.ingest_source_feed(
        state, now=now,
        fetch=FetchResult(url=state.fetch_url, final_url=state.fetch_url, status=200,
                          body=b"", headers={}, validators=Validators()),
        feed=feed, entries=[normalized],
        topics_for=lambda e: matcher.classify(
            title=e.title, text=e.text, categories=e.categories, source_name=name,
            source_topics=(), language=e.language),
        follow_comments=False, site_comments_url=None,
        next_check_at=now + timedelta(hours=1), body_hash=f"bench-{now.timestamp()}",
    )
    store.release([state.id], "scale-bench")  # a fetch pass hands its lease back too
    store.bump_content_generation()


def snapshot(feeds: Path) -> dict[str, tuple[int, str]]:
    return {str(path.relative_to(feeds)): (path.stat().st_mtime_ns,
                                          hashlib.sha1(path.read_bytes()).hexdigest())
            for path in sorted(feeds.rglob("*")) if path.is_file() and path.name[0] != "."}


def compare(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]
            ) -> tuple[list[str], bool]:
    """Files rewritten, and whether exactly the files whose bytes changed were rewritten."""
    names = sorted(set(before) | set(after))
    rewritten = [n for n in names if before.get(n, (0, ""))[0] != after.get(n, (0, ""))[0]]
    differing = [n for n in names if before.get(n, (0, ""))[1] != after.get(n, (0, ""))[1]]
    return rewritten, rewritten == differing


def measure_publish(url: str, config_path: Path, work: Path, rounds: int,
                    profile: bool) -> None:
    config = load_config(config_path)
    store = Store(url)
    aggregator = Aggregator(config, store=store)
    feeds = config.aggregator.feeds_dir
    started = time.perf_counter()
    aggregator.publish()
    print(f"  first publish into {feeds}: {time.perf_counter() - started:.2f} s "
          f"({len(snapshot(feeds))} files)")
    if aggregator.archives_pending:
        # The RFC 5005 archive documents of every stored entry, written once:
        # what the daemon does over its first ticks, `aggregator publish` at once.
        started = time.perf_counter()
        while aggregator.archives_pending:
            aggregator.publish(all_archives=True)
        archives = sum(1 for _ in (feeds / "archive").rglob("*.atom"))
        print(f"  then the archive documents: {archives} in "
              f"{time.perf_counter() - started:.1f} s")
    base = int(time.time()) % 100_000 * 10
    walls = []
    for round_no in range(rounds):
        add_post(store, config, base + round_no)
        before = snapshot(feeds)
        started = time.perf_counter()
        aggregator.publish()
        walls.append(time.perf_counter() - started)
        rewritten, exact = compare(before, snapshot(feeds))
        print(f"  in process, round {round_no + 1}: {walls[-1]:.3f} s; rewrote "
              f"{len(rewritten)} of {len(before)} files, exactly those that changed: "
              f"{'yes' if exact else 'NO'} ({', '.join(rewritten)})")
    print(f"  Aggregator.publish() after one new post, median of {rounds}: "
          f"{statistics.median(walls):.3f} s")
    cli = []
    for round_no in range(rounds):
        add_post(store, config, base + rounds + round_no)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "aggregator", "--config", str(config_path),
                        "publish"], check=True, cwd=work, stdout=subprocess.DEVNULL)
        cli.append(time.perf_counter() - started)
    print(f"  `aggregator publish` (a new process) after one new post, median of {rounds}: "
          f"{statistics.median(cli):.3f} s ({', '.join(f'{w:.2f}' for w in cli)})")
    if profile:
        add_post(store, config, base + 2 * rounds)
        profiler = cProfile.Profile()
        profiler.enable()
        aggregator.publish()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
    aggregator.close()


# --------------------------------------------------------------------------- (b) daemon


def serve_feeds(port: int) -> None:
    """The feeds of every source: 304 to the current ETag, else a tiny one-post feed."""
    from aiohttp import web

    generations: dict[int, int] = {}
    stats: dict[int, int] = {}
    languages = ("nl", "de", "en")

    async def feed(request: web.Request) -> web.Response:
        number = int(request.match_info["number"])
        generation = generations.get(number, 0)
        etag = source_etag(number, generation)
        status = 304 if request.headers.get("If-None-Match") == etag else 200
        stats[status] = stats.get(status, 0) + 1
        if status == 304:
            return web.Response(status=304, headers={"ETag": etag})
        site = f"http://{HOST}:{port}/blog/{number}/"
        # An article of its own (copies of one text would all merge into one post).
        writer = _Writer(random.Random(number * 1000 + generation), languages[number % 3])
        body = (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>Blog {number}</title><link>{site}</link>"
            f"<language>{languages[number % 3]}</language>"
            f"<item><title>{html.escape(writer.title())}</title>"
            f"<link>{site}p/{generation}/</link><guid>{site}p/{generation}/</guid>"
            f"<pubDate>{format_datetime(datetime.now(UTC), usegmt=True)}</pubDate>"
            f"<description>{html.escape(writer.post_html(2500, site, number))}</description>"
            "</item></channel></rss>"
        )
        return web.Response(body=body.encode(), content_type="application/rss+xml",
                            headers={"ETag": etag})

    async def bump(request: web.Request) -> web.Response:
        count = int(request.query.get("count", "0"))
        total = int(request.query["sources"])
        chosen = random.Random(request.query.get("seed", "1")).sample(range(1, total + 1),
                                                                     count)
        for number in chosen:
            generations[number] = generations.get(number, 0) + 1
        return web.json_response({"bumped": count})

    async def report(request: web.Request) -> web.Response:
        answer = dict(stats)
        if request.query.get("reset"):
            stats.clear()
        return web.json_response(answer)

    app = web.Application()
    app.router.add_get("/feed/{number:\\d+}.xml", feed)
    app.router.add_get("/__bump", bump)
    app.router.add_get("/__stats", report)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, port)
        await site.start()
        print("READY", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def get_json(url: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def tree(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as f:
                    queue += [int(child) for child in f.read().split()]
    return found


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class PeakSampler(threading.Thread):
    """The largest RSS of the daemon, and of its process tree, since the last reset."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.main = self.tree = 0.0
        self._stop = threading.Event()

    def reset(self) -> None:
        self.main = self.tree = 0.0

    def run(self) -> None:
        while not self._stop.wait(0.2):
            self.main = max(self.main, rss_mb(self.pid))
            self.tree = max(self.tree, sum(rss_mb(pid) for pid in tree(self.pid)))

    def stop(self) -> None:
        self._stop.set()


def wait_for_pass(engine: sqlalchemy.Engine, marker: datetime, sources: int,
                  daemon: subprocess.Popen[bytes], limit: float) -> float:
    """Seconds until every source was fetched since ``marker`` and the daemon went idle."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if daemon.poll() is not None:
            raise SystemExit(f"the daemon exited with status {daemon.returncode}")
        with engine.connect() as connection:
            done = connection.execute(select(func.count()).select_from(SourceRow).where(
                SourceRow.last_fetch_at >= marker,  # type: ignore[operator]
                SourceRow.lease_owner == None)).scalar_one()  # noqa: E711
        if done >= sources:
            break
        time.sleep(1)
    fetched = time.monotonic() - started
    # The tick publishes after fetching: idle is when the tree stops using CPU.
    previous = cpu_seconds(tree(daemon.pid))
    while time.monotonic() - started < limit:
        time.sleep(1)
        current = cpu_seconds(tree(daemon.pid))
        if current - previous < 0.03:
            break
        previous = current
    return fetched


def measure_daemon(url: str, config_path: Path, work: Path, args: argparse.Namespace) -> None:
    feed_port, http_port = free_port(), free_port()
    base = f"http://{HOST}:{feed_port}"
    server = subprocess.Popen([sys.executable, __file__, "--serve-feeds", str(feed_port)],
                              stdout=subprocess.PIPE)
    assert server.stdout is not None
    if server.stdout.readline().strip() != b"READY":
        raise SystemExit("the feed server did not start")
    write_config(config_path, url, args.sources, base, http_port)
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        # Every source at this run's server, with the validators of what it serves now.
        connection.execute(update(SourceRow).values(
            url=base + "/feed/" + sqlalchemy.cast(SourceRow.id, sqlalchemy.Text) + ".xml",
            etag='"v0-' + sqlalchemy.cast(SourceRow.id, sqlalchemy.Text) + '"',
            moved_to=None, body_hash=None, last_modified=None, lease_owner=None,
            lease_until=None, error_count=0, gone=False, next_check_at=None))
    log = (work / "daemon.log").open("wb")
    marker = datetime.now(UTC)
    started = time.perf_counter()
    daemon = subprocess.Popen([sys.executable, "-m", "aggregator", "--config",
                               str(config_path), "run"], cwd=work, stdout=log, stderr=log)
    rows = []
    peak = PeakSampler(daemon.pid)
    peak.start()
    try:
        for pass_no in range(1, args.passes + 1):
            if pass_no > 1:
                get_json(f"{base}/__bump?count={args.changed}&sources={args.sources}"
                         f"&seed={time.time()}")
                marker = datetime.now(UTC)
                with engine.begin() as connection:
                    connection.execute(update(SourceRow).values(next_check_at=None))
                started = time.perf_counter()
            peak.reset()
            fetched = wait_for_pass(engine, marker, args.sources, daemon, args.pass_limit)
            wall = time.perf_counter() - started
            time.sleep(args.settle)
            statuses = get_json(f"{base}/__stats?reset=1")
            main_rss, tree_rss, workers = [], [], 0
            for _ in range(args.idle_samples):
                pids = tree(daemon.pid)
                main_rss.append(rss_mb(daemon.pid))
                tree_rss.append(sum(rss_mb(pid) for pid in pids))
                workers = max(workers, len(pids) - 1)
                time.sleep(0.5)
            rows.append((pass_no, fetched, wall, statuses, max(main_rss), max(tree_rss),
                         workers))
            print(f"  pass {pass_no}: every source fetched after {fetched:.1f} s, idle after "
                  f"{wall:.1f} s; responses {statuses}; peak during the pass: daemon "
                  f"{peak.main:.0f} MB, tree {peak.tree:.0f} MB; between passes: daemon "
                  f"{max(main_rss):.0f} MB, tree {max(tree_rss):.0f} MB "
                  f"({workers} child process(es))", flush=True)
    finally:
        peak.stop()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        server.send_signal(signal.SIGTERM)
        server.wait(10)
        log.close()
        engine.dispose()
    print(f"  daemon RSS between passes, max over passes: main "
          f"{max(r[4] for r in rows):.0f} MB, tree {max(r[5] for r in rows):.0f} MB "
          f"(target 150 MB); log in {work / 'daemon.log'}")


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", help="a PostgreSQL URL (default: SQLite under /tmp)")
    parser.add_argument("--rebuild", action="store_true", help="build the store again")
    parser.add_argument("--clean", action="store_true",
                        help="remove every cached store (and with --database its scale_* "
                             "schemas), then exit")
    parser.add_argument("--rounds", type=int, default=3, help="publishes measured (median)")
    parser.add_argument("--profile", action="store_true", help="cProfile one more publish")
    parser.add_argument("--passes", type=int, default=3, help="daemon passes measured")
    parser.add_argument("--changed", type=int, default=100,
                        help="feeds with a new post in each daemon pass after the first")
    parser.add_argument("--idle-samples", type=int, default=10,
                        help="RSS samples (0.5 s apart) after each pass")
    parser.add_argument("--settle", type=float, default=IDLE_TIMEOUT + 3,
                        help="seconds between the end of a pass and the RSS samples "
                             "(idle parser workers stop after %(default)s - 3 s)")
    parser.add_argument("--pass-limit", type=float, default=900.0,
                        help="seconds a daemon pass may take")
    parser.add_argument("--skip-publish", action="store_true")
    parser.add_argument("--skip-daemon", action="store_true")
    parser.add_argument("--serve-feeds", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_feeds:
        serve_feeds(args.serve_feeds)
        return 0
    if args.clean:
        clean(args.database)
        return 0
    key = cache_key(args)
    work = Path(f"/tmp/aggregator-scale-{key}")
    if args.database is not None:
        work = work.with_name(f"{work.name}-pg")
    if args.rebuild and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    config_path = work / "config.toml"
    # The store's URL goes into the config after it is known; the build needs
    # only the topic rules from it.
    write_config(config_path, "sqlite:///unused.db", args.sources, "http://127.0.0.1:9", 8080)
    print(f"{args.sources:,} sources, {args.entries:,} entries; work directory {work}")
    url = ensure_store(args, work, key, config_path)
    write_config(config_path, url, args.sources, "http://127.0.0.1:9", free_port())
    if not args.skip_publish:
        print("(a) publish")
        measure_publish(url, config_path, work, args.rounds, args.profile)
    if not args.skip_daemon:
        print("(b) daemon")
        measure_daemon(url, config_path, work, args)
    size = sum(path.stat().st_size for path in work.rglob("*") if path.is_file())
    print(f"the store stays cached in {work if args.database is None else url} "
          f"({size / 2**30:.1f} GB on disk here); `python bench/scale_store.py --clean"
          f"{' --database URL' if args.database else ''}` removes it")
    return 0


def clean(database: str | None) -> None:
    """Remove every cached store: the /tmp directories, and scale_* schemas of *database*."""
    for work in sorted(Path("/tmp").glob("aggregator-scale-*")):
        shutil.rmtree(work, ignore_errors=True)
        print(f"removed {work}")
    if database is None:
        return
    engine = sqlalchemy.create_engine(database)
    with engine.begin() as connection:
        schemas = connection.execute(text(
            "SELECT schema_name FROM information_schema.schemata "
            "WHERE schema_name LIKE 'scale\\_%'")).scalars().all()
        for schema in schemas:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            print(f"dropped schema {schema}")
    engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
