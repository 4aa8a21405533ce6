"""topics: which rules put an entry in a topic, and which keep it out."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from aggregator import topics
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
FIXTURES = Path(__file__).parent / "fixtures" / "language"


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
    assert topics_of(text="De broncodebeheerders zijn het eens") == ()
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


# --------------------------------------------------------------------------- inflected forms


def one_topic(
    keywords: Sequence[str] = (),
    exclude: Sequence[str] = (),
    languages: Sequence[str] = (),
) -> tuple[TopicConfig, ...]:
    return (
        TopicConfig(
            slug="t",
            title="T",
            keywords=tuple(keywords),
            exclude=tuple(exclude),
            languages=tuple(languages),
        ),
    )


def matches(keyword: str, text: str, language: str | None, **rules: Sequence[str]) -> bool:
    topics = one_topic(keywords=(keyword,), **rules)
    return topics_of(text=text, language=language, topics=topics) == ("t",)


@pytest.mark.parametrize(
    ("keyword", "text", "language"),
    [
        ("merk", "Alle grote merken doen mee", "nl"),
        ("merken", "Een sterk merk", "nl"),
        ("vacature", "Nieuwe vacatures bij het bureau", "nl"),
        ("gemeenschap", "Online gemeenschappen groeien", "nl"),
        ("klant", "Klanten praten terug", "nl"),
        ("Marke", "Starke Marken im Netz", "de"),
        ("Ökonomie", "Die Ökonomien des Internets", "de"),
        ("Kunde", "Kunden reden mit", "de"),
        ("Blog", "Deutsche Blogs", "de"),
        ("community", "Online communities matter", "en"),
        ("marketer", "All marketers agree", "en"),
        ("brand", "Brands talk back", "en"),
        ("customer", "Customers talk back", "en"),
        ("offer", "She offered help", "en"),
    ],
)  # fmt: skip
def test_keyword_finds_inflected_forms(keyword: str, text: str, language: str) -> None:
    assert matches(keyword, text, language)


@pytest.mark.parametrize(
    ("keyword", "text", "language"),
    [
        # Other words that merely start the same.
        ("merk", "Dat is merkwaardig", "nl"),
        ("merk", "Het verschil is nauwelijks merkbaar", "nl"),
        # Compounds do not find their parts (precision first).
        ("merk", "Een nieuwe merkgemeenschap", "nl"),
        ("Marke", "Markenbildung im Netz", "de"),
        ("community", "Communitymanagers are busy", "en"),
        # A derivation stays apart from its root, both ways.
        ("market", "Marketing is hot", "en"),
        ("marketing", "The market is hot", "en"),
        ("marketer", "The market is hot", "en"),
        ("customer", "Custom code", "en"),
        ("influencer", "Their influence grows", "en"),
        ("Nachhaltigkeit", "Nachhaltig wirtschaften", "de"),
        ("verandering", "Alles gaat veranderen", "nl"),
        # The newer Dutch stemmer would make these one word.
        ("beleid", "Begeleiding van starters", "nl"),
        ("gemeente", "Ik meen het", "nl"),
    ],
)  # fmt: skip
def test_keyword_does_not_find_words_that_only_look_alike(
    keyword: str, text: str, language: str
) -> None:
    assert not matches(keyword, text, language)


def test_stems_are_compared_in_the_entry_language() -> None:
    # Marketing prose in Dutch and German borrows English: English stems too.
    assert matches("community", "Over online communities", "nl")
    assert matches("community", "Über Online-Communities", "de")
    # Another language with a Snowball stemmer.
    assert matches("marque", "Les marques parlent", "fr")
    assert not matches("marque", "Le marquage", "fr")
    # Stemmers that strip a prefix: the word need not start like the keyword.
    assert matches("baca", "Saya membaca blog", "id")
    assert matches("bean", "An bhean", "ga")


def test_unknown_language_tries_dutch_german_and_english_stems() -> None:
    for language in (None, "xx", "ja"):
        assert matches("merk", "Alle merken doen mee", language)
        assert matches("Marke", "Starke Marken", language)
        assert matches("community", "Online communities", language)
        assert not matches("merk", "Dat is merkwaardig", language)
        assert not matches("market", "Marketing is hot", language)


def test_a_phrase_finds_each_word_inflected() -> None:
    assert matches("brand community", "About brand communities online", "en")
    assert matches("brand community", "Over brand communities en merken", "nl")
    assert matches("brand community", "BRANDS\n COMMUNITY", "en")
    assert matches("merk gemeenschap", "Sterke merken gemeenschappen", "nl")
    assert matches("consumer generated media", "Consumers generated media", "en")
    assert matches("co-creatie", "Twee co-creaties", "nl")


def test_a_phrase_needs_its_words_in_order_and_adjacent() -> None:
    assert not matches("brand community", "A community brand", "en")
    assert not matches("brand community", "A brand new community", "en")
    assert not matches("brand community", "Their brand, community and more", "en")
    assert not matches("co-creatie", "Co creaties", "nl")
    assert not matches("social media", "Social-media", "en")


def test_a_phrase_is_found_after_a_false_start() -> None:
    assert matches("social media", "social social media", "en")
    assert matches("big data", "big big data", "en")
    assert matches("open source marketing", "open source open source marketing", "en")


def test_a_phrase_does_not_run_across_title_text_and_categories() -> None:
    topics = one_topic(keywords=("brand community",))
    assert topics_of(title="Our brand", text="Community news", topics=topics) == ()
    assert topics_of(text="Our brand", categories=("Communities",), topics=topics) == ()
    assert topics_of(categories=("Brand", "Community"), topics=topics) == ()


def test_a_keyword_in_a_category_is_stemmed_too() -> None:
    topics = one_topic(keywords=("merk",))
    assert topics_of(categories=("Merken",), topics=topics) == ("t",)
    assert topics_of(categories=("Merkwaardig",), topics=topics) == ()


def test_exclusion_finds_inflected_forms() -> None:
    assert topics_of(text="Vacatures: Linux beheerders gezocht") == ()
    assert topics_of(text="Linux zonder vacaturebank") == ("open-source-marketing",)
    assert not matches("marketing", "Marketing Kunden Anzeigen", "de", exclude=("Anzeige",))
    assert matches("marketing", "Marketing ohne Anzeigepflicht", "de", exclude=("Anzeige",))


def test_language_gate_applies_to_stemmed_matches() -> None:
    assert matches("Marke", "Starke Marken", "de", languages=("de",))
    assert not matches("Marke", "Starke Marken", "nl", languages=("de",))
    assert not matches("Marke", "Starke Marken", None, languages=("de",))


def test_apostrophes_in_a_phrase_match_either_form() -> None:
    assert matches("McDonald's", "Bij McDonald’s", "nl")
    assert matches("McDonald’s", "Bij McDonald's", "nl")
    assert not matches("McDonald's", "Bij McDonald s", "nl")


def test_numbers_and_names_match_as_written() -> None:
    assert matches("B2B", "Marketing voor B2B-merken", "nl")
    assert not matches("B2B", "Marketing voor B2C-merken", "nl")
    assert matches("web 2.0", "Het web 2.0 tijdperk", "nl")
    assert not matches("web 2.0", "Het web 2 tijdperk", "nl")


def test_the_stem_table_starts_afresh_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topics, "MAX_CACHED_STEMS", 3)
    for table in topics._stems.values():
        table.clear()
    for _ in range(3):
        assert matches("merk", "Veel merken, weinig klanten, geen gemeenschappen", "nl")
        assert not matches("merk", "Dat is merkwaardig en merkbaar", "nl")
        assert all(len(table) <= 3 for table in topics._stems.values())


def test_stemming_from_many_threads_at_once() -> None:
    # A Snowball stemmer keeps its state in the object, so threads sharing
    # one would get each other's stems: each thread has its own.
    text = " ".join(path.read_text(encoding="utf-8") for path in FIXTURES.glob("[dehn]*.txt"))
    words = sorted({word for word in fold(text).split() if word.isalpha()})
    assert len(words) > 1000
    languages = ("nl", "de", "en")
    expected = [topics._compute_key(language, word) for language in languages for word in words]
    start = threading.Barrier(4)
    results: list[list[str]] = []

    def work() -> None:
        start.wait()
        results.append(
            [topics._compute_key(language, word) for language in languages for word in words]
        )

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch_interval)
    assert len(results) == 4
    assert all(result == expected for result in results)
