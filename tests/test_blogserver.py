"""The test world itself: BlogServer's HTTP behaviour and the seedblogs fixture's consistency.

If these fail, aggregator tests built on the fixture cannot be trusted, so
they check the server (validators, 304, gzip, routes, recording, concurrency)
and that every fixture document is well-formed, parses cleanly with
feedparser, and agrees with ``expected.json``.
"""

from __future__ import annotations

import calendar
import gzip
import hashlib
import html
import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import lxml.etree
import lxml.html
import pytest
from blogserver import BASE_PLACEHOLDER, SEEDBLOGS, BlogServer

MANIFEST: dict[str, dict[str, str]] = json.loads(
    (SEEDBLOGS / "manifest.json").read_text(encoding="utf-8")
)["documents"]
EXPECTED: dict[str, Any] = json.loads((SEEDBLOGS / "expected.json").read_text(encoding="utf-8"))
FEED_OF_BLOG = {
    "marketingfacts": "/marketingfacts/feed/",
    "upstream": "/upstream/feed/",
    "videopodcast": "/videopodcast/atom.xml",
}
XML_PATHS = [p for p, doc in MANIFEST.items() if "xml" in doc["content_type"]]
HTML_PATHS = [p for p, doc in MANIFEST.items() if doc["content_type"].startswith("text/html")]
THR = "{http://purl.org/syndication/thread/1.0}"
ATOM = "{http://www.w3.org/2005/Atom}"


class Answer:
    """One raw HTTP answer: status, lower-cased headers, undecoded body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def fetch(server: BlogServer, path: str, method: str = "GET", **headers: str) -> Answer:
    """A plain http.client request, so gzip and 304 arrive exactly as sent."""
    host, port = urlsplit(server.base_url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(
            method, path, headers={k.replace("_", "-"): v for k, v in headers.items()}
        )
        response = connection.getresponse()
        body = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()


@pytest.fixture(scope="module")
def blogs() -> Iterator[BlogServer]:
    with BlogServer() as server:
        yield server


@pytest.fixture
def fresh_blogs() -> Iterator[BlogServer]:
    """A server of its own, for tests that change routes or count requests."""
    with BlogServer() as server:
        yield server


def parsed(server: BlogServer, path: str) -> feedparser.FeedParserDict:
    answer = fetch(server, path)
    assert answer.status == 200, path
    return feedparser.parse(
        answer.body, response_headers={"content-type": answer.headers["content-type"]}
    )


def plain_text(fragment: str) -> str:
    text = re.sub(r"<[^>]+>", " ", fragment)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def utc(struct: time.struct_time) -> str:
    return datetime.fromtimestamp(calendar.timegm(struct), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- serving


@pytest.mark.parametrize("path", sorted(MANIFEST))
def test_every_manifest_path_is_served_with_base_filled_in(blogs: BlogServer, path: str) -> None:
    answer = fetch(blogs, path)
    raw = (SEEDBLOGS / MANIFEST[path]["file"]).read_bytes()

    assert answer.status == 200
    assert answer.headers["content-type"] == MANIFEST[path]["content_type"]
    assert BASE_PLACEHOLDER.encode() not in answer.body
    assert answer.body == raw.replace(BASE_PLACEHOLDER.encode(), blogs.base_url.encode())
    assert int(answer.headers["content-length"]) == len(answer.body)
    assert answer.headers["etag"] == '"' + hashlib.sha1(answer.body).hexdigest() + '"'
    assert answer.headers["last-modified"] == MANIFEST[path]["last_modified"]


def test_unknown_path_is_404(blogs: BlogServer) -> None:
    assert fetch(blogs, "/marketingfacts/2099/01/nope/").status == 404


def test_missing_trailing_slash_redirects_like_wordpress(blogs: BlogServer) -> None:
    answer = fetch(blogs, "/marketingfacts/feed")
    assert answer.status == 301
    assert answer.headers["location"] == blogs.base_url + "/marketingfacts/feed/"


def test_query_string_is_ignored_when_routing(blogs: BlogServer) -> None:
    answer = fetch(
        blogs, "/upstream/blog/open-source-dringt-door-in-marketing/?utm_source=rss&utm_medium=feed"
    )
    assert answer.status == 200
    assert b"Open source dringt door in marketing" in answer.body


def test_head_sends_headers_without_body(blogs: BlogServer) -> None:
    answer = fetch(blogs, "/upstream/feed/", method="HEAD")
    assert answer.status == 200
    assert answer.body == b""
    assert int(answer.headers["content-length"]) > 1000


# --------------------------------------------------------------------------- validators


def test_if_none_match_answers_304_without_body(blogs: BlogServer) -> None:
    first = fetch(blogs, "/marketingfacts/feed/")
    etag = first.headers["etag"]

    again = fetch(blogs, "/marketingfacts/feed/", If_None_Match=etag)
    assert again.status == 304
    assert again.body == b""
    assert again.headers["etag"] == etag

    assert fetch(blogs, "/marketingfacts/feed/", If_None_Match="*").status == 304
    assert fetch(blogs, "/marketingfacts/feed/", If_None_Match=f'"x", W/{etag}').status == 304
    assert fetch(blogs, "/marketingfacts/feed/", If_None_Match='"stale"').status == 200


def test_if_modified_since_answers_304_unless_changed_later(blogs: BlogServer) -> None:
    last_modified = fetch(blogs, "/upstream/feed/").headers["last-modified"]
    assert fetch(blogs, "/upstream/feed/", If_Modified_Since=last_modified).status == 304
    assert (
        fetch(blogs, "/upstream/feed/", If_Modified_Since="Sun, 01 Jan 2012 00:00:00 GMT").status
        == 200
    )
    assert fetch(blogs, "/upstream/feed/", If_Modified_Since="not a date").status == 200
    # If-None-Match decides when both are sent (RFC 9110 §13.2.2).
    mixed = fetch(
        blogs, "/upstream/feed/", If_None_Match='"stale"', If_Modified_Since=last_modified
    )
    assert mixed.status == 200


def test_gzip_when_asked_for(blogs: BlogServer) -> None:
    plain = fetch(blogs, "/videopodcast/33/comments.atom")
    zipped = fetch(blogs, "/videopodcast/33/comments.atom", Accept_Encoding="gzip, deflate")

    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(zipped.body) == plain.body
    assert len(zipped.body) < len(plain.body)
    assert zipped.headers["etag"] == '"' + hashlib.sha1(zipped.body).hexdigest() + '"'
    assert zipped.headers["etag"] != plain.headers["etag"]
    revalidated = fetch(
        blogs,
        "/videopodcast/33/comments.atom",
        Accept_Encoding="gzip",
        If_None_Match=zipped.headers["etag"],
    )
    assert revalidated.status == 304
    refused = fetch(blogs, "/videopodcast/33/comments.atom", Accept_Encoding="gzip;q=0, identity")
    assert "content-encoding" not in refused.headers
    assert refused.body == plain.body


# --------------------------------------------------------------------------- runtime routes


def test_set_route_adds_and_replaces_documents(fresh_blogs: BlogServer) -> None:
    before = fetch(fresh_blogs, "/marketingfacts/feed/")
    fresh_blogs.set_route(
        "/marketingfacts/feed/",
        "<rss version='2.0'><channel><link>{{BASE}}/marketingfacts/</link></channel></rss>",
        content_type="application/rss+xml; charset=UTF-8",
    )
    after = fetch(fresh_blogs, "/marketingfacts/feed/")
    assert after.body.decode() == (
        "<rss version='2.0'><channel>"
        f"<link>{fresh_blogs.base_url}/marketingfacts/</link></channel></rss>"
    )
    assert after.headers["etag"] != before.headers["etag"]
    # An old validator no longer matches: the client must get the new body.
    assert (
        fetch(fresh_blogs, "/marketingfacts/feed/", If_None_Match=before.headers["etag"]).status
        == 200
    )
    age = datetime.now(UTC) - parsedate_to_datetime(after.headers["last-modified"])
    assert age.total_seconds() < 60

    fresh_blogs.set_route(
        "/gone/feed/",
        b"gone",
        content_type="text/plain",
        status=410,
        headers={"Retry-After": "3600", "Link": "<{{BASE}}/new/>; rel=next"},
    )
    gone = fetch(fresh_blogs, "/gone/feed/", If_None_Match="*")
    assert gone.status == 410
    assert gone.headers["retry-after"] == "3600"
    assert gone.headers["link"] == f"<{fresh_blogs.base_url}/new/>; rel=next"

    fresh_blogs.remove_route("/gone/feed/")
    assert fetch(fresh_blogs, "/gone/feed/").status == 404


def test_custom_validators_are_honoured(fresh_blogs: BlogServer) -> None:
    fresh_blogs.set_route(
        "/custom/",
        "body",
        content_type="text/plain",
        headers={"ETag": 'W/"v1"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"},
    )
    answer = fetch(fresh_blogs, "/custom/")
    assert answer.headers["etag"] == 'W/"v1"'
    assert fetch(fresh_blogs, "/custom/", If_None_Match='W/"v1"').status == 304
    assert (
        fetch(fresh_blogs, "/custom/", If_Modified_Since="Mon, 01 Jan 2024 00:00:00 GMT").status
        == 304
    )


# --------------------------------------------------------------------------- recording


def test_requests_are_recorded_and_counted(fresh_blogs: BlogServer) -> None:
    fetch(fresh_blogs, "/upstream/feed/", User_Agent="aggregator-test/1", If_None_Match='"x"')
    fetch(
        fresh_blogs, "/upstream/blog/brand-communities-social-media/?utm_source=rss&utm_medium=feed"
    )
    fetch(fresh_blogs, "/nowhere/")

    assert fresh_blogs.count() == 3
    assert fresh_blogs.count("/upstream/feed/") == 1
    assert fresh_blogs.count("/upstream/blog/brand-communities-social-media/") == 1
    assert fresh_blogs.count("/upstream/blog/brand-communities-social-media/?utm_source=rss") == 0
    first, second, third = fresh_blogs.requests
    assert (first.method, first.path, first.status) == ("GET", "/upstream/feed/", 200)
    assert first.headers["user-agent"] == "aggregator-test/1"
    assert first.headers["if-none-match"] == '"x"'
    assert second.path.endswith("?utm_source=rss&utm_medium=feed")
    assert third.status == 404
    assert first.time <= second.time <= third.time

    fresh_blogs.reset()
    assert fresh_blogs.count() == 0
    assert fresh_blogs.max_concurrent() == 0


def test_max_concurrent_sees_parallel_requests(fresh_blogs: BlogServer) -> None:
    fresh_blogs.set_delay("/videopodcast/*", 0.4)
    threads = [
        threading.Thread(target=fetch, args=(fresh_blogs, "/videopodcast/atom.xml"))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fetch(fresh_blogs, "/upstream/feed/")
    fetch(fresh_blogs, "/upstream/feed/")

    assert fresh_blogs.max_concurrent() == 4
    assert fresh_blogs.max_concurrent("/videopodcast/") == 4
    assert fresh_blogs.max_concurrent("127.0.0.1") == 4
    # Sequential requests never overlap, even though each is recorded after it ends.
    assert fresh_blogs.max_concurrent("/upstream/") == 1
    assert fresh_blogs.max_concurrent("/marketingfacts/") == 0
    assert all(
        r.duration >= 0.4 for r in fresh_blogs.requests if r.path.startswith("/videopodcast/")
    )


def test_stop_closes_idle_keep_alive_connections() -> None:
    server = BlogServer()
    server.start()
    host, port = urlsplit(server.base_url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", "/upstream/feed/")
    assert connection.getresponse().read()
    started = time.monotonic()
    server.stop()
    connection.close()
    assert time.monotonic() - started < 3
    with pytest.raises(OSError):
        fetch(server, "/upstream/feed/")


# --------------------------------------------------------------------------- fixture documents


@pytest.mark.parametrize("path", XML_PATHS)
def test_every_feed_is_well_formed_and_parses_cleanly(blogs: BlogServer, path: str) -> None:
    body = fetch(blogs, path).body
    lxml.etree.fromstring(body)  # raises on any well-formedness error
    feed = parsed(blogs, path)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.feed.get("title")


@pytest.mark.parametrize("path", HTML_PATHS)
def test_every_page_is_html_with_a_title(blogs: BlogServer, path: str) -> None:
    page = lxml.html.fromstring(fetch(blogs, path).body)
    assert page.findtext(".//title")
    assert page.xpath("//link[@rel='alternate']/@href")


def test_post_feeds_hold_the_expected_posts(blogs: BlogServer) -> None:
    for blog, feed_path in FEED_OF_BLOG.items():
        posts = [p for p in EXPECTED["posts"] if p["blog"] == blog]
        feed = parsed(blogs, feed_path)
        assert len(feed.entries) == len(posts), blog
        by_id = {entry.id: entry for entry in feed.entries}
        for post in posts:
            entry = by_id[post["guid"]]
            assert entry.title == post["title"]
            assert entry.link == blogs.base_url + post["link_path"]
            assert entry.author == post["author"]
            assert utc(entry.published_parsed) == post["published_utc"]
            assert [tag.term for tag in entry.tags] == post["categories"]
            if "slash_comments" in entry:
                assert int(entry.slash_comments) == post["comment_count_declared"]
                assert entry.get("wfw_commentrss") == (
                    blogs.base_url + post["comment_feed_path"]
                    if post["comment_feed_path"]
                    else None
                )
            else:
                replies = [
                    link for link in entry.links if link.rel == "replies" and "atom" in link.type
                ]
                assert int(replies[0]["thr:count"]) == post["comment_count_declared"]
                assert replies[0].href == blogs.base_url + post["comment_feed_path"]
            page = fetch(blogs, post["page_path"])
            assert page.status == 200
            assert html.escape(post["title"], quote=False).encode() in page.body


def test_comment_feeds_hold_the_expected_comments(blogs: BlogServer) -> None:
    for post in EXPECTED["posts"]:
        if post["comment_feed_path"] is None:
            assert post["comments"] == []
            continue
        feed = parsed(blogs, post["comment_feed_path"])
        assert len(feed.entries) == len(post["comments"]), post["title"]
        ids = {entry.id: entry for entry in feed.entries}
        for entry, comment in zip(feed.entries, post["comments"], strict=True):
            assert entry.author == comment["author"]
            assert utc(entry.published_parsed) == comment["published_utc"]
            text = plain_text(entry.content[0].value)
            assert comment["text_snippet"] in text
            answered = entry.get("thr_in-reply-to")
            if comment["in_reply_to"] == "post":
                assert answered is None or answered["ref"] == post["guid"]
            else:
                assert ids[answered["ref"]].author == comment["in_reply_to"]
        # Each snippet picks out one comment only.
        for comment in post["comments"]:
            hits = [
                e for e in feed.entries if comment["text_snippet"] in plain_text(e.content[0].value)
            ]
            assert len(hits) == 1


def test_declared_count_without_bodies_is_kept() -> None:
    (post,) = [p for p in EXPECTED["posts"] if p["title"] == "Help, de consument praat terug"]
    assert post["comment_count_declared"] == 2
    assert post["comments"] == []


def test_thread_refs_point_at_ids_that_exist(blogs: BlogServer) -> None:
    post_ids = set(
        lxml.etree.fromstring(fetch(blogs, "/videopodcast/atom.xml").body).xpath(
            "//a:entry/a:id/text()", namespaces={"a": ATOM[1:-1]}
        )
    )
    comments = lxml.etree.fromstring(fetch(blogs, "/videopodcast/33/comments.atom").body)
    comment_ids = {e.findtext(f"{ATOM}id") for e in comments.iter(f"{ATOM}entry")}
    refs = [e.find(f"{THR}in-reply-to") for e in comments.iter(f"{ATOM}entry")]

    assert len(refs) == 10 and all(ref is not None for ref in refs)
    for ref in refs:
        assert ref.get("ref") in post_ids | comment_ids
        assert urlsplit(ref.get("href")).path.startswith("/videopodcast/33/")
    replies_to_comments = [ref for ref in refs if ref.get("ref") in comment_ids]
    assert len(replies_to_comments) == 1


def test_the_cross_post_is_the_same_article_elsewhere(blogs: BlogServer) -> None:
    (original_key, copy_key) = EXPECTED["duplicates"]
    entries = {}
    for blog, guid in (original_key, copy_key):
        feed = parsed(blogs, FEED_OF_BLOG[blog])
        entries[blog] = next(e for e in feed.entries if e.id == guid)
    original, copy = entries["marketingfacts"], entries["upstream"]

    assert original.title == copy.title
    assert original.content[0].value == copy.content[0].value
    assert original.link != copy.link
    delay = calendar.timegm(copy.published_parsed) - calendar.timegm(original.published_parsed)
    assert delay == 24 * 3600


def test_related_posts_are_not_the_same_article(blogs: BlogServer) -> None:
    feed = parsed(blogs, "/marketingfacts/feed/")
    a, b = (
        next(e for e in feed.entries if e.id == guid)
        for _, guid in EXPECTED["related_not_duplicates"]
    )
    assert a.title != b.title
    assert "Open Source Marketing" in plain_text(a.content[0].value)
    assert "Open Source Marketing" in plain_text(b.content[0].value)


def test_seed_details_survive(blogs: BlogServer) -> None:
    feed = parsed(blogs, "/marketingfacts/feed/")
    bodies = {entry.title: plain_text(entry.content[0].value) for entry in feed.entries}
    # Encoding damage is kept as the seed has it.
    assert "ingredi?nten" in bodies["De marketeer wordt slechts facilitator!"]
    # Page boilerplate and the reader's reaction are not part of the posts.
    for body in bodies.values():
        assert "Mis niks" not in body
        assert "Plaats een reactie" not in body
    assert "core-competentie" not in bodies["De marketeer wordt slechts facilitator!"]

    upstream = parsed(blogs, "/upstream/feed/")
    (english,) = [e for e in upstream.entries if e.id == "https://www.upstream.nl/?p=412"]
    text = plain_text(english.content[0].value)
    assert len(text.split()) >= 300
    assert "brand communities" in text and "social media" in text
    assert "wfw_commentrss" not in english


def test_expected_dates_are_utc(blogs: BlogServer) -> None:
    (post,) = [p for p in EXPECTED["posts"] if p["guid"] == "https://www.marketingfacts.nl/?p=1532"]
    assert post["published_utc"] == "2005-05-27T10:08:00Z"  # 12:08 CEST
    assert [c["published_utc"] for c in post["comments"]] == [
        "2005-05-27T11:06:00Z",
        "2005-06-15T04:27:00Z",
    ]


def test_fixture_root_has_no_stray_files() -> None:
    served = {MANIFEST[p]["file"] for p in MANIFEST} | {"manifest.json", "expected.json"}
    on_disk = {str(f.relative_to(SEEDBLOGS)) for f in SEEDBLOGS.rglob("*") if f.is_file()}
    assert on_disk == served


def test_default_root_is_the_seedblogs_fixture() -> None:
    assert Path(SEEDBLOGS, "manifest.json").is_file()
    assert BlogServer().root == SEEDBLOGS
