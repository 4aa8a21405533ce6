"""Bytes of one feed document → normalized entries: the work a parser worker does.

Kept apart from the pipeline so that a worker process imports only what
reading needs (parsing, sanitizing, language, URLs, topic and dedupe keys: all
pure, per entry, and so done here on a worker's core), not the store, the HTTP
client or the web server: every worker is a whole interpreter, and its
imports are most of its memory.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from aggregator import folding
from aggregator.config import TopicConfig
from aggregator.dedupe import index_keys
from aggregator.normalize import normalize_entries
from aggregator.parse import parse_feed
from aggregator.topics import TopicMatcher
from aggregator.types import EntryKind, NormalizedEntry, ParsedFeed, TopicFiling

__all__ = ["TopicFiling", "parse_and_normalize"]


#: Compiled rules by rule set: a worker serves many sources under one config.
_matchers: dict[tuple[TopicConfig, ...], TopicMatcher] = {}


def _matcher(rules: tuple[TopicConfig, ...]) -> TopicMatcher:
    matcher = _matchers.get(rules)
    if matcher is None:
        if len(_matchers) >= 4:  # configs reloaded since: the old rules are dead
            _matchers.clear()
        matcher = _matchers[rules] = TopicMatcher(rules)
    return matcher


def parse_and_normalize(
    body: bytes,
    headers: dict[str, str],
    url: str,
    kind: EntryKind,
    source_language: str | None,
    first_seen: datetime,
    filing: TopicFiling | None = None,
) -> tuple[ParsedFeed, list[NormalizedEntry]]:
    """Bytes → normalized entries. Pure, so it can run in a worker process.

    With ``filing``, posts also come with their topics. The feed comes back
    without its parsed entries: the normalized ones stand for them, and
    sending both doubled what a worker pickles and the pipeline unpickles.
    """
    feed = parse_feed(body, headers, url)
    entries = []
    for entry in normalize_entries(feed.entries, kind=kind, feed=feed, feed_url=url,
                                   source_language=source_language, first_seen=first_seen):
        if kind == "post":
            # Pure and the costliest step of dedupe: done here, on the
            # worker's core, rather than in the store's one writer.
            topics = None if filing is None else _matcher(filing.rules).classify(
                title=entry.title, text=entry.text, categories=entry.categories,
                source_name=filing.source_name, source_topics=filing.source_topics,
                language=entry.language)
            entry = replace(entry, dedupe_keys=tuple(index_keys(entry)),
                            topics=topics)
        entries.append(entry)
    folding.forget()  # nothing of one document is folded for the next
    return replace(feed, entries=()), entries
