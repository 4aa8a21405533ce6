"""Storage adapter: the only module that talks SQL (through SQLModel/SQLAlchemy).

Everything written for one fetch happens in one transaction, validators
included, so a crash loses at most that fetch and the next run converges.
The methods are synchronous; the async pipeline calls them in a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    Integer,
    Text,
    bindparam,
    cast,
    event,
    func,
    insert,
    inspect,
    or_,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.schema import CreateTable
from sqlmodel import Session, SQLModel, col, create_engine, select
from sqlmodel.sql.sqltypes import UTCDateTime

from aggregator import archive_index, dedupe_index, topic_index
from aggregator.config import SourceConfig
from aggregator.dedupe import Copy, choose_canonical
from aggregator.errors import BlockedURLError, StorageError
from aggregator.netcheck import check_url
from aggregator.tables import (
    POSTS_ONLY,
    SCHEMA_VERSION,
    AppearanceRow,
    CommentFeedRow,
    EntryRow,
    MetaRow,
    SourceRow,
    driver_slot,
    driver_time,
    insert_rows,
)
from aggregator.topic_index import EntryTopicRow
from aggregator.types import (
    Appearance,
    FetchResult,
    NormalizedEntry,
    ParsedFeed,
    PublishedEntry,
    SourceInfo,
)

#: Namespace of the uuid5 entry ids: fixed forever, so ids never change.
ENTRY_ID_NAMESPACE = uuid.UUID("6f1c5a4e-2b7d-5e0a-9c43-61d1a8f0b2e7")
_NAMESPACE_BYTES = ENTRY_ID_NAMESPACE.bytes

#: pg_advisory_xact_lock key serializing schema creation across workers.
SCHEMA_LOCK_KEY = 0x61677273  # "agrs"
#: pg_advisory_xact_lock key serializing ingest transactions across workers.
INGEST_LOCK_KEY = 0x61677265  # "agre"
#: pg_advisory_xact_lock key serializing claims, so per-host counts hold across workers.
CLAIM_LOCK_KEY = 0x61677263  # "agrc"
#: pg_advisory_xact_lock key serializing the numbering of archived entries.
ARCHIVE_LOCK_KEY = 0x61677261  # "agra"
#: Most entries one publish numbers per archived feed: a store upgraded with a
#: million entries is numbered over several publishes, each staying short.
ARCHIVE_NUMBER_LIMIT = 50_000

TopicsFor = Callable[[NormalizedEntry], tuple[str, ...]]
#: One document's ingest, run inside a transaction it does not commit.
IngestJob = Callable[[Session], "IngestReport"]

log = logging.getLogger("aggregator.store")


def as_utc(moment: datetime | None) -> datetime | None:
    """``moment`` as aware UTC (naive means UTC): how times go into and come out of the store."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def key_hash(identity_key: str) -> str:
    return hashlib.sha256(identity_key.encode("utf-8", "surrogatepass")).hexdigest()


def entry_uid(source_url: str, kind: str, identity_key: str) -> str:
    """The published id of a new entry, derived from where it was first seen.

    Derived rather than random so that re-ingesting into a fresh database
    gives every entry the id it had before.
    """
    # uuid.uuid5(ENTRY_ID_NAMESPACE, name).hex, without building a UUID object
    # (a quarter of the time; a cold pass names some 36,000 entries on the writer's
    # thread).
    digest = bytearray(hashlib.sha1(
        _NAMESPACE_BYTES + f"{source_url}\n{kind}\n{identity_key}".encode(),
        usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return digest.hex()


def public_id(uid: str) -> str:
    return f"urn:uuid:{uuid.UUID(hex=uid)}"


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the fetcher needs to know about one claimed source."""

    id: int
    name: str
    #: The URL to fetch: the remembered move target, else the configured URL.
    fetch_url: str
    configured_url: str
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    error_count: int
    #: The comment feeds due as the source was claimed (with ``comments_days``
    #: given to :meth:`Store.claim_due`): still exact if its feed brings
    #: nothing new, since the lease keeps every other worker off them.
    comment_feeds_due: tuple[CommentFeedState, ...] | None = None


@dataclass(frozen=True, slots=True)
class CommentFeedState:
    id: int
    source_id: int
    url: str
    post_entry_id: int | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    declared_count: int | None


@dataclass(frozen=True, slots=True)
class Unchanged:
    """A source fetched with nothing new (304, or a body already seen), to record."""

    source_id: int
    now: datetime
    fetch: FetchResult
    next_check_at: datetime | None


@dataclass(slots=True)
class IngestReport:
    """Counts of what one ingest did."""

    new_posts: int = 0
    updated_posts: int = 0
    merged_posts: int = 0
    new_comments: int = 0
    updated_comments: int = 0
    #: Comments whose post we do not know (site-wide feeds only).
    orphan_comments: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            self.new_posts or self.updated_posts or self.merged_posts
            or self.new_comments or self.updated_comments
        )

    def add(self, other: IngestReport) -> None:
        self.new_posts += other.new_posts
        self.updated_posts += other.updated_posts
        self.merged_posts += other.merged_posts
        self.new_comments += other.new_comments
        self.updated_comments += other.updated_comments
        self.orphan_comments += other.orphan_comments


@dataclass(frozen=True, slots=True)
class StoredPost:
    """What topic rules look at in a stored post (for re-filing)."""

    title: str
    text: str
    categories: tuple[str, ...]
    language: str | None
    source_name: str


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """One row of `aggregator status`."""

    name: str
    url: str
    last_fetch_at: datetime | None
    last_success_at: datetime | None
    last_status: int | None
    last_error: str | None
    error_count: int
    failing_since: datetime | None
    next_check_at: datetime | None
    moved_to: str | None
    gone: bool
    posts: int
    comments: int
    #: What was wrong with the feed last read, though it was read.
    last_warning: str | None


#: SQLite's page cache per connection, in KiB (SQLite's default is 2,000).
SQLITE_CACHE_KIB = 8192


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the server read while a fetch writes; busy_timeout rides out
    # the short write locks of another process (fetch next to run).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # A cold pass's transactions each touch some 1,400 pages, most of them
    # index pages all over the dedupe-key B-tree. In SQLite's default 2 MB
    # cache they were read from the file again and again (8 GB of reads per
    # benchmark pass); 8 MB cut those reads to 3.4 GB. Statement journals (one per
    # multi-row INSERT inside a document's transaction) went to temporary
    # files, about 1.8 GB per pass; they live only as long as a statement.
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.execute("PRAGMA temp_store=MEMORY")
    # Checkpoints copy the log into the database and fsync it, on the writer's
    # thread: every 64 MB of log rather than every 4 MB (SQLite's default)
    # takes about 8 % off a cold pass; the log is cut back to that size after.
    cursor.execute("PRAGMA wal_autocheckpoint=16000")
    cursor.execute("PRAGMA journal_size_limit=67108864")
    cursor.close()


class Claim(list[SourceState]):
    """The sources one :meth:`Store.claim_due` leased, most overdue first.

    Of the other names offered, ``waiting`` are due and free but were not
    leased: their host had no slot left (``full_hosts``) or the limit was
    reached. The rest are held by another worker or no longer due.
    """

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[str] = []
        self.full_hosts: set[str] = set()


class Store:
    """The aggregator's database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        try:
            if self.is_sqlite:
                self.engine: Engine = create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": 30}
                )
                event.listen(self.engine, "connect", _sqlite_pragmas)
            else:
                self.engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
            self._migrate()
        except SQLAlchemyError as error:
            raise StorageError(
                f"cannot open the database {self.safe_url}: {_short(error)}; "
                "check [aggregator] database in config.toml (or $AGGREGATOR_DATABASE_URL)"
            ) from error
        # SQLite allows one writer; serializing our own writers avoids
        # busy-waiting on the file lock inside one process.
        self._write_lock = threading.Lock() if self.is_sqlite else _NoLock()
        #: Dedupe keys in dedupe_key_recent, as far as this process knows
        #: (None: not counted yet); see _note_filed_keys.
        self._recent_keys: int | None = None
        #: SQLite: which dedupe keys the store may hold, for the ingest sessions;
        #: PostgreSQL's workers file keys together, so there every key is looked up.
        self._key_filter = dedupe_index.KeyFilter.create() if self.is_sqlite else None

    def _ingest_session(self) -> Session:
        """A session for work that may file dedupe keys: it carries the key filter."""
        session = Session(self.engine)
        if self._key_filter is not None:
            session.info[dedupe_index.KeyFilter.SESSION_KEY] = self._key_filter
        return session

    @property
    def safe_url(self) -> str:
        """The URL without a password, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def release_idle_connections(self) -> None:
        """Close pooled SQLite connections nobody is using (they reopen on demand).

        Each keeps a page cache (up to 8 MB) and its prepared statements in
        this process: a daemon calls this between passes so that they do not
        sit in its RSS (about 20 MB at 10,000 sources). Connections checked
        out right now are closed when given back. PostgreSQL connections
        stay: closing them measured no gain.
        """
        if self.is_sqlite:
            self.engine.dispose()

    # ------------------------------------------------------------------ schema

    def _migrate(self) -> None:
        """Create the schema, or check the one present is one we understand."""
        if not self.is_sqlite:
            self._migrate_once()
            return
        # Processes opening a new file at once (a fetch and a serve worker)
        # race: both see no tables and both create them, and SQLite answers a
        # read transaction that must turn into a write while another process
        # writes with "database is locked" at once, without waiting. The
        # loser's next look finds the work done.
        for attempt in range(10):
            try:
                self._migrate_once()
                return
            except OperationalError as error:
                message = str(error)
                if attempt == 9 or not any(
                        part in message for part in ("already exists", "locked", "busy")):
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _migrate_once(self) -> None:
        if self.is_sqlite:
            SQLModel.metadata.create_all(self.engine)
        else:
            # Workers starting together would race to create the same tables
            # (and fail on PostgreSQL's catalog constraints): one at a time.
            with self.engine.begin() as connection:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": SCHEMA_LOCK_KEY})
                SQLModel.metadata.create_all(connection)
        with Session(self.engine) as session:
            row = session.get(MetaRow, "schema_version")
            if row is None:
                session.add(MetaRow(key="schema_version", value=str(SCHEMA_VERSION)))
                try:
                    session.commit()
                except IntegrityError:  # another process created it first
                    session.rollback()
            elif int(row.value) > SCHEMA_VERSION:
                raise StorageError(
                    f"the database has schema version {row.value}, newer than this "
                    f"aggregator understands ({SCHEMA_VERSION}); upgrade aggregator"
                )
            elif int(row.value) < SCHEMA_VERSION:
                session.close()
                self._upgrade()

    def _upgrade(self) -> None:
        """Bring an older store up to SCHEMA_VERSION, in one transaction.

        Workers starting together take turns (PostgreSQL: the schema advisory
        lock; SQLite: BEGIN IMMEDIATE, the single write lock); whoever comes
        second finds the new version and does nothing.
        """
        with self.engine.connect() as connection:
            try:
                if self.is_sqlite:
                    # The upgrade sorts millions of rows (the dedupe keys of a big
                    # store). In memory (temp_store=MEMORY, every connection's
                    # setting) a 1,000,000-entry store's took 1.4 GB; in temporary
                    # files, a few MB of SQLite's cache. Not changeable inside a
                    # transaction: set before it, reset after.
                    connection.exec_driver_sql("PRAGMA temp_store=FILE")
                    connection.commit()
                    _begin_immediate(connection)
                else:
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                       {"key": SCHEMA_LOCK_KEY})
                version = int(connection.execute(
                    select(MetaRow.value).where(MetaRow.key == "schema_version")).scalar_one())
                if version >= SCHEMA_VERSION:
                    connection.rollback()
                    return
                log.info("upgrading the database schema from version %d to %d; with many "
                         "entries this takes a while", version, SCHEMA_VERSION)
                if version < 2:
                    # The entry_topic table itself came with create_all; indexes
                    # on tables that already existed did not.
                    connection.execute(text("DROP INDEX IF EXISTS ix_entry_kind_published"))
                    for index in EntryRow.__table__.indexes:  # type: ignore[attr-defined]
                        index.create(connection, checkfirst=True)
                    added = topic_index.backfill(connection)
                    log.info("filed %d topic row(s) of stored posts", added)
                # 3: dedupe_key_recent is a new table, which create_all made; the
                # keys already in dedupe_key stay there.
                # 4: source.last_warning; a store only relabelled older has it already.
                if version < 4 and "last_warning" not in {
                        column["name"] for column in inspect(connection).get_columns("source")}:
                    connection.execute(text("ALTER TABLE source ADD COLUMN last_warning TEXT"))
                if version < 5:
                    _key_ordered_dedupe_keys(connection)
                    # Canonical URLs and fingerprints: indexed for posts alone.
                    for index in EntryRow.__table__.indexes:  # type: ignore[attr-defined]
                        if index.name in ("ix_entry_canonical_url", "ix_entry_fingerprint"):
                            connection.execute(text(f"DROP INDEX IF EXISTS {index.name}"))
                            index.create(connection)
                connection.execute(update(MetaRow).where(MetaRow.key == "schema_version")
                                   .values(value=str(SCHEMA_VERSION)))
                connection.commit()
            finally:
                if self.is_sqlite:
                    connection.rollback()
                    connection.exec_driver_sql("PRAGMA temp_store=MEMORY")
                    connection.commit()

    def ping(self) -> bool:
        """Is the database answering? Cheap enough for every /healthz request."""
        with self.engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar() == 1

    def integrity_ok(self) -> bool:
        with self.engine.connect() as connection:
            if self.is_sqlite:
                return connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            connection.execute(text("SELECT 1"))
            return True

    def get_meta(self, key: str) -> str | None:
        with Session(self.engine) as session:
            row = session.get(MetaRow, key)
            return row.value if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._write_lock, Session(self.engine) as session:
            row = session.get(MetaRow, key)
            if row is None:
                session.add(MetaRow(key=key, value=value))
            else:
                row.value = value
                session.add(row)
            session.commit()

    @staticmethod
    @contextlib.contextmanager
    def publish_lock(feeds_dir: Path) -> Iterator[bool]:
        """Hold the right to publish into ``feeds_dir``; yields False if another has it.

        Several workers may share one store; exactly one of them writes a
        given feeds directory at a time. The lock is an flock on a file in
        that directory, not a database lock: machines sharing one database
        each have their own feeds/ (under the same path, as they share one
        config.toml), and each must be kept up to date. Workers writing one
        network directory (NFSv4 locks) also take turns.
        """
        feeds_dir.mkdir(parents=True, exist_ok=True)
        with open(feeds_dir / ".publish.lock", "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def content_generation(self) -> int:
        """A counter bumped whenever fetched content changed (any worker)."""
        return int(self.get_meta("content_generation") or 0)

    def has_posts(self) -> bool:
        with Session(self.engine) as session:
            return session.exec(select(EntryRow.id).where(
                EntryRow.kind == "post").limit(1)).first() is not None

    def bump_content_generation(self) -> None:
        with self._write_lock, Session(self.engine) as session:
            updated = session.execute(
                update(MetaRow).where(MetaRow.key == "content_generation")
                .values(value=cast(cast(MetaRow.value, Integer) + 1, Text)))
            if updated.rowcount == 0:  # type: ignore[attr-defined]
                session.add(MetaRow(key="content_generation", value="1"))
            try:
                session.commit()
            except IntegrityError:  # another worker created it first; theirs counts
                session.rollback()

    # ------------------------------------------------------------------ sources

    def sync_sources(self, sources: Sequence[SourceConfig], now: datetime) -> None:
        """Make the source table follow config.toml (which is the source of truth).

        New sources are due at once; a changed URL forgets validators and moves.
        Rows of removed sources stay (their entries are still published).
        """
        now_n = as_utc(now)
        with self._write_lock, Session(self.engine) as session:
            # Names and URLs only: every pass asks, and with thousands of
            # sources whole ORM rows would cost tens of MB for a moment.
            urls = dict(session.exec(select(SourceRow.name, SourceRow.url)).all())
            for source in sources:
                if source.name not in urls:
                    session.add(SourceRow(
                        name=source.name, url=source.url, language=source.language,
                        next_check_at=now_n, created_at=now_n,
                    ))
                elif urls[source.name] != source.url:
                    row = session.exec(select(SourceRow).where(
                        SourceRow.name == source.name)).one()
                    row.url = source.url
                    row.moved_to = None
                    row.redirect_candidate = None
                    row.redirect_count = 0
                    row.etag = row.last_modified = row.body_hash = None
                    row.gone = False
                    row.error_count = 0
                    row.failing_since = None
                    row.next_check_at = now_n
                    session.add(row)
            try:
                session.commit()
            except IntegrityError:  # another worker inserted the same source
                session.rollback()

    def due_names(self, *, now: datetime, names: Iterable[str], force: bool = False) -> list[str]:
        """The sources among ``names`` that are due (all with ``force``), most overdue first."""
        wanted = list(names)
        if not wanted:
            return []
        with Session(self.engine) as session:
            query = select(SourceRow.name).where(
                col(SourceRow.name).in_(wanted), SourceRow.gone == False)  # noqa: E712
            if not force:
                query = query.where(or_(
                    col(SourceRow.next_check_at).is_(None),
                    col(SourceRow.next_check_at) <= as_utc(now),
                ))
            return list(session.exec(query.order_by(col(SourceRow.next_check_at))))

    def claim_due(
        self,
        *,
        now: datetime,
        owner: str,
        lease: timedelta,
        names: Iterable[str],
        force: bool = False,
        stale_owner: Callable[[str], bool] | None = None,
        per_host: int | None = None,
        per_host_alone: int | None = None,
        limit: int | None = None,
        shared_limit: int | None = None,
        comments_days: int | None = None,
        release: Sequence[int] = (),
        unchanged: Sequence[Unchanged] = (),
    ) -> Claim:
        """Lease the due sources among ``names`` (or all of them with ``force``).

        A lease keeps other workers off a source while one worker fetches it
        and its comment feeds, until :meth:`release`; it expires by itself
        if the worker dies (and stops calling :meth:`renew`), and is never
        taken from its holder before that unless ``stale_owner`` says the
        holder is dead (a killed process on this machine).

        With ``per_host``, a source is not leased while its host
        (:func:`host_slot`) has that many live leases, whoever holds them,
        so the limit holds across workers; on PostgreSQL claims are
        serialized by an advisory lock held until this short transaction
        ends, so two workers never both see the same free slot. While this
        owner holds the only live leases there are, it may hold up to
        ``per_host_alone`` of a host's (its fetcher still sends at most
        ``per_host`` requests at once): the sources it parses and stores
        meanwhile are no requests. Once another worker holds a lease, every
        worker keeps to ``per_host`` again, and this owner to ``shared_limit``
        leases in all (its requests at once), so that workers share the
        sources; none reaches a host until its total is below ``per_host``.
        At most ``limit`` sources are leased. With ``comments_days``, each claimed
        source also comes with its due comment feeds (:meth:`comment_feeds_due`),
        read in the same transaction.

        ``release`` and ``unchanged``: what :meth:`release` takes, done first in
        the same transaction (a worker hands back finished sources and takes
        new ones in one commit).
        """
        now_n = as_utc(now)
        claim = Claim()
        wanted = list(names)
        if not wanted or (limit is not None and limit < 1):
            if release or unchanged:
                self.release(release, owner, unchanged=unchanged)
            return claim
        # Core statements on the few columns needed, built once (see
        # _claim_query): a worker claims every few sources, and loading and
        # flushing ORM rows cost five times the SQL.
        with self._write_lock, Session(self.engine) as session:
            connection = session.connection()
            if not self.is_sqlite:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": CLAIM_LOCK_KEY})
            self._release_in(session, release, owner, unchanged)
            # Live leases per host, those of dead holders aside.
            busy: dict[str, int] = {}
            alone = True  # no other live worker holds a lease
            mine = 0
            dead: dict[str, bool] = {}
            for url, moved_to, holder in connection.execute(_LIVE_LEASES, {"now": now_n}):
                if holder and holder != owner and stale_owner is not None:
                    if holder not in dead:
                        dead[holder] = stale_owner(holder)
                    if dead[holder]:
                        continue
                slot = host_slot(moved_to or url)
                busy[slot] = busy.get(slot, 0) + 1
                if holder != owner:
                    alone = False
                else:
                    mine += 1
            dead_holders = [holder for holder, is_dead in dead.items() if is_dead]
            query = _claim_query(force=force, with_dead=bool(dead_holders),
                                 for_update=not self.is_sqlite)
            host_limit = max(per_host, per_host_alone or 0) if (
                alone and per_host is not None) else per_host
            if not alone and shared_limit is not None:
                room = max(0, shared_limit - mine)
                limit = room if limit is None else min(limit, room)
            parameters: dict[str, Any] = {"names": wanted, "now": now_n, "owner": owner}
            if dead_holders:
                parameters["dead"] = dead_holders
            for row in connection.execute(query, parameters):
                slot = host_slot(row.moved_to or row.url)
                # Our own live lease is already counted in busy.
                renewing = (row.lease_owner == owner and row.lease_until is not None
                            and as_utc(row.lease_until) >= now_n)
                if limit is not None and len(claim) >= limit:
                    claim.waiting.append(row.name)
                    continue
                if host_limit is not None and not renewing and busy.get(slot, 0) >= host_limit:
                    claim.waiting.append(row.name)
                    claim.full_hosts.add(slot)
                    continue
                if not renewing:
                    busy[slot] = busy.get(slot, 0) + 1
                claim.append(_source_state(row))
            if claim:
                connection.execute(_TAKE_LEASES, {"ids": [state.id for state in claim],
                                                  "owner": owner, "until": as_utc(now + lease)})
            if comments_days is not None and claim:
                due = _due_comment_feeds(session, [state.id for state in claim],
                                         as_utc(now - timedelta(days=comments_days)))
                claim[:] = [replace(state, comment_feeds_due=tuple(due.get(state.id, ())))
                            for state in claim]
            session.commit()
        return claim

    def release(self, source_ids: int | Iterable[int], owner: str, *,
                unchanged: Sequence[Unchanged] = ()) -> None:
        """Hand back ``owner``'s leases on these sources: it is done with them.

        ``unchanged``: 304s (or bodies already seen) of these sources, recorded
        in the same transaction, before the leases go: one transaction for a
        batch of sources on a warm pass, and no moment where another worker
        sees a source free but not yet rescheduled.
        """
        ids = [source_ids] if isinstance(source_ids, int) else sorted(source_ids)
        if not ids and not unchanged:
            return
        with self._write_lock, Session(self.engine) as session:
            self._release_in(session, ids, owner, unchanged)
            session.commit()

    @staticmethod
    def _release_in(session: Session, source_ids: int | Iterable[int], owner: str,
                    unchanged: Sequence[Unchanged]) -> None:
        _record_unchanged(session, unchanged)
        ids = [source_ids] if isinstance(source_ids, int) else sorted(source_ids)
        if ids:  # Core: the ORM's bulk update path costs more than the statement
            session.connection().execute(_RELEASE, {"ids": ids, "owner": owner})

    def renew(self, source_ids: Iterable[int], owner: str, *, until: datetime) -> None:
        """Extend ``owner``'s leases on these sources: it is still working on them."""
        ids = sorted(source_ids)
        if not ids:
            return
        with self._write_lock, Session(self.engine) as session:
            session.execute(update(SourceRow).where(
                col(SourceRow.id).in_(ids), col(SourceRow.lease_owner) == owner,
            ).values(lease_until=as_utc(until)))
            session.commit()

    def record_source_error(
        self,
        source_id: int,
        *,
        now: datetime,
        message: str,
        status: int | None,
        next_check_at: datetime | None,
        gone: bool = False,
    ) -> int:
        """Record a failed fetch; returns the error count."""
        now_n = as_utc(now)
        with self._write_lock, Session(self.engine) as session:
            row = session.get(SourceRow, source_id)
            if row is None:
                return 0
            row.last_fetch_at = now_n
            row.last_status = status
            row.last_error = message[:2000]
            row.error_count += 1
            if row.failing_since is None:
                row.failing_since = now_n
            row.gone = gone
            row.next_check_at = as_utc(next_check_at)
            session.add(row)
            session.commit()
            return row.error_count

    # ------------------------------------------------------------------ ingest

    def ingest_source_feed(self, source: SourceState, **details: Any) -> IngestReport:
        """Store one fetched post feed: entries, validators and schedule, atomically.

        Takes what :meth:`source_feed_job` takes, and runs that job in a
        transaction of its own.
        """
        return self._retrying(self.source_feed_job(source, **details))

    def source_feed_job(
        self,
        source: SourceState,
        *,
        now: datetime,
        fetch: FetchResult,
        feed: ParsedFeed,
        entries: Sequence[NormalizedEntry],
        topics_for: TopicsFor,
        follow_comments: bool,
        site_comments_url: str | None,
        next_check_at: datetime | None,
        body_hash: str,
    ) -> IngestJob:
        """One fetched post feed to store (entries, validators and schedule), as a job
        for :meth:`ingest_batch` or, through :meth:`ingest_source_feed`, on its own."""
        return lambda session: self._ingest_source_feed(
            session, source, now=as_utc(now), fetch=fetch, feed=feed,
            entries=entries, topics_for=topics_for, follow_comments=follow_comments,
            site_comments_url=site_comments_url, next_check_at=as_utc(next_check_at),
            body_hash=body_hash,
        )

    def _ingest_source_feed(
        self, session: Session, source: SourceState, *, now: datetime | None,
        fetch: FetchResult, feed: ParsedFeed, entries: Sequence[NormalizedEntry],
        topics_for: TopicsFor, follow_comments: bool, site_comments_url: str | None,
        next_check_at: datetime | None, body_hash: str,
    ) -> IngestReport:
        assert now is not None
        row = _SourceWrite.load(session, source.id)
        if row is None:
            return IngestReport()
        # The blog's own site must be known before its entries are weighed
        # against copies elsewhere (choose_canonical prefers on-site links).
        row.title = feed.title or row.title
        row.site_url = feed.link or row.site_url
        row.language = feed.language or row.language
        report = IngestReport()
        posts = [(key_hash(entry.identity_key), entry) for entry in entries
                 if entry.kind == "post"]
        known = self._known_appearances(session, row.id, "post", [h for h, _ in posts])
        seen: set[str] = set()
        # Appearances and comment feeds are written once per document, in bulk:
        # nothing later in the same document looks them up.
        writes = _DocumentWrites(follow_comments)
        # Which of the new posts' lookup keys the store holds at all: a post
        # with none of them has nothing to be a copy of (yet; see may_have_copy).
        writes.present = dedupe_index.marks_present(session, {
            mark for khash, entry in posts if khash not in known
            for mark in writes.marks_of(entry)})
        for khash, entry in posts:
            if khash in seen:  # the same GUID twice in one document: first wins
                continue
            seen.add(khash)
            entry_id = self._upsert_post(session, row, entry, khash, fetch.final_url,
                                         topics_for, now, report, known.get(khash), writes)
            if entry_id is not None:
                writes.comment_feed_of(entry, entry_id)
        writes.flush(session)
        if follow_comments and site_comments_url:
            writes.comment_feeds.setdefault(site_comments_url, (None, None))
        insert_rows(session, _APPEARANCE, writes.appearances)
        topic_index.replace_topics(session, writes.filed, new=True)
        self._upsert_comment_feeds(session, row.id, writes.comment_feeds, now)  # type: ignore[arg-type]
        row.body_hash = body_hash
        # Kept while the body is unchanged (a 304 or the same bytes), which
        # is not parsed again.
        row.last_warning = feed.warning
        _record_success(row, fetch, now)
        # The source stays leased: the lease covers its comment feeds too, and
        # the worker releases it when it is done with both (Store.release).
        row.next_check_at = next_check_at
        row.write(session)
        return report

    @staticmethod
    def _known_appearances(
        session: Session, source_id: int | None, kind: str, hashes: Sequence[str],
    ) -> dict[str, AppearanceRow]:
        """This source's appearances among ``hashes``, in one query per 500.

        Which of them exist is asked through the driver first: on a cold pass
        none does, and SQLAlchemy compiling an ORM select with an IN of a
        whole document's hashes cost more than the query. Rows are loaded
        only for the hashes found.
        """
        connection = session.connection()
        slot = driver_slot(connection)
        found: list[int] = []
        for chunk in _chunks(sorted(set(hashes)), 500):
            found.extend(row_id for (row_id,) in connection.exec_driver_sql(
                f"SELECT id FROM appearance WHERE source_id = {slot} AND kind = {slot} "
                f"AND key_hash IN ({', '.join([slot] * len(chunk))})",
                (source_id, kind, *chunk)))
        known: dict[str, AppearanceRow] = {}
        for chunk in _chunks(found, 500):
            for appearance in session.exec(select(AppearanceRow).where(
                    col(AppearanceRow.id).in_(chunk))):
                known[appearance.key_hash] = appearance
        return known

    def _upsert_post(
        self, session: Session, source: _SourceWrite, entry: NormalizedEntry, khash: str,
        feed_url: str, topics_for: TopicsFor, now: datetime, report: IngestReport,
        appearance: AppearanceRow | None, writes: _DocumentWrites,
    ) -> int | None:
        """Store one post of a source's feed; returns the canonical entry's id.

        A new appearance goes into ``writes``, for the caller to insert in
        bulk. So does a post new to the store (and None is returned): new
        posts are inserted together when the document is done.
        """
        if appearance is not None:
            entry_row = session.get(EntryRow, appearance.entry_id)
            assert entry_row is not None and entry_row.id is not None
            if entry_row.pruned:  # retention removed it: it stays removed
                return entry_row.id
            if appearance.content_hash != entry.content_hash:
                appearance.content_hash = entry.content_hash
                appearance.link = entry.link
                session.add(appearance)
                # Only the canonical copy's own source may rewrite the entry;
                # a copy elsewhere changing does not change what we publish.
                if entry_row.source_id == source.id:
                    topics = topics_for(entry)
                    _apply_entry(entry_row, entry, topics, now, updated=True)
                    session.add(entry_row)
                    topic_index.replace_topics(
                        session, [(entry_row.id, entry_row.published, topics)])
                    # An edit adds its keys; it never splits a merged group.
                    dedupe_index.index_post(session, entry_row.id, entry)
                    report.updated_posts += 1
            return entry_row.id

        if writes.may_match(entry):
            # It may be a copy of a post still pending in ``writes``: the
            # lookup below must see that post in the database.
            writes.flush(session)
        match = dedupe_index.find_duplicate(session, entry, source_id=source.id) if (
            writes.may_have_copy(entry)) else None
        existing = match.entry if match is not None else None
        if existing is not None:
            assert existing.id is not None
            report.merged_posts += 1
            entry_id = existing.id
            # The earliest original is what we publish, whichever copy we
            # happened to fetch first; the published id never changes.
            # This document's own source as set so far (its site may be new).
            current = source if existing.source_id == source.id else session.get(
                SourceRow, existing.source_id)
            copies = [
                Copy(as_utc(existing.published), existing.link,  # type: ignore[arg-type]
                     (current.site_url, current.url) if current else (),
                     as_utc(existing.first_seen)),
                Copy(as_utc(entry.published), entry.link,  # type: ignore[arg-type]
                     (source.site_url, source.url), now),
            ]
            if choose_canonical(copies) == 1:
                existing.source_id = source.id  # type: ignore[assignment]
                topics = topics_for(entry)
                _apply_entry(existing, entry, topics, now, updated=False)
                session.add(existing)
                topic_index.replace_topics(session, [(existing.id, existing.published, topics)])
            dedupe_index.index_post(session, existing.id, entry)
        else:
            # A Core insert: the ORM's unit of work costs several times the
            # statement itself, and cold passes insert thousands of posts.
            topics = topics_for(entry)
            values = _new_entry_values(entry, topics, now)
            values.update(uid=entry_uid(source.url, "post", entry.identity_key), kind="post",
                          source_id=source.id, first_seen=now)
            writes.add(entry, values, topics, {
                "source_id": source.id, "kind": "post", "key_hash": khash,
                "identity_key": entry.identity_key, "original_id": entry.original_id,
                "feed_url": feed_url, "link": entry.link, "published": as_utc(entry.published),
                "content_hash": entry.content_hash, "first_seen": now,
            })
            report.new_posts += 1
            return None
        writes.appearances.append({
            "entry_id": entry_id, "source_id": source.id, "kind": "post", "key_hash": khash,
            "identity_key": entry.identity_key, "original_id": entry.original_id,
            "feed_url": feed_url, "link": entry.link, "published": as_utc(entry.published),
            "content_hash": entry.content_hash, "first_seen": now,
        })
        return entry_id

    def _upsert_comment_feeds(
        self, session: Session, source_id: int,
        feeds: dict[str, tuple[int | None, int | None]], now: datetime,
    ) -> None:
        """Remember the comment feeds a document named: url → (post entry id, declared count)."""
        if not feeds:
            return
        existing: dict[str, CommentFeedRow] = {}
        connection = session.connection()
        slot = driver_slot(connection)
        for chunk in _chunks(list(feeds), 500):
            # Which exist, through the driver (on a cold pass none does); rows
            # are loaded only for those.
            found = [row_id for (row_id,) in connection.exec_driver_sql(
                f"SELECT id FROM comment_feed WHERE source_id = {slot} "
                f"AND url IN ({', '.join([slot] * len(chunk))})", (source_id, *chunk))]
            if found:
                for row in session.exec(select(CommentFeedRow).where(
                        col(CommentFeedRow.id).in_(found))):
                    existing[row.url] = row
        new = []
        for url, (post_entry_id, declared_count) in feeds.items():
            row = existing.get(url)
            if row is None:
                new.append({
                    "source_id": source_id, "url": url, "post_entry_id": post_entry_id,
                    "etag": None, "last_modified": None, "body_hash": None,
                    "post_first_seen": now if post_entry_id else None,
                    "declared_count": declared_count, "fetched_for_count": None,
                    "last_fetch_at": None, "last_status": None, "last_error": None,
                    "error_count": 0, "created_at": now,
                })
            elif row.declared_count != declared_count:
                row.declared_count = declared_count
                session.add(row)
        insert_rows(session, _COMMENT_FEED, new)

    def comment_feeds_due(
        self, source_id: int, *, now: datetime, comments_days: int,
    ) -> list[CommentFeedState]:
        """Comment feeds worth fetching now.

        A post's feed is followed while we first saw the post within
        ``comments_days``, and only when its declared count changed since the
        last fetch or it declares no count; never while it declares 0 comments.
        The site-wide feed is always due.
        """
        horizon = as_utc(now - timedelta(days=comments_days))
        with Session(self.engine) as session:
            return _due_comment_feeds(session, [source_id], horizon).get(source_id, [])

    def ingest_comment_feed(self, feed_state: CommentFeedState, **details: Any) -> IngestReport:
        """Store one fetched comment feed (entries None: unchanged, 304).

        Takes what :meth:`comment_feed_job` takes, and runs that job in a
        transaction of its own.
        """
        return self._retrying(self.comment_feed_job(feed_state, **details))

    def comment_feed_job(
        self,
        feed_state: CommentFeedState,
        *,
        now: datetime,
        fetch: FetchResult,
        entries: Sequence[NormalizedEntry] | None,
        body_hash: str | None,
    ) -> IngestJob:
        """One fetched comment feed to store (``entries`` None: unchanged, 304), as a job
        for :meth:`ingest_batch` or, through :meth:`ingest_comment_feed`, on its own."""
        return lambda session: self._ingest_comment_feed(
            session, feed_state, now=as_utc(now), fetch=fetch, entries=entries,
            body_hash=body_hash,
        )

    def ingest_batch(self, jobs: Sequence[IngestJob]) -> list[IngestReport | Exception]:
        """Run several ingest jobs in one transaction; each one's report, or its error.

        One commit for many documents: a commit writes every page the
        transaction changed, and the documents of a cold pass change mostly
        the same index pages (their dedupe keys land all over one B-tree), so
        a batch of ten costs about half as much to commit as ten commits.
        Should any job fail, the batch is rolled back and every job runs
        again in its own transaction, so one bad document fails alone.
        """
        if len(jobs) > 1:
            with self._write_lock, self._ingest_session() as session:
                reports: list[IngestReport | Exception] | None = None
                try:
                    self._lock_ingest(session)
                    reports = [job(session) for job in jobs]
                    session.commit()
                except Exception:
                    session.rollback()
                    reports = None
                filed = session.info.pop("recent_keys", 0)
            if reports is not None:
                self._note_filed_keys(filed)
                return reports
        results: list[IngestReport | Exception] = []
        for job in jobs:
            try:
                results.append(self._retrying(job))
            except Exception as error:
                results.append(error)
        return results

    def _ingest_comment_feed(
        self, session: Session, feed_state: CommentFeedState, *, now: datetime | None,
        fetch: FetchResult, entries: Sequence[NormalizedEntry] | None, body_hash: str | None,
    ) -> IngestReport:
        assert now is not None
        report = IngestReport()
        # The few columns needed, in one statement through the driver: thousands
        # of comment feeds go through here in a cold pass, and three ORM loads,
        # or SQLAlchemy compiling and binding one, cost more than running it.
        # Pending ORM changes go first, as Session.execute would flush them
        # (a post feed's new declared count, which the update below copies).
        session.flush()
        connection = session.connection()
        slot = driver_slot(connection)
        found = connection.exec_driver_sql(
            _COMMENT_FEED_CONTEXT.format(slot=slot), (feed_state.id,)).first()
        if found is None:
            return report
        source = _SourceRef(found[0], found[1])
        post = _PostRef(found[2], bool(found[3])) if found[2] is not None else None
        comments = [(key_hash(entry.identity_key), entry) for entry in entries or ()]
        known = self._known_appearances(session, source.id, "comment", [h for h, _ in comments])
        seen: set[str] = set()
        appearances: list[dict[str, Any]] = []  # of new_comments, in the same order
        new_comments: list[dict[str, Any]] = []
        replies: list[tuple[int, int | None, str]] = []  # (comment id, post id, ref)
        for khash, entry in comments:
            if khash in seen:
                continue
            seen.add(khash)
            appearance = known.get(khash)
            if appearance is not None:
                if appearance.content_hash != entry.content_hash:
                    comment = session.get(EntryRow, appearance.entry_id)
                    assert comment is not None
                    if comment.pruned:
                        continue
                    appearance.content_hash = entry.content_hash
                    session.add(appearance)
                    _apply_entry(comment, entry, (), now, updated=True)
                    session.add(comment)
                    report.updated_comments += 1
                continue
            thread_post = post or self._post_for_site_comment(session, source, entry)
            if thread_post is None:
                report.orphan_comments += 1
                continue
            if thread_post.pruned:
                continue
            values = _new_entry_values(entry, (), now)
            values.update(
                uid=entry_uid(source.url, "comment", entry.identity_key), kind="comment",
                source_id=source.id, post_id=thread_post.id, parent_id=thread_post.id,
                in_reply_to_ref=entry.in_reply_to, in_reply_to_link=entry.in_reply_to_link,
                first_seen=now,
            )
            new_comments.append(values)
            appearances.append({
                "source_id": source.id, "kind": "comment",
                "key_hash": khash, "identity_key": entry.identity_key,
                "original_id": entry.original_id, "feed_url": fetch.final_url,
                "link": entry.link, "published": as_utc(entry.published),
                "content_hash": entry.content_hash, "first_seen": now,
            })
            report.new_comments += 1
        if new_comments:  # one insert of many rows; ids come back in row order
            ids = _insert_entries(session, new_comments)
            for comment_id, values, appearance in zip(ids, new_comments, appearances,
                                                      strict=True):
                appearance["entry_id"] = comment_id
                if values["in_reply_to_ref"]:
                    replies.append((comment_id, values["post_id"], values["in_reply_to_ref"]))
        insert_rows(session, _APPEARANCE, appearances)
        self._resolve_parents(session, source.id, replies)  # type: ignore[arg-type]
        connection.exec_driver_sql(_COMMENT_FEED_READ.format(slot=slot), (
            fetch.validators.etag, fetch.validators.last_modified, driver_time(connection, now),
            fetch.status, body_hash, feed_state.id))
        return report

    def _post_for_site_comment(
        self, session: Session, source: _SourceRef, entry: NormalizedEntry,
    ) -> EntryRow | None:
        """The post a comment from a site-wide comment feed belongs to."""
        if entry.in_reply_to:
            appearance = session.exec(select(AppearanceRow).where(
                AppearanceRow.source_id == source.id,
                AppearanceRow.key_hash == key_hash("guid:" + entry.in_reply_to),
            )).first()
            if appearance is not None:
                target = session.get(EntryRow, appearance.entry_id)
                if target is not None:
                    return target if target.kind == "post" else session.get(
                        EntryRow, target.post_id)
        from aggregator.urls import canonical_url

        for link in (entry.in_reply_to_link, entry.link):
            canonical = canonical_url(link.split("#", 1)[0]) if link else None
            if canonical:
                post = session.exec(select(EntryRow).where(
                    POSTS_ONLY, EntryRow.canonical_url == canonical,
                )).first()
                if post is not None:
                    return post
        return None

    @staticmethod
    def _resolve_parents(
        session: Session, source_id: int, replies: Sequence[tuple[int, int | None, str]],
    ) -> None:
        """Point replies at the comments they answer (RFC 4685 thr:in-reply-to).

        ``replies``: (comment id, its post's id, the id it answers as the feed
        stated it). A reply whose parent is unknown, or under another post,
        stays a reply to the post.
        """
        if not replies:
            return
        hashes = {ref: key_hash("guid:" + ref) for _, _, ref in replies}
        targets = {a.key_hash: a.entry_id for a in Store._known_appearances(
            session, source_id, "comment", list(set(hashes.values()))).values()}
        posts_of = dict(session.execute(select(EntryRow.id, EntryRow.post_id).where(
            col(EntryRow.id).in_(set(targets.values())))).all()) if targets else {}
        updates = []
        for comment_id, post_id, ref in replies:
            parent_id = targets.get(hashes[ref])
            if parent_id is not None and parent_id != comment_id \
                    and posts_of.get(parent_id) == post_id:
                updates.append({"comment_id": comment_id, "parent": parent_id})
        if updates:
            # On the table, not the mapped class: an executemany UPDATE by a
            # bound id, not the ORM's bulk update by primary key.
            table = _ENTRY
            session.execute(
                update(table).where(table.c.id == bindparam("comment_id"))  # type: ignore[attr-defined]
                .values(parent_id=bindparam("parent")), updates)

    def record_comment_feed_error(
        self, feed_state: CommentFeedState, *, now: datetime, message: str, status: int | None,
    ) -> None:
        with self._write_lock, Session(self.engine) as session:
            row = session.get(CommentFeedRow, feed_state.id)
            if row is None:
                return
            row.last_fetch_at = as_utc(now)
            row.last_status = status
            row.last_error = message[:2000]
            row.error_count += 1
            session.add(row)
            session.commit()

    def _lock_ingest(self, session: Session) -> None:
        if not self.is_sqlite:
            # Dedupe decisions read then write: two workers must not both find
            # "no duplicate" for one article. SQLite gets this from its single
            # writer; PostgreSQL from this lock, held until the transaction ends.
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                            {"key": INGEST_LOCK_KEY})

    def _retrying(self, work: Callable[[Session], IngestReport]) -> IngestReport:
        """Run one ingest transaction; retry once when a concurrent worker won a race."""
        for attempt in range(3):
            with self._write_lock, self._ingest_session() as session:
                try:
                    self._lock_ingest(session)
                    report = work(session)
                    session.commit()
                except (IntegrityError, OperationalError):
                    session.rollback()
                    if attempt == 2:
                        raise
                    continue
                filed = session.info.pop("recent_keys", 0)
            self._note_filed_keys(filed)
            return report
        raise AssertionError("unreachable")

    def _note_filed_keys(self, filed: int) -> None:
        """After an ingest commit: count the *filed* dedupe keys, and merge the
        recent keys once enough have gathered.

        Counted per process, from what this process filed (and, the first
        time, what the table holds): several workers each merge on their own
        count, and the recent table stays small either way.
        """
        if not filed:
            return
        if self._recent_keys is None:
            with Session(self.engine) as reading:
                self._recent_keys = reading.exec(
                    select(func.count()).select_from(dedupe_index.RecentKeyRow)).one()
        else:
            self._recent_keys += filed
        if self._recent_keys >= dedupe_index.RECENT_KEYS_MERGE_AT:
            self.merge_recent_keys()

    def merge_recent_keys(self) -> int:
        """Move the recent dedupe keys into the big index now (see aggregator.dedupe_index)."""
        with self._write_lock, Session(self.engine) as session:
            self._lock_ingest(session)
            moved = dedupe_index.merge_recent_keys(session)
            session.commit()
        self._recent_keys = 0
        log.debug("merged %d recent dedupe key(s)", moved)
        return moved

    # ------------------------------------------------------------------ duplicates

    def split_duplicate(
        self, given_id: str, *, source_name: str | None = None, now: datetime | None = None,
    ) -> dedupe_index.SplitResult:
        """Undo a wrong merge for good: one source's copy becomes its own post again."""
        with self._write_lock, self._ingest_session() as session:
            # Like an ingest: its new entry's id must not commit after a higher one.
            self._lock_ingest(session)
            post = dedupe_index.resolve_entry(session, given_id)
            result = dedupe_index.split_entry(
                session, post.id,  # type: ignore[arg-type]
                dedupe_index.appearances_to_split(session, post.id,  # type: ignore[arg-type]
                                                  source_name),
                now=now,
            )
            # Both sides keep their topics; the one made anew needs its rows,
            # and either side's publication date may have moved.
            sides = [session.get(EntryRow, entry_id) for entry_id in
                     (result.staying_entry_id, result.split_entry_id)]
            topic_index.replace_topics(session, [
                (row.id, row.published, json.loads(row.topics))  # type: ignore[misc]
                for row in sides if row is not None and not row.pruned])
            session.commit()
        self.bump_content_generation()
        return result

    def uid_of(self, entry_id: int) -> str | None:
        with Session(self.engine) as session:
            row = session.get(EntryRow, entry_id)
            return row.uid if row else None

    # ------------------------------------------------------------------ retention

    def prune(self, *, published_before: datetime) -> int:
        """Remove posts published before the cutoff, and their comments, for good.

        The rows and appearances stay (content emptied) so that a feed still
        carrying the entry does not bring it back.
        """
        cutoff = as_utc(published_before)
        emptied = {
            "pruned": True, "content_html": "", "summary_html": "", "text": "",
            "categories": "[]", "topics": "[]",
        }
        with self._write_lock, Session(self.engine) as session:
            post_ids = list(session.exec(select(EntryRow.id).where(
                EntryRow.kind == "post", EntryRow.pruned == False,  # noqa: E712
                col(EntryRow.published) < cutoff,
            )))
            for chunk in _chunks(post_ids, 500):
                comment_ids = list(session.exec(select(EntryRow.id).where(
                    col(EntryRow.post_id).in_(chunk))))
                # Archive documents holding them are written again, without them.
                archive_index.bump_blocks_of(session, [*chunk, *comment_ids])
                session.execute(update(EntryRow).where(
                    or_(col(EntryRow.id).in_(chunk), col(EntryRow.post_id).in_(chunk)),
                ).values(**emptied))
                # Pruned posts keep their appearances (so they are recognised
                # and not re-added) but no longer attract new copies by text.
                dedupe_index.remove_keys_of(session, chunk)
                topic_index.forget_entries(session, chunk)
            session.commit()
        return len(post_ids)

    # ------------------------------------------------------------------ topics

    def refile_topics(self, classify: Callable[[StoredPost], tuple[str, ...]]) -> int:
        """Re-run topic rules over every post; returns how many changed.

        Posts are read a batch of plain columns at a time (a million ORM rows
        would not fit in memory); only posts whose topics changed are written,
        with their topic index rows.
        """
        changed = 0
        columns = (EntryRow.id, EntryRow.title, EntryRow.text, EntryRow.categories,
                   EntryRow.language, EntryRow.source_id, EntryRow.topics, EntryRow.published)
        with self._write_lock, Session(self.engine) as session:
            names = dict(session.exec(select(SourceRow.id, SourceRow.name)).all())
            last_id = 0
            while batch := session.exec(
                select(*columns).where(
                    EntryRow.kind == "post", EntryRow.pruned == False,  # noqa: E712
                    col(EntryRow.id) > last_id,
                ).order_by(col(EntryRow.id)).limit(1000)
            ).all():
                last_id = batch[-1][0]
                refiled = []
                for entry_id, title, body, categories, language, source_id, stored, published \
                        in batch:
                    topics = classify(StoredPost(
                        title=title, text=body, categories=tuple(json.loads(categories)),
                        language=language, source_name=names.get(source_id, ""),
                    ))
                    if json.dumps(list(topics)) != stored:
                        refiled.append((entry_id, published, topics))
                if refiled:
                    session.execute(update(EntryRow), [
                        {"id": entry_id, "topics": json.dumps(list(topics))}
                        for entry_id, _, topics in refiled])
                    topic_index.replace_topics(session, refiled)
                    changed += len(refiled)
            session.commit()
        return changed

    # ------------------------------------------------------------------ reading

    def published_entries(
        self, *, topics: Sequence[str], max_entries: int,
    ) -> tuple[list[PublishedEntry], list[PublishedEntry], list[str]]:
        """Posts, comments and languages for publishing.

        Loads the newest ``max_entries`` posts overall, per topic and per
        language, and the newest comments, so every output feed is complete.
        Each list is an index walk that stops after ``max_entries`` rows (ids
        only); the rows themselves are read once, however many lists hold them.
        """
        newest = (col(EntryRow.published).desc(), col(EntryRow.id).desc())

        def live(kind: str) -> tuple[Any, ...]:
            return (EntryRow.kind == kind, EntryRow.pruned == False)  # noqa: E712

        with Session(self.engine) as session:
            languages = self._languages(session)
            lists = [select(EntryRow.id).where(*live("post")).order_by(*newest)]
            lists += [
                select(EntryTopicRow.entry_id)
                .join(EntryRow, col(EntryRow.id) == EntryTopicRow.entry_id)
                .where(EntryTopicRow.topic == slug, *live("post"))
                .order_by(col(EntryTopicRow.published).desc(),
                          col(EntryTopicRow.entry_id).desc())
                for slug in topics
            ]
            lists += [select(EntryRow.id).where(*live("post"), EntryRow.language == language)
                      .order_by(*newest) for language in languages]
            post_ids: dict[int, None] = {}
            for query in lists:
                post_ids.update(dict.fromkeys(session.exec(query.limit(max_entries))))
            post_rows: list[Row[Any]] = []
            for chunk in _chunks(list(post_ids), 500):
                post_rows += session.execute(
                    select(*_PUBLISHED).where(_ENTRY.c.id.in_(chunk))).all()
            comment_rows = list(session.execute(
                select(*_PUBLISHED).where(*live("comment"))
                .order_by(*newest).limit(max_entries)))
            posts, comments = self._to_published(session, post_rows, comment_rows)
            return posts, comments, languages

    # ------------------------------------------------------------------ archives

    def number_archive_entries(
        self, limit: int = ARCHIVE_NUMBER_LIMIT,
    ) -> tuple[dict[str, int], bool]:
        """Number the entries each archived feed has not numbered yet (RFC 5005 archives).

        Returns each feed's count of numbered entries, and whether entries were
        left for the next call (``limit`` reached). Call it while holding the
        publish lock; a publisher of another feeds directory doing the same at
        once costs nothing but a retry on the next publish.
        """
        counts: dict[str, int] = {}
        more = False
        for feed in archive_index.FEEDS:
            with self._write_lock, Session(self.engine) as session:
                try:
                    if not self.is_sqlite:
                        session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                        {"key": ARCHIVE_LOCK_KEY})
                    numbered = archive_index.number_new_entries(
                        session, feed, limit,
                        0 if self.is_sqlite else archive_index.LATE_WINDOW)
                    session.commit()
                    more = more or numbered >= limit
                except (IntegrityError, OperationalError) as error:
                    session.rollback()
                    log.info("numbering %s for its archive lost a race (%s); next publish "
                             "tries again", feed, type(error).__name__)
                    more = True
                counts[feed] = archive_index.slot_count(session, feed)
        return counts, more

    def archive_block_versions(self, feed: str) -> dict[int, int]:
        """The blocks of ``feed`` that retention changed after they closed, with versions."""
        with Session(self.engine) as session:
            return archive_index.block_versions(session, feed)

    def archive_entries(self, feed: str, first_seq: int, last_seq: int) -> list[PublishedEntry]:
        """The live entries numbered ``first_seq`` … ``last_seq`` in archived ``feed``."""
        kind = archive_index.FEEDS[feed]
        with Session(self.engine) as session:
            ids = archive_index.block_entry_ids(session, feed, first_seq, last_seq)
            rows: list[Row[Any]] = []
            for chunk in _chunks(ids, 500):
                rows += session.execute(select(*_PUBLISHED).where(
                    _ENTRY.c.id.in_(chunk), _ENTRY.c.pruned == False)).all()  # noqa: E712
            if kind == "post":
                return self._to_published(session, rows, [])[0]
            return self._to_published(session, [], rows)[1]

    @staticmethod
    def _languages(session: Session) -> list[str]:
        """The languages of published posts: one index probe per language, not a scan.

        A loose index scan over ix_entry_newest_by_language (a recursive
        query: the smallest language, then the smallest one above it, ...).
        """
        return sorted(language for language in session.execute(_LANGUAGES, {"no": False})
                      .scalars() if language)

    def thread(self, key: str) -> tuple[PublishedEntry, list[PublishedEntry]] | None:
        """A post and every comment under it (for /posts/<key>/comments.atom)."""
        if len(key) != 32 or any(c not in "0123456789abcdef" for c in key):
            return None
        with Session(self.engine) as session:
            post = session.execute(select(*_PUBLISHED).where(
                _ENTRY.c.uid == key, _ENTRY.c.kind == "post")).first()
            if post is None or post.pruned:
                return None
            comment_rows = list(session.execute(
                select(*_PUBLISHED).where(_ENTRY.c.post_id == post.id,
                                          _ENTRY.c.pruned == False)  # noqa: E712
                .order_by(_ENTRY.c.published, _ENTRY.c.id)
            ))
            posts, comments = self._to_published(session, [post], comment_rows)
            return posts[0], comments

    def _to_published(
        self, session: Session, post_rows: list[Row[Any]], comment_rows: list[Row[Any]],
    ) -> tuple[list[PublishedEntry], list[PublishedEntry]]:
        related_ids = {row.parent_id for row in comment_rows if row.parent_id}
        related_ids |= {row.post_id for row in comment_rows if row.post_id}
        known = {row.id: row for row in [*post_rows, *comment_rows]}
        missing = [i for i in related_ids if i not in known]
        if missing:
            for row in session.execute(select(*_PUBLISHED).where(_ENTRY.c.id.in_(missing))):
                known[row.id] = row
        entry_ids = [row.id for row in [*post_rows, *comment_rows]]
        appearances: dict[int, list[Row[Any]]] = {}
        if entry_ids:
            for chunk in _chunks(entry_ids, 500):
                for appearance in session.execute(select(*_PUBLISHED_APPEARANCE).where(
                        _APPEARANCE.c.entry_id.in_(chunk)).order_by(_APPEARANCE.c.id)):
                    appearances.setdefault(appearance.entry_id, []).append(appearance)
        # Only the sources these entries name, not every configured one.
        source_ids = {row.source_id for row in [*post_rows, *comment_rows]}
        source_ids |= {a.source_id for group in appearances.values() for a in group}
        sources: dict[int | None, Row[Any]] = {}
        for chunk in _chunks(list(source_ids), 500):
            sources.update((row.id, row) for row in session.execute(
                select(*_PUBLISHED_SOURCE).where(_SOURCE.c.id.in_(chunk))))
        counts: dict[int, int] = {}
        post_ids = [row.id for row in post_rows]
        for chunk in _chunks(post_ids, 500):
            for post_id, count in session.exec(
                select(EntryRow.post_id, func.count()).where(
                    col(EntryRow.post_id).in_(chunk), EntryRow.pruned == False,  # noqa: E712
                ).group_by(EntryRow.post_id)
            ):
                counts[post_id] = count

        def convert(row: Row[Any]) -> PublishedEntry:
            source = sources[row.source_id]
            parent = known.get(row.parent_id) if row.parent_id else None
            post = known.get(row.post_id) if row.post_id else None
            return PublishedEntry(
                id=public_id(row.uid), key=row.uid, kind=row.kind,  # type: ignore[arg-type]
                title=row.title, link=row.link, content_html=row.content_html,
                summary_html=row.summary_html, author=row.author,
                published=as_utc(row.published),  # type: ignore[arg-type]
                updated=as_utc(row.updated),  # type: ignore[arg-type]
                categories=tuple(json.loads(row.categories)),
                language=row.language, topics=tuple(json.loads(row.topics)),
                source=_source_info(source),
                appearances=tuple(
                    Appearance(
                        source=sources[a.source_id].name, feed_url=a.feed_url,
                        original_id=a.original_id, link=a.link,
                        published=as_utc(a.published),
                    ) for a in sorted(appearances.get(row.id or 0, []),
                                      key=lambda a: a.source_id != row.source_id)
                ),
                in_reply_to_id=public_id(parent.uid) if parent else None,
                in_reply_to_link=(parent.link if parent else None) or row.in_reply_to_link,
                post_id=public_id(post.uid) if post else None,
                post_key=post.uid if post else None,
                post_title=post.title if post else None,
                comment_count=counts.get(row.id or 0, 0),
            )

        return [convert(r) for r in post_rows], [convert(r) for r in comment_rows]

    def sources_info(self) -> list[SourceInfo]:
        # Plain columns, not ORM rows: every publish asks, for every source.
        with Session(self.engine) as session:
            return [SourceInfo(name=name, feed_url=moved_to or url, title=title or name,
                               site_url=site_url, language=language)
                    for name, url, moved_to, title, site_url, language in session.exec(
                        select(SourceRow.name, SourceRow.url, SourceRow.moved_to,
                               SourceRow.title, SourceRow.site_url, SourceRow.language)
                        .order_by(col(SourceRow.name)))]

    def status(self) -> list[SourceStatus]:
        with Session(self.engine) as session:
            counts: dict[tuple[int, str], int] = {}
            for source_id, kind, count in session.exec(
                select(AppearanceRow.source_id, AppearanceRow.kind, func.count())
                .join(EntryRow, col(EntryRow.id) == AppearanceRow.entry_id)
                .where(EntryRow.pruned == False)  # noqa: E712
                .group_by(AppearanceRow.source_id, AppearanceRow.kind)
            ):
                counts[(source_id, kind)] = count
            result = []
            for row in session.exec(select(SourceRow).order_by(col(SourceRow.name))):
                result.append(SourceStatus(
                    name=row.name, url=row.url,
                    last_fetch_at=as_utc(row.last_fetch_at),
                    last_success_at=as_utc(row.last_success_at),
                    last_status=row.last_status, last_error=row.last_error,
                    error_count=row.error_count, failing_since=as_utc(row.failing_since),
                    next_check_at=as_utc(row.next_check_at), moved_to=row.moved_to,
                    gone=row.gone, posts=counts.get((row.id or 0, "post"), 0),
                    comments=counts.get((row.id or 0, "comment"), 0),
                    last_warning=row.last_warning,
                ))
            return result

    def export_records(self, batch: int = 1000) -> Iterable[dict[str, Any]]:
        """Every canonical entry with its appearances, for `aggregator export`."""
        with Session(self.engine) as session:
            names = {row.id: row.name for row in session.exec(select(SourceRow))}
            last_id = 0
            while True:
                rows = list(session.exec(
                    select(EntryRow).where(col(EntryRow.id) > last_id)
                    .order_by(col(EntryRow.id)).limit(batch)))
                if not rows:
                    return
                last_id = rows[-1].id or last_id
                rows = [row for row in rows if not row.pruned]
                ids = [row.id for row in rows]
                appearances: dict[int, list[AppearanceRow]] = {}
                for appearance in session.exec(select(AppearanceRow).where(
                        col(AppearanceRow.entry_id).in_(ids)).order_by(col(AppearanceRow.id))):
                    appearances.setdefault(appearance.entry_id, []).append(appearance)
                counts = dict(session.exec(
                    select(EntryRow.post_id, func.count())
                    .where(col(EntryRow.post_id).in_(ids), EntryRow.pruned == False)  # noqa: E712
                    .group_by(EntryRow.post_id)).all())
                uids = {row.id: row.uid for row in session.exec(select(EntryRow).where(
                    col(EntryRow.id).in_({r.parent_id for r in rows if r.parent_id}
                                         | {r.post_id for r in rows if r.post_id})))}
                for row in rows:
                    yield {
                        "id": public_id(row.uid),
                        "kind": row.kind,
                        "title": row.title,
                        "link": row.link,
                        "published": _iso(row.published),
                        "updated": _iso(row.updated),
                        "author": row.author,
                        "language": row.language,
                        "topics": json.loads(row.topics),
                        "categories": json.loads(row.categories),
                        "source": names.get(row.source_id),
                        "comments": counts.get(row.id, 0),
                        "in_reply_to": public_id(uids[row.parent_id])
                        if row.parent_id in uids else None,
                        "post": public_id(uids[row.post_id]) if row.post_id in uids else None,
                        "appearances": [
                            {"source": names.get(a.source_id), "feed_url": a.feed_url,
                             "original_id": a.original_id, "link": a.link,
                             "published": _iso(a.published)}
                            for a in sorted(appearances.get(row.id or 0, []),
                                            key=lambda a, row=row: a.source_id != row.source_id)
                        ],
                    }

    def counts(self) -> dict[str, int]:
        with Session(self.engine) as session:
            return {
                kind: count for kind, count in session.exec(
                    select(EntryRow.kind, func.count())
                    .where(EntryRow.pruned == False)  # noqa: E712
                    .group_by(EntryRow.kind))
            }


# ---------------------------------------------------------------------- helpers


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


#: The distinct languages of published posts, by a loose index scan: each step
#: is MIN(language) above the last, one probe of ix_entry_newest_by_language.
_LANGUAGES = text("""
    WITH RECURSIVE seen(language) AS (
        SELECT MIN(language) FROM entry WHERE kind = 'post' AND pruned = :no
        UNION ALL
        SELECT (SELECT MIN(e.language) FROM entry AS e
                WHERE e.kind = 'post' AND e.pruned = :no AND e.language > seen.language)
        FROM seen WHERE seen.language IS NOT NULL
    )
    SELECT language FROM seen WHERE language IS NOT NULL
""")


def _key_ordered_dedupe_keys(connection: Connection) -> None:
    """Schema 5: dedupe_key keyed by (key, entry_id), on SQLite without a rowid.

    Before it, the primary key was (entry_id, key) with a unique index on
    (key, entry_id). The keys are copied into the new table in key order, the
    order its B-tree is built fastest in, and its index on entry_id is built
    after the copy, from one sort, rather than row by row in random order.
    For the 15 million keys of a 1,000,000-entry store (bench/scale_store.py),
    with the sorts in files (see _upgrade), the upgrade took 1 min 55 s and
    peaked at 165 MB, where the index first and the sort in memory took
    4 min 18 s and 1.4 GB.
    """
    primary = inspect(connection).get_pk_constraint("dedupe_key")
    if primary["constrained_columns"] == ["key", "entry_id"]:
        return
    connection.execute(text("DROP INDEX IF EXISTS uq_dedupe_key_key_entry"))
    connection.execute(text("ALTER TABLE dedupe_key RENAME TO dedupe_key_old"))
    if connection.dialect.name != "sqlite" and primary.get("name"):
        # PostgreSQL's primary key keeps its name through the rename; freed,
        # the new table's gets the name a new store's has, not one with a 1.
        connection.execute(text(
            f'ALTER TABLE dedupe_key_old DROP CONSTRAINT "{primary["name"]}"'))
    table = dedupe_index.DedupeKeyRow.__table__  # type: ignore[attr-defined]
    connection.execute(CreateTable(table))  # its index comes after the copy
    started = time.monotonic()
    moved = connection.execute(text(
        'INSERT INTO dedupe_key ("key", entry_id, kind) SELECT "key", entry_id, kind '
        'FROM dedupe_key_old ORDER BY "key", entry_id')).rowcount
    log.info("copied %d dedupe key(s) in key order (%.0f s); indexing them by entry",
             moved, time.monotonic() - started)
    connection.execute(text("DROP TABLE dedupe_key_old"))
    for index in table.indexes:
        index.create(connection)
    log.info("rebuilt the dedupe key table in key order: %d key(s)", moved)


def _begin_immediate(connection: Any, attempts: int = 20) -> None:
    """Take SQLite's write lock now; wait out (busy_timeout each) another long writer."""
    for attempt in range(attempts):
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as error:
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            connection.rollback()


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:300]


def _due_comment_feeds(
    session: Session, source_ids: Sequence[int], horizon: datetime,
) -> dict[int, list[CommentFeedState]]:
    """The comment feeds of these sources worth fetching now (see comment_feeds_due)."""
    # Core, and the pruned flag by a join: this runs with every claim.
    rows = session.connection().execute(
        _DUE_COMMENT_FEEDS, {"ids": list(source_ids), "horizon": horizon})
    due: dict[int, list[CommentFeedState]] = {}
    for row in rows:
        if row.pruned:
            continue
        if row.post_entry_id is not None and row.declared_count == 0:
            # WordPress names a comment feed for every post; most declare no
            # comments, and reading each one's empty feed would double the
            # requests of a first pass. Its feed is due once a count appears.
            continue
        if (row.post_entry_id is not None and row.last_fetch_at is not None
                and row.declared_count is not None
                and row.declared_count == row.fetched_for_count):
            continue
        due.setdefault(row.source_id, []).append(CommentFeedState(
            id=row.id, source_id=row.source_id, url=row.url,
            post_entry_id=row.post_entry_id, etag=row.etag,
            last_modified=row.last_modified, body_hash=row.body_hash,
            declared_count=row.declared_count,
        ))
    return due


#: The tables as Core sees them, for statements on hot paths.
_SOURCE = SourceRow.__table__  # type: ignore[attr-defined]
_COMMENT_FEED = CommentFeedRow.__table__  # type: ignore[attr-defined]
_ENTRY = EntryRow.__table__  # type: ignore[attr-defined]
_APPEARANCE = AppearanceRow.__table__  # type: ignore[attr-defined]
#: What publishing reads of entries, appearances and sources: plain rows, not
#: ORM objects (building those was a third of reading a publish's entries),
#: and not an entry's stored text, which only re-filing topics needs.
_PUBLISHED = tuple(_ENTRY.c[name] for name in (
    "id", "uid", "kind", "source_id", "parent_id", "post_id", "in_reply_to_link", "title",
    "link", "content_html", "summary_html", "author", "published", "updated", "categories",
    "language", "topics", "pruned"))
_PUBLISHED_APPEARANCE = tuple(_APPEARANCE.c[name] for name in (
    "id", "entry_id", "source_id", "feed_url", "original_id", "link", "published"))
_PUBLISHED_SOURCE = tuple(_SOURCE.c[name] for name in (
    "id", "name", "url", "moved_to", "title", "site_url", "language"))
#: What claim_due reads of a source: SourceState's fields and the lease.
_CLAIM_COLUMNS = tuple(_SOURCE.c[name] for name in (
    "id", "name", "url", "moved_to", "etag", "last_modified", "body_hash", "error_count",
    "lease_owner", "lease_until"))

# The statements of a claim, built once with their parameters as bind
# parameters: a warm pass claims about a hundred times, and building each
# statement (and its cache key) anew cost more CPU than SQLite took to run it.
_LIVE_LEASES = select(_SOURCE.c.url, _SOURCE.c.moved_to, _SOURCE.c.lease_owner).where(
    _SOURCE.c.lease_until >= bindparam("now"))
_TAKE_LEASES = update(_SOURCE).where(_SOURCE.c.id.in_(bindparam("ids", expanding=True))).values(
    lease_owner=bindparam("owner"), lease_until=bindparam("until"))
_RELEASE = update(_SOURCE).where(
    _SOURCE.c.id.in_(bindparam("ids", expanding=True)),
    _SOURCE.c.lease_owner == bindparam("owner"),
).values(lease_until=None, lease_owner=None)
_DUE_COMMENT_FEEDS = (
    select(_COMMENT_FEED.c.id, _COMMENT_FEED.c.source_id, _COMMENT_FEED.c.url,
           _COMMENT_FEED.c.post_entry_id, _COMMENT_FEED.c.etag, _COMMENT_FEED.c.last_modified,
           _COMMENT_FEED.c.body_hash, _COMMENT_FEED.c.declared_count,
           _COMMENT_FEED.c.fetched_for_count, _COMMENT_FEED.c.last_fetch_at, _ENTRY.c.pruned)
    .select_from(_COMMENT_FEED.outerjoin(_ENTRY, _ENTRY.c.id == _COMMENT_FEED.c.post_entry_id))
    .where(_COMMENT_FEED.c.source_id.in_(bindparam("ids", expanding=True)),
           or_(_COMMENT_FEED.c.post_entry_id.is_(None),
               _COMMENT_FEED.c.post_first_seen >= bindparam("horizon")))
    .order_by(_COMMENT_FEED.c.id))


@functools.lru_cache(maxsize=8)
def _claim_query(*, force: bool, with_dead: bool, for_update: bool) -> Any:
    """The sources ``names`` that are free to lease (and due, unless ``force``).

    Free: no lease, an expired one, our own, or (``with_dead``) one of the
    holders in ``dead``. Bind parameters: names, now, owner and dead.
    """
    sources = _SOURCE
    free = [sources.c.lease_until.is_(None), sources.c.lease_until < bindparam("now"),
            sources.c.lease_owner == bindparam("owner")]
    if with_dead:
        free.append(sources.c.lease_owner.in_(bindparam("dead", expanding=True)))
    query = select(*_CLAIM_COLUMNS).where(
        sources.c.name.in_(bindparam("names", expanding=True)),
        sources.c.gone == False,  # noqa: E712
        or_(*free))
    if not force:
        query = query.where(or_(sources.c.next_check_at.is_(None),
                                sources.c.next_check_at <= bindparam("now")))
    query = query.order_by(sources.c.next_check_at, sources.c.id)
    if for_update:
        query = query.with_for_update(skip_locked=True)
    return query


@functools.lru_cache(maxsize=2)
def _unchanged_update(new_validators: bool) -> Any:
    """The UPDATE of _record_unchanged, for rows with new validators or without."""
    values: dict[str, Any] = {
        "last_fetch_at": bindparam("b_now"), "last_success_at": bindparam("b_now"),
        "last_status": bindparam("b_status"), "last_error": None, "error_count": 0,
        "failing_since": None, "gone": False, "redirect_candidate": None,
        "redirect_count": 0, "next_check_at": bindparam("b_next"),
    }
    if new_validators:
        values["etag"] = bindparam("b_etag")
        values["last_modified"] = bindparam("b_last_modified")
    return update(_SOURCE).where(_SOURCE.c.id == bindparam("b_id")).values(**values)


class _SourceRef(NamedTuple):
    """What storing comments needs of their source."""

    id: int
    url: str


class _PostRef(NamedTuple):
    """What storing comments needs of the post they belong to."""

    id: int
    pruned: bool


def _source_state(row: Any) -> SourceState:
    """The fetcher's view of a source: a SourceRow, or a Core row of _CLAIM_COLUMNS."""
    return SourceState(
        id=row.id or 0, name=row.name, fetch_url=row.moved_to or row.url,
        configured_url=row.url, etag=row.etag, last_modified=row.last_modified,
        body_hash=row.body_hash, error_count=row.error_count,
    )


def _source_info(row: Row[Any]) -> SourceInfo:
    return SourceInfo(
        name=row.name, feed_url=row.moved_to or row.url, title=row.title or row.name,
        site_url=row.site_url, language=row.language,
    )


def _record_unchanged(session: Session, unchanged: Sequence[Unchanged]) -> None:
    """Record fetches that brought nothing new: validators, health and next check.

    Most are a plain 304 with no redirect: those are one UPDATE statement run
    over many rows (a warm pass is mostly this); the rest go through the rows.
    """
    if not unchanged:
        return
    plain: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    moved = []
    for record in unchanged:
        fetch = record.fetch
        if fetch.permanent_redirect:
            moved.append(record)
            continue
        now = as_utc(record.now)
        # Same rule as _record_success: a 304 without validators keeps ours.
        new_validators = bool(fetch.status != 304 or fetch.validators.etag
                              or fetch.validators.last_modified)
        values: dict[str, Any] = {
            "b_id": record.source_id, "b_now": now, "b_status": fetch.status,
            "b_next": as_utc(record.next_check_at),
        }
        if new_validators:
            values["b_etag"] = fetch.validators.etag
            values["b_last_modified"] = fetch.validators.last_modified
        plain[new_validators].append(values)
    for new_validators, params in plain.items():
        if params:
            session.execute(_unchanged_update(new_validators), params)
    if not moved:
        return
    rows = {row.id: row for row in session.exec(select(SourceRow).where(
        col(SourceRow.id).in_([u.source_id for u in moved])))}
    for record in moved:
        row = rows.get(record.source_id)
        if row is None:
            continue
        _record_success(row, record.fetch, as_utc(record.now))
        row.next_check_at = as_utc(record.next_check_at)
        session.add(row)
    session.flush()


# Every claim counts the live leases by host: the same URLs, parsed again and again.
@functools.lru_cache(maxsize=1 << 14)
def host_slot(url: str) -> str:
    """What ``[fetch] per_host`` counts: host and port, as the fetcher's own limit does."""
    try:
        host, port = check_url(url)
    except BlockedURLError:
        return url
    return f"{host}:{port}"


def _record_success(row: SourceRow | _SourceWrite, fetch: FetchResult,
                    now: datetime | None) -> None:
    row.last_fetch_at = now
    row.last_success_at = now
    row.last_status = fetch.status
    row.last_error = None
    row.error_count = 0
    row.failing_since = None
    row.gone = False
    if fetch.status != 304 or fetch.validators.etag or fetch.validators.last_modified:
        row.etag = fetch.validators.etag
        row.last_modified = fetch.validators.last_modified
    _remember_move(row, fetch.permanent_redirect)


#: A permanent redirect is followed for good after this many fetches in a row.
MOVE_AFTER = 3


def _remember_move(row: SourceRow | _SourceWrite, target: str | None) -> None:
    """Remember a 301/308 once it is seen consistently; http→https at once."""
    if not target:
        row.redirect_candidate = None
        row.redirect_count = 0
        return
    current = row.moved_to or row.url
    if current.startswith("http://") and target == "https://" + current[len("http://"):]:
        row.moved_to = target
        row.redirect_candidate = None
        row.redirect_count = 0
        return
    if row.redirect_candidate == target:
        row.redirect_count += 1
    else:
        row.redirect_candidate = target
        row.redirect_count = 1
    if row.redirect_count >= MOVE_AFTER:
        row.moved_to = target
        row.redirect_candidate = None
        row.redirect_count = 0


class _SourceWrite:
    """A source's row as storing its post feed reads and sets it: the columns
    read are loaded, and the columns set are written, through the driver.

    An ORM load and flush of the row cost about a millisecond per document of
    a cold pass, several times the two statements. Attributes are those of
    SourceRow; only the columns in READ can be read before they are set.
    """

    READ = ("id", "url", "moved_to", "redirect_candidate", "redirect_count", "title",
            "site_url", "language")
    _TIMES = frozenset(column.name for column in SourceRow.__table__.columns  # type: ignore[attr-defined]
                       if isinstance(column.type, UTCDateTime))
    _COLUMNS = frozenset(column.name for column in SourceRow.__table__.columns)  # type: ignore[attr-defined]

    __slots__ = ("_changed", "_values")

    def __init__(self, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_changed", {})

    @classmethod
    def load(cls, session: Session, source_id: int) -> _SourceWrite | None:
        connection = session.connection()
        found = connection.exec_driver_sql(
            f"SELECT {', '.join(cls.READ)} FROM source WHERE id = {driver_slot(connection)}",
            (source_id,)).first()
        return None if found is None else cls(dict(zip(cls.READ, found, strict=True)))

    def __getattr__(self, name: str) -> Any:
        changed = self._changed
        if name in changed:
            return changed[name]
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"source.{name} is not loaded") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._COLUMNS:
            raise AttributeError(f"source has no column {name}")
        self._changed[name] = value

    def write(self, session: Session) -> None:
        """One UPDATE of every column set, whether or not its value differs from the stored one."""
        if not self._changed:
            return
        connection = session.connection()
        slot = driver_slot(connection)
        names = sorted(self._changed)
        connection.exec_driver_sql(
            f"UPDATE source SET {', '.join(f'{name} = {slot}' for name in names)} "
            f"WHERE id = {slot}",
            (*(driver_time(connection, self._changed[name]) if name in self._TIMES
               else self._changed[name] for name in names), self._values["id"]))
        # A SourceRow of this source that the session may still hold (a merge
        # earlier in the transaction loads the original's source) would now be
        # stale: it is read again when next used.
        held = session.identity_map.get(session.identity_key(SourceRow, self._values["id"]))
        if held is not None:
            session.expire(held)


def _apply_entry(
    row: EntryRow, entry: NormalizedEntry, topics: tuple[str, ...], now: datetime,
    *, updated: bool,
) -> None:
    row.title = entry.title
    row.link = entry.link
    row.canonical_url = entry.canonical_url
    row.content_html = entry.content_html
    row.summary_html = entry.summary_html
    row.author = entry.author
    if not (updated and not entry.dated and row.published):
        row.published = as_utc(entry.published) or now
    stated_update = as_utc(entry.updated)
    if updated:
        # An edit must move `updated` forward so readers notice it.
        row.updated = max(stated_update or now, row.updated or now) if stated_update else now
    else:
        row.updated = stated_update or row.published
    row.categories = json.dumps(list(entry.categories), ensure_ascii=False)
    if entry.kind == "post":
        row.topics = json.dumps(list(topics))
    row.language = entry.language
    row.content_hash = entry.content_hash
    row.fingerprint = entry.fingerprint
    row.comments_feed_url = entry.comments_feed_url
    row.comment_count_declared = entry.comment_count
    row.text = entry.text[:20000]


class _DocumentWrites:
    """What storing one post feed document writes in bulk when it is done.

    New posts: one insert of many rows for the entries (_insert_entries),
    one for their dedupe keys. A post that may be a copy of one still
    pending (it shares a dedupe key, canonical URL or fingerprint with it)
    flushes them first, so the duplicate lookup always sees every earlier
    post. Then the
    appearances, topic rows and comment feeds of every post of the document.
    """

    __slots__ = ("_document_marks", "_follow_comments", "_marks", "_marks_by_entry", "_pending",
                 "appearances", "comment_feeds", "filed", "present")

    def __init__(self, follow_comments: bool) -> None:
        self._follow_comments = follow_comments
        self.appearances: list[dict[str, Any]] = []
        #: (entry id, published, topics) of new posts, for the topic index.
        self.filed: list[tuple[int, datetime, tuple[str, ...]]] = []
        #: comment feed URL → (its post's entry id, the count the post declares)
        self.comment_feeds: dict[str, tuple[int | None, int | None]] = {}
        self._pending: list[tuple[NormalizedEntry, dict[str, Any], tuple[str, ...],
                                  dict[str, Any]]] = []
        self._marks: set[str] = set()
        #: Marks (dedupe_index.marks_of) found in the store before the document;
        #: None: not looked up, so every post is looked up on its own.
        self.present: set[str] | None = None
        #: Marks of every post of this document weighed so far.
        self._document_marks: set[str] = set()
        #: Each new post's marks by id(): asked for up to four times per post.
        self._marks_by_entry: dict[int, set[str]] = {}

    def marks_of(self, entry: NormalizedEntry) -> set[str]:
        """dedupe_index.marks_of(*entry*), made once per post of the document."""
        marks = self._marks_by_entry.get(id(entry))
        if marks is None:
            marks = self._marks_by_entry[id(entry)] = dedupe_index.marks_of(entry)
        return marks

    def may_have_copy(self, entry: NormalizedEntry) -> bool:
        """Whether *entry* may be a copy of a stored post, so worth a lookup.

        Its marks against those present before the document and those of the
        posts before it in the document (stored since, or merged into
        older posts that took their keys). Called once per new post.
        """
        marks = self.marks_of(entry)
        maybe = (self.present is None or not self.present.isdisjoint(marks)
                 or not self._document_marks.isdisjoint(marks))
        self._document_marks |= marks
        return maybe

    def comment_feed_of(self, entry: NormalizedEntry, entry_id: int) -> None:
        """Remember the comment feed *entry* names, if comments are followed."""
        if self._follow_comments and entry.comments_feed_url:
            self.comment_feeds.setdefault(entry.comments_feed_url,
                                          (entry_id, entry.comment_count))

    def may_match(self, entry: NormalizedEntry) -> bool:
        return bool(self._pending) and not self._marks.isdisjoint(self.marks_of(entry))

    def add(self, entry: NormalizedEntry, values: dict[str, Any], topics: tuple[str, ...],
            appearance: dict[str, Any]) -> None:
        self._pending.append((entry, values, topics, appearance))
        self._marks |= self.marks_of(entry)

    def flush(self, session: Session) -> None:
        if not self._pending:
            return
        pending, self._pending, self._marks = self._pending, [], set()
        ids = _insert_entries(session, [values for _, values, _, _ in pending])
        keys = []
        for entry_id, (entry, values, topics, appearance) in zip(ids, pending, strict=True):
            keys.extend((entry_id, key, kind)
                        for key, kind in dict(dedupe_index.keys_of(entry)).items())
            self.filed.append((entry_id, values["published"], topics))
            self.appearances.append({**appearance, "entry_id": entry_id})
            self.comment_feed_of(entry, entry_id)
        if keys:
            dedupe_index.insert_keys(session, keys)


def _insert_entries(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert new entry rows (every column but ``id``); their ids, in row order."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return list(session.execute(_INSERT_ENTRIES, rows).scalars())
    # SQLAlchemy would insert one row per statement here, since SQLite does
    # not promise RETURNING's order. SQLite gives a row without an id the
    # largest id in the table plus one, and this transaction is the only
    # writer: the new ids are the last one and those just below it.
    insert_rows(session, _ENTRY, rows)
    last = connection.exec_driver_sql("SELECT last_insert_rowid()").scalar_one()
    return list(range(last - len(rows) + 1, last + 1))


#: New entries on PostgreSQL, many rows in one statement, on the table with
#: the values bound per call (an ORM insert with .values() is compiled again
#: for each row); the ids come back in the order of the rows given.
_INSERT_ENTRIES = insert(_ENTRY).returning(_ENTRY.c.id, sort_by_parameter_order=True)

# The two statements every comment feed runs, as the driver takes them ({slot}:
# its placeholder).
#: A comment feed's source, and its post if it has one.
_COMMENT_FEED_CONTEXT = (
    "SELECT source.id, source.url, entry.id, entry.pruned FROM comment_feed"
    " JOIN source ON source.id = comment_feed.source_id"
    " LEFT OUTER JOIN entry ON entry.id = comment_feed.post_entry_id"
    " WHERE comment_feed.id = {slot}")
#: A comment feed read: its validators, and the count the post declared when we
#: asked (body_hash kept when the new one is None: a 304).
_COMMENT_FEED_READ = (
    "UPDATE comment_feed SET fetched_for_count = declared_count, etag = {slot},"
    " last_modified = {slot}, last_fetch_at = {slot}, last_status = {slot},"
    " last_error = NULL, error_count = 0, body_hash = COALESCE({slot}, body_hash)"
    " WHERE id = {slot}")


def _new_entry_values(
    entry: NormalizedEntry, topics: tuple[str, ...], now: datetime,
) -> dict[str, Any]:
    """Column values of a new entry row: what ``_apply_entry`` sets on a new row,
    plus every column's default (a Core insert fills in none)."""
    published = as_utc(entry.published) or now
    return {
        "title": entry.title, "link": entry.link, "canonical_url": entry.canonical_url,
        "content_html": entry.content_html, "summary_html": entry.summary_html,
        "author": entry.author, "published": published,
        "updated": as_utc(entry.updated) or published,
        "categories": json.dumps(list(entry.categories), ensure_ascii=False),
        "topics": json.dumps(list(topics)) if entry.kind == "post" else "[]",
        "language": entry.language, "content_hash": entry.content_hash,
        "fingerprint": entry.fingerprint, "comments_feed_url": entry.comments_feed_url,
        "comment_count_declared": entry.comment_count, "text": entry.text[:20000],
        "parent_id": None, "post_id": None, "in_reply_to_ref": None,
        "in_reply_to_link": None, "pruned": False,
    }


def _iso(moment: datetime | None) -> str | None:
    aware = as_utc(moment)
    return aware.isoformat().replace("+00:00", "Z") if aware else None
