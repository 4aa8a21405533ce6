"""What the parser worker adds to an entry must equal what the store would compute itself."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.config import TopicConfig
from aggregator.dedupe import article_of
from aggregator.parser_pool import ParserPool
from aggregator.reading import TopicFiling, parse_and_normalize
from aggregator.topics import TopicMatcher

SEEDS = Path(__file__).parent / "fixtures" / "seedblogs"
FEEDS = [SEEDS / "marketingfacts" / "feed.xml", SEEDS / "upstream" / "feed.xml",
         SEEDS / "videopodcast" / "atom.xml"]
RULES = (
    TopicConfig(slug="social", title="Social", keywords=("social media", "LinkedIn")),
    TopicConfig(slug="video", title="Video", keywords=("video", "podcast"), exclude=("webinar",)),
    TopicConfig(slug="everything-here", title="All of one blog", sources=("blog",)),
    TopicConfig(slug="dutch", title="Dutch", keywords=("marketing",), languages=("nl",)),
)
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _read(path: Path, filing: TopicFiling | None):
    body = path.read_bytes().replace(b"{{BASE}}", b"http://127.0.0.1:8000")
    return parse_and_normalize(body, {"content-type": "application/xml"},
                               "http://127.0.0.1:8000/feed", "post", None, NOW, filing)


@pytest.mark.parametrize("path", FEEDS, ids=lambda p: p.parent.name)
def test_worker_topics_and_dedupe_keys_equal_the_stores_own(path: Path) -> None:
    matcher = TopicMatcher(RULES)
    _, entries = _read(path, TopicFiling(RULES, "blog", ("video",)))
    assert entries
    filed_somewhere = False
    for entry in entries:
        assert entry.topics == matcher.classify(
            title=entry.title, text=entry.text, categories=entry.categories,
            source_name="blog", source_topics=("video",), language=entry.language)
        # [[topics]] sources and the source's own topics = […] apply too.
        assert "everything-here" in entry.topics and "video" in entry.topics
        filed_somewhere |= len(entry.topics) > 2
        # Recomputed from the entry alone (as the store does without them).
        assert entry.dedupe_keys == tuple(article_of(replace(entry, dedupe_keys=None))
                                          .index_keys())
    # A keyword rule matched somewhere (the video blog matches none of them).
    assert filed_somewhere or path.parent.name == "videopodcast"


def test_the_feed_comes_back_without_its_parsed_entries() -> None:
    # The pipeline uses the feed's own fields only; the parsed entries would
    # double what a worker sends back (raw and sanitized HTML of every entry).
    feed, entries = _read(FEEDS[0], None)
    assert entries and feed.entries == ()
    assert feed.title and feed.link and feed.format.startswith("rss")


def test_without_rules_posts_are_left_for_the_store_to_file() -> None:
    _, entries = _read(FEEDS[0], None)
    assert entries and all(entry.topics is None for entry in entries)
    assert all(entry.dedupe_keys for entry in entries)


def test_the_filing_crosses_into_a_worker_process() -> None:
    async def go() -> list:
        pool = ParserPool(1)
        try:
            body = FEEDS[1].read_bytes().replace(b"{{BASE}}", b"http://127.0.0.1:8000")
            _, entries = await pool.run(
                parse_and_normalize, body, {}, "http://127.0.0.1:8000/f", "post", None, NOW,
                TopicFiling(RULES, "blog", ()))
            return entries
        finally:
            await pool.aclose()

    entries = asyncio.run(go())
    assert entries and all(entry.topics and "everything-here" in entry.topics
                           for entry in entries)
