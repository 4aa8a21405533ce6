"""What one dedupe decision costs with 10,000 and 1,000,000 stored posts.

One decision is what the store does for a post it has not seen before:
reduce it (aggregator.dedupe.article_of: words, shingles, MinHash), look up
its candidates (aggregator.dedupe_index.candidates) and compare it with each
(same_article). The database holds N posts filed under their dedupe keys:
a few hundred real articles (made of seed-page vocabulary) indexed through
index_post, and filler posts with keys of the same shape, bulk-inserted.
Half the queries are light edits of a real article (they must find it),
half are new articles (they must find nothing).

    python bench/dedupe_cost.py                       # SQLite, 10k and 1M posts
    python bench/dedupe_cost.py --posts 10000 --database postgresql+psycopg://…

The cost should be flat in N and under 5 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import text
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aggregator import dedupe_index  # noqa: E402  (registers its tables)
from aggregator.dedupe import BANDS, article_of  # noqa: E402
from aggregator.store import Store  # noqa: E402
from aggregator.tables import EntryRow, SourceRow  # noqa: E402

SEEDS = ROOT.parent / "shared" / "seeds"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
#: Real articles in the store, each findable by its light edit.
REAL_POSTS = 300
QUERIES = 400
BATCH = 50_000
#: Dropped during the bulk load and built once after it (much faster).
KEY_INDEX = "CREATE UNIQUE INDEX uq_dedupe_key_key_entry ON dedupe_key (key, entry_id)"


def vocabulary() -> list[str]:
    words: list[str] = []
    for path in sorted(SEEDS.glob("0*.txt")):
        words += re.findall(r"[^\W\d_]+", path.read_text(encoding="utf-8"))
    return words


def article(rng: random.Random, words: list[str], length: int) -> list[str]:
    """Sentences of seed words: reads like the blogs, and no two are alike."""
    sentences, count = [], 0
    while count < length:
        size = rng.randint(8, 25)
        sentences.append(" ".join(rng.choice(words) for _ in range(size)).capitalize() + ".")
        count += size
    return sentences


def post(title: str, sentences: list[str], link: str) -> SimpleNamespace:
    # What dedupe reads of a NormalizedEntry (title, text, URL key, fingerprint).
    return SimpleNamespace(title=title, text=f"{title} {' '.join(sentences)}",
                           canonical_url=link, fingerprint=None)


def filler_rows(start: int, count: int) -> Iterator[tuple[object, ...]]:
    stamp = NOW.isoformat(sep=" ").replace("+00:00", "")
    for number in range(start, start + count):
        yield (number, f"{number:032x}", "post", 1, f"Filler {number}", f"https://f.example/{number}",
               f"https://f.example/{number}", "", "", stamp, stamp, stamp, "[]", "[]", "nl",
               "", None, "", False)


def filler_keys(start: int, count: int) -> Iterator[tuple[int, str, str]]:
    # Keys of the same shape and spread as real ones, none shared with them.
    for number in range(start, start + count):
        mixed = (number * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFF
        for band in range(BANDS):
            yield number, f"b{band:02d}{mixed ^ band:012x}", "band"
        yield number, f"l{mixed:012x}", "lead"
        yield number, f"t{mixed ^ 0xABCDEF:012x}", "title"


ENTRY_COLUMNS = (
    "id, uid, kind, source_id, title, link, canonical_url, content_html, summary_html, "
    "published, updated, first_seen, categories, topics, language, content_hash, fingerprint, "
    "text, pruned"
)


def bulk_fill(store: Store, count: int) -> None:
    """Insert *count* filler posts and their keys, indexes built afterwards."""
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if store.is_sqlite:
            cursor.execute("PRAGMA foreign_keys=OFF")
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("DROP INDEX uq_dedupe_key_key_entry")
            marks = ", ".join("?" * 19)
            for start in range(1, count + 1, BATCH):
                size = min(BATCH, count + 1 - start)
                cursor.executemany(f"INSERT INTO entry ({ENTRY_COLUMNS}) VALUES ({marks})",
                                   filler_rows(start, size))
                cursor.executemany("INSERT INTO dedupe_key (entry_id, key, kind) VALUES (?, ?, ?)",
                                   filler_keys(start, size))
            raw.commit()
            cursor.execute(KEY_INDEX)
            cursor.execute("ANALYZE")
        else:
            cursor.execute("DROP INDEX uq_dedupe_key_key_entry")
            with cursor.copy(f"COPY entry ({ENTRY_COLUMNS}) FROM STDIN") as copy:
                for row in filler_rows(1, count):
                    copy.write_row(row)
            with cursor.copy("COPY dedupe_key (entry_id, key, kind) FROM STDIN") as copy:
                for row in filler_keys(1, count):
                    copy.write_row(row)
            cursor.execute(KEY_INDEX)
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('entry', 'id'), {count})")
            raw.commit()
            cursor.execute("ANALYZE")
            raw.commit()
        raw.commit()
    finally:
        raw.close()


def build(url: str, count: int, rng: random.Random, words: list[str]) -> tuple[Store, list]:
    store = Store(url)
    with Session(store.engine) as session:
        session.add(SourceRow(id=1, name="filler", url="https://f.example/feed", created_at=NOW))
        session.commit()
    started = time.perf_counter()
    bulk_fill(store, count - REAL_POSTS)
    reals = []
    with Session(store.engine) as session:
        for number in range(REAL_POSTS):
            title = " ".join(rng.choice(words) for _ in range(6))
            sentences = article(rng, words, rng.randint(150, 800))
            link = f"https://real.example/{number}"
            row = EntryRow(uid=f"ff{number:030x}", kind="post", source_id=1, title=title,
                           link=link, canonical_url=link, content_html="", published=NOW,
                           updated=NOW, first_seen=NOW, content_hash="",
                           text=f"{title} {' '.join(sentences)}")
            session.add(row)
            session.flush()
            dedupe_index.index_post(session, row.id or 0, post(title, sentences, link))
            reals.append((row.id, title, sentences))
        session.commit()
        total = session.execute(text("SELECT count(*) FROM entry")).scalar()
        keys = session.execute(text("SELECT count(*) FROM dedupe_key")).scalar()
    print(f"  built {total:,} posts, {keys:,} keys in {time.perf_counter() - started:.0f} s")
    return store, reals


def measure(store: Store, reals: list, rng: random.Random, words: list[str]) -> None:
    queries = []
    for number in range(QUERIES):
        if number % 2 == 0:
            entry_id, title, sentences = rng.choice(reals)
            edited = list(sentences)
            edited[rng.randrange(len(edited))] = article(rng, words, 15)[0]
            queries.append((entry_id, post(title, edited, f"https://copy.example/{number}")))
        else:
            title = " ".join(rng.choice(words) for _ in range(6))
            queries.append((None, post(title, article(rng, words, rng.randint(150, 800)),
                                       f"https://new.example/{number}")))
    timings, cpu, right = [], [], 0
    with Session(store.engine) as session:
        for _expected, query in queries[:20]:  # warm the caches
            dedupe_index.find_duplicate(session, query)
        for expected, query in queries:
            started, started_cpu = time.perf_counter(), time.process_time()
            match = dedupe_index.find_duplicate(session, article_of(query))
            timings.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            right += (match.entry.id if match else None) == expected
    # Wall time is what a fetch waits; our own CPU time leaves out the
    # other processes of a busy machine (it misses a database server's share).
    for name, values in (("wall", timings), ("cpu", cpu)):
        values.sort()
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(f"  one decision, {name}: median {statistics.median(values):.2f} ms, "
              f"p99 {p99:.2f} ms, max {values[-1]:.2f} ms")
    print(f"  right answers {right}/{len(queries)}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--database", help="a PostgreSQL URL (an empty database); "
                        "default: a temporary SQLite file")
    arguments = parser.parse_args()
    words = vocabulary()
    for count in arguments.posts:
        rng = random.Random(count)
        with tempfile.TemporaryDirectory() as directory:
            url = arguments.database or f"sqlite:///{directory}/bench.db"
            print(f"{count:,} stored posts ({url.split(':')[0]}):")
            store, reals = build(url, count, rng, words)
            try:
                measure(store, reals, rng, words)
            finally:
                if arguments.database:
                    with store.engine.begin() as connection:
                        connection.execute(text(
                            "DROP TABLE dedupe_split, dedupe_key, dedupe_key_recent, "
                            "entry_topic, comment_feed, appearance, entry, source, meta "
                            "CASCADE"))
                store.close()


if __name__ == "__main__":
    main()
