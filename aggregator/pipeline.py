"""One fetch pass: claim due sources → fetch → parse → normalize → store → comments.

This is the library's core workflow; the CLI and the daemon are thin shells
over :class:`Aggregator`. Each source yields an outcome (new entries,
unchanged, or an error); one bad source never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import logging
import os
import random
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

from aggregator import __version__, archive_index, speedups
from aggregator.config import Config, SourceConfig
from aggregator.errors import AggregatorError, FetchError, ParseError
from aggregator.parser_pool import Named, ParserPool
from aggregator.schedule import next_check_at
from aggregator.store import (
    Claim,
    CommentFeedState,
    IngestJob,
    IngestReport,
    SourceState,
    Store,
    Unchanged,
    host_slot,
)
from aggregator.types import (
    EntryKind,
    FetchResult,
    NormalizedEntry,
    ParsedFeed,
    PublishedEntry,
    SiteInfo,
    SourceInfo,
    TopicFiling,
    TopicInfo,
    Validators,
)
from aggregator.urls import same_site

if TYPE_CHECKING:
    # Imported where used: the HTTP client (httpx, httpcore) is about a tenth of
    # the imports of a command that never fetches, such as `aggregator publish`.
    from aggregator.fetch import Fetcher
    from aggregator.publish import ArchivedFeed, RenderMemo
    from aggregator.topics import TopicMatcher

#: What a parser worker runs on a fetched document (aggregator.reading).
_PARSE = Named("aggregator.reading", "parse_and_normalize")

log = logging.getLogger("aggregator")
#: Whether this process has logged speedups.missing_warning() (once is enough).
_told_of_speedups = False

_T = TypeVar("_T")

#: Entries per published feed (newest first).
MAX_FEED_ENTRIES = 100
#: Longest a publish spends writing RFC 5005 archive documents; the rest wait
#: for the next publish (hundreds are due after a cold pass or an upgrade).
ARCHIVE_BUDGET_SECONDS = 0.5
#: Most documents stored in one transaction when they queue up (see _ingest).
_INGEST_BATCH = 16
#: Sources a pass keeps in progress per request it may have in flight
#: (``[fetch] concurrency``, and ``per_host`` per host) while no other worker
#: holds a lease. A source spends most of its turn being parsed or stored, not
#: fetched: with only as many sources as requests, the parser workers idled
#: whenever the store's writer was merging keys or committing, since every
#: source was waiting for it (see PERF.md, eighteenth session).
SOURCES_PER_REQUEST = 2


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class SourceOutcome:
    """What happened to one source in a pass."""

    name: str
    #: "updated", "unchanged", "error" or "gone".
    result: str
    http_status: int | None = None
    report: IngestReport = field(default_factory=IngestReport)
    comment_feeds: int = 0
    comment_errors: int = 0
    error: str | None = None
    #: What was wrong with a feed that could still be read ("not well-formed
    #: XML; read leniently", a media type that is not XML's, ...).
    warning: str | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class PassReport:
    outcomes: list[SourceOutcome] = field(default_factory=list)
    published: list[Path] = field(default_factory=list)
    #: The publish after the pass left archive documents for a later one.
    archives_pending: bool = False

    @property
    def changed(self) -> bool:
        return any(outcome.report.changed for outcome in self.outcomes)


ProgressCallback = Callable[[SourceOutcome], None]


class Aggregator:
    """The aggregator as a library: fetch passes and publishing over one store."""

    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        fetcher: Fetcher | None = None,
        parser_pool: ParserPool | None = None,
        owner: str | None = None,
    ) -> None:
        self.config = config
        self.store = store or Store(config.aggregator.database)
        self._fetcher = fetcher
        self._parser_pool = parser_pool
        self.owner = owner or worker_name()
        self._rng = random.Random()
        # Built when first needed: the parser workers file posts themselves,
        # and the matcher's stemmers are megabytes this process rarely needs.
        self._matcher: TopicMatcher | None = None
        self._source_topics = {s.name: s.topics for s in config.sources}
        #: What the files under feeds/ were rendered from: unchanged ones are not rendered again.
        # Made on the first render: the publishing modules (feedgen, lxml) are
        # imported only by a process that writes feeds.
        self._render_memo: RenderMemo | None = None
        #: The last publish() found another process writing the directory.
        self.publish_skipped = False
        #: Archive documents (or entries to number for them) left for the next publish.
        self.archives_pending = False
        #: Seconds a publish spends on archive documents at most.
        self.archive_budget = ARCHIVE_BUDGET_SECONDS
        self._archive_seconds: float | None = ARCHIVE_BUDGET_SECONDS
        self._numbering_pending = False
        #: 304s not yet recorded: they go with the release of their lease.
        self._unchanged: dict[int, Unchanged] = {}
        # Documents waiting for the store, and the task writing them (_ingest).
        self._ingest_queue: list[tuple[IngestJob, asyncio.Future[IngestReport]]] = []
        self._ingest_writer: asyncio.Task[None] | None = None
        self._ingest_loop: asyncio.AbstractEventLoop | None = None
        self._store_executor = ThreadPoolExecutor(
            1 if self.store.is_sqlite else 4, thread_name_prefix="aggregator-store")

    # ------------------------------------------------------------------ lifecycle

    @property
    def fetcher(self) -> Fetcher:
        if self._fetcher is None:
            from aggregator.fetch import Fetcher

            self._fetcher = Fetcher(self.config.fetch)
        return self._fetcher

    @property
    def parser_pool(self) -> ParserPool:
        if self._parser_pool is None:
            self._parser_pool = make_parser_pool()
        return self._parser_pool

    def reconfigure(self, config: Config) -> None:
        """Take a newly loaded config.toml into use (the daemon's hot reload)."""
        if config.fetch != self.config.fetch and self._fetcher is not None:
            old = self._fetcher
            self._fetcher = None
            asyncio.get_running_loop().create_task(old.aclose())
        self.config = config
        self._matcher = None
        self._source_topics = {s.name: s.topics for s in config.sources}

    async def _in_store_thread(self, func: Callable[..., _T], /, *args: Any,
                               **kwargs: Any) -> _T:
        """Run a blocking store call off the event loop, on the pass's own threads.

        SQLite: one thread, not asyncio's default pool of several. Its writes
        are serialized anyway (one writer), and each pool thread kept its own
        connection and page cache: one thread measured 20–25 MB less at the
        peak of a cold pass and no slower. PostgreSQL: a few, for its round trips.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._store_executor, functools.partial(func, *args, **kwargs))

    async def _ingest(self, job: IngestJob) -> IngestReport:
        """Store one document, together with any others waiting to be stored.

        While the store is busy, documents queue up here; the next store call
        takes them all (up to _INGEST_BATCH) in one transaction. An idle store
        gets each document on its own, at once.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[IngestReport] = loop.create_future()
        self._ingest_queue.append((job, done))
        if self._ingest_loop is not loop:  # a new loop (a CLI runs one per command)
            self._ingest_loop, self._ingest_writer = loop, None
        if self._ingest_writer is None or self._ingest_writer.done():
            self._ingest_writer = loop.create_task(self._write_ingests())
        return await done

    async def _write_ingests(self) -> None:
        while self._ingest_queue:
            batch = self._ingest_queue[:_INGEST_BATCH]
            del self._ingest_queue[:_INGEST_BATCH]
            try:
                results = await self._in_store_thread(
                    self.store.ingest_batch, [job for job, _ in batch])
            except BaseException as error:  # the store thread itself failed
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                if not isinstance(error, Exception):
                    raise
                continue
            for (_, done), result in zip(batch, results, strict=True):
                if done.done():  # its fetch was cancelled meanwhile
                    continue
                if isinstance(result, Exception):
                    done.set_exception(result)
                else:
                    done.set_result(result)

    async def aclose(self) -> None:
        if self._fetcher is not None:
            await self._fetcher.aclose()
            self._fetcher = None
        if self._parser_pool is not None:
            pool, self._parser_pool = self._parser_pool, None
            await pool.aclose()

    def close(self) -> None:
        self._store_executor.shutdown(wait=True)
        if self._parser_pool is not None:
            self._parser_pool.close()
            self._parser_pool = None
        self.store.close()

    # ------------------------------------------------------------------ fetching

    async def fetch_pass(
        self,
        *,
        names: Sequence[str] | None = None,
        force: bool = False,
        progress: ProgressCallback | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> PassReport:
        """Fetch every due (or, with ``force``, every) enabled source once."""
        from aggregator.fetch import one_request_at_a_time

        global _told_of_speedups
        if not _told_of_speedups:
            _told_of_speedups = True
            warning = speedups.missing_warning()
            if warning:
                log.warning("%s", warning)
        config = self.config
        now = now_utc()
        await self._in_store_thread(self.store.sync_sources, config.sources, now)
        await self._in_store_thread(self._adopt_topic_rules_if_empty)
        enabled = [s.name for s in config.sources if s.enabled]
        if names is not None:
            enabled = [name for name in enabled if name in set(names)]
        due = await self._in_store_thread(
            self.store.due_names, now=now, names=enabled, force=force)
        if on_total is not None:
            on_total(len(due))
        report = PassReport()

        async def one(state: SourceState) -> None:
            source = config.source(state.name)
            if source is None:  # removed from config.toml since the pass began
                return
            with one_request_at_a_time():
                outcome = await self._fetch_source(source, state)
            report.outcomes.append(outcome)
            _log_outcome(outcome)
            if progress is not None:
                progress(outcome)

        # Sources are leased a few at a time, as slots free up, so a
        # process killed mid-pass holds few leases (and those are recognised
        # as dead by the next run on this machine, or expire). A lease covers
        # the source's comment feeds too and is handed back when both are
        # done; it is renewed meanwhile, so only a dead worker's expires.
        # More sources are in progress than requests may be in flight (the
        # fetcher holds requests to [fetch] concurrency, and to per_host for
        # each host) while this worker is the only one holding leases; with
        # others at work, leases count as requests again (Store.claim_due).
        requests = max(1, config.fetch.concurrency)
        in_progress = requests * SOURCES_PER_REQUEST
        per_host = max(1, config.fetch.per_host)
        per_host_alone = per_host * SOURCES_PER_REQUEST
        lease = timedelta(seconds=config.fetch.lease_seconds)
        renew_every = config.fetch.lease_seconds / 3
        renew_at = time.monotonic() + renew_every
        sources = {s.name: s for s in config.sources}
        queue = _DueQueue(due, lambda name: host_slot(sources[name].url))
        running: dict[asyncio.Task[None], SourceState] = {}
        # Hosts offered since this worker last leased something: once every
        # host was offered in vain and nothing runs here, what is left waits
        # for hosts other workers are busy with (they, or the next tick, take it).
        barren = 0
        # Finished sources whose leases go back with the next claim: one
        # transaction for both (a warm pass is mostly these two).
        to_release: list[int] = []
        try:
            while True:
                free = in_progress - len(running)
                if queue and free > 0 and barren < queue.hosts():
                    offered = queue.offer(max(4 * free, 32), per_host_alone)
                    released, to_release = to_release, []
                    claim = await self._in_store_thread(
                        self.store.claim_due, now=now_utc(), owner=self.owner, lease=lease,
                        names=offered, force=force, stale_owner=owner_is_dead,
                        per_host=per_host, per_host_alone=per_host_alone, limit=free,
                        shared_limit=requests,
                        comments_days=self.config.fetch.comments_days,
                        release=released, unchanged=[
                            self._unchanged.pop(i) for i in released if i in self._unchanged],
                    )
                    queue.settle(offered, claim)
                    barren = 0 if claim else barren + len({queue.host_of(n) for n in offered})
                    for state in claim:
                        running[asyncio.create_task(one(state))] = state
                    if not claim:
                        continue
                if not running:
                    break
                if to_release:  # nothing to claim now: no lease is kept idle
                    released, to_release = to_release, []
                    await self._release(released)
                finished, _ = await asyncio.wait(
                    running, timeout=max(0.0, renew_at - time.monotonic()),
                    return_when=asyncio.FIRST_COMPLETED)
                done = [running.pop(task) for task in finished]
                if done:
                    to_release.extend(state.id for state in done)
                    for state in done:  # a slot of its host is free now
                        queue.prefer(host_slot(state.fetch_url))
                    barren = 0
                if running and time.monotonic() >= renew_at:
                    await self._in_store_thread(
                        self.store.renew, [state.id for state in running.values()],
                        self.owner, until=now_utc() + lease)
                    renew_at = time.monotonic() + renew_every
                for task in finished:
                    task.result()
        finally:
            # A cancelled pass (shutdown) hands its leases back at once.
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            if running or self._unchanged or to_release:
                await self._release([state.id for state in running.values()] + to_release,
                                    everything=True)
            if report.changed:
                # Tells every publisher sharing the store (this one, and
                # --role serve workers elsewhere) that there is news.
                await self._in_store_thread(self.store.bump_content_generation)
        return report

    async def _release(self, source_ids: list[int], *, everything: bool = False) -> None:
        """Hand back leases, recording the 304s of those sources in the same transaction.

        ``everything``: also record every 304 still pending (the pass is ending).
        """
        if everything:
            unchanged, self._unchanged = list(self._unchanged.values()), {}
        else:
            unchanged = [self._unchanged.pop(i) for i in source_ids if i in self._unchanged]
        await self._in_store_thread(self.store.release, source_ids, self.owner, unchanged=unchanged)

    async def _fetch_source(self, source: SourceConfig, state: SourceState) -> SourceOutcome:
        started = time.monotonic()
        outcome = SourceOutcome(name=source.name, result="unchanged")
        interval = timedelta(minutes=source.interval_minutes or self.config.fetch.interval_minutes)
        now = now_utc()
        try:
            fetched = await self.fetcher.fetch(
                state.fetch_url, Validators(state.etag, state.last_modified),
                private_ok_host=_host(state.fetch_url) if source.allow_private else None,
            )
        except FetchError as error:
            await self._record_error(source, state, error, interval, outcome)
            outcome.seconds = time.monotonic() - started
            return outcome
        outcome.http_status = fetched.status
        body_hash = None
        unchanged = fetched.status == 304
        if not unchanged:
            body_hash = _document_hash(fetched)
            unchanged = _same_document(fetched, body_hash, state.body_hash)
        if unchanged:
            when = self._next_check(now, interval, "not_modified", fetched, None)
            # Recorded with the lease's release, many sources per transaction.
            self._unchanged[state.id] = Unchanged(state.id, now, fetched, when)
        else:
            try:
                feed, entries = await self._parse(fetched, "post", source, now)
            except ParseError as error:
                await self._record_error(source, state, error, interval, outcome)
                outcome.seconds = time.monotonic() - started
                return outcome
            # The body is read: the document waits for the store without it
            # (dozens may be waiting in a cold pass).
            fetched = replace(fetched, body=b"")
            outcome.warning = feed.warning
            entries = _own_site_comment_feeds(entries, fetched.final_url, feed.link)
            when = self._next_check(now, interval, "ok", fetched, feed.ttl_minutes)

            def topics_for(entry: NormalizedEntry) -> tuple[str, ...]:
                if entry.topics is not None:  # filed by the parser worker
                    return entry.topics
                return self._topics(entry.title, entry.text, entry.categories,
                                    entry.language, source.name)

            outcome.report = await self._ingest(self.store.source_feed_job(
                state, now=now, fetch=fetched, feed=feed, entries=entries,
                topics_for=topics_for, follow_comments=source.comments,
                site_comments_url=source.comments_url or feed.comments_feed_url,
                next_check_at=when, body_hash=body_hash or "",
            ))
            outcome.result = "updated" if outcome.report.changed else "unchanged"
        if source.comments:
            # Nothing new in the feed: the comment feeds due are those read
            # when the source was claimed, so no query per unchanged source.
            known = state.comment_feeds_due if unchanged else None
            await self._fetch_comments(source, state, outcome, known)
            if outcome.report.changed:
                outcome.result = "updated"
        outcome.seconds = time.monotonic() - started
        return outcome

    async def _fetch_comments(
        self, source: SourceConfig, state: SourceState, outcome: SourceOutcome,
        known: Sequence[CommentFeedState] | None = None,
    ) -> None:
        now = now_utc()
        feeds = list(known) if known is not None else await self._in_store_thread(
            self.store.comment_feeds_due, state.id, now=now,
            comments_days=self.config.fetch.comments_days,
        )
        blog_host = _host(state.fetch_url)

        async def one(feed_state: CommentFeedState) -> None:
            outcome.comment_feeds += 1
            try:
                fetched = await self.fetcher.fetch(
                    feed_state.url, Validators(feed_state.etag, feed_state.last_modified),
                    private_ok_host=blog_host if source.allow_private else None,
                )
                entries: list[NormalizedEntry] | None = None
                body_hash = None
                if fetched.status != 304:
                    body_hash = _document_hash(fetched)
                    if not _same_document(fetched, body_hash, feed_state.body_hash):
                        parsed, entries = await self._parse(fetched, "comment", source, now)
                        fetched = replace(fetched, body=b"")  # read; see _fetch_source
                        if parsed.warning:
                            log.warning("source=%s comment feed %s warning: %s",
                                        source.name, feed_state.url, parsed.warning)
                report = await self._ingest(self.store.comment_feed_job(
                    feed_state, now=now, fetch=fetched, entries=entries, body_hash=body_hash,
                ))
                outcome.report.add(report)
            except (FetchError, ParseError) as error:
                outcome.comment_errors += 1
                log.warning("source=%s comment feed %s failed: %s",
                            source.name, feed_state.url, error)
                await self._in_store_thread(
                    self.store.record_comment_feed_error, feed_state, now=now,
                    message=str(error), status=getattr(error, "status", None),
                )

        await asyncio.gather(*(one(feed_state) for feed_state in feeds))

    async def _parse(
        self, fetched: FetchResult, kind: EntryKind, source: SourceConfig, now: datetime,
    ) -> tuple[ParsedFeed, list[NormalizedEntry]]:
        # Parsing runs in worker processes with a time and memory limit: a
        # runaway document costs its own source a recorded error, nothing more.
        # The function goes by name (_PARSE): this process never imports the
        # reading path (parser, language model), only the workers do.
        filing = TopicFiling(
            tuple(self.config.topics), source.name, self._source_topics.get(source.name, ()),
        ) if kind == "post" else None
        try:
            return await self.parser_pool.run(
                _PARSE, fetched.body, fetched.headers,
                fetched.final_url, kind, source.language, now, filing,
            )
        except ParseError:
            raise
        except AggregatorError as error:
            raise ParseError(str(error)) from error

    async def _record_error(
        self, source: SourceConfig, state: SourceState, error: AggregatorError,
        interval: timedelta, outcome: SourceOutcome,
    ) -> None:
        now = now_utc()
        # A fetch error carries the status it failed on; a parse error follows
        # the response the outcome already holds (a 200 that was no feed).
        status = getattr(error, "status", None) or outcome.http_status
        gone = status == 410
        when = None if gone else next_check_at(
            now=now, interval=interval, jitter=self.config.fetch.jitter, rng=self._rng,
            outcome="error", error_count=state.error_count + 1,
            retry_after=getattr(error, "retry_after", None),
        )
        await self._in_store_thread(
            self.store.record_source_error, state.id, now=now,
            message=str(error), status=status, next_check_at=when, gone=gone,
        )
        outcome.result = "gone" if gone else "error"
        outcome.http_status = status
        outcome.error = str(error)

    def _next_check(
        self, now: datetime, interval: timedelta, result: Literal["ok", "not_modified"],
        fetched: FetchResult, ttl: int | None,
    ) -> datetime | None:
        """When to fetch a source again after a successful fetch."""
        return next_check_at(
            now=now, interval=interval, jitter=self.config.fetch.jitter, rng=self._rng,
            outcome=result, error_count=0, retry_after=fetched.retry_after,
            fresh_for=fetched.fresh_for, ttl_minutes=ttl,
        )

    def _topics(self, title: str, text: str, categories: Sequence[str],
                language: str | None, source_name: str) -> tuple[str, ...]:
        """The topics a post belongs to under the current rules."""
        if self._matcher is None:
            from aggregator.topics import TopicMatcher

            self._matcher = TopicMatcher(self.config.topics)
        return self._matcher.classify(
            title=title, text=text, categories=categories, source_name=source_name,
            source_topics=self._source_topics.get(source_name, ()), language=language,
        )

    # ------------------------------------------------------------------ publishing

    def site_info(self, languages: Sequence[str] = ()) -> SiteInfo:
        return build_site_info(self.config, self.store, languages)

    def _adopt_topic_rules_if_empty(self) -> None:
        """An empty store takes the current topic rules as its own, so the
        posts this first pass files with them are not re-filed right after."""
        if self.store.get_meta("topic_rules") is None and not self.store.has_posts():
            self.store.set_meta("topic_rules", topic_rules_signature(self.config))

    def refile_topics_if_rules_changed(self) -> int:
        """Re-file every post when the topic rules in config.toml changed."""
        signature = topic_rules_signature(self.config)
        if self.store.get_meta("topic_rules") == signature:
            return 0
        changed = self.store.refile_topics(lambda post: self._topics(
            post.title, post.text, post.categories, post.language, post.source_name))
        self.store.set_meta("topic_rules", signature)
        return changed

    def prune(self) -> int:
        """Apply ``[aggregator] retention_days``; returns how many posts were removed."""
        days = self.config.aggregator.retention_days
        if not days:
            return 0
        removed = self.store.prune(published_before=now_utc() - timedelta(days=days))
        if removed:
            log.info("retention: removed %d post(s) published more than %d days ago",
                     removed, days)
        return removed

    def publish(self, *, all_archives: bool = False, archive_work: bool = True) -> list[Path]:
        """Write every output under feeds/; returns the files whose content changed.

        When another worker is publishing into the same directory right now,
        nothing is written here (it writes the same content anyway).
        Archive documents get :attr:`archive_budget` seconds, all the time
        they need with ``all_archives``, or none without ``archive_work``;
        :attr:`archives_pending` tells whether some wait for a later publish.
        """
        with self.store.publish_lock(self.config.aggregator.feeds_dir) as acquired:
            self.publish_skipped = not acquired
            if not acquired:
                log.info("another worker is publishing to %s; skipped",
                         self.config.aggregator.feeds_dir)
                return []
            self._archive_seconds = (None if all_archives else
                                     self.archive_budget if archive_work else 0.0)
            return self._publish()

    def _publish(self) -> list[Path]:
        feeds_dir = self.config.aggregator.feeds_dir
        changed_here = self.prune() + self.refile_topics_if_rules_changed()
        # Nothing new in the store and the same configuration as at the last
        # publish into this directory: the files already hold what we would write.
        signature = hashlib.sha256(repr((
            self.store.content_generation(), self.config.aggregator, self.config.topics,
            self.config.sources,
        )).encode()).hexdigest()
        # The mark lives in the directory it describes: machines sharing the
        # store each have their own feeds/, under the same path.
        mark = feeds_dir / ".published"
        if (not changed_here and _read_text(mark) == signature
                and all((feeds_dir / name).exists() for name in ("all.atom", "index.html"))):
            # Only archive documents left by an earlier publish may be due.
            self.archives_pending = self._archive_backlog()
            if self._archive_seconds == 0 or not self.archives_pending:
                return []
            return self._write_archives()
        changed = self._render_all()
        from aggregator.publish import write_if_changed

        # Entries left to number change the subscription documents next time:
        # that must not look like a finished publish. (Archive documents left
        # to write are in the render memo.)
        write_if_changed(mark, (signature + " numbering-pending" * self._numbering_pending)
                         .encode("ascii"))
        return changed

    def _archive_backlog(self) -> bool:
        """Archive documents the last publishes into feeds/ left unwritten."""
        from aggregator.publish import RenderMemo

        if self._render_memo is None:
            self._render_memo = RenderMemo.load(self.config.aggregator.feeds_dir)
        return any(state["missing"] for state in self._render_memo.archives.values())

    def _write_archives(self) -> list[Path]:
        """Write waiting archive documents, and nothing else, when nothing else changed."""
        from aggregator.publish import publish_archives

        assert self._render_memo is not None
        counts, more_to_number = self.store.number_archive_entries()
        known = {stem: state["closed"] for stem, state in self._render_memo.archives.items()}
        if more_to_number or any(archive_index.closed_blocks(count) != known.get(stem)
                                 for stem, count in counts.items()):
            return self._render_all()  # a block closed: the subscription documents change
        feeds_dir = self.config.aggregator.feeds_dir
        changed, waiting = publish_archives(
            feeds_dir, self.site_info(()), self._archived_feeds(counts, with_open=False),
            self._archive_block,
            memo=self._render_memo, budget_seconds=self._archive_seconds)
        self._render_memo.save(feeds_dir)
        self.archives_pending = waiting > 0
        log.info("wrote %d archive document(s) to %s; %d wait for the next publish",
                 len(changed), feeds_dir, waiting)
        return changed

    def _render_all(self) -> list[Path]:
        from aggregator.publish import RenderMemo, publish_all, publish_archives

        feeds_dir = self.config.aggregator.feeds_dir
        if self._render_memo is None:
            self._render_memo = RenderMemo.load(feeds_dir)
        counts, more_to_number = self.store.number_archive_entries()
        posts, comments, languages = self.store.published_entries(
            topics=[t.slug for t in self.config.topics], max_entries=MAX_FEED_ENTRIES,
        )
        archives = self._archived_feeds(counts)
        site = self.site_info(languages)
        changed = publish_all(
            feeds_dir, site, posts, comments,
            max_entries=MAX_FEED_ENTRIES, memo=self._render_memo, archives=archives,
        )
        written, waiting = publish_archives(
            feeds_dir, site, archives, self._archive_block, memo=self._render_memo,
            budget_seconds=self._archive_seconds,
        )
        changed += written
        self._render_memo.save(feeds_dir)
        self._numbering_pending = more_to_number
        self.archives_pending = more_to_number or waiting > 0
        if changed:
            log.info("published %d changed file(s) to %s", len(changed), feeds_dir)
        if self.archives_pending:
            log.info("%d archive document(s) wait for the next publish%s", waiting,
                     " (and entries to number)" if more_to_number else "")
        return changed

    def _archived_feeds(self, counts: dict[str, int], *,
                        with_open: bool = True) -> list[ArchivedFeed]:
        """Each archived feed with ``counts`` entries numbered; ``with_open``: and the
        entries of its open block (its subscription document needs them)."""
        from aggregator.publish import ArchivedFeed

        feeds = []
        for stem, count in counts.items():
            closed = archive_index.closed_blocks(count)
            first_open = closed * archive_index.BLOCK_SIZE
            open_entries = (self.store.archive_entries(stem, first_open, count - 1)
                            if with_open and count > first_open else [])
            feeds.append(ArchivedFeed(
                stem=stem, closed=closed, open_entries=tuple(open_entries),
                versions=self.store.archive_block_versions(stem)))
        return feeds

    def _archive_block(self, stem: str, block: int) -> list[PublishedEntry]:
        first, last = archive_index.block_bounds(block)
        return self.store.archive_entries(stem, first, last)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text("ascii")
    except (OSError, UnicodeDecodeError):
        return None


def topic_rules_signature(config: Config) -> str:
    """What the stored topics were filed under (meta "topic_rules"): the rules in config.toml."""
    return hashlib.sha256(repr((
        config.topics, [(s.name, s.topics) for s in config.sources],
    )).encode()).hexdigest()


def build_site_info(config: Config, store: Store, languages: Sequence[str] = ()) -> SiteInfo:
    """What every published feed says about this aggregator and its sources."""
    known = {info.name: info for info in store.sources_info()}
    sources = []
    for source in config.sources:
        stored = known.get(source.name)
        sources.append(SourceInfo(
            name=source.name, feed_url=stored.feed_url if stored else source.url,
            title=stored.title if stored else source.name,
            site_url=stored.site_url if stored else None,
            language=source.language, topics=source.topics, enabled=source.enabled,
        ))
    return SiteInfo(
        title=config.aggregator.title, base_url=config.aggregator.base_url,
        generator_version=__version__, updated=now_utc(),
        topics=tuple(TopicInfo(slug=t.slug, title=t.title) for t in config.topics),
        sources=tuple(sources), languages=tuple(languages),
    )


def make_parser_pool(workers: int | None = None) -> ParserPool:
    """Worker processes for parsing; ``workers=0`` parses in a thread (tests only)."""
    return ParserPool(workers, preload=("aggregator.reading",))


def _process_start(pid: int) -> str:
    """The start time of process ``pid`` (clock ticks since boot), or "" if unknown.

    Together with the pid it names one process for good: a pid reused after
    a crash has another start time.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # The command name (field 2) may hold spaces; fields after it are plain.
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


@functools.cache
def _pid_scope() -> str:
    """Where a pid names one process: this kernel boot and pid namespace ("" if unknown).

    Two machines (or containers) may share a host name; a pid seen from
    another boot or pid namespace says nothing about the process here.
    """
    parts = []
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text("ascii").strip())
    with contextlib.suppress(OSError):
        parts.append(os.readlink("/proc/self/ns/pid"))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12] if parts else ""


def worker_name() -> str:
    """This process as a lease owner: host, pid, process start time and pid scope."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}:{_pid_scope()}"


def owner_is_dead(owner: str) -> bool:
    """Is the lease holder a process on this machine that no longer runs?

    Holders on other machines (another host name, boot or pid namespace) are
    never judged here: their leases expire.
    """
    host, pid_text, started, scope = [*owner.split(":"), "", "", ""][:4]
    if host != socket.gethostname() or scope != _pid_scope() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    return bool(started) and _process_start(pid) not in ("", started)


class _DueQueue:
    """A pass's due sources by host, offered to claims a window at a time.

    A window holds at most ``each_host`` names of each host, hosts in turn, so
    one host with hundreds of sources never fills it while others wait; a
    host with no slot left goes to the back, one that just freed a slot here
    to the front. Names stay until a claim leases them or finds them gone
    (held by another worker, or no longer due).
    """

    def __init__(self, names: Iterable[str], host_of: Callable[[str], str]) -> None:
        self.host_of = host_of
        self._hosts: OrderedDict[str, deque[str]] = OrderedDict()
        for name in names:
            self._hosts.setdefault(host_of(name), deque()).append(name)

    def __bool__(self) -> bool:
        return bool(self._hosts)

    def hosts(self) -> int:
        return len(self._hosts)

    def offer(self, size: int, each_host: int) -> list[str]:
        offered: list[str] = []
        for names in self._hosts.values():
            offered.extend(itertools.islice(names, each_host))
            if len(offered) >= size:
                break
        return offered

    def settle(self, offered: Sequence[str], claim: Claim) -> None:
        waiting = set(claim.waiting)
        for name in offered:
            if name not in waiting:
                host = self.host_of(name)
                self._hosts[host].remove(name)
                if not self._hosts[host]:
                    del self._hosts[host]
        for host in claim.full_hosts:
            if host in self._hosts:
                self._hosts.move_to_end(host)

    def prefer(self, host: str) -> None:
        if host in self._hosts:
            self._hosts.move_to_end(host, last=False)


#: The response headers the parsers read besides the body: the media type and
#: charset, the base for relative links, the language.
_READ_HEADERS = ("content-type", "content-location", "content-language")


def _document_hash(fetched: FetchResult) -> str:
    """What a fetched document was read from: its bytes, and the URL and headers
    the parsers take into account.

    A body that comes back the same is not parsed again; with its headers in the
    hash, a fixed charset or media type (and the warning it caused) is.
    """
    digest = hashlib.sha256(fetched.body)
    for part in (fetched.final_url, *(fetched.headers.get(name, "") for name in _READ_HEADERS)):
        digest.update(b"\0" + part.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _same_document(fetched: FetchResult, body_hash: str, stored: str | None) -> bool:
    """Whether a fetched 200 is the document read last time (``stored``, its hash)."""
    if stored is None:
        return False
    if body_hash == stored:
        return True
    # A hash stored by an earlier version covers the bytes alone.
    return hashlib.sha256(fetched.body).hexdigest() == stored


def _own_site_comment_feeds(
    entries: list[NormalizedEntry], feed_url: str, site_url: str | None,
) -> list[NormalizedEntry]:
    """Drop comment-feed links that point away from the blog's own host."""
    kept = []
    for entry in entries:
        if entry.comments_feed_url and not same_site(entry.comments_feed_url, feed_url,
                                                     site_url):
            log.info("not following comment feed %s: not on the blog's own site (%s)",
                     entry.comments_feed_url, feed_url)
            entry = replace(entry, comments_feed_url=None)
        kept.append(entry)
    return kept


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _log_outcome(outcome: SourceOutcome) -> None:
    r = outcome.report
    if outcome.error:
        log.warning("source=%s result=%s status=%s error=%s seconds=%.2f", outcome.name,
                    outcome.result, outcome.http_status, outcome.error, outcome.seconds)
    else:
        log.info(
            "source=%s result=%s status=%s new_posts=%d updated_posts=%d merged=%d "
            "new_comments=%d comment_feeds=%d seconds=%.2f", outcome.name, outcome.result,
            outcome.http_status, r.new_posts, r.updated_posts, r.merged_posts,
            r.new_comments, outcome.comment_feeds, outcome.seconds,
        )
    if outcome.warning:
        # Read all the same; for whoever can tell the blog's owner.
        log.warning("source=%s feed warning: %s", outcome.name, outcome.warning)
