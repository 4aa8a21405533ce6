"""Case- and accent-folding of text, for comparing words.

On its own so that comparing text (dedupe, fingerprints) does not import the
topic matcher and its stemmers for every language.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold"]

_COMBINING_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def fold(text: str) -> str:
    """Return *text* case-folded and without accents, for comparing words."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return _COMBINING_MARKS.sub("", decomposed)
