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
import string
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit

from aggregator.types import Appearance, PublishedEntry, SiteInfo, SourceInfo

JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"

#: The feed-level date of a feed without entries. Fixed, never now(): an
#: unchanged input must give unchanged bytes, so files are not rewritten.
#: Not the epoch: the W3C feed validator calls any date before 1990
#: implausible, and some readers take 1970 for "no date".
EMPTY_FEED_UPDATED = datetime(2000, 1, 1, tzinfo=UTC)

# Characters XML 1.0 cannot carry at all (lxml refuses them), plus C0/C1
# controls that are legal in places but only ever mean mis-decoded bytes,
# and U+FFFD, which only ever marks bytes a decoder already lost (the W3C
# validator reports it as "bad characters"). Stripped from every output so
# all formats carry the same text.
_NOT_TEXT = re.compile("[^\t\n\r\u0020-\u007e\u00a0-\ud7ff\ue000-\ufffc\U00010000-\U0010ffff]")
_SPACES = re.compile(r"\s+")

# RFC 3986 characters that may stand as they are in a URI ("%" only before
# two hex digits, "[" and "]" only around an IPv6 host).
_URI_SAFE = frozenset(string.ascii_letters + string.digits + "-._~:/?#@!$&'()*+,;=")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_LONE_PERCENT = re.compile("%(?![0-9A-Fa-f]{2})")
#: Text made only of _URI_SAFE characters and "%": one regex match, not a
#: Python step per character (a publish asks for some 20,000 characters).
_URI_PLAIN = re.compile("[" + re.escape("".join(sorted(_URI_SAFE))) + "%]*")
_PERCENT_ESCAPE = re.compile("%([0-9A-Fa-f]{2})")
_DEFAULT_PORTS = {"http": 80, "https": 443}


# --------------------------------------------------------------------------- shared view


def clean_text(text: str | None) -> str:
    """``text`` without characters that XML 1.0 (and so any feed) cannot carry."""
    return _NOT_TEXT.sub("", text or "")


def web_uri(url: str | None) -> str:
    """``url`` as a URI (RFC 3987 §3.1): the same address, in ASCII only.

    Feeds carry links exactly as blogs wrote them, and German or Dutch blogs
    write "ü" or "|" in paths. RSS wants URLs (the W3C validator reports
    InvalidFullLink), and readers in C or C++ hand hrefs to HTTP libraries
    that expect ASCII. Non-ASCII characters and characters RFC 3986 does not
    allow are percent-encoded as UTF-8 and an international host name gets
    its IDNA form; existing escapes are kept, so a URI comes back unchanged.
    """
    text = clean_text(url).strip()
    if _URI_PLAIN.fullmatch(text) and not _LONE_PERCENT.search(text):
        return text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return _escape_uri_part(text)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host = parts.hostname or ""
    if host.isascii() or hostport.startswith("["):
        netloc = _escape_uri_part(parts.netloc) if "[" not in hostport else parts.netloc
    else:
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_host = _escape_uri_part(host)
        netloc = ascii_host if port is None else f"{ascii_host}:{port}"
        if at:
            netloc = f"{_escape_uri_part(userinfo)}@{netloc}"
    return SplitResult(
        parts.scheme, netloc, _escape_uri_part(parts.path), _escape_uri_part(parts.query),
        _escape_uri_part(parts.fragment),
    ).geturl()


def canonical_id(url: str | None) -> str:
    """``url`` in the canonical form of RFC 3986 §6.2.2, for use as an atom:id.

    Atom compares ids character by character, and the W3C validator warns
    (NonCanonicalURI) about an id not in this form: lower-case scheme and
    host, no default port, "/" for an empty path, escapes in upper case and
    none for unreserved characters.
    """
    uri = web_uri(url)
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return uri
    if not parts.scheme or not parts.netloc:
        return uri
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at:
        netloc = f"{userinfo}@{netloc}"
    return SplitResult(
        scheme, netloc, _normal_escapes(parts.path) or "/", _normal_escapes(parts.query),
        _normal_escapes(parts.fragment),
    ).geturl()


def _escape_uri_part(part: str) -> str:
    escaped = _LONE_PERCENT.sub("%25", part)
    return "".join(char if char in _URI_SAFE or char == "%" else quote(char, safe="")
                   for char in escaped)


def _normal_escapes(part: str) -> str:
    def normal(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else match.group(0).upper()

    return _PERCENT_ESCAPE.sub(normal, part)


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


#: Source titles by name for the last ``SiteInfo.sources`` asked about (held
#: by identity): source_title runs once per appearance of every published
#: entry, and scanning thousands of sources each time dominated publishing.
_titles_by_name: list[tuple[tuple[SourceInfo, ...], dict[str, str]]] = [((), {})]


def source_title(site: SiteInfo, name: str) -> str:
    """The display title of the source called ``name`` (its name if unknown)."""
    sources, titles = _titles_by_name[0]
    if sources is not site.sources:
        titles = {}
        for source in site.sources:
            titles.setdefault(source.name, clean_text(source.title))
        _titles_by_name[0] = (site.sources, titles)
    return titles.get(name) or clean_text(name)


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
        f'<a href="{html.escape(web_uri(appearance.link), quote=True)}">'
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
    # Titles and names fall back as in Atom: JSON Feed requires a title, and
    # an author object with an empty name says nothing.
    site_title = clean_text(site.title).strip() or "aggregator"
    document: dict[str, Any] = {
        "version": JSONFEED_VERSION,
        "title": clean_text(title).strip() or site_title,
        "home_page_url": web_uri(site.base_url),
        "feed_url": canonical_id(site.base_url + path),
        "authors": [{"name": site_title, "url": web_uri(site.base_url)}],
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
        item["url"] = web_uri(entry.link)
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
