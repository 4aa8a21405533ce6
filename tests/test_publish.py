"""Published outputs, read back with independent parsers.

Atom and RSS are checked with lxml (element by element) and feedparser (as a
reader would see them), JSON Feed against a JSON Schema of version 1.1 written
here from the spec, OPML with lxml, index.html with the stdlib HTML parser.
"""

from __future__ import annotations

import json
import os
import random
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from aggregator.errors import ParseError, PublishError
from aggregator.opml import read_opml
from aggregator.publish import (
    RenderMemo,
    publish_all,
    render_atom,
    render_index,
    render_json,
    render_opml,
    render_rss,
    render_thread_atom,
    write_if_changed,
)
from aggregator.types import Appearance, PublishedEntry, SiteInfo, SourceInfo, TopicInfo

ATOM = "http://www.w3.org/2005/Atom"
THR = "http://purl.org/syndication/thread/1.0"
NS = {
    "a": ATOM,
    "thr": THR,
    "dc": "http://purl.org/dc/elements/1.1/",
    "wfw": "http://wellformedweb.org/CommentAPI/",
    "slash": "http://purl.org/rss/1.0/modules/slash/",
    "content": "http://purl.org/rss/1.0/modules/content/",
}
BASE = "https://hub.example/"
STRICT = etree.XMLParser(resolve_entities=False, no_network=True, recover=False)

# --------------------------------------------------------------------------- sample content
# After the seed pages: Marketingfacts (nl) post 000 with its two comments,
# post 001 (related, not a duplicate), and the German podcast episode 004.

MARKETINGFACTS = SourceInfo(
    name="marketingfacts",
    feed_url="https://www.marketingfacts.nl/feed/",
    title="Marketingfacts",
    site_url="https://www.marketingfacts.nl/",
    language="nl",
    topics=("open-source-marketing",),
)
FRANKWATCHING = SourceInfo(
    name="frankwatching",
    feed_url="https://www.frankwatching.com/feed/",
    title="Frankwatching",
    site_url="https://www.frankwatching.com/",
    language="nl",
)
PODCAST = SourceInfo(
    name="videopodcast",
    feed_url="https://podcast.example.de/feed/atom/",
    title="Videopodcast über Marketing",
    site_url="https://podcast.example.de/",
    language="de",
)
RETIRED = SourceInfo(name="retired", feed_url="https://old.example/rss", title="Old blog",
                     site_url=None, enabled=False)

TOPICS = (
    TopicInfo("open-source-marketing", "Open source marketing"),
    TopicInfo("consumer-generated-media", "Consumer generated media"),
    TopicInfo("social-media", "Social media"),  # no posts: its feeds must still be valid
)


def at(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2005, 5, day, hour, minute, tzinfo=UTC)


def make_site(**changes: object) -> SiteInfo:
    site = SiteInfo(
        title="Marketing feeds",
        base_url=BASE,
        generator_version="0.1.0",
        updated=at(31),
        topics=TOPICS,
        sources=(MARKETINGFACTS, FRANKWATCHING, PODCAST, RETIRED),
        languages=("nl", "de"),
    )
    return replace(site, **changes)  # type: ignore[arg-type]


POST_OPEN_SOURCE = PublishedEntry(
    id="urn:uuid:5a2f96a4-996a-26ae-8000-000000000000",
    key="5a2f96a4996a26ae8000000000000000",
    kind="post",
    title="Open source dringt door in marketing",
    link="https://www.marketingfacts.nl/berichten/open-source-dringt-door-in-marketing",
    content_html="<p>Deze maand in Emerce een interessant artikel over merk-gemeenschappen.</p>",
    summary_html="<p>Marketing staat voor een ingrijpende verandering.</p>",
    author="Marco Derksen",
    published=at(27, 12, 8),
    updated=at(27, 12, 8),
    categories=("Open source", "Branding"),
    language="nl",
    topics=("open-source-marketing", "consumer-generated-media"),
    source=MARKETINGFACTS,
    appearances=(
        Appearance("marketingfacts", MARKETINGFACTS.feed_url, "https://www.marketingfacts.nl/?p=1",
                   "https://www.marketingfacts.nl/berichten/open-source-dringt-door-in-marketing",
                   at(27, 12, 8)),
        Appearance("frankwatching", FRANKWATCHING.feed_url, "fw-123",
                   "https://www.frankwatching.com/archive/open-source-marketing/", at(27, 15)),
    ),
    comment_count=3,
)
POST_FACILITATOR = PublishedEntry(
    id="urn:uuid:de77cb3f-4fc9-ae29-8000-000000000000",
    key="de77cb3f4fc9ae298000000000000000",
    kind="post",
    title="De marketeer wordt slechts facilitator!",
    link="https://www.marketingfacts.nl/berichten/de-marketeer-wordt-slechts-facilitator",
    content_html="<p>Het Open Source Marketing Manifest: ingredi?nten voor merken.</p>",
    summary_html="",
    author=None,  # the page names no author
    published=at(20, 9),
    updated=at(28, 10),
    categories=(),
    language="nl",
    topics=("open-source-marketing",),
    source=MARKETINGFACTS,
)
POST_PODCAST = PublishedEntry(
    id="urn:uuid:c4c0aa69-ab94-cf44-8000-000000000000",
    key="c4c0aa69ab94cf448000000000000000",
    kind="post",
    title="33: Martin Oetting über Marketing im Internet-Zeitalter",
    link="https://podcast.example.de/2007/07/09/33-martin-oetting/",
    content_html="<p>Martin Oetting spricht über Word-of-Mouth-Marketing.</p>",
    summary_html="",
    author="Patrick",
    published=at(29, 8),
    updated=at(29, 8),
    categories=("Podcast",),
    language="de",
    topics=("consumer-generated-media",),
    source=PODCAST,
    comment_count=0,
)
COMMENT_KASPER = PublishedEntry(
    id="urn:uuid:00000000-0000-4000-8000-00000000c001",
    key="000000000000400080000000000c001",
    kind="comment",
    title="",
    link=POST_OPEN_SOURCE.link + "#comment-1",
    content_html="<p>Mooi stuk! Open source werkt ook voor koffie.</p>",
    summary_html="",
    author="Kasper Katje",
    published=at(27, 13, 6),
    updated=at(27, 13, 6),
    categories=(),
    language="nl",
    topics=(),
    source=MARKETINGFACTS,
    in_reply_to_id=POST_OPEN_SOURCE.id,
    in_reply_to_link=POST_OPEN_SOURCE.link,
    post_id=POST_OPEN_SOURCE.id,
    post_key=POST_OPEN_SOURCE.key,
    post_title=POST_OPEN_SOURCE.title,
)
COMMENT_RENS = replace(
    COMMENT_KASPER,
    id="urn:uuid:00000000-0000-4000-8000-00000000c002",
    key="000000000000400080000000000c002",
    link=POST_OPEN_SOURCE.link + "#comment-2",
    content_html="<p>Goed punt over de woordvoerders.</p>",
    author="Rens",
    published=at(30, 6, 27),
    updated=at(30, 6, 27),
)
# A reply to Kasper's comment, not to the post.
COMMENT_REPLY = replace(
    COMMENT_KASPER,
    id="urn:uuid:00000000-0000-4000-8000-00000000c003",
    key="000000000000400080000000000c003",
    link=POST_OPEN_SOURCE.link + "#comment-3",
    content_html="<p>@Kasper: en voor wasmachines?</p>",
    author=None,
    published=at(30, 9),
    updated=at(30, 9),
    in_reply_to_id=COMMENT_KASPER.id,
    in_reply_to_link=COMMENT_KASPER.link,
)

POSTS = (POST_FACILITATOR, POST_OPEN_SOURCE, POST_PODCAST)  # deliberately not sorted
COMMENTS = (COMMENT_KASPER, COMMENT_REPLY, COMMENT_RENS)

HOSTILE = "</title><script>alert(1)</script> ]]> \x00 & \"quotes\" 'single' \x0b\x1f"


def parse_xml(data: bytes) -> etree._Element:
    return etree.fromstring(data, STRICT)


def read_feed(data: bytes) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def atom_of(entries: tuple[PublishedEntry, ...] = POSTS, site: SiteInfo | None = None,
            path: str = "all.atom") -> etree._Element:
    site = site or make_site()
    return parse_xml(render_atom(site, path=path, title=site.title, entries=entries))


def entry_by_id(feed: etree._Element, entry_id: str) -> etree._Element:
    (entry,) = [e for e in feed.iterfind("a:entry", NS) if e.findtext("a:id", namespaces=NS)
                == entry_id]
    return entry


# --------------------------------------------------------------------------- Atom


def test_atom_feed_has_the_rfc4287_feed_elements() -> None:
    feed = atom_of()
    assert feed.tag == f"{{{ATOM}}}feed"
    assert feed.findtext("a:id", namespaces=NS) == BASE + "all.atom"
    assert feed.findtext("a:title", namespaces=NS) == "Marketing feeds"
    # Newest entry's updated (POST_PODCAST, 29 May), never the time of writing.
    assert feed.findtext("a:updated", namespaces=NS) == "2005-05-29T08:00:00+00:00"
    assert feed.findtext("a:author/a:name", namespaces=NS) == "Marketing feeds"
    links = {(link.get("rel"), link.get("type")): link.get("href")
             for link in feed.iterfind("a:link", NS)}
    assert links[("self", "application/atom+xml")] == BASE + "all.atom"
    assert links[("alternate", "text/html")] == BASE
    assert links[("alternate", "application/rss+xml")] == BASE + "all.rss"
    assert links[("alternate", "application/feed+json")] == BASE + "all.json"
    generator = feed.find("a:generator", NS)
    assert generator is not None and generator.get("version") == "0.1.0"


def test_every_atom_entry_has_the_required_elements_and_an_author() -> None:
    feed = atom_of(POSTS + COMMENTS)
    feed_has_author = feed.find("a:author/a:name", NS) is not None
    entries = feed.findall("a:entry", NS)
    assert len(entries) == 6
    for entry in entries:
        for name in ("id", "title", "updated", "published", "content"):
            assert (entry.findtext(f"a:{name}", namespaces=NS) or "").strip(), name
        assert entry.find("a:title", NS).get("type") in (None, "text")
        assert entry.find("a:content", NS).get("type") == "html"
        own_author = entry.find("a:author/a:name", NS) is not None
        source_author = entry.find("a:source/a:author/a:name", NS) is not None
        assert own_author or source_author or feed_has_author
        # No entry relies on the aggregator as its author.
        assert own_author or source_author
        alternates = [link for link in entry.iterfind("a:link", NS)
                      if link.get("rel") in (None, "alternate")]
        assert len({link.get("type") for link in alternates}) == len(alternates)


def test_atom_entry_carries_a_full_atom_source() -> None:
    entry = entry_by_id(atom_of(), POST_FACILITATOR.id)
    source = entry.find("a:source", NS)
    assert source is not None
    assert source.findtext("a:id", namespaces=NS) == MARKETINGFACTS.feed_url
    assert source.findtext("a:title", namespaces=NS) == "Marketingfacts"
    assert source.findtext("a:updated", namespaces=NS) == "2005-05-28T10:00:00+00:00"
    links = {link.get("rel"): link.get("href") for link in source.iterfind("a:link", NS)}
    assert links == {"self": MARKETINGFACTS.feed_url, "alternate": MARKETINGFACTS.site_url}
    # No author on the entry: the blog it came from is named in atom:source.
    assert entry.find("a:author", NS) is None
    assert source.findtext("a:author/a:name", namespaces=NS) == "Marketingfacts"


def test_atom_post_links_replies_with_thr_count_and_appearances_as_via() -> None:
    entry = entry_by_id(atom_of(), POST_OPEN_SOURCE.id)
    assert entry.get("{http://www.w3.org/XML/1998/namespace}lang") == "nl"
    (replies,) = entry.xpath("a:link[@rel='replies']", namespaces=NS)
    assert replies.get("type") == "application/atom+xml"
    assert replies.get("href") == f"{BASE}posts/{POST_OPEN_SOURCE.key}/comments.atom"
    assert replies.get(f"{{{THR}}}count") == "3"
    (alternate,) = entry.xpath("a:link[@rel='alternate']", namespaces=NS)
    assert alternate.get("href") == POST_OPEN_SOURCE.link
    (via,) = entry.xpath("a:link[@rel='via']", namespaces=NS)
    assert via.get("href") == "https://www.frankwatching.com/archive/open-source-marketing/"
    assert via.get("title") == "Frankwatching"
    content = entry.findtext("a:content", namespaces=NS)
    assert content.startswith(POST_OPEN_SOURCE.content_html)
    assert ('Also published at: <a href="https://www.frankwatching.com/archive/'
            'open-source-marketing/">Frankwatching</a>') in content
    assert entry.findtext("a:summary", namespaces=NS) == POST_OPEN_SOURCE.summary_html


def test_atom_categories_and_topics() -> None:
    entry = entry_by_id(atom_of(), POST_OPEN_SOURCE.id)
    categories = [(c.get("term"), c.get("scheme"), c.get("label"))
                  for c in entry.iterfind("a:category", NS)]
    assert categories == [
        ("Open source", None, None),
        ("Branding", None, None),
        ("open-source-marketing", BASE + "topics/", "Open source marketing"),
        ("consumer-generated-media", BASE + "topics/", "Consumer generated media"),
    ]


def test_atom_comment_carries_thr_in_reply_to() -> None:
    feed = atom_of(COMMENTS, path="comments.atom")
    assert feed.nsmap.get("thr") == THR
    reply = entry_by_id(feed, COMMENT_REPLY.id)
    (in_reply_to,) = reply.findall("thr:in-reply-to", NS)
    assert in_reply_to.get("ref") == COMMENT_KASPER.id
    assert in_reply_to.get("href") == COMMENT_KASPER.link
    assert in_reply_to.get("type") == "text/html"
    (related,) = reply.xpath("a:link[@rel='related']", namespaces=NS)
    assert related.get("href") == f"{BASE}posts/{POST_OPEN_SOURCE.key}/comments.atom"
    assert related.get("title") == POST_OPEN_SOURCE.title
    # A comment has no replies link of its own.
    assert not reply.xpath("a:link[@rel='replies']", namespaces=NS)
    # A blank comment title gets a readable one.
    assert reply.findtext("a:title", namespaces=NS) == (
        f"Comment by someone on {POST_OPEN_SOURCE.title}")


def test_feedparser_reads_back_every_atom_entry() -> None:
    site = make_site()
    parsed = read_feed(render_atom(site, path="all.atom", title=site.title,
                                   entries=POSTS + COMMENTS))
    assert parsed.version == "atom10"
    assert [e.id for e in parsed.entries] == [e.id for e in POSTS + COMMENTS]
    by_id = {e.id: e for e in parsed.entries}
    podcast = by_id[POST_PODCAST.id]
    assert podcast.title == POST_PODCAST.title
    assert podcast.link == POST_PODCAST.link
    assert podcast.author == "Patrick"
    assert podcast.published_parsed[:5] == (2005, 5, 29, 8, 0)
    assert podcast.content[0].value == POST_PODCAST.content_html
    assert podcast.source.title == "Videopodcast über Marketing"
    assert by_id[COMMENT_RENS.id].author == "Rens"


# --------------------------------------------------------------------------- RSS


def test_rss_channel_and_items_by_lxml() -> None:
    site = make_site()
    rss = parse_xml(render_rss(site, path="all.rss", title=site.title, entries=POSTS,
                               subtitle="Every post"))
    assert rss.tag == "rss" and rss.get("version") == "2.0"
    channel = rss.find("channel")
    assert channel.findtext("title") == "Marketing feeds"
    assert channel.findtext("link") == BASE
    assert channel.findtext("description") == "Every post"
    assert channel.findtext("lastBuildDate") == "Sun, 29 May 2005 08:00:00 +0000"
    assert channel.findtext("generator") == "aggregator 0.1.0"
    assert channel.findtext("docs")
    (self_link,) = channel.findall("a:link", NS)
    assert (self_link.get("rel"), self_link.get("href"), self_link.get("type")) == (
        "self", BASE + "all.rss", "application/rss+xml")

    items = {item.findtext("guid"): item for item in channel.iterfind("item")}
    assert set(items) == {e.id for e in POSTS}
    post = items[POST_OPEN_SOURCE.id]
    assert post.find("guid").get("isPermaLink") == "false"
    assert post.findtext("title") == POST_OPEN_SOURCE.title
    assert post.findtext("link") == POST_OPEN_SOURCE.link
    assert post.findtext("pubDate") == "Fri, 27 May 2005 12:08:00 +0000"
    assert post.find("author") is None  # RSS <author> must be an e-mail address
    assert post.findtext("dc:creator", namespaces=NS) == "Marco Derksen"
    assert [c.text for c in post.iterfind("category")] == [
        "Open source", "Branding", "Open source marketing", "Consumer generated media"]
    source = post.find("source")
    assert (source.get("url"), source.text) == (MARKETINGFACTS.feed_url, "Marketingfacts")
    assert post.findtext("comments") == POST_OPEN_SOURCE.link
    assert post.findtext("wfw:commentRss", namespaces=NS) == (
        f"{BASE}posts/{POST_OPEN_SOURCE.key}/comments.atom")
    assert post.findtext("slash:comments", namespaces=NS) == "3"
    assert post.findtext("content:encoded", namespaces=NS).startswith(
        POST_OPEN_SOURCE.content_html)
    assert post.findtext("description") == POST_OPEN_SOURCE.summary_html
    # Without a summary the description is the content itself.
    assert items[POST_PODCAST.id].findtext("description") == POST_PODCAST.content_html


def test_rss_comments_point_at_their_post() -> None:
    site = make_site()
    rss = parse_xml(render_rss(site, path="comments.rss", title="c", entries=COMMENTS))
    for item in rss.iterfind("channel/item"):
        assert item.findtext("wfw:commentRss", namespaces=NS) == (
            f"{BASE}posts/{POST_OPEN_SOURCE.key}/comments.atom")
        assert item.find("thr:in-reply-to", NS) is not None
        assert item.find("slash:comments", NS) is None
    reply = [i for i in rss.iterfind("channel/item") if i.findtext("guid") == COMMENT_REPLY.id]
    assert reply[0].find("thr:in-reply-to", NS).get("ref") == COMMENT_KASPER.id


def test_feedparser_reads_back_every_rss_item() -> None:
    site = make_site()
    parsed = read_feed(render_rss(site, path="all.rss", title=site.title,
                                  entries=POSTS + COMMENTS))
    assert parsed.version == "rss20"
    assert [e.id for e in parsed.entries] == [e.id for e in POSTS + COMMENTS]
    by_id = {e.id: e for e in parsed.entries}
    assert by_id[POST_OPEN_SOURCE.id].author == "Marco Derksen"
    assert by_id[POST_OPEN_SOURCE.id].wfw_commentrss.endswith("/comments.atom")
    assert by_id[POST_PODCAST.id].title == POST_PODCAST.title
    assert by_id[POST_PODCAST.id].source.href == PODCAST.feed_url


# --------------------------------------------------------------------------- JSON Feed

_DATE_TIME = (r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?"
              r"(Z|[+-]\d{2}:\d{2})$")  # RFC 3339
_URL = {"type": "string", "pattern": r"^https?://\S+$"}
_EXTENSIONS = {"^_[A-Za-z]": {"type": "object"}}
_AUTHORS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "url": _URL, "avatar": _URL},
        "anyOf": [{"required": ["name"]}, {"required": ["url"]}, {"required": ["avatar"]}],
        "patternProperties": _EXTENSIONS,
        "additionalProperties": False,
    },
}
#: JSON Feed 1.1 (https://jsonfeed.org/version/1.1), as a JSON Schema.
JSONFEED_11 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "title", "items"],
    "properties": {
        "version": {"const": "https://jsonfeed.org/version/1.1"},
        "title": {"type": "string"},
        "home_page_url": _URL,
        "feed_url": _URL,
        "description": {"type": "string"},
        "user_comment": {"type": "string"},
        "next_url": _URL,
        "icon": _URL,
        "favicon": _URL,
        "authors": _AUTHORS,
        "language": {"type": "string", "pattern": "^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$"},
        "expired": {"type": "boolean"},
        "hubs": {"type": "array", "items": {
            "type": "object", "required": ["type", "url"],
            "properties": {"type": {"type": "string"}, "url": _URL}}},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id"],
                "anyOf": [{"required": ["content_html"]}, {"required": ["content_text"]}],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "url": _URL,
                    "external_url": _URL,
                    "title": {"type": "string"},
                    "content_html": {"type": "string"},
                    "content_text": {"type": "string"},
                    "summary": {"type": "string"},
                    "image": _URL,
                    "banner_image": _URL,
                    "date_published": {"type": "string", "pattern": _DATE_TIME},
                    "date_modified": {"type": "string", "pattern": _DATE_TIME},
                    "authors": _AUTHORS,
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "language": {"type": "string"},
                    "attachments": {"type": "array"},
                },
                "patternProperties": _EXTENSIONS,
                "additionalProperties": False,
            },
        },
    },
    "patternProperties": _EXTENSIONS,
    "additionalProperties": False,
}


def test_json_feed_is_valid_json_feed_1_1() -> None:
    jsonschema.Draft202012Validator.check_schema(JSONFEED_11)
    site = make_site()
    data = render_json(site, path="all.json", title=site.title, entries=POSTS + COMMENTS,
                       subtitle="Every post", language="nl")
    document = json.loads(data.decode("utf-8"))
    jsonschema.validate(document, JSONFEED_11)
    assert document["feed_url"] == BASE + "all.json"
    assert document["home_page_url"] == BASE
    assert document["description"] == "Every post"
    assert [item["id"] for item in document["items"]] == [e.id for e in POSTS + COMMENTS]
    for item in document["items"]:
        datetime.fromisoformat(item["date_published"])
        datetime.fromisoformat(item["date_modified"])


def test_json_feed_items_and_aggregator_extension() -> None:
    site = make_site()
    document = json.loads(render_json(site, path="all.json", title="t",
                                      entries=POSTS + COMMENTS))
    items = {item["id"]: item for item in document["items"]}
    post = items[POST_OPEN_SOURCE.id]
    assert post["url"] == POST_OPEN_SOURCE.link
    assert post["summary"] == "Marketing staat voor een ingrijpende verandering."
    assert post["authors"] == [{"name": "Marco Derksen"}]
    assert post["language"] == "nl"
    assert post["tags"] == ["Open source", "Branding", "Open source marketing",
                            "Consumer generated media"]
    assert "Also published at" in post["content_html"]
    extension = post["_aggregator"]
    assert extension["source"] == {"name": "marketingfacts", "feed_url": MARKETINGFACTS.feed_url,
                                   "title": "Marketingfacts", "site_url": MARKETINGFACTS.site_url}
    assert [a["source"] for a in extension["appearances"]] == ["marketingfacts", "frankwatching"]
    assert extension["comment_count"] == 3
    reply = items[COMMENT_REPLY.id]["_aggregator"]
    assert reply["in_reply_to"] == COMMENT_KASPER.id
    assert reply["post_id"] == POST_OPEN_SOURCE.id
    assert "authors" not in items[COMMENT_REPLY.id]
    assert "url" not in items[COMMENT_REPLY.id] or items[COMMENT_REPLY.id]["url"]


def test_json_feed_keeps_non_ascii_readable() -> None:
    site = make_site()
    data = render_json(site, path="lang/de.json", title="de", entries=(POST_PODCAST,))
    assert "über".encode() in data


# --------------------------------------------------------------------------- thread feeds


def test_thread_feed_has_every_comment_with_in_reply_to() -> None:
    site = make_site()
    data = render_thread_atom(site, POST_OPEN_SOURCE, COMMENTS)
    feed = parse_xml(data)
    url = f"{BASE}posts/{POST_OPEN_SOURCE.key}/comments.atom"
    assert feed.findtext("a:id", namespaces=NS) == url
    assert feed.xpath("a:link[@rel='self']/@href", namespaces=NS) == [url]
    assert feed.xpath("a:link[@rel='alternate']/@href", namespaces=NS) == [POST_OPEN_SOURCE.link]
    entries = feed.findall("a:entry", NS)
    # Newest first.
    assert [e.findtext("a:id", namespaces=NS) for e in entries] == [
        COMMENT_REPLY.id, COMMENT_RENS.id, COMMENT_KASPER.id]
    refs = {e.findtext("a:id", namespaces=NS): e.find("thr:in-reply-to", NS).get("ref")
            for e in entries}
    assert refs == {COMMENT_KASPER.id: POST_OPEN_SOURCE.id,
                    COMMENT_RENS.id: POST_OPEN_SOURCE.id,
                    COMMENT_REPLY.id: COMMENT_KASPER.id}
    assert len(read_feed(data).entries) == 3


def test_empty_thread_feed_is_valid_and_dated_by_its_post() -> None:
    feed = parse_xml(render_thread_atom(make_site(), POST_PODCAST, ()))
    assert feed.findall("a:entry", NS) == []
    assert feed.findtext("a:updated", namespaces=NS) == "2005-05-29T08:00:00+00:00"


# --------------------------------------------------------------------------- hostile input


def hostile_entries() -> tuple[SiteInfo, tuple[PublishedEntry, ...]]:
    source = replace(MARKETINGFACTS, title=HOSTILE, site_url="https://x.example/?a=1&b=\"2\"")
    site = make_site(title=HOSTILE, topics=(TopicInfo("social-media", HOSTILE),),
                     sources=(source,))
    post = replace(POST_OPEN_SOURCE, title=HOSTILE, content_html=f"<p>{HOSTILE}</p>",
                   summary_html=HOSTILE, author=HOSTILE, categories=(HOSTILE,),
                   topics=("social-media",), source=source,
                   link="https://x.example/post?a=1&b=<2>")
    comment = replace(COMMENT_KASPER, title="", author=HOSTILE, post_title=HOSTILE,
                      source=source, content_html="]]>")
    return site, (post, comment)


def test_hostile_strings_give_well_formed_xml_and_json() -> None:
    site, entries = hostile_entries()
    # Characters XML cannot carry are dropped; entry titles get their spaces collapsed.
    kept = HOSTILE.replace("\x00", "").replace("\x0b", "").replace("\x1f", "")
    cleaned = " ".join(kept.split())
    for render in (render_atom, render_rss):
        data = render(site, path="all.x", title=HOSTILE, entries=entries, subtitle=HOSTILE)
        root = parse_xml(data)
        assert b"<script>" not in data
        assert root.xpath("//*[local-name()='script']") == []
        parsed = read_feed(data)
        assert parsed.entries[0].title == cleaned
    thread = parse_xml(render_thread_atom(site, entries[0], entries[1:]))
    assert thread.findtext("a:title", namespaces=NS) == f"Comments on: {cleaned}"
    document = json.loads(render_json(site, path="all.json", title=HOSTILE, entries=entries))
    jsonschema.validate(document, JSONFEED_11)
    assert document["items"][0]["title"] == cleaned
    opml = parse_xml(render_opml(site))
    assert opml.find("body/outline").get("text") == kept


def test_hostile_strings_are_escaped_in_the_index_page() -> None:
    site, entries = hostile_entries()
    page = render_index(site, entries[:1]).decode("utf-8")
    tree = PageTree.of(page)
    assert tree.tags.count("script") == 0
    assert tree.title == HOSTILE.replace("\x00", "").replace("\x0b", "").replace("\x1f", "")
    assert "\x00" not in page


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=st.text(max_size=40), author=st.text(max_size=20), term=st.text(max_size=10))
def test_any_text_gives_well_formed_feeds(title: str, author: str, term: str) -> None:
    post = replace(POST_PODCAST, title=title, author=author or None, categories=(term,),
                   content_html=title)
    site = make_site()
    for render in (render_atom, render_rss):
        data = render(site, path="all.x", title=title, entries=(post,))
        root = parse_xml(data)
        titles = root.xpath("//a:entry/a:title/text() | //item/title/text()", namespaces=NS)
        assert len(titles) == 1 and titles[0].strip()
    json.loads(render_json(site, path="all.json", title=title, entries=(post,)))


# --------------------------------------------------------------------------- OPML and index


def test_opml_lists_enabled_sources() -> None:
    opml = parse_xml(render_opml(make_site()))
    assert opml.get("version") == "2.0"
    assert opml.findtext("head/title") == "Marketing feeds: sources"
    # site.updated is the time of the run: no date unless asked, so the file stays put.
    assert opml.find("head/dateCreated") is None
    dated = parse_xml(render_opml(make_site(), date_created=at(31)))
    assert dated.findtext("head/dateCreated") == "Tue, 31 May 2005 12:00:00 GMT"
    outlines = opml.findall("body/outline")
    assert [o.get("xmlUrl") for o in outlines] == [
        MARKETINGFACTS.feed_url, FRANKWATCHING.feed_url, PODCAST.feed_url]
    first = outlines[0]
    assert (first.get("type"), first.get("text"), first.get("title"), first.get("htmlUrl"),
            first.get("language")) == ("rss", "Marketingfacts", "Marketingfacts",
                                       MARKETINGFACTS.site_url, "nl")
    everything = parse_xml(render_opml(make_site(), include_disabled=True))
    retired = everything.findall("body/outline")[-1]
    assert (retired.get("xmlUrl"), retired.get("isComment")) == (RETIRED.feed_url, "true")


def test_read_opml_reads_back_what_render_opml_wrote() -> None:
    outlines = read_opml(render_opml(make_site()))
    assert [(o.url, o.title, o.site_url, o.language) for o in outlines] == [
        (MARKETINGFACTS.feed_url, "Marketingfacts", MARKETINGFACTS.site_url, "nl"),
        (FRANKWATCHING.feed_url, "Frankwatching", FRANKWATCHING.site_url, "nl"),
        (PODCAST.feed_url, "Videopodcast über Marketing", PODCAST.site_url, "de"),
    ]


def test_read_opml_finds_nested_outlines_and_ignores_entities() -> None:
    document = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<opml version="1.0"><head><title>&secret;</title></head><body>
  <outline text="Marketing">
    <outline text="Marketingfacts &amp; co" type="rss" xmlUrl="https://www.marketingfacts.nl/feed/"/>
    <outline text="A" type="rss" xmlUrl="https://a.example/feed"/>
  </outline>
  <outline text="Duplicate" xmlUrl="https://www.marketingfacts.nl/feed/"/>
  <outline text="No feed here"/>
</body></opml>"""
    outlines = read_opml(document)
    assert [o.url for o in outlines] == ["https://www.marketingfacts.nl/feed/",
                                         "https://a.example/feed"]
    assert outlines[0].title == "Marketingfacts & co"
    assert outlines[1].title == "A"
    # An entity in an attribute is refused outright, never expanded.
    with pytest.raises(ParseError):
        read_opml(document.replace(b'text="A"', b'text="&secret;"'))


@pytest.mark.parametrize("document", [b"<rss version='2.0'/>", b"not xml at all", b""])
def test_read_opml_rejects_what_is_not_opml(document: bytes) -> None:
    with pytest.raises(ParseError):
        read_opml(document)


class PageTree(HTMLParser):
    """What the index page contains, as a browser's tokenizer sees it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.links: list[dict[str, str | None]] = []
        self.anchors: list[str | None] = []
        self.title = ""
        self.in_title = False
        self.doctype = ""

    @classmethod
    def of(cls, page: str) -> PageTree:
        tree = cls()
        tree.feed(page)
        tree.close()
        return tree

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "link":
            self.links.append(dict(attrs))
        if tag == "a":
            self.anchors.append(dict(attrs).get("href"))
        self.in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self.in_title = False

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data


def test_index_page_has_autodiscovery_feeds_posts_and_sources() -> None:
    site = make_site()
    page = render_index(site, POSTS).decode("utf-8")
    tree = PageTree.of(page)
    assert tree.doctype.lower() == "doctype html"
    assert "script" not in tree.tags and tree.tags.count("style") == 1
    discovered = [link["href"] for link in tree.links
                  if link.get("rel") == "alternate" and link.get("type") == "application/atom+xml"]
    assert discovered == [
        "all.atom", "comments.atom", "topics/open-source-marketing.atom",
        "topics/consumer-generated-media.atom", "topics/social-media.atom",
        "lang/nl.atom", "lang/de.atom"]
    for stem in ("all", "comments", "topics/social-media", "lang/de"):
        for suffix in ("atom", "rss", "json"):
            assert f"{stem}.{suffix}" in tree.anchors
    for post in POSTS:
        assert post.link in tree.anchors
    assert "sources.opml" in tree.anchors
    assert MARKETINGFACTS.site_url in tree.anchors
    assert RETIRED.feed_url not in tree.anchors
    assert "Martin Oetting über Marketing" in page


def test_index_page_never_links_to_javascript_urls() -> None:
    post = replace(POST_PODCAST, link="javascript:alert(1)")
    tree = PageTree.of(render_index(make_site(), (post,)).decode())
    assert not [href for href in tree.anchors if href and href.startswith("javascript")]


# --------------------------------------------------------------------------- publish_all


def expected_files(root: Path) -> set[Path]:
    stems = ["all", "comments", "topics/open-source-marketing",
             "topics/consumer-generated-media", "topics/social-media", "lang/nl", "lang/de"]
    files = {root / f"{stem}.{suffix}" for stem in stems for suffix in ("atom", "rss", "json")}
    return files | {root / "sources.opml", root / "index.html"}


def test_publish_all_writes_every_output(tmp_path: Path) -> None:
    root = tmp_path / "feeds"
    changed = publish_all(root, make_site(), POSTS, COMMENTS)
    assert set(changed) == expected_files(root.resolve())
    written = {p for p in root.rglob("*") if p.is_file()}
    assert written == expected_files(root.resolve())
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    # Newest first by published.
    all_posts = read_feed((root / "all.atom").read_bytes())
    assert [e.id for e in all_posts.entries] == [
        POST_PODCAST.id, POST_OPEN_SOURCE.id, POST_FACILITATOR.id]
    comments = read_feed((root / "comments.rss").read_bytes())
    assert [e.id for e in comments.entries] == [
        COMMENT_REPLY.id, COMMENT_RENS.id, COMMENT_KASPER.id]
    topic = read_feed((root / "topics/open-source-marketing.atom").read_bytes())
    assert {e.id for e in topic.entries} == {POST_OPEN_SOURCE.id, POST_FACILITATOR.id}
    german = read_feed((root / "lang/de.rss").read_bytes())
    assert [e.id for e in german.entries] == [POST_PODCAST.id]
    assert german.feed.language == "de"
    german_json = json.loads((root / "lang/de.json").read_bytes())
    assert german_json["language"] == "de"


def test_an_empty_topic_still_gets_valid_feeds(tmp_path: Path) -> None:
    publish_all(tmp_path, make_site(), POSTS, COMMENTS)
    atom = read_feed((tmp_path / "topics/social-media.atom").read_bytes())
    assert atom.entries == [] and atom.feed.title == "Marketing feeds: Social media"
    # Fixed (no now()), and after 1990: the W3C validator calls older dates implausible.
    assert atom.feed.updated == "2000-01-01T00:00:00+00:00"
    rss = read_feed((tmp_path / "topics/social-media.rss").read_bytes())
    assert rss.entries == [] and rss.feed.description == "Posts about Social media"
    document = json.loads((tmp_path / "topics/social-media.json").read_bytes())
    jsonschema.validate(document, JSONFEED_11)
    assert document["items"] == []


def test_second_publish_is_byte_identical_and_writes_nothing(tmp_path: Path) -> None:
    site = make_site()
    publish_all(tmp_path, site, POSTS, COMMENTS)
    # The pipeline stamps site.updated with the time of the run.
    site = make_site(updated=datetime.now(UTC))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*.*")}
    shuffled_posts, shuffled_comments = list(POSTS), list(COMMENTS)
    random.Random(7).shuffle(shuffled_posts)
    random.Random(7).shuffle(shuffled_comments)
    assert publish_all(tmp_path, site, shuffled_posts, shuffled_comments) == []
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*.*")}
    assert after == before


def test_renderers_are_pure() -> None:
    site = make_site()
    for render in (render_atom, render_rss, render_json):
        first = render(site, path="all.x", title="t", entries=POSTS)
        assert render(site, path="all.x", title="t", entries=POSTS) == first
    assert render_thread_atom(site, POST_OPEN_SOURCE, COMMENTS) == render_thread_atom(
        site, POST_OPEN_SOURCE, COMMENTS)
    assert render_index(site, POSTS) == render_index(site, POSTS)
    assert render_opml(site) == render_opml(site)


def test_a_changed_entry_rewrites_only_the_feeds_it_is_in(tmp_path: Path) -> None:
    site = make_site()
    publish_all(tmp_path, site, POSTS, COMMENTS)
    edited = replace(POST_PODCAST, content_html="<p>Neu</p>",
                     updated=POST_PODCAST.updated + timedelta(hours=1))
    changed = publish_all(tmp_path, site, (POST_FACILITATOR, POST_OPEN_SOURCE, edited), COMMENTS)
    names = {str(p.relative_to(tmp_path.resolve())) for p in changed}
    assert {"lang/de.atom", "all.json", "topics/consumer-generated-media.rss"} <= names
    # The page shows publication dates only, and the other feeds lack the post.
    assert not names & {"lang/nl.atom", "comments.atom", "topics/open-source-marketing.rss",
                        "sources.opml", "index.html"}
    feed = parse_xml((tmp_path / "lang/de.atom").read_bytes())
    assert feed.findtext("a:updated", namespaces=NS) == "2005-05-29T09:00:00+00:00"


def test_a_render_memo_renders_only_what_changed_or_went_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aggregator.publish as publish_module

    rendered: list[str] = []
    original = publish_module.render_atom

    def counting_render_atom(site: SiteInfo, *, path: str, **kwargs: object) -> bytes:
        rendered.append(path)
        return original(site, path=path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(publish_module, "render_atom", counting_render_atom)
    memo = RenderMemo()
    publish_all(tmp_path, make_site(), POSTS, COMMENTS, memo=memo)
    assert "all.atom" in rendered and "comments.atom" in rendered
    rendered.clear()
    # Nothing new (only the time of the run): nothing is rendered at all.
    assert publish_all(tmp_path, make_site(updated=datetime.now(UTC)), POSTS, COMMENTS,
                       memo=memo) == []
    assert rendered == []
    edited = replace(POST_PODCAST, content_html="<p>Neu</p>",
                     updated=POST_PODCAST.updated + timedelta(hours=1))
    posts = (POST_FACILITATOR, POST_OPEN_SOURCE, edited)
    changed = publish_all(tmp_path, make_site(), posts, COMMENTS, memo=memo)
    assert {"all.atom", "lang/de.atom"} <= set(rendered)
    assert not set(rendered) & {"comments.atom", "lang/nl.atom",
                                "topics/open-source-marketing.atom"}
    assert {str(p.relative_to(tmp_path.resolve())) for p in changed if p.suffix == ".atom"} \
        <= set(rendered)
    # A file changed or removed behind the memo's back is written again.
    rendered.clear()
    (tmp_path / "comments.atom").unlink()
    (tmp_path / "lang" / "nl.atom").write_bytes(b"tampered")
    publish_all(tmp_path, make_site(), posts, COMMENTS, memo=memo)
    assert sorted(rendered) == ["comments.atom", "lang/nl.atom"]
    fresh = tmp_path / "fresh"
    publish_all(fresh, make_site(), posts, COMMENTS)
    for name in ("comments.atom", "lang/nl.atom"):
        assert (tmp_path / name).read_bytes() == (fresh / name).read_bytes()


def test_entry_ids_are_the_published_ids_in_every_format(tmp_path: Path) -> None:
    site = make_site()
    publish_all(tmp_path, site, POSTS, COMMENTS)
    ids = {e.id for e in POSTS}
    atom_ids = parse_xml((tmp_path / "all.atom").read_bytes()).xpath(
        "a:entry/a:id/text()", namespaces=NS)
    rss_ids = parse_xml((tmp_path / "all.rss").read_bytes()).xpath("channel/item/guid/text()")
    json_ids = [i["id"] for i in json.loads((tmp_path / "all.json").read_bytes())["items"]]
    assert set(atom_ids) == set(rss_ids) == set(json_ids) == ids
    # Republishing from scratch gives the same ids.
    publish_all(tmp_path / "again", site, POSTS, COMMENTS)
    assert (tmp_path / "again/all.atom").read_bytes() == (tmp_path / "all.atom").read_bytes()


def test_feeds_are_capped_at_the_newest_entries(tmp_path: Path) -> None:
    publish_all(tmp_path, make_site(), POSTS, COMMENTS, max_entries=2)
    assert [e.id for e in read_feed((tmp_path / "all.rss").read_bytes()).entries] == [
        POST_PODCAST.id, POST_OPEN_SOURCE.id]
    assert len(json.loads((tmp_path / "comments.json").read_bytes())["items"]) == 2


def test_stale_topic_and_language_feeds_are_removed(tmp_path: Path) -> None:
    publish_all(tmp_path, make_site(), POSTS, COMMENTS)
    (tmp_path / "topics" / "README.txt").write_text("not a feed")
    (tmp_path / "unrelated.atom").write_text("not ours")
    site = make_site(topics=TOPICS[:1], languages=("nl",))
    changed = publish_all(tmp_path, site, POSTS, COMMENTS)
    root = tmp_path.resolve()
    for stem in ("topics/consumer-generated-media", "topics/social-media", "lang/de"):
        for suffix in ("atom", "rss", "json"):
            assert not (tmp_path / f"{stem}.{suffix}").exists()
            assert root / f"{stem}.{suffix}" in changed
    assert (tmp_path / "topics/open-source-marketing.atom").exists()
    assert (tmp_path / "lang/nl.json").exists()
    assert (tmp_path / "topics/README.txt").read_text() == "not a feed"
    assert (tmp_path / "unrelated.atom").read_text() == "not ours"


def test_publish_never_writes_outside_feeds_dir(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    site = make_site(topics=(TopicInfo("../../escaped", "Evil"), TopicInfo("ok", "Ok")),
                     languages=("../x", "nl/../../y"))
    publish_all(feeds, site, POSTS, COMMENTS)
    outside = [p for p in tmp_path.rglob("*") if feeds not in p.parents and p != feeds]
    assert outside == []
    assert (feeds / "topics/ok.atom").exists()
    assert not list(feeds.rglob("*escaped*"))
    index = (feeds / "index.html").read_text()
    assert "escaped" not in index


def test_publish_refuses_a_symlinked_folder_pointing_outside(tmp_path: Path) -> None:
    feeds, elsewhere = tmp_path / "feeds", tmp_path / "elsewhere"
    feeds.mkdir()
    elsewhere.mkdir()
    (feeds / "topics").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(PublishError, match="outside"):
        publish_all(feeds, make_site(), POSTS, COMMENTS)
    assert list(elsewhere.iterdir()) == []


# --------------------------------------------------------------------------- write_if_changed


def test_write_if_changed_skips_identical_bytes_and_keeps_mtime(tmp_path: Path) -> None:
    path = tmp_path / "all.atom"
    assert write_if_changed(path, b"<feed/>") is True
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    assert write_if_changed(path, b"<feed/>") is False
    assert path.stat().st_mtime_ns == 1_000_000_000_000_000_000
    assert write_if_changed(path, b"<feed></feed>") is True
    assert path.read_bytes() == b"<feed></feed>"
    assert path.stat().st_mtime_ns != 1_000_000_000_000_000_000
    assert [p.name for p in tmp_path.iterdir()] == ["all.atom"]  # no temporary files left


def test_write_if_changed_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "index.html"
    path.write_bytes(b"old")
    reader = path.open("rb")  # a reader that opened the old file keeps reading it whole
    try:
        assert write_if_changed(path, b"new content")
        assert reader.read() == b"old"
    finally:
        reader.close()
    assert path.read_bytes() == b"new content"


def test_write_if_changed_reports_unwritable_places(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    with pytest.raises(PublishError):
        write_if_changed(blocker / "inside" / "all.atom", b"data")


def test_publish_removes_temporaries_a_killed_publish_left(tmp_path: Path) -> None:
    import os
    import time as clock

    from aggregator.publish import publish_all as publish

    feeds = tmp_path / "feeds"
    feeds.mkdir()
    old = feeds / ".all.atom.abc123.tmp"
    old.write_bytes(b"<half")
    os.utime(old, (clock.time() - 3600, clock.time() - 3600))
    fresh = feeds / ".all.rss.def456.tmp"
    fresh.write_bytes(b"<being written")
    site = SiteInfo(title="T", base_url="http://127.0.0.1:8080/", generator_version="0",
                    updated=datetime(2026, 1, 1, tzinfo=UTC))
    publish(feeds, site, [], [])
    assert not old.exists()
    assert fresh.exists()  # may belong to a publish running right now


def _web_url_by_the_long_way(url: str | None) -> str | None:
    """What the index page's link check did before its fast path (see page._web_url)."""
    from urllib.parse import urlsplit

    from aggregator.jsonfeed import clean_text as xml_text

    if not url:
        return None
    url = xml_text(url).strip()
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["http://", "https://", "HTTPS://", "hTtp://", "javascript:",
                        "data:", "ftp://", "http:/", " http://", ""]),
       st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list("[]\\&<>\"' \t%")),
               max_size=40))
def test_index_page_links_take_the_fast_path_only_where_it_agrees(prefix: str, rest: str) -> None:
    from aggregator.page import _web_url

    assert _web_url(prefix + rest) == _web_url_by_the_long_way(prefix + rest)


def test_a_uri_of_plain_characters_is_told_by_one_match_as_by_the_character_set() -> None:
    from aggregator.jsonfeed import _URI_PLAIN, _URI_SAFE, web_uri

    for code in range(0x2100):
        char = chr(code)
        assert bool(_URI_PLAIN.fullmatch(char)) == (char in _URI_SAFE or char == "%"), hex(code)
    assert _URI_PLAIN.fullmatch("https://blog.example/a-b_c~d/?q=1&r=%C3%BC#x")
    assert not _URI_PLAIN.fullmatch("https://blog.example/a\n")
    # Plain URIs come back as they are; the rest is escaped as before.
    assert web_uri("https://blog.example/p?x=1#y") == "https://blog.example/p?x=1#y"
    assert web_uri("https://blog.example/über uns|") == "https://blog.example/%C3%BCber%20uns%7C"
    assert web_uri("https://blog.example/100%") == "https://blog.example/100%25"
