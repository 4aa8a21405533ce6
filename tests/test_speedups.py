"""The compiled inner loops give exactly what their Python versions give.

The compiled module is built by ``pip install`` wherever a C compiler is
(CI has one), so its absence fails here instead of silently testing only
the Python path; set AGGREGATOR_ALLOW_NO_SPEEDUPS=1 on a machine without a
compiler to run the rest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import dedupe, folding, language, speedups

SEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"
ALLOW_MISSING = os.environ.get("AGGREGATOR_ALLOW_NO_SPEEDUPS", "") not in ("", "0")
DISABLED = os.environ.get(speedups.DISABLE_ENV, "") not in ("", "0")


def seed_texts() -> list[str]:
    if not SEEDS.is_dir():
        pytest.fail(f"seed pages not found at {SEEDS}: shared/ must sit next to the repository")
    texts = []
    for path in sorted(SEEDS.glob("*.txt")):
        texts.extend(line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                     if line.strip())
    assert len(texts) > 20
    return texts


@pytest.fixture(scope="module")
def compiled() -> object:
    if not speedups.AVAILABLE:
        if ALLOW_MISSING or DISABLED:
            pytest.skip(f"the compiled module is not in use ({speedups.DISABLE_ENV} or "
                        "AGGREGATOR_ALLOW_NO_SPEEDUPS is set)")
        pytest.fail("_aggregator_speedups was not built: install with a C compiler "
                    "(pip install -e '.[test]'), or set AGGREGATOR_ALLOW_NO_SPEEDUPS=1")
    return speedups


@pytest.fixture(scope="module")
def identifiers() -> tuple[object, object]:
    python = language._load_identifier()
    return python, language._with_compiled_walk(python)


def test_compiled_module_is_in_use(compiled: object) -> None:
    assert isinstance(language._model(), language._CompiledWalkIdentifier)
    assert speedups.minhash is not None


def python_walk(identifier: object, text: bytes) -> dict[int, int]:
    from py3langid.langid import visit_counts

    visits = visit_counts(identifier.tk_nextmove, identifier._rowbase,
                          identifier.tk_output, text)
    return dict(visits or {})


def compiled_walk(identifier: object, text: bytes) -> dict[int, int]:
    found = identifier._walk(*identifier._walk_tables, text)
    if found is None:
        return {}
    indexes = np.frombuffer(found[0], dtype=np.int64).tolist()
    counts = np.frombuffer(found[1], dtype=np.float32).tolist()
    return dict(zip(indexes, counts, strict=True))


def assert_same_walk(identifiers: tuple[object, object], text: str) -> None:
    python, fast = identifiers
    encoded = python._encode(text)
    expected = python_walk(python, encoded)
    got = compiled_walk(fast, encoded)
    # Same features, same counts, and the same first-occurrence order, on
    # which the floating-point sum of the scoring depends.
    assert list(got.items()) == list(expected.items())
    assert np.array_equal(fast._decide(text), python._decide(text))
    assert fast.classify(text) == python.classify(text)


def test_walk_and_scores_match_on_the_seed_pages(
        compiled: object, identifiers: tuple[object, object]) -> None:
    texts = seed_texts()
    for text in texts:
        assert_same_walk(identifiers, text)
        assert_same_walk(identifiers, language._sample(text))


@pytest.mark.parametrize("text", ["", " ", "1234 5678", "\x00\x01", "ÄÖÜ ß", "日本語のテキスト",
                                  "\ud800 lone surrogate", "a" * 5000, "🙂" * 40])
def test_walk_matches_on_edge_cases(
        compiled: object, identifiers: tuple[object, object], text: str) -> None:
    assert_same_walk(identifiers, text)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=600))
def test_walk_matches_on_any_text(
        compiled: object, identifiers: tuple[object, object], text: str) -> None:
    assert_same_walk(identifiers, text)


def test_walk_refuses_tables_that_do_not_fit(compiled: object) -> None:
    # A move past the end of the table must be an error, never a read
    # outside the buffer.
    nextmove = np.array([5] * 256, dtype=np.uint32)
    rowbase = np.array([0], dtype=np.int64)
    out = np.array([-1], dtype=np.int32)
    with pytest.raises(ValueError, match="outside the model"):
        speedups.langid_walk(nextmove, rowbase, out, b"ab")


def python_minhash(shingles: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> tuple[int, ...]:
    with monkeypatch.context() as patch:
        patch.setattr(speedups, "minhash", None)
        return dedupe._minhash(shingles)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=300))
def test_minhash_matches_on_any_shingles(compiled: object, values: list[int]) -> None:
    shingles = np.array(values, dtype=np.uint64)
    with pytest.MonkeyPatch.context() as patch:
        expected = python_minhash(shingles, patch)
    got = dedupe._minhash(shingles)
    assert got == expected
    assert len(got) == (dedupe.PERMUTATIONS if values else 0)


def test_signatures_match_on_the_seed_pages(
        compiled: object, monkeypatch: pytest.MonkeyPatch) -> None:
    for text in seed_texts():
        shingles = dedupe._shingle_hashes(text.split())
        assert dedupe._minhash(shingles) == python_minhash(shingles, monkeypatch)


def test_the_pure_python_fallback_gives_the_same_answers(tmp_path: Path) -> None:
    # With the compiled module switched off, a fresh interpreter runs the
    # Python versions; its languages and signatures must equal this one's.
    texts = seed_texts()
    (tmp_path / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    script = (
        "import json, sys\n"
        "from aggregator import dedupe, language, speedups\n"
        "texts = json.load(open(sys.argv[1], encoding='utf-8'))\n"
        "assert not speedups.AVAILABLE and speedups.minhash is None\n"
        "assert not isinstance(language._model(), language._CompiledWalkIdentifier)\n"
        "print(json.dumps([[language.detect_language(t), language._model().classify(t)[1],\n"
        "                   list(dedupe.signature(t))] for t in texts]))\n"
    )
    env = dict(os.environ, **{speedups.DISABLE_ENV: "1"})
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "texts.json")],
                          capture_output=True, text=True, env=env, check=False,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    fallback = json.loads(done.stdout)
    here = [[language.detect_language(t), language._model().classify(t)[1],
             list(dedupe.signature(t))] for t in texts]
    assert fallback == here
    assert {row[0] for row in here} >= {"nl", "de"}


HIDE_AND_FETCH = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "_aggregator_speedups":
            raise ImportError("hidden for the test")
sys.meta_path.insert(0, Hide())
sys.argv = ["aggregator", "--config", sys.argv[1], "fetch"]
from aggregator.cli import program
program()
"""


@pytest.mark.parametrize("disabled", [False, True])
def test_a_fetch_without_the_compiled_module_says_so(tmp_path: Path, disabled: bool) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[aggregator]\ntitle = "T"\nbase_url = "http://127.0.0.1:8080/"\n'
                      'database = "sqlite:///agg.db"\nfeeds_dir = "feeds"\n', encoding="utf-8")
    env = dict(os.environ)
    env.pop(speedups.DISABLE_ENV, None)
    if disabled:  # switched off on purpose: nothing to warn of
        env[speedups.DISABLE_ENV] = "1"
    done = subprocess.run([sys.executable, "-c", HIDE_AND_FETCH, str(config)],
                          capture_output=True, text=True, env=env, check=False,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert "fetch pass: 0 source(s)" in done.stderr
    warned = done.stderr.count("compiled speedups (_aggregator_speedups) are not installed")
    assert warned == (0 if disabled else 1), done.stderr


def python_keys(words: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> tuple:
    with monkeypatch.context() as patch:
        for name in ("word_shingles", "band_keys", "minhash"):
            patch.setattr(speedups, name, None)
        shingles = dedupe._shingle_hashes(words)
        sig = dedupe._minhash(shingles)
        return shingles.tolist(), sig, dedupe.band_keys(sig)


def compiled_keys(words: tuple[str, ...]) -> tuple:
    shingles = dedupe._shingle_hashes(words)
    sig = dedupe._minhash(shingles)
    return shingles.tolist(), sig, dedupe.band_keys(sig)


def test_blake2b_is_hashlibs(compiled: object) -> None:
    import hashlib

    for length in [*range(0, 300), 1000, 4096]:
        data = bytes((index * 131 + length) % 256 for index in range(length))
        for size in (1, 6, 8, 33, 64):
            assert speedups._compiled.blake2b_hex(data, size) == hashlib.blake2b(
                data, digest_size=size).hexdigest()


def test_shingles_and_band_keys_match_on_the_seed_pages(
        compiled: object, monkeypatch: pytest.MonkeyPatch) -> None:
    for text in seed_texts():
        words = tuple(dedupe.fold(text).split())
        assert compiled_keys(words) == python_keys(words, monkeypatch)


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.text(min_size=1, max_size=12), max_size=120))
def test_shingles_and_band_keys_match_on_any_words(compiled: object, words: list[str]) -> None:
    # Lone surrogates included: the hash reads them as encode("utf-8", "surrogatepass").
    with pytest.MonkeyPatch.context() as patch:
        expected = python_keys(tuple(words), patch)
    assert compiled_keys(tuple(words)) == expected
    assert compiled_keys(words) == expected  # a list, as signature() gives


def test_the_word_cache_is_bounded(compiled: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedupe, "_word_hashes", {})
    words = tuple(f"w{index}" for index in range(40_000))
    first = compiled_keys(words)
    assert 0 < len(dedupe._word_hashes) <= dedupe._WORD_HASHES_KEPT
    # Whatever the cache held, the hashes are the same.
    assert compiled_keys(words) == first == python_keys(words, monkeypatch)


def test_band_keys_refuse_a_signature_of_the_wrong_shape(compiled: object) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        speedups.band_keys((1, 2, 3), 20, 4)
    with pytest.raises(OverflowError):
        speedups.band_keys((-1,) * 80, 20, 4)


def test_half_rows_are_numpy_s_cast_of_the_gathered_rows(compiled: object) -> None:
    # Every float16 bit pattern (subnormals, infinities, NaNs with payloads).
    matrix = np.arange(1 << 16, dtype=np.uint16).reshape(-1, 64).view(np.float16)
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
    rows = np.array([0, 1023, 5, 5, 512, 31], dtype=np.int64)
    got = np.frombuffer(speedups.half_rows(matrix.view(np.uint16), 64, halves, rows),
                        dtype=np.float32).reshape(len(rows), 64)
    expected = matrix[rows].astype(np.float32)
    assert got.view(np.uint32).tolist() == expected.view(np.uint32).tolist()
    everything = np.arange(1024, dtype=np.int64)
    got = np.frombuffer(speedups.half_rows(matrix.view(np.uint16), 64, halves, everything),
                        dtype=np.float32)
    assert got.view(np.uint32).tolist() == (
        matrix.astype(np.float32).ravel().view(np.uint32).tolist())


def test_half_rows_refuse_what_does_not_fit(compiled: object) -> None:
    matrix = np.zeros((4, 3), dtype=np.uint16)
    halves = np.zeros(1 << 16, dtype=np.float32)
    with pytest.raises(IndexError, match="outside the matrix"):
        speedups.half_rows(matrix, 3, halves, np.array([4], dtype=np.int64))
    with pytest.raises(IndexError, match="outside the matrix"):
        speedups.half_rows(matrix, 3, halves, np.array([-1], dtype=np.int64))
    with pytest.raises(ValueError, match="65536"):
        speedups.half_rows(matrix, 3, halves[:10], np.array([0], dtype=np.int64))


def test_the_model_gathers_its_rows_in_compiled_code(
        compiled: object, identifiers: tuple[object, object]) -> None:
    assert identifiers[1]._half_rows is not None
    assert language._model()._half_rows is not None


WORD = re.compile(r"[^\W_]+")


def test_word_runs_are_the_regex_s_on_every_code_point(compiled: object) -> None:
    every = "".join(chr(code) for code in range(0x110000))  # lone surrogates too
    for start in range(0, len(every), 4096):
        chunk = every[start:start + 4096]
        assert speedups.word_runs(chunk) == tuple(WORD.findall(chunk))
    # Each character alone: a word of itself exactly when the regex says so.
    for code in range(0, 0x110000, 7):
        char = chr(code)
        assert speedups.word_runs(char) == tuple(WORD.findall(char))


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_word_runs_are_the_regex_s_on_any_text(compiled: object, text: str) -> None:
    assert speedups.word_runs(text) == tuple(WORD.findall(text))


def test_folding_finds_words_in_compiled_code(compiled: object) -> None:
    assert folding._find_words is speedups.word_runs
    for text in seed_texts():
        folded = folding.fold(text)
        assert folding.words_of(folded) == folding._python_words(folded)


def test_strip_controls_is_the_regex_s_on_every_code_point(compiled: object) -> None:
    from aggregator.sanitize import _python_strip_control_chars

    every = "".join(chr(code) for code in range(0x110000))
    for start in range(0, len(every), 4096):
        chunk = every[start:start + 4096]
        assert speedups.strip_controls(chunk) == _python_strip_control_chars(chunk)
    for code in range(0x110000):
        char = chr(code)
        assert speedups.strip_controls(char) == _python_strip_control_chars(char), hex(code)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_strip_controls_is_the_regex_s_on_any_text(compiled: object, text: str) -> None:
    from aggregator.sanitize import _python_strip_control_chars

    assert speedups.strip_controls(text) == _python_strip_control_chars(text)


def test_strip_controls_gives_canonical_strings(compiled: object) -> None:
    # What is left of a wide string may fit a narrower one; a str of the
    # wrong width would compare unequal to its twin.
    for text, left in [("abc\ud800", "abc"), ("déf\udfff", "déf"),
                       ("\x00x\U0001f600\ufffe", "x\U0001f600"), ("\u20ac\x85", "\u20ac")]:
        stripped = speedups.strip_controls(text)
        assert stripped == left
        assert sys.getsizeof(stripped) == sys.getsizeof(left)
        assert hash(stripped) == hash(left)
    unchanged = "nothing to strip here, ümlaut and €"
    assert speedups.strip_controls(unchanged) is unchanged


def sanitized_seed_posts() -> list[str]:
    from aggregator.parse import parse_feed
    from aggregator.sanitize import sanitize_html

    fixtures = Path(__file__).resolve().parent / "fixtures" / "seedblogs"
    feeds = sorted([*fixtures.rglob("*.xml"), *fixtures.rglob("*.atom")])
    posts = [sanitize_html(entry.content_html or entry.summary_html, base_url=feed.link)
             for path in feeds
             for feed in [parse_feed(path.read_bytes(), {}, "https://blog.example/feed/")]
             for entry in feed.entries]
    # and the blogs' whole pages, for markup of every kind
    posts += [sanitize_html(path.read_text("utf-8"), base_url="https://blog.example/")
              for path in sorted(fixtures.rglob("*.html"))]
    assert len(posts) > 20 and sum("<p>" in post for post in posts) > 10
    return posts


def test_sanitized_text_is_the_python_s_on_the_seed_posts(compiled: object) -> None:
    from aggregator.sanitize import _python_sanitized_html_to_text, sanitized_html_to_text

    for post in sanitized_seed_posts():
        # sanitize_html's output is always answered in C.
        assert speedups.sanitized_text(post) is not None
        assert speedups.sanitized_text(post) == _python_sanitized_html_to_text(post)
        assert sanitized_html_to_text(post) == _python_sanitized_html_to_text(post)


#: Pieces that the tag and reference rules turn on, to build markup from.
MARKUP_PIECES = ["<", ">", "/", "&", "amp;", "lt;", "gt;", "quot;", "#160;", "#39;", "nbsp;",
                 "p", "P", "br", "BR", "th", "thead", "h1", "h7", "header", "section", "a",
                 " ", "\n", "\t", "\xa0", "\u2028", "\x1c", "x", "é", "日", "\U0001f600",
                 "\u017f", "\u212a", "=", "'", '"']


@settings(max_examples=500, deadline=None)
@given(pieces=st.lists(st.sampled_from(MARKUP_PIECES), max_size=40))
def test_sanitized_text_is_the_python_s_or_none_on_any_markup(
        compiled: object, pieces: list[str]) -> None:
    from aggregator.sanitize import _python_sanitized_html_to_text, sanitized_html_to_text

    html = "".join(pieces)
    answer = speedups.sanitized_text(html)
    assert answer is None or answer == _python_sanitized_html_to_text(html)
    if html:
        assert sanitized_html_to_text(html) == _python_sanitized_html_to_text(html)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_sanitized_text_is_the_python_s_or_none_on_any_text(compiled: object, text: str) -> None:
    from aggregator.sanitize import _python_sanitized_html_to_text

    answer = speedups.sanitized_text(text)
    assert answer is None or answer == _python_sanitized_html_to_text(text)


def test_sanitized_text_decides_every_ascii_tag_and_any_delimiter(compiled: object) -> None:
    from aggregator.sanitize import _python_sanitized_html_to_text

    for code in range(0x110000):
        char = chr(code)
        for html in (f"x<p{char}y>z", f"x<br{char}", f"a{char}b<{char}>c"):
            answer = speedups.sanitized_text(html)
            python = _python_sanitized_html_to_text(html)
            if code < 128 and char != "&":
                assert answer == python, (hex(code), html)
            else:
                assert answer is None or answer == python, (hex(code), html)


def test_sanitized_text_gives_canonical_strings(compiled: object) -> None:
    for html, text in [("<p title='\U0001f600'>abc</p>", "abc"),
                       ("<p>d\u00e9f</p><b>\u20ac</b>", "d\u00e9f \u20ac"),
                       ("\u20ac&#160;x", "\u20ac x")]:
        answer = speedups.sanitized_text(html)
        assert answer == text
        assert sys.getsizeof(answer) == sys.getsizeof(text) and hash(answer) == hash(text)


def test_sanitized_text_leaves_names_with_letters_past_ascii_to_the_python(
        compiled: object) -> None:
    # re's IGNORECASE matches a few characters past ASCII to ASCII letters (the
    # long s to "s", the Kelvin sign to "k"): a block tag's name spelt with one
    # is a block tag to the Python, which only the Python can say.
    from aggregator.sanitize import _python_sanitized_html_to_text

    ascii_letter = re.compile("[a-z]", re.IGNORECASE)
    twins = [chr(code) for code in range(128, 0x110000) if ascii_letter.fullmatch(chr(code))]
    assert "\u017f" in twins and "\u212a" in twins
    tried = 0
    for name in ("section", "blockquote", "li", "figcaption", "ul"):
        for at, letter in enumerate(name):
            for twin in twins:
                if re.fullmatch(letter, twin, re.IGNORECASE):
                    html = f"x<{name[:at]}{twin}{name[at + 1:]}>y"
                    assert _python_sanitized_html_to_text(html) == "x y"
                    assert speedups.sanitized_text(html) is None, html
                    tried += 1
    assert tried >= 5


def test_bloom_never_forgets_a_key_and_rarely_claims_one(compiled: object) -> None:
    from aggregator.dedupe_index import KeyFilter

    rng = np.random.default_rng(5)
    keys = [f"b{band:02d}{value:012x}" for band, value in
            zip(rng.integers(0, 20, 300_000), rng.integers(0, 2**48, 300_000), strict=True)]
    absent = [key + "x" for key in keys[:100_000]]
    # All at once, as a filter is built from the tables: one part.
    built = KeyFilter(speedups.bloom)
    built.add(keys)
    assert len(built._parts) == 1 and built.may_hold(keys) == b"\x01" * len(keys)
    assert 0 < sum(built.may_hold(absent)) / len(absent) < 0.03
    # A document's keys at a time: parts added as it fills.
    grown = KeyFilter(speedups.bloom)
    for start in range(0, len(keys), 7_000):
        grown.add(keys[start:start + 7_000])
    assert len(grown._parts) == 3
    assert grown.may_hold(keys) == b"\x01" * len(keys)
    assert 0 < sum(grown.may_hold(absent)) / len(absent) < 0.06
    bits = bytearray(64)
    assert speedups.bloom(bits, ["a", "b"], 3, False) == b"\x00\x00"
    assert speedups.bloom(bits, ["a"], 3, True) == b"\x00" and any(bits)
    assert speedups.bloom(bits, ["a", "a"], 3, False) == b"\x01\x01"
    for bad in ((bytearray(), ["a"], 3, False), (bits, ["a"], 0, False)):
        with pytest.raises(ValueError):
            speedups.bloom(*bad)
    with pytest.raises(TypeError):
        speedups.bloom(bits, [1], 3, False)
    with pytest.raises(TypeError):
        speedups.bloom(b"read-only", ["a"], 3, False)


def test_sanitized_text_knows_the_block_tags_the_python_knows(compiled: object) -> None:
    # The C keeps its own list of block tags: every name either side could
    # know, any case, as opening, closing and empty tags, must agree.
    from aggregator.sanitize import _BLOCK_TAG, _python_sanitized_html_to_text

    names = set(re.findall(r"[a-z]+[0-9]?", _BLOCK_TAG.pattern.replace("h[1-6]", "h1|h6")))
    names |= {"a", "b", "i", "em", "strong", "span", "img", "sup", "code", "h0", "h7", "hgroup",
              "details", "summary", "dialog", "menu", "center", "picture", "source", "video",
              "q", "s", "u", "small", "abbr", "cite", "tt", "bdi", "wbr", "thx", "lis", "pp"}
    assert {"blockquote", "figcaption", "tfoot", "h1", "ul"} <= names
    for name in sorted(names):
        for spelt in (name, name.upper(), name.capitalize()):
            for html in (f"x<{spelt}>y", f"x</{spelt}>y", f"x<{spelt} class=a>y",
                         f"x<{spelt}/>y", f"x<{spelt}\ty", f"x<{spelt}y>z"):
                assert speedups.sanitized_text(html) == _python_sanitized_html_to_text(html), html


WORD_CHARS = "abeoszABßéèöüİı_0²٣"
NOT_WORD_CHARS = " -.,'\u2019\u0301\n\x00\ud800"


def candidates_both_ways(text: str, prefixes: list[str]) -> tuple[frozenset[str], frozenset[str]]:
    from aggregator import topics

    pattern = topics._candidate_pattern(prefixes)
    table = topics._prefix_table(prefixes)
    assert table is not None
    expected = frozenset(pattern.findall(text)) if pattern is not None else frozenset()
    return speedups.prefixed_words(text, table), expected


@settings(max_examples=400, deadline=None)
@given(text=st.text(alphabet=WORD_CHARS + NOT_WORD_CHARS, max_size=200),
       prefixes=st.lists(st.text(alphabet=WORD_CHARS, min_size=1, max_size=2), max_size=12))
def test_prefixed_words_are_the_candidate_pattern_s(
    compiled: object, text: str, prefixes: list[str],
) -> None:
    found, expected = candidates_both_ways(text, prefixes)
    assert found == expected
    assert type(found) is frozenset


def test_prefixed_words_tell_word_characters_as_the_pattern_does(compiled: object) -> None:
    # Each code point between two letters: one word with it, or two without.
    for start in range(0, 0x110000, 8192):
        text = " ".join(f"a{chr(code)}b" for code in range(start, min(start + 8192, 0x110000)))
        found, expected = candidates_both_ways(text, ["a", "b"])
        assert found == expected, hex(start)
        found, expected = candidates_both_ways(text, ["ab"])
        assert found == expected, hex(start)


def test_topics_find_candidates_in_compiled_code(
    compiled: object, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aggregator import topics

    prefixes = ["ma", "so", "c", "in"]
    finder = topics._Candidates(prefixes)
    assert finder._table is not None
    monkeypatch.setattr(topics, "_prefixed_words", None)
    without = topics._Candidates(prefixes)
    assert without._table is None
    for text in seed_texts():
        folded = folding.fold(text)
        assert finder(folded) == without(folded)
    monkeypatch.undo()
    # A prefix with a character that is not a word character: the pattern's
    # answer, which such a character may begin within a word.
    assert topics._Candidates(["a-"])._table is None
    assert topics._Candidates(["a-"])("a-b ba-c a") == frozenset({"a-b"})
    for text in seed_texts():
        folded = folding.fold(text)
        assert finder(folded) == frozenset(finder._pattern.findall(folded))


def test_strip_marks_is_the_regex_s_on_every_code_point(compiled: object) -> None:
    every = "".join(chr(code) for code in range(0x110000))
    for start in range(0, len(every), 4096):
        chunk = every[start:start + 4096]
        assert speedups.strip_marks(chunk) == folding._python_strip_marks(chunk), hex(start)
    for code in range(0x110000):
        char = chr(code)
        assert speedups.strip_marks(char) == folding._python_strip_marks(char), hex(code)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200) | st.text(alphabet="ae\u0301\u0308\u20ac\u036f\u0370 ",
                                            max_size=60))
def test_strip_marks_is_the_regex_s_on_any_text(compiled: object, text: str) -> None:
    assert speedups.strip_marks(text) == folding._python_strip_marks(text)


def test_strip_marks_gives_canonical_strings_and_folds_the_seeds(compiled: object) -> None:
    for text, left in [("e\u0301", "e"), ("\u20ac\u0301x", "\u20acx"),
                       ("\U0001f600\u20d0", "\U0001f600")]:
        stripped = speedups.strip_marks(text)
        assert stripped == left
        assert sys.getsizeof(stripped) == sys.getsizeof(left)
    unchanged = "nothing to strip here, ümlaut and €"
    assert speedups.strip_marks(unchanged) is unchanged
    assert folding._strip_marks is speedups.strip_marks
    import unicodedata

    for text in seed_texts():
        decomposed = unicodedata.normalize("NFKD", text.casefold())
        assert speedups.strip_marks(decomposed) == folding._python_strip_marks(decomposed)
