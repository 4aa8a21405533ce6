"""topics: which rules put an entry in a topic, and which keep it out."""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.config import TopicConfig
from aggregator.topics import TopicMatcher, _matcher, classify, fold

OPEN_SOURCE = TopicConfig(
    slug="open-source-marketing",
    title="Open source marketing",
    keywords=("open source marketing", "broncode", "Linux"),
    exclude=("vacature",),
)
CGM = TopicConfig(
    slug="consumer-generated-media",
    title="Consumer generated media",
    keywords=("consumer generated media", "co-creatie", "Mundpropaganda"),
    categories=("Consument",),
)
SOCIAL = TopicConfig(
    slug="social-media",
    title="Social media",
    keywords=("social media",),
    categories=("Social media marketing",),
    sources=("marketingfacts",),
    exclude=("advertentie",),
)
GERMAN = TopicConfig(
    slug="marketing-de",
    title="Marketing (Deutsch)",
    keywords=("marketing",),
    languages=("de",),
)
TOPICS = (OPEN_SOURCE, CGM, SOCIAL, GERMAN)


def topics_of(
    title: str = "",
    text: str = "",
    categories: Sequence[str] = (),
    source_name: str = "other-blog",
    source_topics: Sequence[str] = (),
    language: str | None = "nl",
    topics: Sequence[TopicConfig] = TOPICS,
) -> tuple[str, ...]:
    return classify(
        title=title,
        text=text,
        categories=categories,
        source_name=source_name,
        source_topics=source_topics,
        language=language,
        topics=topics,
    )


def test_keyword_in_title_or_text() -> None:
    assert topics_of(title="Open source marketing in de praktijk") == ("open-source-marketing",)
    assert topics_of(text="Geef consumenten toegang tot de broncode van je merk.") == (
        "open-source-marketing",
    )


def test_keywords_match_whole_words_only() -> None:
    assert topics_of(text="De broncodes zijn openbaar") == ()
    assert topics_of(text="Linuxprogrammeurs verbeteren het programma") == ()
    assert topics_of(text="Zoals Linux-programmeurs het programma verbeteren") == (
        "open-source-marketing",
    )


def test_case_and_accents_do_not_matter() -> None:
    assert topics_of(text="LINUX en OPEN SOURCE MARKETING") == ("open-source-marketing",)
    topic = TopicConfig(slug="oekonomie", title="Ökonomie", keywords=("Ökonomie", "straße"))
    assert topics_of(text="Die okonomie des Internets", topics=(topic,)) == ("oekonomie",)
    assert topics_of(text="An der STRASSE", topics=(topic,)) == ("oekonomie",)
    assert topics_of(text="een idee voor de économie", topics=(topic,)) == ()


def test_phrases_match_across_any_whitespace_but_not_across_fields() -> None:
    assert topics_of(text="over consumer\n  generated\tmedia") == ("consumer-generated-media",)
    assert topics_of(text="over consumer-generated media") == ()
    assert topics_of(title="Alles over consumer", text="generated media is hot") == ()


def test_keyword_with_punctuation_matches_as_written() -> None:
    assert topics_of(text="Een co-creatie sessie") == ("consumer-generated-media",)
    assert topics_of(text="Een co creatie sessie") == ()
    cpp = TopicConfig(slug="cpp", title="C++", keywords=("C++",))
    assert topics_of(text="geschreven in c++ natuurlijk", topics=(cpp,)) == ("cpp",)
    assert topics_of(text="geschreven in c natuurlijk", topics=(cpp,)) == ()


def test_keyword_in_a_category_counts() -> None:
    assert topics_of(categories=("Linux",)) == ("open-source-marketing",)


def test_category_rule_compares_whole_categories_loosely() -> None:
    assert topics_of(categories=("consument",)) == ("consumer-generated-media",)
    assert topics_of(categories=("  SOCIAL   media Marketing ",)) == ("social-media",)
    assert topics_of(categories=("Consumentenrecht",)) == ()


def test_source_membership_both_ways() -> None:
    assert topics_of(source_name="marketingfacts") == ("social-media",)
    assert topics_of(source_topics=("consumer-generated-media",)) == ("consumer-generated-media",)
    assert topics_of(source_name="Marketingfacts") == ()


def test_several_topics_in_config_order() -> None:
    found = topics_of(
        title="Social media en open source marketing",
        text="Mundpropaganda",
        language="de",
    )
    assert found == (
        "open-source-marketing",
        "consumer-generated-media",
        "social-media",
        "marketing-de",
    )


def test_language_gate() -> None:
    assert topics_of(text="Marketing im Internet-Zeitalter", language="de") == ("marketing-de",)
    assert topics_of(text="Marketing im Internet-Zeitalter", language="de-AT") == ("marketing-de",)
    assert topics_of(text="Marketing in het internettijdperk", language="nl") == ()
    assert topics_of(text="Marketing im Internet-Zeitalter", language=None) == ()
    gated_source = TopicConfig(slug="s", title="S", sources=("blog",), languages=("de",))
    assert topics_of(source_name="blog", language="nl", topics=(gated_source,)) == ()
    assert topics_of(source_name="blog", language="de", topics=(gated_source,)) == ("s",)


def test_exclusion_beats_keywords_and_categories() -> None:
    assert topics_of(text="Vacature: Linux beheerder") == ()
    assert topics_of(text="Social media advertentie", categories=("Social media marketing",)) == ()


def test_exclusion_does_not_beat_source_membership() -> None:
    assert topics_of(text="Advertentie", source_name="marketingfacts") == ("social-media",)
    assert topics_of(text="Vacature", source_topics=("open-source-marketing",)) == (
        "open-source-marketing",
    )


def test_topic_without_rules_takes_nothing() -> None:
    empty = TopicConfig(slug="leeg", title="Leeg", exclude=("x",))
    assert topics_of(title="alles", text="over alles", topics=(empty,)) == ()


def test_matcher_gives_the_same_answers_as_classify() -> None:
    matcher = TopicMatcher(TOPICS)
    arguments = {
        "title": "Social media",
        "text": "Linux",
        "categories": ("Consument",),
        "source_name": "x",
        "source_topics": (),
        "language": "nl",
    }
    assert matcher.classify(**arguments) == classify(**arguments, topics=TOPICS)
    assert matcher.classify(**arguments) == (
        "open-source-marketing",
        "consumer-generated-media",
        "social-media",
    )


def test_classify_compiles_a_topic_list_once() -> None:
    _matcher.cache_clear()
    for _ in range(5):
        topics_of(text="Linux", topics=list(TOPICS))
    info = _matcher.cache_info()
    assert info.misses == 1
    assert info.hits == 4


def test_fold() -> None:
    assert fold("Ökonomie Straße ÉCONOMIE ﬁnance") == "okonomie strasse economie finance"
    assert fold("Marketing") == "marketing"
