"""Bytes of one feed document → normalized entries: the work a parser worker does.

Kept apart from the pipeline so that a worker process imports only what
reading needs (parsing, sanitizing, language, URLs), not the store, the HTTP
client or the web server: every worker is a whole interpreter, and its
imports are most of its memory.
"""

from __future__ import annotations

from datetime import datetime

from aggregator.normalize import normalize_entry
from aggregator.parse import parse_feed
from aggregator.types import EntryKind, NormalizedEntry, ParsedFeed

__all__ = ["parse_and_normalize"]


def parse_and_normalize(
    body: bytes,
    headers: dict[str, str],
    url: str,
    kind: EntryKind,
    source_language: str | None,
    first_seen: datetime,
) -> tuple[ParsedFeed, list[NormalizedEntry]]:
    """Bytes → normalized entries. Pure, so it can run in a worker process."""
    feed = parse_feed(body, headers, url)
    entries = [
        normalize_entry(
            entry, kind=kind, feed=feed, feed_url=url,
            source_language=source_language, first_seen=first_seen,
        )
        for entry in feed.entries
    ]
    return feed, entries
