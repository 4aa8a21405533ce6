"""The compiled inner loops, when they were built (speedups/_aggregator_speedups.c).

``pip install`` compiles them when a C compiler is there; without one, or
with ``AGGREGATOR_NO_SPEEDUPS=1`` in the environment, every caller runs its
own Python version of the same computation, with the same results, slower.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["AVAILABLE", "DISABLE_ENV", "band_keys", "bloom", "half_rows", "langid_walk", "minhash",
           "missing_warning", "prefixed_words", "sanitized_text", "strip_controls", "strip_marks",
           "word_runs", "word_shingles"]

#: Set to 1 to run the pure-Python versions although the compiled ones exist.
DISABLE_ENV = "AGGREGATOR_NO_SPEEDUPS"

_compiled: Any = None
_DISABLED = os.environ.get(DISABLE_ENV, "") not in ("", "0")
if not _DISABLED:
    try:
        import _aggregator_speedups as _compiled
    except ImportError:
        _compiled = None

#: Whether the compiled module is in use.
AVAILABLE: bool = _compiled is not None

#: ``langid_walk(nextmove, rowbase, out_feat, text)``: see aggregator.language.
langid_walk: Callable[[Any, Any, Any, bytes], tuple[bytes, bytes] | None] | None = (
    getattr(_compiled, "langid_walk", None))
#: ``half_rows(matrix, width, halves, indexes)``: see aggregator.language.
half_rows: Callable[..., bytes] | None = getattr(_compiled, "half_rows", None)
#: ``minhash(shingles, seeds)``: see aggregator.dedupe._minhash.
minhash: Callable[[Any, Any], tuple[int, ...]] | None = getattr(_compiled, "minhash", None)
#: ``word_shingles(words, cache, cache_limit, mix0, mix1, mix2)``: see
#: aggregator.dedupe._shingle_hashes.
word_shingles: Callable[..., bytes] | None = getattr(_compiled, "word_shingles", None)
#: ``strip_controls(text)``: see aggregator.sanitize.strip_control_chars.
strip_controls: Callable[[str], str] | None = getattr(_compiled, "strip_controls", None)
#: ``strip_marks(text)``: see aggregator.folding.fold.
strip_marks: Callable[[str], str] | None = getattr(_compiled, "strip_marks", None)
#: ``sanitized_text(html)``: see aggregator.sanitize.sanitized_html_to_text; None
#: where it leaves the answer to the Python.
sanitized_text: Callable[[str], str | None] | None = getattr(_compiled, "sanitized_text", None)
#: ``bloom(bits, keys, hashes, add)``: see aggregator.dedupe_index.KeyFilter.
bloom: Callable[[bytearray, Any, int, bool], bytes] | None = getattr(_compiled, "bloom", None)
#: ``word_runs(text)``: see aggregator.folding.words_of.
word_runs: Callable[[str], tuple[str, ...]] | None = getattr(_compiled, "word_runs", None)
#: ``prefixed_words(text, prefixes)``: see aggregator.topics._Candidates.
prefixed_words: Callable[[str, bytes], frozenset[str]] | None = getattr(
    _compiled, "prefixed_words", None)
#: ``band_keys(signature, bands, rows)``: see aggregator.dedupe.band_keys.
band_keys: Callable[[tuple[int, ...], int, int], list[str]] | None = (
    getattr(_compiled, "band_keys", None))


def missing_warning() -> str | None:
    """What to tell ops when the compiled module was not built; None when in use or switched off."""
    if AVAILABLE or _DISABLED:
        return None
    return ("the compiled speedups (_aggregator_speedups) are not installed, so parsing "
            "runs slower (language detection about four times as long): install again where a "
            "C compiler and the Python headers are (Debian: apt-get install gcc python3-dev)")
