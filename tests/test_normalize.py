"""normalize: a ParsedEntry becomes safe, uniform and comparable."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.fastparse import fast_parse
from aggregator.normalize import MIN_FINGERPRINT_WORDS, normalize_entries, normalize_entry
from aggregator.parse import parse_feed, parse_feed_with_feedparser
from aggregator.types import NormalizedEntry, ParsedEntry, ParsedFeed

SEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"
FEED_URL = "https://www.marketingfacts.nl/feed/"
FIRST_SEEN = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def seed_html(prefix: str) -> str:
    """A seed page's body as a blog's feed would carry it: one <p> per paragraph."""
    if not SEEDS.is_dir():
        pytest.fail(f"seed pages not found at {SEEDS}: shared/ must sit next to the repository")
    [path] = SEEDS.glob(f"{prefix}_*.txt")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    # The first two lines are the page's title and date line.
    return "\n".join(f"<p>{line}</p>" for line in [line for line in lines if line][2:])


def make_entry(**changes: object) -> ParsedEntry:
    entry = ParsedEntry(
        guid="https://www.marketingfacts.nl/?p=1234",
        link="https://www.marketingfacts.nl/berichten/open-source-dringt-door/?utm_source=rss",
        title="Open source dringt door in marketing",
        content_html=seed_html("000"),
        summary_html="<p>Deze maand in Emerce een interessant artikel.</p>",
        author="Marco Derksen",
        published=datetime(2005, 5, 27, 10, 8, tzinfo=UTC),
        updated=None,
        categories=("Open source", "Marketing"),
    )
    return dataclasses.replace(entry, **changes)  # type: ignore[arg-type]


FEED = ParsedFeed(
    format="rss20", title="Marketingfacts", link="https://www.marketingfacts.nl/",
    language="en-US", entries=(),
)  # fmt: skip


def normalize(
    entry: ParsedEntry | None = None,
    *,
    feed: ParsedFeed = FEED,
    source_language: str | None = "nl",
    first_seen: datetime = FIRST_SEEN,
    kind: str = "post",
) -> NormalizedEntry:
    return normalize_entry(
        entry or make_entry(),
        kind=kind,  # type: ignore[arg-type]
        feed=feed,
        feed_url=FEED_URL,
        source_language=source_language,
        first_seen=first_seen,
    )


# --------------------------------------------------------------------------- identity


def test_identity_from_guid() -> None:
    normalized = normalize(make_entry(guid="  \x00https://www.marketingfacts.nl/?p=1234\n"))
    assert normalized.identity_key == "guid:https://www.marketingfacts.nl/?p=1234"
    assert normalized.original_id == "https://www.marketingfacts.nl/?p=1234"
    assert normalized.kind == "post"


def test_long_guid_is_hashed_in_the_key() -> None:
    guid = "tag:example.nl,2005:" + "x" * 2000
    normalized = normalize(make_entry(guid=guid))
    assert normalized.identity_key == "guid:sha256:" + hashlib.sha256(guid.encode()).hexdigest()
    assert normalized.original_id == guid


def test_identity_falls_back_to_link_then_hash() -> None:
    by_link = normalize(make_entry(guid="  ", link="/berichten/x/"))
    assert by_link.identity_key == "link:https://www.marketingfacts.nl/berichten/x/"
    assert by_link.original_id is None
    by_hash = normalize(make_entry(guid=None, link=None))
    assert by_hash.identity_key.startswith("hash:")
    assert len(by_hash.identity_key) == len("hash:") + 64
    assert normalize(make_entry(guid=None, link=None)).identity_key == by_hash.identity_key
    changed = normalize(make_entry(guid=None, link=None, title="Andere titel"))
    assert changed.identity_key != by_hash.identity_key


# --------------------------------------------------------------------------- links


def test_links_are_made_absolute_and_canonical() -> None:
    normalized = normalize(make_entry(link="/berichten/open-source-dringt-door/?utm_source=rss"))
    assert normalized.link == (
        "https://www.marketingfacts.nl/berichten/open-source-dringt-door/?utm_source=rss"
    )
    assert normalized.canonical_url == "https://marketingfacts.nl/berichten/open-source-dringt-door"


def test_unsafe_links_are_dropped() -> None:
    normalized = normalize(
        make_entry(
            link="javascript:alert(1)",
            comments_feed_url="data:text/xml,x",
            in_reply_to_link="ftp://example.nl/x",
        )
    )
    assert normalized.link is None
    assert normalized.canonical_url is None
    assert normalized.comments_feed_url is None
    assert normalized.in_reply_to_link is None
    assert normalized.identity_key.startswith("guid:")


def test_comment_fields() -> None:
    normalized = normalize(
        make_entry(
            comments_feed_url="/berichten/open-source-dringt-door/feed/",
            comment_count=2,
            in_reply_to=" https://www.marketingfacts.nl/?p=1234\x00 ",
            in_reply_to_link="https://www.marketingfacts.nl/berichten/open-source-dringt-door/",
        ),
        kind="comment",
    )
    assert normalized.kind == "comment"
    assert normalized.comments_feed_url == (
        "https://www.marketingfacts.nl/berichten/open-source-dringt-door/feed/"
    )
    assert normalized.comment_count == 2
    assert normalized.in_reply_to == "https://www.marketingfacts.nl/?p=1234"
    assert normalized.in_reply_to_link == (
        "https://www.marketingfacts.nl/berichten/open-source-dringt-door/"
    )
    assert normalize(make_entry(comment_count=-3)).comment_count is None
    assert normalize(make_entry(in_reply_to="  ")).in_reply_to is None


# --------------------------------------------------------------------------- text


def test_title_is_plain_text() -> None:
    normalized = normalize(make_entry(title="<b>Open</b> source &amp; <title>marketing</title>"))
    assert normalized.title == "Open source & marketing"
    dirty = normalize(make_entry(title="Kop\x00 met\ud800 rommel"))
    assert dirty.title == "Kop met rommel"


def test_missing_title_is_made_from_the_text() -> None:
    derived = normalize(make_entry(title="  "))
    assert derived.title.startswith("Deze maand in Emerce een interessant artikel")
    assert derived.title.endswith("…")
    assert len(derived.title) <= 80
    untitled = normalize(make_entry(title="", content_html="", summary_html=""))
    assert untitled.title == "(untitled)"
    assert untitled.text == "(untitled)"


def test_content_is_sanitized_and_relative_urls_resolved() -> None:
    normalized = normalize(
        make_entry(
            content_html='<p onclick="x()">Lees <a href="../ook/">ook</a></p><script>x()</script>',
            summary_html='<img src="/i.png" onerror="x()">',
        )
    )
    assert normalized.content_html == (
        '<p>Lees <a href="https://www.marketingfacts.nl/berichten/ook/" '
        'rel="nofollow noopener noreferrer">ook</a></p>'
    )
    assert normalized.summary_html == '<img src="https://www.marketingfacts.nl/i.png">'


def test_relative_links_resolve_where_the_feed_placed_the_markup() -> None:
    """xml:base in scope (RFC 4287 section 2), else the feed document: never the entry's link."""
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.example/nl/">
  <title>Blog</title><id>urn:x:blog</id><updated>2024-05-01T10:00:00Z</updated>
  <entry>
    <title>Relatief</title><id>urn:x:1</id><updated>2024-05-01T10:00:00Z</updated>
    <link href="https://elders.example/bericht/"/>
    <summary type="html">&lt;a href="samenvatting/"&gt;s&lt;/a&gt;</summary>
    <content type="html" xml:base="/media/2024/">&lt;p&gt;&lt;img src="foto.jpg"&gt;
      &lt;a href="../../over/"&gt;over&lt;/a&gt; &lt;a href="//cdn.example/x"&gt;cdn&lt;/a&gt;
      &lt;a href="javascript:alert(1)"&gt;js&lt;/a&gt;&lt;/p&gt;</content>
  </entry>
</feed>"""
    rss = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>B</title>'
           b"<link>https://blog.example/</link><item><title>R</title>"
           b"<link>https://blog.example/2024/05/r/</link>"
           b"<description>&lt;img src=\"beeld.png\"&gt;&lt;a href=\"/a\"&gt;a&lt;/a&gt;"
           b"</description></item></channel></rss>")
    for body, url, served in ((atom, "https://blog.example/feed/atom/", "application/atom+xml"),
                              (rss, "https://blog.example/feed/", "application/rss+xml")):
        headers = {"content-type": served}
        assert fast_parse(body, headers, url) is not None  # both paths are tried
        for parsed in (parse_feed(body, headers, url),
                       parse_feed_with_feedparser(body, headers, url)):
            [entry] = normalize_entries(list(parsed.entries), kind="post", feed=parsed,
                                        feed_url=url, source_language="nl",
                                        first_seen=FIRST_SEEN)
            if body is atom:
                assert 'src="https://blog.example/media/2024/foto.jpg"' in entry.content_html
                assert 'href="https://blog.example/over/"' in entry.content_html
                assert 'href="https://cdn.example/x"' in entry.content_html
                assert "javascript" not in entry.content_html and ">js</a>" in entry.content_html
                assert 'href="https://blog.example/nl/samenvatting/"' in entry.summary_html
            else:
                assert entry.content_html == (
                    '<img src="https://blog.example/feed/beeld.png"><a href="https://blog.example/a"'
                    ' rel="nofollow noopener noreferrer">a</a>')


def test_summary_stands_in_for_missing_content() -> None:
    summary = '<p onclick="x()">Alleen een samenvatting</p><script>x()</script>'
    normalized = normalize(make_entry(content_html="", summary_html=summary))
    assert normalized.content_html == "<p>Alleen een samenvatting</p>"
    assert normalized.summary_html == "<p>Alleen een samenvatting</p>"
    assert normalized.text == "Open source dringt door in marketing Alleen een samenvatting"


def test_text_is_title_and_plain_body() -> None:
    normalized = normalize(make_entry(content_html="<p>Een</p><p>twee &amp; drie</p>"))
    assert normalized.text == "Open source dringt door in marketing Een twee & drie"


def test_author() -> None:
    assert normalize(make_entry(author=" <i>Marco</i>  Derksen ")).author == "Marco Derksen"
    assert normalize(make_entry(author="  ")).author is None
    assert normalize(make_entry(author=None)).author is None


def test_categories_are_cleaned_deduplicated_and_capped() -> None:
    normalized = normalize(
        make_entry(categories=(" Social  media ", "social media", "", "<b>Event</b>", "Event"))
    )
    assert normalized.categories == ("Social media", "Event")
    many = normalize(make_entry(categories=tuple(f"tag {n}" for n in range(80))))
    assert len(many.categories) == 50
    assert many.categories[0] == "tag 0"


# --------------------------------------------------------------------------- dates


def test_dates_in_utc() -> None:
    amsterdam = timezone(timedelta(hours=2))
    normalized = normalize(
        make_entry(
            published=datetime(2005, 5, 27, 12, 8, tzinfo=amsterdam),
            updated=datetime(2005, 6, 15, 6, 27, tzinfo=UTC),
        )
    )
    assert normalized.published == datetime(2005, 5, 27, 10, 8, tzinfo=UTC)
    assert normalized.published.tzinfo == UTC
    assert normalized.updated == datetime(2005, 6, 15, 6, 27, tzinfo=UTC)


def test_missing_dates_become_first_seen_or_updated() -> None:
    undated = normalize(make_entry(published=None, updated=None))
    assert undated.published == FIRST_SEEN
    assert undated.updated is None
    updated_only = normalize(make_entry(published=None, updated=datetime(2013, 1, 1, tzinfo=UTC)))
    assert updated_only.published == datetime(2013, 1, 1, tzinfo=UTC)


def test_future_and_absurd_dates_are_clamped_to_first_seen() -> None:
    future = normalize(
        make_entry(
            published=FIRST_SEEN + timedelta(days=400),
            updated=FIRST_SEEN + timedelta(seconds=1),
        )
    )
    assert future.published == FIRST_SEEN
    assert future.updated == FIRST_SEEN
    ancient = normalize(make_entry(published=datetime(1970, 1, 1, tzinfo=UTC)))
    assert ancient.published == FIRST_SEEN
    edge = datetime(1990, 1, 1, tzinfo=UTC)
    assert normalize(make_entry(published=edge)).published == edge


def test_first_seen_must_be_aware_and_is_converted_to_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        normalize(first_seen=datetime(2024, 3, 1, 12, 0))
    plus_two = FIRST_SEEN.astimezone(timezone(timedelta(hours=2)))
    undated = normalize(make_entry(published=None), first_seen=plus_two)
    assert undated.published == FIRST_SEEN
    assert undated.published.utcoffset() == timedelta(0)


# --------------------------------------------------------------------------- language


def test_language_from_the_text_not_the_feed() -> None:
    # The feed says en-US; the post is Dutch.
    assert normalize().language == "nl"
    german = make_entry(title="33: Martin Oetting über Marketing", content_html=seed_html("004"))
    assert normalize(german).language == "de"


def test_language_hint_order_for_short_comments() -> None:
    comment = make_entry(title="Re: Podcast", content_html="<p>Jo. Ich mich.</p>")
    assert normalize(comment, kind="comment").language == "en"  # the feed's hint
    assert normalize(dataclasses.replace(comment, language="de-DE")).language == "de"
    no_feed_hint = dataclasses.replace(FEED, language=None)
    assert normalize(comment, feed=no_feed_hint, source_language="de").language == "de"


# --------------------------------------------------------------------------- hashes


def test_content_hash_follows_what_a_reader_sees() -> None:
    base = normalize()
    assert len(base.content_hash) == 64
    assert normalize().content_hash == base.content_hash
    assert normalize(make_entry(title="Nieuwe titel")).content_hash != base.content_hash
    assert normalize(make_entry(content_html="<p>anders</p>")).content_hash != base.content_hash
    # Only the unsafe parts differ: what a reader sees is the same.
    with_script = make_entry(content_html=make_entry().content_html + "<script>x</script>")
    assert normalize(with_script).content_hash == base.content_hash


def test_fingerprint_ignores_title_markup_case_and_punctuation() -> None:
    original = normalize()
    assert original.fingerprint is not None
    copy = make_entry(
        title="Gastblog: Open source dringt door in marketing",
        content_html=(
            "<div>"
            + make_entry()
            .content_html.upper()
            .replace("<P>", "<p>\n\n")
            .replace("</P>", " ... </p>")
            + "</div>"
        ),
        link="https://other.example/copy",
    )
    assert normalize(copy).fingerprint == original.fingerprint


def test_fingerprint_tells_related_articles_apart() -> None:
    related = make_entry(
        title="De marketeer wordt slechts facilitator!", content_html=seed_html("001")
    )
    assert normalize(related).fingerprint not in (None, normalize().fingerprint)


def test_no_fingerprint_for_short_text() -> None:
    short = " ".join(["woord"] * (MIN_FINGERPRINT_WORDS - 1))
    assert normalize(make_entry(content_html=f"<p>{short}</p>")).fingerprint is None
    enough = short + " meer"
    assert normalize(make_entry(content_html=f"<p>{enough}</p>")).fingerprint is not None
    assert normalize(make_entry(content_html="<p>Leuk stuk, dank!</p>")).fingerprint is None


# --------------------------------------------------------------------------- property


@settings(max_examples=100, deadline=None)
@given(
    title=st.text(max_size=60),
    content=st.text(max_size=200),
    guid=st.one_of(st.none(), st.text(max_size=40)),
    link=st.one_of(st.none(), st.text(max_size=40)),
)
def test_anything_normalizes_to_clean_fields(
    title: str, content: str, guid: str | None, link: str | None
) -> None:
    normalized = normalize(make_entry(title=title, content_html=content, guid=guid, link=link))
    assert normalized.title
    assert len(normalized.title) <= 1000
    assert normalized.title == " ".join(normalized.title.split())
    assert normalized.identity_key.split(":", 1)[0] in {"guid", "link", "hash"}
    assert normalized.link is None or normalized.link.lower().startswith(("http://", "https://"))
    for field in (normalized.title, normalized.content_html, normalized.text):
        field.encode("utf-8")  # no lone surrogates
        assert "\x00" not in field


# --------------------------------------------------------------------------- a document at once


def test_a_document_s_entries_normalized_together_equal_each_on_its_own() -> None:
    # Languages are told after the rest, for all entries at once: each must
    # still get its own (seeds 000, 001 and 003 are Dutch, 004 German; the
    # one-word post goes by its hint).
    entries = [
        make_entry(guid=f"post-{prefix}", content_html=seed_html(prefix), language=language,
                   link=f"https://www.marketingfacts.nl/berichten/{prefix}/")
        for prefix, language in [("000", None), ("003", "en"), ("001", None), ("004", None)]
    ] + [make_entry(guid="short", content_html="<p>Top!</p>", summary_html="", language="de")]
    together = normalize_entries(entries, kind="post", feed=FEED, feed_url=FEED_URL,
                                 source_language="nl", first_seen=FIRST_SEEN)
    alone = [normalize(entry) for entry in entries]
    assert together == alone
    assert [entry.language for entry in together] == ["nl", "nl", "nl", "de", "de"]
    assert normalize_entries([], kind="post", feed=FEED, feed_url=FEED_URL,
                             source_language="nl", first_seen=FIRST_SEEN) == []


def test_a_naive_first_seen_is_refused_for_a_whole_document_too() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        normalize_entries([make_entry()], kind="post", feed=FEED, feed_url=FEED_URL,
                          source_language="nl", first_seen=datetime(2024, 3, 1))
