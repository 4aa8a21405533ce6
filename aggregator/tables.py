"""The database schema (SQLModel tables), and how hot paths write rows.

Rows never leave the storage layer: aggregator.store maps them to the
project's own types. Datetimes are aware UTC; SQLModel's UTCDateTime stores
them as UTC on SQLite and as timestamptz on PostgreSQL.

Identity rules live in the unique constraints, so that two workers racing on
the same source can never create two rows for one entry:
- ``appearance(source_id, kind, key_hash)``: one appearance per entry per source;
- ``entry(uid)``: the published id;
- ``comment_feed(source_id, url)``: one state row per comment feed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Boolean, Index, Integer, Table, Text, UniqueConstraint, insert, text
from sqlmodel import Field, Session, SQLModel
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

#: 2: the entry_topic table (aggregator.topic_index) and the newest-first
#: indexes on entry; Store._migrate upgrades a version-1 store in place.
#: 3: dedupe_key_recent (aggregator.dedupe_index), where new dedupe keys wait
#: to be merged. An older aggregator would neither read nor merge them.
#: 4: source.last_warning, what was wrong with a feed read all the same.
#: 5: dedupe_key keyed (key, entry_id), on SQLite without a rowid; the canonical
#: URL and fingerprint indexes of entry hold posts only.
SCHEMA_VERSION = 5


class SourceRow(SQLModel, table=True):
    __tablename__ = "source"

    id: int | None = Field(default=None, primary_key=True)
    #: The name from config.toml: the link between config and store.
    name: str = Field(unique=True, max_length=200)
    #: The URL in config.toml (entry ids are derived from it, so they survive moves).
    url: str = Field(sa_type=Text)
    #: Where a permanent redirect said the feed now lives (reported, and used).
    moved_to: str | None = Field(default=None, sa_type=Text)
    #: Candidate target of a 301/308 and how many fetches in a row pointed there.
    redirect_candidate: str | None = Field(default=None, sa_type=Text)
    redirect_count: int = 0
    title: str | None = Field(default=None, sa_type=Text)
    site_url: str | None = Field(default=None, sa_type=Text)
    language: str | None = Field(default=None, max_length=20)
    #: Validators exactly as received; advanced only together with the entries.
    etag: str | None = Field(default=None, sa_type=Text)
    last_modified: str | None = Field(default=None, sa_type=Text)
    #: sha256 of the last body we processed: an unchanged body is not re-parsed.
    body_hash: str | None = Field(default=None, max_length=64)
    last_fetch_at: datetime | None = None
    last_success_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = Field(default=None, sa_type=Text)
    #: What was wrong with the feed last read (not well-formed, served as a web
    #: page, a wrong charset …) though it was read; None when nothing was.
    last_warning: str | None = Field(default=None, sa_type=Text)
    error_count: int = 0
    failing_since: datetime | None = None
    gone: bool = False
    next_check_at: datetime | None = Field(default=None, index=True)
    #: Lease of the worker that claimed the source (expires if it dies).
    lease_owner: str | None = Field(default=None, max_length=200)
    lease_until: datetime | None = None
    created_at: datetime


class CommentFeedRow(SQLModel, table=True):
    __tablename__ = "comment_feed"
    __table_args__ = (UniqueConstraint("source_id", "url", name="uq_comment_feed_source_url"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="source.id", index=True)
    url: str = Field(sa_type=Text)
    #: The post this is the comment feed of; None for a blog's site-wide comment feed.
    post_entry_id: int | None = Field(default=None, foreign_key="entry.id", index=True)
    etag: str | None = Field(default=None, sa_type=Text)
    last_modified: str | None = Field(default=None, sa_type=Text)
    body_hash: str | None = Field(default=None, max_length=64)
    #: When we first saw the post (comment feeds are followed while it is recent).
    post_first_seen: datetime | None = None
    #: The comment count the post feed declares now (slash:comments, thr:count).
    declared_count: int | None = None
    #: The declared count when this feed was last fetched successfully.
    fetched_for_count: int | None = None
    last_fetch_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = Field(default=None, sa_type=Text)
    error_count: int = 0
    created_at: datetime


#: The condition of the indexes of posts alone. A query must state it word for
#: word, not as a bound parameter, for SQLite to use such an index.
POSTS_ONLY = text("kind = 'post'")


class EntryRow(SQLModel, table=True):
    """A canonical entry: a post or a comment, after merging duplicates."""

    __tablename__ = "entry"
    __table_args__ = (
        # The newest posts (or comments), and the newest posts in one
        # language, are index walks that stop after the feed's LIMIT; and
        # the distinct languages are one index probe each.
        Index("ix_entry_newest", "kind", "pruned", "published", "id"),
        Index("ix_entry_newest_by_language", "kind", "pruned", "language", "published", "id"),
        Index("ix_entry_post_id", "post_id"),
        # Posts only (schema 5): only posts are looked up by these, and a
        # comment's canonical URL is its post's, so with comments in it a
        # lookup's newest rows could all be comments. kind is a column as
        # well as the condition: matching two terms of a lookup, the index
        # wins over the (kind, ...) ones above in SQLite's plan, which has
        # no statistics to go by.
        *(Index(f"ix_entry_{column}", column, "kind", sqlite_where=POSTS_ONLY,
                postgresql_where=POSTS_ONLY)
          for column in ("canonical_url", "fingerprint")),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: 32 hex digits of the uuid behind the published id; never changes.
    uid: str = Field(unique=True, max_length=32)
    kind: str = Field(max_length=10)
    #: The source of the canonical copy.
    source_id: int = Field(foreign_key="source.id", index=True)
    #: For a comment: what it answers (its post, or another comment).
    parent_id: int | None = Field(default=None, foreign_key="entry.id")
    #: For a comment: the post at the root of its thread.
    post_id: int | None = Field(default=None, foreign_key="entry.id")
    #: For a comment: the parent's id as the feed stated it, kept until resolved.
    in_reply_to_ref: str | None = Field(default=None, sa_type=Text)
    in_reply_to_link: str | None = Field(default=None, sa_type=Text)
    title: str = Field(sa_type=Text)
    link: str | None = Field(default=None, sa_type=Text)
    canonical_url: str | None = Field(default=None, sa_type=Text)
    content_html: str = Field(sa_type=Text)
    summary_html: str = Field(default="", sa_type=Text)
    author: str | None = Field(default=None, sa_type=Text)
    published: datetime
    updated: datetime
    first_seen: datetime
    #: JSON list of category terms.
    categories: str = Field(default="[]", sa_type=Text)
    #: JSON list of topic slugs (re-filed when topic rules change).
    topics: str = Field(default="[]", sa_type=Text)
    language: str | None = Field(default=None, max_length=20, index=True)
    content_hash: str = Field(max_length=64)
    fingerprint: str | None = Field(default=None, max_length=64)
    comments_feed_url: str | None = Field(default=None, sa_type=Text)
    comment_count_declared: int | None = None
    #: Plain text kept for re-filing topics without re-parsing HTML.
    text: str = Field(default="", sa_type=Text)
    #: Removed by retention: content dropped, never published again; the row
    #: and its appearances stay so the entry is recognised and not re-added.
    pruned: bool = Field(default=False)


class AppearanceRow(SQLModel, table=True):
    """One place (source + original id) where a canonical entry appeared."""

    __tablename__ = "appearance"
    __table_args__ = (
        UniqueConstraint("source_id", "kind", "key_hash", name="uq_appearance_identity"),
    )

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="entry.id", index=True)
    source_id: int = Field(foreign_key="source.id")
    kind: str = Field(max_length=10)
    #: sha256 of the identity key (GUID → link → content hash) within the source.
    key_hash: str = Field(max_length=64)
    identity_key: str = Field(sa_type=Text)
    original_id: str | None = Field(default=None, sa_type=Text)
    feed_url: str = Field(sa_type=Text)
    link: str | None = Field(default=None, sa_type=Text)
    published: datetime | None = None
    content_hash: str = Field(max_length=64)
    first_seen: datetime


class MetaRow(SQLModel, table=True):
    """Small key/value facts about the store (schema version, publish state)."""

    __tablename__ = "meta"

    key: str = Field(primary_key=True, max_length=100)
    value: str = Field(sa_type=Text)


def driver_slot(connection: Any) -> str:
    """The parameter placeholder of *connection*'s driver ("?" for sqlite3,
    "%s" for psycopg), for the hot statements written as plain SQL."""
    return "?" if connection.dialect.paramstyle == "qmark" else "%s"


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert *rows* (every column but an autoincrement ``id``) into *table*.

    SQLite: one ``executemany`` through the driver, each time converted as
    SQLAlchemy would. SQLAlchemy's insert handles every row's parameters in
    Python: the store's writer took about 7 % less time in a cold pass
    without it. Elsewhere, a Core insert.
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        session.execute(_core_insert(table), rows)
        return
    statement, values_of, times = _driver_insert(table)
    # The rows of one call share most of their times (a pass's "now"): each
    # distinct time is converted once.
    texts: dict[datetime, str | None] = {}
    prepared: list[tuple[Any, ...]] = []
    for row in rows:
        values = values_of(row)
        if times:
            values = list(values)
            for position in times:
                moment = values[position]
                if moment is not None:
                    stored = texts.get(moment)
                    if stored is None:
                        stored = texts[moment] = sqlite_time(moment)
                    values[position] = stored
        prepared.append(tuple(values))
    connection.exec_driver_sql(statement, prepared)


def driver_time(connection: Any, moment: datetime | None) -> Any:
    """*moment* as the driver of *connection* takes it for a datetime column:
    SQLite's text (sqlite_time); psycopg takes the aware datetime itself."""
    return sqlite_time(moment) if connection.dialect.name == "sqlite" else moment


def sqlite_time(moment: datetime | None) -> str | None:
    """What SQLModel's UTCDateTime and SQLAlchemy's SQLite DATETIME store for *moment*."""
    if moment is None:
        return None
    if moment.utcoffset() is None:
        raise ValueError(f"a stored time must be aware, not {moment!r}")
    at = moment.astimezone(UTC)
    return (f"{at.year:04d}-{at.month:02d}-{at.day:02d} "
            f"{at.hour:02d}:{at.minute:02d}:{at.second:02d}.{at.microsecond:06d}")


@cache
def _core_insert(table: Table) -> Any:
    # Built once per table: building the statement for every call cost about
    # as much again as running it.
    return insert(table)


@cache
def _driver_insert(table: Table) -> tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]],
                                          tuple[int, ...]]:
    """The driver's INSERT for *table*, a row's values in its column order, and
    the positions of those holding times.

    Only types the driver takes as they are, or times (sqlite_time), may be
    written so: a column of another type stops here rather than storing
    something SQLAlchemy would not.
    """
    columns = [column for column in table.columns
               if column is not table.autoincrement_column]
    for column in columns:
        if not isinstance(column.type, (UTCDateTime, AutoString, Text, Integer, Boolean)):
            raise TypeError(f"{table.name}.{column.name}: no driver conversion for "
                            f"{column.type!r}")
    names = tuple(column.name for column in columns)
    statement = (f"INSERT INTO {table.name} ({', '.join(names)}) "
                 f"VALUES ({', '.join('?' * len(names))})")
    # itemgetter answers a bare value, not a tuple, for a single name.
    get = itemgetter(*names)
    values_of = get if len(names) > 1 else (lambda row: (get(row),))
    return (statement, values_of, tuple(position for position, column in enumerate(columns)
                                        if isinstance(column.type, UTCDateTime)))
