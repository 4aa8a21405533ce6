"""Case- and accent-folding of text, for comparing words.

On its own so that comparing text (dedupe, fingerprints) does not import the
topic matcher and its stemmers for every language.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable

from aggregator import speedups

__all__ = ["fold", "fold_rest", "forget", "words_of"]

#: A word: a run of letters and digits (no underscores).
_WORD = re.compile(r"[^\W_]+")
_COMBINING_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def _python_strip_marks(text: str) -> str:
    return _COMBINING_MARKS.sub("", text)


# The same characters removed in compiled code, when it was built: the regex
# took about 30 µs for a post of 4 KB, nearly half of folding it.
_strip_marks: Callable[[str], str] = speedups.strip_marks or _python_strip_marks

#: Texts at least this long are remembered once folded (see _recent).
_REMEMBERED_LENGTH = 256
#: At most this many characters of texts are remembered.
_REMEMBERED_CHARS = 1 << 19

# A post's text is folded for its fingerprint, its dedupe words and its
# topics, about 40 µs each time for a few KB of text with any non-ASCII in
# it: the latter two find it here. Keyed by the text itself, usually the
# very object folded before (its hash is kept with it, so a hit is cheap).
_recent: dict[str, str] = {}
_recent_chars = 0
_recent_lock = threading.Lock()
# Likewise a post's folded body is cut into words for its fingerprint and
# again for its dedupe words (about 40 µs for a few KB each time). Each
# remembered character costs about ten bytes of word strings, so the budget
# is smaller than the folds'.
_recent_words: dict[str, tuple[str, ...]] = {}
_recent_words_chars = 0
_REMEMBERED_WORD_CHARS = 1 << 17


def fold(text: str) -> str:
    """Return *text* case-folded and without accents, for comparing words."""
    global _recent_chars
    if text.isascii():
        return text.lower()
    long = len(text) >= _REMEMBERED_LENGTH
    if long:
        folded = _recent.get(text)
        if folded is not None:
            return folded
    folded = _strip_marks(unicodedata.normalize("NFKD", text.casefold()))
    if long:
        with _recent_lock:  # the store's threads fold too
            # Oldest first out; the count is of folded characters, the values'.
            while _recent and _recent_chars + len(folded) > _REMEMBERED_CHARS:
                _recent_chars -= len(_recent.pop(next(iter(_recent))))
            if len(folded) <= _REMEMBERED_CHARS:
                _recent[text] = folded
                _recent_chars += len(folded)
    return folded


def fold_rest(text: str, head: str) -> str:
    """``fold(text[len(head):])`` for a *text* that starts with *head*.

    Taken from ``fold(text)`` when what follows *head* is a space: folding
    works character by character except for the reordering of combining
    marks, which never crosses a space, so ``fold(head + " " + rest)`` is
    ``fold(head) + fold(" " + rest)``. A post's text is its title, a space
    and its body: this folds the body without folding it again.
    """
    rest = text[len(head):]
    if rest[:1] != " ":
        return fold(rest)
    return fold(text)[len(fold(head)):]


def _python_words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text))


#: The same runs of letters and digits, found in compiled code when it was built.
_find_words: Callable[[str], tuple[str, ...]] = speedups.word_runs or _python_words


def words_of(folded: str) -> tuple[str, ...]:
    """The words of *folded* (a text :func:`fold` returned), in order."""
    global _recent_words_chars
    if len(folded) < _REMEMBERED_LENGTH:
        return _find_words(folded)
    found = _recent_words.get(folded)
    if found is not None:
        return found
    found = _find_words(folded)
    with _recent_lock:
        # Oldest first out; the count is of the keys' characters.
        while _recent_words and _recent_words_chars + len(folded) > _REMEMBERED_WORD_CHARS:
            oldest = next(iter(_recent_words))
            del _recent_words[oldest]
            _recent_words_chars -= len(oldest)
        if len(folded) <= _REMEMBERED_WORD_CHARS:
            _recent_words[folded] = found
            _recent_words_chars += len(folded)
    return found


def forget() -> None:
    """Drop the remembered texts (a parser worker, after each document)."""
    global _recent_chars, _recent_words_chars
    with _recent_lock:
        _recent.clear()
        _recent_chars = 0
        _recent_words.clear()
        _recent_words_chars = 0
