"""The topic index: which posts are filed under which topic, newest first.

``entry_topic`` holds one row per (post, topic slug) with the post's
publication date, indexed (topic, published desc, entry_id desc): a topic
feed's newest posts are an index walk that stops after LIMIT rows, whatever
the number of stored posts, where matching ``entry.topics`` (JSON text) with
LIKE read every post.

``entry.topics`` stays the record of a post's topics (feeds show it); this
table mirrors it, with the post's ``published``, and is kept in step wherever
either changes: ingest, re-filing, merging and splitting, retention.
Everything here works inside a Session (or Connection) the caller owns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection, Index, delete, text
from sqlmodel import Field, Session, SQLModel, col

from aggregator.tables import EntryRow, insert_rows

__all__ = ["EntryTopicRow", "backfill", "forget_entries", "replace_topics"]

#: Ids per DELETE … IN (…): well below every engine's limit on bound parameters.
_CHUNK = 500


class EntryTopicRow(SQLModel, table=True):
    """One topic a canonical post is filed under."""

    __tablename__ = "entry_topic"

    entry_id: int = Field(foreign_key="entry.id", primary_key=True, ondelete="CASCADE")
    topic: str = Field(primary_key=True, max_length=100)
    #: The post's ``published`` (a copy, so the topic feed's order is in this index).
    published: datetime


# Newest first within a topic; ties broken by id, as every published feed does.
Index("ix_entry_topic_newest", EntryTopicRow.topic, col(EntryTopicRow.published).desc(),
      col(EntryTopicRow.entry_id).desc())


def replace_topics(
    session: Session, items: Sequence[tuple[int, datetime, Sequence[str]]], *,
    new: bool = False,
) -> None:
    """File each (entry_id, published, topics) under exactly those topics.

    An entry's previous rows go, its new ones come: call it whenever a
    post's topics or publication date may have changed. Two statements for
    the whole batch (per 500 entries), so re-filing many posts stays cheap.
    ``new``: the entries were just created and have no rows to drop.
    """
    if not items:
        return
    if not new:
        forget_entries(session, [entry_id for entry_id, _, _ in items])
    rows = [
        {"entry_id": entry_id, "topic": topic, "published": published}
        for entry_id, published, topics in items
        for topic in dict.fromkeys(topics)
    ]
    insert_rows(session, EntryTopicRow.__table__, rows)  # type: ignore[attr-defined]


def forget_entries(session: Session, entry_ids: Iterable[int]) -> None:
    """Drop every topic row of these entries (retention, or before re-filing them)."""
    ids = list(entry_ids)
    for start in range(0, len(ids), _CHUNK):
        session.execute(delete(EntryTopicRow).where(
            col(EntryTopicRow.entry_id).in_(ids[start:start + _CHUNK])))


def backfill(connection: Connection) -> int:
    """Fill the index from ``entry.topics`` of every published post (schema 1 → 2).

    One INSERT … SELECT that the database runs by itself; rows already
    present are kept, so running it twice does no harm. Returns the rows added.
    """
    entry = EntryRow.__tablename__
    if connection.dialect.name == "sqlite":
        statement = (
            f"INSERT INTO entry_topic (entry_id, topic, published) "
            f"SELECT e.id, j.value, e.published FROM {entry} AS e, json_each(e.topics) AS j "
            f"WHERE e.kind = 'post' AND e.pruned = 0 AND json_valid(e.topics) "
            f"AND j.type = 'text' ON CONFLICT DO NOTHING"
        )
    else:
        statement = (
            f"INSERT INTO entry_topic (entry_id, topic, published) "
            f"SELECT e.id, j.value, e.published FROM {entry} AS e "
            f"CROSS JOIN LATERAL json_array_elements_text(e.topics::json) AS j(value) "
            f"WHERE e.kind = 'post' AND NOT e.pruned ON CONFLICT DO NOTHING"
        )
    return connection.execute(text(statement)).rowcount or 0
