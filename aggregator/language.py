"""Which language an entry is written in.

A feed's declared language is only a hint: Dutch blogs declare "en-US"
because that is their CMS's default, and a German blog quotes an English
press release. So the text decides when there is enough of it, and the hint
decides when there is too little for a model to tell (a title, a one-line
comment).

The model is py3langid's bundled one (offline), loaded once, on first use,
with probabilities normalized so that its confidence can be weighed against
the hint. It is restricted to DETECTABLE_LANGUAGES: the written languages of
Europe and the world's other large blogospheres, all ISO 639-1 codes. Left
out are the model's small neighbours of Dutch, German, French and Spanish
(Afrikaans, Frisian, Luxembourgish, Walloon, Occitan, Galician, Latin …):
on a sentence of Dutch or German the model names one of them far more often
than a feed in one of them will ever be read here.

The model reads a window of SAMPLE_CHARS characters, not the whole text:
past a few hundred letters its answer no longer changes, only its cost.
In a long text the window starts SKIP_CHARS in, so that a title, a byline
or a row of share buttons (in English on many a Dutch blog) is left out.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import lzma
import mmap
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
from py3langid import langid as langid_module
from py3langid.langid import MODEL_FILE, RAW_FLOOR, LanguageIdentifier

from aggregator import speedups
from aggregator.config import cache_root

__all__ = ["DETECTABLE_LANGUAGES", "detect_language", "normalize_language"]

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
#: The model walks the text byte by byte (in Python when the compiled walk
#: was not built), then gathers a table row per feature it saw; 320
#: characters cost about 0.15 ms in Python.
SAMPLE_CHARS = 320
#: Where the window starts in a text long enough to spare it: past a title
#: and a byline. Measured on posts behind 120–380 characters of English
#: title, byline and share buttons, Dutch and German were still all right
#: with this skip and less than half right without it.
SKIP_CHARS = 160

#: The languages the model may answer (ISO 639-1).
DETECTABLE_LANGUAGES: frozenset[str] = frozenset((
    # Europe
    "nl", "de", "en", "fr", "es", "it", "pt", "da", "sv", "no", "fi", "is", "pl", "cs", "sk",
    "sl", "hr", "sr", "bs", "hu", "ro", "bg", "el", "ru", "uk", "be", "lt", "lv", "et", "ga",
    "cy", "eu", "ca", "mt", "sq", "mk", "tr",
    # the other large written languages
    "ar", "he", "fa", "ur", "hi", "bn", "ta", "te", "mr", "gu", "kn", "ml", "pa", "ne", "si",
    "zh", "ja", "ko", "th", "vi", "id", "ms", "tl", "km", "my", "lo", "ka", "hy", "az", "kk",
    "uz", "mn", "sw", "am",
))  # fmt: skip

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
                _identifier = _with_compiled_walk(_load_identifier())
            identifier = _identifier
    return identifier


#: The model's arrays, as files that every parser worker maps instead of
#: holding its own copy: py3langid ships the model xz-compressed (68 MB
#: unpacked, 0.6 s of CPU to unpack), and each worker would unpack it again.
_ARRAYS = ("ptc", "pc", "nextmove", "nextmove_row", "out_feat")


def _cache_dir() -> Path | None:
    """Where the unpacked model is kept: one directory per model file and language set."""
    model = Path(langid_module.MODEL_DIR) / MODEL_FILE
    try:
        stat = model.stat()
    except OSError:
        return None
    key = hashlib.sha256(
        f"{model}|{stat.st_size}|{stat.st_mtime_ns}|{sorted(DETECTABLE_LANGUAGES)}".encode()
    ).hexdigest()[:16]
    return cache_root() / f"langid-{key}"


def _write_cache(directory: Path) -> None:
    """Unpack the model, restricted to DETECTABLE_LANGUAGES, into ``directory``.

    One array at a time, from a temporary file: py3langid's own loader holds
    the whole model, plus a list of ints per DFA state, at once (about
    100 MB more at its peak, in a parser worker that keeps running).
    ``directory``'s parent must exist (see _write_cache_once).
    """
    # Built aside and renamed into place: workers starting together never
    # read a half-written cache.
    staging = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=directory.parent))
    try:
        with tempfile.TemporaryFile(suffix=".npz", dir=staging) as unpacked:
            with lzma.open(Path(langid_module.MODEL_DIR) / MODEL_FILE) as packed:
                shutil.copyfileobj(packed, unpacked, length=1 << 20)
            unpacked.seek(0)
            with np.load(unpacked, allow_pickle=False) as model:
                if not {"ptc", "pc", "classes", *_ARRAYS[2:]} <= set(model.files):
                    raise ValueError("the language model has a layout we do not know")
                classes = model["classes"].tolist()
                keep = [i for i, label in enumerate(classes) if label in DETECTABLE_LANGUAGES]
                np.save(staging / "ptc.npy", np.ascontiguousarray(model["ptc"][:, keep]),
                        allow_pickle=False)
                np.save(staging / "pc.npy", model["pc"][keep], allow_pickle=False)
                np.save(staging / "nextmove.npy",
                        model["nextmove"].astype(np.uint32, copy=False), allow_pickle=False)
                np.save(staging / "nextmove_row.npy", model["nextmove_row"], allow_pickle=False)
                np.save(staging / "out_feat.npy", model["out_feat"].astype(np.int32, copy=False),
                        allow_pickle=False)
        (staging / "classes.txt").write_text("\n".join(classes[i] for i in keep))
        for name in _ARRAYS:
            _uncache(staging / f"{name}.npy")
        with contextlib.suppress(OSError):  # another process got there first: as good
            staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _uncache(path: Path) -> None:
    """Write *path* out and drop it from the page cache.

    Workers map the model and fault in the pages they use; the kernel also
    maps any neighbouring pages already cached, and a file just written is
    cached whole: the first run's workers would each count some 15 MB more.
    """
    with open(path, "rb") as handle:
        os.fdatasync(handle.fileno())
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def _write_cache_once(directory: Path) -> None:
    """Unpack the model unless another process is doing it; then wait for it.

    Unpacking takes about 40 MB for a second. Parser workers starting
    together on a new machine would each unpack it at once: one does, under
    a lock, and the others map its files.
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not directory.is_dir():
                _write_cache(directory)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load_identifier() -> LanguageIdentifier:
    directory = _cache_dir()
    if directory is not None:
        try:
            if not directory.is_dir():
                _write_cache_once(directory)
            return _mapped_identifier(directory)
        except (OSError, ValueError):
            pass  # an unwritable or damaged cache: load the packed model as py3langid does
    loaded = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    loaded.set_languages(sorted(DETECTABLE_LANGUAGES.intersection(loaded.labels)))
    return loaded


def _mapped_identifier(directory: Path) -> LanguageIdentifier:
    arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False)
              for name in _ARRAYS}
    for array in arrays.values():
        # Lookups land all over the tables: reading ahead only fills this
        # worker's RSS with pages it never uses.
        mapping = getattr(array, "_mmap", None)
        if mapping is not None:
            mapping.madvise(mmap.MADV_RANDOM)
    classes = (directory / "classes.txt").read_text().split("\n")
    if arrays["ptc"].shape[1] != len(classes):
        raise ValueError(f"{directory}: the cached language model is inconsistent")
    # memoryviews index like the array.array py3langid builds (a plain int
    # per lookup, fast in its byte loop) while the pages stay shared; the
    # tables go in as plain ndarray views, since a np.memmap takes its rows
    # through a Python-level __getitem__, once per text.
    identifier = LanguageIdentifier(
        np.asarray(arrays["ptc"]), np.asarray(arrays["pc"]), classes,
        memoryview(arrays["nextmove"]), memoryview(arrays["out_feat"]),
        norm_probs=True, tk_row=(),
    )
    # py3langid keeps each state's row offset as a list of Python ints, 4 MB
    # of objects all over the heap that the byte walk reads at every step: in
    # a worker whose caches the rest of its work keeps evicting, one flat
    # array made the walk about an eighth faster (and the worker 3 MB smaller).
    identifier.tk_row = memoryview(arrays["nextmove_row"])
    identifier._rowbase = memoryview(np.asarray(arrays["nextmove_row"], dtype=np.int64) << 8)
    return identifier


class _CompiledWalkIdentifier(LanguageIdentifier):
    """py3langid's identifier, walking its byte automaton and gathering its rows in compiled code.

    The walk is py3langid's visit_counts, one table lookup per byte, which
    in Python costs more than the rest of the classification together. The
    compiled walk hands back the same features in the same order, and the
    rows of the float16 table they name come back as the float32 values
    NumPy would cast them to; the product and sum (py3langid's
    _sparse_score, kept in NumPy) then add the same numbers in the same
    order, and every answer stays bit for bit the same.
    """

    __slots__ = ("_half_rows", "_no_features", "_walk", "_walk_tables")

    def _raw_score(self, text: bytes) -> np.ndarray:
        found = self._walk(*self._walk_tables, text)
        if found is None:
            return self._no_features.copy()
        indexes = np.frombuffer(found[0], dtype=np.int64)
        counts = np.frombuffer(found[1], dtype=np.float32)
        if self._half_rows is None:
            return np.log1p(counts) @ self.nb_ptc[indexes] + self.nb_pc
        # The float16 rows as the float32 NumPy's product would cast them to
        # (one value at a time, a quarter of the classification), gathered
        # and cast in one pass: the product then sums the same numbers.
        rows = np.frombuffer(self._half_rows(found[0]), dtype=np.float32).reshape(
            len(indexes), -1)
        return np.log1p(counts) @ rows + self.nb_pc


def _with_compiled_walk(identifier: LanguageIdentifier) -> LanguageIdentifier:
    """*identifier* as a _CompiledWalkIdentifier, when the compiled walk was built
    (gathering the rows too when half_rows was built and the table is float16)."""
    walk = speedups.langid_walk
    if walk is None:
        return identifier
    compiled = object.__new__(_CompiledWalkIdentifier)
    for name in LanguageIdentifier.__slots__:
        setattr(compiled, name, getattr(identifier, name))
    compiled._walk = walk
    # Views of the mapped tables where they are already of these types, so
    # the pages stay shared between the workers.
    compiled._walk_tables = (
        np.ascontiguousarray(np.asarray(identifier.tk_nextmove), dtype=np.uint32),
        np.ascontiguousarray(np.asarray(identifier.tk_row), dtype=np.int64) << 8,
        np.ascontiguousarray(np.asarray(identifier.tk_output), dtype=np.int32),
    )
    compiled._half_rows = None
    ptc = identifier.nb_ptc
    if (speedups.half_rows is not None and isinstance(ptc, np.ndarray)
            and ptc.dtype == np.float16 and ptc.ndim == 2 and ptc.flags.c_contiguous):
        halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
        compiled._half_rows = functools.partial(
            speedups.half_rows, ptc.view(np.uint16), ptc.shape[1], halves)
    compiled._no_features = np.full(
        len(identifier.nb_classes), 0.0 if identifier._norm_probs else RAW_FLOOR,
        dtype=np.float32)
    return compiled


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


def _sample(text: str) -> str:
    """The window of *text* the model reads; see the module docstring."""
    if len(text) <= SAMPLE_CHARS:
        return text
    start = min(len(text) - SAMPLE_CHARS, SKIP_CHARS)
    # Start at a word: half a word is a foreign-looking n-gram.
    space = text.find(" ", start, start + 20)
    if space >= 0:
        start = space + 1
    return text[start : start + SAMPLE_CHARS]


def detect_language(text: str, hint: str | None = None) -> str | None:
    """Return the ISO 639-1 code of the language *text* is written in, or None.

    *hint* is the language a feed declares. With at least LONG_TEXT_LETTERS
    letters the model decides alone; with fewer than SHORT_TEXT_LETTERS the
    hint does, when there is one; in between the model must be CONFIDENT to
    overrule the hint. None when neither text nor hint says anything.
    """
    hinted = normalize_language(hint)
    sample = _sample(text) if text else ""
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
