"""The topic index (entry_topic): kept in step with every post's topics, on both back ends."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlmodel import Session, select
from test_store import distinct_body, fetched, normalized, parsed

from aggregator.config import SourceConfig
from aggregator.store import Store, StoredPost
from aggregator.tables import SCHEMA_VERSION, EntryRow
from aggregator.topic_index import EntryTopicRow
from aggregator.types import NormalizedEntry, ParsedEntry, ParsedFeed

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def by_title(entry: NormalizedEntry | StoredPost) -> tuple[str, ...]:
    """Topic rules for these tests: a title word per topic."""
    words = entry.title.lower().split()
    return tuple(slug for slug in ("merken", "video", "podcast") if slug in words)


def ingest(store: Store, name: str, *entries: ParsedEntry,
           topics_for: Callable[[NormalizedEntry], tuple[str, ...]] = by_title) -> None:
    [state] = store.claim_due(now=NOW, owner="test", lease=timedelta(minutes=5), names=[name],
                              force=True)
    feed = ParsedFeed(format="rss20", title=name, link=None, language="nl", entries=())
    store.ingest_source_feed(
        state, now=NOW, fetch=fetched(state.fetch_url), feed=feed,
        entries=[normalized(e, state.fetch_url) for e in entries], topics_for=topics_for,
        follow_comments=False, site_comments_url=None, next_check_at=NOW, body_hash="x",
    )


def post(number: int, title: str, *, day: int = 1, link: str | None = None) -> ParsedEntry:
    return parsed(f"p-{number}", link or f"https://a.example/p{number}", title=title,
                  body=distinct_body(number), published=datetime(2026, 10, day, tzinfo=UTC))


def filed(store: Store) -> set[tuple[str, str]]:
    """(title, topic) of every topic row, checked against the entry's own date."""
    with Session(store.engine) as session:
        rows = session.exec(select(EntryRow.title, EntryTopicRow.topic, EntryRow.published,
                                   EntryTopicRow.published)
                            .join(EntryRow, EntryRow.id == EntryTopicRow.entry_id)).all()
    assert all(entry_date == topic_date for _, _, entry_date, topic_date in rows)
    return {(title, topic) for title, topic, _, _ in rows}


def newest_in(store: Store, topic: str, count: int = 1) -> list[str]:
    """Titles of the newest ``count`` posts of ``topic``, as publishing sees them."""
    posts, _, _ = store.published_entries(topics=[topic], max_entries=count)
    return [p.title for p in sorted(posts, key=lambda p: (p.published, p.id), reverse=True)
            if topic in p.topics][:count]


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    store.sync_sources([SourceConfig(name="a", url="https://a.example/feed/"),
                        SourceConfig(name="b", url="https://b.example/feed/")], NOW)
    yield store
    store.close()


def test_topic_feeds_right_after_ingest_and_edits(store: Store) -> None:
    ingest(store, "a", post(1, "Sterke merken online", day=1),
           post(2, "Een video over merken", day=2), post(3, "Zomaar een bericht", day=3))
    assert filed(store) == {("Sterke merken online", "merken"),
                            ("Een video over merken", "merken"),
                            ("Een video over merken", "video")}
    # Found through the index, however much newer the posts outside the topic are.
    assert newest_in(store, "video") == ["Een video over merken"]
    assert newest_in(store, "merken", 2) == ["Een video over merken", "Sterke merken online"]
    # An edit re-files the post: out of one topic, into another.
    ingest(store, "a", post(2, "Een podcast over merken", day=2))
    assert filed(store) == {("Sterke merken online", "merken"),
                            ("Een podcast over merken", "merken"),
                            ("Een podcast over merken", "podcast")}
    assert newest_in(store, "video") == []


def test_a_merged_copy_that_becomes_canonical_refiles_the_post(store: Store) -> None:
    ingest(store, "b", post(1, "Een kopie zonder onderwerp", day=5,
                            link="https://a.example/2026/origineel/"))
    # The original, published earlier at its own site, takes over the entry.
    ingest(store, "a", post(1, "Het origineel over merken", day=4,
                            link="https://a.example/2026/origineel/"))
    assert store.counts() == {"post": 1}
    assert filed(store) == {("Het origineel over merken", "merken")}


def test_refiling_when_rules_change(store: Store) -> None:
    ingest(store, "a", post(1, "Sterke merken online", day=1), post(2, "Een video", day=2))
    assert store.refile_topics(by_title) == 0

    def new_rules(entry: StoredPost) -> tuple[str, ...]:
        return ("alles",) if "video" in entry.title.lower() else ()

    assert store.refile_topics(new_rules) == 2
    assert filed(store) == {("Een video", "alles")}
    assert newest_in(store, "alles") == ["Een video"]
    assert newest_in(store, "merken") == []


def test_pruned_posts_leave_their_topics(store: Store) -> None:
    ingest(store, "a", post(1, "Oude merken", day=1), post(2, "Nieuwe merken", day=20))
    assert store.prune(published_before=datetime(2026, 10, 10, tzinfo=UTC)) == 1
    assert filed(store) == {("Nieuwe merken", "merken")}
    assert newest_in(store, "merken", 5) == ["Nieuwe merken"]


def test_split_gives_both_sides_their_topic_rows(store: Store) -> None:
    ingest(store, "a", post(1, "Sterke merken online", day=1,
                            link="https://a.example/2026/merken/"))
    ingest(store, "b", parsed("b-1", "https://a.example/2026/merken/?utm_source=x",
                              title="Sterke merken online", body=distinct_body(1),
                              published=datetime(2026, 10, 2, tzinfo=UTC)))
    [record] = list(store.export_records())
    store.split_duplicate(record["id"], source_name="b")
    assert store.counts() == {"post": 2}
    with Session(store.engine) as session:
        rows = session.exec(select(EntryTopicRow.entry_id, EntryTopicRow.topic)).all()
    assert len(rows) == 2 and {topic for _, topic in rows} == {"merken"}


def downgrade_to_version_1(store: Store) -> None:
    """Make the store look as schema version 1 left it."""
    store.merge_recent_keys()  # version 1 had only dedupe_key
    with store.engine.begin() as connection:
        connection.execute(text("DROP TABLE dedupe_key_recent"))
        connection.execute(text("DROP TABLE entry_topic"))
        connection.execute(text("DROP INDEX ix_entry_newest"))
        connection.execute(text("DROP INDEX ix_entry_newest_by_language"))
        connection.execute(text("CREATE INDEX ix_entry_kind_published ON entry (kind, published)"))
        connection.execute(text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))


def test_a_version_1_store_is_upgraded_in_place(database_url: str) -> None:
    store = Store(database_url)
    store.sync_sources([SourceConfig(name="a", url="https://a.example/feed/")], NOW)
    ingest(store, "a", post(1, "Sterke merken online", day=1),
           post(2, "Een video over merken", day=2), post(3, "Oud nieuws", day=1))
    expected = filed(store)
    downgrade_to_version_1(store)
    store.close()
    # Several workers start at once: one upgrades, the others find it done.
    stores: list[Store] = []
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            stores.append(Store(database_url))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(stores) == 3
    upgraded = stores[0]
    try:
        assert upgraded.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert filed(upgraded) == expected
        assert newest_in(upgraded, "video") == ["Een video over merken"]
        with upgraded.engine.connect() as connection:
            names = {index["name"] for index in
                     connection.dialect.get_indexes(connection, "entry")}
        assert {"ix_entry_newest", "ix_entry_newest_by_language"} <= names
        assert "ix_entry_kind_published" not in names
    finally:
        for opened in stores:
            opened.close()


def test_publishing_reads_only_index_ranges(tmp_path: Path) -> None:
    """On SQLite, every query of published_entries is an index search, never a table scan."""
    store = Store(f"sqlite:///{tmp_path / 'plan.db'}")
    store.sync_sources([SourceConfig(name="a", url="https://a.example/feed/")], NOW)
    ingest(store, "a", post(1, "Sterke merken online"), post(2, "Een video", day=2))
    statements: list[tuple[str, object]] = []

    def remember(_conn: object, _cursor: object, statement: str, parameters: object,
                 _context: object, _many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", remember)
    try:
        store.published_entries(topics=["merken", "video"], max_entries=10)
    finally:
        event.remove(store.engine, "before_cursor_execute", remember)
    assert statements
    with store.engine.connect() as connection:
        for statement, parameters in statements:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                              parameters).all()  # type: ignore[arg-type]
            details = [row[-1] for row in plan]
            scans = [d for d in details if d.startswith("SCAN") and "seen" not in d]
            assert not scans, (statement, details)
            if "LIMIT" in statement:  # a newest-first list: the index gives the order
                assert not any("TEMP B-TREE" in d for d in details), (statement, details)
    store.close()
