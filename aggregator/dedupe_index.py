"""Where dedupe looks for candidates, and how a wrong merge is undone.

The storage side of duplicate detection. Every canonical post is filed under
a few short keys (``dedupe_key``): one per LSH band of its MinHash
signature, one for the start of its body and one for its title (see
aggregator.dedupe). A new post's candidates are the posts sharing one of its
keys, its canonical URL or its body fingerprint: a handful of index lookups
whose cost does not grow with the number of stored posts, never a scan.
aggregator.dedupe then decides which candidate, if any, is the same article.

New keys go into ``dedupe_key_recent``, a small table that lookups read
together with ``dedupe_key``, and move into ``dedupe_key`` in key order,
RECENT_KEYS_MERGE_AT at a time (:func:`merge_recent_keys`, which the store
calls).
The keys are hashes, so filed one by one they land all over the big index:
each transaction of a cold pass rewrote most of its leaf pages. Merged in
key order, a run of keys that share a leaf page writes it once. On SQLite a
:class:`KeyFilter`, a Bloom filter of every stored key, spares most lookups
of keys no stored post has, which are nearly all of a new post's.

``split_entry`` undoes a merge (``aggregator duplicates split ID``) and
remembers it in ``dedupe_split`` so that the next fetch does not merge the
two again. Everything here works inside a Session the caller owns: the
store's ingest transaction or the CLI's.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import compress
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    UniqueConstraint,
    bindparam,
    delete,
    literal,
    union_all,
)
from sqlmodel import Field, Session, SQLModel, col, select

from aggregator import speedups
from aggregator.dedupe import (
    Article,
    ArticleSource,
    Copy,
    Decision,
    article_of,
    choose_canonical,
    is_home_page,
    same_article,
)
from aggregator.errors import AggregatorError
from aggregator.tables import (
    POSTS_ONLY,
    AppearanceRow,
    CommentFeedRow,
    EntryRow,
    SourceRow,
    driver_slot,
)
from aggregator.urls import canonical_url as canonical_url_of

__all__ = [
    "RECENT_KEYS_MERGE_AT",
    "DedupeKeyRow",
    "DedupeSplitRow",
    "DuplicateMatch",
    "KeyFilter",
    "RecentKeyRow",
    "SplitError",
    "SplitResult",
    "appearances_to_split",
    "candidates",
    "filed_keys",
    "find_duplicate",
    "index_post",
    "insert_keys",
    "keys_of",
    "merge_recent_keys",
    "remove_keys",
    "remove_keys_of",
    "resolve_entry",
    "split_entry",
]

log = logging.getLogger(__name__)

#: Rows read per key: a key many posts share (a series title, a boilerplate
#: body) is worth little, and must not make one lookup expensive.
PER_KEY_LIMIT = 20
#: Keys waiting in dedupe_key_recent at which the store merges them into
#: dedupe_key (about 700 posts' worth). The recent table stays a few hundred
#: KB, so that every transaction rewriting all of its pages costs little; a
#: merge then writes each leaf page of dedupe_key that the keys fall in once.
RECENT_KEYS_MERGE_AT = 16_384
#: Candidate ranking: what a shared key says about being the same article.
_SCORES = {"canonical_url": 100, "fingerprint": 50, "lead": 4, "title": 4, "band": 1}


class SplitError(AggregatorError):
    """A split cannot be done as asked; the message says what to give instead."""


class DedupeKeyRow(SQLModel, table=True):
    """One key a canonical post is filed under (kind: band, lead or title)."""

    __tablename__ = "dedupe_key"
    # In key order, which lookups and merges walk; the index on entry_id
    # serves re-indexing and removal by entry. SQLite: the table is that one
    # B-tree, with no rowid table beside it to write as well (schema 5).
    __table_args__ = {"sqlite_with_rowid": False}

    key: str = Field(max_length=64, primary_key=True)
    entry_id: int = Field(foreign_key="entry.id", primary_key=True, index=True)
    kind: str = Field(max_length=8)


class RecentKeyRow(SQLModel, table=True):
    """A key filed since the last :func:`merge_recent_keys`; read like DedupeKeyRow."""

    __tablename__ = "dedupe_key_recent"
    # SQLite: one B-tree in key order, no rowid table and no second index.
    # Lookups by entry (re-indexing, pruning, splits) scan it; it is small.
    __table_args__ = {"sqlite_with_rowid": False}

    key: str = Field(max_length=64, primary_key=True)
    entry_id: int = Field(foreign_key="entry.id", primary_key=True)
    kind: str = Field(max_length=8)


class DedupeSplitRow(SQLModel, table=True):
    """A merge undone: posts from ``source_id`` never merge into ``entry_id`` again."""

    __tablename__ = "dedupe_split"
    __table_args__ = (UniqueConstraint("entry_id", "source_id", name="uq_dedupe_split"),)

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="entry.id", index=True)
    source_id: int = Field(foreign_key="source.id", index=True)
    #: The entry the split made or kept for the other side, for the record.
    other_entry_id: int | None = Field(default=None, foreign_key="entry.id")
    created_at: datetime


# ---------------------------------------------------------------------- lookup


def keys_of(entry: ArticleSource | Article) -> list[tuple[str, str]]:
    """The (key, kind) pairs *entry* is filed under: as the parser worker
    computed them (NormalizedEntry.dedupe_keys), else computed here."""
    keys = getattr(entry, "dedupe_keys", None)
    return list(keys) if keys is not None else article_of(entry).index_keys()


def candidates(
    session: Session,
    entry: ArticleSource | Article,
    *,
    source_id: int | None = None,
    limit: int = 50,
) -> list[EntryRow]:
    """Canonical posts that may be the same article as *entry*, most likely first.

    Those sharing a dedupe key, the canonical URL or the body fingerprint,
    at most PER_KEY_LIMIT per key (newest first) and *limit* in all. With
    *source_id*, posts that a split separated from that source are left out.
    """
    kinds: list[str] = []
    values: dict[str, object] = {"per_key": PER_KEY_LIMIT}
    for key, kind in keys_of(entry):
        values[f"v{len(kinds)}"] = key
        kinds.append(kind)
    for value, kind in ((entry.canonical_url, "canonical_url"),
                        (entry.fingerprint, "fingerprint")):
        if value and not (kind == "canonical_url" and is_home_page(value)):
            values[f"v{len(kinds)}"] = value
            kinds.append(kind)
    if not kinds:
        return []
    scores: dict[int, int] = {}
    for entry_id, score in session.execute(_lookup_statement(tuple(kinds)), values):
        scores[entry_id] = scores.get(entry_id, 0) + score
    if source_id is not None and scores:
        for split_from in session.exec(select(DedupeSplitRow.entry_id).where(
                DedupeSplitRow.source_id == source_id,
                col(DedupeSplitRow.entry_id).in_(list(scores)))):
            scores.pop(split_from, None)
    # Older posts first among equals: the group's original is the likelier match.
    ranked = sorted(scores, key=lambda entry_id: (-scores[entry_id], entry_id))[:limit]
    if not ranked:
        return []
    rows = {row.id: row for row in session.exec(select(EntryRow).where(
        col(EntryRow.id).in_(ranked), EntryRow.kind == "post"))}
    return [rows[entry_id] for entry_id in ranked if entry_id in rows]


class KeyFilter:
    """Which dedupe keys a SQLite store may hold: a Bloom filter, so that most
    of a new post's keys, which no stored post has, are never looked up.

    The store's ingest sessions carry one (``session.info[SESSION_KEY]``).
    It is built from the key tables the first time a transaction asks, then
    fed by :func:`insert_keys`. It cannot know keys filed by anyone else, so
    once built it writes its own token into the meta row WRITER; any other
    writer leaves another token there (its own filter's, or "" when it files
    keys without one). A transaction that finds another token, after the
    filter's own was seen committed, switches the filter off for good: every
    key is then looked up. Before that, the token may have been rolled back
    with the transaction that wrote it, and the filter is built again. Keys
    removed (pruning, splits) stay in it: a key wrongly said to be present
    costs a lookup, never a duplicate missed.
    """

    #: Where an ingest session carries the store's filter.
    SESSION_KEY = "dedupe_key_filter"
    #: The meta row naming the filter that knows every filed key.
    WRITER = "dedupe_key_writer"
    #: Bits per key and positions per key: about 2 % of absent keys looked
    #: up anyway, 1 MB per 1,000,000 keys (about 45,000 posts).
    BITS_PER_KEY = 8
    HASHES = 6
    #: Keys the first part holds; each added part holds three times as many as
    #: all before, so that few parts (each adding its false positives) are asked.
    FIRST_PART = 1 << 16
    #: Keys read per round trip when building.
    _BUILD_CHUNK = 1 << 16
    #: Stored keys past which the filter is not built: reading them costs about
    #: 2 µs a key (35 s for the 15,000,000 of 1,000,000 entries), a lookup saved
    #: about 5 µs a new key, and a daemon adds a few thousand keys a day. Grown
    #: from an empty store (a first import), a filter is free and stays.
    BUILD_LIMIT = 1_000_000
    _READY = "dedupe_key_filter_ready"

    def __init__(self, bloom: Any) -> None:
        self._bloom = bloom
        self.token = uuid.uuid4().hex
        #: (bits, keys it holds at most), and the keys in the last part.
        self._parts: list[tuple[bytearray, int]] = []
        self._in_last = 0
        self.built = False
        #: Whether this filter's token was seen in a committed row.
        self._confirmed = False
        self.off = False

    @classmethod
    def create(cls) -> KeyFilter | None:
        """A filter, or None without the compiled module (every key is looked up)."""
        return cls(speedups.bloom) if speedups.bloom is not None else None

    @classmethod
    def disown(cls, connection: Any) -> None:
        """Keys were filed that no filter saw: any filter's view is now partial."""
        connection.exec_driver_sql(
            """UPDATE meta SET value = '' WHERE "key" = ? AND value <> ''""", (cls.WRITER,))

    def ready(self, session: Session) -> bool:
        """Whether the filter answers for this transaction (built, and still whole)."""
        answer = session.info.get(self._READY)
        if answer is not None:
            return bool(answer)
        if not self.off:
            connection = session.connection()
            token = connection.exec_driver_sql(
                'SELECT value FROM meta WHERE "key" = ?', (self.WRITER,)).scalar()
            if self.built and token != self.token:
                if self._confirmed:
                    self.off = True
                    log.info("dedupe keys were filed without this process's key filter: "
                             "from now on every key is looked up in the database")
                else:  # its own token was rolled back with the transaction that wrote it
                    self.built = False
            elif self.built:
                self._confirmed = True
            if not self.off and not self.built:
                self._build(connection)
        session.info[self._READY] = not self.off
        return not self.off

    def may_hold(self, keys: Sequence[str]) -> bytes:
        """Per key, 1 when the store may hold it, 0 when it surely does not."""
        found = 0
        for bits, _ in self._parts:
            found |= int.from_bytes(self._bloom(bits, keys, self.HASHES, False), "little")
        return found.to_bytes(len(keys), "little")

    def add(self, keys: Sequence[str]) -> None:
        if not self._parts or self._in_last + len(keys) > self._parts[-1][1]:
            held = sum(capacity for _, capacity in self._parts)
            capacity = max(self.FIRST_PART, 3 * held, len(keys))
            self._parts.append((bytearray(capacity * self.BITS_PER_KEY // 8), capacity))
            self._in_last = 0
        self._bloom(self._parts[-1][0], keys, self.HASHES, True)
        self._in_last += len(keys)

    def _build(self, connection: Any) -> None:
        started = time.perf_counter()
        self._parts, self._in_last = [], 0
        # Counted no further than the limit: counting a big table reads all of it.
        count = connection.exec_driver_sql(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM dedupe_key LIMIT ?))"
            " + (SELECT count(*) FROM dedupe_key_recent)", (self.BUILD_LIMIT + 1,)).scalar_one()
        if count > self.BUILD_LIMIT:
            self.off = True
            log.info("the store holds more than %d dedupe keys, more than the key filter is "
                     "built from: every key is looked up in the database", self.BUILD_LIMIT)
            return
        if count:
            # One part for what is there, with room for a quarter more.
            capacity = max(self.FIRST_PART, count + count // 4)
            self._parts.append((bytearray(capacity * self.BITS_PER_KEY // 8), capacity))
            rows = connection.exec_driver_sql(
                'SELECT "key" FROM dedupe_key UNION ALL SELECT "key" FROM dedupe_key_recent')
            while chunk := rows.fetchmany(self._BUILD_CHUNK):
                self.add([key for (key,) in chunk])
        connection.exec_driver_sql(
            'INSERT INTO meta ("key", value) VALUES (?, ?) '
            'ON CONFLICT ("key") DO UPDATE SET value = excluded.value', (self.WRITER, self.token))
        self.built, self._confirmed = True, False
        if count:
            log.info("dedupe key filter: %d key(s) read in %.1f s", count,
                     time.perf_counter() - started)


def marks_present(session: Session, marks: Iterable[str]) -> set[str]:
    """Of these marks (see :func:`marks_of`), the ones some stored row carries.

    A post none of whose marks is present has no candidate: one query per
    kind of mark for a whole document, instead of a lookup per post, most of
    which find nothing on a cold pass.
    """
    by_kind: dict[str, list[str]] = {"k": [], "u": [], "f": []}
    for mark in marks:
        by_kind[mark[0]].append(mark[1:])
    key_filter: KeyFilter | None = session.info.get(KeyFilter.SESSION_KEY)
    if key_filter is not None and by_kind["k"] and key_filter.ready(session):
        keys = by_kind["k"]
        by_kind["k"] = list(compress(keys, key_filter.may_hold(keys)))
    present: set[str] = set()
    connection = session.connection()
    # Plain SQL through the driver: SQLAlchemy compiling an IN of hundreds of
    # values each time costs four times the query. Names are constants.
    slot = driver_slot(connection)
    for kind, values in by_kind.items():
        tables, column, only = _MARK_COLUMNS[kind]
        ordered = sorted(set(values))
        for start in range(0, len(ordered), 500):
            chunk = ordered[start:start + 500]
            slots = ", ".join([slot] * len(chunk))
            sql = " UNION ".join(f'SELECT "{column}" FROM {table} WHERE "{column}" IN ({slots})'
                                 f"{only}" for table in tables)
            present.update(kind + value for (value,) in
                           connection.exec_driver_sql(sql, tuple(chunk) * len(tables))
                           if value is not None)
    return present


#: Where each kind of mark is looked up: (tables, column, further condition).
_MARK_COLUMNS = {"k": (("dedupe_key", "dedupe_key_recent"), "key", ""),
                 "u": (("entry",), "canonical_url", f" AND {POSTS_ONLY}"),
                 "f": (("entry",), "fingerprint", f" AND {POSTS_ONLY}")}


def marks_of(entry: ArticleSource | Article) -> set[str]:
    """Everything :func:`candidates` looks *entry* up by, as prefixed strings:
    ``k`` dedupe key, ``u`` canonical URL, ``f`` body fingerprint."""
    marks = {"k" + key for key, _ in keys_of(entry)}
    if entry.canonical_url:
        marks.add("u" + entry.canonical_url)
    if entry.fingerprint:
        marks.add("f" + entry.fingerprint)
    return marks


@lru_cache(maxsize=64)
def _lookup_statement(kinds: tuple[str, ...]) -> CompoundSelect:
    """One statement for all of a post's keys: each a bounded index range, newest first.

    Built once per shape (the kinds, in order) and reused, so SQLAlchemy's
    compiled cache serves it: building 24 subqueries costs more than running them.
    """
    lookups = []
    for number, kind in enumerate(kinds):
        value = bindparam(f"v{number}")
        if kind in ("canonical_url", "fingerprint"):
            column = EntryRow.canonical_url if kind == "canonical_url" else EntryRow.fingerprint
            bounded = (select(col(EntryRow.id).label("entry_id"))
                       .where(column == value, POSTS_ONLY)
                       .order_by(col(EntryRow.id).desc()))
        else:
            # The newest per_key of each table, then of both together.
            newest = [
                select(table.entry_id).where(table.key == value)
                .order_by(col(table.entry_id).desc()).limit(bindparam("per_key")).subquery()
                for table in (DedupeKeyRow, RecentKeyRow)]
            both = union_all(*(select(part.c.entry_id) for part in newest)).subquery()
            bounded = select(both.c.entry_id).order_by(both.c.entry_id.desc())
        subquery = bounded.limit(bindparam("per_key")).subquery()
        lookups.append(select(subquery.c.entry_id, literal(_SCORES[kind]).label("score")))
    return union_all(*lookups)


@dataclass(frozen=True, slots=True)
class DuplicateMatch:
    """The canonical post a new post joins, and why."""

    entry: EntryRow
    decision: Decision


def find_duplicate(
    session: Session,
    entry: ArticleSource | Article,
    *,
    source_id: int | None = None,
    limit: int = 50,
) -> DuplicateMatch | None:
    """The canonical post *entry* is a copy of, or None.

    Of several matching candidates the strongest evidence wins: the
    canonical URL or exact body, then the most shared text.
    """
    best: DuplicateMatch | None = None
    best_rank = (-1, -1.0)
    found = candidates(session, entry, source_id=source_id, limit=limit)
    # Tokenizing a post costs more than the lookup; most posts have no candidate.
    article = article_of(entry) if found else None
    for row in found:
        assert article is not None
        decision = same_article(article, row)
        if not decision.same:
            continue
        strong = decision.reason in ("canonical_url", "fingerprint")
        rank = (1 if strong else 0, decision.jaccard)
        if rank > best_rank:
            best, best_rank = DuplicateMatch(row, decision), rank
    return best


# ---------------------------------------------------------------------- keys


def index_post(session: Session, entry_row_id: int, entry: ArticleSource | Article, *,
               new: bool = False) -> None:
    """File canonical post *entry_row_id* under the keys of *entry* (one of its copies).

    Keys add up: every copy merged into a post is findable through its own
    text, and an edit keeps the old keys (a later copy of the old version
    still finds the group; same_article decides against the current text).
    ``new``: the row was just created, so it has no keys yet to look up.
    """
    keys = dict(keys_of(entry))
    if not keys:
        return
    present = {} if new else filed_keys(session, entry_row_id)
    insert_keys(session, [(entry_row_id, key, kind)
                          for key, kind in keys.items() if key not in present])


def filed_keys(session: Session, entry_row_id: int) -> dict[str, str]:
    """The keys *entry_row_id* is filed under, merged or recent: key → kind."""
    return dict(session.execute(union_all(*(
        select(table.key, table.kind).where(table.entry_id == entry_row_id)
        for table in (DedupeKeyRow, RecentKeyRow)))).all())


def insert_keys(session: Session, rows: Sequence[tuple[int, str, str]]) -> None:
    """File posts under keys: (entry_id, key, kind) rows, none filed yet.

    They go into dedupe_key_recent; ``session.info["recent_keys"]`` counts
    them, for the store to merge once enough have gathered.
    """
    if not rows:
        return
    # Through the driver: a cold pass files some 22 keys per post, and
    # SQLAlchemy's per-row parameter handling cost more than the inserts.
    connection = session.connection()
    slot = driver_slot(connection)
    connection.exec_driver_sql(
        f'INSERT INTO dedupe_key_recent (entry_id, "key", kind) VALUES ({slot}, {slot}, {slot})',
        list(rows))
    session.info["recent_keys"] = session.info.get("recent_keys", 0) + len(rows)
    key_filter: KeyFilter | None = session.info.get(KeyFilter.SESSION_KEY)
    if key_filter is not None and key_filter.ready(session):
        key_filter.add([key for _, key, _ in rows])
    elif connection.dialect.name == "sqlite":
        # Any other process's filter must learn that it no longer knows every key.
        KeyFilter.disown(connection)


#: Keys per statement of a merge on SQLite (see merge_recent_keys).
_MERGE_SLICE = 1024


def merge_recent_keys(session: Session) -> int:
    """Move every key of dedupe_key_recent into dedupe_key, in key order; how many.

    One statement on PostgreSQL, so that keys another worker files meanwhile
    are either moved or left for the next merge, never deleted unmoved;
    SQLite's single writer makes its several statements one step.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return connection.exec_driver_sql(
            'WITH moved AS (DELETE FROM dedupe_key_recent RETURNING entry_id, "key", kind) '
            'INSERT INTO dedupe_key (entry_id, "key", kind) '
            'SELECT entry_id, "key", kind FROM moved ORDER BY "key", entry_id '
            "ON CONFLICT DO NOTHING").rowcount
    # In slices: one statement writing thousands of keys keeps a statement
    # journal of every page it changes, in memory (temp_store), which raised
    # a cold pass's peak RSS by 15 MB. OR IGNORE, like ON CONFLICT above:
    # nothing files a key twice, but should both tables hold one, the merge
    # keeps it once instead of failing.
    moved = 0
    while True:
        connection.exec_driver_sql(
            'INSERT OR IGNORE INTO dedupe_key (entry_id, "key", kind) '
            'SELECT entry_id, "key", kind FROM dedupe_key_recent '
            f'ORDER BY "key", entry_id LIMIT {_MERGE_SLICE}')
        done = connection.exec_driver_sql(
            'DELETE FROM dedupe_key_recent WHERE ("key", entry_id) IN (SELECT "key", entry_id '
            f'FROM dedupe_key_recent ORDER BY "key", entry_id LIMIT {_MERGE_SLICE})').rowcount
        moved += done
        if done < _MERGE_SLICE:
            return moved


def remove_keys(session: Session, entry_row_id: int) -> None:
    """Forget every key of *entry_row_id* (before re-indexing it, or when it is pruned)."""
    remove_keys_of(session, [entry_row_id])


def remove_keys_of(session: Session, entry_row_ids: Sequence[int]) -> None:
    """Forget every key of these posts (at most a few hundred ids at a time)."""
    for table in (DedupeKeyRow, RecentKeyRow):
        session.execute(delete(table).where(col(table.entry_id).in_(list(entry_row_ids))))


# ---------------------------------------------------------------------- split


@dataclass(frozen=True, slots=True)
class SplitResult:
    """What split_entry did."""

    #: The entry id now holding the appearances that stayed.
    staying_entry_id: int
    #: The entry id now holding the appearances split off.
    split_entry_id: int
    #: Published uid (32 hex) of the entry that was created.
    new_uid: str
    moved_comments: int
    #: Sources whose feeds are re-read on their next fetch, because the entry
    #: now standing for them holds the other side's text until then.
    refreshed_sources: tuple[int, ...]


def resolve_entry(session: Session, given: str) -> EntryRow:
    """The post a user named by its published id ("urn:uuid:…", a uuid or 32 hex)."""
    text = given.strip().removeprefix("urn:uuid:")
    try:
        uid = uuid.UUID(text).hex
    except ValueError as error:
        raise SplitError(
            f"{given!r} is not an entry id; give the id shown in the feed (urn:uuid:…)"
        ) from error
    row = session.exec(select(EntryRow).where(EntryRow.uid == uid)).first()
    if row is None or row.kind != "post":
        raise SplitError(f"no post has the id {given}; `aggregator export` lists them")
    return row


def appearances_to_split(
    session: Session, entry_id: int, source_name: str | None = None,
) -> list[int]:
    """Appearance ids of the source to split off *entry_id*.

    Without *source_name* the post must have appeared at exactly two
    sources, and the one that is not the canonical copy's goes.
    """
    entry = session.get(EntryRow, entry_id)
    if entry is None:
        raise SplitError(f"no entry {entry_id}")
    appearances = list(session.exec(select(AppearanceRow).where(
        AppearanceRow.entry_id == entry_id).order_by(col(AppearanceRow.id))))
    names = {row.id: row.name for row in session.exec(select(SourceRow).where(
        col(SourceRow.id).in_({a.source_id for a in appearances})))}
    if source_name is None:
        others = sorted({names[a.source_id] for a in appearances
                         if a.source_id != entry.source_id})
        if len(others) != 1:
            listed = ", ".join(sorted(set(names.values())))
            raise SplitError(
                f"this post appeared at {listed or 'no source'}; name the source to split "
                "off with --source NAME" if others else "this post has no copy to split off"
            )
        source_name = others[0]
    chosen = [a.id for a in appearances if names.get(a.source_id) == source_name]
    if not chosen:
        raise SplitError(f"the post did not appear at a source named {source_name!r}")
    return [a for a in chosen if a is not None]


def split_entry(
    session: Session,
    entry_id: int,
    appearance_ids: Sequence[int],
    *,
    now: datetime | None = None,
) -> SplitResult:
    """Undo a wrong merge: *appearance_ids* of post *entry_id* become their own post.

    The side holding the copy published now (the row's source) keeps the
    row and id; the other side gets a new row whose id is derived as usual,
    from the source and original id of its first-seen appearance.
    Comments and comment feeds of the split-off sources go with them. The
    side whose text belonged to the other copy is marked for re-reading,
    so its next fetch restores its own text. Each side's sources are
    recorded in dedupe_split against the other side's entry, so they never
    merge again. The caller commits.
    """
    from aggregator.store import entry_uid  # the store imports this module

    now = now or datetime.now(UTC)
    entry = session.get(EntryRow, entry_id)
    if entry is None or entry.kind != "post":
        raise SplitError(f"no post {entry_id}")
    appearances = list(session.exec(select(AppearanceRow).where(
        AppearanceRow.entry_id == entry_id).order_by(col(AppearanceRow.id))))
    leaving = [a for a in appearances if a.id in set(appearance_ids)]
    staying = [a for a in appearances if a.id not in set(appearance_ids)]
    if len(leaving) != len(set(appearance_ids)):
        raise SplitError("some of the appearances to split off are not this post's")
    if not leaving or not staying:
        raise SplitError("a split needs appearances on both sides")
    sources = {row.id: row for row in session.exec(select(SourceRow).where(
        col(SourceRow.id).in_({a.source_id for a in appearances})))}

    def derived_uid(appearance: AppearanceRow) -> str:
        return entry_uid(sources[appearance.source_id].url, "post", appearance.identity_key)

    # The side whose copy is published now keeps the row and its id, so
    # subscribers who saw that entry see it unchanged; the other copy is new.
    if any(a.source_id == entry.source_id for a in leaving):
        keeping, moving = leaving, staying
    else:
        keeping, moving = staying, leaving
    first = min(moving, key=lambda a: (_utc(a.first_seen), a.id or 0))
    new_uid = derived_uid(first)
    if session.exec(select(EntryRow.id).where(EntryRow.uid == new_uid)).first() is not None:
        # Taken by an earlier split of the same group: still derived, still stable.
        new_uid = uuid.uuid5(uuid.UUID(hex=new_uid), "split").hex
    content_source = entry.source_id
    moved = EntryRow(
        uid=new_uid, kind="post", source_id=first.source_id, title=entry.title,
        link=entry.link, canonical_url=entry.canonical_url, content_html=entry.content_html,
        summary_html=entry.summary_html, author=entry.author, published=entry.published,
        updated=now, first_seen=first.first_seen, categories=entry.categories,
        topics=entry.topics, language=entry.language, content_hash=entry.content_hash,
        fingerprint=entry.fingerprint, comments_feed_url=entry.comments_feed_url,
        comment_count_declared=entry.comment_count_declared, text=entry.text,
        pruned=entry.pruned,
    )
    session.add(moved)
    session.flush()
    assert moved.id is not None
    for appearance in moving:
        appearance.entry_id = moved.id
        session.add(appearance)

    refreshed: list[int] = []
    for row, group in ((entry, keeping), (moved, moving)):
        canonical = _canonical_appearance(group, sources)
        row.source_id = canonical.source_id
        if canonical.link:
            row.link = canonical.link
            row.canonical_url = canonical_url_of(canonical.link)
        if canonical.published:
            row.published = canonical.published
        if content_source not in {a.source_id for a in group}:
            # This side shows the other copy's text until its feed is read
            # again: forget what we read so that the next fetch re-applies it.
            row.fingerprint = None
            for appearance in group:
                if appearance.source_id == canonical.source_id:
                    appearance.content_hash = ""
                    session.add(appearance)
            source = sources[canonical.source_id]
            source.body_hash = source.etag = source.last_modified = None
            session.add(source)
            refreshed.append(canonical.source_id)
        session.add(row)

    moving_sources = {a.source_id for a in moving} - {a.source_id for a in keeping}
    moved_comments = 0
    for comment in session.exec(select(EntryRow).where(
            EntryRow.post_id == entry.id, col(EntryRow.source_id).in_(moving_sources))):
        comment.post_id = moved.id
        if comment.parent_id == entry.id:
            comment.parent_id = moved.id
        session.add(comment)
        moved_comments += 1
    for feed in session.exec(select(CommentFeedRow).where(
            CommentFeedRow.post_entry_id == entry.id,
            col(CommentFeedRow.source_id).in_(moving_sources))):
        feed.post_entry_id = moved.id
        session.add(feed)

    remove_keys(session, entry.id or 0)
    for row, group in ((entry, keeping), (moved, moving)):
        if content_source in {a.source_id for a in group}:
            index_post(session, row.id or 0, row)
    _remember_split(session, entry.id or 0, moved.id, moving, keeping, now)
    _remember_split(session, moved.id, entry.id or 0, keeping, moving, now)
    session.flush()
    return SplitResult(
        staying_entry_id=(entry.id if keeping is staying else moved.id) or 0,
        split_entry_id=(moved.id if keeping is staying else entry.id) or 0,
        new_uid=new_uid, moved_comments=moved_comments,
        refreshed_sources=tuple(refreshed),
    )


def _remember_split(
    session: Session, entry_id: int, other_entry_id: int,
    others: list[AppearanceRow], own: list[AppearanceRow], now: datetime,
) -> None:
    own_sources = {a.source_id for a in own}
    for source_id in sorted({a.source_id for a in others} - own_sources):
        exists = session.exec(select(DedupeSplitRow.id).where(
            DedupeSplitRow.entry_id == entry_id, DedupeSplitRow.source_id == source_id)).first()
        if exists is None:
            session.add(DedupeSplitRow(entry_id=entry_id, source_id=source_id,
                                       other_entry_id=other_entry_id, created_at=now))


def _canonical_appearance(
    group: list[AppearanceRow], sources: dict[int | None, SourceRow],
) -> AppearanceRow:
    copies = [
        Copy(
            published=a.published or a.first_seen, link=a.link,
            site_urls=(sources[a.source_id].site_url, sources[a.source_id].url),
            first_seen=a.first_seen,
        )
        for a in group
    ]
    return group[choose_canonical(copies)]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
