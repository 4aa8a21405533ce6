"""Reading the common feed quickly: a fast path in front of parse_feed.

feedparser reads every dialect a feed can be written in, and pays for it in
time (issue 5: ~440 entries/s without its sanitizer, against ~7,800 for lxml
over the same bytes). Nearly every blog serves well-formed RSS 2.0 or Atom
1.0 (or RSS 1.0, still common in news and older blog software), so
``fast_parse`` reads those with lxml and produces the ParsedFeed that
``parse_feed`` would produce for the same (body, headers, url).

It is an optimisation, never a second opinion: it returns None whenever it
is not sure of giving exactly feedparser's answer (another dialect, a
DOCTYPE, a document that is not well-formed, an encoding feedparser cannot
find, an element whose handling it does not model, xhtml or base64 content,
...), and the caller then runs the full feedparser path. Where feedparser
reads a document strictly but complains (a media type that is not XML's, an
encoding it had to override), the same complaint becomes the warning.

How it stays exact: it replays what feedparser's strict (SAX) parser does for
the elements it models -- element naming through feedparser's namespace
table, xml:base and xml:lang scoping, its text clean-ups -- and hands
feedparser-shaped dicts to the same mapping code parse.py uses. Where
feedparser's own behaviour lives in a pure helper (date parsing, URI joining,
the HTML look test), that helper is called rather than imitated. Embedded
HTML is kept as the feed gave it, as parse_feed asks of feedparser: its
relative links are resolved by sanitize_html, against the base recorded
with it. Tests compare both paths on the golden feeds, the seed blogs,
feedparser's own corpus and generated variations.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urljoin

import feedparser
from feedparser.api import StrictFeedParser
from feedparser.datetimes import _parse_date
from feedparser.encodings import lazy_chardet_encoding
from feedparser.exceptions import CharacterEncodingOverride, NonXMLContentType
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin, make_safe_absolute_uri
from feedparser.util import FeedParserDict
from lxml import etree

from aggregator import speedups
from aggregator.parse import (
    _SURROGATE_REF,
    _THREAD_NS,
    _WARNING_CHARS,
    MAX_ENTRIES,
    _alternate_link,
    _author,
    _bozo_warning,
    _clean,
    _clean_opt,
    _comments_feed,
    _count,
    _text,
    _xml_entry,
)
from aggregator.types import ParsedFeed
from aggregator.urls import fast_urljoin

__all__ = ["fast_parse"]

# The replay below was checked against this feedparser series only; another
# version may name or store things differently, so it turns the fast path off.
_FEEDPARSER_SERIES = "6.0."
_ENABLED = feedparser.__version__.startswith(_FEEDPARSER_SERIES)

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                          load_dtd=False, remove_comments=True, remove_pis=True,
                          recover=False, strip_cdata=True)

_ATOM_NS = "http://www.w3.org/2005/Atom"
_XLINK_NS = "http://www.w3.org/1999/xlink"
_USERLAND = "http://backend.userland.com/rss"
#: Elements feedparser stores generically that parse.py reads.
_READ_GENERIC = frozenset({"wfw_commentrss", "slash_comments", "ttl", "feedburner_origlink"})

# feedparser's table of namespaces it knows, by lower-cased URI -> its prefix.
_KNOWN_NS: dict[str, str] = {uri.lower(): prefix
                             for uri, prefix in _FeedParserMixin.namespaces.items()}
# Element names feedparser has a handler for; everything else it stores generically.
_HANDLED = frozenset(
    {name[len("_start_"):] for name in dir(StrictFeedParser) if name.startswith("_start_")}
    | {name[len("_end_"):] for name in dir(StrictFeedParser) if name.startswith("_end_")})
_RELATIVE_URI_KEYS = frozenset(_FeedParserMixin.can_be_relative_uri)
_HTML_CONTENT_TYPES = frozenset(_FeedParserMixin.html_types)
_KEYMAP = frozenset(FeedParserDict.keymap)
_looks_like_html: Callable[[str], bool] = _FeedParserMixin.looks_like_html

# Keys of an entry or the feed that parse.py reads: a generic element landing
# on one of them changes the result in ways not replayed here.
_ENTRY_KEYS = frozenset({
    "id", "link", "links", "title", "title_detail", "content", "summary", "summary_detail",
    "author", "author_detail", "authors", "published", "published_parsed", "created",
    "created_parsed", "updated", "updated_parsed", "tags", "language", "guidislink",
})
_FEED_KEYS = frozenset({"title", "title_detail", "link", "links", "language", "author",
                        "author_detail", "authors", "id", "guidislink"})
# Generic elements whose text parse.py reads, replayed like feedparser's pop().
_COUNTED_SUFFIXES = ("_in-reply-to", "_total")

_DATE_KEYS = {
    "pubdate": "published", "published": "published", "issued": "published",
    "dcterms_issued": "published",
    "updated": "updated", "modified": "updated", "lastbuilddate": "updated",
    "dc_date": "updated", "dcterms_modified": "updated",
    "created": "created", "dcterms_created": "created",
}
_AUTHOR_KEYS = frozenset({"author", "dc_creator", "dc_author", "managingeditor"})
_TITLE_KEYS = frozenset({"title", "dc_title"})
_SUMMARY_KEYS = {"description": "text/html", "dc_description": "text/html",
                 "media_description": "text/html", "summary": "text/plain",
                 "itunes_summary": "text/plain"}
_CATEGORY_KEYS = frozenset({"category", "dc_subject", "keywords"})
_LANGUAGE_KEYS = frozenset({"language", "dc_language"})
_PERSON_PARTS = {"name": "name", "email": "email", "uri": "href", "url": "href",
                 "homepage": "href"}
# Feed-level elements feedparser handles that change nothing parse.py reads,
# provided they hold text only.
_IGNORED_FEED_LEAVES = frozenset({
    "description", "dc_description", "subtitle", "tagline", "rights", "copyright",
    "dc_rights", "generator", "updated", "modified", "lastbuilddate", "dc_date",
    "dcterms_modified", "published", "pubdate", "issued", "dcterms_issued", "created",
    "dcterms_created", "category", "dc_subject", "keywords", "cloud", "webmaster",
    "dc_publisher", "info", "feedburner_browserfriendly", "icon", "logo",
})
# Channel elements feedparser's summary logic sees (RSS): see _feed_children.
_FEED_SUMMARY_KEYS = frozenset({"description", "dc_description", "itunes_summary"})
# The same inside an entry.
_IGNORED_ENTRY_LEAVES = frozenset({"rights", "copyright", "dc_rights", "dc_publisher",
                                   "dcterms_valid"})
# iTunes elements of an entry that feedparser reads as its publisher, tags or
# author's parts, in ways not replayed here. (Its author, summary and keywords
# are replayed: they are those of most podcast episodes.)
_ITUNES_READ_IN_ENTRY = frozenset({"itunes_category", "itunes_owner", "itunes_name",
                                   "itunes_email"})
#: The scheme feedparser gives the tags it makes of itunes:keywords.
_ITUNES_SCHEME = "http://www.itunes.com/"
# Inside media:content: stored by feedparser under keys parse.py never reads.
_MEDIA_PARTS = frozenset({"media_thumbnail", "media_credit", "media_copyright",
                          "media_rating", "media_license", "media_restriction",
                          "media_hash", "media_player"})
# What a media:content or media:group may hold (see _media_part).
_MEDIA_BELOW = _MEDIA_PARTS | {"media_title", "media_description"}
#: feedparser's names for the versions an <rss> root states (else "rss").
_RSS_VERSIONS = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}
_IMAGE_PARTS = frozenset({"url", "title", "link", "width", "height", "description"})
_TEXTINPUT_PARTS = frozenset({"title", "description", "name", "link"})
_ADMIN_KEYS = frozenset({"admin_generatoragent", "admin_errorreportsto"})

_XML_DECLARATION = re.compile(rb"<\?xml[^>]*?>")
_XML_ENCODING = re.compile(rb"^<\?.*encoding=['\"](.*?)['\"].*\?>")
_WIDE_ENCODINGS = frozenset({"u16", "utf-16", "utf16", "utf_16", "u32", "utf-32", "utf32",
                             "utf_32", "iso-10646-ucs-2", "iso-10646-ucs-4", "csucs4",
                             "csunicode", "ucs-2", "ucs-4"})
_XML_TYPES = frozenset({"application/xml", "application/xml-dtd",
                        "application/xml-external-parsed-entity"})
_TEXT_XML_TYPES = frozenset({"text/xml", "text/xml-external-parsed-entity"})
#: Where feedparser asks chardet, when it is installed, for its guess.
_CHARDET = object()
_CHARDET_INSTALLED = lazy_chardet_encoding is not None
_CP1252_RANGE = re.compile("[\x80-\x9f]")
#: Gives back text with no control character (C1's among them) as it is.
_strip_controls = speedups.strip_controls
_LINK_REF = re.compile("&([A-Za-z0-9_]+);")


class _Unsure(Exception):
    """This document needs the full feedparser path."""


class _AuthorContext:
    """Just enough of a feedparser parser to run its author splitter on one dict."""

    __slots__ = ("context",)

    def __init__(self, context: FeedParserDict) -> None:
        self.context = context

    def _get_context(self) -> FeedParserDict:
        return self.context


_sync_author_detail: Callable[[_AuthorContext], None] = _FeedParserMixin._sync_author_detail


def fast_parse(body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed | None:
    """Parse a plain RSS 2.0 / Atom 1.0 document the way ``parse_feed`` would.

    Returns exactly what ``parse_feed(body, headers, url)`` returns, or None
    when this fast path is not sure of that; the caller then uses parse_feed.
    Never raises.
    """
    if not _ENABLED:
        return None
    try:
        return _Replay(body, {k.lower(): v for k, v in headers.items()}, url).run()
    except _Unsure:
        return None
    except Exception:  # any surprise means "not sure": the full path decides
        return None


# --------------------------------------------------------------------------- bytes -> tree


def _decode(body: bytes, headers: Mapping[str, str]) -> tuple[bytes, str | None]:
    """The body as UTF-8 without its XML declaration, as feedparser would read it.

    Mirrors feedparser's choice of encoding (RFC 3023, the declaration, then
    its fixed list of fallbacks) and the complaint it then records: a media
    type that is not XML's, or an encoding it had to override (text/xml
    without a charset is US-ASCII by RFC 3023, and nearly every such feed is
    in fact UTF-8). Returns the data and that complaint, as parse.py words
    it, or None. Refuses what feedparser reads with another parser.
    """
    data = body
    bom_encoding = ""
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
        bom_encoding = "utf-8"
    elif data[:2] in (b"\xfe\xff", b"\xff\xfe") or data[:4] in (
            b"\x4c\x6f\xa7\x94", b"\x00\x3c\x00\x3f", b"\x3c\x00\x3f\x00",
            b"\x00\x00\x00\x3c", b"\x3c\x00\x00\x00"):
        raise _Unsure  # UTF-16/32 and EBCDIC: rare, left to feedparser
    declared = _XML_ENCODING.match(data)
    xml_encoding = declared.group(1).decode("utf-8").lower() if declared else ""
    if xml_encoding in _WIDE_ENCODINGS:
        raise _Unsure
    header = headers.get("content-type")
    content_type, charset = _content_type(header)
    acceptable = True
    if content_type is None:
        # feedparser always has headers here (parse.py passes Content-Location).
        encoding = xml_encoding or "iso-8859-1"
        acceptable = False
    elif content_type in _XML_TYPES or (content_type.startswith("application/")
                                        and content_type.endswith("+xml")):
        encoding = charset or xml_encoding or "utf-8"
    elif content_type in _TEXT_XML_TYPES or (content_type.startswith("text/")
                                             and content_type.endswith("+xml")):
        encoding = charset or "us-ascii"
    elif content_type.startswith("text/"):
        encoding = charset or "us-ascii"
        acceptable = False
    else:
        encoding = xml_encoding or "utf-8"
        acceptable = False
    if "gb2312" in (encoding.lower(), xml_encoding):
        raise _Unsure  # feedparser reads it as gb18030
    complaint: Exception | None = None
    if not acceptable:
        complaint = NonXMLContentType(
            "no Content-type specified" if header is None
            else f"{header} is not an XML media type")
    tried: list[str] = []
    for proposed in (encoding, xml_encoding, bom_encoding, _CHARDET, "utf-8",
                     "windows-1252", "iso-8859-2"):
        if proposed is _CHARDET:
            if _CHARDET_INSTALLED:
                raise _Unsure  # its guess is not replayed here
            continue
        if not proposed or proposed in tried:
            continue
        tried.append(proposed)
        try:
            text = data.decode(proposed)
        except (UnicodeDecodeError, LookupError):
            continue
        break
    else:
        raise _Unsure  # feedparser gives up on the encoding and reads it leniently
    if proposed != encoding:
        complaint = CharacterEncodingOverride(
            f"document declared as {encoding}, but parsed as {proposed}")
    if codecs.lookup(proposed).name != "utf-8":
        data = text.encode("utf-8")
    declaration = _XML_DECLARATION.match(data)
    return (data[declaration.end():] if declaration else data,
            None if complaint is None else _bozo_warning(complaint))


def _content_type(value: str | None) -> tuple[str | None, str]:
    """Media type and charset as feedparser splits them (case kept, like feedparser)."""
    if value is None:
        return None, ""
    chunks = value.split(";")
    charset = ""
    for chunk in chunks[1:]:
        key, _, val = chunk.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip("\"'")
    return chunks[0].strip(), charset


# --------------------------------------------------------------------------- replay


class _Replay:
    """One document replayed as feedparser's strict parser would read it."""

    def __init__(self, body: bytes, headers: dict[str, str], url: str) -> None:
        self.headers = headers
        self.url = url
        self.base = urljoin(url, headers.get("content-location", "")) or url
        self.body = body
        self.version = ""
        # feedparser's namespace bookkeeping: prefix -> URI in use, and
        # document prefix -> its own prefix for namespaces it knows.
        self.in_use: dict[str, str] = {}
        self.prefix_map: dict[str | None, str] = {}
        self.names: dict[str, tuple[str, bool]] = {}
        self.feed: dict[str, Any] = {}
        self.entries: list[dict[str, Any]] = []
        self.is_atom = False
        self.is_rdf = False
        self.same_base: dict[str, str] = {}
        self.scan_declarations = False
        self.complaint: str | None = None
        # feedparser's hasContent (see _entry), and whether the channel has a
        # summary (an itunes:summary): a description or summary after it is
        # read as the channel's content, which sets hasContent until the end
        # of the next item.
        self.has_content = False
        self.feed_summary = False
        # feedparser's title depth in the current entry: set by its own
        # non-empty title, reset by an RSS <source>. While set, a media:title
        # (at its depth or below) is ignored; else it is read, or overwrites
        # the title's detail, which is left to feedparser.
        self.title_depth_set = False

    # ------------------------------------------------------------------ driver

    def run(self) -> ParsedFeed:
        if not self.body or not self.base:
            raise _Unsure
        body = self.body
        if b"&#" in body:  # as parse.py does before feedparser sees the bytes
            body = _SURROGATE_REF.sub(b"&#xFFFD;", body)
        data, self.complaint = _decode(body, self.headers)
        try:
            root = etree.fromstring(data, _PARSER)
        except (etree.XMLSyntaxError, ValueError) as exc:
            raise _Unsure from exc
        docinfo = root.getroottree().docinfo
        if docinfo.doctype or docinfo.internalDTD is not None:
            raise _Unsure
        # Declarations below the root change feedparser's naming as they are
        # met; they are replayed element by element only when present.
        root_end = data.find(b">") + 1
        self.scan_declarations = b"xmlns" in data[root_end:] if root_end else True

        language = self.headers.get("content-language") or None
        base = self.base
        if language:
            self.feed["language"] = language.replace("_", "-")
        self._declare(root, None)
        key = self._key(root)
        attrs = self._attrs(root)
        base, lang = self._scope(attrs, base, language)
        if lang:
            self.feed["language"] = lang.replace("_", "-")
        if key == "rss":
            self._rss(root, attrs, base, lang)
        elif key == "feed":
            self._atom(root, base, lang)
        elif key == "rdf_rdf" and not lang:
            # (feedparser takes the language of an <rdf:RDF> only as it names it.)
            self._rdf(root, base, lang)
        else:
            raise _Unsure
        return self._result()

    def _rss(self, root: etree._Element, attrs: dict[str, str], base: str,
             lang: str | None) -> None:
        # feedparser's _start_rss. Its handlers ask only whether the version
        # starts with "rss", so 0.9x and a missing version read as 2.0 does.
        if not self.version or not self.version.startswith("rss"):
            stated = attrs.get("version", "")
            self.version = _RSS_VERSIONS.get(stated) or (
                "rss20" if stated.startswith("2.") else "rss")
        channels = 0
        for child in root:
            self._declare(child, root)
            if self._key(child) != "channel":
                # A host's <script> or tracking element beside the channel:
                # feedparser stores such an element's text only inside the
                # channel, and its attributes under its name, unread here.
                self._outside_channel(child)
                continue
            channels += 1
            child_attrs = self._attrs(child)
            if "lastmod" in child_attrs or "href" in child_attrs:
                raise _Unsure
            child_base, child_lang = self._scope(child_attrs, base, lang)
            self._feed_children(child, child_base, child_lang)
        if channels != 1:
            raise _Unsure

    def _rdf(self, root: etree._Element, base: str, lang: str | None) -> None:
        # RSS 1.0: the channel first, then its items, image and text input
        # beside it. feedparser reads the items as it reads RSS 2.0's; the
        # image and text input land in dictionaries parse.py never reads.
        if self.version != "rss10" or any(
                uri.lower() == _ATOM_NS.lower() for uri in root.nsmap.values() if uri):
            raise _Unsure  # the version follows declaration order, which lxml does not keep
        self.is_rdf = True
        channels = 0
        for child in root:
            self._declare(child, root)
            key = self._key(child)
            attrs = self._attrs(child)
            child_base, child_lang = self._scope(attrs, base, lang)
            if key == "channel" and not channels and not self.entries \
                    and "lastmod" not in attrs and "href" not in attrs:
                channels += 1
                self._feed_children(child, child_base, child_lang)
            elif key == "item" and channels:
                self._entry(child, attrs, child_base, child_lang)
            elif key == "image":
                self._image(child, child_base, child_lang)
            elif key == "textinput":
                self._textinput(child)
            else:
                raise _Unsure
        if channels != 1:
            raise _Unsure

    def _outside_channel(self, element: etree._Element) -> None:
        key = self._key(element)
        if key in _HANDLED or key in _KEYMAP or key in _FEED_KEYS or key in _READ_GENERIC \
                or key.endswith(_COUNTED_SUFFIXES):
            raise _Unsure
        for child in element:
            self._declare(child, element)
            self._outside_channel(child)

    def _atom(self, root: etree._Element, base: str, lang: str | None) -> None:
        if self.version != "atom10" or root.tag != f"{{{_ATOM_NS}}}feed":
            raise _Unsure
        self.is_atom = True
        self._feed_children(root, base, lang)

    def _result(self) -> ParsedFeed:
        raw_entries = self.entries
        warnings = [self.complaint] if self.complaint else []
        if len(raw_entries) > MAX_ENTRIES:
            warnings.append(f"the feed has {len(raw_entries)} entries; only the first "
                            f"{MAX_ENTRIES} were read")
            raw_entries = raw_entries[:MAX_ENTRIES]
        thread_prefixes = tuple(prefix for prefix, uri in self.in_use.items()
                                if prefix and uri == _THREAD_NS)
        feed = self.feed
        feed_author = _author(feed) if self.is_atom else None
        entries = tuple(_xml_entry(entry, self.base, thread_prefixes, feed_author)
                        for entry in raw_entries)
        return ParsedFeed(
            format=self.version,
            title=_clean(_text(feed.get("title"))),
            link=_clean_opt(_alternate_link(feed)),
            language=_clean_opt(_text(feed.get("language")) or None),
            entries=entries,
            ttl_minutes=_count(feed.get("ttl")),
            comments_feed_url=_clean_opt(_comments_feed(feed)),
            warning=_clean_opt("; ".join(warnings)[:2 * _WARNING_CHARS] or None),
        )

    # ------------------------------------------------------------------ naming

    def _declare(self, element: etree._Element, parent: etree._Element | None) -> None:
        """Replay feedparser's startPrefixMapping for what ``element`` declares."""
        if parent is not None and not self.scan_declarations:
            return
        nsmap = element.nsmap
        if parent is not None:
            inherited = parent.nsmap
            declared = {p: u for p, u in nsmap.items() if inherited.get(p) != u}
            if not declared:
                return
        else:
            declared = nsmap
        for prefix, uri in declared.items():
            if not uri:
                continue
            if uri == _XLINK_NS:
                raise _Unsure  # feedparser turns these into attributes
            self._track(prefix or None, uri, replay=parent is not None)
        self.names.clear()

    def _track(self, prefix: str | None, uri: str, replay: bool) -> None:
        lower = uri.lower()
        if not self.version:
            if (prefix, lower) == (None, "http://my.netscape.com/rdf/simple/0.9/"):
                self.version = "rss090"
            elif lower == "http://purl.org/rss/1.0/":
                self.version = "rss10"
            elif lower == _ATOM_NS.lower():
                self.version = "atom10"
        if "backend.userland.com/rss" in lower:
            uri = lower = _USERLAND
        known = _KNOWN_NS.get(lower)
        if known is not None:
            if replay and self.prefix_map.get(prefix, known) != known:
                raise _Unsure
            self.prefix_map[prefix] = known
            # The default namespace ("") names nothing: feedparser looks
            # prefixes up only by non-empty keys (element names, thr:).
            if replay and known and self.in_use.get(known, uri) != uri:
                raise _Unsure
            self.in_use[known] = uri
        else:
            # A default namespace redeclared below the root is common
            # (WordPress's <post-id xmlns="com-wordpress:feed-additions:1">);
            # feedparser overwrites its "" entry, which nothing reads.
            key = prefix or ""
            if replay and key and self.in_use.get(key, uri) != uri:
                raise _Unsure
            self.in_use[key] = uri

    def _key(self, element: etree._Element) -> str:
        """feedparser's name for an element: "title", "dc_creator", "thr_total" ..."""
        tag = element.tag
        if not isinstance(tag, str):
            raise _Unsure
        cached = self.names.get(tag)
        if cached is not None:
            return cached[0]
        if tag[0] == "{":
            namespace, _, local = tag[1:].partition("}")
        else:
            namespace, local = "", tag
        lower_ns = namespace.lower()
        if "backend.userland.com/rss" in lower_ns:
            namespace = lower_ns = _USERLAND
        local = local.lower()
        prefix = _KNOWN_NS.get(lower_ns)
        if prefix:
            name = f"{prefix.lower()}:{local}"
        elif namespace:
            name = local
            for given, value in self.in_use.items():
                if given and value == namespace:
                    name = f"{given}:{local}".lower()
                    break
        else:
            name = local
        head, colon, suffix = name.partition(":")
        if colon:
            mapped = self.prefix_map.get(head, head)
            key = f"{mapped}_{suffix}" if mapped else suffix
        else:
            key = name
        self.names[tag] = (key, bool(colon))
        return key

    def _attrs(self, element: etree._Element) -> dict[str, str]:
        """Attributes as feedparser's strict parser hands them to its handlers."""
        attrib = element.attrib
        if not attrib:
            return {}
        attrs: dict[str, str] = {}
        for name, value in attrib.items():
            if name[0] == "{":
                namespace, _, local = name[1:].partition("}")
                prefix = _KNOWN_NS.get(namespace.lower(), "")
                keys = (f"{prefix}:{local}".lower(), local.lower()) if prefix \
                    else (local.lower(),)
            else:
                keys = (name.lower(),)
            for key in keys:
                if key in attrs:
                    raise _Unsure  # two attributes collapse into one key
                attrs[key] = value.lower() if key in ("rel", "type") else value
        return attrs

    def _scope(self, attrs: dict[str, str], base: str,
               lang: str | None) -> tuple[str, str | None]:
        """xml:base and xml:lang of an element, inherited as feedparser tracks them."""
        stated = attrs.get("xml:base", attrs.get("base"))
        if stated:
            base = (make_safe_absolute_uri(base, stated) or base) if base \
                else _join(base, stated)
        elif base:
            same = self.same_base.get(base)
            if same is None:
                same = make_safe_absolute_uri(base, base) or base
                self.same_base[base] = same
            base = same
        given = attrs.get("xml:lang", attrs.get("lang"))
        if given == "":
            lang = None
        elif given is not None:
            lang = given
        return base, lang

    # ------------------------------------------------------------------ feed level

    def _feed_children(self, parent: etree._Element, base: str, lang: str | None) -> None:
        feed = self.feed
        titles = authors = ids = 0
        for child in parent:
            self._declare(child, parent)
            key = self._key(child)
            attrs = self._attrs(child)
            child_base, child_lang = self._scope(attrs, base, lang)
            if key in ("item", "entry"):
                self._entry(child, attrs, child_base, child_lang)
            elif key in _TITLE_KEYS:
                titles += 1
                self._content(child, attrs, child_base, child_lang, feed, "title", "text/plain")
            elif key == "link":
                self._link(child, attrs, child_base, feed, in_entry=False)
            elif key in _LANGUAGE_KEYS:
                feed["language"] = _finish(_leaf_text(child))
            elif key in _AUTHOR_KEYS:
                authors += 1
                self._author(child, attrs, child_base, feed, in_entry=False)
            elif key in ("id", "guid"):
                ids += 1
                self._guid(child, attrs, child_base, feed, in_entry=False)
            elif key == "image":
                self._image(child, child_base, child_lang)
            elif key == "textinput":
                self._textinput(child)
            elif key == "items" and self.is_rdf:
                self._rdf_items(child)
            elif key in _ADMIN_KEYS and self.is_rdf:
                # Movable Type's generator: feedparser files its rdf:resource
                # as the feed's generator when the element starts, unread here.
                if len(child) or _has_text(child):
                    raise _Unsure
            elif key == "contributor":
                self._contributor(child, child_base, child_lang)
            elif key in _FEED_SUMMARY_KEYS and not self.is_atom:
                # Read as the channel's subtitle, summary or content, none of
                # which parse.py reads; only the state it may leave counts.
                if len(child):
                    raise _Unsure
                if self.feed_summary and not self.has_content:
                    self.has_content = True
                elif key == "itunes_summary":
                    self.feed_summary = True
            elif key == "content_encoded" and not self.is_atom:
                # A podcast channel's show notes: the channel's content (and,
                # copied, its summary), unread; the state lasts into the first item.
                if len(child) or "type" in attrs:
                    raise _Unsure
                self.has_content = self.feed_summary = True
            elif key in _IGNORED_FEED_LEAVES:
                if len(child):
                    raise _Unsure
            elif key.startswith("itunes_") and not self.is_atom:
                # Substack and podcast feeds: feedparser files these as the
                # feed's author, publisher, tags and image, none of which
                # parse.py reads of an RSS feed.
                self._itunes(child)
            else:
                self._generic(child, attrs, key, child_base, feed, _FEED_KEYS, in_entry=False)
        # An RSS channel's author is never read by parse.py: <author> beside
        # <dc:creator> (Laminas) may stay. An Atom feed's is every entry's default.
        if titles > 1 or (authors > 1 and self.is_atom) or ids > 1:
            raise _Unsure

    def _image(self, image: etree._Element, base: str, lang: str | None) -> None:
        # Its title, link and url land in feed["image"], which parse.py never reads.
        for child in image:
            self._declare(child, image)
            key = self._key(child)
            if key not in _IMAGE_PARTS or len(child):
                raise _Unsure
            if key == "link" and self._attrs(child):
                raise _Unsure

    def _rdf_items(self, element: etree._Element) -> None:
        # RSS 1.0's list of the items' URIs. feedparser files it under "items"
        # (its alias of "entries", in the feed's dictionary, not the entries
        # list) and each rdf:li's attributes under "rdf_li": unread here.
        for sequence in element:
            self._declare(sequence, element)
            if self._key(sequence) not in ("rdf_seq", "rdf_bag") or self._attrs(sequence):
                raise _Unsure
            for item in sequence:
                self._declare(item, sequence)
                if self._key(item) != "rdf_li" or len(item):
                    raise _Unsure

    def _textinput(self, element: etree._Element) -> None:
        # Its parts land in feed["textinput"], which parse.py never reads; a
        # repeated one would meet feedparser's summary logic there.
        seen: set[str] = set()
        for child in element:
            self._declare(child, element)
            key = self._key(child)
            if key not in _TEXTINPUT_PARTS or key in seen or len(child) or self._attrs(child):
                raise _Unsure
            seen.add(key)

    def _contributor(self, element: etree._Element, base: str, lang: str | None) -> None:
        # Contributors land in "contributors", which parse.py never reads.
        if _has_text(element):
            raise _Unsure
        for child in element:
            self._declare(child, element)
            if self._key(child) not in _PERSON_PARTS or len(child):
                raise _Unsure
            self._scope(self._attrs(child), base, lang)

    # ------------------------------------------------------------------ entry level

    def _entry(self, item: etree._Element, attrs: dict[str, str], base: str,
               lang: str | None) -> None:
        if "lastmod" in attrs or "href" in attrs:
            raise _Unsure
        entry: dict[str, Any] = {}
        if attrs.get("rdf:about"):  # RSS 1.0's item URI is its id, as given
            entry["id"] = attrs["rdf:about"]
        self.entries.append(entry)
        self.title_depth_set = False
        counts: dict[str, int] = {}
        # self.has_content is feedparser's hasContent: set by content, cleared
        # when the item ends. A summary-like element arriving while the entry
        # has a summary but no content yet is read as content (a podcast's
        # description beside its itunes:summary).
        for child in item:
            self._declare(child, item)
            key = self._key(child)
            child_attrs = self._attrs(child)
            child_base, child_lang = self._scope(child_attrs, base, lang)
            if key in _TITLE_KEYS:
                group = "title"
                self._content(child, child_attrs, child_base, child_lang, entry, "title",
                              "text/plain")
                self.title_depth_set = bool(entry["title"])
            elif key == "link":
                group = ""
                self._link(child, child_attrs, child_base, entry, in_entry=True)
            elif key in ("id", "guid"):
                group = "id"
                self._guid(child, child_attrs, child_base, entry, in_entry=True)
            elif key in _SUMMARY_KEYS:
                # Repeats are replayed: all sit at one depth, so the last
                # summary wins, unless it becomes content.
                group = ""
                self._summary(child, child_attrs, child_base, child_lang, entry,
                              _SUMMARY_KEYS[key], below=False)
            elif key == "content_encoded":
                group = ""
                self.has_content = True
                self._content(child, child_attrs, child_base, child_lang, entry, "content",
                              "text/html")
            elif key == "content":
                group = ""
                if "src" in child_attrs:
                    raise _Unsure
                self.has_content = True
                self._content(child, child_attrs, child_base, child_lang, entry, "content",
                              "text/plain")
            elif key in _DATE_KEYS:
                group = _DATE_KEYS[key]
                value = _finish(_leaf_text(child))
                entry[group] = value
                entry[f"{group}_parsed"] = _parse_date(value)
            elif key in _AUTHOR_KEYS or key == "itunes_author":
                # Repeats replay as they are: each appends to "authors", the
                # last one's text wins "author", the first detail stays.
                # feedparser's itunes:author handler is its author handler.
                group = ""
                self._author(child, child_attrs, child_base, entry, in_entry=True)
            elif key == "contributor":
                group = ""
                self._contributor(child, child_base, child_lang)
            elif key == "itunes_keywords":
                group = ""
                self._itunes_keywords(child, child_attrs, entry)
            elif key == "source" and not self.is_atom:
                # RSS 2.0's <source url="...">Feed</source>: feedparser keeps it
                # under "source", which parse.py never reads. Atom's holds a
                # whole feed head, read in a mode not replayed here.
                group = ""
                if len(child):
                    raise _Unsure
                self.title_depth_set = False
            elif key in _CATEGORY_KEYS:
                group = ""
                self._category(child, child_attrs, entry)
            elif key in _LANGUAGE_KEYS:
                group = "language"
                entry["language"] = _finish(_leaf_text(child))
            elif key == "enclosure":
                group = ""
                if len(child):
                    raise _Unsure
                link = _enforce_href(dict(child_attrs))
                link["rel"] = "enclosure"
                entry.setdefault("links", []).append(link)
            elif key in _IGNORED_ENTRY_LEAVES:
                group = ""
                if len(child):
                    raise _Unsure
            elif key.startswith("itunes_") and key not in _ITUNES_READ_IN_ENTRY:
                group = ""
                self._itunes(child)
            elif key in ("media_content", "media_thumbnail"):
                group = ""
                if len(child):
                    if key != "media_content":
                        raise _Unsure
                    self._media_parts(child, child_base, child_lang, entry)
            elif key in _MEDIA_PARTS:
                # A photo credit beside media:content (WordPress news themes).
                group = ""
                if len(child):
                    raise _Unsure
            elif key == "media_title":
                # PeerTube's: ignored after the entry's own non-empty title
                # (see title_depth_set); else it is read as the title.
                group = ""
                if len(child) or not self.title_depth_set:
                    raise _Unsure
            elif key == "media_group":
                # YouTube's: feedparser has no state for the group itself.
                group = ""
                self._media_group(child, child_base, child_lang, entry)
            else:
                group = ""
                self._generic(child, child_attrs, key, child_base, entry, _ENTRY_KEYS,
                              in_entry=True)
            if group:
                counts[group] = counts.get(group, 0) + 1
                if counts[group] > 1:
                    raise _Unsure  # feedparser's precedence between repeats is subtle
        self.has_content = False

    def _content(self, element: etree._Element, attrs: dict[str, str], base: str,
                 lang: str | None, context: dict[str, Any], target: str,
                 default_type: str) -> None:
        """A title, summary or content element, as push_content/pop store it."""
        if len(element) or "mode" in attrs:
            raise _Unsure  # xhtml (child elements) or base64
        content_type = _map_content_type(attrs.get("type", default_type))
        if content_type not in ("text/plain", "text/html"):
            raise _Unsure
        language = lang.replace("_", "-") if lang else lang
        if target == "content" and content_type in ("text/plain", "text/html"):
            copy_to_summary = True
        else:
            copy_to_summary = False
        output = (element.text or "").strip()
        if not self.is_atom and content_type == "text/plain" and _looks_like_html(output):
            content_type = "text/html"
        output = _finish(output)
        detail = {"type": content_type, "language": language, "base": base, "value": output}
        if target == "content":
            context.setdefault("content", []).append(detail)
            if copy_to_summary:
                context.setdefault("summary", output)
        else:
            context[target] = output
            context[f"{target}_detail"] = detail

    def _link(self, element: etree._Element, attrs: dict[str, str], base: str,
              context: dict[str, Any], in_entry: bool) -> None:
        link = dict(attrs)
        link.setdefault("rel", "alternate")
        if link["rel"] == "self":
            link.setdefault("type", "application/atom+xml")
        else:
            link.setdefault("type", "text/html")
        link = _enforce_href(link)
        if "href" in link:
            link["href"] = _join(base, link["href"])
        context.setdefault("links", []).append(link)
        if "href" in link:
            if link.get("rel") == "alternate" \
                    and _map_content_type(link.get("type") or "") in _HTML_CONTENT_TYPES:
                context["link"] = link["href"]
            return
        # No href: the link is the element's text (RSS).
        output = _leaf_text(element)
        if output:
            output = _join(base, output)
        output = _finish(output)
        if in_entry:
            output = _LINK_REF.sub(r"&\g<1>", output.replace("&amp;", "&"))
            context["link"] = output
            if output:
                link["href"] = output
        else:
            output = _LINK_REF.sub(r"&\g<1>", output)
            context["link"] = output
            link["href"] = output

    def _guid(self, element: etree._Element, attrs: dict[str, str], base: str,
              context: dict[str, Any], in_entry: bool) -> None:
        is_link = attrs.get("ispermalink", "true") == "true"
        output = _leaf_text(element)
        if output and is_link:
            output = _join(base, output)
        output = _finish(output)
        context["id"] = output
        context.setdefault("guidislink", is_link and "link" not in context)
        if is_link:
            context.setdefault("link", output)

    def _author(self, element: etree._Element, attrs: dict[str, str], base: str,
                context: dict[str, Any], in_entry: bool) -> None:
        authors = context.setdefault("authors", [])
        authors.append({})
        lang = None
        seen: set[str] = set()
        for child in element:
            self._declare(child, element)
            key = self._key(child)
            part = _PERSON_PARTS.get(key)
            if part is None and not len(child) and not _has_text(child) \
                    and key not in _READ_GENERIC and not key.endswith(_COUNTED_SUFFIXES):
                # Blogger's <gd:image> avatar: feedparser keeps its attributes
                # under its name, beside what parse.py reads.
                self._generic(child, self._attrs(child), key, base, context,
                              _ENTRY_KEYS if in_entry else _FEED_KEYS, in_entry)
                continue
            if part is None or part in seen or len(child):
                raise _Unsure
            seen.add(part)
            child_base, _ = self._scope(self._attrs(child), base, lang)
            value = _leaf_text(child)
            if part == "href":
                if value:
                    value = _join(child_base, value)
                value = _finish(value)
                context["href"] = value
            self._save_author(context, part, value)
        own = _finish(_own_text(element))
        if own and len(element):
            raise _Unsure  # text mixed with name/email: feedparser's result is odd
        context["author"] = own
        self._sync_author(context)

    @staticmethod
    def _save_author(context: dict[str, Any], key: str, value: str) -> None:
        context.setdefault("author_detail", {})[key] = value
        _Replay._sync_author(context)
        context["authors"][-1][key] = value

    @staticmethod
    def _sync_author(context: dict[str, Any]) -> None:
        detail = context.get("authors", [{}])[-1]
        if detail:
            name, email = detail.get("name"), detail.get("email")
            if name and email:
                context["author"] = f"{name} ({email})"
            elif name:
                context["author"] = name
            elif email:
                context["author"] = email
            return
        author = context.get("author")
        if not author:
            return
        if "@" not in author:
            context.setdefault("author_detail", detail)
            detail["name"] = author
            return
        # "jane@example.com (Jane)": feedparser's own splitter, run on a scratch context.
        scratch = FeedParserDict(author=author, authors=[FeedParserDict()])
        _sync_author_detail(_AuthorContext(scratch))
        if "author_detail" in scratch:
            detail.update(scratch["author_detail"])
            context.setdefault("author_detail", detail)

    @staticmethod
    def _category(element: etree._Element, attrs: dict[str, str],
                  context: dict[str, Any]) -> None:
        tags = context.setdefault("tags", [])
        term, label = attrs.get("term"), attrs.get("label")
        scheme = attrs.get("scheme", attrs.get("domain"))
        if term or scheme or label:
            tag = {"term": term, "scheme": scheme, "label": label}
            if tag not in tags:
                tags.append(tag)
        value = _finish(_leaf_text(element))
        if not value:
            return
        if tags and not tags[-1]["term"]:
            tags[-1]["term"] = value
        else:
            tag = {"term": value, "scheme": None, "label": None}
            if tag not in tags:
                tags.append(tag)

    @staticmethod
    def _itunes_keywords(element: etree._Element, attrs: dict[str, str],
                         context: dict[str, Any]) -> None:
        """Comma-separated keywords, each a tag (feedparser's _end_itunes_keywords)."""
        if attrs:
            # feedparser then stores the attributes instead of its text, and
            # its end handler fails on the missing text.
            raise _Unsure
        tags = context.setdefault("tags", [])
        for term in _finish(_leaf_text(element)).split(","):
            term = term.strip()
            if term:
                tag = {"term": term, "scheme": _ITUNES_SCHEME, "label": None}
                if tag not in tags:
                    tags.append(tag)

    def _itunes(self, element: etree._Element) -> None:
        """An iTunes element, and iTunes elements only inside it; see the callers."""
        for part in element.iterdescendants():
            self._declare(part, part.getparent())
            if not self._key(part).startswith("itunes_"):
                raise _Unsure

    def _media_group(self, group: etree._Element, base: str, lang: str | None,
                     entry: dict[str, Any]) -> None:
        """A media:group (YouTube): a title, content, thumbnails, a description."""
        for part in group:
            self._declare(part, group)
            key = self._key(part)
            if key == "media_content":
                self._media_parts(part, base, lang, entry)
            elif key in _MEDIA_BELOW:
                self._media_part(part, key, base, lang, entry)
            else:  # YouTube's media:community, or anything feedparser stores unread
                self._generic(part, self._attrs(part), key, base, entry, _ENTRY_KEYS,
                              in_entry=True)

    def _media_parts(self, element: etree._Element, base: str, lang: str | None,
                     entry: dict[str, Any]) -> None:
        """What a media:content holds (WordPress.com puts the author's avatar there)."""
        for part in element:
            self._declare(part, element)
            key = self._key(part)
            if key not in _MEDIA_BELOW:
                raise _Unsure
            self._media_part(part, key, base, lang, entry)

    def _media_part(self, part: etree._Element, key: str, base: str, lang: str | None,
                    entry: dict[str, Any]) -> None:
        """A media element below an entry's own children.

        feedparser reads a media:title there as the entry's title unless the
        entry already has a non-empty one (at a shallower depth), and a
        media:description with its description handler: the summary if the
        entry has none, else its content if it has none. A summary recorded
        at a shallower depth is kept when the entry has content, but the
        detail is overwritten: that case is left to feedparser. The other
        parts admitted land on keys parse.py never reads.
        """
        if len(part):
            raise _Unsure
        if key == "media_title":
            if not self.title_depth_set:
                raise _Unsure
        elif key == "media_description":
            attrs = self._attrs(part)
            part_base, part_lang = self._scope(attrs, base, lang)
            self._summary(part, attrs, part_base, part_lang, entry, "text/html", below=True)

    def _summary(self, element: etree._Element, attrs: dict[str, str], base: str,
                 lang: str | None, entry: dict[str, Any], default_type: str,
                 below: bool) -> None:
        """A description or summary, as feedparser's handlers for them decide.

        The entry's summary, unless it has one and no content yet (see
        has_content): then its content. Below the entry's own children
        (``below``), a summary recorded higher up would be kept while its
        detail is overwritten: that is left to feedparser.
        """
        if "summary" in entry and not self.has_content:
            if "src" in attrs:
                raise _Unsure
            self.has_content = True
            self._content(element, attrs, base, lang, entry, "content", "text/plain")
        elif below and "summary" in entry:
            raise _Unsure
        else:
            self._content(element, attrs, base, lang, entry, "summary", default_type)

    def _generic(self, element: etree._Element, attrs: dict[str, str], key: str, base: str,
                 context: dict[str, Any], read_keys: frozenset[str], in_entry: bool) -> None:
        """An element feedparser has no handler for: stored under its name."""
        if key in _HANDLED or key in read_keys or key in _KEYMAP:
            raise _Unsure
        counted = key.endswith(_COUNTED_SUFFIXES) or key in _READ_GENERIC
        if counted:
            if len(element):
                raise _Unsure
            if attrs:
                context[key] = attrs
                return
            output = (element.text or "").strip()
            if output and key in _RELATIVE_URI_KEYS:
                output = _join(base, output)
            context[key] = _finish(output)
            return
        # Not read by parse.py; only what nests inside could matter.
        for child in element:
            self._declare(child, element)
            child_key = self._key(child)
            child_attrs = self._attrs(child)
            if child_key.endswith(_COUNTED_SUFFIXES) or child_key in _READ_GENERIC:
                raise _Unsure
            self._generic(child, child_attrs, child_key, base, context, read_keys, in_entry)


# --------------------------------------------------------------------------- helpers


def _join(base: str, uri: str) -> str:
    """feedparser's _urljoin(base, uri), without urllib in the plain cases."""
    return fast_urljoin(base, uri) or str(_urljoin(base, uri))


def _leaf_text(element: etree._Element) -> str:
    if len(element):
        raise _Unsure
    return (element.text or "").strip()


def _own_text(element: etree._Element) -> str:
    pieces = [element.text or ""]
    pieces.extend(child.tail or "" for child in element)
    return "".join(pieces).strip()


def _has_text(element: etree._Element) -> bool:
    return bool(_own_text(element))


def _map_content_type(value: str) -> str:
    value = value.lower()
    if value in ("text", "plain"):
        return "text/plain"
    if value == "html":
        return "text/html"
    if value == "xhtml":
        return "application/xhtml+xml"
    return value


def _enforce_href(attrs: dict[str, str]) -> dict[str, str]:
    href = attrs.get("url", attrs.get("uri", attrs.get("href")))
    if href:
        attrs.pop("url", None)
        attrs.pop("uri", None)
        attrs["href"] = href
    return attrs


def _finish(output: str) -> str:
    """feedparser's last touches on every text it stores.

    It undoes UTF-8 that was read as Latin-1 (when the text survives the
    round trip) and maps C1 controls to the Windows-1252 characters they
    usually stand for.
    """
    if output.isascii():
        return output
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        output = output.encode("iso-8859-1").decode("utf-8")
    # Text with no control character at all (strip_controls gives it back
    # as it is) has none of C1's: the compiled scan is faster than the regex.
    if ((_strip_controls is None or _strip_controls(output) is not output)
            and _CP1252_RANGE.search(output)):
        output = output.translate(_cp1252)
    return output
