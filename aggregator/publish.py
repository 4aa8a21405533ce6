"""Publishing: the static feeds under feeds/, and the feedgen adapter.

Atom and RSS 2.0 are written with feedgen (plus the extensions in
feedgen_ext.py for atom:source, RFC 4685 threading, wfw/slash); JSON Feed,
OPML and the index page have their own modules. :func:`publish_all` renders
every output from the project's own types and writes only the files whose
bytes changed, each atomically, so web servers and feed readers never see a
half-written file and unchanged feeds keep their mtime (and so their
Last-Modified / ETag).

Every output is a pure function of its input: no now(), no random order.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import pickle
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from feedgen.feed import FeedGenerator

from aggregator import feedgen_ext
from aggregator.errors import PublishError
from aggregator.feedgen_ext import InReplyTo, Link, Replies, SourceFeed
from aggregator.jsonfeed import (
    canonical_id,
    clean_text,
    content_html,
    entry_title,
    feed_updated,
    other_appearances,
    render_json,
    source_title,
    thread_url,
    utc,
    web_uri,
)
from aggregator.opml import render_opml
from aggregator.page import LATEST_POSTS, render_index
from aggregator.types import PublishedEntry, SiteInfo

__all__ = [
    "RenderMemo",
    "publish_all",
    "render_atom",
    "render_index",
    "render_json",
    "render_opml",
    "render_rss",
    "render_thread_atom",
    "write_if_changed",
]

log = logging.getLogger(__name__)

FeedFormat = Literal["atom", "rss", "json"]

MEDIA_TYPES: dict[FeedFormat, str] = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}

GENERATOR = "aggregator"

# Topic slugs and language codes become file names: validated upstream, but a
# slash or ".." here would write outside feeds/, so check again.
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
_FEED_SUFFIXES = frozenset({".atom", ".rss", ".json"})


class _Renderer(Protocol):
    def __call__(
        self,
        site: SiteInfo,
        *,
        path: str,
        title: str,
        entries: Sequence[PublishedEntry],
        subtitle: str | None = None,
        language: str | None = None,
    ) -> bytes: ...


# --------------------------------------------------------------------------- Atom and RSS


def render_atom(
    site: SiteInfo,
    *,
    path: str,
    title: str,
    entries: Sequence[PublishedEntry],
    subtitle: str | None = None,
    language: str | None = None,
) -> bytes:
    """An Atom 1.0 feed of ``entries`` (in the given order), served at base_url + path."""
    generator = _feed(site, "atom", path=path, title=title, entries=entries,
                      subtitle=subtitle, language=language,
                      alternates=_sibling_formats(site, path, "atom"))
    return generator.atom_str(pretty=True)


def render_rss(
    site: SiteInfo,
    *,
    path: str,
    title: str,
    entries: Sequence[PublishedEntry],
    subtitle: str | None = None,
    language: str | None = None,
) -> bytes:
    """An RSS 2.0 feed of ``entries`` (in the given order), served at base_url + path."""
    generator = _feed(site, "rss", path=path, title=title, entries=entries,
                      subtitle=subtitle, language=language, alternates=[])
    return generator.rss_str(pretty=True)


def render_thread_atom(
    site: SiteInfo, post: PublishedEntry, comments: Sequence[PublishedEntry]
) -> bytes:
    """The Atom feed of one post's comments, served at /posts/<post.key>/comments.atom.

    Comments come newest first; each one carries thr:in-reply-to (the comment
    it answers, else the post).
    """
    path = thread_url(site, post.key).removeprefix(site.base_url)
    post_page = [("text/html", web_uri(post.link))] if post.link else []
    generator = _feed(
        site, "atom", path=path, title=f"Comments on: {entry_title(post)}",
        entries=newest_first(comments), subtitle=None, language=None,
        alternates=post_page,
        # An empty thread is as new as its post, not as old as the epoch.
        updated_floor=post,
    )
    return generator.atom_str(pretty=True)


def newest_first(entries: Sequence[PublishedEntry]) -> list[PublishedEntry]:
    """``entries`` by publication date, newest first; ties broken by id for stable output."""
    by_id = sorted(entries, key=lambda entry: entry.id)
    return sorted(by_id, key=lambda entry: utc(entry.published), reverse=True)


def _sibling_formats(site: SiteInfo, path: str, own: FeedFormat) -> list[tuple[str, str]]:
    stem, _, suffix = path.rpartition(".")
    if suffix != own:
        return []
    return [(MEDIA_TYPES[other], canonical_id(f"{site.base_url}{stem}.{other}"))
            for other in ("atom", "rss", "json") if other != own]


def _feed(
    site: SiteInfo,
    kind: Literal["atom", "rss"],
    *,
    path: str,
    title: str,
    entries: Sequence[PublishedEntry],
    subtitle: str | None,
    language: str | None,
    alternates: list[tuple[str, str]],
    updated_floor: PublishedEntry | None = None,
) -> FeedGenerator:
    feed = FeedGenerator()
    # The id is compared character by character, so it is in canonical form;
    # the validator finds the self link equal to the document's address.
    self_url = canonical_id(site.base_url + path)
    home_url = web_uri(site.base_url)
    site_title = clean_text(site.title) or GENERATOR
    feed.id(self_url)
    feed.title(clean_text(title) or site_title)
    newest = feed_updated([*entries, *([updated_floor] if updated_floor else [])])
    feed.updated(newest)
    feed.author(name=site_title, uri=home_url)
    feed.link(href=self_url, rel="self", type=MEDIA_TYPES[kind])
    for media_type, href in alternates:
        feed.link(href=href, rel="alternate", type=media_type)
    if not any(media_type == "text/html" for media_type, _ in alternates):
        # Last on purpose: feedgen makes the last link the RSS <channel><link>.
        feed.link(href=home_url, rel="alternate", type="text/html")
    if kind == "atom":
        feed.generator(GENERATOR, version=clean_text(site.generator_version))
        if subtitle:
            feed.subtitle(clean_text(subtitle))
        feedgen_ext.register_atom(feed)
    else:
        feed.generator(f"{GENERATOR} {clean_text(site.generator_version)}".strip())
        # RSS requires a description; Atom's subtitle is optional.
        feed.description(clean_text(subtitle) or clean_text(title) or site_title)
        feed.load_extension("dc", atom=False, rss=True)
        feedgen_ext.register_rss(feed)
    if language and _LANGUAGE.fullmatch(language):
        feed.language(language)
    topic_titles = {topic.slug: clean_text(topic.title) for topic in site.topics}
    for entry in entries:
        _add_entry(feed, site, entry, kind, topic_titles)
    return feed


def _add_entry(
    feed: FeedGenerator,
    site: SiteInfo,
    entry: PublishedEntry,
    kind: Literal["atom", "rss"],
    topic_titles: dict[str, str],
) -> None:
    item = feed.add_entry(order="append")
    item.id(clean_text(entry.id))
    item.title(entry_title(entry))
    item.updated(utc(entry.updated))
    item.published(utc(entry.published))

    link = web_uri(entry.link)
    summary = clean_text(entry.summary_html).strip()
    # Content falls back to the summary, so RSS never gets an empty
    # content:encoded next to it; the summary is then not repeated.
    content = content_html(site, entry).strip() or summary
    if content:
        item.content(content, type="html")
    elif not link:
        # RFC 4287 §4.1.1.1: an entry without an alternate link needs
        # content, and the validator warns about a blank one.
        item.content(entry_title(entry), type="text")
    if summary and summary != content:
        item.summary(summary, type="html")

    links = []
    if link:
        links.append(Link(href=link, rel="alternate", type="text/html"))
        # For Atom, feedgen only needs to know there is an alternate link
        # (an entry without content must have one); the extension replaces
        # feedgen's own rel-less copy of it.
        item.link(href=link, rel="alternate")
    for appearance in other_appearances(entry):
        # rel="via": another place this (merged) entry was published.
        links.append(Link(href=web_uri(appearance.link), rel="via", type="text/html",
                          title=source_title(site, appearance.source)))
    if entry.kind == "comment" and entry.post_key:
        links.append(Link(href=thread_url(site, entry.post_key), rel="related",
                          type="application/atom+xml",
                          title=clean_text(entry.post_title) or "comment thread"))

    author = clean_text(entry.author).strip()
    if author:
        item.author(name=author)
        if kind == "rss":
            # RSS <author> must be an e-mail address; names go in dc:creator.
            item.dc.dc_creator(author)

    categories = [{"term": term} for term in _unique(clean_text(c).strip()
                                                   for c in entry.categories)]
    categories += [
        {"term": slug, "scheme": f"{web_uri(site.base_url)}topics/",
         "label": topic_titles.get(slug) or slug}
        for slug in _unique(clean_text(s) for s in entry.topics)
    ]
    if categories:
        item.category(categories)

    extension = item.aggregator
    extension.links = tuple(links)
    source = entry.source
    source_name = clean_text(source.title) or clean_text(source.name)
    extension.source = SourceFeed(
        feed_url=web_uri(source.feed_url),
        feed_id=canonical_id(source.feed_url),
        title=source_name,
        site_url=web_uri(source.site_url) or None,
        updated=utc(entry.updated),
        # RFC 4287 §4.1.2: an entry needs an author; the blog it came from is
        # a truer one than the aggregator's feed-level author.
        author=None if author else source_name,
    )
    if entry.language and _LANGUAGE.fullmatch(entry.language):
        extension.language = entry.language
    if entry.kind == "post":
        extension.replies = Replies(
            feed_url=thread_url(site, entry.key),
            page_url=link or None,
            count=entry.comment_count,
        )
    else:
        answered = clean_text(entry.in_reply_to_id or entry.post_id)
        if answered:
            extension.in_reply_to = InReplyTo(
                ref=answered, href=web_uri(entry.in_reply_to_link) or None
            )
        if kind == "rss" and entry.post_key:
            # RSS has no thread relation; point at the post's comment feed.
            extension.replies = Replies(
                feed_url=thread_url(site, entry.post_key), page_url=None, count=None
            )


def _unique(terms: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(term for term in terms if term))


# --------------------------------------------------------------------------- writing


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically unless it already holds exactly these bytes.

    Returns True when the file was written. The new content goes to a
    temporary file in the same directory, is fsynced, then renamed over the
    old one: readers see the old file or the new one, never a mix.
    """
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except OSError as error:
        raise PublishError(f"cannot read {path}: {error.strerror}") from error
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as error:
        raise PublishError(
            f"cannot write into {path.parent}: {error.strerror}; "
            "check that the feeds directory exists and is writable"
        ) from error
    try:
        with os.fdopen(descriptor, "wb") as output:
            output.write(data)
            output.flush()
            os.fsync(output.fileno())
        # mkstemp makes the file private; published feeds are for any web server.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise PublishError(f"cannot write {path}: {error.strerror}") from error
        raise
    _sync_directory(path.parent)
    return True


def _sync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _inside(root: Path, relative: str) -> Path:
    """``root / relative``, refusing anything that resolves outside ``root``."""
    target = root / relative
    if not target.resolve().is_relative_to(root):
        raise PublishError(f"refusing to write {target}: it is outside {root}")
    return target


# --------------------------------------------------------------------------- everything


def publish_all(
    feeds_dir: Path,
    site: SiteInfo,
    posts: Sequence[PublishedEntry],
    comments: Sequence[PublishedEntry],
    *,
    max_entries: int = 100,
    memo: RenderMemo | None = None,
) -> list[Path]:
    """Render every static output into ``feeds_dir``; return the files that changed.

    Written: all.*, comments.*, topics/<slug>.* for every topic in ``site``,
    lang/<code>.* for every language in ``site`` (each as .atom, .rss and
    .json, newest ``max_entries`` entries), sources.opml and index.html.
    Feeds of topics and languages no longer in ``site`` are removed; removed
    files are in the returned list too.

    ``memo``, kept by the caller from one publish to the next, lets an output
    whose inputs are the same as when its file was written (and the file as
    it was then) go without rendering: after one new post most feeds are.
    """
    root = feeds_dir.resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PublishError(f"cannot create the feeds directory {root}: {error.strerror}") from error
    posts = newest_first(posts)
    memo = memo if memo is not None else RenderMemo()
    site_key = memo.key(site)
    #: relative path → (digest of everything its bytes depend on, how to render them)
    outputs: dict[str, tuple[bytes, Callable[[], bytes]]] = {}

    def add_feeds(stem: str, title: str, entries: Sequence[PublishedEntry], subtitle: str,
                  language: str | None = None) -> None:
        shown = list(entries[:max_entries])
        renderers: dict[str, _Renderer] = {
            "atom": render_atom, "rss": render_rss, "json": render_json,
        }
        # One digest for the three formats: the entries are the costly part.
        inputs = memo.key((site_key, stem, title, shown, subtitle, language))
        for suffix, render in renderers.items():
            path = f"{stem}.{suffix}"
            outputs[path] = (inputs + suffix.encode(), functools.partial(
                render, site, path=path, title=title, entries=shown, subtitle=subtitle,
                language=language))

    site_title = clean_text(site.title)
    add_feeds("all", site_title, posts, f"Every post aggregated by {site_title}")
    add_feeds("comments", f"{site_title}: comments", newest_first(comments),
              "Every comment, each pointing at its post")

    topic_slugs: set[str] = set()
    for topic in site.topics:
        if not _SLUG.fullmatch(topic.slug):
            log.warning("topic slug %r is not [a-z0-9-]+; its feeds are not written", topic.slug)
            continue
        topic_slugs.add(topic.slug)
        add_feeds(f"topics/{topic.slug}", f"{site_title}: {clean_text(topic.title)}",
                  [post for post in posts if topic.slug in post.topics],
                  f"Posts about {clean_text(topic.title)}")

    language_codes: set[str] = set()
    for code in site.languages:
        if not _LANGUAGE.fullmatch(code):
            log.warning("language code %r is not a language tag; its feeds are not written", code)
            continue
        language_codes.add(code)
        add_feeds(f"lang/{code}", f"{site_title} ({code})",
                  [post for post in posts if post.language == code],
                  f"Posts in language {code}", language=code)

    outputs["sources.opml"] = (site_key, functools.partial(render_opml, site))
    latest = posts[:LATEST_POSTS]
    outputs["index.html"] = (memo.key((site_key, latest)),
                             functools.partial(render_index, site, latest))

    changed = []
    for relative, (key, render) in outputs.items():
        target = _inside(root, relative)
        if memo.holds(target, key):
            continue
        if write_if_changed(target, render()):
            changed.append(target)
        memo.wrote(target, key)
    changed += _remove_stale(root, "topics", topic_slugs)
    changed += _remove_stale(root, "lang", language_codes)
    _remove_abandoned_temporaries(root)
    return changed


class RenderMemo:
    """What each published file was last rendered from, to skip unchanged outputs.

    Per file: a digest of the inputs its bytes are a pure function of, and the
    file's (mtime, size, inode) right after publishing. A file somebody else
    changed or removed no longer matches, so it is rendered and written again.

    It is kept in the feeds directory too (:meth:`load`, :meth:`save`), so that
    a new process (``aggregator publish`` from cron, a restarted daemon) renders
    only what changed as well: at 1,000,000 stored entries rendering every
    output was about a third of such a command's time.
    """

    #: The file in the feeds directory that holds the memo between processes.
    FILE_NAME = ".render-memo"
    _FORMAT = 1

    #: SiteInfo.updated is not in any output; it must not make every file look new.
    _NO_TIME = datetime(2000, 1, 1, tzinfo=UTC)

    def __init__(self) -> None:
        self._files: dict[Path, tuple[bytes, tuple[int, int, int] | None]] = {}

    def key(self, inputs: SiteInfo | tuple[Any, ...]) -> bytes:
        """A digest of ``inputs``: equal pickles mean equal values (unequal ones
        at worst cost a render)."""
        if isinstance(inputs, SiteInfo):
            inputs = (dataclasses.replace(inputs, updated=self._NO_TIME),)
        return hashlib.blake2b(pickle.dumps(inputs, protocol=pickle.HIGHEST_PROTOCOL)).digest()

    def holds(self, target: Path, key: bytes) -> bool:
        known = self._files.get(target)
        return known is not None and known == (key, _identity(target))

    def wrote(self, target: Path, key: bytes) -> None:
        self._files[target] = (key, _identity(target))

    @classmethod
    def load(cls, feeds_dir: Path) -> RenderMemo:
        """The memo a publish into *feeds_dir* left, or an empty one.

        Anything unreadable counts as empty: the memo only ever saves work.
        """
        memo = cls()
        try:
            saved = json.loads((feeds_dir / cls.FILE_NAME).read_bytes())
            if saved.get("format") != cls._FORMAT:
                return memo
            root = feeds_dir.resolve()
            for relative, (key, mtime, size, inode) in saved["files"].items():
                memo._files[_inside(root, relative)] = (
                    bytes.fromhex(key), (int(mtime), int(size), int(inode)))
        except (OSError, ValueError, TypeError, KeyError, AttributeError, PublishError):
            memo._files.clear()
        return memo

    def save(self, feeds_dir: Path) -> None:
        """Keep the memo in *feeds_dir* for the next process that publishes there."""
        root = feeds_dir.resolve()
        files = {}
        for target, (key, identity) in sorted(self._files.items()):
            if identity is not None and target.is_relative_to(root):
                files[target.relative_to(root).as_posix()] = [key.hex(), *identity]
        data = json.dumps({"format": self._FORMAT, "files": files}, separators=(",", ":"))
        write_if_changed(feeds_dir / self.FILE_NAME, data.encode("ascii"))


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


#: A temporary file older than this was left by a publish that died (kill -9).
_ABANDONED_AFTER_SECONDS = 600


def _remove_abandoned_temporaries(root: Path) -> None:
    """Delete the ``.NAME.<random>.tmp`` files that a killed publish left behind."""
    cutoff = time.time() - _ABANDONED_AFTER_SECONDS
    for folder in (root, root / "topics", root / "lang"):
        if not folder.is_dir():
            continue
        for path in folder.glob(".*.tmp"):
            try:
                if path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue  # another publish may be renaming it right now


def _remove_stale(root: Path, folder: str, keep: set[str]) -> list[Path]:
    """Delete feeds in ``root/folder`` whose name is not in ``keep``; only *.atom/.rss/.json."""
    directory = _inside(root, folder)
    if not directory.is_dir():
        return []
    removed = []
    for path in sorted(directory.iterdir()):
        if path.suffix not in _FEED_SUFFIXES or path.stem in keep:
            continue
        if path.is_symlink() or not path.is_file():
            continue  # not something publish_all wrote
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise PublishError(f"cannot remove the stale feed {path}: {error.strerror}") from error
        removed.append(path)
    return removed

