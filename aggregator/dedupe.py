"""Is this post the same article as that one? Pure decisions, no I/O.

Marketing blogs re-post each other constantly: guest posts ("Gastblog: …"),
syndicated copies with a footer ("Dit artikel verscheen eerder op …"),
excerpts that stop after a paragraph, copies with a sentence changed or
added. Related articles on the same subject (seeds 000 and 001: one
manifesto, two texts) must stay apart, and a wrong merge is worse than a
missed one, so every rule here leans towards "different".

How two posts are compared:

1. ``article_text``: the body words only (never the title), folded (case,
   accents) and without the boilerplate that differs between copies.
2. Word 3-shingles, each hashed to 64 bits. The exact shingle sets decide
   (Jaccard similarity, containment of the shorter in the longer); a MinHash
   ``signature`` over the same hashes feeds ``band_keys``, the
   locality-sensitive keys under which aggregator.dedupe_index finds
   candidates without scanning.
3. ``same_article`` applies the rules (see its docstring) and returns a
   ``Decision`` that says why, so a merge can be explained and audited.

``choose_canonical`` picks which copy of a merged group is published.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import numpy as np

from aggregator import speedups
from aggregator.folding import fold, fold_rest, words_of
from aggregator.urls import site_host

__all__ = [
    "BANDS",
    "EXCERPT_CONTAINMENT",
    "MIN_WORDS",
    "NEAR_DUPLICATE_JACCARD",
    "ROWS",
    "Article",
    "ArticleSource",
    "Copy",
    "Decision",
    "article_of",
    "article_text",
    "band_keys",
    "choose_canonical",
    "index_keys",
    "is_home_page",
    "lead_key",
    "same_article",
    "signature",
    "title_key",
]

# ----------------------------------------------------------------- parameters

#: Words per shingle: 3 keeps shared vocabulary ("open source marketing") of
#: related articles from counting as shared text.
SHINGLE_WORDS = 3
#: LSH bands × rows = MinHash permutations. With r=4, b=20 a pair collides in
#: at least one band with probability 1-(1-s^4)^20: 0.996 at Jaccard 0.7,
#: 0.94 at 0.6, 0.72 at 0.5, 0.15 at 0.3, 0.03 at 0.2, 0.002 at 0.1. Light
#: edits that land below 0.6 are still found through the title and lead keys.
BANDS = 20
ROWS = 4
PERMUTATIONS = BANDS * ROWS
#: Light edits (one sentence changed or added in a 150–800 word post, a
#: footer we do not know) stay above this; seeds 000/001 and other
#: different articles sit below 0.05. See tests/test_dedupe.py.
NEAR_DUPLICATE_JACCARD = 0.5
#: An excerpt is a copy when this share of its shingles is in the longer text
#: and it starts where that text starts.
EXCERPT_CONTAINMENT = 0.9
#: Texts shorter than this are too likely to be equal by chance ("Great
#: post, thanks!") for similarity alone; they need the same title as well.
MIN_WORDS = 40
#: Below this no text rule applies at all (only the canonical URL).
MIN_SHORT_WORDS = 20
#: An excerpt's first shingles must occur within this many shingles (or
#: this share) of the start of the longer text: a digest or a post that
#: quotes another in its middle is not an excerpt of it.
EXCERPT_START_SHINGLES = 60
EXCERPT_START_SHARE = 0.1
#: An excerpt may open with a line of its own (a guest-post intro) this long.
EXCERPT_INTRO_SHINGLES = 30
#: The same canonical URL does not make a link blog's commentary on an
#: article (its <link> points at that article) a copy of it: with this
#: little shared text between two substantial bodies, they differ.
SAME_URL_MIN_JACCARD = 0.2
SAME_URL_MIN_CONTAINMENT = 0.5
#: Words of the body start that make the lead key (finds excerpts whose
#: Jaccard with the full text is far too low for the bands).
LEAD_WORDS = 12
#: The store keeps this many characters of an entry's text; both sides of a
#: comparison are cut the same way so a long article equals its stored self.
TEXT_LIMIT = 20000


@lru_cache(maxsize=1)
def _constants() -> tuple[Any, tuple[Any, ...], tuple[Any, ...]]:
    """The MinHash seeds, splitmix64 shifts and multipliers, and shingle mixers.

    Made on first use: numpy is imported only by processes that hash text
    (parser workers, the store's fallback), not by every command.
    """
    import numpy as np

    # Fixed forever: the band keys in the database depend on them.
    seeds = np.random.default_rng(0x5EED_DED0).integers(
        0, 1 << 63, PERMUTATIONS, dtype=np.uint64)[:, None]
    # splitmix64's finalizer: every input bit reaches every output bit, so the
    # PERMUTATIONS hash functions are independent enough for MinHash (a linear
    # a*x+b over 32-bit inputs is not: its minimum is mostly the smallest x).
    splitmix = (np.uint64(30), np.uint64(0xBF58476D1CE4E5B9), np.uint64(27),
                np.uint64(0x94D049BB133111EB), np.uint64(31))
    # Odd multipliers mixing three word hashes into one shingle hash.
    mix = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F),
           np.uint64(0x165667B19E3779F9))
    return seeds, splitmix, mix

_WORD = re.compile(r"[^\W_]+")

# ----------------------------------------------------------------- boilerplate

_TITLE_PREFIX_WORDS = (
    r"gastblog|gastbeitrag|gastartikel|gastpost|gastbijdrage|gastcolumn|guest\s+post"
    r"|guest\s+blog|guest\s+article|guest\s+column|repost|re-post|reblog|crosspost"
    r"|cross-post|update|updated"
)
_TITLE_PREFIX = re.compile(
    rf"^\s*(?:(?:\[\s*(?:{_TITLE_PREFIX_WORDS})\s*\]|\((?:{_TITLE_PREFIX_WORDS})\)"
    rf"|(?:{_TITLE_PREFIX_WORDS})\s*[:|\-–—])\s*)+"
)
_TITLE_TAG = re.compile(rf"\s*[\[(]\s*(?:{_TITLE_PREFIX_WORDS})\s*[\])]\s*")

#: Up to a title's length of text within one sentence ("2.0" and "blog.de" may
#: hold a dot; a dot before a space ends the sentence).
_IN_SENTENCE = r"(?:[^.!?]|[.!?](?=\S)){0,300}?"
#: Sentences saying where a copy first appeared; each is removed up to the
#: end of its sentence. Matched on folded text (lower case, no accents).
_SYNDICATION = re.compile(
    r"\b(?:"
    # nl: "Dit artikel verscheen eerder op …", "Het bericht <titel> verscheen eerst op …"
    r"(?:dit|deze|het)\s+(?:artikel|blog|blogartikel|blogpost|bericht|stuk|post|column)"
    r"\s" + _IN_SENTENCE + r"\b(?:verscheen|verschenen|gepubliceerd)"
    r"(?:\s+(?:eerder|eerst|oorspronkelijk))?\s+(?:op|bij|in)"
    r"|(?:eerder|eerst|oorspronkelijk)\s+(?:verschenen|gepubliceerd)\s+(?:op|bij|in)"
    r"|overgenomen\s+met\s+(?:toestemming|dank)"
    r"|dit\s+is\s+een\s+(?:gastblog|gastbijdrage|gastartikel|gastpost)\s+(?:van|door)"
    # de: "Dieser Artikel erschien zuerst auf …", "Der Beitrag <Titel> erschien zuerst auf …"
    r"|(?:dieser|der|dies)\s+(?:artikel|beitrag|blogbeitrag|blogpost|post|text)"
    r"\s" + _IN_SENTENCE + r"\b(?:erschien|erschienen|veroffentlicht)"
    r"(?:\s+(?:zuerst|ursprunglich))?(?:\s+(?:auf|bei|in))?"
    r"|(?:zuerst|ursprunglich|erstmals)\s+(?:erschienen|veroffentlicht)\s+(?:auf|bei|in)"
    r"|ubernahme\s+mit\s+(?:freundlicher\s+)?genehmigung"
    r"|dies\s+ist\s+ein\s+gastbeitrag\s+von"
    # en: "This article originally appeared on …", "The post <title> appeared first on …"
    r"|this\s+(?:article|post|blog\s+post|piece|story|entry)"
    r"(?:\s+\S+){0,4}?\s+(?:appeared|published|posted)"
    r"|(?:originally|first)\s+(?:published|posted|appeared)\s+(?:on|at|in)"
    r"|republished\s+with\s+(?:the\s+)?(?:author'?s\s+)?permission"
    r"|this\s+is\s+a\s+guest\s+(?:post|article|blog)\s+by"
    r"|the\s+post\s" + _IN_SENTENCE + r"\sappeared\s+first\s+on"
    r")\b"
)
#: Every _SYNDICATION match holds one of these: text with none of them has no
#: such sentence, and is not searched (a scan for each is cheaper than the regex).
_SYNDICATION_WORDS = ("verscheen", "verschenen", "gepubliceerd", "overgenomen", "gast",
                      "erschien", "veroffentlicht", "ubernahme", "appeared", "published",
                      "posted", "guest")
#: "Read more" links of excerpts: removed with what follows when near the end.
_READ_MORE = re.compile(
    r"\b(?:lees\s+verder|lees\s+meer|verder\s+lezen|read\s+more|continue\s+reading"
    r"|read\s+the\s+full\s+(?:article|post|story)|weiterlesen|weiter\s+lesen|mehr\s+lesen)\b"
)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
#: How far a boilerplate sentence may run before we stop cutting.
_BOILERPLATE_SPAN = 300


def _cut_sentences(text: str) -> str:
    pieces: list[str] = []
    position = 0
    may_hold = any(word in text for word in _SYNDICATION_WORDS)
    for match in _SYNDICATION.finditer(text) if may_hold else ():
        if match.start() < position:
            continue
        end = _SENTENCE_END.search(text, match.end(), match.end() + _BOILERPLATE_SPAN)
        stop = end.end() if end else min(len(text), match.end() + _BOILERPLATE_SPAN)
        pieces.append(text[position:match.start()])
        position = stop
    pieces.append(text[position:])
    text = " ".join(pieces)
    # A "read more" in the last lines is the excerpt's link; elsewhere it is
    # prose both copies share, and stays.
    for match in _READ_MORE.finditer(text, max(0, len(text) - _BOILERPLATE_SPAN)):
        return text[:match.start()]
    return text


# ----------------------------------------------------------------- text


class ArticleSource(Protocol):
    """What a comparison needs; NormalizedEntry and the store's EntryRow both have it."""

    @property
    def title(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def canonical_url(self) -> str | None: ...
    @property
    def fingerprint(self) -> str | None: ...


def _words(entry: ArticleSource) -> tuple[str, ...]:
    """The words of *entry*'s body, folded, boilerplate removed."""
    # normalize builds text as f"{title} {body}"; the store keeps it cut.
    text = entry.text[:TEXT_LIMIT]
    title = entry.title
    folded = fold_rest(text, title) if title and text.startswith(title) else fold(text)
    # Usually nothing is cut, and these are the words of the fingerprint
    # (normalize._fingerprint), found again in words_of's memory.
    return words_of(_cut_sentences(folded))


def article_text(entry: ArticleSource) -> str:
    """The body words of *entry* for comparison: folded, boilerplate removed, space-joined."""
    return " ".join(_words(entry))


def title_key(title: str) -> str:
    """*title* folded, its words space-joined, without "Gastblog:"-style prefixes and tags."""
    folded = fold(title)
    folded = _TITLE_PREFIX.sub("", folded)
    folded = _TITLE_TAG.sub(" ", folded)
    return " ".join(_WORD.findall(folded))


def _short_hash(*parts: str | bytes, size: int = 6) -> str:
    digest = hashlib.blake2b(digest_size=size)
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()


#: Word hashes remembered: the common words of a language recur; 16,384 of
#: them are about 3 MB.
_WORD_HASHES_KEPT = 1 << 14


@lru_cache(maxsize=_WORD_HASHES_KEPT)
def _word_hash(word: str) -> int:
    # Stable across processes (unlike hash()): signatures live in the database.
    return int.from_bytes(
        hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little"
    )


#: _word_hash's values for the compiled word_shingles, which empties it at
#: _WORD_HASHES_KEPT.
_word_hashes: dict[str, int] = {}


@lru_cache(maxsize=1)
def _mixers() -> tuple[int, ...]:
    """The shingle mixers as Python ints, for the compiled word_shingles."""
    return tuple(int(value) for value in _constants()[2])


def _shingle_hashes(words: Sequence[str]) -> np.ndarray:
    """64-bit hashes of the word 3-shingles, in text order."""
    import numpy as np

    if speedups.word_shingles is not None:
        # The same hashes and sums, without a Python call per word.
        return np.frombuffer(speedups.word_shingles(
            words if isinstance(words, tuple) else tuple(words), _word_hashes,
            _WORD_HASHES_KEPT, *_mixers()), dtype=np.uint64)
    mix = _constants()[2]
    if not words:
        return np.zeros(0, dtype=np.uint64)
    hashes = np.fromiter(map(_word_hash, words), dtype=np.uint64, count=len(words))
    if len(hashes) < SHINGLE_WORDS:
        # A text shorter than a shingle is one shingle of its own.
        combined = 0
        for value in hashes.tolist():
            combined = (combined * int(mix[0]) + value) & 0xFFFFFFFFFFFFFFFF
        return np.array([combined], dtype=np.uint64)
    count = len(hashes) - SHINGLE_WORDS + 1
    shingles = hashes[:count] * mix[0] + hashes[1:count + 1] * mix[1] + hashes[2:] * mix[2]
    return shingles ^ (shingles >> np.uint64(29))


def _minhash(shingles: np.ndarray) -> tuple[int, ...]:
    if len(shingles) == 0:
        return ()
    seeds, (shift1, mul1, shift2, mul2, shift3), _ = _constants()
    if speedups.minhash is not None:
        # The same splitmix64 over the same values, without the 80 × n
        # temporary array NumPy fills six times over.
        return speedups.minhash(shingles, seeds)
    # uint64 arithmetic wraps modulo 2^64, which is what the mixer wants.
    mixed = shingles[None, :] ^ seeds
    mixed ^= mixed >> shift1
    mixed *= mul1
    mixed ^= mixed >> shift2
    mixed *= mul2
    mixed ^= mixed >> shift3
    return tuple(mixed.min(axis=1).tolist())


def signature(text: str) -> tuple[int, ...]:
    """MinHash signature (BANDS×ROWS values) of an ``article_text``; () for no words."""
    return _minhash(_shingle_hashes(text.split()))


def band_keys(sig: Sequence[int]) -> list[str]:
    """One key per LSH band of *sig*: equal keys mean equal rows in that band."""
    if len(sig) != PERMUTATIONS:
        return []
    if speedups.band_keys is not None:
        return speedups.band_keys(tuple(sig), BANDS, ROWS)
    # Each band's values as 64-bit little-endian words, then _short_hash of
    # them (the bytes and a NUL): packed once, it is a third of the cost.
    packed = struct.pack(f"<{PERMUTATIONS}Q", *sig)
    width = 8 * ROWS
    return [f"b{band:02d}" + hashlib.blake2b(
        packed[band * width:(band + 1) * width] + b"\x00", digest_size=6).hexdigest()
            for band in range(BANDS)]


def lead_key(text: str) -> str | None:
    """A key of the first LEAD_WORDS words of an ``article_text``, or None when too short."""
    words = text.split()
    if len(words) < MIN_SHORT_WORDS:
        return None
    return "l" + _short_hash(" ".join(words[:LEAD_WORDS]))


# ----------------------------------------------------------------- articles


@dataclass(frozen=True, eq=False)
class Article:
    """One post reduced to what the rules compare. Build it with ``article_of``."""

    canonical_url: str | None
    fingerprint: str | None
    #: ``title_key`` of the title.
    title: str
    #: The ``article_text`` as a list of words.
    words: tuple[str, ...]
    #: Shingle hashes in text order (for where an excerpt starts).
    shingle_order: tuple[int, ...]
    shingles: frozenset[int]

    @cached_property
    def signature(self) -> tuple[int, ...]:
        if len(self.words) < MIN_SHORT_WORDS:
            return ()
        import numpy as np

        return _minhash(np.fromiter(self.shingle_order, dtype=np.uint64,
                                    count=len(self.shingle_order)))

    def index_keys(self) -> list[tuple[str, str]]:
        """(key, kind) pairs under which this article is found; see dedupe_index."""
        return list(self._index_keys)

    @cached_property
    def _index_keys(self) -> tuple[tuple[str, str], ...]:
        # Asked for twice per new post (candidate lookup, then filing it).
        return _keys(self.signature, self.words, self.title)


def _keys(sig: Sequence[int], words: Sequence[str], title: str) -> tuple[tuple[str, str], ...]:
    keys = [(key, "band") for key in band_keys(sig)]
    # Words are runs of letters and digits, so joined with spaces and split
    # again they are the same words: lead_key's text is their join.
    if len(words) >= MIN_SHORT_WORDS:
        keys.append(("l" + _short_hash(" ".join(words[:LEAD_WORDS])), "lead"))
    # A title of one or two words ("Update", "Links") names a series, not an article.
    if len(title.split()) >= 3:
        keys.append(("t" + _short_hash(title), "title"))
    return tuple(keys)


def index_keys(entry: ArticleSource) -> list[tuple[str, str]]:
    """``article_of(entry).index_keys()``, without the rest of the Article.

    For a parser worker, which files a post and never compares it: the
    shingles go from the hashing to the MinHash as one array, not by way of
    the tuple and set of Python ints a comparison needs.
    """
    words = _words(entry)
    sig = _minhash(_shingle_hashes(words)) if len(words) >= MIN_SHORT_WORDS else ()
    return list(_keys(sig, words, title_key(entry.title)))


def article_of(entry: ArticleSource | Article) -> Article:
    """*entry* (a NormalizedEntry, an EntryRow …) reduced for comparison."""
    if isinstance(entry, Article):
        return entry
    words = _words(entry)
    order = _shingle_hashes(words).tolist()
    return Article(
        canonical_url=entry.canonical_url, fingerprint=entry.fingerprint,
        title=title_key(entry.title), words=tuple(words), shingle_order=tuple(order),
        shingles=frozenset(order),
    )


# ----------------------------------------------------------------- decisions


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether two posts are one article, and the evidence."""

    same: bool
    #: "canonical_url", "fingerprint", "near_duplicate", "excerpt", "title",
    #: "same_url_different_text", "too_short" or "different".
    reason: str
    jaccard: float = 0.0
    #: Share of the shorter text's shingles found in the longer one.
    containment: float = 0.0

    def __bool__(self) -> bool:
        return self.same


def is_home_page(url: str) -> bool:
    """Is *url* a site's home page (no path)?"""
    # Feeds that give every item the blog's home page as link exist; such a
    # "same URL" says nothing.
    try:
        path = urlsplit(url).path
    except ValueError:
        return True
    return path in ("", "/")


def _excerpt_containment(short: Article, long: Article) -> float:
    """Share of *short*'s shingles in *long*, counted from where both start together.

    An excerpt starts where the article starts: the shorter text, after an
    intro line of its own at most ("Dit is een gastblog van …"), must meet
    the longer one near its beginning. A digest or a post quoting another
    in its middle does not, and gets 0.
    """
    window = max(EXCERPT_START_SHINGLES, int(len(long.shingle_order) * EXCERPT_START_SHARE))
    opening = set(long.shingle_order[:window])
    for offset, value in enumerate(short.shingle_order[:EXCERPT_INTRO_SHINGLES]):
        if value in opening:
            rest = set(short.shingle_order[offset:])
            if len(rest) + SHINGLE_WORDS - 1 < MIN_SHORT_WORDS:
                return 0.0
            return len(rest & long.shingles) / len(rest)
    return 0.0


def same_article(a: ArticleSource | Article, b: ArticleSource | Article) -> Decision:
    """Are *a* and *b* the same article? Symmetric; precision before recall.

    Yes when, in this order:

    1. the canonical URLs are equal (not a site's home page), unless both
       bodies are substantial and share almost nothing (a link blog's
       commentary whose link is the article it comments on);
    2. the body fingerprints are equal (the same text exactly);
    3. both bodies have MIN_WORDS words and their shingle Jaccard is at
       least NEAR_DUPLICATE_JACCARD (light edits, footers, guest-post intros);
    4. the shorter has MIN_WORDS words and, from where it meets the start
       of the longer (after an intro line of its own at most), at least
       EXCERPT_CONTAINMENT of its shingles are in the longer (an excerpt);
    5. a body under MIN_WORDS (but MIN_SHORT_WORDS at least) needs the same
       title (prefixes removed) and the same text or a clean excerpt of it.

    Equal titles with middling shared text are not enough for substantial
    bodies: on the labelled corpus (bench/dedupe_corpus.py) different
    articles with one title template reach a Jaccard of 0.36.
    """
    a, b = article_of(a), article_of(b)
    # Which is "shorter" must not depend on the argument order (symmetry).
    short, long = sorted((a, b), key=lambda article: (len(article.words), article.shingle_order))
    common = len(a.shingles & b.shingles)
    union = len(a.shingles) + len(b.shingles) - common
    jaccard = common / union if union else 0.0
    containment = common / len(short.shingles) if short.shingles else 0.0
    substantial = len(short.words) >= MIN_WORDS

    def decide(same: bool, reason: str) -> Decision:
        return Decision(same, reason, round(jaccard, 4), round(containment, 4))

    if a.canonical_url and a.canonical_url == b.canonical_url and not is_home_page(
            a.canonical_url):
        if (substantial and jaccard < SAME_URL_MIN_JACCARD
                and containment < SAME_URL_MIN_CONTAINMENT):
            return decide(False, "same_url_different_text")
        return decide(True, "canonical_url")
    if a.fingerprint and a.fingerprint == b.fingerprint:
        return decide(True, "fingerprint")
    same_title = bool(a.title) and a.title == b.title
    if len(short.words) < MIN_SHORT_WORDS:
        return decide(False, "too_short")
    if not substantial:
        # A short text says little by itself: only the same title with the
        # same text, or with a clean excerpt of it, makes a copy.
        excerpt = _excerpt_containment(short, long) >= EXCERPT_CONTAINMENT
        return decide(same_title and (a.words == b.words or excerpt),
                      "title" if same_title else "too_short")
    if jaccard >= NEAR_DUPLICATE_JACCARD:
        return decide(True, "near_duplicate")
    if _excerpt_containment(short, long) >= EXCERPT_CONTAINMENT:
        return decide(True, "excerpt")
    # No rule joins substantial bodies on an equal title and middling shared
    # text: different articles from one template ("Wat ik op <event> leerde
    # over <topic>") share a title and a third of their shingles.
    return decide(False, "different")


# ----------------------------------------------------------------- canonical copy

#: Feed-proxy hosts: a link there stands for the blog itself.
_PROXY_HOSTS = frozenset({
    "feedproxy.google.com", "feeds.feedburner.com", "feedproxy.feedburner.com",
    "feeds.feedblitz.com",
})


@dataclass(frozen=True, slots=True)
class Copy:
    """One appearance of an article, as choose_canonical weighs it."""

    published: datetime
    link: str | None
    #: The source's own addresses: its site (feed <link>) and its feed URL.
    site_urls: tuple[str | None, ...] = ()
    #: When we first saw it; orders copies with the same date.
    first_seen: datetime | None = None


def on_own_site(copy: Copy) -> bool:
    """Does the copy's link point at its own blog (or a proxy of its feed)?"""
    host = site_host(copy.link)
    if host is None:
        return False
    if host in _PROXY_HOSTS:
        return True
    return any(host == site_host(site) for site in copy.site_urls)


def choose_canonical(copies: Sequence[Copy]) -> int:
    """Index of the copy to publish: the earliest original.

    A copy whose link is on its own blog is an original; a copy elsewhere
    (a planet, a mirror linking back) only counts when there is no original.
    Among those, the earliest published wins, then a real link over a
    feed-proxy link, then the first seen, then the first given.
    """
    if not copies:
        raise ValueError("choose_canonical needs at least one copy")

    def rank(index: int) -> tuple[bool, float, bool, float, int]:
        copy = copies[index]
        seen = _timestamp(copy.first_seen) if copy.first_seen else float("inf")
        # A feed-proxy link stands for the blog but is not the article's own
        # address: of two copies published together, the real link wins.
        proxied = site_host(copy.link) in _PROXY_HOSTS
        return (not on_own_site(copy), _timestamp(copy.published), proxied, seen, index)

    return min(range(len(copies)), key=rank)


def _timestamp(moment: datetime) -> float:
    # Aware and naive datetimes do not compare; naive ones are UTC here.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
