"""feedparser's own test corpus, fetched and run through our pipeline (for test_corpus.py).

The corpus is the ``tests/`` tree of the feedparser sdist of the installed
version: ~2,250 small documents that exercise every corner feedparser knows
(encodings, entities, sanitizing, ill-formed XML, HTTP headers). It is
downloaded from the package index once, unpacked defensively (a tarball is
input from strangers too) and reused from a cache directory; it is never
committed.

Each file is parsed in a worker process, as the pipeline does in production,
so the results also prove that what crosses the process boundary pickles.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from aggregator.errors import ParseError
from aggregator.reading import parse_and_normalize
from aggregator.types import NormalizedEntry, ParsedFeed

#: Where every corpus file claims to come from; relative links resolve against it.
CORPUS_URL = "https://corpus.example/tests/"
#: feedparser's test server sends this for *.xml unless the file names another type.
DEFAULT_CONTENT_TYPE = "application/xml"
#: A corpus file that parses to no entries although it holds an item: counted
#: as such only in this tree, whose files are valid feeds by construction.
WELLFORMED = "wellformed/"

# feedparser's test server reads headers to send from lines such as
# "Header: Content-type: text/xml; charset=utf-8" in the file's leading
# comment, on the raw bytes (so a UTF-16 file carries none).
_HEADER_LINE = re.compile(rb"^Header:\s+([^:\r\n]+):([^\r\n]*)$", re.MULTILINE)
# Headers that describe the HTTP exchange, not the body: the fetcher has
# already acted on them before a body reaches the parser.
_EXCHANGE_HEADERS = frozenset({"status", "location", "content-length", "content-encoding"})
# An RSS item or Atom entry start tag, with or without a namespace prefix.
_ENTRY_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s/>]")
_MARKER = ".complete"


class CorpusUnavailableError(RuntimeError):
    """The sdist could not be fetched or unpacked; the message says why."""


@dataclass(frozen=True, slots=True)
class FileResult:
    """What parse_and_normalize made of one corpus file."""

    #: Path inside the corpus, e.g. "wellformed/rss/item_title.xml".
    name: str
    seconds: float
    #: The parsed feed and its entries, or None when parsing raised.
    feed: ParsedFeed | None
    entries: tuple[NormalizedEntry, ...]
    #: The ParseError message, when the file was refused as a feed.
    parse_error: str | None = None
    #: Anything else that escaped: a crash, with its traceback.
    crash: str | None = None


def feedparser_version() -> str:
    return importlib.metadata.version("feedparser")


def corpus_tests_dir(cache_dir: Path, version: str | None = None) -> Path:
    """The unpacked ``tests/`` tree of feedparser's sdist, fetched into ``cache_dir`` once."""
    version = version or feedparser_version()
    target = cache_dir / f"feedparser-{version}-tests"
    if (target / _MARKER).is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".fetch-") as scratch:
        work = Path(scratch)
        archive = _download_sdist(version, work / "download")
        unpacked = work / "tests"
        extract_tests(archive, unpacked)
        (unpacked / _MARKER).write_text(f"{archive.name}\n")
        if target.exists():  # a run interrupted before the marker was written
            shutil.rmtree(target)
        try:
            # One rename: a parallel or interrupted run never sees half a corpus.
            unpacked.rename(target)
        except OSError:
            if not (target / _MARKER).is_file():
                raise
    return target


def _download_sdist(version: str, dest: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        "--disable-pip-version-check", "--dest", str(dest), f"feedparser=={version}",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired as error:
        raise CorpusUnavailableError(
            f"`{' '.join(command)}` did not finish in {error.timeout:.0f} s"
        ) from error
    archives = sorted(dest.glob(f"feedparser-{version}.tar.gz")) if dest.is_dir() else []
    if done.returncode != 0 or not archives:
        output = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise CorpusUnavailableError(
            f"could not download the feedparser {version} sdist, which holds the test "
            f"corpus (the package index must be reachable; PIP_INDEX_URL may point at a "
            f"mirror).\n$ {' '.join(command)}\n{output}"
        )
    return archives[0]


def extract_tests(archive: Path, dest: Path) -> int:
    """Unpack the regular files under ``<top>/tests/`` of ``archive`` into ``dest``.

    Refuses the whole archive on an absolute path, a ".." component, a link or
    a device, rather than skipping it: a corpus with holes would pass quietly.
    Returns the number of files written.
    """
    dest.mkdir(parents=True, exist_ok=True)
    written = 0
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            path = PurePosixPath(member.name)
            if path.is_absolute() or ".." in path.parts or "\\" in member.name:
                raise CorpusUnavailableError(f"{archive.name}: unsafe member path {member.name!r}")
            if not (member.isfile() or member.isdir()):
                raise CorpusUnavailableError(
                    f"{archive.name}: member {member.name!r} is a link or device, refused")
            if len(path.parts) < 3 or path.parts[1] != "tests" or not member.isfile():
                continue
            relative = PurePosixPath(*path.parts[2:])
            member.name = str(relative)
            if hasattr(tarfile, "data_filter"):  # 3.11.4+: the stdlib's own checks on top
                tar.extract(member, dest, filter="data")
            else:  # pragma: no cover - older 3.11
                tar.extract(member, dest)
            written += 1
    return written


def corpus_files(tests_dir: Path) -> list[str]:
    """Every file of the corpus (documents and compressed bodies), as sorted relative paths."""
    return sorted(
        path.relative_to(tests_dir).as_posix()
        for path in tests_dir.rglob("*")
        if path.is_file() and path.suffix != ".py" and path.name != _MARKER
    )


def headers_for(body: bytes) -> dict[str, str]:
    """The response headers feedparser's test server would send with this file."""
    headers: dict[str, str] = {}
    for name, value in _HEADER_LINE.findall(body):
        key = name.decode("latin-1").strip().lower()
        if key not in _EXCHANGE_HEADERS:
            headers[key] = value.decode("latin-1").strip()
    headers.setdefault("content-type", DEFAULT_CONTENT_TYPE)
    return headers


def holds_an_entry(body: bytes) -> bool:
    """Cheap check: does the raw document contain an <item> or <entry> start tag?"""
    return _ENTRY_TAG.search(body) is not None


def group_of(name: str) -> str:
    """The batch a file is stored and published with: its directory, two levels deep."""
    parts = name.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def warm_up() -> None:
    """Pay a worker's one-time costs (imports, the language model) before timing files."""
    body = (b'<rss version="2.0"><channel><title>t</title><item><title>Warm</title>'
            b"<description>Een bericht over open source marketing.</description>"
            b"</item></channel></rss>")
    parse_and_normalize(body, {}, CORPUS_URL, "post", None, datetime.now().astimezone())


def parse_corpus_file(tests_dir: str, name: str, first_seen: datetime) -> FileResult:
    """Run one file through parse_and_normalize; runs in a worker process.

    Never raises: a crash comes back as text so the parent can list every one.
    """
    body = (Path(tests_dir) / name).read_bytes()
    headers = headers_for(body)
    started = time.perf_counter()
    try:
        feed, entries = parse_and_normalize(
            body, headers, CORPUS_URL + name, "post", None, first_seen)
    except ParseError as error:
        return FileResult(name, time.perf_counter() - started, None, (), parse_error=str(error))
    except Exception as error:
        crash = "".join(traceback.format_exception(error)).strip()
        return FileResult(name, time.perf_counter() - started, None, (), crash=crash)
    return FileResult(name, time.perf_counter() - started, feed, tuple(entries))
