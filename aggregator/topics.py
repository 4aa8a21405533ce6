"""Which topics an entry belongs to, by the rules in config.toml.

A topic (aggregator.config.TopicConfig) takes an entry when any of these holds:

1. source membership: the entry's source is in ``topic.sources``, or the
   source lists the topic's slug in its own ``topics``;
2. a feed category of the entry equals one of ``topic.categories`` (whole
   categories, compared without case, accents or extra whitespace);
3. a keyword or phrase of ``topic.keywords`` occurs in the title, the text or
   a category, as whole words, in any inflected form (below).

All comparisons ignore case and accents ("Ökonomie" = "okonomie", "Straße" =
"strasse"). Then two gates:

- ``topic.languages``, when non-empty, must contain the entry's language, or
  the topic is not taken, whatever matched (an entry of unknown language
  passes no such gate);
- a match of an ``topic.exclude`` word or phrase (inflected forms too)
  removes the topic, unless the topic was taken by source membership: an
  editor who put a whole source in a topic meant all of it.

Inflected forms. A text word matches a keyword word when both reduce to the
same key under the Snowball stemmer of the entry's language: "merk" finds
"merken", "Marke" finds "Marken", "community" finds "communities". Marketing
prose in Dutch and German is full of English, so a non-English entry is also
compared under the English stemmer ("brand communities" in a Dutch post). An
entry of unknown language, or of one Snowball has no stemmer for, is compared
under the Dutch, German and English stemmers. Precision comes first:

- only whole words are compared, never parts of them: "merk" does not find
  "merkwaardig", and compounds ("merkgemeenschap", "Markenbildung") do not
  find their parts ("merk", "Marke"), since telling a compound from a word
  that merely starts the same needs a dictionary;
- where a stemmer also strips a derivational suffix (in nl, de and en), the
  suffix is kept beside the stem, so a word and its derivation stay apart:
  "market" ≠ "marketing" ≠ "marketer", "merk" ≠ "merkbaar", "nachhaltig" ≠
  "Nachhaltigkeit", while "marketers" still finds "marketer";
- Dutch uses the classic Snowball algorithm: the newer one strips "ge-"
  anywhere and so makes "begeleiding" of "beleid" and "gemeente" of "meen".

A phrase matches a run of words with the same keys, separated by whitespace
where the phrase has a space and by the same punctuation where it has any
("co-creatie" finds "co-creaties", not "co creatie"); never across the seam
of title, text and a category. A term that starts or ends with punctuation
("C++", "#seo", ".NET") is matched as written, without stemming.

Matching is compiled once per topic list (TopicMatcher); classify() keeps
the matchers of recently used topic lists. Stemming (pure Python, tens of
µs a word) is the cost: a text word is stemmed only when it starts like some
keyword, and each stem is kept in a per-language table shared by all
matchers.
"""

from __future__ import annotations

import re
import threading
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

from aggregator import speedups
from aggregator.config import TopicConfig
from aggregator.folding import fold

__all__ = ["STEMMED_LANGUAGES", "TopicMatcher", "classify", "fold"]

_WORD = re.compile(r"\w+")
#: Splits a term into words and what lies between them, alternately.
_WORDS_AND_GAPS = re.compile(r"(\W+)")
#: Keeps a phrase from matching across the seam of title, text and a category.
_SEAM = "\n\x00\n"


def _fold_label(text: str) -> str:
    return " ".join(fold(text).split())


# --------------------------------------------------------------------------- stemming

_SNOWBALL_NAMES: dict[str, str] = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "cs": "czech",
    "da": "danish", "en": "english", "eo": "esperanto", "et": "estonian", "fi": "finnish",
    "fr": "french", "de": "german", "el": "greek", "hi": "hindi", "hu": "hungarian",
    "id": "indonesian", "ga": "irish", "it": "italian", "lt": "lithuanian", "ne": "nepali",
    "no": "norwegian", "nb": "norwegian", "nn": "norwegian", "fa": "persian", "pl": "polish",
    "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian", "st": "sesotho",
    "es": "spanish", "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish",
    # Snowball 3 renamed the classic Dutch algorithm; before, it was "dutch".
    "nl": "dutch_porter" if "dutch_porter" in snowballstemmer.algorithms() else "dutch",
}  # fmt: skip
_SNOWBALL_NAMES = {
    code: name for code, name in _SNOWBALL_NAMES.items() if name in snowballstemmer.algorithms()
}

#: The languages (ISO 639-1) whose words are compared by stem.
STEMMED_LANGUAGES: frozenset[str] = frozenset(_SNOWBALL_NAMES)
#: Stemmers for an entry whose language is unknown or has none.
_FALLBACK_LANGUAGES = ("nl", "de", "en")

#: Inflectional endings, stripped before looking for a derivational suffix,
#: so that "marketers" is seen to end in "-er" like "marketer".
_INFLECTIONS: dict[str, tuple[str, ...]] = {
    "en": ("s",),
    "nl": ("en", "e", "s"),
    "de": ("ern", "em", "en", "er", "es", "e", "n", "s"),
}
#: Derivational suffixes the stemmer may strip, and the mark each leaves.
_DERIVATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (("ing", "ing"), ("er", "er")),
    "nl": (("ing", "ing"), ("heid", "heid"), ("hed", "heid"), ("baar", "baar"),
           ("bar", "baar"), ("lijk", "lijk")),
    "de": (("ung", "ung"), ("heit", "heit"), ("keit", "keit"), ("lich", "lich"),
           ("isch", "isch")),
}  # fmt: skip
#: Joins a stem and the mark of a stripped suffix; never part of a word.
_MARK = "\x1f"
_DUTCH_CONSONANTS = frozenset("bcdfghjklmnpqrstvwxz")

#: Stems kept per language before the table starts afresh.
MAX_CACHED_STEMS = 200_000
_stems: dict[str, dict[str, str]] = {code: {} for code in _SNOWBALL_NAMES}
# A Snowball stemmer keeps its state in the object: one per thread.
_local_stemmers = threading.local()


def _stemmer(language: str) -> snowballstemmer.stemmer:
    stemmers: dict[str, snowballstemmer.stemmer] | None = getattr(
        _local_stemmers, "by_language", None
    )
    if stemmers is None:
        stemmers = _local_stemmers.by_language = {}
    stemmer = stemmers.get(language)
    if stemmer is None:
        stemmer = stemmers[language] = snowballstemmer.stemmer(_SNOWBALL_NAMES[language])
    return stemmer


def _dutch_stem(word: str) -> str:
    # The classic algorithm leaves "-s" after a vowel ("vacatures" stays,
    # "vacature" becomes "vacatur") and undoubles only k, d and t
    # ("gemeenschappen" → "gemeenschapp"); both are plain plurals.
    if len(word) > 4 and word.endswith("es"):
        word = word[:-1]
    stem = _stemmer("nl").stemWord(word)
    if (
        len(stem) < len(word)
        and len(stem) > 2
        and stem[-1] == stem[-2]
        and stem[-1] in _DUTCH_CONSONANTS
    ):
        stem = stem[:-1]
    return stem


def _compute_key(language: str, word: str) -> str:
    if not word.isalpha():
        # "b2b", "2013", "web_2": names and numbers, not inflected words.
        return word
    stem = _dutch_stem(word) if language == "nl" else _stemmer(language).stemWord(word)
    derivations = _DERIVATIONS.get(language)
    if derivations is None:
        return stem
    base = word
    for ending in _INFLECTIONS[language]:
        if base.endswith(ending) and len(base) > len(ending) + 2:
            base = base[: -len(ending)]
            break
    for suffix, mark in derivations:
        # Only a suffix the stemmer cut off: "offer" keeps its "-er" in the
        # stem, so "offered" (no "-er" at its end) still finds it.
        if base.endswith(suffix) and not stem.endswith(suffix):
            return stem + _MARK + mark
    return stem


def _key(language: str, word: str) -> str:
    """The form under which *word* (folded) is compared in *language*."""
    stems = _stems[language]
    key = stems.get(word)
    if key is None:
        key = _compute_key(language, word)
        if len(stems) >= MAX_CACHED_STEMS:
            stems.clear()
        stems[word] = key
    return key


@lru_cache(maxsize=256)
def _stemming_languages(language: str | None) -> tuple[str, ...]:
    if language not in STEMMED_LANGUAGES:
        return tuple(code for code in _FALLBACK_LANGUAGES if code in STEMMED_LANGUAGES)
    if language == "en" or "en" not in STEMMED_LANGUAGES:
        return (language,)
    return (language, "en")


#: How many leading characters a text word must share with a keyword word
#: (or its stem) to be worth stemming: stems keep a word's start.
_PREFIX_LENGTH = 2
#: Except in these, whose stemmers strip prefixes ("membaca" → "baca") or
#: initial mutations ("bhean" → "bean"): there every word is stemmed.
_PREFIX_STRIPPING = frozenset({"ar", "ga", "id", "yi"})
_ANY_WORD = re.compile(r"\w+")


def _candidate_pattern(prefixes: Iterable[str]) -> re.Pattern[str] | None:
    """A pattern finding the whole words of a text that start with one of *prefixes*."""
    by_first: dict[str, set[str]] = {}
    for prefix in prefixes:
        if prefix:
            by_first.setdefault(prefix[0], set()).add(prefix[1:])
    if not by_first:
        return None
    # One character class per first letter: several times faster than an
    # alternation of all prefixes, and faster than splitting every word.
    branches = []
    for first, rests in sorted(by_first.items()):
        if "" in rests:
            branches.append(re.escape(first))
        else:
            branches.append(re.escape(first) + "[" + "".join(map(re.escape, sorted(rests))) + "]")
    return re.compile(r"(?<!\w)(?:" + "|".join(branches) + r")\w*")


def _prefix_table(prefixes: Iterable[str]) -> bytes | None:
    """*prefixes* for the compiled prefixed_words; None for what it does not take
    (a character that is not a word character, which the pattern matches
    differently: not only at a word's start)."""
    keys = set()
    for prefix in prefixes:
        if not prefix:
            continue
        if not all(char.isalnum() or char == "_" for char in prefix):
            return None
        second = ord(prefix[1]) if len(prefix) > 1 else 0xFFFFFFFF
        keys.add(ord(prefix[0]) << 32 | second)
    return array("Q", sorted(keys)).tobytes()


_prefixed_words = speedups.prefixed_words


class _Candidates:
    """Finds the words of a text that may share a key with a keyword; see _Vocabulary."""

    __slots__ = ("_find", "_pattern", "_table")

    def __init__(self, prefixes: Iterable[str] | None) -> None:
        self._find = _prefixed_words
        self._table: bytes | None = None
        if prefixes is None:  # every word
            self._pattern: re.Pattern[str] | None = _ANY_WORD
            return
        prefixes = tuple(prefixes)
        self._pattern = _candidate_pattern(prefixes)
        if self._find is not None and self._pattern is not None:
            # The same words in one compiled pass: the pattern tried every
            # position of a post's text (about 50 µs a post, 8 % of its parsing).
            self._table = _prefix_table(prefixes)

    def __call__(self, folded: str) -> frozenset[str]:
        if self._table is not None and self._find is not None:
            return self._find(folded, self._table)
        if self._pattern is None:
            return frozenset()
        return frozenset(self._pattern.findall(folded))


class _Vocabulary:
    """The keyword and exclusion words of a matcher, and which text words may match them."""

    __slots__ = ("_finders", "_words")

    def __init__(self, words: Iterable[str]) -> None:
        self._words = frozenset(words)
        self._finders: dict[tuple[str, ...], _Candidates] = {}

    def candidates(self, languages: tuple[str, ...]) -> _Candidates:
        """What finds the text words that can share a key with a keyword in *languages*.

        A word that starts unlike every keyword word and every keyword stem
        cannot have the stem of one; it is never stemmed, which is most of
        the cost saved.
        """
        try:
            return self._finders[languages]
        except KeyError:
            if not self._words:
                found = _Candidates(())
            elif not _PREFIX_STRIPPING.isdisjoint(languages):
                found = _Candidates(None)
            else:
                starts = {word[:_PREFIX_LENGTH] for word in self._words}
                starts.update(
                    _key(language, word)[:_PREFIX_LENGTH]
                    for language in languages
                    for word in self._words
                )
                found = _Candidates(starts)
            self._finders[languages] = found
            return found


# --------------------------------------------------------------------------- the entry's words


class _Text:
    """The words of one entry (folded), keyed per language on first need."""

    __slots__ = ("_by_word", "_keys", "_words", "candidates", "folded")

    def __init__(self, folded: str, candidates: _Candidates) -> None:
        self.folded = folded
        #: The words that may share a key with a keyword; see _Vocabulary.
        self.candidates = candidates(folded)
        self._words: frozenset[str] | None = None
        self._by_word: dict[str, dict[str, str]] = {}
        self._keys: dict[str, frozenset[str]] = {}

    @property
    def words(self) -> frozenset[str]:
        """Every word, unstemmed: for terms matched as written."""
        if self._words is None:
            self._words = frozenset(_WORD.findall(self.folded))
        return self._words

    def key_of_word(self, language: str) -> dict[str, str]:
        """The key of each candidate word; any other word has no key a keyword has."""
        by_word = self._by_word.get(language)
        if by_word is None:
            by_word = self._by_word[language] = {
                word: _key(language, word) for word in self.candidates
            }
        return by_word

    def keys(self, language: str) -> frozenset[str]:
        keys = self._keys.get(language)
        if keys is None:
            keys = self._keys[language] = frozenset(self.key_of_word(language).values())
        return keys


def _is_word_char(char: str) -> bool:
    # What \w matches in a str pattern.
    return char.isalnum() or char == "_"


def _gap_pattern(gap: str) -> str:
    if gap == " ":
        return r"\s+"
    return "(?:" + re.escape(gap) + "|" + re.escape(gap.replace("'", "\u2019")) + ")"


@lru_cache(maxsize=4096)
def _phrase_start(first: str, gap: str) -> re.Pattern[str]:
    """Finds *first*, then *gap*, and captures the word after it.

    It starts with the word itself, so the search skips ahead to it fast; the
    rest is a lookahead so that "a a b" still yields the "a b" at 2.
    """
    return re.compile(re.escape(first) + "(?=" + _gap_pattern(gap) + r"(\w+))")


@lru_cache(maxsize=256)
def _gap_then_word(gap: str) -> re.Pattern[str]:
    return re.compile(_gap_pattern(gap) + r"(\w+)")


def _phrase_at(text: _Text, language: str, keys: tuple[str, ...], gaps: tuple[str, ...]) -> bool:
    """Whether the words of *text* spell the phrase with *keys* and *gaps* somewhere."""
    by_word = text.key_of_word(language)
    folded = text.folded
    for first in [word for word, key in by_word.items() if key == keys[0]]:
        for found in _phrase_start(first, gaps[0]).finditer(folded):
            start = found.start()
            if start and _is_word_char(folded[start - 1]):
                continue
            # A word that is no candidate stands for itself, never for a key.
            second = found[1]
            if by_word.get(second, second) != keys[1]:
                continue
            position = found.end(1)
            for key, gap in zip(keys[2:], gaps[1:], strict=True):
                rest = _gap_then_word(gap).match(folded, position)
                if rest is None or by_word.get(rest[1], rest[1]) != key:
                    break
                position = rest.end()
            else:
                return True
    return False


# --------------------------------------------------------------------------- terms


@dataclass(frozen=True, slots=True)
class _Phrase:
    """A keyword of one or more words, compared by key."""

    words: tuple[str, ...]
    #: What separates the words: " " for any whitespace, else the punctuation.
    gaps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _KeyedTerms:
    """The phrases of a term list, keyed for one language."""

    #: Keys of one-word terms: a set lookup per entry.
    words: frozenset[str]
    #: Longer phrases: their keys, their gaps, and the keys they need.
    phrases: tuple[tuple[tuple[str, ...], tuple[str, ...], frozenset[str]], ...]


class _Terms:
    """Words and phrases to look for (keywords, or exclusions), compiled once."""

    __slots__ = ("_keyed", "literals", "phrases")

    def __init__(self, terms: Sequence[str]) -> None:
        phrases: list[_Phrase] = []
        literals: list[tuple[frozenset[str], re.Pattern[str]]] = []
        for term in terms:
            folded = _fold_label(term)
            if not folded:
                continue
            parts = _WORDS_AND_GAPS.split(folded)
            if parts[0] and parts[-1]:
                gaps = tuple(" " if gap == " " else gap.replace("\u2019", "'")
                             for gap in parts[1::2])  # fmt: skip
                phrases.append(_Phrase(tuple(parts[0::2]), gaps))
                continue
            # Starts or ends with punctuation ("c++"): as written, with word
            # boundaries only where the term itself has a word character.
            pattern = r"\s+".join(re.escape(part) for part in folded.split(" "))
            if _WORD.match(folded[0]):
                pattern = r"(?<!\w)" + pattern
            if _WORD.match(folded[-1]):
                pattern += r"(?!\w)"
            literals.append((frozenset(_WORD.findall(folded)), re.compile(pattern)))
        self.phrases = tuple(phrases)
        self.literals = tuple(literals)
        self._keyed: dict[str, _KeyedTerms] = {}

    def __bool__(self) -> bool:
        return bool(self.phrases or self.literals)

    def words(self) -> Iterable[str]:
        for phrase in self.phrases:
            yield from phrase.words

    def keyed(self, language: str) -> _KeyedTerms:
        keyed = self._keyed.get(language)
        if keyed is None:
            words: set[str] = set()
            phrases = []
            for phrase in self.phrases:
                keys = tuple(_key(language, word) for word in phrase.words)
                if len(keys) == 1:
                    words.add(keys[0])
                else:
                    phrases.append((keys, phrase.gaps, frozenset(keys)))
            keyed = self._keyed[language] = _KeyedTerms(frozenset(words), tuple(phrases))
        return keyed

    def found_in(self, text: _Text, languages: tuple[str, ...]) -> bool:
        for needed, pattern in self.literals:
            if needed <= text.words and pattern.search(text.folded):
                return True
        if not self.phrases:
            return False
        for language in languages:
            keyed = self.keyed(language)
            keys = text.keys(language)
            if not keyed.words.isdisjoint(keys):
                return True
            for phrase_keys, gaps, needed in keyed.phrases:
                if needed <= keys and _phrase_at(text, language, phrase_keys, gaps):
                    return True
        return False


# --------------------------------------------------------------------------- topics


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

    __slots__ = ("_topics", "_vocabulary")

    def __init__(self, topics: Sequence[TopicConfig]) -> None:
        self._topics = tuple(
            _CompiledTopic(
                slug=topic.slug,
                sources=frozenset(topic.sources),
                categories=frozenset(filter(None, map(_fold_label, topic.categories))),
                languages=frozenset(map(_language_code, topic.languages)),
                keywords=_Terms(topic.keywords),
                exclude=_Terms(topic.exclude),
            )
            for topic in topics
        )
        self._vocabulary = _Vocabulary(
            word
            for topic in self._topics
            for terms in (topic.keywords, topic.exclude)
            for word in terms.words()
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
        languages = _stemming_languages(entry_language)
        # Split and stemmed lazily: source and category rules without
        # exclusions never need the text.
        words: _Text | None = None
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
            if words is None:
                # Folded piece by piece, which is the same (_SEAM's characters
                # stop the reordering of combining marks): the text's fold is
                # the one its fingerprint made, remembered.
                words = _Text(
                    _SEAM.join((fold(title), fold(text), *map(fold, categories))),
                    self._vocabulary.candidates(languages),
                )
            if not by_category and not topic.keywords.found_in(words, languages):
                continue
            if topic.exclude and topic.exclude.found_in(words, languages):
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
