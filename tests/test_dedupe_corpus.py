"""The dedupe benchmark's own loop, small: generate a corpus, ingest it, score it.

bench/dedupe_corpus.py writes the labelled corpus and bench/score_dedupe.py
scores the aggregator on it. These tests check the instruments, not the
aggregator's targets: that the corpus is deterministic, well-formed and fully
labelled, that every labelled item comes back out of a real run, and that
the scorer's arithmetic gives what was worked out by hand on a tiny case.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


corpus = _load("dedupe_corpus")
scorer = _load("score_dedupe")


def _digest(directory: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            sha.update(path.relative_to(directory).as_posix().encode())
            sha.update(path.read_bytes())
    return sha.hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("corpus")
    return out, corpus.generate(out, feeds=6, seed=1)


def test_generation_is_deterministic_by_seed(tmp_path: Path,
                                             tiny: tuple[Path, dict[str, Any]]) -> None:
    corpus.generate(tmp_path / "again", feeds=6, seed=1)
    corpus.generate(tmp_path / "other", feeds=6, seed=2)
    assert _digest(tmp_path / "again") == _digest(tiny[0])
    assert _digest(tmp_path / "other") != _digest(tiny[0])


def test_every_label_is_an_item_of_a_wellformed_served_feed(
        tiny: tuple[Path, dict[str, Any]]) -> None:
    out, labels = tiny
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    documents = manifest["documents"]
    guids: dict[str, list[str]] = {}
    for path, document in documents.items():
        text = (out / document["file"]).read_text("utf-8").replace(
            "{{BASE}}", "http://127.0.0.1:1")
        parsed = feedparser.parse(text)
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        guids[path] = [entry.id for entry in parsed.entries]
    assert {f["path"] for f in labels["feeds"]} <= set(documents)
    assert {"nl", "de", "en"} <= {f["language"] for f in labels["feeds"]}
    for appearance in labels["appearances"]:
        assert appearance["guid"] in guids[appearance["feed"]]
        # A verbatim repeat is written twice, everything else once.
        assert guids[appearance["feed"]].count(appearance["guid"]) == appearance["times"]
    for comment in labels["comments"]:
        assert comment["guid"] in guids[comment["feed"]]
    kinds = {a["kind"] for a in labels["appearances"]}
    assert {"original", "crosspost", "url_variant", "repeat", "related"} <= kinds
    # Each article has exactly one original, and it is the canonical expectation.
    for article_id, article in labels["articles"].items():
        canonical = [a for a in labels["appearances"]
                     if a["article"] == article_id and a["canonical"]]
        assert [(c["feed"], c["guid"]) for c in canonical] == \
            [(article["original"]["feed"], article["original"]["guid"])]


def test_url_variants_respell_the_link() -> None:
    import random

    rng = random.Random(3)
    link = "https://www.merkpraat.nl/2013/01/help-de-consument-praat-terug/"
    for name in corpus.URL_VARIANTS:
        variant = corpus.url_variant(link, name, rng, feed_name="merkpraat")
        assert variant != link, name
        assert urlsplit(variant).scheme in ("http", "https")
    assert corpus.url_variant(link, "mobile", rng).startswith("https://m.merkpraat.nl/")
    assert "%2D" in corpus.url_variant(link, "percent", rng).upper() or \
        "%" in corpus.url_variant(link, "percent", rng)
    blogger = "https://klantzaken.blogspot.com/2012/02/post.html"
    assert "slash" not in corpus.variants_for(blogger)
    assert corpus.url_variant(blogger, "mobile", rng) == blogger + "?m=1"


def test_a_real_run_exports_every_labelled_item(tmp_path: Path,
                                                tiny: tuple[Path, dict[str, Any]]) -> None:
    out, labels = tiny
    run = scorer.run_aggregator(out, tmp_path / "work")
    result = scorer.score(labels, run.records)
    assert run.source_errors == []
    assert result.found == result.labelled == len(labels["appearances"])
    assert result.unlabelled == 0
    assert result.duplicated == 0
    assert result.comments_scored == len(labels["comments"])
    assert set(result.languages) == {"nl", "de", "en"}
    positives = result.overall.positives
    assert positives == sum(len(g) * (len(g) - 1) // 2 for g in _groups(labels).values())
    assert 0 <= result.overall.true_positives <= min(positives, result.overall.predicted)
    report = scorer.render(result)
    assert "precision" in report and "≥ 0.995" in report


def _groups(labels: dict[str, Any]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for appearance in labels["appearances"]:
        groups.setdefault(appearance["article"], []).append(appearance["guid"])
    return groups


# --------------------------------------------------------------------------- arithmetic

def _appearance(feed: str, guid: str, article: str, kind: str, *, canonical: bool = False,
                language: str = "nl", chars: int = 900) -> dict[str, Any]:
    return {"feed": feed, "guid": guid, "article": article, "kind": kind, "variant": "v",
            "language": language, "text_chars": chars, "link": f"https://x.example/{guid}",
            "canonical": canonical, "times": 1}


def _record(record_id: str, language: str, link: str, *keys: tuple[str, str],
            kind: str = "post", post: str | None = None) -> dict[str, Any]:
    return {"id": record_id, "kind": kind, "language": language, "link": link, "post": post,
            "appearances": [{"feed_url": f"http://127.0.0.1:9{feed}", "original_id": guid}
                            for feed, guid in keys]}


HAND_LABELS: dict[str, Any] = {
    "feeds": [],
    "articles": {
        "A": {"language": "nl", "related_to": None,
              "original": {"feed": "/a/", "guid": "a1", "link": "https://x.example/a1"}},
        "B": {"language": "nl", "related_to": "A",
              "original": {"feed": "/b/", "guid": "b1", "link": "https://x.example/b1"}},
        "C": {"language": "en", "related_to": None,
              "original": {"feed": "/c/", "guid": "c1", "link": "https://x.example/c1"}},
    },
    "appearances": [
        _appearance("/a/", "a1", "A", "original", canonical=True),
        _appearance("/b/", "a2", "A", "crosspost"),
        _appearance("/d/", "a3", "A", "url_variant", chars=150),
        _appearance("/b/", "b1", "B", "related", canonical=True),
        _appearance("/c/", "c1", "C", "original", canonical=True, language="en"),
        _appearance("/a/", "c2", "C", "light_edit", language="en"),
    ],
    "comments": [
        {"feed": "/a/c/", "guid": "x", "article": "A"},
        {"feed": "/c/c/", "guid": "y", "article": "C"},
    ],
}
HAND_RECORDS = [
    # The related article B wrongly merged into A, whose cross-post is shown.
    _record("R1", "nl", "https://x.example/a2", ("/a/", "a1"), ("/b/", "a2"), ("/b/", "b1")),
    # A's URL variant missed, plus an item nobody labelled.
    _record("R2", "nl", "https://x.example/a3", ("/d/", "a3"), ("/d/", "zz")),
    # C merged right, but detected as German.
    _record("R3", "de", "https://x.example/c1", ("/c/", "c1"), ("/a/", "c2")),
    _record("K1", "nl", "", ("/a/c/", "x"), kind="comment", post="R1"),
    _record("K2", "en", "", ("/c/c/", "y"), kind="comment", post="R2"),
]


def test_scorer_arithmetic_on_a_hand_checked_case() -> None:
    result = scorer.score(HAND_LABELS, HAND_RECORDS)
    # Positives: A (a1,a2) crosspost, (a1,a3) url_variant, (a2,a3) crosspost; C (c1,c2).
    # Predicted: R1 (a1,a2) true, (a1,b1) and (a2,b1) false; R3 (c1,c2) true.
    assert (result.overall.positives, result.overall.predicted,
            result.overall.true_positives) == (4, 4, 2)
    assert result.overall.precision == 0.5
    assert result.overall.recall == 0.5
    crosspost = result.by_kind["crosspost"]
    # Its true pair (a1,a2), plus the false (a2,b1) held against it.
    assert (crosspost.positives, crosspost.predicted, crosspost.true_positives) == (2, 2, 1)
    assert result.by_kind["url_variant"].recall == 0.0
    assert result.by_kind["light_edit"].recall == 1.0
    assert result.by_kind["related"].predicted == 2
    assert result.by_kind["related"].precision == 0.0
    assert (result.related_merged, result.related_pairs) == (2, 3)
    # R1 is mostly A (nl): right; R2 is too short to score; R3 is C (en) said "de".
    assert result.languages == {"nl": [1, 1], "en": [0, 1]}
    assert result.language_errors == {("en", "de"): 1}
    # A's entry shows the cross-post's link instead of the original's; C's is right.
    assert (result.canonical_right, result.canonical_scored) == (1, 2)
    assert (result.comments_right, result.comments_scored) == (1, 2)
    assert (result.found, result.labelled, result.unlabelled) == (6, 6, 1)
    missed = scorer.missed_targets(result)
    assert any(line.startswith("precision: 0.5000") for line in missed)
    assert any(line.startswith("language.en: 0.0000") for line in missed)
    assert not any(line.startswith("language.nl") for line in missed)
    # Light edits were all found: that target is met even though others are not.
    assert not any(line.startswith("recall.light_edit") for line in missed)


def test_check_flag_turns_a_missed_target_into_exit_status() -> None:
    missing = scorer.score(HAND_LABELS, HAND_RECORDS)
    assert scorer.exit_status(missing, check=False) == 0
    assert scorer.exit_status(missing, check=True) == 1
    perfect = scorer.score(HAND_LABELS, [
        _record("R1", "nl", "https://x.example/a1", ("/a/", "a1"), ("/b/", "a2"), ("/d/", "a3")),
        _record("R2", "nl", "https://x.example/b1", ("/b/", "b1")),
        _record("R3", "en", "https://x.example/c1", ("/c/", "c1"), ("/a/", "c2")),
    ])
    assert (perfect.overall.precision, perfect.overall.recall) == (1.0, 1.0)
    assert scorer.missed_targets(perfect) == []
    assert scorer.exit_status(perfect, check=True) == 0
