"""Which topics an entry belongs to, by the rules in config.toml.

A topic (aggregator.config.TopicConfig) takes an entry when any of these holds:

1. source membership: the entry's source is in ``topic.sources``, or the
   source lists the topic's slug in its own ``topics``;
2. a feed category of the entry equals one of ``topic.categories``;
3. a keyword or phrase of ``topic.keywords`` occurs in the title, the text or
   a category, as whole words.

All comparisons ignore case and accents ("Ökonomie" = "okonomie", "Straße" =
"strasse"); a phrase matches across any run of whitespace. Then two gates:

- ``topic.languages``, when non-empty, must contain the entry's language, or
  the topic is not taken, whatever matched (an entry of unknown language
  passes no such gate);
- a match of an ``topic.exclude`` word or phrase removes the topic, unless
  the topic was taken by source membership: an editor who put a whole source
  in a topic meant all of it.

Matching is compiled once per topic list (TopicMatcher); classify() keeps
the matchers of recently used topic lists.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from aggregator.config import TopicConfig

__all__ = ["TopicMatcher", "classify", "fold"]

_COMBINING_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_WORD = re.compile(r"\w+")
#: Keeps a phrase from matching across the seam of title, text and a category.
_SEAM = "\n\x00\n"


def fold(text: str) -> str:
    """Return *text* case-folded and without accents, for comparing words."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return _COMBINING_MARKS.sub("", decomposed)


def _fold_label(text: str) -> str:
    return " ".join(fold(text).split())


@dataclass(frozen=True, slots=True)
class _Terms:
    """Words and phrases, split by how they are cheapest to look for."""

    #: Single words: a lookup in the entry's set of words.
    words: frozenset[str]
    #: Phrases (or terms with punctuation), each with the words it needs, so
    #: that the regular expression only runs when all of them occur.
    phrases: tuple[tuple[frozenset[str], re.Pattern[str]], ...]

    @classmethod
    def compile(cls, terms: Sequence[str]) -> _Terms:
        words: set[str] = set()
        phrases: list[tuple[frozenset[str], re.Pattern[str]]] = []
        for term in terms:
            folded = _fold_label(term)
            if not folded:
                continue
            if _WORD.fullmatch(folded):
                words.add(folded)
                continue
            pattern = r"\s+".join(re.escape(part) for part in folded.split(" "))
            # Boundaries only where the term itself starts or ends with a
            # word character: "c++" must still match before a space.
            if _WORD.match(folded[0]):
                pattern = r"(?<!\w)" + pattern
            if _WORD.match(folded[-1]):
                pattern += r"(?!\w)"
            phrases.append((frozenset(_WORD.findall(folded)), re.compile(pattern)))
        return cls(frozenset(words), tuple(phrases))

    def __bool__(self) -> bool:
        return bool(self.words or self.phrases)

    def found_in(self, folded_text: str, words: frozenset[str]) -> bool:
        if not self.words.isdisjoint(words):
            return True
        return any(
            needed <= words and pattern.search(folded_text) for needed, pattern in self.phrases
        )


@dataclass(frozen=True, slots=True)
class _CompiledTopic:
    slug: str
    sources: frozenset[str]
    categories: frozenset[str]
    languages: frozenset[str]
    keywords: _Terms
    exclude: _Terms


def _language_code(code: str) -> str:
    return code.strip().lower().replace("_", "-").split("-")[0]


class TopicMatcher:
    """The topic rules of one config, compiled once and applied to many entries."""

    __slots__ = ("_topics",)

    def __init__(self, topics: Sequence[TopicConfig]) -> None:
        self._topics = tuple(
            _CompiledTopic(
                slug=topic.slug,
                sources=frozenset(topic.sources),
                categories=frozenset(filter(None, map(_fold_label, topic.categories))),
                languages=frozenset(map(_language_code, topic.languages)),
                keywords=_Terms.compile(topic.keywords),
                exclude=_Terms.compile(topic.exclude),
            )
            for topic in topics
        )

    def classify(
        self,
        *,
        title: str,
        text: str,
        categories: Sequence[str],
        source_name: str,
        source_topics: Sequence[str],
        language: str | None,
    ) -> tuple[str, ...]:
        """Return the slugs of the topics the entry belongs to, in config order."""
        folded_categories = frozenset(_fold_label(category) for category in categories)
        entry_language = _language_code(language) if language else None
        # Folded lazily (a third of the cost): source and category rules
        # without exclusions never need the text.
        folded_text: str | None = None
        words: frozenset[str] = frozenset()
        matched: list[str] = []
        for topic in self._topics:
            if topic.languages and entry_language not in topic.languages:
                continue
            if source_name in topic.sources or topic.slug in source_topics:
                matched.append(topic.slug)
                continue
            by_category = not topic.categories.isdisjoint(folded_categories)
            if not by_category and not topic.keywords:
                continue
            if folded_text is None:
                folded_text = fold(_SEAM.join((title, text, *categories)))
                words = frozenset(_WORD.findall(folded_text))
            if not by_category and not topic.keywords.found_in(folded_text, words):
                continue
            if topic.exclude and topic.exclude.found_in(folded_text, words):
                continue
            matched.append(topic.slug)
        return tuple(matched)


@lru_cache(maxsize=16)
def _matcher(topics: tuple[TopicConfig, ...]) -> TopicMatcher:
    return TopicMatcher(topics)


def classify(
    *,
    title: str,
    text: str,
    categories: Sequence[str],
    source_name: str,
    source_topics: Sequence[str],
    language: str | None,
    topics: Sequence[TopicConfig],
) -> tuple[str, ...]:
    """Return the slugs of *topics* the entry belongs to, in config order.

    The rules are in this module's docstring. The compiled form of *topics*
    is cached, so calling this per entry with the same config is cheap.
    """
    return _matcher(tuple(topics)).classify(
        title=title,
        text=text,
        categories=categories,
        source_name=source_name,
        source_topics=source_topics,
        language=language,
    )
