"""dedupe: same article or not, on the seed pages, their copies and hypothesis inputs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.dedupe import (
    _SYNDICATION,
    _SYNDICATION_WORDS,
    BANDS,
    NEAR_DUPLICATE_JACCARD,
    ROWS,
    Copy,
    _short_hash,
    article_of,
    article_text,
    band_keys,
    choose_canonical,
    index_keys,
    same_article,
    signature,
    title_key,
)
from aggregator.normalize import normalize_entry
from aggregator.types import NormalizedEntry, ParsedEntry, ParsedFeed

SEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PUBLISHED = datetime(2005, 5, 27, 10, 8, tzinfo=UTC)
#: Where each seed's post ends and its comments (or page furniture) begin.
POST_END = {"000": "Marco Derksen\nPartner", "001": "\nik denk dat we naar de situatie",
            "002": "Er zijn 2 reacties", "003": "Gepost in:", "004": "Kommentare:"}


def seed_post(prefix: str) -> tuple[str, list[str]]:
    """The seed's title and its post's paragraphs (comments left out)."""
    if not SEEDS.is_dir():
        pytest.fail(f"seed pages not found at {SEEDS}: shared/ must sit next to the repository")
    [path] = SEEDS.glob(f"{prefix}_*.txt")
    title, page = path.read_text(encoding="utf-8").split("\n", 1)
    post = page.split(POST_END[prefix], 1)[0]
    paragraphs = [" ".join(line.split()) for line in post.splitlines()]
    return title.strip(), [p for p in paragraphs if p]


def entry(title: str, paragraphs: list[str], link: str = "https://marketingfacts.nl/open-source",
          *, published: datetime = PUBLISHED) -> NormalizedEntry:
    """A post as normalize makes it from a feed item (real sanitizer, fingerprint, URL key)."""
    html = "".join(f"<p>{p}</p>" for p in paragraphs)
    parsed = ParsedEntry(guid=link, link=link, title=title, content_html=html, summary_html="",
                         author="Marco Derksen", published=published, updated=None)
    feed = ParsedFeed(format="rss20", title="Blog", link=None, language="nl", entries=(parsed,))
    return normalize_entry(parsed, kind="post", feed=feed, feed_url=link, source_language="nl",
                           first_seen=NOW)


def sentences(paragraphs: list[str]) -> list[str]:
    return [s for p in paragraphs for s in re.split(r"(?<=[.!?])\s+", p) if s]


# ---------------------------------------------------------------------- the seeds


def test_seeds_000_and_001_are_related_articles_not_copies():
    first, second = entry(*seed_post("000")), entry(*seed_post("001"), link="https://mf.nl/b")
    decision = same_article(first, second)
    assert not decision
    assert decision.reason == "different"
    assert decision.jaccard < 0.05


@pytest.mark.parametrize(("a", "b"), [(a, b) for a in "01234" for b in "01234" if a < b])
def test_different_seed_posts_never_match(a: str, b: str):
    decision = same_article(entry(*seed_post(f"00{a}"), link=f"https://x.example/{a}"),
                            entry(*seed_post(f"00{b}"), link=f"https://y.example/{b}"))
    assert not decision.same, decision


def test_one_sentence_changed_is_the_same_article():
    title, paragraphs = seed_post("000")
    edited = [p.replace(
        "Desalnietemin is open source marketing interessant en zeker de moeite waard voor "
        "marketeers om mee te nemen in hun strategische beslissingen.",
        "Toch blijft het een aanpak die elke marketeer dit jaar zou moeten proberen, "
        "al was het maar op kleine schaal.") for p in paragraphs]
    assert edited != paragraphs
    decision = same_article(entry(title, paragraphs), entry(title, edited, "https://b.example/x"))
    assert decision.same
    assert decision.reason == "near_duplicate"
    assert NEAR_DUPLICATE_JACCARD <= decision.jaccard < 1


def test_one_sentence_added_is_the_same_article():
    title, paragraphs = seed_post("000")
    added = [*paragraphs[:3], "Ik ben benieuwd wat jullie ervan vinden, laat het weten!",
             *paragraphs[3:]]
    assert same_article(entry(title, paragraphs), entry(title, added, "https://b.example/x"))


def test_guest_post_copy_with_dutch_footer_is_the_same_article():
    title, paragraphs = seed_post("000")
    copy = entry("Gastblog: " + title, [
        *paragraphs,
        "Dit artikel verscheen eerder op Marketingfacts.nl en is met toestemming overgenomen.",
    ], "https://www.frankwatching.com/archive/2005/05/28/open-source-marketing/")
    original = entry(title, paragraphs)
    decision = same_article(original, copy)
    assert decision.same
    # The footer is gone, so nothing tells the two bodies apart.
    assert article_text(copy) == article_text(original)
    assert decision.jaccard == 1.0


def test_excerpt_of_the_first_60_words_is_the_same_article():
    title, paragraphs = seed_post("000")
    words = " ".join(paragraphs).split()
    excerpt = entry(title, [" ".join(words[:60]) + " […] Lees verder →"], "https://planet.nl/1")
    decision = same_article(excerpt, entry(title, paragraphs))
    assert decision.same
    assert decision.reason == "excerpt"
    assert decision.containment >= 0.9


def test_a_post_quoting_another_in_its_middle_is_not_an_excerpt_of_it():
    _title, paragraphs = seed_post("000")
    quoted = " ".join(" ".join(paragraphs).split()[200:260])
    own = seed_post("003")[1]
    commentary = entry("Mijn reactie", [*own[:6], quoted, *own[6:]], "https://c.example/r")
    short = entry("Een citaat", [quoted], "https://d.example/q")
    assert not same_article(short, commentary)


def test_same_canonical_url_joins_url_variants():
    title, paragraphs = seed_post("000")
    a = entry(title, paragraphs, "https://marketingfacts.nl/open-source/?utm_source=feed")
    b = entry(title, paragraphs[:4], "http://www.marketingfacts.nl/open-source#comments")
    decision = same_article(a, b)
    assert decision.same
    assert decision.reason == "canonical_url"


def test_a_link_blog_commenting_on_an_article_is_not_that_article():
    # A link post's <link> is the article it comments on: same URL, its own text.
    title, paragraphs = seed_post("000")
    other_title, comment = seed_post("002")
    link = "https://marketingfacts.nl/open-source"
    decision = same_article(entry(title, paragraphs, link), entry(other_title, comment, link))
    assert not decision.same
    assert decision.reason == "same_url_different_text"


def test_a_home_page_link_is_no_evidence():
    title, paragraphs = seed_post("000")
    other_title, other = seed_post("002")
    decision = same_article(entry(title, paragraphs, "https://blog.example/"),
                            entry(other_title, other[:2], "https://blog.example/"))
    assert not decision.same


def test_short_texts_need_the_same_title_and_text():
    text = ["Mooi artikel over open source marketing bij Emerce, de moeite waard om te lezen "
            "voor iedereen die met merken werkt en wil weten wat er speelt."]
    assert same_article(entry("Leestip: open source", text, "https://a.example/1"),
                        entry("Leestip: open source", text, "https://b.example/2"))
    assert not same_article(entry("Leestip: open source", text, "https://a.example/1"),
                            entry("Iets heel anders hier", text, "https://b.example/2"))
    tiny = ["Bedankt!"]
    assert not same_article(entry("Dank", tiny, "https://a.example/1"),
                            entry("Dank", tiny, "https://b.example/2"))


# ---------------------------------------------------------------------- text and keys


@pytest.mark.parametrize("footer", [
    "Dit artikel verscheen eerder op Marketingfacts.",
    "Dieser Artikel erschien zuerst auf www.beispiel.de.",
    "This article originally appeared on Example Blog.",
    "The post Open source dringt door in marketing appeared first on Marketingfacts.",
    "Lees verder →",
    "Read more »",
    "Weiterlesen",
])
def test_article_text_drops_syndication_footers(footer: str):
    title, paragraphs = seed_post("000")
    assert article_text(entry(title, [*paragraphs, footer])) == article_text(
        entry(title, paragraphs))


@settings(max_examples=300, deadline=None)
@given(st.from_regex(_SYNDICATION))
def test_every_syndication_sentence_holds_one_of_the_words_that_gate_its_search(text: str):
    # Text without any of _SYNDICATION_WORDS skips the search: that must
    # never skip a sentence the pattern would have found.
    match = _SYNDICATION.search(text)
    assert match is not None
    assert any(word in match.group(0) for word in _SYNDICATION_WORDS)


def test_article_text_is_folded_body_words_without_the_title():
    text = article_text(entry("Ökonomie", ["Die Ökonomie der Marken ändert sich, Straße."]))
    assert text == "die okonomie der marken andert sich strasse"


@pytest.mark.parametrize(("title", "key"), [
    ("Gastblog: Open source dringt door", "open source dringt door"),
    ("Gastbeitrag: Marketing im Internet-Zeitalter", "marketing im internet zeitalter"),
    ("Guest post: The Brand Is Yours", "the brand is yours"),
    ("Repost: [Update] Twee trends voor 2013", "twee trends voor 2013"),
    ("Twee trends voor 2013 [Update]", "twee trends voor 2013"),
    ("Update in Ökonomie", "update in okonomie"),
])
def test_title_key_drops_prefixes(title: str, key: str):
    assert title_key(title) == key


def test_band_keys_are_stable_and_shared_by_light_edits():
    title, paragraphs = seed_post("000")
    original = article_of(entry(title, paragraphs))
    keys = band_keys(original.signature)
    assert len(keys) == BANDS
    # Stored keys outlive processes: the hash and permutations are fixed.
    assert keys[0] == band_keys(signature(" ".join(original.words)))[0]
    fixed = signature(" ".join(f"woord{i}" for i in range(30)))
    assert fixed[:2] == (1432575273078470520, 2344077121124725541)
    assert band_keys(fixed)[:2] == ["b007ffd91086db4", "b01f866bcef41ba"]
    added = article_of(entry(title, [*paragraphs, "Wat vinden jullie ervan?"]))
    assert set(keys) & set(band_keys(added.signature))


@given(st.lists(st.integers(0, 2**64 - 1), min_size=BANDS * ROWS, max_size=BANDS * ROWS))
def test_band_keys_hash_each_band_s_values_as_64_bit_words(sig: list[int]):
    # The keys in stored databases were made this way, band by band.
    expected = [
        f"b{band:02d}" + _short_hash(b"".join(
            value.to_bytes(8, "little") for value in sig[band * ROWS:(band + 1) * ROWS]))
        for band in range(BANDS)]
    assert band_keys(sig) == expected
    assert band_keys(tuple(sig)) == expected


def test_unrelated_posts_share_no_keys():
    a = article_of(entry(*seed_post("000")))
    b = article_of(entry(*seed_post("001")))
    assert not {k for k, _ in a.index_keys()} & {k for k, _ in b.index_keys()}


# ---------------------------------------------------------------------- canonical copy

DAY = timedelta(days=1)


def test_the_copy_on_its_own_blog_wins_over_an_earlier_copy_elsewhere():
    planet = Copy(published=PUBLISHED - DAY, link="https://marketingfacts.nl/open-source",
                  site_urls=("https://planet.example/", "https://planet.example/feed"))
    own = Copy(published=PUBLISHED, link="https://www.marketingfacts.nl/open-source",
               site_urls=("https://marketingfacts.nl/", None))
    assert choose_canonical([planet, own]) == 1


def test_the_earliest_original_wins_then_the_first_seen():
    first = Copy(published=PUBLISHED, link="https://a.example/p", site_urls=("https://a.example",),
                 first_seen=NOW)
    repost = Copy(published=PUBLISHED + DAY, link="https://b.example/p",
                  site_urls=("https://b.example",), first_seen=NOW - DAY)
    assert choose_canonical([repost, first]) == 1
    same_day = Copy(published=PUBLISHED, link="https://c.example/p",
                    site_urls=("https://c.example",), first_seen=NOW - DAY)
    assert choose_canonical([first, same_day]) == 1


def test_a_feedproxy_link_stands_for_its_own_blog():
    proxied = Copy(published=PUBLISHED, link="http://feedproxy.google.com/~r/mf/~3/x/",
                   site_urls=("https://marketingfacts.nl",))
    repost = Copy(published=PUBLISHED + DAY, link="https://b.example/p",
                  site_urls=("https://b.example",))
    assert choose_canonical([repost, proxied]) == 1


# ---------------------------------------------------------------------- properties

ALL_SENTENCES = [s for prefix in "01234" for s in sentences(seed_post(f"00{prefix}")[1])]
texts = st.lists(st.sampled_from(ALL_SENTENCES), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(texts)
def test_identical_texts_have_identical_signatures(chosen: list[str]):
    a = article_of(entry("T", chosen, "https://a.example/1"))
    b = article_of(entry("T", list(chosen), "https://b.example/2"))
    assert a.signature == b.signature
    assert signature(" ".join(a.words)) == signature(" ".join(b.words))


@settings(max_examples=60, deadline=None)
@given(texts, texts, st.sampled_from(["A title here", "Another title there"]))
def test_decisions_are_symmetric(first: list[str], second: list[str], other_title: str):
    a = entry("A title here", first, "https://a.example/1")
    b = entry(other_title, second, "https://b.example/2")
    assert same_article(a, b) == same_article(b, a)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(ALL_SENTENCES), min_size=6, max_size=25, unique=True))
def test_a_text_is_the_same_article_as_itself_elsewhere(chosen: list[str]):
    a = entry("Een titel", chosen, "https://a.example/1")
    if len(article_of(a).words) >= 40:
        assert same_article(a, entry("Een titel", chosen, "https://b.example/2")).same


def test_a_summary_opening_with_a_guest_intro_is_an_excerpt():
    title, paragraphs = seed_post("000")
    words = " ".join(paragraphs).split()
    summary = entry("[Gastblog] " + title, [
        "Marco Derksen schrijft regelmatig over marketing en mocht deze week bij ons schrijven.",
        " ".join(words[:50]) + " …",
    ], "https://b.example/gast")
    decision = same_article(summary, entry(title, paragraphs))
    assert decision.same
    assert decision.reason == "excerpt"


def test_one_title_and_a_third_of_the_text_do_not_make_a_copy():
    # Two reports from one template: same title, shared stock sentences.
    title, paragraphs = seed_post("000")
    _other, own = seed_post("003")
    a = entry(title, [*paragraphs[:3], *own[:4]], "https://a.example/verslag")
    b = entry(title, [*paragraphs[:3], *own[4:9]], "https://b.example/verslag")
    decision = same_article(a, b)
    assert 0.1 < decision.jaccard < NEAR_DUPLICATE_JACCARD
    assert not decision.same


@settings(max_examples=80, deadline=None)
@given(texts, st.sampled_from(["T", "Open source marketing", "Gastblog: Open source marketing",
                               "Über Marken und Kunden heute"]))
def test_a_worker_s_index_keys_are_the_article_s(chosen: list[str], title: str):
    # Parser workers file posts through index_keys, the store compares and
    # re-files through Article: the same keys, or a copy is never found.
    post = entry(title, chosen)
    assert index_keys(post) == article_of(post).index_keys()


@pytest.mark.parametrize("prefix", ["000", "001", "002", "003", "004"])
def test_index_keys_of_the_seed_posts(prefix: str):
    title, paragraphs = seed_post(prefix)
    post = entry(title, paragraphs)
    keys = index_keys(post)
    assert keys == article_of(post).index_keys()
    assert [kind for _, kind in keys].count("band") == BANDS
    assert {kind for _, kind in keys} >= {"band", "lead"}
