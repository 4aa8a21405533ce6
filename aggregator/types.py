"""The project's own types: what crosses a stage boundary.

Only these frozen dataclasses travel between stages (fetch → parse →
normalize → dedupe → store → classify → publish). feedparser dicts, httpx
responses and ORM rows stay inside their adapter module.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from aggregator.config import TopicConfig

EntryKind = Literal["post", "comment"]


# --------------------------------------------------------------------------- fetch


@dataclass(frozen=True, slots=True)
class Validators:
    """HTTP cache validators, stored exactly as the server sent them."""

    #: The ETag header value, verbatim (quotes and W/ included), or None.
    etag: str | None = None
    #: The Last-Modified header value, verbatim, or None. Never made up by us.
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one conditional GET of one feed URL produced."""

    #: The URL that was asked for.
    url: str
    #: The URL the body finally came from, after redirects.
    final_url: str
    #: The HTTP status of the last hop (200, 304, 404, 410 …).
    status: int
    #: The decoded body (empty for 304 and errors), at most the configured cap.
    body: bytes
    #: Response headers of the last hop, names lower-cased.
    headers: dict[str, str]
    #: Validators to store for the next conditional request.
    validators: Validators
    #: A permanent redirect (301/308) seen on the first hop: where it points.
    permanent_redirect: str | None = None
    #: Seconds the server asked us to wait (Retry-After, max-age, Expires), if any.
    retry_after: float | None = None
    #: Seconds the response says it stays fresh (Cache-Control max-age / Expires).
    fresh_for: float | None = None


# --------------------------------------------------------------------------- parse


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One item of a feed, as the feed states it (not yet sanitized)."""

    #: The GUID / Atom id / JSON Feed id as the feed states it, or None.
    guid: str | None
    #: The entry's link (alternate), absolute, or None.
    link: str | None
    #: The title as given (may contain markup or entities; normalize cleans it).
    title: str
    #: The full content as HTML (unsanitized), or "".
    content_html: str
    #: The summary/description as HTML (unsanitized), or "".
    summary_html: str
    #: The author's name, or None.
    author: str | None
    #: Publication date in UTC (aware), or None when the feed gives none.
    published: datetime | None
    #: Last-update date in UTC (aware), or None.
    updated: datetime | None
    #: Category / tag terms as given.
    categories: tuple[str, ...] = ()
    #: Language stated for this entry (xml:lang / dc:language), a hint only.
    language: str | None = None
    #: The URL of this entry's own comment feed (wfw:commentRss, Atom
    #: rel="replies" with a feed type), or None.
    comments_feed_url: str | None = None
    #: The number of comments the feed declares (slash:comments, thr:count).
    comment_count: int | None = None
    #: For a comment: the id (as its feed states it) of what it answers
    #: (thr:in-reply-to ref), which is a post or another comment.
    in_reply_to: str | None = None
    #: For a comment: the link of what it answers (thr:in-reply-to href), if any.
    in_reply_to_link: str | None = None
    #: The base URI the relative links inside content_html resolve against:
    #: the xml:base in scope where the content stood, else the document's
    #: URI (RFC 4287 section 2, XML Base). None when the format has no such
    #: notion (JSON Feed); normalize then resolves against the entry's link.
    content_base: str | None = None
    #: The same for summary_html.
    summary_base: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A whole feed document, parsed."""

    #: "rss20", "rss10", "rss09x", "atom10", "atom03", "json10", "json11" …
    format: str
    #: The feed's title (plain text).
    title: str
    #: The feed's home page link, or None.
    link: str | None
    #: The feed's declared language (a hint), or None.
    language: str | None
    #: The entries, in document order.
    entries: tuple[ParsedEntry, ...]
    #: RSS <ttl> in minutes, if stated.
    ttl_minutes: int | None = None
    #: The site-wide comment feed the document advertises, if any.
    comments_feed_url: str | None = None
    #: A note about a recoverable problem (feedparser's bozo), or None.
    warning: str | None = None


# --------------------------------------------------------------------------- normalize


@dataclass(frozen=True, slots=True)
class NormalizedEntry:
    """An entry made safe and uniform: what the store keeps."""

    kind: EntryKind
    #: Identity within its source: "guid:<guid>", "link:<url>" or "hash:<sha>".
    identity_key: str
    #: The GUID / Atom id as the feed stated it (control characters removed).
    original_id: str | None
    #: The entry's link (http/https only), or None.
    link: str | None
    #: The canonical form of the link for cross-source matching, or None.
    canonical_url: str | None
    #: Plain text: no markup at all.
    title: str
    #: Sanitized HTML (allowlist).
    content_html: str
    #: Sanitized HTML (allowlist), may be "".
    summary_html: str
    #: Plain text author name, or None.
    author: str | None
    #: UTC, never in the future of first_seen; first_seen when the feed has none.
    published: datetime
    #: UTC, or None.
    updated: datetime | None
    categories: tuple[str, ...]
    #: Detected language code ("nl", "de", "en" …), or None when undecidable.
    language: str | None
    #: Hash of what a reader sees (title + content); a change means "updated".
    content_hash: str
    #: Hash of the normalized body text for cross-source duplicate detection;
    #: None when the text is too short to be a safe match.
    fingerprint: str | None
    #: Plain text of title + content, for topic matching.
    text: str
    comments_feed_url: str | None = None
    comment_count: int | None = None
    in_reply_to: str | None = None
    in_reply_to_link: str | None = None
    #: False when the feed gave no usable date and ``published`` is the time
    #: first seen: an update must then keep the date stored first.
    dated: bool = True
    #: A post's dedupe index keys ((key, kind) pairs, see aggregator.dedupe),
    #: computed next to the parsing, in the worker; None: not computed yet.
    dedupe_keys: tuple[tuple[str, str], ...] | None = None
    #: A post's topic slugs under the rules the worker was given; None: not filed yet.
    topics: tuple[str, ...] | None = None


# --------------------------------------------------------------------------- publish


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """A source as shown in published feeds (atom:source, OPML)."""

    name: str
    #: The feed URL we read.
    feed_url: str
    #: The blog's title as its feed states it (falls back to name).
    title: str
    #: The blog's home page, or None.
    site_url: str | None
    language: str | None = None
    topics: tuple[str, ...] = ()
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Appearance:
    """One place where a (possibly merged) entry appeared."""

    source: str
    feed_url: str
    original_id: str | None
    link: str | None
    published: datetime | None


@dataclass(frozen=True, slots=True)
class PublishedEntry:
    """A canonical entry ready to be written into output feeds."""

    #: Stable, never-changing entry id (a urn:uuid:… string).
    id: str
    #: Short URL-safe key for /posts/<key>/comments.atom (hex of the uuid).
    key: str
    kind: EntryKind
    title: str
    link: str | None
    content_html: str
    summary_html: str
    author: str | None
    published: datetime
    updated: datetime
    categories: tuple[str, ...]
    language: str | None
    topics: tuple[str, ...]
    #: The source the canonical copy came from.
    source: SourceInfo
    #: Every place this entry appeared, the canonical one first.
    appearances: tuple[Appearance, ...] = ()
    #: For a comment: the published id of what it answers (post or comment).
    in_reply_to_id: str | None = None
    #: For a comment: the link of what it answers.
    in_reply_to_link: str | None = None
    #: For a comment: the published id and title of its post (thread root).
    post_id: str | None = None
    post_key: str | None = None
    post_title: str | None = None
    #: For a post: number of comments we hold for it.
    comment_count: int = 0


@dataclass(frozen=True, slots=True)
class TopicInfo:
    slug: str
    title: str


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """What every published feed says about the aggregator itself."""

    title: str
    #: Public base URL where feeds/ is served, ending with "/".
    base_url: str
    generator_version: str
    updated: datetime
    topics: tuple[TopicInfo, ...] = ()
    sources: tuple[SourceInfo, ...] = ()
    languages: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class TopicFiling:
    """What filing a source's posts under topics needs: the rules and the source."""

    rules: tuple[TopicConfig, ...]
    source_name: str
    source_topics: tuple[str, ...]


# --------------------------------------------------------------------------- pickling


def _pickle_by_fields(cls: type) -> None:
    """Pickle instances of *cls* as the class and its field values.

    A frozen slots dataclass pickles through dataclasses' own __getstate__
    and __setstate__, which call fields() for every object: 2.5× slower both
    ways. These values cross the parser workers' pipe (every entry of a cold
    pass) and make the render memo's digests (10,000 sources every publish).
    """
    values = operator.attrgetter(*(f.name for f in fields(cls)))

    def __reduce__(self: object) -> tuple[type, tuple[object, ...]]:
        return cls, values(self)

    cls.__reduce__ = __reduce__  # type: ignore[assignment,method-assign]


for _type in (Validators, FetchResult, ParsedEntry, ParsedFeed, NormalizedEntry, SourceInfo,
              Appearance, PublishedEntry, TopicInfo, SiteInfo, TopicFiling):
    # attrgetter of one name returns the value, not a 1-tuple.
    assert len(fields(_type)) > 1, _type
    _pickle_by_fields(_type)
