"""JSON Feed 1.1 output, and the view of an entry that every output format shares.

JSON Feed is written by hand (json.dumps of plain dicts): it is the one
format without a writing library among the mandated ones, and the spec is
small (https://jsonfeed.org/version/1.1).

The first half of this module is format-neutral: the cleaned text, the
"Also published at" paragraph for merged duplicates, thread URLs and the
feed-level date. The Atom/RSS writers in publish.py, opml.py and page.py use
it too, so the same entry reads the same in every format. It lives here
rather than in publish.py because publish.py imports this module.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

from aggregator.types import Appearance, PublishedEntry, SiteInfo

JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"

#: The feed-level date of a feed without entries. Fixed, never now(): an
#: unchanged input must give unchanged bytes, so files are not rewritten.
EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)

# Characters XML 1.0 cannot carry at all (lxml refuses them), plus C0/C1
# controls that are legal in places but only ever mean mis-decoded bytes.
# Stripped from every output so all formats carry the same text.
_NOT_TEXT = re.compile("[^\t\n\r\u0020-\u007e\u00a0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SPACES = re.compile(r"\s+")


# --------------------------------------------------------------------------- shared view


def clean_text(text: str | None) -> str:
    """``text`` without characters that XML 1.0 (and so any feed) cannot carry."""
    return _NOT_TEXT.sub("", text or "")


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def rfc3339(moment: datetime) -> str:
    return utc(moment).isoformat()


def feed_updated(entries: Iterable[PublishedEntry]) -> datetime:
    """The feed-level updated date: the newest entry's ``updated``."""
    return max((utc(entry.updated) for entry in entries), default=EMPTY_FEED_UPDATED)


def thread_url(site: SiteInfo, post_key: str) -> str:
    """Where one post's comment thread is served as Atom."""
    return f"{site.base_url}posts/{quote(post_key, safe='')}/comments.atom"


def entry_title(entry: PublishedEntry) -> str:
    """The entry's title; made up when blank, because Atom and RSS need one."""
    title = _SPACES.sub(" ", clean_text(entry.title)).strip()
    if title:
        return title
    if entry.kind == "comment":
        who = clean_text(entry.author).strip() or "someone"
        post = clean_text(entry.post_title).strip()
        return f"Comment by {who} on {post}" if post else f"Comment by {who}"
    return "(untitled)"


def source_title(site: SiteInfo, name: str) -> str:
    """The display title of the source called ``name`` (its name if unknown)."""
    for source in site.sources:
        if source.name == name:
            return clean_text(source.title) or clean_text(name)
    return clean_text(name)


def other_appearances(entry: PublishedEntry) -> list[Appearance]:
    """Places a merged entry also appeared at, each link once, canonical one left out."""
    seen = {entry.link} if entry.link else set()
    others = []
    for appearance in entry.appearances[1:]:
        if appearance.link and appearance.link not in seen:
            seen.add(appearance.link)
            others.append(appearance)
    return others


def content_html(site: SiteInfo, entry: PublishedEntry) -> str:
    """The entry's HTML content, with "Also published at" for merged duplicates."""
    content = clean_text(entry.content_html)
    others = other_appearances(entry)
    if not others:
        return content
    places = ", ".join(
        f'<a href="{html.escape(clean_text(appearance.link), quote=True)}">'
        f"{html.escape(source_title(site, appearance.source))}</a>"
        for appearance in others
        if appearance.link
    )
    return f"{content}\n<p>Also published at: {places}</p>" if content else (
        f"<p>Also published at: {places}</p>"
    )


class _TextOfHTML(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(markup: str) -> str:
    """The text of an HTML fragment, whitespace collapsed."""
    parser = _TextOfHTML()
    parser.feed(clean_text(markup))
    parser.close()
    return _SPACES.sub(" ", "".join(parser.parts)).strip()


# --------------------------------------------------------------------------- JSON Feed


def render_json(
    site: SiteInfo,
    *,
    path: str,
    title: str,
    entries: Sequence[PublishedEntry],
    subtitle: str | None = None,
    language: str | None = None,
) -> bytes:
    """A JSON Feed 1.1 document of ``entries`` (in the given order), UTF-8."""
    document: dict[str, Any] = {
        "version": JSONFEED_VERSION,
        "title": clean_text(title),
        "home_page_url": site.base_url,
        "feed_url": site.base_url + path,
        "authors": [{"name": clean_text(site.title), "url": site.base_url}],
        "items": [_item(site, entry) for entry in entries],
    }
    if subtitle:
        document["description"] = clean_text(subtitle)
    if language:
        document["language"] = language
    # sort_keys: the bytes depend on the data only, never on code order.
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1)
    return (text + "\n").encode("utf-8")


def _item(site: SiteInfo, entry: PublishedEntry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": entry.id,
        "title": entry_title(entry),
        "content_html": content_html(site, entry),
        "date_published": rfc3339(entry.published),
        "date_modified": rfc3339(entry.updated),
    }
    if entry.link:
        item["url"] = entry.link
    summary = plain_text(entry.summary_html)
    if summary:
        item["summary"] = summary
    author = clean_text(entry.author).strip()
    if author:
        item["authors"] = [{"name": author}]
    topic_titles = {topic.slug: topic.title for topic in site.topics}
    tags = _unique(
        [clean_text(term).strip() for term in entry.categories]
        + [clean_text(topic_titles.get(slug, slug)) for slug in entry.topics]
    )
    if tags:
        item["tags"] = tags
    if entry.language:
        item["language"] = entry.language
    item["_aggregator"] = _extension(site, entry)
    return item


def _extension(site: SiteInfo, entry: PublishedEntry) -> dict[str, Any]:
    """The ``_aggregator`` custom object: what JSON Feed has no field for."""
    source = entry.source
    extension: dict[str, Any] = {
        "about": site.base_url,
        "kind": entry.kind,
        "source": {
            "name": clean_text(source.name),
            "feed_url": source.feed_url,
            "title": clean_text(source.title),
            "site_url": source.site_url,
        },
        "appearances": [
            {
                "source": clean_text(appearance.source),
                "feed_url": appearance.feed_url,
                "original_id": clean_text(appearance.original_id) or None,
                "url": appearance.link,
                "date_published": (
                    rfc3339(appearance.published) if appearance.published else None
                ),
            }
            for appearance in entry.appearances
        ],
        "topics": list(entry.topics),
    }
    if entry.kind == "post":
        extension["comment_count"] = entry.comment_count
        extension["replies_feed_url"] = thread_url(site, entry.key)
    else:
        extension["in_reply_to"] = entry.in_reply_to_id or entry.post_id
        extension["in_reply_to_url"] = entry.in_reply_to_link
        extension["post_id"] = entry.post_id
        extension["post_title"] = clean_text(entry.post_title) or None
        if entry.post_key:
            extension["replies_feed_url"] = thread_url(site, entry.post_key)
    return extension


def _unique(terms: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(term for term in terms if term))
