"""The fast path (aggregator.fastparse) against the feedparser path, document by document.

fast_parse may decline any document (None) but must never disagree with
parse_feed on one it accepts. Every comparison below goes through
``differ``, which names the first field that differs. The inputs: the golden
feeds, the seed blogs' feeds, feedparser's own corpus (fetched like
test_corpus.py does) and generated variations of blog feeds. The embedded
HTML rewriter is also checked alone against feedparser's, on generated markup.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import pickle
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest
from corpus_support import (
    CORPUS_URL,
    headers_for,
)
from feedparser.urls import _urljoin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator import parse
from aggregator.errors import ParseError
from aggregator.fastparse import _join, fast_parse
from aggregator.parse import MAX_ENTRIES
from aggregator.types import ParsedFeed

# The reference: feedparser alone. Once parse_feed tries the fast path first,
# parse.py keeps the feedparser-only path under this name.
parse_feed = getattr(parse, "parse_feed_with_feedparser", parse.parse_feed)

GOLDEN = Path(__file__).parent / "golden"
SEEDBLOGS = Path(__file__).parent / "fixtures" / "seedblogs"
SEED_BASE = "http://127.0.0.1:1"
RSS_HEADERS = {"content-type": "application/rss+xml; charset=UTF-8"}
ATOM_HEADERS = {"content-type": "application/atom+xml; charset=UTF-8"}
FEED_URL = "https://blog.example/feed/"


def differ(fast: ParsedFeed, full: ParsedFeed | ParseError) -> str | None:
    """The first difference between two results, in words, or None when equal."""
    if isinstance(full, ParseError):
        return f"parse_feed refused the document ({full}) but fast_parse read it"
    for field in dataclasses.fields(ParsedFeed):
        mine, theirs = getattr(fast, field.name), getattr(full, field.name)
        if field.name == "entries" and len(mine) == len(theirs):
            for index, (entry, expected) in enumerate(zip(mine, theirs, strict=True)):
                for entry_field in dataclasses.fields(expected):
                    a, b = getattr(entry, entry_field.name), getattr(expected, entry_field.name)
                    if a != b:
                        return f"entries[{index}].{entry_field.name}: fast {a!r} != full {b!r}"
        elif mine != theirs:
            return f"{field.name}: fast {mine!r} != full {theirs!r}"
    return None


def compare(body: bytes, headers: dict[str, str], url: str) -> bool:
    """Assert agreement; True when the fast path accepted the document."""
    fast = fast_parse(body, headers, url)
    if fast is None:
        return False
    try:
        full: ParsedFeed | ParseError = parse_feed(body, headers, url)
    except ParseError as error:
        full = error
    difference = differ(fast, full)
    assert difference is None, f"{url}: {difference}"
    assert fast == full
    return True


# --------------------------------------------------------------------------- fixed inputs


GOLDEN_INPUTS = sorted(p for p in GOLDEN.iterdir()
                       if p.suffix in (".xml", ".json") and not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("source", GOLDEN_INPUTS, ids=lambda p: p.name)
def test_golden_documents_agree(source: Path) -> None:
    case = json.loads(source.with_name(source.stem + ".expected.json").read_text("utf-8"))
    compare(source.read_bytes(), case["headers"], case["url"])


def test_the_common_golden_feeds_take_the_fast_path() -> None:
    """Guards against a fast path that declines everything and so agrees vacuously."""
    accepted = set()
    for source in GOLDEN_INPUTS:
        case = json.loads(source.with_name(source.stem + ".expected.json").read_text("utf-8"))
        if compare(source.read_bytes(), case["headers"], case["url"]):
            accepted.add(source.name)
    assert {"wordpress_rss20.xml", "wordpress_comments_rss20.xml", "rss20_latin1.xml",
            "atom10_threading.xml", "rss10_rdf.xml"} <= accepted
    # Formats it leaves to feedparser on purpose.
    assert not accepted & {"rss091.xml", "atom03.xml", "jsonfeed10.json"}


def seed_documents() -> list[tuple[str, str, str]]:
    manifest = json.loads((SEEDBLOGS / "manifest.json").read_text("utf-8"))
    return sorted((path, doc["file"], doc["content_type"])
                  for path, doc in manifest["documents"].items()
                  if "html" not in doc["content_type"])


@pytest.mark.parametrize(("path", "file", "content_type"), seed_documents(),
                         ids=[d[1] for d in seed_documents()])
def test_seed_blog_feeds_agree(path: str, file: str, content_type: str) -> None:
    body = (SEEDBLOGS / file).read_bytes().replace(b"{{BASE}}", SEED_BASE.encode())
    compare(body, {"content-type": content_type}, SEED_BASE + path)


def test_seed_blog_feeds_mostly_take_the_fast_path() -> None:
    documents = seed_documents()
    accepted = 0
    for path, file, content_type in documents:
        body = (SEEDBLOGS / file).read_bytes().replace(b"{{BASE}}", SEED_BASE.encode())
        accepted += compare(body, {"content-type": content_type}, SEED_BASE + path)
    assert len(documents) >= 5
    assert accepted >= len(documents) - 2


# --------------------------------------------------------------------------- feedparser's corpus


def test_feedparser_corpus_agrees_where_accepted(corpus_dir: Path) -> None:
    """Every corpus file, the well-formed RSS and Atom 1.0 ones counted apart."""
    counts: Counter[str] = Counter()
    mismatches: list[str] = []
    for path in sorted(corpus_dir.rglob("*")):
        if not path.is_file() or path.suffix == ".py" or path.name.startswith("."):
            continue
        name = path.relative_to(corpus_dir).as_posix()
        group = ("wellformed " + name.split("/")[1]
                 if name.startswith(("wellformed/rss/", "wellformed/atom10/")) else "other")
        body = path.read_bytes()
        try:
            accepted = compare(body, headers_for(body), CORPUS_URL + name)
        except AssertionError as error:
            mismatches.append(str(error))
            continue
        counts[f"{group} {'fast' if accepted else 'fallback'}"] += 1
    print("\nfeedparser corpus through fast_parse:", dict(sorted(counts.items())))
    assert mismatches == []
    # The fast path must carry its weight on plain feeds (measured: 130 of 191 RSS,
    # 132 of 240 Atom 1.0); a lost corpus must not pass quietly either.
    assert counts["wellformed rss fast"] >= 100
    assert counts["wellformed atom10 fast"] >= 100
    assert counts["wellformed rss fallback"] + counts["wellformed rss fast"] >= 180
    assert counts["wellformed atom10 fallback"] + counts["wellformed atom10 fast"] >= 220


# --------------------------------------------------------------------------- generated feeds

TEXTS = st.sampled_from([
    "Open source dringt door", "Tom &amp; Jerry", "AT&amp;amp;T", "&lt;b&gt;Vet&lt;/b&gt; nieuws",
    "<![CDATA[Fish & <i>chips</i>]]>", "<![CDATA[A <b>bold</b> claim &amp; more]]>",
    "Caf\u00e9 \u2013 \u201cquoted\u201d", "&#8217;s nieuws &#8230;", "&#x2019;t is &#169; 2013",
    "  padded  ", "", "x &lt; y &amp;&amp; y &gt; z", "&lt;p&gt;para&lt;/p&gt;",
    "M\u00c3\u00bcnchen",
    "\u0080\u0099 ctrl", "&amp;nbsp; and &amp;copy;", "<![CDATA[&nbsp;raw entity]]>",
    "&lt;script&gt;alert(1)&lt;/script&gt;", "Ein &lt;em&gt;kurzer&lt;/em&gt; Titel",
    "mail@example.com", "&lt;a href=\"/rel\"&gt;link&lt;/a&gt;",
])
HTML_BODIES = st.sampled_from([
    '<p>Plain <strong>post</strong> with <a href="/relative/path">a link</a>.</p>',
    '<p><img src="img/x.jpg" alt="X" width="10" height="10" /><br/>Line<br />two</p>',
    "<p>Quote: &#8220;hi&#8221; &amp; &nbsp;bye &hellip; &#39;single&#39; &#34;dq&#34;</p>",
    "<div class='wp-caption' ID=\"c1\"><IMG SRC='/UP/A.PNG'></div><hr>",
    '<p>x < y and y > z & more</p><!-- a comment --><p>after</p>',
    '<p>odd entity &foo; &copy; &#150; &#x96; &#X41;</p>',
    '<a href="javascript:alert(1)">js</a> <a href="mailto:a@b.c">mail</a>',
    '<a href="//cdn.example/x" rel="NoFollow" TYPE="Text/HTML">cdn</a>',
    '<p title="a &amp; b &lt; c" data-x="1&2">attrs</p><input disabled>',
    "<p>Unbalanced <b>bold<i>italic</b></i></p></br></img>",
    '<iframe src="https://www.youtube.com/embed/x" allowfullscreen></iframe>',
    "<p>&#0; nul ref and &#55296; surrogate ref</p>",
    "<![CDATA[nested]]> <!DOCTYPE html> <?php echo 1; ?>",
    "<p>bare & ampersand &amp amp</p><p>&#123 short ref</p>",
    '<o:p></o:p><p align=center>unquoted</p><p/>',
    "<script>if (a < b && c > d) { x(); }</script>",
    "",
])
DATES = st.sampled_from([
    "Wed, 02 Jan 2013 08:15:00 +0000", "Fri, 27 May 2005 10:08:00 GMT",
    "Thu, 21 Apr 2005 09:14:00 +0200", "2 Jan 2013 08:15:00 EST", "Sun, 31 Feb 2013 10:00:00 GMT",
    "2013-01-02T08:15:00Z", "2013-01-02T08:15:00.123+02:00", "2013-01-02", "2013-01-02 08:15",
    "yesterday", "", "Mon, 01 Jan 0001 00:00:00 GMT", "2013-13-45T99:99:99Z",
    "Tue, 10 Jun 2003 04:00:00 -0700", "2003-12-31T10:14:55-08:00", "20030710T12:00:00Z",
])
LINKS = st.sampled_from([
    "https://blog.example/p/1/", "/p/2/", "p/3", "?p=4", "https://blog.example/a?x=1&amp;y=2",
    "", "  https://blog.example/spaced/  ", "javascript:alert(1)", "HTTPS://Blog.Example/Upper",
    "https://blog.example/a?b=1&amp;c;=2",
])
AUTHORS = st.sampled_from(["Marco Derksen", "", "femke@example.com (Femke Marcar)",
                           "Jane <jane@example.com>", "  Spaced Name  ", "M\u00fcller"])
LANGS = st.sampled_from([None, "", "nl", "de-DE", "en_US"])


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def rss_items(draw: st.DrawFn) -> str:
    parts: list[str] = []
    pieces: dict[str, str | None] = {
        "title": draw(maybe(TEXTS)),
        "link": draw(maybe(LINKS)),
        "guid": draw(maybe(LINKS)),
        "pubDate": draw(maybe(DATES)),
        "dc:date": draw(maybe(DATES)),
        "dc:creator": draw(maybe(AUTHORS)),
        "author": draw(maybe(AUTHORS)),
        "description": draw(maybe(HTML_BODIES)),
        "content:encoded": draw(maybe(HTML_BODIES)),
        "comments": draw(maybe(LINKS)),
        "wfw:commentRss": draw(maybe(LINKS)),
        "slash:comments": draw(maybe(st.sampled_from(["0", "12", " 3 ", "x", "-1"]))),
        "thr:total": draw(maybe(st.sampled_from(["4", "many"]))),
    }
    for name, value in pieces.items():
        if value is None:
            continue
        if name in ("description", "content:encoded"):
            text = draw(st.sampled_from([f"<![CDATA[{value}]]>", escape(value)]))
        elif name in ("title",):
            text = value
        else:
            text = escape(value)
        attrs = ""
        if name == "guid":
            attrs = draw(st.sampled_from(["", ' isPermaLink="false"', ' isPermaLink="true"']))
        parts.append(f"<{name}{attrs}>{text}</{name}>")
    for term in draw(st.lists(st.sampled_from(["Marketing", "Open source", "", "Caf\u00e9"]),
                              max_size=3)):
        domain = draw(st.sampled_from(["", ' domain="tags"']))
        parts.append(f"<category{domain}><![CDATA[{term}]]></category>")
    if draw(st.booleans()):
        parts.append('<enclosure url="/media/a.mp3" length="1" type="audio/mpeg"/>')
    if draw(st.booleans()):
        parts.append('<atom:link rel="replies" type="application/rss+xml" href="c/feed/"/>')
    if draw(st.booleans()):
        parts.append('<thr:in-reply-to ref="urn:x:1" href="/post/1" />')
    if draw(st.booleans()):  # WordPress.com / Jetpack
        parts.append('<post-id xmlns="com-wordpress:feed-additions:1">42</post-id>')
    if draw(st.booleans()):  # a podcast episode; the author and summary are read
        parts.append(draw(st.sampled_from([
            "<itunes:duration>12:00</itunes:duration><itunes:explicit>no</itunes:explicit>",
            '<itunes:image href="/ep.jpg"/><itunes:subtitle>s</itunes:subtitle>',
            "<itunes:summary>Andere samenvatting</itunes:summary>",
            "<itunes:summary><![CDATA[<p>Show notes</p>]]></itunes:summary>",
            "<itunes:author>Iemand anders</itunes:author>",
            "<itunes:keywords>marketing, podcast,, Marketing ,podcast</itunes:keywords>",
        ])))
    if draw(st.booleans()):  # a second summary, an RSS source, news and video sites' media
        parts.append(draw(st.sampled_from([
            "<description>Nog een beschrijving</description>",
            "<dc:description><![CDATA[<b>Vet</b>]]></dc:description>",
            '<source url="https://elders.example/feed/">Elders</source>',
            "<media:description>Media</media:description>",
            "<source>Zonder adres</source>",
        ])))
    if draw(st.booleans()):  # WordPress.com: the author's avatar
        parts.append(draw(st.sampled_from([
            '<media:content url="https://0.gravatar.com/avatar/a?s=96" medium="image">'
            '<media:title type="html">femke</media:title></media:content>',
            '<media:content url="/a.jpg"><media:credit role="author">F</media:credit>'
            '<media:thumbnail url="/t.jpg"/></media:content>',
            '<media:content url="/a.jpg"><media:description>d</media:description>'
            '</media:content>',
            "<media:group><media:title>m</media:title><media:description>&lt;i&gt;g&lt;/i&gt;"
            "</media:description><media:thumbnail url='/t.jpg'/></media:group>",
            "<media:content url='/v.mp4'><media:player url='/embed/1'/></media:content>"
            "<media:player url='/embed/1' height='200'>speler</media:player>",
            "<media:title>Video (media title)</media:title>",
            "<media:content url='/a.jpg' medium='image'/><media:credit>Foto: Anp</media:credit>"
            "<media:description>Onderschrift</media:description>",
            "<media:group><media:content url='/v.mp4'/><media:community>"
            "<media:statistics views='3'/></media:community></media:group>",
        ])))
    lang = draw(LANGS)
    base = draw(st.sampled_from(["", ' xml:base="https://other.example/dir/"', ' xml:base="sub/"']))
    lang_attr = f" xml:lang={quoteattr(lang)}" if lang is not None else ""
    draw(st.randoms()).shuffle(parts)
    return f"<item{base}{lang_attr}>{''.join(parts)}</item>"


@st.composite
def rss_documents(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    items = "".join(draw(st.lists(rss_items(), min_size=0, max_size=4)))
    channel = [
        f"<title>{draw(TEXTS)}</title>",
        f"<link>{escape(draw(LINKS))}</link>",
        "<description>Elke dag vers</description>",
    ]
    if draw(st.booleans()):
        channel.append(f"<language>{draw(st.sampled_from(['nl-NL', 'de', '']))}</language>")
    if draw(st.booleans()):
        channel.append(f"<ttl>{draw(st.sampled_from(['60', 'soon', '0']))}</ttl>")
    if draw(st.booleans()):
        channel.append('<atom:link href="/feed/" rel="self" type="application/rss+xml" />')
    if draw(st.booleans()):
        channel.append("<image><url>/logo.png</url><title>Logo</title><link>/</link></image>")
    if draw(st.booleans()):
        channel.append(f"<wfw:commentRss>{escape(draw(LINKS))}</wfw:commentRss>")
    if draw(st.booleans()):
        channel.append("<managingEditor>ed@example.com (Editor)</managingEditor>")
    if draw(st.booleans()):  # Laminas writes both
        channel.append("<author>ed@example.com (Editor)</author><dc:creator>Editor</dc:creator>")
    if draw(st.booleans()):  # a podcast channel's show notes
        channel.append("<content:encoded><![CDATA[<p>Over de show</p>]]></content:encoded>")
    if draw(st.booleans()):  # Substack writes these into every feed
        channel.append(draw(st.sampled_from([
            SUBSTACK_ITUNES,
            '<itunes:category text="Business"><itunes:category text="Marketing"/>'
            "</itunes:category><itunes:summary>Over merken</itunes:summary>",
            "<itunes:owner><title>Niet de titel</title></itunes:owner>",
        ])))
    draw(st.randoms()).shuffle(channel)
    encoding = draw(st.sampled_from(["utf-8", "UTF-8", "iso-8859-1", "windows-1252"]))
    declaration = draw(st.sampled_from([
        f'<?xml version="1.0" encoding="{encoding}"?>\n', "", '<?xml version="1.0"?>']))
    root_lang = draw(st.sampled_from(["", ' xml:lang="nl"']))
    version = draw(st.sampled_from([' version="2.0"'] * 4 + [' version="0.92"', ""]))
    text = (f'{declaration}<rss{version}{root_lang} '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
            'xmlns:atom="http://www.w3.org/2005/Atom" '
            'xmlns:slash="http://purl.org/rss/1.0/modules/slash/" '
            'xmlns:media="http://search.yahoo.com/mrss/" '
            'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
            'xmlns:thr="http://purl.org/syndication/thread/1.0">'
            f"<channel>{''.join(channel)}{items}</channel>{draw(BESIDE_CHANNEL)}</rss>")
    body = text.encode(encoding if declaration.startswith('<?xml version="1.0" encoding')
                       else "utf-8", "xmlcharrefreplace")
    charset = draw(st.sampled_from(["; charset=UTF-8", "", f"; charset={encoding}"]))
    media = draw(st.sampled_from(["application/rss+xml", "text/xml", "application/xml",
                                  "text/html", "application/octet-stream"]))
    headers = {"content-type": media + charset} if draw(st.integers(0, 9)) else {}
    if draw(st.booleans()):
        headers["content-language"] = draw(st.sampled_from(["nl", "de_DE"]))
    return body, headers


RSS10 = "http://purl.org/rss/1.0/"
RDF_ABOUTS = st.sampled_from(["https://blog.example/p/1/", "/p/2/", "", "urn:x:3"])


@st.composite
def rdf_documents(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """RSS 1.0 as Movable Type, laut.de and hand-written feeds write it."""
    items = []
    for item in draw(st.lists(rss_items(), min_size=0, max_size=4)):
        about = draw(maybe(RDF_ABOUTS))
        attrs = ' xmlns:atom="http://www.w3.org/2005/Atom"'  # declared below the root
        if about is not None:
            attrs += f" rdf:about={quoteattr(about)}"
        items.append(item.replace("<item", f"<item{attrs}", 1))
    channel = [
        f"<title>{draw(TEXTS)}</title>",
        f"<link>{escape(draw(LINKS))}</link>",
        "<description>Aktuelle News</description>",
        "<items><rdf:Seq>" + "".join(
            f'<rdf:li {draw(st.sampled_from(["rdf:resource", "resource"]))}="/p/{n}/"/>'
            for n in range(draw(st.integers(0, 3)))) + "</rdf:Seq></items>",
    ]
    for extra in ("<dc:language>de</dc:language>", "<dc:date>2009-07-04T21:01:02+01:00</dc:date>",
                  "<dc:creator></dc:creator>", "<dc:publisher>laut.de</dc:publisher>",
                  "<sy:updatePeriod>hourly</sy:updatePeriod>",
                  '<admin:generatorAgent rdf:resource="http://www.movabletype.org/?v=2.661" />',
                  '<image rdf:resource="/logo.gif" />', '<textinput rdf:resource="/search" />'):
        if draw(st.booleans()):
            channel.append(extra)
    draw(st.randoms()).shuffle(channel)
    beside = [f'<channel rdf:about="/">{"".join(channel)}</channel>', *items]
    if draw(st.booleans()):
        beside.insert(draw(st.integers(1, len(beside))),
                      '<image rdf:about="/logo.gif"><title>Logo</title><url>/logo.gif</url>'
                      "<link>/</link></image>")
    if draw(st.booleans()):
        beside.append('<textinput rdf:about="/search"><title>Suche</title>'
                      "<description>Suchen</description><name>q</name>"
                      "<link>/search</link></textinput>")
    default = draw(st.sampled_from([f'xmlns="{RSS10}"'] * 3 + [
        f'xmlns="{RSS10}" xmlns:atom="http://www.w3.org/2005/Atom"']))
    text = ('<?xml version="1.0" encoding="utf-8"?>'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            f"{default} "
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/" '
            'xmlns:admin="http://webns.net/mvcb/" '
            'xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
            'xmlns:slash="http://purl.org/rss/1.0/modules/slash/" '
            'xmlns:media="http://search.yahoo.com/mrss/" '
            'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
            'xmlns:thr="http://purl.org/syndication/thread/1.0">'
            f"{''.join(beside)}</rdf:RDF>")
    media = draw(st.sampled_from(["application/rdf+xml", "application/rss+xml", "text/xml"]))
    return text.encode("utf-8"), {"content-type": media + "; charset=utf-8"}


#: What hosts put after the channel (analytics), and elements feedparser would read.
BESIDE_CHANNEL = st.sampled_from(["", "", "<script>var a = 1;</script>",
                                  "<script src='/t.js'/>", "<ttl>9</ttl>",
                                  "<x><dc:creator>Iemand</dc:creator></x>"])
SUBSTACK_ITUNES = ("<itunes:owner><itunes:email><![CDATA[groei@substack.com]]></itunes:email>"
                   "<itunes:name><![CDATA[Femke]]></itunes:name></itunes:owner>"
                   "<itunes:author><![CDATA[Femke]]></itunes:author>"
                   "<itunes:block><![CDATA[Yes]]></itunes:block>")
#: Blogger's avatar, in the author of its feeds and of every entry.
BLOGGER_AVATAR = ('<gd:image rel="http://schemas.google.com/g/2005#thumbnail" width="16" '
                  'height="16" src="https://img1.blogblog.com/img/b16-rounded.gif"/>')


@st.composite
def atom_entries(draw: st.DrawFn) -> str:
    parts: list[str] = []
    title_type = draw(st.sampled_from(["", ' type="text"', ' type="html"', ' type="HTML"']))
    if draw(st.booleans()):
        parts.append(f"<title{title_type}>{draw(TEXTS)}</title>")
    for _ in range(draw(st.integers(0, 3))):
        rel = draw(st.sampled_from(["", ' rel="alternate"', ' rel="replies"', ' rel="self"',
                                    ' rel="enclosure"']))
        kind = draw(st.sampled_from(["", ' type="text/html"', ' type="application/atom+xml"']))
        count = draw(st.sampled_from(["", ' thr:count="5"', ' thr:count="x"']))
        parts.append(f"<link{rel}{kind}{count} href={quoteattr(draw(LINKS))}/>")
    if draw(st.booleans()):
        entry_id = draw(st.sampled_from(["tag:x,2013:1", "/p/9", "urn:uuid:1"]))
        parts.append(f"<id>{escape(entry_id)}</id>")
    for name in ("published", "updated"):
        if draw(st.booleans()):
            parts.append(f"<{name}>{escape(draw(DATES))}</{name}>")
    if draw(st.booleans()):
        name = escape(draw(AUTHORS))
        email = draw(st.sampled_from(["", "<email>a@b.example</email>"]))
        uri = draw(st.sampled_from(["", "<uri>/about/</uri>"]))
        avatar = draw(st.sampled_from(["", BLOGGER_AVATAR, "<gd:image/>",
                                       "<gd:image>x</gd:image>"]))
        parts.append(f"<author><name>{name}</name>{email}{avatar}{uri}</author>")
    # A second summary is read as content while the entry has none.
    for name in ("summary", "content", "summary"):
        if draw(st.booleans()):
            kind = draw(st.sampled_from(["", ' type="text"', ' type="html"']))
            parts.append(f"<{name}{kind}>{escape(draw(HTML_BODIES))}</{name}>")
    if draw(st.booleans()):  # YouTube
        parts.append(draw(st.sampled_from([
            "<media:group><media:title>Video</media:title><media:description>Over "
            "&lt;b&gt;merken&lt;/b&gt;</media:description><media:thumbnail url='/t.jpg'/>"
            "</media:group>",
            "<media:group><media:content url='/v.mp4' type='video/mp4'/><media:community>"
            "<media:starRating count='2' average='4'/></media:community></media:group>",
        ])))
    if draw(st.booleans()):
        parts.append('<category term="Marketing" label="M"/>')
    if draw(st.booleans()):
        parts.append(f"<thr:total>{draw(st.sampled_from(['2', 'none']))}</thr:total>")
    if draw(st.booleans()):
        parts.append('<thr:in-reply-to ref="tag:x,2013:1" href="/p/1/" type="text/html"/>')
    draw(st.randoms()).shuffle(parts)
    lang = draw(LANGS)
    lang_attr = f" xml:lang={quoteattr(lang)}" if lang is not None else ""
    base = draw(st.sampled_from(["", ' xml:base="/episodes/"']))
    return f"<entry{lang_attr}{base}>{''.join(parts)}</entry>"


@st.composite
def atom_documents(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    entries = "".join(draw(st.lists(atom_entries(), max_size=4)))
    head = [f"<title>{draw(TEXTS)}</title>", '<link rel="alternate" href="/"/>',
            "<id>tag:blog.example,2013:feed</id>", "<updated>2013-01-02T08:15:00Z</updated>"]
    if draw(st.booleans()):
        avatar = draw(st.sampled_from(["", BLOGGER_AVATAR]))
        head.append(f"<author><name>{escape(draw(AUTHORS))}</name>{avatar}</author>")
    if draw(st.booleans()):
        head.append('<link rel="replies" type="application/atom+xml" href="/comments/"/>')
    if draw(st.booleans()):
        head.append('<subtitle type="html">&lt;b&gt;sub&lt;/b&gt;</subtitle>')
    draw(st.randoms()).shuffle(head)
    base = draw(st.sampled_from(["", ' xml:base="https://videoblog.example.de/"']))
    lang = draw(st.sampled_from(["", ' xml:lang="de-DE"']))
    text = ('<?xml version="1.0" encoding="utf-8"?>'
            f'<feed xmlns="http://www.w3.org/2005/Atom"{base}{lang} '
            'xmlns:gd="http://schemas.google.com/g/2005" '
            'xmlns:media="http://search.yahoo.com/mrss/" '
            'xmlns:thr="http://purl.org/syndication/thread/1.0">'
            f"{''.join(head)}{entries}</feed>")
    media = draw(st.sampled_from(["application/atom+xml; charset=UTF-8", "text/xml",
                                  "application/xml", "text/html; charset=utf-8"]))
    return text.encode("utf-8"), {"content-type": media}


# AGGREGATOR_TEST_GENERATED_EXAMPLES=5000 for a longer search after a change here.
GENERATED = settings(
    max_examples=int(os.environ.get("AGGREGATOR_TEST_GENERATED_EXAMPLES", "250")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@GENERATED
@given(rss_documents())
def test_generated_rss_agrees(document: tuple[bytes, dict[str, str]]) -> None:
    body, headers = document
    compare(body, headers, FEED_URL)


@GENERATED
@given(rdf_documents())
def test_generated_rss10_agrees(document: tuple[bytes, dict[str, str]]) -> None:
    body, headers = document
    compare(body, headers, FEED_URL)


@GENERATED
@given(atom_documents())
def test_generated_atom_agrees(document: tuple[bytes, dict[str, str]]) -> None:
    body, headers = document
    compare(body, headers, FEED_URL)


def test_generated_feeds_mostly_take_the_fast_path() -> None:
    """Without this, the two tests above could pass with a fast path that always declines."""
    accepted = Counter()

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.one_of(rss_documents(), atom_documents(), rdf_documents()))
    def run(document: tuple[bytes, dict[str, str]]) -> None:
        body, headers = document
        accepted[compare(body, headers, FEED_URL)] += 1

    run()
    assert accepted[True] >= accepted[False] // 2, accepted


URL_PIECES = st.sampled_from([
    "http://", "https://", "HTTP://", "/", "//", "/.", "/..", ".", "..", "a.example", ":8080",
    "p", "wp-content", ";", "?", "q=1", "#", "frag", "%20", " ", "\t", "[", "@", "\u00e9",
    "&amp;", "javascript:", "mailto:x@y", "/a.jpg", ".hidden", "~u",
])


@settings(max_examples=600, deadline=None)
@given(st.lists(URL_PIECES, min_size=1, max_size=8).map("".join),
       st.sampled_from(["https://blog.example/dir/page", "http://127.0.0.1:1/x/",
                        "https://a.example", "https://a.example/p;q?x#y", "http://[::1]/x"]))
def test_url_joining_matches_feedparsers(uri: str, base: str) -> None:
    assert _join(base, uri) == _urljoin(base, uri)


# --------------------------------------------------------------------------- contract


def wordpress_feed(entries: int, post_bytes: int = 4096) -> bytes:
    paragraph = ('<p>Marketeers zetten zich in om de <strong>boodschappen</strong> zo '
                 'relevant mogelijk te maken &#8211; <a href="/berichten/x/">lees meer</a> '
                 '&amp; <img src="/wp-content/uploads/a.jpg" alt="A" width="300" /></p>\n')
    post = paragraph * max(1, post_bytes // len(paragraph))
    items = "".join(
        f"<item><title>Bericht {n} &#8211; open source</title>"
        f"<link>https://blog.example/{n}/</link>"
        f"<comments>https://blog.example/{n}/#comments</comments>"
        f"<pubDate>Wed, 02 Jan 2013 08:{n % 60:02d}:00 +0000</pubDate>"
        f"<dc:creator><![CDATA[Femke Marcar]]></dc:creator>"
        f"<category><![CDATA[Marketing]]></category>"
        f'<guid isPermaLink="false">https://blog.example/?p={n}</guid>'
        f"<description><![CDATA[Samenvatting {n} [&#8230;]]]></description>"
        f"<content:encoded><![CDATA[{post}]]></content:encoded>"
        f"<wfw:commentRss>https://blog.example/{n}/feed/</wfw:commentRss>"
        f"<slash:comments>{n % 7}</slash:comments></item>"
        for n in range(entries))
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:atom="http://www.w3.org/2005/Atom" '
            'xmlns:slash="http://purl.org/rss/1.0/modules/slash/"><channel>'
            "<title>Blog</title><link>https://blog.example</link><language>nl-NL</language>"
            f"<ttl>60</ttl>{items}</channel></rss>").encode()


def test_a_wordpress_feed_is_read_fast_and_pickles() -> None:
    body = wordpress_feed(20)
    assert compare(body, RSS_HEADERS, FEED_URL)
    fast = fast_parse(body, RSS_HEADERS, FEED_URL)
    assert fast is not None and len(fast.entries) == 20
    assert fast.entries[3].published == datetime(2013, 1, 2, 8, 3, tzinfo=UTC)
    # Markup stays as the feed gave it; its links resolve against the feed's URL later.
    assert 'src="/wp-content/uploads/a.jpg"' in fast.entries[0].content_html
    assert fast.entries[0].content_base == FEED_URL
    assert pickle.loads(pickle.dumps(fast)) == fast


def test_the_entry_cap_and_its_warning_match() -> None:
    body = wordpress_feed(MAX_ENTRIES + 3, post_bytes=0)
    assert compare(body, RSS_HEADERS, FEED_URL)
    fast = fast_parse(body, RSS_HEADERS, FEED_URL)
    assert fast is not None and len(fast.entries) == MAX_ENTRIES
    assert fast.warning is not None and str(MAX_ENTRIES + 3) in fast.warning


@pytest.mark.parametrize(("body", "headers"), [
    (b"", RSS_HEADERS),
    (b'{"version": "https://jsonfeed.org/version/1.1", "items": []}', RSS_HEADERS),
    (b"<rss version='2.0'><channel><title>t</channel></rss>", RSS_HEADERS),  # not well-formed
    (b'<!DOCTYPE rss [<!ENTITY a "b">]><rss version="2.0"><channel/></rss>', RSS_HEADERS),
    # undecodable in every encoding feedparser tries: it reads it leniently
    (b"<?xml version='1.0' encoding='utf-16'?><rss version='2.0'><channel/></rss>",
     RSS_HEADERS),
    (b"<html><body>hi</body></html>", RSS_HEADERS),
    (b'<feed xmlns="http://purl.org/atom/ns#" version="0.3"><title>t</title></feed>',
     ATOM_HEADERS),
    (b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><content type="xhtml">'
     b'<div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div></content></entry></feed>',
     ATOM_HEADERS),
])
def test_what_it_leaves_to_feedparser(body: bytes, headers: dict[str, str]) -> None:
    assert fast_parse(body, headers, FEED_URL) is None


_PLAIN_RSS = "<rss version='2.0'><channel><title>t\u00e9</title></channel></rss>"


@pytest.mark.parametrize(("body", "headers", "warning"), [
    (_PLAIN_RSS.encode(), {}, "no Content-type specified"),
    (_PLAIN_RSS.encode(), {"content-type": "text/html"},
     "document declared as us-ascii, but parsed as utf-8"),
    (_PLAIN_RSS.encode(), {"content-type": "text/plain; charset=utf-8"},
     "text/plain; charset=utf-8 is not an XML media type"),
    (_PLAIN_RSS.encode(), {"content-type": "application/octet-stream"},
     "application/octet-stream is not an XML media type"),
    # RFC 3023: text/xml without a charset is US-ASCII, which most such feeds are not
    (_PLAIN_RSS.encode(), {"content-type": "text/xml"},
     "document declared as us-ascii, but parsed as utf-8"),
    (_PLAIN_RSS.encode(), {"content-type": "text/xml; charset=no-such"},
     "document declared as no-such, but parsed as utf-8"),
    (_PLAIN_RSS.encode("latin-1"), {"content-type": "application/rss+xml; charset=utf-8"},
     "document declared as utf-8, but parsed as windows-1252"),
    (_PLAIN_RSS.encode("ascii", "xmlcharrefreplace"), {"content-type": "text/xml"}, None),
])
def test_media_type_and_encoding_complaints_match(body: bytes, headers: dict[str, str],
                                                  warning: str | None) -> None:
    assert compare(body, headers, FEED_URL), "the fast path declined"
    fast = fast_parse(body, headers, FEED_URL)
    assert fast is not None and fast.warning == warning
    assert fast.title == "t\u00e9"


def test_a_default_namespace_declared_below_the_root_keeps_the_fast_path() -> None:
    # WordPress.com and Jetpack add these to every feed.
    body = wordpress_feed(3, post_bytes=200).replace(
        b"</item>", b'<post-id xmlns="com-wordpress:feed-additions:1">7</post-id></item>'
    ).replace(b"<item>", b'<site xmlns="com-wordpress:feed-additions:1">9</site><item>', 1)
    assert b"post-id" in body and b"<site " in body
    assert compare(body, RSS_HEADERS, FEED_URL), "the fast path declined"


_AVATAR = (b'<media:content url="https://0.gravatar.com/avatar/a?s=96" medium="image">'
           b'<media:title type="html">femke</media:title></media:content>')


def test_a_wordpress_com_avatar_keeps_the_fast_path_where_feedparser_ignores_it() -> None:
    body = wordpress_feed(3, post_bytes=200).replace(
        b'<rss version="2.0"', b'<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"')
    after_title = body.replace(b"</item>", _AVATAR + b"</item>")
    assert compare(after_title, RSS_HEADERS, FEED_URL), "the fast path declined"
    fast = fast_parse(after_title, RSS_HEADERS, FEED_URL)
    assert fast is not None and fast.entries[0].title.startswith("Bericht 0")
    # Before the entry's own title, feedparser takes the media:title as the title
    # until the real one comes: left to feedparser.
    before_title = body.replace(b"<title>Bericht", _AVATAR + b"<title>Bericht")
    assert fast_parse(before_title, RSS_HEADERS, FEED_URL) is None
    assert parse_feed(before_title, RSS_HEADERS, FEED_URL).entries[0].title.startswith("Bericht")


def test_a_blogger_feed_with_avatars_keeps_the_fast_path() -> None:
    entry = ("<entry><id>tag:blogger.com,1999:blog-1.post-{n}</id>"
             "<published>2025-05-28T02:00:00.001+02:00</published>"
             "<title type='text'>Post {n}</title><content type='html'>&lt;p&gt;Tekst&lt;/p&gt;"
             "</content><link rel='alternate' type='text/html' href='https://x.blogspot.com/{n}.html'/>"
             "<author><name>Wim</name><uri>https://www.blogger.com/profile/1</uri>"
             "<email>noreply@blogger.com</email>" + BLOGGER_AVATAR + "</author>"
             "<thr:total>0</thr:total></entry>")
    body = ("<?xml version='1.0' encoding='UTF-8'?><feed xmlns='http://www.w3.org/2005/Atom' "
            "xmlns:gd='http://schemas.google.com/g/2005' "
            "xmlns:thr='http://purl.org/syndication/thread/1.0'><title type='text'>Blog</title>"
            "<author><name>Wim</name>" + BLOGGER_AVATAR + "</author>"
            + "".join(entry.format(n=n) for n in range(3)) + "</feed>").encode()
    assert compare(body, ATOM_HEADERS, FEED_URL), "the fast path declined"
    fast = fast_parse(body, ATOM_HEADERS, FEED_URL)
    assert fast is not None and [e.author for e in fast.entries] == ["Wim"] * 3


def test_a_substack_feed_keeps_the_fast_path() -> None:
    body = wordpress_feed(3, post_bytes=200).replace(
        b'<rss version="2.0"',
        b'<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
        b'xmlns:googleplay="http://www.google.com/schemas/play-podcasts/1.0"'
    ).replace(b"<ttl>", b"<author><![CDATA[Femke]]></author>" + SUBSTACK_ITUNES.encode()
              + b"<googleplay:author><![CDATA[Femke]]></googleplay:author><ttl>")
    assert compare(body, RSS_HEADERS, FEED_URL), "the fast path declined"
    # An episode's own iTunes summary is read as its summary (after content:encoded).
    episode = body.replace(b"</item>", b"<itunes:summary>Anders</itunes:summary></item>", 1)
    assert compare(episode, RSS_HEADERS, FEED_URL), "the fast path declined"
    assert fast_parse(episode, RSS_HEADERS, FEED_URL).entries[0].summary_html == "Anders"
    # A second summary of the channel (or a description after its itunes:summary)
    # is read as the channel's content, and the state that leaves lasts to the
    # end of the first item: a second summary there stays a summary.
    summary = b"<itunes:summary>Over merken</itunes:summary>"
    assert compare(body.replace(b"<ttl>", summary + b"<ttl>"), RSS_HEADERS, FEED_URL)
    second = b"<description>Nog een</description></item>"
    without_content = re.sub(rb"(?s)<content:encoded>.*?</content:encoded>", b"", body)
    for head, inherited in ((summary * 2, True),
                            (summary + b"<description>Elke dag vers</description>", True),
                            (b"<description>Elke dag vers</description>" + summary, False)):
        changed = without_content.replace(b"<ttl>", head + b"<ttl>").replace(
            b"</item>", second, 2)
        assert compare(changed, RSS_HEADERS, FEED_URL), "the fast path declined"
        first, later = fast_parse(changed, RSS_HEADERS, FEED_URL).entries[:2]
        if inherited:  # the second description overwrote the summary
            assert (first.summary_html, first.content_html) == ("Nog een", "")
        else:  # the second description became the content
            assert first.summary_html.startswith("Samenvatting 0")
            assert first.content_html == "Nog een"
        # The state ends with the first item.
        assert later.summary_html.startswith("Samenvatting 1")
        assert later.content_html == "Nog een"


_EPISODE_PARTS = {
    "description": "<description><![CDATA[Korte samenvatting [&#8230;]]]></description>",
    "content": "<content:encoded><![CDATA[<p>De hele aflevering.</p>]]></content:encoded>",
    "itunes_summary": "<itunes:summary>Shownotes van de aflevering</itunes:summary>",
    "itunes_html": "<itunes:summary><![CDATA[<p>Shownotes</p>]]></itunes:summary>",
    "dc_description": "<dc:description>Nog een</dc:description>",
}


@pytest.mark.parametrize("order", [
    order for size in (2, 3) for order in itertools.permutations(_EPISODE_PARTS, size)],
    ids="-".join)
def test_podcast_episodes_agree(order: tuple[str, ...]) -> None:
    # PowerPress, Libsyn, Anchor and Buzzsprout give an episode a description,
    # an itunes:summary and often content:encoded, in their own orders; a
    # summary-like element arriving before any content is read as the content.
    extras = ("<itunes:author>Femke Marcar</itunes:author>"
              "<itunes:keywords>marketing, podcast, Marketing</itunes:keywords>"
              "<itunes:duration>31:02</itunes:duration>"
              '<source url="https://elders.example/feed/">Elders</source>')
    item = ("<item><title>Aflevering 1</title><link>https://blog.example/1/</link>"
            + "".join(_EPISODE_PARTS[name] for name in order) + extras + "</item>")
    body = wordpress_feed(0).replace(b"<ttl>", item.encode() + b"<ttl>").replace(
        b"<rss version", b'<rss xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" version')
    assert compare(body, RSS_HEADERS, FEED_URL), "the fast path declined"
    entry = fast_parse(body, RSS_HEADERS, FEED_URL).entries[0]
    assert entry.author == "Femke Marcar"
    assert "podcast" in entry.categories
    # Two summary-like elements and no content:encoded: the second is the content.
    assert entry.content_html, "no content"


@pytest.mark.parametrize(("item", "fast"), [
    # A <source> resets feedparser's title depth: a media:title after it is
    # read (at the item's depth) or overwrites the title's detail (below it).
    ("<title>Eerste</title><source url='https://elders.example/'>E</source>{media}", False),
    ("<title>Eerste</title><source url='https://elders.example/'>E</source>"
     "<media:title>Tweede</media:title>", False),
    ("<source url='https://elders.example/'>E</source><title>Eerste</title>{media}", True),
    ("<title>Eerste</title>{media}<source>E</source>", True),
    ("<title>Eerste</title><media:title>Tweede</media:title>", True),
    ("<media:title>Tweede</media:title><title>Eerste</title>", False),
    ("<title></title><media:title>Tweede</media:title>", False),
])
def test_an_rss_source_beside_a_media_title_agrees(item: str, fast: bool) -> None:
    media = "<media:content url='/a.jpg'><media:title>Tweede</media:title></media:content>"
    body = wordpress_feed(0).replace(
        b"<ttl>", f"<item>{item.format(media=media)}</item>".encode() + b"<ttl>").replace(
        b"<rss version", b'<rss xmlns:media="http://search.yahoo.com/mrss/" version')
    assert compare(body, RSS_HEADERS, FEED_URL) == fast
    if fast:
        assert fast_parse(body, RSS_HEADERS, FEED_URL).entries[0].title == "Eerste"


def test_a_channel_with_show_notes_agrees() -> None:
    # A channel's content:encoded is its content and, copied, its summary; a
    # channel description after the first item is then read as content too,
    # and the state that leaves lasts to the end of the next item.
    def item(n: int) -> str:
        return (f"<item><title>{n}</title><description>Eerste {n}</description>"
                f"<description>Tweede {n}</description></item>")
    body = (wordpress_feed(0).replace(b"<ttl>", (
        "<content:encoded><![CDATA[<p>Over de show</p>]]></content:encoded>"
        + item(1) + "<description>Later</description>" + item(2) + item(3)).encode()
        + b"<ttl>"))
    assert compare(body, RSS_HEADERS, FEED_URL), "the fast path declined"
    entries = fast_parse(body, RSS_HEADERS, FEED_URL).entries
    assert [(e.summary_html, e.content_html) for e in entries] == [
        ("Tweede 1", ""), ("Tweede 2", ""), ("Eerste 3", "Tweede 3")]


def test_what_a_source_or_keywords_leave_to_feedparser() -> None:
    # An Atom source holds a feed head, read in a mode not replayed here;
    # itunes:keywords with attributes makes feedparser's own handler fail.
    atom = (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><title>e</title>'
            b"<source><title>Elders</title><id>urn:x</id></source></entry></feed>")
    assert fast_parse(atom, ATOM_HEADERS, FEED_URL) is None
    keywords = "<item><title>e</title><itunes:keywords a='b'>x</itunes:keywords></item>"
    body = wordpress_feed(0).replace(b"<ttl>", keywords.encode() + b"<ttl>").replace(
        b"<rss version", b'<rss xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" version')
    assert fast_parse(body, RSS_HEADERS, FEED_URL) is None
    assert compare(body.replace(b" a='b'", b""), RSS_HEADERS, FEED_URL)


YOUTUBE_ENTRY = """<entry>
  <id>yt:video:{n}</id><yt:videoId>{n}</yt:videoId><yt:channelId>UCx</yt:channelId>
  <title>Merkverhalen {n} &amp; meer</title>
  <link rel="alternate" href="https://www.youtube.com/watch?v={n}"/>
  <author><name>Merkverhalen</name><uri>https://www.youtube.com/channel/UCx</uri></author>
  <published>2025-05-0{n}T10:00:00+00:00</published><updated>2025-05-0{n}T11:00:00+00:00</updated>
  <media:group>
    <media:title>Merkverhalen {n} &amp; meer</media:title>
    <media:content url="https://www.youtube.com/v/{n}?version=3"
      type="application/x-shockwave-flash" width="640" height="390"/>
    <media:thumbnail url="https://i1.ytimg.com/vi/{n}/hqdefault.jpg" width="480" height="360"/>
    <media:description>In deze aflevering: merken, community &amp; &lt;b&gt;groei&lt;/b&gt;.
https://merkverhalen.example/{n}</media:description>
    <media:community>
      <media:starRating count="12" average="5.00" min="1" max="5"/>
      <media:statistics views="345"/>
    </media:community>
  </media:group>
</entry>"""


def youtube_feed(entries: int = 3, entry: str = YOUTUBE_ENTRY) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns:yt="http://www.youtube.com/xml/'
            'schemas/2015" xmlns:media="http://search.yahoo.com/mrss/" '
            'xmlns="http://www.w3.org/2005/Atom"><link rel="self" '
            'href="https://www.youtube.com/feeds/videos.xml?channel_id=UCx"/>'
            "<id>yt:channel:x</id><yt:channelId>x</yt:channelId><title>Merkverhalen</title>"
            '<link rel="alternate" href="https://www.youtube.com/channel/UCx"/>'
            "<author><name>Merkverhalen</name><uri>https://www.youtube.com/channel/UCx</uri>"
            "</author><published>2020-01-01T00:00:00+00:00</published>"
            + "".join(entry.format(n=n) for n in range(1, entries + 1)) + "</feed>").encode()


def test_a_youtube_channel_feed_takes_the_fast_path() -> None:
    body = youtube_feed()
    assert compare(body, ATOM_HEADERS, FEED_URL), "the fast path declined"
    entry = fast_parse(body, ATOM_HEADERS, FEED_URL).entries[0]
    assert entry.title == "Merkverhalen 1 & meer"
    # feedparser's description handler: the text is HTML.
    assert entry.summary_html.startswith("In deze aflevering: merken, community & <b>groei</b>")
    assert entry.link == "https://www.youtube.com/watch?v=1"


@pytest.mark.parametrize(("change", "fast"), [
    # the entry has a summary: the group's description becomes its content
    (("<media:group>", "<summary>Kort</summary><media:group>"), True),
    # a summary after the group: it becomes the content
    (("</media:group>", "</media:group><summary>Later</summary>"), True),
    # a description inside media:content first: the group's becomes the content
    (('type="application/x-shockwave-flash"', 'type="video/mp4"><media:description>'
      "Binnen</media:description></media:content><media:content url='/b.mp4'"), True),
    # content, then the group: feedparser keeps the summary but not its detail
    (("<media:group>", "<content type='html'>&lt;p&gt;Alles&lt;/p&gt;</content><media:group>"),
     False),
    (("<media:group>", "<content>Alles</content><summary>Kort</summary><media:group>"), False),
    # no title before the group: feedparser takes the media:title
    (("<title>Merkverhalen {n} &amp; meer</title>", ""), False),
])
def test_youtube_variations_agree(change: tuple[str, str], fast: bool) -> None:
    old, new = change
    assert old in YOUTUBE_ENTRY
    body = youtube_feed(2, YOUTUBE_ENTRY.replace(old, new))
    assert compare(body, ATOM_HEADERS, FEED_URL) == fast


def test_an_rss_media_group_agrees() -> None:
    group = (b"<media:group><media:description>Groep</media:description>"
             b"<media:thumbnail url='/t.jpg'/></media:group>")
    body = wordpress_feed(2, post_bytes=100).replace(
        b"<rss version", b'<rss xmlns:media="http://search.yahoo.com/mrss/" version')
    without_content = re.sub(rb"(?s)<content:encoded>.*?</content:encoded>", b"", body)
    # After the description: read as the content.
    changed = without_content.replace(b"</item>", group + b"</item>")
    assert compare(changed, RSS_HEADERS, FEED_URL), "the fast path declined"
    assert [e.content_html for e in fast_parse(changed, RSS_HEADERS, FEED_URL).entries] \
        == ["Groep", "Groep"]
    # Before it: the summary, and the description becomes the content.
    changed = without_content.replace(b"<description>", group + b"<description>")
    assert compare(changed, RSS_HEADERS, FEED_URL), "the fast path declined"
    first = fast_parse(changed, RSS_HEADERS, FEED_URL).entries[0]
    assert first.summary_html == "Groep" and first.content_html.startswith("Samenvatting 0")
    # After content:encoded and the description: left to feedparser.
    assert fast_parse(body.replace(b"</item>", group + b"</item>"), RSS_HEADERS,
                      FEED_URL) is None


@pytest.mark.parametrize(("change", "fast"), [
    # free hosts inject analytics after the channel
    (("</channel>", "</channel><script>var x = 1 &lt; 2;</script>"), True),
    (("</channel>", "</channel><script src='/a.js' async='async'></script>"), True),
    (("<channel>", "<div><span>x</span></div><channel>"), True),
    # elements feedparser reads, or whose text parse.py would read: left to it
    (("</channel>", "</channel><ttl>5</ttl>"), False),
    (("</channel>", "</channel><title>x</title>"), False),
    (("</channel>", "</channel><channel><title>y</title></channel>"), False),
    (("</channel>", "</channel><x><item><title>z</title></item></x>"), False),
])
def test_elements_beside_the_channel_agree(change: tuple[str, str], fast: bool) -> None:
    old, new = change
    body = wordpress_feed(2, post_bytes=100).replace(old.encode(), new.encode())
    assert compare(body, RSS_HEADERS, FEED_URL) == fast


@pytest.mark.parametrize("root", [
    '<rss version="0.91">', '<rss version="0.92">', '<rss version="0.94">', "<rss>",
    '<rss version="2.0">', '<rss version="2.01">', '<rss version="3.0">',
    '<rss version="2.0" xmlns:r="http://purl.org/rss/1.0/">',
    '<rss version="2.0" xmlns="http://www.w3.org/2005/Atom">',
])
def test_every_rss_version_agrees(root: str) -> None:
    # feedparser's handlers ask only whether the version starts with "rss".
    body = wordpress_feed(2, post_bytes=100).replace(b'<rss version="2.0"', root[:-1].encode())
    assert compare(body, RSS_HEADERS, FEED_URL), "the fast path declined"
    assert fast_parse(body, RSS_HEADERS, FEED_URL).format.startswith("rss")


_AUTHOR_FORMS = ["Marco Derksen", "", "femke@example.com (Femke Marcar)",
                 "Jane &lt;jane@example.com&gt;", "<![CDATA[M\u00fcller]]>", "ed@example.com"]


@pytest.mark.parametrize("second", _AUTHOR_FORMS)
@pytest.mark.parametrize("first", _AUTHOR_FORMS)
def test_repeated_authors_agree(first: str, second: str) -> None:
    # <author> beside <dc:creator> (Laminas, many CMSs), in either order, or thrice.
    for tags in (("author", "dc:creator"), ("dc:creator", "author"),
                 ("dc:creator", "dc:creator", "author")):
        names = (first, second, first)
        people = "".join(f"<{tag}>{names[i]}</{tag}>" for i, tag in enumerate(tags))
        body = wordpress_feed(1, post_bytes=0).replace(
            b"<dc:creator><![CDATA[Femke Marcar]]></dc:creator>", people.encode())
        assert compare(body, RSS_HEADERS, FEED_URL), "the fast path declined"
    atom = ('<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><title>e</title>'
            f"<author><name>{first}</name></author>"
            f"<author><email>b@example.com</email><name>{second}</name></author>"
            "</entry></feed>").encode()
    compare(atom, ATOM_HEADERS, FEED_URL)


def test_dates_are_aware_utc() -> None:
    body = wordpress_feed(1, post_bytes=0).replace(
        b"Wed, 02 Jan 2013 08:00:00 +0000", b"Wed, 02 Jan 2013 10:00:00 +0200")
    fast = fast_parse(body, RSS_HEADERS, FEED_URL)
    assert fast is not None
    published = fast.entries[0].published
    assert published is not None and published.utcoffset() == timedelta(0)
    assert published == datetime(2013, 1, 2, 8, 0, tzinfo=UTC)
