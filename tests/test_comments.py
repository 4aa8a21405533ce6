"""Following comment feeds: only when the count changed, only for recent posts,
site-wide comment feeds, and nothing unsafe republished from a hostile post."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from blogserver import SEEDBLOGS, BlogServer
from passes import run_pass
from sqlalchemy import text
from test_end_to_end import write_config

from aggregator.store import CommentFeedState, Store

POST_FEED = "/marketingfacts/feed/"
OPEN_SOURCE_COMMENTS = "/marketingfacts/2005/05/open-source-dringt-door-in-marketing/feed/"
THIRD_COMMENT = """	<item>
		<title>Door: Lotte</title>
		<link>{{BASE}}/marketingfacts/2005/05/open-source-dringt-door-in-marketing/#comment-2500</link>
		<dc:creator><![CDATA[Lotte]]></dc:creator>
		<pubDate>Mon, 20 Jun 2005 09:15:00 +0200</pubDate>
		<guid isPermaLink="false">https://www.marketingfacts.nl/?p=1532#comment-2500</guid>
		<description><![CDATA[Merkgemeenschappen werken alleen als het merk
		echt durft los te laten.]]></description>
	</item>
</channel>"""


@pytest.fixture
def blog() -> Iterator[BlogServer]:
    with BlogServer() as server:
        yield server


def fixture(path: str) -> str:
    manifest = json.loads((SEEDBLOGS / "manifest.json").read_text("utf-8"))
    return (SEEDBLOGS / manifest["documents"][path]["file"]).read_text("utf-8")


def declaring(feed: str, title: str, before: int, after: int) -> str:
    """``feed`` with the post titled ``title`` declaring ``after`` comments, not ``before``."""
    old = f"<slash:comments>{before}</slash:comments>"
    new = f"<slash:comments>{after}</slash:comments>"
    count_at = feed.index(old, feed.index(f"<title>{title}</title>"))
    return feed[:count_at] + new + feed[count_at + len(old):]


def test_comment_feed_refetched_only_when_its_count_changes(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    config = write_config(tmp_path, blog, sources=("marketingfacts",))
    run_pass(config, database_url)
    first_requests = {r.route for r in blog.requests}
    assert OPEN_SOURCE_COMMENTS in first_requests

    # The post now declares 3 comments and its comment feed has a third one.
    feed = declaring(fixture(POST_FEED), "Open source dringt door in marketing", 2, 3)
    blog.set_route(POST_FEED, feed, content_type="application/rss+xml; charset=UTF-8")
    comments = fixture(OPEN_SOURCE_COMMENTS).replace("</channel>", THIRD_COMMENT)
    blog.set_route(OPEN_SOURCE_COMMENTS, comments,
                   content_type="application/rss+xml; charset=UTF-8")
    blog.reset()
    report = run_pass(config, database_url)
    fetched = [r.route for r in blog.requests]
    # The post feed, and of the four comment feeds only the one whose count changed.
    assert sorted(fetched) == sorted([POST_FEED, OPEN_SOURCE_COMMENTS])
    assert sum(o.report.new_comments for o in report.outcomes) == 1
    published = feedparser.parse((tmp_path / "feeds" / "comments.atom").read_bytes())
    lotte = [e for e in published.entries if e.get("author") == "Lotte"]
    assert len(lotte) == 1
    assert lotte[0].published.startswith("2005-06-20T07:15:00")


TWEE_TRENDS_COMMENTS = "/marketingfacts/2013/01/twee-trends-om-in-2013-in-de-gaten-te-houden/feed/"
FIRST_TREND_COMMENT = """	<item>
		<title>Door: Joost</title>
		<link>{{BASE}}/marketingfacts/2013/01/twee-trends-om-in-2013-in-de-gaten-te-houden/#comment-1</link>
		<dc:creator><![CDATA[Joost]]></dc:creator>
		<pubDate>Tue, 08 Jan 2013 10:00:00 +0100</pubDate>
		<guid isPermaLink="false">https://www.marketingfacts.nl/?p=9000#comment-1</guid>
		<description><![CDATA[Second screen gaat dit jaar echt doorbreken.]]></description>
	</item>
</channel>"""


def test_comment_feed_of_a_post_declaring_none_waits_for_a_count(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    config = write_config(tmp_path, blog, sources=("marketingfacts",))
    run_pass(config, database_url)
    assert TWEE_TRENDS_COMMENTS not in {r.route for r in blog.requests}

    # Still 0 on the next pass (the post feed changed for another post):
    # still not fetched.
    feed = fixture(POST_FEED)
    blog.set_route(POST_FEED, feed.replace("</channel>", "<!-- changed --></channel>"),
                   content_type="application/rss+xml; charset=UTF-8")
    blog.reset()
    run_pass(config, database_url)
    assert [r.route for r in blog.requests] == [POST_FEED]

    # The post now declares a comment: its feed is read, and the comment kept.
    feed = declaring(feed, "Twee trends om in 2013 in de gaten te houden", 0, 1)
    blog.set_route(POST_FEED, feed, content_type="application/rss+xml; charset=UTF-8")
    blog.set_route(TWEE_TRENDS_COMMENTS,
                   fixture(TWEE_TRENDS_COMMENTS).replace("</channel>", FIRST_TREND_COMMENT),
                   content_type="application/rss+xml; charset=UTF-8")
    blog.reset()
    report = run_pass(config, database_url)
    assert sorted(r.route for r in blog.requests) == sorted([POST_FEED, TWEE_TRENDS_COMMENTS])
    assert sum(o.report.new_comments for o in report.outcomes) == 1
    published = feedparser.parse((tmp_path / "feeds" / "comments.atom").read_bytes())
    assert [e.get("author") for e in published.entries].count("Joost") == 1


def test_old_posts_comment_feeds_are_left_alone(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    config = write_config(tmp_path, blog, sources=("marketingfacts",))
    config.write_text(config.read_text("utf-8").replace("comments_days = 36500",
                                                        "comments_days = 0"))
    report = run_pass(config, database_url)
    assert {r.route for r in blog.requests} == {POST_FEED}
    assert sum(o.report.new_comments for o in report.outcomes) == 0


def test_site_wide_comment_feed_threads_under_posts(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    site_feed = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Reacties voor Marketingfacts</title>
  <link>{{BASE}}/marketingfacts/</link>
  <description>Alle reacties</description>
  <item>
    <title>Reactie op Help, de consument praat terug door Sanne</title>
    <link>{{BASE}}/marketingfacts/2008/02/help-de-consument-praat-terug/#comment-9001</link>
    <dc:creator>Sanne</dc:creator>
    <pubDate>Wed, 13 Feb 2008 10:00:00 +0100</pubDate>
    <guid isPermaLink="false">https://www.marketingfacts.nl/?p=7410#comment-9001</guid>
    <description>Terugpraten is precies wat merken nodig hebben.</description>
  </item>
  <item>
    <title>Reactie op een verdwenen bericht door Piet</title>
    <link>{{BASE}}/marketingfacts/2001/01/bestaat-niet/#comment-1</link>
    <dc:creator>Piet</dc:creator>
    <pubDate>Wed, 13 Feb 2008 11:00:00 +0100</pubDate>
    <guid isPermaLink="false">https://www.marketingfacts.nl/?p=1#comment-1</guid>
    <description>Dit bericht bestaat niet meer.</description>
  </item>
</channel>
</rss>"""
    blog.set_route("/marketingfacts/comments/feed/", site_feed,
                   content_type="application/rss+xml; charset=UTF-8")
    config = write_config(tmp_path, blog, sources=("marketingfacts",))
    text = config.read_text("utf-8").replace(
        'allow_private = true',
        f'allow_private = true\ncomments_url = "{blog.url("/marketingfacts/comments/feed/")}"', 1)
    config.write_text(text, "utf-8")
    report = run_pass(config, database_url)
    assert sum(o.report.orphan_comments for o in report.outcomes) == 1
    feeds = tmp_path / "feeds"
    posts = {e.title: e.id for e in feedparser.parse((feeds / "all.atom").read_bytes()).entries}
    comments = feedparser.parse((feeds / "comments.atom").read_bytes()).entries
    sanne = next(e for e in comments if e.get("author") == "Sanne")
    assert sanne["thr_in-reply-to"]["ref"] == posts["Help, de consument praat terug"]
    assert not any(e.get("author") == "Piet" for e in comments)

    # A second pass: the post feed answers 304, so the comment feeds due are
    # the ones read when the source was claimed: only the site-wide feed,
    # which declares no count, and it answers 304 too.
    blog.reset()
    again = run_pass(config, database_url)
    assert sorted(r.route for r in blog.requests) == sorted(
        [POST_FEED, "/marketingfacts/comments/feed/"])
    assert {r.status for r in blog.requests} == {304}
    assert sum(o.comment_feeds for o in again.outcomes) == 1


def test_claim_brings_the_same_comment_feeds_as_asking_after(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    config = write_config(tmp_path, blog, sources=("marketingfacts",))
    run_pass(config, database_url)
    store = Store(database_url)
    try:
        now = datetime.now(UTC)

        def claimed(days: int) -> tuple[list[CommentFeedState], list[CommentFeedState]]:
            claim = store.claim_due(now=now, owner="t", lease=timedelta(minutes=5),
                                    names=["marketingfacts"], force=True, comments_days=days)
            store.release([state.id for state in claim], "t")
            (state,) = claim
            assert state.comment_feeds_due is not None
            return (list(state.comment_feeds_due),
                    store.comment_feeds_due(state.id, now=now, comments_days=days))

        # Every count matches what was fetched: nothing due, either way.
        assert claimed(36500) == ([], [])
        # A post now declares another comment: its feed is due, either way.
        with store.engine.begin() as connection:
            connection.execute(text(
                "UPDATE comment_feed SET declared_count = declared_count + 1 WHERE url = :url"),
                {"url": blog.url(OPEN_SOURCE_COMMENTS)})
        at_claim, asked = claimed(36500)
        assert [feed.url for feed in at_claim] == [blog.url(OPEN_SOURCE_COMMENTS)]
        assert at_claim == asked
        # Past the horizon nothing is due.
        assert claimed(0) == ([], [])
    finally:
        store.close()


def test_hostile_post_is_republished_safely(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    hostile = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Evil</title><link>{{BASE}}/evil/</link>
<description>x</description>
<item>
  <title>&lt;script&gt;alert(1)&lt;/script&gt;Gratis &lt;/title&gt; ]]&gt; marketing</title>
  <link>javascript:alert(1)</link>
  <guid isPermaLink="false">evil-1</guid>
  <pubDate>Tue, 05 Feb 2999 09:00:00 +0000</pubDate>
  <description><![CDATA[<p onclick="steal()">Klik <a href="javascript:alert(2)">hier</a>
  <img src="x" onerror="alert(3)"><script>alert(4)</script><style>body{}</style>
  <form action="https://evil.example/"><input name="q"></form>
  <iframe src="https://evil.example/"></iframe>
  <a href="data:text/html,hi">data</a></p>]]></description>
</item></channel></rss>"""
    blog.set_route("/evil/feed/", hostile, content_type="application/rss+xml")
    config = write_config(tmp_path, blog, sources=())
    config.write_text(config.read_text("utf-8") + f"""
[[sources]]
name = "evil"
url = "{blog.url('/evil/feed/')}"
allow_private = true
""", "utf-8")
    run_pass(config, database_url)
    feeds = tmp_path / "feeds"
    for path in [*feeds.rglob("*.atom"), *feeds.rglob("*.rss"), *feeds.rglob("*.json"),
                 feeds / "index.html", feeds / "sources.opml"]:
        text = path.read_text("utf-8").lower()
        # Escaped or not, none of these may survive into any output.
        for bad in ("javascript:", "onclick", "onerror", "<form", "&lt;form", "<iframe",
                    "&lt;iframe", "data:text/html", "steal()"):
            assert bad not in text, (path, bad)
        assert "<script" not in text and "&lt;script" not in text, path
    entry = feedparser.parse((feeds / "all.atom").read_bytes()).entries[0]
    assert "Gratis" in entry.title
    # A date in the future is clamped to when we first saw the entry.
    assert entry.published_parsed.tm_year < 2999


def test_comment_feed_on_another_site_is_not_fetched(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    port = blog.base_url.rsplit(":", 1)[1]
    feed = fixture(POST_FEED).replace(
        "<wfw:commentRss>{{BASE}}/marketingfacts/2005/05/",
        f"<wfw:commentRss>http://localhost:{port}/elsewhere/2005/05/", 1)
    assert "/elsewhere/" in feed
    blog.set_route(POST_FEED, feed, content_type="application/rss+xml; charset=UTF-8")
    config = write_config(tmp_path, blog, sources=("marketingfacts",))
    run_pass(config, database_url)
    routes = [r.route for r in blog.requests]
    assert not any(route.startswith("/elsewhere/") for route in routes)
    # The blog's own comment feeds are still followed (but the one of the
    # post that declares 0 comments).
    assert sorted(routes) == sorted([
        POST_FEED, "/marketingfacts/2005/04/de-marketeer-wordt-slechts-facilitator/feed/",
        "/marketingfacts/2008/02/help-de-consument-praat-terug/feed/"])


def test_a_feed_read_despite_a_fault_says_so_in_the_log(
    tmp_path: Path, blog: BlogServer, caplog: pytest.LogCaptureFixture,
) -> None:
    config = write_config(tmp_path, blog, sources=("marketingfacts",))
    # Served as a web page: read all the same, and the log says what was wrong.
    blog.set_route(POST_FEED, fixture(POST_FEED), content_type="text/html")
    with caplog.at_level("INFO", logger="aggregator"):
        report = run_pass(config, f"sqlite:///{tmp_path / 'a.db'}", publish=False)
    (outcome,) = report.outcomes
    assert outcome.report.new_posts > 0
    assert outcome.warning == "document declared as us-ascii, but parsed as utf-8"
    assert f"source=marketingfacts feed warning: {outcome.warning}" in caplog.text
    # A clean feed says nothing of the kind.
    blog.set_route(POST_FEED, fixture(POST_FEED),
                   content_type="application/rss+xml; charset=UTF-8")
    caplog.clear()
    with caplog.at_level("INFO", logger="aggregator"):
        report = run_pass(config, f"sqlite:///{tmp_path / 'b.db'}", publish=False)
    assert report.outcomes[0].warning is None and "feed warning" not in caplog.text


def test_a_comment_feed_read_despite_a_fault_says_so_in_the_log(
    tmp_path: Path, blog: BlogServer, caplog: pytest.LogCaptureFixture,
) -> None:
    config = write_config(tmp_path, blog, sources=("marketingfacts",))
    comments = "/marketingfacts/2005/05/open-source-dringt-door-in-marketing/feed/"
    blog.set_route(comments, fixture(comments), content_type="text/plain")
    with caplog.at_level("INFO", logger="aggregator"):
        report = run_pass(config, f"sqlite:///{tmp_path / 'a.db'}", publish=False)
    (outcome,) = report.outcomes
    assert outcome.report.new_comments > 0 and outcome.comment_errors == 0
    assert outcome.warning is None  # the post feed itself is clean
    lines = [line for line in caplog.text.splitlines() if "warning:" in line]
    assert len(lines) == 1, lines
    assert (f"source=marketingfacts comment feed {blog.url(comments)} warning: "
            "document declared as us-ascii, but parsed as utf-8") in lines[0]
