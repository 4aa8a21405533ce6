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
import itertools
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
    "ArchivedFeed",
    "RenderMemo",
    "archive_path",
    "publish_all",
    "publish_archives",
    "render_archive_atom",
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
    history: Sequence[tuple[str, str]] = (),
) -> bytes:
    """An Atom 1.0 feed of ``entries`` (in the given order), served at base_url + path.

    ``history``: (rel, href) links of RFC 5005, for a subscription document
    whose older entries are in archive documents ("prev-archive").
    """
    generator = _feed(site, "atom", path=path, title=title, entries=entries,
                      subtitle=subtitle, language=language,
                      alternates=_sibling_formats(site, path, "atom"), history=history)
    return generator.atom_str(pretty=True)


def archive_path(stem: str, block: int) -> str:
    """Where archive document ``block`` (1 = oldest) of feed ``stem`` is published."""
    return f"archive/{stem}/{block}.atom"


def render_archive_atom(
    site: SiteInfo,
    *,
    stem: str,
    block: int,
    closed: int,
    title: str,
    entries: Sequence[PublishedEntry],
    subtitle: str | None = None,
) -> bytes:
    """Archive document ``block`` of ``closed`` of the Atom feed ``stem`` (RFC 5005 §4).

    It carries fh:archive, a "current" link to the subscription document,
    "prev-archive" to the block before (none for the first) and
    "next-archive" to the block after, once that block is closed.
    """
    current = canonical_id(f"{site.base_url}{stem}.atom")
    history = [("current", current)]
    if block > 1:
        history.append(("prev-archive", _archive_url(site, stem, block - 1)))
    if block < closed:
        history.append(("next-archive", _archive_url(site, stem, block + 1)))
    generator = _feed(site, "atom", path=archive_path(stem, block), title=title,
                      entries=newest_first(entries), subtitle=subtitle, language=None,
                      alternates=[], history=history, archive=True,
                      # One logical feed (RFC 5005 §4): the subscription document's id.
                      feed_id=current)
    return generator.atom_str(pretty=True)


def _archive_url(site: SiteInfo, stem: str, block: int) -> str:
    return canonical_id(site.base_url + archive_path(stem, block))


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
    history: Sequence[tuple[str, str]] = (),
    archive: bool = False,
    feed_id: str | None = None,
) -> FeedGenerator:
    feed = FeedGenerator()
    # The id is compared character by character, so it is in canonical form;
    # the validator finds the self link equal to the document's address.
    self_url = canonical_id(site.base_url + path)
    home_url = web_uri(site.base_url)
    site_title = clean_text(site.title) or GENERATOR
    feed.id(feed_id or self_url)
    feed.title(clean_text(title) or site_title)
    newest = feed_updated([*entries, *([updated_floor] if updated_floor else [])])
    feed.updated(newest)
    feed.author(name=site_title, uri=home_url)
    feed.link(href=self_url, rel="self", type=MEDIA_TYPES[kind])
    for rel, href in history:
        feed.link(href=href, rel=rel, type=MEDIA_TYPES[kind])
    for media_type, href in alternates:
        feed.link(href=href, rel="alternate", type=media_type)
    if not any(media_type == "text/html" for media_type, _ in alternates):
        # Last on purpose: feedgen makes the last link the RSS <channel><link>.
        feed.link(href=home_url, rel="alternate", type="text/html")
    if kind == "atom":
        feed.generator(GENERATOR, version=clean_text(site.generator_version))
        if subtitle:
            feed.subtitle(clean_text(subtitle))
        feedgen_ext.register_atom(feed, archive=archive)
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


@dataclasses.dataclass(frozen=True, slots=True)
class ArchivedFeed:
    """An RFC 5005 archived feed (all, comments) as publishing needs to know it.

    Its entries are numbered in the order first published; every full block of
    ``archive_index.BLOCK_SIZE`` is an archive document (1 = the oldest), and
    the entries of the open block stay in the subscription document.
    """

    #: "all" or "comments": the subscription document is <stem>.atom.
    stem: str
    #: Full blocks, each one an archive document.
    closed: int
    #: The entries of the open block.
    open_entries: tuple[PublishedEntry, ...] = ()
    #: Blocks whose entries changed after they closed (retention), by version.
    versions: dict[int, int] = dataclasses.field(default_factory=dict)


def publish_all(
    feeds_dir: Path,
    site: SiteInfo,
    posts: Sequence[PublishedEntry],
    comments: Sequence[PublishedEntry],
    *,
    max_entries: int = 100,
    memo: RenderMemo | None = None,
    archives: Sequence[ArchivedFeed] = (),
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

    ``archives``: the Atom subscription documents of these feeds link their
    newest archive document ("prev-archive") and carry the open block's
    entries besides their newest ones; :func:`publish_archives` writes the
    archive documents themselves.
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

    archived = {feed.stem: feed for feed in archives}

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
        if (feed := archived.get(stem)) is not None:
            # RFC 5005 §4: what no archive document holds yet is here.
            seen = {entry.id for entry in shown}
            extra = [entry for entry in feed.open_entries if entry.id not in seen]
            history = ([("prev-archive", _archive_url(site, stem, feed.closed))]
                       if feed.closed else [])
            outputs[f"{stem}.atom"] = (
                memo.key((inputs, extra, history)) + b"atom",
                functools.partial(render_atom, site, path=f"{stem}.atom", title=title,
                                  entries=newest_first([*shown, *extra]), subtitle=subtitle,
                                  language=language, history=history))

    site_title = clean_text(site.title)
    title, subtitle = _feed_titles(site, "all")
    add_feeds("all", title, posts, subtitle)
    title, subtitle = _feed_titles(site, "comments")
    add_feeds("comments", title, newest_first(comments), subtitle)

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


def _feed_titles(site: SiteInfo, stem: str) -> tuple[str, str]:
    """Title and subtitle of the feed ``stem`` ("all" or "comments")."""
    site_title = clean_text(site.title)
    if stem == "all":
        return site_title, f"Every post aggregated by {site_title}"
    return f"{site_title}: comments", "Every comment, each pointing at its post"


#: Reads the entries of one archive block: (stem, block) → entries.
BlockLoader = Callable[[str, int], Sequence[PublishedEntry]]


def publish_archives(
    feeds_dir: Path,
    site: SiteInfo,
    archives: Sequence[ArchivedFeed],
    load: BlockLoader,
    *,
    memo: RenderMemo,
    budget_seconds: float | None = None,
) -> tuple[list[Path], int]:
    """Write the archive documents (RFC 5005 §4) not yet written; return the files
    that changed and how many documents wait for a later call.

    A closed block is read and rendered once: its entries do not change. It
    is written again only when the block after it closes (for its
    "next-archive" link), when retention changed it (its version), or when
    what every document says of the site changed. The memo keeps, per feed,
    what was written and what still waits, so a publish with nothing new
    looks at no block at all (at 1,000,000 entries there are 20,000).
    Newest blocks first, so the documents a subscription document links are
    there first. With ``budget_seconds``, stops after that long (having
    written at least one; none for 0): after a cold pass or an upgrade
    hundreds wait, and a publish must stay short; the rest follow in later
    publishes.
    """
    root = feeds_dir.resolve()
    started = time.perf_counter()
    base = memo.key((dataclasses.replace(
        site, sources=(), languages=(), generator_version="", updated=RenderMemo.NO_TIME),
    )).hex()
    queues: list[list[tuple[ArchivedFeed, int]]] = []
    waiting: dict[str, set[int]] = {}
    changed: list[Path] = []
    for feed in archives:
        state = memo.archives.get(feed.stem)
        versions = {str(block): version for block, version in feed.versions.items()}
        if state is None or state["base"] != base or state["closed"] > feed.closed:
            # First time, a new site description, or a store started over.
            missing = set(range(1, feed.closed + 1))
            changed += _remove_later_archives(root, feed)
        else:
            missing = set(state["missing"])
            before = state["closed"]
            missing |= set(range(before + 1, feed.closed + 1))
            if 1 <= before < feed.closed:
                missing.add(before)  # it gains its next-archive link
            missing |= {int(block) for block, version in versions.items()
                        if state["versions"].get(block) != version}
            missing = {block for block in missing if block <= feed.closed}
        waiting[feed.stem] = missing
        memo.archives[feed.stem] = {"base": base, "closed": feed.closed,
                                    "versions": versions, "missing": sorted(missing)}
        queues.append([(feed, block) for block in sorted(missing, reverse=True)])
    # Feeds take turns, so one long backlog does not hold up the other.
    order = [item for turn in itertools.zip_longest(*queues) for item in turn if item]
    done = 0
    for feed, block in order:
        if budget_seconds is not None and (budget_seconds <= 0 or (
                done and time.perf_counter() - started > budget_seconds)):
            break
        title, subtitle = _feed_titles(site, feed.stem)
        target = _inside(root, archive_path(feed.stem, block))
        data = render_archive_atom(site, stem=feed.stem, block=block, closed=feed.closed,
                                   title=title, subtitle=subtitle,
                                   entries=load(feed.stem, block))
        if write_if_changed(target, data):
            changed.append(target)
        waiting[feed.stem].discard(block)
        done += 1
    for stem, missing in waiting.items():
        memo.archives[stem]["missing"] = sorted(missing)
    return changed, len(order) - done


def _remove_later_archives(root: Path, feed: ArchivedFeed) -> list[Path]:
    """Delete archive documents numbered above the closed blocks (a store started over)."""
    directory = _inside(root, f"archive/{feed.stem}")
    if not directory.is_dir():
        return []
    removed = []
    for path in directory.glob("*.atom"):
        if not path.stem.isdigit() or int(path.stem) <= feed.closed or path.is_symlink():
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise PublishError(f"cannot remove the stale archive {path}: {error.strerror}") \
                from error
        removed.append(path)
    return sorted(removed)


class RenderMemo:
    """What each published file was last rendered from, to skip unchanged outputs.

    Per file: a digest of the inputs its bytes are a pure function of, and the
    file's (mtime, size, inode) right after publishing. A file somebody else
    changed or removed no longer matches, so it is rendered and written again.

    For the archive documents it keeps less per file: per archived feed, what
    they were written from and which still wait (:func:`publish_archives`).

    It is kept in the feeds directory too (:meth:`load`, :meth:`save`), so that
    a new process (``aggregator publish`` from cron, a restarted daemon) renders
    only what changed as well: at 1,000,000 stored entries rendering every
    output was about a third of such a command's time.
    """

    #: The file in the feeds directory that holds the memo between processes.
    FILE_NAME = ".render-memo"
    _FORMAT = 1

    #: SiteInfo.updated is not in any output; it must not make every file look new.
    NO_TIME = datetime(2000, 1, 1, tzinfo=UTC)

    def __init__(self) -> None:
        self._files: dict[Path, tuple[bytes, tuple[int, int, int] | None]] = {}
        #: Per archived feed (publish_archives): the site digest its documents
        #: were written with, the closed blocks then, block versions, and the
        #: blocks still to write.
        self.archives: dict[str, dict[str, Any]] = {}

    def key(self, inputs: SiteInfo | tuple[Any, ...]) -> bytes:
        """A digest of ``inputs``: equal pickles mean equal values (unequal ones
        at worst cost a render)."""
        if isinstance(inputs, SiteInfo):
            inputs = (dataclasses.replace(inputs, updated=self.NO_TIME),)
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
            for stem, state in saved.get("archives", {}).items():
                memo.archives[str(stem)] = {
                    "base": str(state["base"]), "closed": int(state["closed"]),
                    "versions": {str(k): int(v) for k, v in state["versions"].items()},
                    "missing": [int(block) for block in state["missing"]],
                }
        except (OSError, ValueError, TypeError, KeyError, AttributeError, PublishError):
            memo._files.clear()
            memo.archives.clear()
        return memo

    def save(self, feeds_dir: Path) -> None:
        """Keep the memo in *feeds_dir* for the next process that publishes there."""
        root = feeds_dir.resolve()
        files = {}
        for target, (key, identity) in sorted(self._files.items()):
            if identity is not None and target.is_relative_to(root):
                files[target.relative_to(root).as_posix()] = [key.hex(), *identity]
        data = json.dumps({"format": self._FORMAT, "files": files, "archives": self.archives},
                          separators=(",", ":"))
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
    archives = root / "archive"
    feeds = [path for path in archives.iterdir() if path.is_dir()] if archives.is_dir() else []
    for folder in (root, root / "topics", root / "lang", *feeds):
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

