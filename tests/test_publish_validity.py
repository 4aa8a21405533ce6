"""Published feeds against the rules the W3C feed validator and the specs enforce.

Each test pins one problem the validator (feedvalidator.org) would report,
or one RFC 4287 / RFC 4685 / JSON Feed 1.1 / OPML 2.0 rule, named in the
test. The rules are restated here from the specs, not taken from the
validator's code: URL syntax from RFC 3986, canonical ids from §6.2.2.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from dataclasses import replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from lxml import etree
from test_publish import (
    COMMENT_KASPER,
    COMMENT_REPLY,
    COMMENTS,
    MARKETINGFACTS,
    NS,
    POST_OPEN_SOURCE,
    POST_PODCAST,
    POSTS,
    make_site,
    parse_xml,
    read_feed,
)

from aggregator.opml import read_opml
from aggregator.publish import (
    publish_all,
    render_atom,
    render_json,
    render_opml,
    render_rss,
    render_thread_atom,
)
from aggregator.types import Appearance

#: RFC 3986: what a URI may contain, literally ("[" "]" only around an IPv6 host).
URI_CHARS = frozenset(string.ascii_letters + string.digits + "-._~:/?#@!$&'()*+,;=%")
FULL_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")

GERMAN_LINK = "https://podcast.example.de/2007/07/09/über-uns/?q=a|b&tag=[x]#kommentar 1"
GERMAN_LINK_AS_URI = (
    "https://podcast.example.de/2007/07/09/%C3%BCber-uns/?q=a%7Cb&tag=%5Bx%5D#kommentar%201"
)


def is_uri(value: str) -> bool:
    bad_percent = re.search("%(?![0-9A-Fa-f]{2})", value)
    return bool(FULL_URI.fullmatch(value)) and set(value) <= URI_CHARS and not bad_percent


def all_links_of(feed: etree._Element) -> list[str]:
    """Every URL an Atom or RSS document carries, in attributes and in URL elements."""
    urls = [value for element in feed.iter() if isinstance(element.tag, str)
            for name, value in element.attrib.items()
            if name in ("href", "url", "scheme", "domain")]
    url_elements = ("link", "comments", "docs", "{http://wellformedweb.org/CommentAPI/}commentRss")
    urls += [element.text for element in feed.iter(*url_elements) if element.text]
    urls += [element.text for element in feed.iter(f"{{{NS['a']}}}id", f"{{{NS['a']}}}uri")]
    return urls


# --------------------------------------------------------------------------- URLs


def test_rss_links_are_urls_even_when_the_blog_wrote_an_iri() -> None:
    """InvalidFullLink / UriNotIri: RSS link, comments, source url must be full URLs."""
    post = replace(POST_PODCAST, link=GERMAN_LINK)
    source = replace(POST_PODCAST.source, feed_url="https://podcast.example.de/feed/ätom/")
    comment = replace(COMMENT_KASPER, link=GERMAN_LINK + "-c", in_reply_to_link=GERMAN_LINK)
    site = make_site()
    rss = parse_xml(render_rss(site, path="all.rss", title="t",
                               entries=[replace(post, source=source), comment]))
    item = rss.find("channel/item")
    assert item.findtext("link") == GERMAN_LINK_AS_URI
    assert item.findtext("comments") == GERMAN_LINK_AS_URI
    assert item.find("source").get("url") == "https://podcast.example.de/feed/%C3%A4tom/"
    for url in all_links_of(rss):
        assert is_uri(url), url


def test_atom_hrefs_and_json_urls_are_ascii_uris() -> None:
    """Atom allows IRIs, but readers in C/C++ pass hrefs to ASCII-only HTTP libraries."""
    appearance = Appearance("frankwatching", "https://www.frankwatching.com/feed/", "fw-1",
                            "https://www.frankwatching.com/größe/", None)
    post = replace(POST_OPEN_SOURCE, link=GERMAN_LINK,
                   appearances=(POST_OPEN_SOURCE.appearances[0], appearance))
    comment = replace(COMMENT_REPLY, in_reply_to_link=GERMAN_LINK)
    site = make_site()
    atom = parse_xml(render_atom(site, path="all.atom", title="t", entries=[post, comment]))
    for url in all_links_of(atom):
        assert is_uri(url), url
    hrefs = [link.get("href") for link in atom.iterfind("a:entry/a:link", NS)]
    assert GERMAN_LINK_AS_URI in hrefs
    assert "https://www.frankwatching.com/gr%C3%B6%C3%9Fe/" in hrefs
    reply = atom.find("a:entry/thr:in-reply-to", NS)
    assert reply.get("href") == GERMAN_LINK_AS_URI
    document = json.loads(render_json(site, path="all.json", title="t", entries=[post]))
    assert document["items"][0]["url"] == GERMAN_LINK_AS_URI
    assert 'href="https://www.frankwatching.com/gr%C3%B6%C3%9Fe/"' in (
        document["items"][0]["content_html"])


def test_international_host_names_get_their_idna_form() -> None:
    post = replace(POST_PODCAST, link="https://bücher.example/ä?x=1")
    rss = parse_xml(render_rss(make_site(), path="all.rss", title="t", entries=[post]))
    assert rss.findtext("channel/item/link") == "https://xn--bcher-kva.example/%C3%A4?x=1"


def test_uris_already_valid_are_left_exactly_as_they_are() -> None:
    """Escapes are kept as written (no double escaping), so links stay stable."""
    link = "https://www.marketingfacts.nl/a%C3%BCb/?utm_source=rss&x=%2F#c-1"
    post = replace(POST_PODCAST, link=link)
    rss = parse_xml(render_rss(make_site(), path="all.rss", title="t", entries=[post]))
    assert rss.findtext("channel/item/link") == link


def test_atom_source_id_is_a_canonical_uri() -> None:
    """NonCanonicalURI: ids are compared character by character (RFC 4287 §4.2.6)."""
    source = replace(MARKETINGFACTS, feed_url="HTTP://WWW.Marketingfacts.NL:80/%7efeed/%e2%82%ac")
    post = replace(POST_OPEN_SOURCE, source=source)
    atom = parse_xml(render_atom(make_site(), path="all.atom", title="t", entries=[post]))
    atom_source = atom.find("a:entry/a:source", NS)
    assert atom_source.findtext("a:id", namespaces=NS) == (
        "http://www.marketingfacts.nl/~feed/%E2%82%AC")
    # The self link stays the address as configured, only made ASCII-safe.
    self_link = atom_source.find("a:link[@rel='self']", NS)
    assert self_link.get("href") == "HTTP://WWW.Marketingfacts.NL:80/%7efeed/%e2%82%ac"


def test_feed_id_and_self_link_are_canonical() -> None:
    """NonCanonicalURI on the feed id; the self link must equal the document address."""
    site = make_site(base_url="https://Hub.Example:443/")
    atom = parse_xml(render_atom(site, path="all.atom", title="t", entries=POSTS))
    assert atom.findtext("a:id", namespaces=NS) == "https://hub.example/all.atom"
    assert atom.find("a:link[@rel='self']", NS).get("href") == "https://hub.example/all.atom"
    rss = parse_xml(render_rss(site, path="all.rss", title="t", entries=POSTS))
    self_link = rss.find("channel/a:link[@rel='self']", NS)
    assert self_link.get("href") == "https://hub.example/all.rss"
    document = json.loads(render_json(site, path="all.json", title="t", entries=POSTS))
    assert document["feed_url"] == "https://hub.example/all.json"


# --------------------------------------------------------------------------- dates


def test_an_empty_feed_has_a_plausible_fixed_date(tmp_path: Path) -> None:
    """ImplausibleDate: the validator warns about dates before 1990 (the epoch was used)."""
    publish_all(tmp_path, make_site(), POSTS, COMMENTS)
    atom = parse_xml((tmp_path / "topics/social-media.atom").read_bytes())
    updated = datetime.fromisoformat(atom.findtext("a:updated", namespaces=NS))
    assert updated.year >= 1990
    rss = parse_xml((tmp_path / "topics/social-media.rss").read_bytes())
    assert parsedate_to_datetime(rss.findtext("channel/lastBuildDate")) == updated
    again = tmp_path / "again"
    publish_all(again, make_site(), POSTS, COMMENTS)
    assert (again / "topics/social-media.atom").read_bytes() == (
        tmp_path / "topics/social-media.atom").read_bytes()


# --------------------------------------------------------------------------- content


def test_an_entry_without_text_but_with_a_link_has_no_blank_content() -> None:
    """NotBlank on atom:content; RFC 4287 §4.1.1.1 lets the alternate link stand in."""
    post = replace(POST_PODCAST, content_html="", summary_html="")
    atom = parse_xml(render_atom(make_site(), path="all.atom", title="t", entries=[post]))
    entry = atom.find("a:entry", NS)
    assert entry.find("a:content", NS) is None
    alternates = entry.findall("a:link[@rel='alternate']", NS)
    assert [link.get("href") for link in alternates] == [post.link]
    rss = parse_xml(render_rss(make_site(), path="all.rss", title="t", entries=[post]))
    item = rss.find("channel/item")
    assert item.find("description") is None and item.findtext("title") == post.title
    assert read_feed(render_atom(make_site(), path="all.atom", title="t", entries=[post]))


def test_an_entry_without_text_or_link_carries_its_title_as_content() -> None:
    """MissingContentOrAlternate: an entry needs content or an alternate link."""
    post = replace(POST_PODCAST, content_html="", summary_html="", link=None)
    atom = parse_xml(render_atom(make_site(), path="all.atom", title="t", entries=[post]))
    content = atom.find("a:entry/a:content", NS)
    assert content.get("type") == "text" and content.text == post.title


def test_a_summary_used_as_content_is_not_repeated() -> None:
    post = replace(POST_PODCAST, content_html="", summary_html="<p>Kort.</p>")
    atom = parse_xml(render_atom(make_site(), path="all.atom", title="t", entries=[post]))
    entry = atom.find("a:entry", NS)
    assert entry.findtext("a:content", namespaces=NS) == "<p>Kort.</p>"
    assert entry.find("a:summary", NS) is None
    rss = parse_xml(render_rss(make_site(), path="all.rss", title="t", entries=[post]))
    item = rss.find("channel/item")
    assert item.findtext("description") == "<p>Kort.</p>"
    assert item.find("content:encoded", NS) is None


def test_replacement_characters_are_not_published() -> None:
    """BadCharacters: U+FFFD only marks bytes a decoder lost upstream."""
    post = replace(POST_PODCAST, title="Caf\ufffd", content_html="<p>\ufffdber</p>")
    for render in (render_atom, render_rss, render_json):
        data = render(make_site(), path="all.x", title="t", entries=[post])
        assert "\ufffd" not in data.decode("utf-8")


# --------------------------------------------------------------------------- links, threading


def test_every_atom_link_has_a_rel_and_one_alternate_per_type_and_language() -> None:
    """DuplicateAtomLink (RFC 4287 §4.1.1); feedgen's rel-less copies must not leak."""
    site = make_site()
    feeds = [render_atom(site, path="all.atom", title="t", entries=POSTS),
             render_atom(site, path="comments.atom", title="t", entries=COMMENTS),
             render_thread_atom(site, POST_OPEN_SOURCE, COMMENTS)]
    for data in feeds:
        feed = parse_xml(data)
        for parent in [feed, *feed.iterfind("a:entry", NS)]:
            links = parent.findall("a:link", NS)
            assert all(link.get("rel") for link in links)
            alternates = Counter((link.get("type"), link.get("hreflang"))
                                 for link in links if link.get("rel") == "alternate")
            assert all(count == 1 for count in alternates.values()), alternates


def test_threading_follows_rfc_4685() -> None:
    """thr:count only on rel="replies" links; thr:in-reply-to ref is an absolute IRI."""
    site = make_site()
    for data in (render_atom(site, path="all.atom", title="t", entries=POSTS),
                 render_atom(site, path="comments.atom", title="t", entries=COMMENTS),
                 render_thread_atom(site, POST_OPEN_SOURCE, COMMENTS)):
        feed = parse_xml(data)
        for link in feed.iter(f"{{{NS['a']}}}link"):
            if link.get(f"{{{NS['thr']}}}count") is not None:
                assert link.get("rel") == "replies"
                assert int(link.get(f"{{{NS['thr']}}}count")) >= 0
        for reply in feed.iter(f"{{{NS['thr']}}}in-reply-to"):
            assert is_uri(reply.get("ref")), reply.get("ref")


# --------------------------------------------------------------------------- JSON Feed, OPML


def test_json_feed_title_and_author_never_blank() -> None:
    site = make_site(title="  ")
    document = json.loads(render_json(site, path="all.json", title="", entries=POSTS))
    assert document["title"].strip()
    assert all(author["name"].strip() for author in document["authors"])
    assert all(key.startswith("_") for item in document["items"] for key in item
               if key not in {"id", "url", "title", "content_html", "summary", "date_published",
                              "date_modified", "authors", "tags", "language"})


def test_opml_without_sources_still_has_an_outline() -> None:
    """OPML 2.0: <body> contains one or more <outline> elements (validator: MissingElement)."""
    site = make_site(sources=(replace(MARKETINGFACTS, enabled=False),))
    data = render_opml(site)
    body = etree.fromstring(data).find("body")
    (outline,) = body.findall("outline")
    assert outline.get("text")
    assert read_opml(data) == ()


def test_opml_html_url_is_a_url() -> None:
    site = make_site(sources=(replace(MARKETINGFACTS, site_url="https://blog.example/über/"),))
    (outline,) = etree.fromstring(render_opml(site)).iter("outline")
    assert outline.get("htmlUrl") == "https://blog.example/%C3%BCber/"
    assert outline.get("xmlUrl") == MARKETINGFACTS.feed_url
