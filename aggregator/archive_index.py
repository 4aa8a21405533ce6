"""The archive index: which entries go into which RFC 5005 archive document.

RFC 5005 §4 wants archive documents whose set of entries does not change, at
addresses that do not change. Publication dates cannot give that (a blog
added today brings posts from years ago), so each archived feed numbers its
entries in the order the publisher first saw them: ``archive_slot`` holds
(feed, seq, entry_id), and block *k* (1-based) is seq ``(k-1)*B … k*B-1``.
A block is closed, and its document written once, when all B slots are
taken; the entries of the last, open block stay in the subscription document.

Numbering happens at publish time, under the publish lock, in entry-id order.
On PostgreSQL every transaction that creates entries holds the ingest lock,
so ids commit in order there too; each round still looks back
``LATE_WINDOW`` ids below the highest one numbered, in case one did not.

Retention empties pruned entries; their blocks must be written again without
them. ``archive_block`` keeps a version per block that retention bumps, and
the version is part of what a block's document is rendered from.
Everything here works inside a Session (or Connection) the caller owns.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Index, func, text
from sqlmodel import Field, Session, SQLModel, col, select

__all__ = [
    "BLOCK_SIZE",
    "FEEDS",
    "ArchiveBlockRow",
    "ArchiveSlotRow",
    "block_bounds",
    "block_entry_ids",
    "block_versions",
    "bump_blocks_of",
    "closed_blocks",
    "number_new_entries",
    "slot_count",
]

#: Entries per archive document: as many as a subscription document shows.
BLOCK_SIZE = 100
#: Archived feeds and the entry kind each numbers.
FEEDS = {"all": "post", "comments": "comment"}
#: How far below the highest numbered id a round looks for entries committed late
#: (PostgreSQL): every one of them is read, so the look back is short.
LATE_WINDOW = 1_000
_CHUNK = 500


class ArchiveSlotRow(SQLModel, table=True):
    """Entry ``entry_id`` is number ``seq`` of archived feed ``feed``."""

    __tablename__ = "archive_slot"

    feed: str = Field(primary_key=True, max_length=20)
    seq: int = Field(primary_key=True)
    entry_id: int = Field(foreign_key="entry.id")


# An entry has one number per feed; finding the unnumbered ones probes this.
Index("uq_archive_slot_entry", ArchiveSlotRow.feed, ArchiveSlotRow.entry_id, unique=True)


class ArchiveBlockRow(SQLModel, table=True):
    """A block whose entries changed after it closed (retention): render it again."""

    __tablename__ = "archive_block"

    feed: str = Field(primary_key=True, max_length=20)
    block: int = Field(primary_key=True)
    version: int = 1


def number_new_entries(session: Session, feed: str, limit: int, late_window: int) -> int:
    """Give the next numbers of ``feed`` to its live entries that have none.

    At most ``limit`` entries, lowest id first. Returns how many were numbered.
    Entries are looked for above the highest id numbered less ``late_window``:
    0 where ids are committed in order (SQLite has one writer at a time), and
    :data:`LATE_WINDOW` on PostgreSQL. A scan from id 0 would read every row.
    One INSERT … SELECT: the database reads the next number and writes the
    slots in one statement, so two publishers cannot hand out one number
    twice (the loser fails on the primary key and numbers nothing).
    """
    kind = FEEDS[feed]
    highest = session.execute(
        select(func.max(ArchiveSlotRow.entry_id)).where(ArchiveSlotRow.feed == feed)
    ).scalar()
    low = max(0, (highest or 0) - late_window)
    not_pruned = "0" if session.get_bind().dialect.name == "sqlite" else "false"
    statement = text(f"""
        INSERT INTO archive_slot (feed, seq, entry_id)
        SELECT :feed, base.next + ROW_NUMBER() OVER (ORDER BY e.id) - 1, e.id
        FROM entry AS e,
             (SELECT COALESCE(MAX(seq) + 1, 0) AS next FROM archive_slot
              WHERE feed = :feed) AS base
        WHERE e.kind = :kind AND e.pruned = {not_pruned} AND e.id > :low
          AND NOT EXISTS (SELECT 1 FROM archive_slot AS s
                          WHERE s.feed = :feed AND s.entry_id = e.id)
        ORDER BY e.id
        LIMIT :limit
    """)
    result = session.execute(statement, {"feed": feed, "kind": kind, "low": low,
                                         "limit": limit})
    return result.rowcount or 0  # type: ignore[attr-defined]


def slot_count(session: Session, feed: str) -> int:
    """How many entries ``feed`` has numbered (the next number)."""
    top = session.execute(
        select(func.max(ArchiveSlotRow.seq)).where(ArchiveSlotRow.feed == feed)).scalar()
    return 0 if top is None else int(top) + 1


def block_entry_ids(session: Session, feed: str, first_seq: int, last_seq: int) -> list[int]:
    """The entries numbered ``first_seq`` … ``last_seq`` in ``feed``, by number."""
    return list(session.exec(
        select(ArchiveSlotRow.entry_id).where(
            ArchiveSlotRow.feed == feed, col(ArchiveSlotRow.seq) >= first_seq,
            col(ArchiveSlotRow.seq) <= last_seq,
        ).order_by(col(ArchiveSlotRow.seq))))


def block_versions(session: Session, feed: str) -> dict[int, int]:
    """Blocks of ``feed`` changed since they closed, with their versions (others are 0)."""
    return dict(session.exec(
        select(ArchiveBlockRow.block, ArchiveBlockRow.version)
        .where(ArchiveBlockRow.feed == feed)).all())


def bump_blocks_of(session: Session, entry_ids: Iterable[int]) -> None:
    """Mark the blocks holding these entries as changed (retention emptied them)."""
    ids = list(entry_ids)
    blocks: set[tuple[str, int]] = set()
    # Feed by feed: the (feed, entry_id) index serves these, entry_id alone would not.
    for feed in FEEDS:
        for start in range(0, len(ids), _CHUNK):
            for seq in session.exec(select(ArchiveSlotRow.seq).where(
                    ArchiveSlotRow.feed == feed,
                    col(ArchiveSlotRow.entry_id).in_(ids[start:start + _CHUNK]))):
                blocks.add((feed, seq // BLOCK_SIZE + 1))
    for feed, block in sorted(blocks):
        row = session.get(ArchiveBlockRow, (feed, block))
        if row is None:
            session.add(ArchiveBlockRow(feed=feed, block=block, version=1))
        else:
            row.version += 1
    session.flush()


def block_bounds(block: int) -> tuple[int, int]:
    """The first and last seq of 1-based ``block``."""
    return (block - 1) * BLOCK_SIZE, block * BLOCK_SIZE - 1


def closed_blocks(count: int) -> int:
    """How many blocks are full when ``count`` entries are numbered."""
    return count // BLOCK_SIZE
