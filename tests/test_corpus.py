"""feedparser's whole test corpus through the whole pipeline (issue 3, "A hostile world").

Every file of the corpus in feedparser's sdist (fetched from the package
index by the set-up, see corpus_support.py) is parsed and normalized on its
own in a worker process, with a time bound; the results of each directory are
then stored in one SQLite store, published, and the published feeds read
back with lxml and feedparser. Nothing may crash, every file must finish
quickly, the well-formed feeds must yield their entries, and what we publish
must stay well-formed with plain-text titles.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections import Counter, defaultdict
from concurrent.futures import Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path

import feedparser
import pytest
from corpus_support import (
    WELLFORMED,
    CorpusUnavailableError,
    FileResult,
    corpus_files,
    extract_tests,
    group_of,
    holds_an_entry,
    parse_corpus_file,
    warm_up,
)
from lxml import etree

from aggregator import __version__
from aggregator.config import SourceConfig
from aggregator.publish import publish_all
from aggregator.store import Store
from aggregator.types import FetchResult, PublishedEntry, SiteInfo, Validators

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
#: Per file, parse + normalize. The slowest file takes ~0.5 s on 2 cores.
FILE_SECONDS = 5.0
#: The whole corpus: parse, store, publish, read back.
TOTAL_SECONDS = 120.0
#: The corpus has ~2,250 files; far fewer means the download or unpacking lost some.
MIN_FILES = 2000
WORKERS = 2

#: Well-formed feeds with entries that we refuse on purpose, and why.
REFUSED_WELLFORMED = {
    "wellformed/rss/entity_in_doctype.xml":
        "declares an internal entity in its DOCTYPE; parse.py refuses every entity "
        "declaration, the cheap sure defence against entity bombs",
}

#: Titles whose angle brackets are characters, not markup: the feed states the
#: text as plain (Atom type="text", an xhtml div holding "&lt;", base64 of
#: text/plain, an escaped "&lt;br />" in RSS), so keeping them is faithful.
LITERAL_BRACKET_TITLES = {
    "History of the <blink> tag": (
        "wellformed/atom/entry_summary_inline_markup_2.xml",
        "wellformed/atom/entry_title_base64_2.xml",
        "wellformed/atom/entry_title_inline_markup_2.xml",
        "wellformed/atom10/entry_content_inline_markup_2.xml",
        "wellformed/atom10/entry_content_text_plain_brackets.xml",
        "wellformed/atom10/entry_summary_inline_markup_2.xml",
        "wellformed/atom10/entry_title_base64_2.xml",
        "wellformed/atom10/entry_title_inline_markup_2.xml",
    ),
    "Example <b>Atom</b>": (
        "wellformed/atom/entry_content_mode_base64.xml",
        "wellformed/atom/entry_summary_base64.xml",
        "wellformed/atom/entry_summary_content_mode_base64.xml",
    ),
    "<p>History of the &lt;blink&gt; tag</p>": ("wellformed/atom/entry_summary_base64_2.xml",),
    "<br />": ("wellformed/rss/item_description_code_br.xml",),
}

# What a plain-text title must not hold: a tag, or a character XML 1.0 forbids
# (with C1 controls, tabs and line breaks: a title is one line).
TAG = re.compile(r"</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>")
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
ATOM = "http://www.w3.org/2005/Atom"
XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass
class PublishedGroup:
    """One directory of the corpus after store and publish."""

    name: str
    posts: list[PublishedEntry]
    feeds_dir: Path
    #: Problems found reading the published files back, as "file: problem".
    problems: list[str] = field(default_factory=list)


@dataclass
class CorpusRun:
    results: dict[str, FileResult]
    groups: list[PublishedGroup]
    total_seconds: float


@pytest.fixture(scope="module")
def corpus_run(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    started = time.perf_counter()
    results = _parse_all(corpus_dir, corpus_files(corpus_dir), deadline=TOTAL_SECONDS)
    by_group: dict[str, list[FileResult]] = defaultdict(list)
    for result in results.values():
        by_group[group_of(result.name)].append(result)
    root = tmp_path_factory.mktemp("corpus-run")
    groups = [_store_and_publish(name, members, root / name.replace("/", "-"))
              for name, members in sorted(by_group.items())]
    return CorpusRun(results, groups, time.perf_counter() - started)


def _parse_all(tests_dir: Path, names: list[str], deadline: float) -> dict[str, FileResult]:
    # As make_parse_executor builds it (spawn), plus a warm-up so the first file
    # a worker parses is not charged with loading the language model.
    executor = ProcessPoolExecutor(WORKERS, mp_context=get_context("spawn"), initializer=warm_up)
    processes = []
    try:
        futures: dict[Future[FileResult], str] = {
            executor.submit(parse_corpus_file, str(tests_dir), name, NOW): name for name in names
        }
        processes = list(getattr(executor, "_processes", {}).values())
        done, pending = wait(futures, timeout=deadline)
        if pending:
            stuck = sorted(futures[f] for f in pending if f.running())
            pytest.fail(f"{len(pending)} corpus files unfinished after {deadline:.0f} s; "
                        f"running: {stuck[:5]}", pytrace=False)
        # parse_corpus_file never raises: an exception here is a dead worker.
        died = sorted(futures[f] for f in done if f.exception() is not None)
        if died:
            pytest.fail(f"the parser process died on {died[:5]}: {next(iter(done)).exception()}",
                        pytrace=False)
        return {result.name: result for result in (future.result() for future in done)}
    finally:
        # A worker stuck in a runaway parse must not keep the test run alive.
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()


def _store_and_publish(group: str, members: list[FileResult], feeds_dir: Path) -> PublishedGroup:
    """Store every file of one directory as its own source, then publish them together."""
    feeds_dir.mkdir(parents=True)
    store = Store(f"sqlite:///{feeds_dir.parent / (feeds_dir.name + '.db')}")
    try:
        store.sync_sources([SourceConfig(name=m.name, url=_url(m.name)) for m in members], NOW)
        states = store.claim_due(now=NOW, owner="corpus", lease=timedelta(minutes=5),
                                 names=[m.name for m in members], force=True)
        assert len(states) == len(members)
        by_name = {m.name: m for m in members}
        for state in states:
            result = by_name[state.name]
            if result.feed is None:
                store.record_source_error(
                    state.id, now=NOW, message=result.parse_error or "crash",
                    status=None, next_check_at=NOW + timedelta(hours=1), gone=False,
                )
                continue
            fetched = FetchResult(url=state.fetch_url, final_url=state.fetch_url, status=200,
                                  body=b"", headers={}, validators=Validators())
            store.ingest_source_feed(
                state, now=NOW, fetch=fetched, feed=result.feed,
                entries=list(result.entries), topics_for=lambda entry: (),
                follow_comments=True, site_comments_url=result.feed.comments_feed_url,
                next_check_at=NOW + timedelta(hours=1), body_hash=result.name,
            )
        everything = sum(len(m.entries) for m in members) + 1
        posts, comments, languages = store.published_entries(topics=[], max_entries=everything)
        site = SiteInfo(
            title=f"Corpus {group}", base_url="https://hub.example/",
            generator_version=__version__, updated=NOW, sources=tuple(store.sources_info()),
            languages=tuple(languages),
        )
        publish_all(feeds_dir, site, posts, comments, max_entries=everything)
    finally:
        store.close()
    published = PublishedGroup(group, posts, feeds_dir)
    _read_back(published)
    return published


def _read_back(group: PublishedGroup) -> None:
    for path in sorted(group.feeds_dir.rglob("*")):
        relative = path.relative_to(group.feeds_dir).as_posix()
        if path.suffix in (".atom", ".rss", ".opml"):
            data = path.read_bytes()
            try:
                etree.fromstring(data, XML_PARSER)
            except etree.XMLSyntaxError as error:
                group.problems.append(f"{relative}: lxml: {error}")
                continue
            if path.suffix != ".opml":
                parsed = feedparser.parse(io.BytesIO(data))
                if parsed.bozo:
                    group.problems.append(f"{relative}: feedparser: {parsed.bozo_exception}")
                if relative in ("all.atom", "all.rss") and len(parsed.entries) != len(group.posts):
                    group.problems.append(f"{relative}: {len(parsed.entries)} entries read back, "
                                          f"{len(group.posts)} published")
            if relative == "all.atom":
                group.problems.extend(_title_problems(data, group.posts))
        elif path.suffix == ".json":
            try:
                json.loads(path.read_bytes())
            except ValueError as error:
                group.problems.append(f"{relative}: json: {error}")


def _title_problems(atom: bytes, posts: list[PublishedEntry]) -> list[str]:
    """Each published title is the stored plain text, escaped: no element inside it."""
    stored = {post.id: " ".join(post.title.split()) for post in posts}
    problems = []
    for entry in etree.fromstring(atom, XML_PARSER).iterfind(f"{{{ATOM}}}entry"):
        entry_id = entry.findtext(f"{{{ATOM}}}id")
        title = entry.find(f"{{{ATOM}}}title")
        if title is None or len(title) or title.get("type", "text") != "text":
            problems.append(f"all.atom: entry {entry_id}: title is not plain text")
        elif " ".join((title.text or "").split()) != stored.get(entry_id or ""):
            problems.append(f"all.atom: entry {entry_id}: title {title.text!r} is not the "
                            f"stored {stored.get(entry_id or '')!r}")
    return problems


def _url(name: str) -> str:
    return f"https://corpus.example/tests/{name}"


# --------------------------------------------------------------------------- the checks


@pytest.fixture(scope="module")
def results(corpus_run: CorpusRun) -> dict[str, FileResult]:
    return corpus_run.results


def test_the_corpus_is_all_there(corpus_dir: Path, results: dict[str, FileResult]) -> None:
    names = corpus_files(corpus_dir)
    assert len(names) >= MIN_FILES
    assert set(results) == set(names)
    top = Counter(name.split("/")[0] for name in names)
    assert {"wellformed", "illformed", "encoding", "entities"} <= set(top)
    assert top["wellformed"] >= 1000


def test_nothing_but_parse_error_escapes(results: dict[str, FileResult]) -> None:
    crashes = {name: r.crash for name, r in results.items() if r.crash}
    assert crashes == {}


def test_every_file_parses_within_the_time_bound(results: dict[str, FileResult]) -> None:
    slow = {name: round(r.seconds, 2) for name, r in results.items() if r.seconds >= FILE_SECONDS}
    assert slow == {}


def test_wellformed_files_yield_their_entries(
    corpus_dir: Path, results: dict[str, FileResult],
) -> None:
    missing: dict[str, str] = {}
    for name, result in results.items():
        if not name.startswith(WELLFORMED) or name in REFUSED_WELLFORMED:
            continue
        if result.entries or not holds_an_entry((corpus_dir / name).read_bytes()):
            continue
        missing[name] = result.parse_error or result.crash or "parsed, but no entries"
    assert missing == {}
    # Enough files hold entries that an empty-handed parser could not pass.
    assert sum(1 for r in results.values() if r.entries) >= 1000


def test_refused_wellformed_files_are_still_refused(results: dict[str, FileResult]) -> None:
    # An entry here that now parses is stale: take it off the list.
    stale = [name for name in REFUSED_WELLFORMED if results[name].parse_error is None]
    assert stale == []


def test_published_outputs_stay_well_formed(corpus_run: CorpusRun) -> None:
    problems = [f"{group.name}/{problem}" for group in corpus_run.groups
                for problem in group.problems]
    assert problems == []
    assert sum(len(group.posts) for group in corpus_run.groups) >= 1000


def test_stored_titles_are_plain_text(corpus_run: CorpusRun) -> None:
    literal = {(name, title) for title, names in LITERAL_BRACKET_TITLES.items() for name in names}
    bad = {
        post.source.name: post.title
        for group in corpus_run.groups for post in group.posts
        if CONTROL.search(post.title) or not post.title.strip()
        or (TAG.search(post.title) and (post.source.name, post.title) not in literal)
    }
    assert bad == {}


def _tarball(path: Path, *members: tuple[str, bytes | str]) -> Path:
    """A .tar.gz with regular files (bytes) and symlinks (str target)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


def test_unpacking_keeps_only_the_tests_tree(tmp_path: Path) -> None:
    archive = _tarball(tmp_path / "ok.tar.gz", ("fp-1/setup.py", b"x"),
                       ("fp-1/tests/wellformed/a.xml", b"<rss/>"), ("fp-1/tests/runtests.py", b""))
    assert extract_tests(archive, tmp_path / "out") == 2
    assert corpus_files(tmp_path / "out") == ["wellformed/a.xml"]


@pytest.mark.parametrize("member", [
    ("fp-1/tests/../../evil.xml", b"x"),
    ("/etc/evil.xml", b"x"),
    ("fp-1/tests/link.xml", "/etc/passwd"),
])
def test_unpacking_refuses_a_hostile_archive(
    tmp_path: Path, member: tuple[str, bytes | str],
) -> None:
    archive = _tarball(tmp_path / "bad.tar.gz", ("fp-1/tests/a.xml", b"<rss/>"), member)
    with pytest.raises(CorpusUnavailableError):
        extract_tests(archive, tmp_path / "out")
    assert not (tmp_path / "evil.xml").exists()


def test_the_whole_corpus_runs_within_the_time_budget(corpus_run: CorpusRun) -> None:
    assert corpus_run.total_seconds < TOTAL_SECONDS
