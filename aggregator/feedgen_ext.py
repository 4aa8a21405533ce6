"""feedgen extensions for what an aggregator's feeds need and feedgen lacks.

feedgen's own ``entry.source()`` writes only a title and a link, and it has
no threading at all. The extensions here add, per entry:

- Atom: entry links with their rel/type/title (feedgen 1.0 loses them), a
  full ``atom:source`` (RFC 4287 §4.2.11: id, title, self and
  alternate links, updated, and an author when the entry has none), the
  ``xml:lang`` of the entry, RFC 4685 threading (``thr:in-reply-to`` on
  comments, ``link rel="replies"`` with ``thr:count`` on posts);
- RSS 2.0: the ``<source url>`` element, ``wfw:commentRss`` and
  ``slash:comments`` on posts (the de-facto way blogs point at comment feeds),
  and ``thr:in-reply-to`` on comments.

Register them with :func:`register_atom` / :func:`register_rss` on a fresh
``FeedGenerator``; then each entry has an ``aggregator`` attribute that is a
:class:`AggregatorEntryExtension`. Text must arrive cleaned of characters
XML cannot carry (jsonfeed.clean_text). Only publish.py and this module
import feedgen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem

#: RFC 4685, Atom threading extensions.
THR_NS = "http://purl.org/syndication/thread/1.0"
#: Well-formed Web comment API: wfw:commentRss, read by most RSS readers.
WFW_NS = "http://wellformedweb.org/CommentAPI/"
#: RSS 1.0 slash module: slash:comments, the comment count.
SLASH_NS = "http://purl.org/rss/1.0/modules/slash/"
XML_NS = "http://www.w3.org/XML/1998/namespace"
#: RFC 5005 feed history: fh:archive marks an archive document.
FH_NS = "http://purl.org/syndication/history/1.0"

#: The name the extension is registered under: ``entry.aggregator``.
EXTENSION_NAME = "aggregator"

@dataclass(frozen=True, slots=True)
class SourceFeed:
    """The feed an aggregated entry was copied from (for atom:source / RSS source)."""

    #: The source's feed URL: link rel="self" (Atom), <source url> (RSS).
    feed_url: str
    #: atom:source/id: the feed URL in canonical form.
    feed_id: str
    title: str
    #: The blog's home page: link rel="alternate", if known.
    site_url: str | None
    #: atom:source/updated.
    updated: datetime
    #: An author for atom:source, given when the entry names none itself.
    author: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """An atom:link of an entry."""

    href: str
    rel: str
    type: str | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class InReplyTo:
    """What a comment answers (RFC 4685 §3)."""

    #: The id of the answered post or comment.
    ref: str
    #: Its HTML page, if known.
    href: str | None = None


@dataclass(frozen=True, slots=True)
class Replies:
    """Where a post's comment thread is (RFC 4685 §4)."""

    #: URL of the Atom feed of the thread.
    feed_url: str
    #: URL of the HTML page with the comments (RSS <comments>), if any.
    page_url: str | None
    #: Number of comments; None when unknown (then no thr:count / slash:comments).
    count: int | None


class AtomAggregatorExtension(BaseExtension):
    """Feed-level part for Atom: declares the thr prefix on the root, and marks
    an archive document with fh:archive (RFC 5005 §4)."""

    def __init__(self) -> None:
        #: Set by :func:`register_atom` for an archive document.
        self.archive = False

    def extend_ns(self) -> dict[str, str]:
        return {"thr": THR_NS, **({"fh": FH_NS} if self.archive else {})}

    def extend_atom(self, feed):  # type: ignore[no-untyped-def]  # feedgen's hook
        if self.archive:
            xml_elem(f"{{{FH_NS}}}archive", feed)
        return feed


class RssAggregatorExtension(BaseExtension):
    """Feed-level part for RSS: declares the thr, wfw and slash prefixes."""

    def extend_ns(self) -> dict[str, str]:
        return {"thr": THR_NS, "wfw": WFW_NS, "slash": SLASH_NS}


class AggregatorEntryExtension(BaseEntryExtension):
    """Per-entry data feedgen has no place for; written by extend_atom/extend_rss."""

    def __init__(self) -> None:
        #: Entry links for Atom. feedgen 1.0 drops rel/type/title of entry
        #: links (a shadowed variable in FeedEntry.atom_entry), so every
        #: non-alternate link would turn into an alternate one.
        self.links: tuple[Link, ...] = ()
        self.source: SourceFeed | None = None
        self.in_reply_to: InReplyTo | None = None
        self.replies: Replies | None = None
        self.language: str | None = None

    def extend_atom(self, entry):  # type: ignore[no-untyped-def]  # feedgen's hook
        for broken in entry.findall("link"):
            if broken.get("rel") is None:
                entry.remove(broken)  # feedgen's copy, without rel/type
        if self.language:
            entry.set(f"{{{XML_NS}}}lang", self.language)
        for link in self.links:
            element = xml_elem("link", entry, rel=link.rel, href=link.href)
            if link.type:
                element.set("type", link.type)
            if link.title:
                element.set("title", link.title)
        if self.in_reply_to is not None:
            reply = xml_elem(f"{{{THR_NS}}}in-reply-to", entry, ref=self.in_reply_to.ref)
            if self.in_reply_to.href:
                reply.set("href", self.in_reply_to.href)
                reply.set("type", "text/html")
        if self.replies is not None:
            link = xml_elem(
                "link",
                entry,
                rel="replies",
                type="application/atom+xml",
                href=self.replies.feed_url,
            )
            if self.replies.count is not None:
                link.set(f"{{{THR_NS}}}count", str(self.replies.count))
        if self.source is not None:
            self._atom_source(entry, self.source)
        return entry

    @staticmethod
    def _atom_source(entry, source: SourceFeed) -> None:  # type: ignore[no-untyped-def]
        # feedgen writes Atom elements unqualified under a literal default
        # xmlns; qualified names here would make lxml invent an ns0: prefix.
        element = xml_elem("source", entry)
        xml_elem("id", element).text = source.feed_id
        xml_elem("title", element).text = source.title
        xml_elem("updated", element).text = source.updated.isoformat()
        xml_elem("link", element, rel="self", href=source.feed_url)
        if source.site_url:
            xml_elem("link", element, rel="alternate", type="text/html", href=source.site_url)
        if source.author:
            author = xml_elem("author", element)
            xml_elem("name", author).text = source.author

    def extend_rss(self, item):  # type: ignore[no-untyped-def]  # feedgen's hook
        if self.replies is not None:
            if self.replies.page_url:
                xml_elem("comments", item).text = self.replies.page_url
            xml_elem(f"{{{WFW_NS}}}commentRss", item).text = self.replies.feed_url
            if self.replies.count is not None:
                xml_elem(f"{{{SLASH_NS}}}comments", item).text = str(self.replies.count)
        if self.in_reply_to is not None:
            reply = xml_elem(f"{{{THR_NS}}}in-reply-to", item, ref=self.in_reply_to.ref)
            if self.in_reply_to.href:
                reply.set("href", self.in_reply_to.href)
                reply.set("type", "text/html")
        if self.source is not None:
            # RSS 2.0 <source url="…">title</source>: the channel the item came from.
            xml_elem("source", item, url=self.source.feed_url).text = self.source.title
        return item


def register_atom(feed: FeedGenerator, *, archive: bool = False) -> None:
    """Give every entry of an Atom-bound ``feed`` an ``aggregator`` extension;
    ``archive`` marks the feed an RFC 5005 archive document."""
    feed.register_extension(
        EXTENSION_NAME, AtomAggregatorExtension, AggregatorEntryExtension, atom=True, rss=False
    )
    feed.aggregator.archive = archive  # type: ignore[attr-defined]


def register_rss(feed: FeedGenerator) -> None:
    """Give every entry of an RSS-bound ``feed`` an ``aggregator`` extension."""
    feed.register_extension(
        EXTENSION_NAME, RssAggregatorExtension, AggregatorEntryExtension, atom=False, rss=True
    )
