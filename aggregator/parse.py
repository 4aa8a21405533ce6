"""Reading feed documents: the bytes a fetch returned become a ParsedFeed.

This is the one adapter around feedparser (RSS 0.9x/1.0/2.0, Atom 0.3/1.0);
JSON Feed 1.0/1.1 is read by hand with json. ``parse_feed`` is a pure function
of (body, headers, url): no I/O, no shared state, so it can run in worker
processes. Anything that is not a feed ends as ParseError, never as another
exception, and feedparser's dicts never leave this module.
"""

from __future__ import annotations

import calendar
import codecs
import email.utils
import html
import io
import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser

from aggregator.errors import ParseError
from aggregator.types import ParsedEntry, ParsedFeed

__all__ = ["MAX_ENTRIES", "parse_feed", "parse_feed_with_feedparser"]

#: Entries read from one document; the rest are dropped with a warning, so a
#: hostile or broken feed cannot flood the store.
MAX_ENTRIES = 2_000

# Only the prolog is inspected for DTD tricks; a feed's root starts long before.
_PROLOG_BYTES = 64 * 1024
_WARNING_CHARS = 200

# RFC 4685 (Atom threading). feedparser has no name for this namespace, so it
# keys elements by the prefix the document chose ("thr_in-reply-to").
_THREAD_NS = "http://purl.org/syndication/thread/1.0"
_FEED_TYPES = frozenset({"application/atom+xml", "application/rss+xml", "application/rdf+xml",
                         "application/feed+json", "application/xml", "text/xml"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml"})
_JSON_TYPES = frozenset({"application/feed+json", "application/json"})

# NUL and lone surrogates: PostgreSQL text and XML output both reject them.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# A character reference to a surrogate (&#xD800;–&#xDFFF;, 55296–57343) makes
# feedparser raise UnicodeEncodeError instead of flagging the feed as bozo.
_SURROGATE_REF = re.compile(
    rb"&#(?:[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2}"
    rb"|0*(?:5529[6-9]|55[3-9]\d\d|5[6]\d\d\d|57[0-2]\d\d|573[0-3]\d|5734[0-3]));"
)
_SUBSET_TOKEN = re.compile(r"\"[^\"]*\"|'[^']*'|<!--.*?-->|\]|[^\"'<\]]+|<", re.S)
_NAME = re.compile(r"[^\s/>\[]+")


# Blank lines or comments before the XML declaration: a plugin or template
# printing before the feed (WordPress's "XML declaration allowed only at the
# start of the document", Drupal's theme debug comments). An XML parser must
# refuse such a document, and feedparser then reads it with its lenient
# parser, slowly and less exactly; this is all that is wrong with it.
_BEFORE_DECLARATION = re.compile(
    rb"(?:[ \t\r\n]|<!--(?:(?!-->).){0,4096}-->)+(?=<\?xml[ \t\r\n?])", re.S)


def _trim_before_declaration(body: bytes) -> bytes:
    bom = codecs.BOM_UTF8 if body.startswith(codecs.BOM_UTF8) else b""
    # One character per repetition (never runs of them: a failed match would
    # try every way of cutting a run), within the prolog's bytes.
    junk = _BEFORE_DECLARATION.match(body, len(bom), _PROLOG_BYTES)
    return bom + body[junk.end():] if junk else body


def parse_feed(body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
    """Parse one feed document fetched from ``url`` (see parse_feed_with_feedparser).

    Plain RSS 2.0 and Atom 1.0 take the lxml fast path (aggregator.fastparse),
    which returns exactly what feedparser would or declines; everything else,
    and everything it is unsure of, is read by feedparser.
    """
    # Imported here: fastparse reuses this module's helpers (a circular import at the top).
    from aggregator.fastparse import fast_parse

    body = _trim_before_declaration(body)
    fast = fast_parse(body, headers, url)
    if fast is not None:
        return fast
    return parse_feed_with_feedparser(body, headers, url)


def parse_feed_with_feedparser(body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
    """Parse one feed document fetched from ``url``.

    ``headers`` are the response headers (any case); Content-Type guides the
    encoding and the format, Content-Location (else ``url``) is the base for
    relative links. Raises ParseError, with a message for a user, when the
    body is not an RSS, Atom or JSON Feed document; never anything else.
    """
    try:
        return _parse(body, {k.lower(): v for k, v in headers.items()}, url)
    except ParseError:
        raise
    except Exception as exc:  # the contract: one bad feed never escapes as a crash
        raise ParseError(f"could not read the feed: {_short(exc)}") from exc


def _parse(body: bytes, headers: dict[str, str], url: str) -> ParsedFeed:
    if not body or body.isspace():
        raise ParseError("not a feed: the server returned an empty body")
    body = _trim_before_declaration(body)
    head = _head_text(body)
    stripped = head.lstrip("\ufeff \t\r\n")
    is_json_type = _media_type(headers.get("content-type")) in _JSON_TYPES
    if stripped.startswith("{") or (is_json_type and not stripped.startswith("<")):
        return _parse_json_feed(body, url)
    prolog = _Prolog.scan(head)
    if prolog.declares_entities:
        raise ParseError("not a feed we accept: the document declares XML entities, refused")
    if prolog.root == "html" or prolog.doctype == "html":
        raise ParseError(_html_page(body, url))
    return _parse_xml_feed(body, headers, url, prolog)


# --------------------------------------------------------------------------- prolog


def _head_text(body: bytes) -> str:
    """The first 64 KiB as text, good enough to read markup in the prolog."""
    head = body[:_PROLOG_BYTES]
    if head.startswith(b"\xef\xbb\xbf"):  # the UTF-8 byte order mark
        return head[3:].decode("latin-1")
    # XML 1.0 appendix F: UTF-16/32 show NULs or a BOM in the first four bytes;
    # reading them as Latin-1 would hide "<!ENTITY" between the NULs.
    for marks, codec in ((b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
                         (b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"),
                         (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"),
                         (b"\x00<", "utf-16-be"), (b"<\x00", "utf-16-le")):
        if head.startswith(marks):
            return head.decode(codec, "ignore")
    # Every other encoding a feed uses is ASCII-compatible for markup.
    return head.decode("latin-1")


class _Prolog:
    """What comes before the root element: its name, the DOCTYPE, entities."""

    __slots__ = ("declares_entities", "doctype", "root")

    def __init__(self, root: str | None, doctype: str | None, declares_entities: bool) -> None:
        self.root = root
        self.doctype = doctype
        self.declares_entities = declares_entities

    @classmethod
    def scan(cls, text: str) -> _Prolog:
        pos, end = 0, len(text)
        doctype: str | None = None
        while True:
            while pos < end and text[pos] in "\ufeff \t\r\n":
                pos += 1
            if pos >= end:
                # The prolog fills the whole window (padding, a huge subset):
                # too odd to trust, so look anywhere in it.
                return cls(None, doctype, "<!entity" in text.lower())
            if text.startswith("<?", pos):
                pos = _after(text, "?>", pos + 2)
            elif text.startswith("<!--", pos):
                pos = _after(text, "-->", pos + 4)
            elif text[pos:pos + 9].lower() == "<!doctype":
                name = _NAME.match(text, _skip_space(text, pos + 9))
                doctype = name.group().lower() if name else ""
                pos, entities = _skip_doctype(text, pos + 9)
                if entities:
                    return cls(None, doctype, True)
            elif text.startswith("<", pos) and pos + 1 < end and _is_name_start(text[pos + 1]):
                name = _NAME.match(text, pos + 1)
                root = name.group().lower() if name else ""
                return cls(root.rpartition(":")[2], doctype, False)
            else:
                # Text before any markup (a PHP notice, garbage): feedparser may
                # still recover a feed further on, so only the entity check applies.
                return cls(None, doctype, "<!entity" in text.lower())


def _after(text: str, marker: str, pos: int) -> int:
    found = text.find(marker, pos)
    return len(text) if found < 0 else found + len(marker)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _is_name_start(char: str) -> bool:
    return char.isalpha() or char in "_:"


def _skip_doctype(text: str, pos: int) -> tuple[int, bool]:
    """Skip a DOCTYPE; return the position after it and whether it declares entities."""
    quote: str | None = None
    while pos < len(text):
        char = text[pos]
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == ">":
            return pos + 1, False
        elif char == "[":
            return _skip_subset(text, pos + 1)
        pos += 1
    return pos, False


def _skip_subset(text: str, pos: int) -> tuple[int, bool]:
    """Read an internal DTD subset token by token, so a "]>" in a quoted string
    or comment cannot end it early and hide an entity declaration behind it."""
    while pos < len(text):
        token = _SUBSET_TOKEN.match(text, pos)
        if token is None:  # an unterminated string or comment runs to the window's end
            return len(text), "<!entity" in text[pos:].lower()
        value = token.group()
        if value == "]":
            return _after(text, ">", token.end()), False
        if value == "<" and text[pos:pos + 8].lower() == "<!entity":
            return pos, True
        pos = token.end()
    # The subset does not end inside the window: refuse rather than guess.
    return pos, True


# --------------------------------------------------------------------------- RSS / Atom


def _parse_xml_feed(body: bytes, headers: dict[str, str], url: str,
                    prolog: _Prolog) -> ParsedFeed:
    base = urljoin(url, headers.get("content-location", "")) or url
    response_headers = {"content-location": base}
    for name in ("content-type", "content-language"):
        if name in headers:
            response_headers[name] = headers[name]
    if b"&#" in body:
        body = _SURROGATE_REF.sub(b"&#xFFFD;", body)
    try:
        # Always a stream: given bytes or str, feedparser opens a local file or
        # URL of that name if one exists. Relative links in embedded HTML are
        # left to sanitize_html, which resolves them while it parses the
        # markup anyway (against ParsedEntry.content_base): feedparser's
        # resolver tokenizes and rewrites every text a second time.
        result = feedparser.parse(io.BytesIO(body), response_headers=response_headers,
                                  sanitize_html=False, resolve_relative_uris=False)
    except Exception as exc:
        raise ParseError(f"could not read the feed: {_short(exc)}") from exc

    version: str = result.get("version") or ""
    raw_entries: list[Any] = result.get("entries") or []
    if not version and not raw_entries:
        raise ParseError(_not_a_feed(body, headers, prolog, url))

    feed = result.get("feed") or {}
    warnings: list[str] = []
    if result.get("bozo"):
        warnings.append(_bozo_warning(result.get("bozo_exception")))
    if len(raw_entries) > MAX_ENTRIES:
        warnings.append(f"the feed has {len(raw_entries)} entries; only the first "
                        f"{MAX_ENTRIES} were read")
        raw_entries = raw_entries[:MAX_ENTRIES]

    thread_prefixes = tuple(prefix for prefix, uri in (result.get("namespaces") or {}).items()
                            if prefix and uri == _THREAD_NS)
    is_atom = version.startswith("atom")
    feed_author = _author(feed) if is_atom else None
    entries = tuple(_xml_entry(entry, base, thread_prefixes, feed_author)
                    for entry in raw_entries)
    return ParsedFeed(
        format=version or "unknown",
        title=_clean(_text(feed.get("title"))),
        link=_clean_opt(_alternate_link(feed)),
        language=_clean_opt(_text(feed.get("language")) or None),
        entries=entries,
        ttl_minutes=_count(feed.get("ttl")),
        comments_feed_url=_clean_opt(_comments_feed(feed)),
        warning=_clean_opt("; ".join(warnings)[:2 * _WARNING_CHARS] or None),
    )


def _xml_entry(entry: Mapping[str, Any], base: str, thread_prefixes: tuple[str, ...],
               feed_author: str | None) -> ParsedEntry:
    entry_base = _entry_base(entry) or base
    in_reply_to: str | None = None
    in_reply_to_link: str | None = None
    total: int | None = None
    for prefix in thread_prefixes:
        # feedparser keeps only the last thr:in-reply-to of an entry; RFC 4685
        # allows several, and any one of them places the comment in its thread.
        reply = dict.get(entry, f"{prefix}_in-reply-to")
        if isinstance(reply, Mapping):
            in_reply_to = _text(reply.get("ref")) or None
            href = _text(reply.get("href"))
            in_reply_to_link = urljoin(entry_base, href) if href else None
        if total is None:
            total = _count(dict.get(entry, f"{prefix}_total"))

    replies_count: int | None = None
    replies_feed: str | None = None
    for link in _links(entry):
        if link.get("rel") != "replies":
            continue
        count = _count(next((v for k, v in link.items() if k == "count" or k.endswith(":count")),
                            None))
        href = _text(link.get("href"))
        if _media_type(link.get("type")) in _FEED_TYPES and href:
            replies_feed = replies_feed or href
            replies_count = count if count is not None else replies_count
        elif replies_count is None:
            replies_count = count

    slash = _count(dict.get(entry, "slash_comments"))
    comment_count = next((c for c in (slash, replies_count, total) if c is not None), None)
    published = _date(entry, "published") or _date(entry, "created")
    updated = _date(entry, "updated")
    content_html, content_base = _content_and_base(dict.get(entry, "content"))
    summary = dict.get(entry, "summary_detail")
    return ParsedEntry(
        guid=_clean_opt(_text(dict.get(entry, "id")) or None),
        link=_clean_opt(_original_link(entry) or _alternate_link(entry)),
        title=_clean(_text(dict.get(entry, "title"))),
        content_html=_clean(content_html),
        summary_html=_clean(_detail_html(summary)),
        author=_clean_opt(_author(entry) or feed_author),
        # RSS 1.0's dc:date and many Atom feeds give only an update time: that
        # is still the entry's date, better than none.
        published=published or updated,
        updated=updated,
        categories=_categories(dict.get(entry, "tags")),
        language=_clean_opt(_entry_language(entry)),
        comments_feed_url=_clean_opt(_text(dict.get(entry, "wfw_commentrss")) or replies_feed),
        comment_count=comment_count,
        in_reply_to=_clean_opt(in_reply_to),
        in_reply_to_link=_clean_opt(in_reply_to_link),
        content_base=content_base,
        summary_base=_detail_base(summary),
    )


def _links(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    links = dict.get(node, "links")
    return [link for link in links if isinstance(link, Mapping)] if isinstance(links, list) else []


def _alternate_link(node: Mapping[str, Any]) -> str | None:
    fallback: str | None = None
    for link in _links(node):
        href = _text(link.get("href"))
        if link.get("rel", "alternate") == "alternate" and href:
            if _media_type(link.get("type")) in _HTML_TYPES:
                return href
            fallback = fallback or href
    if fallback:
        return fallback
    # feedparser copies an Atom id or RSS guid into "link" when there is none;
    # only a web address is worth keeping from that.
    link = _text(dict.get(node, "link"))
    return link if link.startswith(("http://", "https://")) else None


def _original_link(entry: Mapping[str, Any]) -> str | None:
    """feedburner:origLink: the article's own address behind a feedproxy link."""
    link = _text(dict.get(entry, "feedburner_origlink"))
    return link if link.startswith(("http://", "https://")) else None


def _comments_feed(feed: Mapping[str, Any]) -> str | None:
    wfw = _text(dict.get(feed, "wfw_commentrss"))
    if wfw:
        return wfw
    for link in _links(feed):
        if link.get("rel") == "replies" and _media_type(link.get("type")) in _FEED_TYPES:
            return _text(link.get("href")) or None
    return None


def _entry_base(entry: Mapping[str, Any]) -> str | None:
    for key in ("title_detail", "summary_detail"):
        detail = dict.get(entry, key)
        if isinstance(detail, Mapping) and detail.get("base"):
            return _text(detail["base"])
    return None


def _content_and_base(contents: Any) -> tuple[str, str | None]:
    """The entry's content as HTML, and the base URI its relative links are
    resolved against (see ParsedEntry.content_base)."""
    if not isinstance(contents, list):
        return "", None
    texts = [c for c in contents if isinstance(c, Mapping)]
    # content:encoded and atom:content may both be there; markup beats text.
    for content in texts:
        if _media_type(content.get("type")) in _HTML_TYPES:
            return _text(content.get("value")), _detail_base(content)
    return next(((html_text, _detail_base(c)) for c in texts
                 if (html_text := _detail_html(c))), ("", None))


def _detail_base(detail: Any) -> str | None:
    """The xml:base in scope where a text element stood (else the document's URI)."""
    if not isinstance(detail, Mapping):
        return None
    return _clean_opt(_text(detail.get("base")) or None)


def _detail_html(detail: Any) -> str:
    if not isinstance(detail, Mapping):
        return ""
    value = _text(detail.get("value"))
    kind = _media_type(detail.get("type"))
    if kind in _HTML_TYPES:
        return value
    if kind.startswith("text/") or kind in ("", "text"):
        return _escape(value)
    return ""  # base64 media, out-of-line content: nothing a reader can see


def _author(node: Mapping[str, Any]) -> str | None:
    detail = dict.get(node, "author_detail")
    if isinstance(detail, Mapping) and _text(detail.get("name")).strip():
        return _text(detail["name"]).strip()
    return _text(dict.get(node, "author")).strip() or None


def _entry_language(entry: Mapping[str, Any]) -> str | None:
    stated = _text(dict.get(entry, "language"))
    if stated:
        return stated
    for key in ("title_detail", "summary_detail"):
        detail = dict.get(entry, key)
        if isinstance(detail, Mapping) and detail.get("language"):
            return _text(detail["language"])
    contents = dict.get(entry, "content")
    if isinstance(contents, list):
        for content in contents:
            if isinstance(content, Mapping) and content.get("language"):
                return _text(content["language"])
    return None


def _categories(tags: Any) -> tuple[str, ...]:
    if not isinstance(tags, list):
        return ()
    terms = (_clean(_text(tag.get("term"))).strip() for tag in tags if isinstance(tag, Mapping))
    return tuple(dict.fromkeys(term for term in terms if term))


def _date(entry: Mapping[str, Any], key: str) -> datetime | None:
    parsed = dict.get(entry, f"{key}_parsed")
    if isinstance(parsed, time.struct_time):
        try:
            # feedparser's struct_time is already UTC.
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
        except (OverflowError, ValueError, OSError):
            return None
    return _date_from_text(_text(dict.get(entry, key)))


def _date_from_text(text: str) -> datetime | None:
    """Parse an RFC 822 or ISO 8601 date feedparser could not read, else None."""
    text = text.strip()
    if not text:
        return None
    moment: datetime | None
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)  # a date with no zone is read as UTC
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


# --------------------------------------------------------------------------- JSON Feed


def _parse_json_feed(body: bytes, url: str) -> ParsedFeed:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"not a feed: the server returned broken JSON ({_short(exc)})") from exc
    version = document.get("version") if isinstance(document, dict) else None
    if not isinstance(version, str) or not version.startswith(("https://jsonfeed.org/version/",
                                                                "http://jsonfeed.org/version/")):
        raise ParseError("not a feed: the server returned JSON that is not a JSON Feed")
    number = version.rstrip("/").rsplit("/", 1)[-1]
    feed_format = {"1": "json10", "1.0": "json10", "1.1": "json11"}.get(number, "json")

    warnings: list[str] = []
    items = document.get("items")
    if not isinstance(items, list):
        warnings.append("the JSON Feed has no list of items")
        items = []
    if len(items) > MAX_ENTRIES:
        warnings.append(f"the feed has {len(items)} entries; only the first "
                        f"{MAX_ENTRIES} were read")
        items = items[:MAX_ENTRIES]
    feed_author = _json_author(document)
    feed_language = _json_str(document, "language")
    entries = tuple(_json_entry(item, url, feed_author, feed_language)
                    for item in items if isinstance(item, dict))
    home = _json_str(document, "home_page_url")
    return ParsedFeed(
        format=feed_format,
        title=_clean(_json_str(document, "title") or ""),
        link=_clean_opt(urljoin(url, home) if home else None),
        language=_clean_opt(feed_language),
        entries=entries,
        warning="; ".join(warnings) or None,
    )


def _json_entry(item: dict[str, Any], url: str, feed_author: str | None,
                feed_language: str | None) -> ParsedEntry:
    raw_id = item.get("id")
    # JSON Feed 1.0 allowed numbers as ids; they are still ids.
    guid = str(raw_id) if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else None
    link = _json_str(item, "url")
    content_html = _json_str(item, "content_html")
    if content_html is None:
        content_html = _escape(_json_str(item, "content_text") or "")
    tags = item.get("tags")
    categories = _categories([{"term": t} for t in tags if isinstance(t, str)]
                             if isinstance(tags, list) else None)
    return ParsedEntry(
        guid=_clean_opt(guid),
        link=_clean_opt(urljoin(url, link) if link else None),
        title=_clean(_json_str(item, "title") or ""),
        content_html=_clean(content_html),
        # JSON Feed's summary is plain text by definition.
        summary_html=_clean(_escape(_json_str(item, "summary") or "")),
        author=_clean_opt(_json_author(item) or feed_author),
        published=_json_date(item, "date_published") or _json_date(item, "date_modified"),
        updated=_json_date(item, "date_modified"),
        categories=categories,
        language=_clean_opt(_json_str(item, "language") or feed_language),
    )


def _json_str(node: dict[str, Any], key: str) -> str | None:
    value = node.get(key)
    return value if isinstance(value, str) else None


def _json_author(node: dict[str, Any]) -> str | None:
    candidates: list[Any] = []
    authors = node.get("authors")  # 1.1
    if isinstance(authors, list):
        candidates.extend(authors)
    candidates.append(node.get("author"))  # 1.0
    for author in candidates:
        if isinstance(author, dict):
            name = author.get("name")
            if isinstance(name, str) and name.strip():
                return name.strip()
    return None


def _json_date(item: dict[str, Any], key: str) -> datetime | None:
    text = _json_str(item, key)
    return _date_from_text(text) if text else None


# --------------------------------------------------------------------------- helpers


#: The link types a page announces its feeds with (RSS Autodiscovery, Atom, JSON Feed).
_FEED_LINK_TYPES = frozenset({"application/rss+xml", "application/atom+xml",
                              "application/feed+json", "application/json",
                              "application/rdf+xml"})
#: Pages announce their feeds in the head: this much of a page is enough.
_PAGE_HEAD_BYTES = 256 * 1024


def _html_page(body: bytes, url: str) -> str:
    """"Not a feed" for an HTML page, naming the feed the page announces.

    A source's URL is often a blog's front page rather than its feed: the
    error then says which URL to configure instead.
    """
    message = "not a feed: the server returned an HTML page"
    feed = _announced_feed(body[:_PAGE_HEAD_BYTES], url)
    return f"{message} that announces a feed at {feed}: set the source's url to that" \
        if feed else message


def _announced_feed(page: bytes, url: str) -> str | None:
    """The first feed URL a page's <link rel="alternate"> elements name.

    The first, because platforms that also announce a comments feed list the
    site's own feed before it.
    """
    try:
        import lxml.html  # here: only a source that serves a page pays for it

        document = lxml.html.document_fromstring(page)
    except Exception:  # a page lxml cannot make sense of announces nothing
        return None
    base = url
    for element in document.iter("base"):
        href = (element.get("href") or "").strip()
        if href:
            base = urljoin(url, href)
        break
    for link in document.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").split(";")[0].strip().lower()
        href = (link.get("href") or "").strip()
        if "alternate" in rel and kind in _FEED_LINK_TYPES and href:
            target = urljoin(base, href)
            if target.split(":", 1)[0].lower() in ("http", "https"):
                return target
    return None


def _not_a_feed(body: bytes, headers: Mapping[str, str], prolog: _Prolog, url: str) -> str:
    """Why a document that feedparser found nothing in is not a feed, in plain words."""
    head = body[:_PROLOG_BYTES].lower()
    content_type = _media_type(headers.get("content-type"))
    if content_type == "text/html" or b"<html" in head or b"<body" in head:
        return _html_page(body, url)
    if prolog.root:
        return (f"not a feed: the server returned an XML document whose root element is "
                f"<{prolog.root}>, not <rss>, <rdf:RDF> or <feed>")
    if body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "not a feed: the server returned markup with no RSS, Atom or RDF root element"
    shown = f" ({content_type})" if content_type else ""
    return f"not a feed: the server returned something that is neither XML nor JSON{shown}"


def _bozo_warning(exc: object) -> str:
    """feedparser's complaint about a feed it could still read, for a user."""
    message = getattr(exc, "getMessage", None)
    if callable(message):  # xml.sax.SAXParseException
        # No line numbers: feedparser rewrites the prolog, so they would mislead.
        return (f"not well-formed XML ({_short(message())}); read leniently, "
                f"some entries may be incomplete")
    return _short(exc)


def _clean(text: str) -> str:
    """Drop NUL and lone surrogates, which PostgreSQL and XML writers reject."""
    if "\x00" not in text:
        if text.isascii():
            return text
        # Only a lone surrogate fails to encode. Encoding a post of Dutch or
        # German text is a quarter of the cost of the regex reading it.
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return text
    return _UNSTORABLE.sub("", text)


def _clean_opt(text: str | None) -> str | None:
    return _clean(text) if text else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _media_type(value: Any) -> str:
    return _text(value).split(";", 1)[0].strip().lower()


def _count(value: Any) -> int | None:
    """A non-negative count or TTL from its text, else None."""
    text = _text(value).strip()
    if not text.isdigit() or len(text) > 9:
        return None
    return int(text)


def _short(exc: object) -> str:
    """A one-line, bounded description of an exception for a user to read."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= _WARNING_CHARS else text[:_WARNING_CHARS - 1] + "…"
