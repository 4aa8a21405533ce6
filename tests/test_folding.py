"""folding: fold, fold_rest and the memory of texts folded lately."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import example, given, settings
from hypothesis import strategies as st

from aggregator import folding
from aggregator.folding import fold, fold_rest, forget
from aggregator.topics import _SEAM

# Letters, spaces and combining marks of several classes, some that fold
# removes (U+0300 block) and some it keeps (Hebrew points), so that the
# canonical reordering of marks across a seam is exercised.
PIECES = st.text(alphabet=st.sampled_from(
    [*"aeoAEOßẞİı ſ\t\n.", "é", "Ä", "ﬁ", "ǅ", "\u0316", "\u0301", "\u0345", "\u05b0",
     "\u05b4", "\u05bc", "\u05d0", "\u0e48", "\u20d2", "“", "–"]),
    max_size=40)


def reference(text: str) -> str:
    """fold as first written, without any memory."""
    if text.isascii():
        return text.lower()
    return re.sub("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]", "",
                  unicodedata.normalize("NFKD", text.casefold()))


@settings(max_examples=400, deadline=None)
@given(PIECES, PIECES, st.integers(0, 300))
# Hiriq (class 14) then sheva (class 10): NFKD swaps them across the seam.
@example("\u05d0\u05b4", "\u05b0", 0)
@example("\u05d0\u05b4", "\u05b0 \u05d0", 300)
def test_fold_rest_is_fold_of_the_rest(head: str, rest: str, padding: int) -> None:
    # Padding makes some texts long enough to be remembered.
    head = "x" * padding + head
    for tail in (rest, " " + rest):
        text = head + tail
        assert fold_rest(text, head) == reference(tail)
        assert fold(text) == reference(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=5))
def test_folding_pieces_apart_across_the_topic_seam_is_folding_them_together(
        pieces: list[str]) -> None:
    assert _SEAM.join(map(fold, pieces)) == reference(_SEAM.join(pieces))


def test_a_remembered_text_is_found_by_an_equal_one_and_memory_stays_bounded() -> None:
    forget()
    text = "Café “Über” " * 40
    first = fold(text)
    assert folding._recent[text] is first
    assert fold("".join(list(text))) is first  # equal, not the same object
    for number in range(3000):  # far more than the cap holds
        fold(f"{number} Straße " * 40)
    assert 0 < folding._recent_chars <= folding._REMEMBERED_CHARS
    assert folding._recent_chars == sum(map(len, folding._recent.values()))
    assert text not in folding._recent  # the oldest went first
    forget()
    assert not folding._recent and folding._recent_chars == 0
    assert fold(text) == reference(text)


@settings(max_examples=200, deadline=None)
@given(PIECES, st.integers(0, 300))
def test_words_of_are_the_runs_of_letters_and_digits_remembered_or_not(
    text: str, padding: int,
) -> None:
    folded = fold("ab_12 " * padding + text)
    expected = tuple(re.findall(r"[^\W_]+", folded))
    assert folding.words_of(folded) == expected
    assert folding.words_of("".join(list(folded))) == expected  # from memory, if long


def test_remembered_words_are_shared_bounded_and_forgotten() -> None:
    forget()
    body = fold("Één merk, één community_manager en 12 fans. " * 20)
    first = folding.words_of(body)
    assert "community" in first and "manager" in first and "12" in first
    assert folding.words_of(body[:len(body)]) is first  # a fingerprint, then dedupe
    for number in range(2000):
        folding.words_of(f"{number} woorden genoeg " * 30)
    assert 0 < folding._recent_words_chars <= folding._REMEMBERED_WORD_CHARS
    assert folding._recent_words_chars == sum(map(len, folding._recent_words))
    assert body not in folding._recent_words
    forget()
    assert not folding._recent_words and folding._recent_words_chars == 0
