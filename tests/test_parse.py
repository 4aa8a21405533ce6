"""Tests for aggregator.parse: golden feeds, hostile bodies, odd encodings.

Golden cases live in tests/golden/: an input document next to
``<name>.expected.json``, which holds the URL and headers it is parsed with and
the expected ParsedFeed. To rewrite the expectations after a deliberate change,
run with AGGREGATOR_REGENERATE_GOLDEN=1 and review the diff by hand.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.parse import MAX_ENTRIES, parse_feed
from aggregator.types import ParsedFeed

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_INPUTS = sorted(p for p in GOLDEN.iterdir()
                       if p.suffix in (".xml", ".json") and not p.name.endswith(".expected.json"))
REGENERATE = os.environ.get("AGGREGATOR_REGENERATE_GOLDEN") == "1"

# What each golden input is served with when it has no .expected.json yet.
DEFAULT_SERVED = {
    ".xml": {"content-type": "application/rss+xml; charset=UTF-8"},
    ".json": {"content-type": "application/feed+json"},
}

RSS_ITEM = "<item><title>{title}</title><link>{link}</link>{extra}</item>"


def as_plain(value: Any) -> Any:
    """A ParsedFeed as JSON-ready data: dates as ISO strings, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [as_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def rss(items: str, channel_extra: str = "", encoding: str = "utf-8") -> bytes:
    return (f'<?xml version="1.0" encoding="{encoding}"?>'
            f'<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
            f"<title>Blog</title><link>https://blog.example/</link>{channel_extra}"
            f"{items}</channel></rss>").encode(encoding)


# --------------------------------------------------------------------------- golden


def test_every_golden_input_has_an_expectation() -> None:
    assert len(GOLDEN_INPUTS) >= 10
    if not REGENERATE:
        missing = [p.name for p in GOLDEN_INPUTS if not expected_path(p).exists()]
        assert missing == []


def expected_path(source: Path) -> Path:
    return source.with_name(source.stem + ".expected.json")


@pytest.mark.parametrize("source", GOLDEN_INPUTS, ids=lambda p: p.name)
def test_golden(source: Path) -> None:
    target = expected_path(source)
    if target.exists():
        case = json.loads(target.read_text(encoding="utf-8"))
    else:
        case = {"url": f"https://feeds.example/{source.name}",
                "headers": DEFAULT_SERVED[source.suffix]}
    parsed = parse_feed(source.read_bytes(), case["headers"], case["url"])
    if REGENERATE:
        case["feed"] = as_plain(parsed)
        target.write_text(json.dumps(case, ensure_ascii=False, indent=2) + "\n",
                          encoding="utf-8")
    assert "feed" in case, f"no expectation for {source.name}: regenerate and review it"
    assert as_plain(parsed) == case["feed"]


def golden(name: str) -> ParsedFeed:
    source = GOLDEN / name
    case = json.loads(expected_path(source).read_text(encoding="utf-8"))
    return parse_feed(source.read_bytes(), case["headers"], case["url"])


def test_wordpress_post_feed_carries_comment_feeds_and_counts() -> None:
    feed = golden("wordpress_rss20.xml")
    assert feed.format == "rss20"
    assert feed.ttl_minutes == 60
    post = feed.entries[1]
    assert post.comments_feed_url == (
        "https://www.marketingfacts.nl/berichten/open-source-dringt-door-in-marketing/feed/")
    assert post.comment_count == 2
    assert post.author == "Marco Derksen"
    assert post.published == datetime(2005, 5, 27, 10, 8, tzinfo=UTC)
    # duplicate categories collapse, order kept
    assert post.categories == ("Marketing", "Open source")
    # markup is kept as given; its relative links resolve against the feed URL
    # when it is sanitized (test_normalize)
    assert 'href="/berichten/de-marketeer' in post.content_html
    assert post.content_base == post.summary_base == "https://www.marketingfacts.nl/feed/"
    undated = feed.entries[2]
    assert undated.published is None and undated.updated is None


def test_atom_threading_links_comments_to_posts_and_comments() -> None:
    posts = golden("atom10_threading.xml")
    episode = posts.entries[0]
    assert episode.comments_feed_url == (
        "https://videoblog.example.de/episoden/33-martin-oetting/feed/atom/")
    assert episode.comment_count == 3
    assert posts.entries[1].comment_count == 0
    assert posts.comments_feed_url == "https://videoblog.example.de/comments/feed/atom/"

    comments = golden("atom10_threading_comments.xml").entries
    assert [c.in_reply_to for c in comments] == [
        episode.guid, episode.guid, comments[1].guid]
    # a relative thr:in-reply-to href resolves like any other link
    assert comments[1].in_reply_to_link == (
        "https://videoblog.example.de/episoden/33-martin-oetting/")
    assert comments[2].language == "de-AT"


def test_latin1_feed_decodes_umlauts() -> None:
    feed = golden("rss20_latin1.xml")
    assert feed.title == "Kommentare: Martin Oetting über Marketing"
    assert "Rückkopplung" in feed.entries[0].summary_html
    assert feed.entries[1].author == "Jacek"
    # "23.8.2007" is no date format feedparser or the fallbacks know
    assert feed.entries[1].published is None


# --------------------------------------------------------------------------- not a feed


@pytest.mark.parametrize(("body", "headers", "words"), [
    (b"", {}, "empty"),
    (b"  \r\n\t ", {"content-type": "application/rss+xml"}, "empty"),
    (b"<!DOCTYPE html>\n<html lang='nl'><head><title>Marketingfacts</title></head>"
     b"<body><p>Elke dag vers</p></body></html>", {"content-type": "text/html"}, "HTML page"),
    (b'<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
     b'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
     b'<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>', {}, "HTML page"),
    (b"<p>Onderhoud: we zijn zo terug</p>", {"content-type": "text/html"}, "HTML page"),
    (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
     b"<url><loc>https://blog.example/</loc></url></urlset>", {}, "<urlset>"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", {"content-type": "image/png"}, "neither XML nor JSON"),
    (b'{"posts": []}', {"content-type": "application/json"}, "not a JSON Feed"),
    (b'["https://jsonfeed.org/version/1.1"]', {"content-type": "application/json"},
     "not a JSON Feed"),
    (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', {}, "broken JSON"),
])
def test_non_feeds_raise_parse_error_with_a_reason(body: bytes, headers: dict[str, str],
                                                   words: str) -> None:
    with pytest.raises(ParseError, match="not a feed") as caught:
        parse_feed(body, headers, "https://blog.example/feed/")
    assert words in str(caught.value)


@pytest.mark.parametrize(("page", "named"), [
    # WordPress: the site's feed, then the comments feed; relative to <base>.
    (b'<!DOCTYPE html><html><head><base href="https://blog.example/nl/">'
     b'<link rel="alternate" type="application/rss+xml" title="Blog &raquo; Feed" href="feed/">'
     b'<link rel="alternate" type="application/rss+xml" title="Reacties" href="comments/feed/">'
     b"</head><body></body></html>", "https://blog.example/nl/feed/"),
    # Blogger: Atom first, rel and type in capitals, a charset parameter.
    (b"<html><head><link rel='Alternate' type='Application/Atom+XML; charset=UTF-8' "
     b"href='https://b.example/feeds/posts/default'><link rel='alternate' "
     b"type='application/rss+xml' href='https://b.example/feeds/posts/default?alt=rss'>"
     b"</head></html>", "https://b.example/feeds/posts/default"),
    # A JSON Feed, and no <head> at all.
    (b'<link rel="alternate" type="application/feed+json" href="/feed.json"><p>Hallo</p>',
     "https://blog.example/feed.json"),
    # Alternates that are no feed, and a script address: nothing to name.
    (b'<html><head><link rel="alternate" hreflang="de" type="text/html" href="/de/">'
     b'<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
     b'<link rel="stylesheet" type="application/rss+xml" href="/feed/"></head></html>', None),
])
def test_an_html_page_error_names_the_feed_it_announces(page: bytes, named: str | None) -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(page, {"content-type": "text/html; charset=utf-8"},
                   "https://blog.example/blog/")
    message = str(caught.value)
    assert message.startswith("not a feed: the server returned an HTML page")
    if named is None:
        assert "announces" not in message
    else:
        assert message.endswith(f"announces a feed at {named}: set the source's url to that")


@pytest.mark.parametrize("path", [b"/etc/passwd", b"/etc/hostname",
                                  str(GOLDEN / "wordpress_rss20.xml").encode()])
def test_a_body_that_names_a_local_file_is_not_read_as_that_file(path: bytes) -> None:
    assert Path(path.decode()).exists() or path == b"/etc/hostname"
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(path, {"content-type": "application/rss+xml"}, "https://blog.example/feed/")


def test_a_body_that_names_a_url_is_not_fetched() -> None:
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(b"http://127.0.0.1:9/feed.xml", {}, "https://blog.example/feed/")


ENTITY_BODIES = [
    # billion laughs
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    b"<rss version=\"2.0\"><channel><title>&lol2;</title></channel></rss>",
    # external entity
    b'<?xml version="1.0"?><!DOCTYPE rss [<!entity xxe SYSTEM "file:///etc/passwd">]>'
    b'<rss version="2.0"><channel><title>&xxe;</title></channel></rss>',
    # a "]>" inside a quoted string must not end the subset early
    b'<!DOCTYPE rss [<!ATTLIST rss note CDATA "]>"> <!ENTITY a "x">]><rss version="2.0"/>',
    # comments and PIs before the DOCTYPE
    b'<?xml version="1.0"?><!-- <rss> --><?xml-stylesheet href="s.xsl"?>'
    b'<!DOCTYPE rss [<!-- ]> --><!ENTITY a "x">]><rss version="2.0"/>',
    # UTF-16 hides the declaration from a byte search
    '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE rss [<!ENTITY a "x">]>'
    '<rss version="2.0"/>'.encode("utf-16"),
    # an internal subset longer than the window
    b'<!DOCTYPE rss [' + b"<!-- padding -->" * 5000 + b'<!ENTITY a "x">]><rss version="2.0"/>',
]


@pytest.mark.parametrize("body", ENTITY_BODIES)
def test_entity_declarations_are_refused(body: bytes) -> None:
    with pytest.raises(ParseError, match="declares XML entities, refused"):
        parse_feed(body, {}, "https://blog.example/feed/")


def test_a_doctype_without_entities_is_accepted() -> None:
    feed = golden("rss091.xml")
    assert feed.format == "rss091n"
    assert [e.published for e in feed.entries] == [None, None]


def test_entity_text_after_the_root_is_content_not_a_declaration() -> None:
    body = rss(RSS_ITEM.format(title="XML-tips", link="https://blog.example/xml",
                               extra="<description>Schrijf nooit &lt;!ENTITY in een feed"
                                     "</description>"))
    feed = parse_feed(body, {}, "https://blog.example/feed/")
    assert feed.entries[0].summary_html == "Schrijf nooit <!ENTITY in een feed"


# --------------------------------------------------------------------------- hostile strings


def test_surrogate_reference_in_a_title_gives_a_clean_entry_or_parse_error() -> None:
    body = rss(RSS_ITEM.format(title="Merk &#xD800; en &#55296; consument",
                               link="https://blog.example/a", extra=""))
    try:
        feed = parse_feed(body, {"content-type": "application/rss+xml"},
                          "https://blog.example/feed/")
    except ParseError:
        return
    title = feed.entries[0].title
    assert title.startswith("Merk") and title.endswith("consument")
    title.encode("utf-8")  # would raise on a lone surrogate


def test_nul_characters_are_stripped_from_every_string() -> None:
    body = rss(RSS_ITEM.format(title="Na&#0;cht", link="https://blog.example/a",
                               extra="<description>d&#0;x</description>"
                                     "<dc:creator>Ja\x00n</dc:creator>"
                                     "<category>Mar&#0;keting</category>"))
    feed = parse_feed(body, {}, "https://blog.example/feed/")
    entry = feed.entries[0]
    assert (entry.title, entry.summary_html, entry.author, entry.categories) == (
        "Nacht", "dx", "Jan", ("Marketing",))
    assert feed.warning  # not well-formed: read leniently, and said so


def test_json_feed_strings_are_cleaned_too() -> None:
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "T\u0000",
                       "items": [{"id": "1", "title": "a\ud800b", "content_text": "x"}]})
    feed = parse_feed(body.encode("utf-8", "surrogatepass"), {}, "https://blog.example/f.json")
    assert (feed.title, feed.entries[0].title) == ("T", "ab")



@given(st.text(alphabet=st.characters(codec=None), max_size=60)
       | st.text(alphabet="aé€\x00\ud800\udfff ", max_size=60))
def test_clean_drops_exactly_nul_and_lone_surrogates(text: str) -> None:
    from aggregator.parse import _clean

    # Its shortcuts (ASCII; text that encodes) must agree with the regex.
    cleaned = _clean(text)
    assert cleaned == "".join(c for c in text if c != "\x00" and not "\ud800" <= c <= "\udfff")
    cleaned.encode("utf-8")


# --------------------------------------------------------------------------- details


def test_relative_links_resolve_against_the_feed_url() -> None:
    body = rss(RSS_ITEM.format(title="Relatief", link="/berichten/relatief/", extra=""))
    feed = parse_feed(body, {}, "https://blog.example/nl/feed/")
    assert feed.entries[0].link == "https://blog.example/berichten/relatief/"


def test_content_location_header_is_the_base_when_given() -> None:
    body = rss(RSS_ITEM.format(title="Relatief", link="relatief/", extra=""))
    feed = parse_feed(body, {"Content-Location": "/archief/feed/"},
                      "https://blog.example/nl/feed/")
    assert feed.entries[0].link == "https://blog.example/archief/feed/relatief/"


def test_undated_entries_have_no_dates() -> None:
    body = rss(RSS_ITEM.format(title="Zonder datum", link="https://blog.example/a", extra=""))
    entry = parse_feed(body, {}, "https://blog.example/feed/").entries[0]
    assert (entry.published, entry.updated) == (None, None)


def test_dates_feedparser_drops_are_read_from_the_raw_text() -> None:
    # feedparser gives up on an RFC 822 date without the space after the comma
    body = rss(RSS_ITEM.format(title="a", link="https://blog.example/a",
                               extra="<pubDate>Mon,9 Jul 2007 14:12 +0200</pubDate>"))
    entry = parse_feed(body, {}, "https://blog.example/feed/").entries[0]
    assert entry.published == datetime(2007, 7, 9, 12, 12, tzinfo=UTC)
    assert entry.published.tzinfo is UTC


def test_latin1_declared_feed_served_as_text_xml_still_decodes() -> None:
    body = rss(RSS_ITEM.format(title="Über Größe", link="https://blog.example/a", extra=""),
               encoding="iso-8859-1")
    feed = parse_feed(body, {"content-type": "text/xml"}, "https://blog.example/feed/")
    assert feed.entries[0].title == "Über Größe"


def test_broken_xml_with_entries_is_kept_with_a_warning() -> None:
    body = rss(RSS_ITEM.format(title="Heel", link="https://blog.example/a", extra="")
               + "<item><title>Kapot</item>")
    feed = parse_feed(body, {}, "https://blog.example/feed/")
    assert feed.entries[0].title == "Heel"
    assert feed.warning and "mismatched tag" in feed.warning


def test_entries_are_capped_and_the_cap_is_reported() -> None:
    items = "".join(RSS_ITEM.format(title=f"p{i}", link=f"https://blog.example/{i}", extra="")
                    for i in range(MAX_ENTRIES + 3))
    feed = parse_feed(rss(items), {}, "https://blog.example/feed/")
    assert len(feed.entries) == MAX_ENTRIES
    assert feed.entries[-1].title == f"p{MAX_ENTRIES - 1}"
    assert feed.warning and str(MAX_ENTRIES + 3) in feed.warning


def test_thread_namespace_under_another_prefix() -> None:
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"
                     xmlns:t="http://purl.org/syndication/thread/1.0">
      <title>c</title>
      <entry><id>tag:b,2007:c1</id><title>r</title>
        <t:in-reply-to ref="tag:b,2007:p1" href="../p1"/>
        <link rel="replies" type="application/atom+xml" href="c1.atom" t:count="4"/>
      </entry></feed>"""
    entry = parse_feed(body, {}, "https://b.example/x/comments.atom").entries[0]
    assert (entry.in_reply_to, entry.in_reply_to_link) == ("tag:b,2007:p1", "https://b.example/p1")
    assert (entry.comments_feed_url, entry.comment_count) == ("https://b.example/x/c1.atom", 4)


def test_atom_id_is_not_taken_as_a_link() -> None:
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>c</title>
      <entry><id>tag:b,2007:c1</id><title>r</title></entry></feed>"""
    entry = parse_feed(body, {}, "https://b.example/feed").entries[0]
    assert (entry.guid, entry.link) == ("tag:b,2007:c1", None)


def test_json_feed_detected_by_body_whatever_the_content_type() -> None:
    body = (GOLDEN / "jsonfeed11.json").read_bytes()
    feed = parse_feed(body, {"content-type": "text/plain"}, "https://www.marketingfacts.nl/f")
    assert feed.format == "json11"


def test_results_survive_pickling_for_worker_processes() -> None:
    feed = golden("atom10_threading_comments.xml")
    assert pickle.loads(pickle.dumps(feed)) == feed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=300),
    st.builds(lambda head, tail: head + tail,
              st.sampled_from([b"<rss version='2.0'><channel><item><title>",
                               b"<feed xmlns='http://www.w3.org/2005/Atom'><entry><title>",
                               b'{"version": "https://jsonfeed.org/version/1.1", "items": [',
                               b"<?xml version='1.0'?><!DOCTYPE x [", b"<rdf:RDF>"]),
              st.binary(max_size=200)),
))
def test_anything_is_a_feed_or_a_parse_error(body: bytes) -> None:
    try:
        feed = parse_feed(body, {"content-type": "application/xml"}, "https://blog.example/f")
    except ParseError as exc:
        assert str(exc)
    else:
        assert isinstance(feed, ParsedFeed)


def test_feedburner_origlink_is_the_entry_link() -> None:
    body = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">
<channel><title>T</title><link>https://www.textwerk.de/</link><description>d</description>
<item><title>Content Marketing</title>
<link>http://feedproxy.google.com/~r/Textwerk/~3/abc/content-marketing</link>
<guid isPermaLink="false">tw-1</guid>
<feedburner:origLink>https://www.textwerk.de/2013/01/content-marketing/</feedburner:origLink>
</item></channel></rss>"""
    headers = {"content-type": "application/rss+xml"}
    feed = parse_feed(body, headers, "https://feeds.example/t")
    assert feed.entries[0].link == "https://www.textwerk.de/2013/01/content-marketing/"
    # The lxml fast path and feedparser agree on it.
    from aggregator.parse import parse_feed_with_feedparser

    assert parse_feed_with_feedparser(body, headers, "https://feeds.example/t") == feed


_WELL_FORMED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
                b"<title>Blog</title><link>https://blog.example/</link>"
                b"<item><title>Merken</title><link>https://blog.example/merken/</link>"
                b"<description>Over merken</description></item></channel></rss>")


@pytest.mark.parametrize("junk", [
    b"\r\n", b"\n\n\n  \t\n",  # a WordPress plugin or theme printing blank lines
    b"\n<!-- THEME DEBUG -->\n<!-- BEGIN OUTPUT from 'views-view-rss.html.twig' -->\n",
])
def test_blank_lines_and_comments_before_the_declaration_are_dropped(junk: bytes) -> None:
    from aggregator.fastparse import fast_parse
    from aggregator.parse import parse_feed_with_feedparser

    headers = {"content-type": "application/rss+xml; charset=UTF-8"}
    clean = parse_feed(_WELL_FORMED, headers, "https://blog.example/feed/")
    for body in (junk + _WELL_FORMED, b"\xef\xbb\xbf" + junk + _WELL_FORMED):
        # Read as the well-formed document it is: no "read leniently" warning,
        # and by the fast path, whichever way in.
        assert parse_feed(body, headers, "https://blog.example/feed/") == clean
        assert parse_feed_with_feedparser(body, headers, "https://blog.example/feed/") == clean
    assert clean.warning is None and clean.entries[0].title == "Merken"
    assert fast_parse(_WELL_FORMED, headers, "https://blog.example/feed/") == clean


def test_other_text_before_the_declaration_is_still_read_leniently() -> None:
    body = b"PHP Warning: Undefined index in feed.php\n" + _WELL_FORMED
    feed = parse_feed(body, {"content-type": "application/rss+xml"}, "https://blog.example/f")
    assert feed.warning is not None and "not well-formed" in feed.warning
    assert [entry.title for entry in feed.entries] == ["Merken"]


def test_a_feedburner_atom_feed_takes_the_fast_path() -> None:
    from aggregator.fastparse import fast_parse

    body = (b'<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
            b'xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"><title>T</title>'
            b'<id>tag:t</id><feedburner:info uri="textwerk" />'
            b"<feedburner:browserFriendly>Dit is een feed</feedburner:browserFriendly>"
            b"<entry><title>Content</title><id>tag:t,1</id>"
            b'<link rel="alternate" href="http://feedproxy.google.com/~r/T/~3/abc/"/>'
            b"<feedburner:origLink>https://www.textwerk.de/content/</feedburner:origLink>"
            b"</entry></feed>")
    headers = {"content-type": "application/atom+xml; charset=UTF-8"}
    fast = fast_parse(body, headers, "https://feeds.example/t")
    assert fast is not None and fast.entries[0].link == "https://www.textwerk.de/content/"
    from aggregator.parse import parse_feed_with_feedparser

    assert parse_feed_with_feedparser(body, headers, "https://feeds.example/t") == fast


def test_only_the_prolog_is_searched_for_what_precedes_the_declaration() -> None:
    from aggregator.parse import _trim_before_declaration

    near = b"\n" * 100 + _WELL_FORMED
    assert _trim_before_declaration(near) == _WELL_FORMED
    far = b"\n" * 70_000 + _WELL_FORMED  # past the prolog's 64 KB: left to feedparser
    assert _trim_before_declaration(far) == far
