"""dedupe_index on SQLite and PostgreSQL: candidate lookup, keys, and undoing a merge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from aggregator import dedupe_index  # registers dedupe_key and dedupe_split first
from aggregator.dedupe_index import (
    PER_KEY_LIMIT,
    DedupeKeyRow,
    DedupeSplitRow,
    RecentKeyRow,
    SplitError,
    appearances_to_split,
    candidates,
    filed_keys,
    find_duplicate,
    index_post,
    marks_of,
    marks_present,
    merge_recent_keys,
    remove_keys,
    resolve_entry,
    split_entry,
)
from aggregator.store import Store, entry_uid, key_hash, public_id
from aggregator.tables import AppearanceRow, CommentFeedRow, EntryRow, SourceRow
from aggregator.types import NormalizedEntry
from tests.test_dedupe import entry, seed_post

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    assert dedupe_index.DedupeKeyRow.__tablename__ == "dedupe_key"
    store = Store(database_url)
    yield store
    store.close()


@pytest.fixture
def session(store: Store) -> Iterator[Session]:
    with Session(store.engine) as session:
        yield session


def add_source(session: Session, name: str) -> SourceRow:
    row = SourceRow(name=name, url=f"https://{name}.example/feed/",
                    site_url=f"https://{name}.example/", created_at=NOW,
                    etag='"v1"', body_hash="seen")
    session.add(row)
    session.flush()
    return row


def add_post(session: Session, source: SourceRow, post: NormalizedEntry,
             into: EntryRow | None = None) -> EntryRow:
    """What the store does for a new post (or a copy merged *into* a post), then index it."""
    row = into
    if row is None:
        row = EntryRow(
            uid=entry_uid(source.url, "post", post.identity_key), kind="post",
            source_id=source.id or 0, title=post.title, link=post.link,
            canonical_url=post.canonical_url, content_html=post.content_html,
            published=post.published, updated=post.published, first_seen=NOW,
            language=post.language, content_hash=post.content_hash,
            fingerprint=post.fingerprint, text=post.text, topics=json.dumps(["merk"]),
        )
        session.add(row)
        session.flush()
    session.add(AppearanceRow(
        entry_id=row.id or 0, source_id=source.id or 0, kind="post",
        key_hash=key_hash(post.identity_key), identity_key=post.identity_key,
        original_id=post.original_id, feed_url=source.url, link=post.link,
        published=post.published, content_hash=post.content_hash,
        first_seen=NOW if into is None else NOW + timedelta(hours=1),
    ))
    index_post(session, row.id or 0, post)
    session.flush()
    return row


def add_comment(session: Session, source: SourceRow, post: EntryRow, name: str) -> EntryRow:
    row = EntryRow(
        uid=entry_uid(source.url, "comment", name), kind="comment", source_id=source.id or 0,
        post_id=post.id, parent_id=post.id, title=name, content_html=f"<p>{name}</p>",
        published=NOW, updated=NOW, first_seen=NOW, content_hash=name,
    )
    session.add(row)
    session.flush()
    return row


def edited_000(link: str) -> NormalizedEntry:
    title, paragraphs = seed_post("000")
    return entry(title, [*paragraphs[:2], "Wat vinden jullie hiervan?", *paragraphs[2:]], link)


# ---------------------------------------------------------------------- lookup


def test_a_light_edit_finds_its_original_and_not_the_related_article(session: Session):
    a, b = add_source(session, "a"), add_source(session, "b")
    original = add_post(session, a, entry(*seed_post("000"), "https://a.example/open-source"))
    related = add_post(session, a, entry(*seed_post("001"), "https://a.example/facilitator"))
    found = candidates(session, edited_000("https://b.example/gastblog-open-source"))
    assert found[0].id == original.id
    assert related.id not in [row.id for row in found]
    match = find_duplicate(session, edited_000("https://b.example/gastblog-open-source"),
                           source_id=b.id)
    assert match is not None
    assert match.entry.id == original.id
    assert match.decision.reason == "near_duplicate"


def test_an_excerpt_is_found_through_its_lead_and_title(session: Session):
    a = add_source(session, "a")
    title, paragraphs = seed_post("000")
    original = add_post(session, a, entry(title, paragraphs, "https://a.example/open-source"))
    words = " ".join(paragraphs).split()
    excerpt = entry("Gastblog: " + title, [" ".join(words[:60]) + " […]"], "https://p.example/1")
    match = find_duplicate(session, excerpt)
    assert match is not None
    assert match.entry.id == original.id
    assert match.decision.reason == "excerpt"


def test_the_canonical_url_and_fingerprint_find_posts_without_keys(session: Session):
    a = add_source(session, "a")
    post = entry(*seed_post("000"), "https://a.example/open-source")
    row = add_post(session, a, post)
    remove_keys(session, row.id or 0)
    assert filed_keys(session, row.id or 0) == {}
    variant = entry(*seed_post("000"), "http://www.a.example/open-source/?utm_source=rss")
    assert [r.id for r in candidates(session, variant)] == [row.id]
    match = find_duplicate(session, variant)
    assert match is not None
    assert match.decision.reason == "canonical_url"



def test_comments_sharing_a_posts_canonical_url_do_not_hide_it(session: Session):
    # A comment's link is its post's with a fragment, so its canonical URL is
    # the post's. With more comments than a key reads, the newest rows under
    # that URL were all comments, and a copy of the post found nothing.
    a, b = add_source(session, "a"), add_source(session, "b")
    post = entry(*seed_post("000"), "https://a.example/open-source")
    row = add_post(session, a, post)
    remove_keys(session, row.id or 0)  # found through the URL alone
    for number in range(PER_KEY_LIMIT + 5):
        comment = add_comment(session, a, row, f"reactie {number}")
        comment.canonical_url = post.canonical_url
        comment.fingerprint = post.fingerprint
        session.add(comment)
    session.flush()
    variant = entry(*seed_post("000"), "http://www.a.example/open-source/?utm_source=rss")
    assert [r.id for r in candidates(session, variant, source_id=b.id)] == [row.id]
    match = find_duplicate(session, variant)
    assert match is not None and match.entry.id == row.id
    # Marks count posts only: a comment's URL is no reason to look further.
    other = entry(*seed_post("002"), "https://a.example/only-comments")
    comment = add_comment(session, a, row, "reactie met link")
    comment.canonical_url, comment.fingerprint = other.canonical_url, other.fingerprint
    session.add(comment)
    session.flush()
    assert marks_present(session, marks_of(other)) == set()

def test_a_post_with_a_candidate_always_has_a_mark_present(session: Session):
    # The store skips the lookup of a post none of whose marks is present; that
    # is only right if every candidate is reached through a present mark.
    a = add_source(session, "a")
    add_post(session, a, entry(*seed_post("000"), "https://a.example/open-source"))
    keyless = add_post(session, a, entry(*seed_post("001"), "https://a.example/facilitator"))
    remove_keys(session, keyless.id or 0)
    title, paragraphs = seed_post("000")
    words = " ".join(paragraphs).split()
    probes = {
        "light edit": edited_000("https://b.example/gastblog-open-source"),
        "excerpt": entry("Gastblog: " + title, [" ".join(words[:60]) + " […]"],
                         "https://p.example/1"),
        "url only": entry(*seed_post("001"), "http://www.a.example/facilitator/?utm_source=x"),
        "unrelated": entry(*seed_post("002"), "https://c.example/other"),
    }
    found = {}
    for name, probe in probes.items():
        marks = marks_of(probe)
        present = marks_present(session, marks)
        assert present <= marks
        found[name] = bool(present)
        if candidates(session, probe):
            assert present, name
    assert found == {"light edit": True, "excerpt": True, "url only": True, "unrelated": False}


def test_index_post_is_idempotent_and_adds_the_keys_of_each_copy(session: Session):
    a, b = add_source(session, "a"), add_source(session, "b")
    row = add_post(session, a, entry(*seed_post("000"), "https://a.example/x"))
    before = filed_keys(session, row.id or 0)
    assert len(before) == 22
    index_post(session, row.id or 0, entry(*seed_post("000"), "https://a.example/x"))
    session.flush()
    assert filed_keys(session, row.id or 0) == before
    merge_recent_keys(session)  # the next copy's keys are checked against merged ones
    index_post(session, row.id or 0, entry(*seed_post("000"), "https://a.example/x"))
    assert filed_keys(session, row.id or 0) == before
    title, paragraphs = seed_post("000")
    rewritten = [*paragraphs[:3], paragraphs[3][::-1], *paragraphs[4:]]
    add_post(session, b, entry(title, rewritten, "https://b.example/y"), into=row)
    after = filed_keys(session, row.id or 0)
    assert before.items() < after.items()
    assert set(after.values()) == {"band", "lead", "title"}


def test_a_key_many_posts_share_is_read_only_up_to_its_limit(session: Session):
    a = add_source(session, "a")
    title, paragraphs = seed_post("000")
    # A series: same title, different bodies; the title key is shared by all.
    for number in range(PER_KEY_LIMIT + 10):
        body = [f"Aflevering {number} over iets anders: " + p[::-1] for p in paragraphs[:3]]
        add_post(session, a, entry(title, body, f"https://a.example/{number}"))
    found = candidates(session, entry(title, paragraphs, "https://q.example/1"), limit=50)
    assert len(found) == PER_KEY_LIMIT
    assert len(candidates(session, entry(title, paragraphs, "https://q.example/1"), limit=5)) == 5


def test_recent_keys_are_merged_in_one_step_and_found_in_either_table(
    session: Session, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dedupe_index, "_MERGE_SLICE", 5)  # SQLite merges in slices
    a = add_source(session, "a")
    original = add_post(session, a, entry(*seed_post("000"), "https://a.example/x"))
    assert merge_recent_keys(session) == 22
    assert count_keys(session, "dedupe_key", original.id) == 22
    assert count_keys(session, "dedupe_key_recent", original.id) == 0
    assert merge_recent_keys(session) == 0
    other = add_post(session, a, entry(*seed_post("001"), "https://a.example/y"))
    # One post's keys merged, the other's recent: lookups and marks see both.
    for post, row in ((edited_000("https://b.example/gastblog"), original),
                      (entry(*seed_post("001"), "https://c.example/kopie"), other)):
        assert [r.id for r in candidates(session, post)][:1] == [row.id]
        assert {m for m in marks_present(session, marks_of(post)) if m[0] == "k"}
        match = find_duplicate(session, post)
        assert match is not None and match.entry.id == row.id
    merge_recent_keys(session)
    assert filed_keys(session, other.id or 0) and count_keys(
        session, "dedupe_key_recent", other.id) == 0
    remove_keys(session, original.id or 0)
    add_post(session, a, entry(*seed_post("002"), "https://a.example/z"))
    assert count_keys(session, "dedupe_key", original.id) == 0


def test_the_per_key_limit_spans_both_tables_newest_first(session: Session):
    a = add_source(session, "a")
    title, paragraphs = seed_post("000")
    ids = []
    for number in range(PER_KEY_LIMIT + 6):
        body = [f"Aflevering {number} over iets anders: " + p[::-1] for p in paragraphs[:3]]
        ids.append(add_post(session, a, entry(title, body, f"https://a.example/{number}")).id)
        if number == PER_KEY_LIMIT // 2:
            merge_recent_keys(session)  # the older half merged, the newer half recent
    found = candidates(session, entry(title, paragraphs, "https://q.example/1"), limit=50)
    assert sorted(r.id for r in found) == sorted(ids)[-PER_KEY_LIMIT:]


def test_candidate_lookup_uses_indexes_not_scans(tmp_path: Path) -> None:
    # SQLite only: the check reads its EXPLAIN QUERY PLAN.
    store = Store(f"sqlite:///{tmp_path / 'plan.db'}")
    session = Session(store.engine)
    a = add_source(session, "a")
    add_post(session, a, entry(*seed_post("000"), "https://a.example/x"))
    statements: list[tuple[str, object]] = []

    def remember(_conn, _cursor, statement, parameters, _context, _many):
        statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", remember)
    try:
        probe = edited_000("https://b.example/y")
        candidates(session, probe)
        marks_present(session, marks_of(probe))
    finally:
        event.remove(store.engine, "before_cursor_execute", remember)
    plans = [
        " | ".join(row[-1] for row in session.connection().exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement, parameters))  # type: ignore[arg-type]
        for statement, parameters in statements if statement.lstrip().startswith("SELECT")
    ]
    assert plans
    for plan in plans:
        assert "SCAN dedupe_key" not in plan and "SCAN entry" not in plan, plan
        # A search of every post by kind is a scan by another name.
        assert "ix_entry_newest" not in plan, plan
    assert any("ix_entry_canonical_url" in plan for plan in plans)
    assert any("ix_entry_fingerprint" in plan for plan in plans)
    session.close()
    store.close()


# ---------------------------------------------------------------------- split


@pytest.fixture
def merged(session: Session) -> dict[str, object]:
    """Seed 000 at source a, a wrongly merged copy at b, comments at both."""
    a, b = add_source(session, "a"), add_source(session, "b")
    post = add_post(session, a, entry(*seed_post("000"), "https://a.example/open-source"))
    add_post(session, b, entry(*seed_post("001"), "https://b.example/facilitator"), into=post)
    kasper = add_comment(session, a, post, "Kasper Katje")
    rens = add_comment(session, b, post, "Rens")
    reply = add_comment(session, b, post, "reply to Rens")
    reply.parent_id = rens.id
    session.add(CommentFeedRow(source_id=b.id or 0, url="https://b.example/facilitator/feed",
                               post_entry_id=post.id, created_at=NOW))
    session.commit()
    return {"a": a, "b": b, "post": post, "kasper": kasper, "rens": rens, "reply": reply}


def test_split_gives_the_other_source_its_own_post_with_its_comments(session: Session, merged):
    a, b, post = merged["a"], merged["b"], merged["post"]
    assert isinstance(post, EntryRow) and isinstance(b, SourceRow) and isinstance(a, SourceRow)
    uid = post.uid
    chosen = resolve_entry(session, public_id(uid))
    result = split_entry(session, chosen.id or 0,
                         appearances_to_split(session, chosen.id or 0), now=NOW)
    session.commit()

    assert result.staying_entry_id == post.id
    new = session.get(EntryRow, result.split_entry_id)
    assert new is not None
    identity = "guid:https://b.example/facilitator"
    assert new.uid == result.new_uid == entry_uid(b.url, "post", identity)
    assert new.source_id == b.id
    assert new.link == "https://b.example/facilitator"
    assert session.get(EntryRow, post.id).uid == uid  # type: ignore[union-attr]
    assert [x.source_id for x in session.exec(
        select(AppearanceRow).where(AppearanceRow.entry_id == new.id))] == [b.id]
    # Comments follow their source; a reply keeps its parent comment.
    rens, reply, kasper = (session.get(EntryRow, merged[k].id)  # type: ignore[attr-defined]
                           for k in ("rens", "reply", "kasper"))
    assert rens.post_id == new.id and rens.parent_id == new.id  # type: ignore[union-attr]
    assert reply.post_id == new.id and reply.parent_id == rens.id  # type: ignore[union-attr]
    assert kasper.post_id == post.id  # type: ignore[union-attr]
    assert result.moved_comments == 2
    feed = session.exec(select(CommentFeedRow)).one()
    assert feed.post_entry_id == new.id
    # b's entry holds a's text until b is read again.
    assert result.refreshed_sources == (b.id,)
    source_b = session.get(SourceRow, b.id)
    assert source_b.body_hash is None and source_b.etag is None  # type: ignore[union-attr]
    assert session.exec(select(AppearanceRow.content_hash).where(
        AppearanceRow.entry_id == new.id)).one() == ""
    assert session.get(SourceRow, a.id).etag == '"v1"'  # type: ignore[union-attr]


def test_a_split_stays_split(session: Session, merged):
    b, post = merged["b"], merged["post"]
    assert isinstance(post, EntryRow) and isinstance(b, SourceRow)
    split_entry(session, post.id or 0, appearances_to_split(session, post.id or 0), now=NOW)
    session.commit()
    assert session.exec(select(DedupeSplitRow.source_id).where(
        DedupeSplitRow.entry_id == post.id)).all() == [b.id]
    # b posts the article of a under a new id: it may not join a's post again.
    copy = entry(*seed_post("000"), "https://b.example/open-source-again")
    assert find_duplicate(session, copy, source_id=b.id) is None
    assert post.id not in [r.id for r in candidates(session, copy, source_id=b.id)]
    # Anyone else's copy still joins it.
    match = find_duplicate(session, copy, source_id=None)
    assert match is not None and match.entry.id == post.id


def test_splitting_off_the_source_the_id_came_from_keeps_the_id_there(session: Session, merged):
    a, b, post = merged["a"], merged["b"], merged["post"]
    assert isinstance(post, EntryRow) and isinstance(a, SourceRow) and isinstance(b, SourceRow)
    [appearance_a] = appearances_to_split(session, post.id or 0, "a")
    result = split_entry(session, post.id or 0, [appearance_a], now=NOW)
    session.commit()
    # a keeps the row and id derived from it; b's side gets the new row.
    assert result.split_entry_id == post.id
    new = session.get(EntryRow, result.staying_entry_id)
    assert new is not None and new.source_id == b.id
    assert new.uid == entry_uid(b.url, "post", "guid:https://b.example/facilitator")
    assert session.get(EntryRow, merged["rens"].id).post_id == new.id  # type: ignore[attr-defined,union-attr]
    assert session.get(EntryRow, merged["kasper"].id).post_id == post.id  # type: ignore[attr-defined,union-attr]


def test_split_refuses_what_it_cannot_do(session: Session, merged):
    post = merged["post"]
    assert isinstance(post, EntryRow)
    with pytest.raises(SplitError, match="not an entry id"):
        resolve_entry(session, "nonsense")
    with pytest.raises(SplitError, match="no post"):
        resolve_entry(session, public_id("0" * 32))
    with pytest.raises(SplitError, match="did not appear"):
        appearances_to_split(session, post.id or 0, "nowhere")
    everything = list(session.exec(select(AppearanceRow.id).where(
        AppearanceRow.entry_id == post.id)))
    with pytest.raises(SplitError, match="both sides"):
        split_entry(session, post.id or 0, everything)


def test_a_third_source_must_be_named(session: Session, merged):
    post = merged["post"]
    assert isinstance(post, EntryRow)
    c = add_source(session, "c")
    add_post(session, c, entry(*seed_post("000"), "https://c.example/kopie"), into=post)
    with pytest.raises(SplitError, match="--source"):
        appearances_to_split(session, post.id or 0)
    assert len(appearances_to_split(session, post.id or 0, "c")) == 1


def count_keys(session: Session, table: str, entry_id: int | None) -> int:
    return session.execute(text(f"SELECT count(*) FROM {table} WHERE entry_id = :id"),
                           {"id": entry_id}).scalar() or 0


@pytest.mark.parametrize("row_type", [RecentKeyRow, DedupeKeyRow])
def test_a_key_is_stored_once_per_post(session: Session, row_type: type) -> None:
    a = add_source(session, "a")
    row = add_post(session, a, entry(*seed_post("000"), "https://a.example/x"))
    session.commit()
    assert count_keys(session, "dedupe_key_recent", row.id) == 22  # 20 bands, lead, title
    assert count_keys(session, "dedupe_key", row.id) == 0
    if row_type is DedupeKeyRow:
        assert merge_recent_keys(session) == 22
        session.commit()
        assert count_keys(session, "dedupe_key", row.id) == 22
    key = next(iter(filed_keys(session, row.id or 0)))
    session.add(row_type(entry_id=row.id or 0, key=key, kind="band"))
    with pytest.raises(IntegrityError):
        session.commit()
