"""Which language an entry is written in.

A feed's declared language is only a hint: Dutch blogs declare "en-US"
because that is their CMS's default, and a German blog quotes an English
press release. So the text decides when there is enough of it, and the hint
decides when there is too little for a model to tell (a title, a one-line
comment).

The model is py3langid's bundled one (offline), loaded once, on first use,
with probabilities normalized so that its confidence can be weighed against
the hint. It is restricted to labels that are ISO 639-1 codes, so every
answer is a two-letter code.
"""

from __future__ import annotations

import re
import threading

from py3langid.langid import MODEL_FILE, LanguageIdentifier

__all__ = ["detect_language", "normalize_language"]

#: With this many letters the model is right far more often than any hint.
LONG_TEXT_LETTERS = 200
#: Below this many letters the model is a guess; the hint wins.
SHORT_TEXT_LETTERS = 60
#: Between the two, the model must be this sure to overrule the hint.
CONFIDENT = 0.8
#: Without a hint, the least confidence at which the model's answer is given.
PLAUSIBLE = 0.5
#: Short text without a hint needs more.
PLAUSIBLE_SHORT = 0.7
#: The model walks the text byte by byte in Python (about 0.4 µs a byte);
#: past a few hundred letters its answer no longer changes, only its cost.
SAMPLE_CHARS = 320

_NOT_LETTER = re.compile(r"[\W\d_]+")
_HINT = re.compile(r"[A-Za-z]{2,3}(?=$|[-_])")

#: ISO 639-2 codes (bibliographic and terminology) that feeds use instead of
#: ISO 639-1, for the languages this aggregator is likely to see.
_ISO_639_2: dict[str, str] = {
    "nld": "nl", "dut": "nl", "deu": "de", "ger": "de", "eng": "en", "fra": "fr",
    "fre": "fr", "spa": "es", "ita": "it", "por": "pt", "dan": "da", "swe": "sv",
    "nor": "no", "nob": "nb", "nno": "nn", "fin": "fi", "pol": "pl", "ces": "cs",
    "cze": "cs", "tur": "tr", "rus": "ru", "ukr": "uk", "ell": "el", "gre": "el",
    "fry": "fy", "ltz": "lb", "afr": "af", "jpn": "ja", "zho": "zh", "chi": "zh",
}  # fmt: skip

_identifier: LanguageIdentifier | None = None
_identifier_lock = threading.Lock()


def _model() -> LanguageIdentifier:
    global _identifier
    identifier = _identifier
    if identifier is None:
        with _identifier_lock:
            if _identifier is None:
                loaded = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                # Labels such as "pcm", "yue" or "zxx" (no language) have no
                # ISO 639-1 code; leaving them out keeps answers two letters.
                loaded.set_languages([label for label in loaded.labels if len(label) == 2])
                _identifier = loaded
            identifier = _identifier
    return identifier


def normalize_language(code: str | None) -> str | None:
    """Return the ISO 639-1 code of a language tag ("nl-NL", "de_DE", "ENG" …), or None."""
    if not code:
        return None
    match = _HINT.match(code.strip())
    if match is None:
        return None
    primary = match.group(0).lower()
    if len(primary) == 2:
        return primary
    return _ISO_639_2.get(primary)


def detect_language(text: str, hint: str | None = None) -> str | None:
    """Return the ISO 639-1 code of the language *text* is written in, or None.

    *hint* is the language a feed declares. With at least LONG_TEXT_LETTERS
    letters the model decides alone; with fewer than SHORT_TEXT_LETTERS the
    hint does, when there is one; in between the model must be CONFIDENT to
    overrule the hint. None when neither text nor hint says anything.
    """
    hinted = normalize_language(hint)
    sample = text[:SAMPLE_CHARS] if text else ""
    letters = len(_NOT_LETTER.sub("", sample))
    if letters == 0:
        return hinted
    if letters < SHORT_TEXT_LETTERS and hinted:
        return hinted
    label, confidence = _model().classify(sample)
    if letters >= LONG_TEXT_LETTERS:
        return label
    if letters >= SHORT_TEXT_LETTERS:
        if confidence >= CONFIDENT:
            return label
        if hinted:
            return hinted
        return label if confidence >= PLAUSIBLE else None
    return label if confidence >= PLAUSIBLE_SHORT else None
