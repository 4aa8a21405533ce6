"""The store on SQLite and PostgreSQL: identity, updates in place, merging, leases."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, inspect
from sqlmodel import Session, select

from aggregator import dedupe_index
from aggregator.config import SourceConfig
from aggregator.normalize import normalize_entry
from aggregator.store import SourceState, Store, Unchanged
from aggregator.tables import SCHEMA_VERSION, EntryRow
from aggregator.types import FetchResult, ParsedEntry, ParsedFeed, Validators

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
BODY = " ".join([
    "Open source marketing geeft consumenten toegang tot de broncode van het merk en",
    "maakt van fans evangelisten die meebouwen aan producten en campagnes.",
] * 4)


WORDS = ("merk", "klant", "community", "campagne", "budget", "bureau", "strategie", "video",
         "podcast", "blog", "fans", "reclame", "media", "data", "privacy", "winkel", "prijs",
         "dialoog", "vertrouwen", "netwerk", "product", "dienst", "markt", "onderzoek")


def distinct_body(seed: int) -> str:
    """A text of its own for each seed: different articles, not near-duplicates."""
    import random

    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(120))


def parsed(guid: str | None, link: str | None, *, title: str = "Open source in marketing",
           body: str = BODY, published: datetime | None = None) -> ParsedEntry:
    return ParsedEntry(
        guid=guid, link=link, title=title, content_html=f"<p>{body}</p>", summary_html="",
        author="Marco", published=published or datetime(2005, 5, 27, 10, 8, tzinfo=UTC),
        updated=None,
    )


def normalized(entry: ParsedEntry, feed_url: str = "https://a.example/feed/"):
    feed = ParsedFeed(format="rss20", title="A", link=None, language="nl", entries=(entry,))
    return normalize_entry(entry, kind="post", feed=feed, feed_url=feed_url,
                           source_language="nl", first_seen=NOW)


def fetched(url: str, etag: str | None = None) -> FetchResult:
    return FetchResult(url=url, final_url=url, status=200, body=b"", headers={},
                       validators=Validators(etag=etag))


def feed_args(state: SourceState, entries: tuple[ParsedEntry, ...],
              etag: str | None) -> dict[str, Any]:
    """What ingest_source_feed and source_feed_job take besides the source."""
    return {
        "now": NOW, "fetch": fetched(state.fetch_url, etag),
        "feed": ParsedFeed(format="rss20", title=state.name, link=None, language="nl",
                           entries=()),
        "entries": [normalized(e, state.fetch_url) for e in entries],
        "topics_for": lambda entry: (), "follow_comments": True, "site_comments_url": None,
        "next_check_at": NOW + timedelta(hours=1), "body_hash": "x",
    }


def ingest(store: Store, state: SourceState, *entries: ParsedEntry, etag: str | None = None):
    return store.ingest_source_feed(state, **feed_args(state, entries, etag))


@pytest.fixture
def store(database_url: str):
    store = Store(database_url)
    store.sync_sources([
        SourceConfig(name="a", url="https://a.example/feed/"),
        SourceConfig(name="b", url="https://b.example/feed/"),
    ], NOW)
    yield store
    store.close()


def claim(store: Store, name: str) -> SourceState:
    [state] = store.claim_due(now=NOW, owner="test", lease=timedelta(minutes=5), names=[name],
                              force=True)
    return state


@pytest.mark.parametrize("source_url, kind, identity_key", [
    ("https://blog.example/feed/", "post", "guid:https://blog.example/?p=1"),
    ("https://blog.example/feed/", "comment", "link:https://blog.example/a#comment-2"),
    ("https://bücher.example/föed", "post", "hash:" + "ä" * 300),
    ("", "post", "guid:\u2603 \U0001d518 \x00"),
])
def test_entry_uid_is_the_uuid5_of_where_it_was_seen(source_url: str, kind: str,
                                                     identity_key: str) -> None:
    # Published ids must never change: entry_uid skips the UUID object, not the rule.
    import uuid

    from aggregator.store import ENTRY_ID_NAMESPACE, entry_uid

    assert entry_uid(source_url, kind, identity_key) == uuid.uuid5(
        ENTRY_ID_NAMESPACE, f"{source_url}\n{kind}\n{identity_key}").hex


def test_guid_identity_and_update_in_place(store: Store) -> None:
    a = claim(store, "a")
    report = ingest(store, a, parsed("p-1", "https://a.example/p1"), etag='"v1"')
    assert report.new_posts == 1
    # Seen again unchanged: nothing happens.
    assert not ingest(store, claim(store, "a"), parsed("p-1", "https://a.example/p1")).changed
    # Seen again edited: updated in place, still one post, newer `updated`.
    edited = parsed("p-1", "https://a.example/p1", title="Open source in marketing (update)")
    report = ingest(store, claim(store, "a"), edited)
    assert (report.new_posts, report.updated_posts) == (0, 1)
    posts, _, _ = store.published_entries(topics=[], max_entries=10)
    assert [p.title for p in posts] == ["Open source in marketing (update)"]
    assert posts[0].updated > posts[0].published


def test_link_then_hash_identity_without_guid(store: Store) -> None:
    a = claim(store, "a")
    ingest(store, a, parsed(None, "https://a.example/p1"),
           parsed(None, None, title="Geen link", body="Kort bericht zonder link."))
    ingest(store, claim(store, "a"), parsed(None, "https://a.example/p1"),
           parsed(None, None, title="Geen link", body="Kort bericht zonder link."))
    assert store.counts() == {"post": 2}


def test_same_guid_twice_in_one_document_is_one_entry(store: Store) -> None:
    report = ingest(store, claim(store, "a"), parsed("dup", "https://a.example/p1"),
                    parsed("dup", "https://a.example/p1", title="Second copy"))
    assert report.new_posts == 1
    assert store.counts() == {"post": 1}


def test_cross_source_merge_by_canonical_url(store: Store) -> None:
    ingest(store, claim(store, "a"), parsed("a-1", "https://www.a.example/2005/open-source/"))
    # Another source links the same article with tracking parameters and http.
    report = ingest(store, claim(store, "b"), parsed(
        "b-9", "http://a.example/2005/open-source?utm_source=rss&utm_medium=feed",
        title="Gastblog: Open source in marketing", body="Een heel andere samenvatting."))
    assert report.merged_posts == 1 and report.new_posts == 0
    records = [r for r in store.export_records() if r["kind"] == "post"]
    assert len(records) == 1
    assert [a["source"] for a in records[0]["appearances"]] == ["a", "b"]
    assert {a["original_id"] for a in records[0]["appearances"]} == {"a-1", "b-9"}


def test_different_articles_stay_apart(store: Store) -> None:
    ingest(store, claim(store, "a"), parsed("a-1", "https://a.example/one"))
    ingest(store, claim(store, "b"), parsed(
        "b-1", "https://b.example/two", title="Iets anders",
        body=" ".join(["Een ander artikel over merken en communities in Nederland."] * 8)))
    assert store.counts() == {"post": 2}


def test_validators_advance_with_the_entries(store: Store) -> None:
    a = claim(store, "a")
    ingest(store, a, parsed("p-1", "https://a.example/p1"), etag='"v7"')
    again = claim(store, "a")
    assert again.etag == '"v7"'


def test_lease_keeps_other_workers_off(store: Store) -> None:
    first = store.claim_due(now=NOW, owner="w1", lease=timedelta(minutes=5), names=["a", "b"])
    second = store.claim_due(now=NOW, owner="w2", lease=timedelta(minutes=5), names=["a", "b"])
    assert {s.name for s in first} == {"a", "b"} and second == []
    # After the lease expires (the worker died) another worker takes over.
    later = store.claim_due(now=NOW + timedelta(minutes=6), owner="w2",
                            lease=timedelta(minutes=5), names=["a", "b"])
    assert {s.name for s in later} == {"a", "b"}



def test_a_claim_hands_back_finished_sources_and_records_their_304s_first(
    store: Store,
) -> None:
    store.sync_sources([SourceConfig(name="a", url="https://a.example/feed/"),
                        SourceConfig(name="b", url="https://b.example/feed/"),
                        SourceConfig(name="a2", url="https://a.example/other/feed/")], NOW)
    lease = timedelta(minutes=5)
    [a] = store.claim_due(now=NOW, owner="w1", lease=lease, names=["a"], per_host=1)
    # a's host is full: a2 waits.
    assert store.claim_due(now=NOW, owner="w1", lease=lease, names=["a2"], per_host=1,
                           force=True) == []
    not_modified = FetchResult(url=a.fetch_url, final_url=a.fetch_url, status=304, body=b"",
                               headers={}, validators=Validators(etag='"v9"'))
    later = NOW + timedelta(seconds=1)
    # Handing a back in the same call frees the host slot before the claim.
    claim = store.claim_due(
        now=later, owner="w1", lease=lease, names=["a2"], force=True, per_host=1,
        release=[a.id], unchanged=[Unchanged(a.id, later, not_modified,
                                             later + timedelta(minutes=30))])
    assert [state.name for state in claim] == ["a2"]
    # a is free for anyone, with its 304 recorded; a2 stays w1's.
    [again] = store.claim_due(now=later, owner="w2", lease=lease, names=["a", "a2"],
                              force=True)
    assert (again.name, again.etag) == ("a", '"v9"')
    # Nothing left to claim: the hand-back still happens.
    store.claim_due(now=later, owner="w1", lease=lease, names=[], release=[claim[0].id])
    assert [s.name for s in store.claim_due(now=later, owner="w3", lease=lease,
                                            names=["a2"], force=True)] == ["a2"]


def test_a_worker_alone_holds_more_sources_than_requests(store: Store) -> None:
    """per_host_alone counts only while no other live worker holds any lease;
    once one does, every worker keeps to per_host (together they stay within
    it) and to shared_limit leases in all."""
    names = [f"a{i}" for i in range(8)]
    store.sync_sources([SourceConfig(name=name, url=f"https://a.example/{name}/feed/")
                        for name in names]
                       + [SourceConfig(name="b", url="https://b.example/feed/")], NOW)
    lease = timedelta(minutes=5)

    def claim(owner: str, wanted: list[str], **limits: Any) -> list[SourceState]:
        return store.claim_due(now=NOW, owner=owner, lease=lease, names=wanted, force=True,
                               per_host=2, **limits)

    def others(*held: list[SourceState]) -> list[str]:
        taken = {s.name for states in held for s in states}
        return [name for name in names if name not in taken]

    first = claim("w1", names, per_host_alone=5, shared_limit=1)
    assert len(first) == 5  # alone: shared_limit does not apply
    # The store is w1's alone, but 5 is its limit on a host.
    assert claim("w1", others(first), per_host_alone=5) == []
    # Another worker sees the host full (5 leases >= per_host), whatever it may hold alone.
    assert claim("w2", others(first), per_host_alone=5) == []
    [b] = claim("w2", [*others(first), "b"], per_host_alone=5)
    assert b.name == "b"
    # w1 hands back all but one. w2 holds a lease (of another host), so w1 keeps
    # to per_host now: one more, not four.
    store.release([s.id for s in first[1:]], "w1")
    # Nor more leases in all than shared_limit, while another worker holds one.
    assert claim("w1", others(first[:1]), per_host_alone=5, shared_limit=1) == []
    again = claim("w1", others(first[:1]), per_host_alone=5, shared_limit=2)
    assert len(again) == 1
    # The host has per_host leases: w2 gets none of it.
    assert claim("w2", others(first[:1], again), per_host_alone=5) == []
    # Without per_host_alone, per_host is the limit even for a worker alone.
    store.release([first[0].id, again[0].id], "w1")
    store.release([b.id], "w2")
    assert len(claim("w3", names)) == 2


def test_concurrent_workers_make_one_row_per_entry(database_url: str) -> None:
    stores = [Store(database_url) for _ in range(4)]
    stores[0].sync_sources([SourceConfig(name="a", url="https://a.example/feed/")], NOW)
    state = stores[0].claim_due(now=NOW, owner="t", lease=timedelta(minutes=1), names=["a"])[0]
    entries = [parsed(f"p-{i}", f"https://a.example/p{i}", title=f"Post {i}",
                      body=distinct_body(i)) for i in range(20)]
    errors: list[BaseException] = []

    def work(store: Store) -> None:
        try:
            ingest(store, state, *entries)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stores[0].counts() == {"post": 20}
    for store in stores:
        store.close()


def test_nul_and_surrogates_are_stored(store: Store) -> None:
    entry = parsed("nul-\x00-\ud800", "https://a.example/nul", title="Bad \x00 title \ud800")
    ingest(store, claim(store, "a"), entry)
    posts, _, _ = store.published_entries(topics=[], max_entries=10)
    assert "\x00" not in posts[0].title and "\ud800" not in posts[0].title


def test_undated_entry_keeps_its_first_seen_date_when_edited(store: Store) -> None:
    undated = ParsedEntry(guid="u-1", link="https://a.example/u1", title="Zonder datum",
                          content_html="<p>Eerste versie.</p>", summary_html="",
                          author=None, published=None, updated=None)
    ingest(store, claim(store, "a"), undated)
    [before] = store.published_entries(topics=[], max_entries=5)[0]
    assert before.published == NOW
    later = NOW + timedelta(days=3)
    feed = ParsedFeed(format="rss20", title="a", link=None, language="nl", entries=())
    edited = normalize_entry(
        ParsedEntry(guid="u-1", link="https://a.example/u1", title="Zonder datum",
                    content_html="<p>Tweede versie.</p>", summary_html="", author=None,
                    published=None, updated=None),
        kind="post", feed=feed, feed_url="https://a.example/feed/", source_language="nl",
        first_seen=later)
    state = claim(store, "a")
    store.ingest_source_feed(
        state, now=later, fetch=fetched(state.fetch_url), feed=feed,
        entries=[edited], topics_for=lambda entry: (), follow_comments=True,
        site_comments_url=None, next_check_at=later, body_hash="y")
    [after] = store.published_entries(topics=[], max_entries=5)[0]
    assert after.published == NOW
    assert after.updated == later


def test_pruned_entries_do_not_come_back(store: Store) -> None:
    post = parsed("old-1", "https://a.example/old", published=datetime(2005, 1, 1, tzinfo=UTC))
    ingest(store, claim(store, "a"), post)
    assert store.prune(published_before=datetime(2010, 1, 1, tzinfo=UTC)) == 1
    assert store.counts() == {}
    # The feed still carries it, edited even, and another blog re-posts it.
    ingest(store, claim(store, "a"), parsed("old-1", "https://a.example/old", title="Edited",
                                            published=datetime(2005, 1, 1, tzinfo=UTC)))
    ingest(store, claim(store, "b"), parsed("b-old", "https://a.example/old?utm_source=x",
                                            published=datetime(2005, 1, 2, tzinfo=UTC)))
    assert store.counts() == {}
    assert store.published_entries(topics=[], max_entries=10)[0] == []
    assert list(store.export_records()) == []


def test_http_to_https_move_is_taken_at_once_others_after_three(database_url: str) -> None:
    store = Store(database_url)
    try:
        store.sync_sources([SourceConfig(name="h", url="http://h.example/feed/"),
                            SourceConfig(name="o", url="https://o.example/feed/")], NOW)

        def seen_redirect(name: str, target: str) -> SourceState:
            state = claim(store, name)
            moved = FetchResult(url=state.fetch_url, final_url=target, status=304, body=b"",
                                headers={}, validators=Validators(),
                                permanent_redirect=target)
            # As a pass records it: with the release of the lease.
            store.release(state.id, "test", unchanged=[Unchanged(state.id, NOW, moved, NOW)])
            after = claim(store, name)
            store.release(after.id, "test")
            return after

        assert seen_redirect("h", "https://h.example/feed/").fetch_url == \
            "https://h.example/feed/"
        assert seen_redirect("o", "https://new.example/feed/").fetch_url == \
            "https://o.example/feed/"
        assert seen_redirect("o", "https://new.example/feed/").fetch_url == \
            "https://o.example/feed/"
        assert seen_redirect("o", "https://new.example/feed/").fetch_url == \
            "https://new.example/feed/"
        assert {row.name: row.moved_to for row in store.status()}["o"] == \
            "https://new.example/feed/"
    finally:
        store.close()


def test_an_edit_at_its_own_source_never_splits_a_merged_group(store: Store) -> None:
    ingest(store, claim(store, "a"), parsed("a-1", "https://a.example/open-source"))
    ingest(store, claim(store, "b"), parsed("b-1", "https://b.example/repost",
                                            published=datetime(2005, 5, 28, tzinfo=UTC)))
    [record] = [r for r in store.export_records() if r["kind"] == "post"]
    assert len(record["appearances"]) == 2
    # The original is edited (a sentence added); the repost stays as it was.
    edited = parsed("a-1", "https://a.example/open-source",
                    body=BODY + " Update: de auteur heeft een alinea toegevoegd over communities.")
    report = ingest(store, claim(store, "a"), edited)
    assert report.updated_posts == 1
    [after] = [r for r in store.export_records() if r["kind"] == "post"]
    assert after["id"] == record["id"]
    assert {a["source"] for a in after["appearances"]} == {"a", "b"}


def test_processes_opening_one_new_sqlite_file_at_once_all_succeed(tmp_path) -> None:
    """A fetch and a serve worker started together both create the schema.

    SQLite answers the loser "database is locked" at once (a read turning
    into a write while another process writes); it must look again, not fail.
    Before the fix about 1 in 40 openings failed this way.
    """
    import subprocess
    import sys

    failures = []
    for round_number in range(8):
        url = f"sqlite:///{tmp_path}/race-{round_number}.db"
        code = f"from aggregator.store import Store; Store({url!r}).close()"
        processes = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
                     for _ in range(4)]
        for process in processes:
            _, error = process.communicate(timeout=60)
            if process.returncode:
                failures.append(error.decode()[-300:])
        assert Store(url).get_meta("schema_version") is not None
    assert failures == []


def source_job(store: Store, state: SourceState, *entries: ParsedEntry, etag: str = '"v1"'):
    return store.source_feed_job(state, **feed_args(state, entries, etag))


def test_a_batch_stores_each_document_and_sees_the_ones_before_it(store: Store) -> None:
    a, b = claim(store, "a"), claim(store, "b")
    reports = store.ingest_batch([
        source_job(store, a, parsed("a-1", "https://www.a.example/2005/open-source/")),
        # A copy of a-1, in the same transaction: it must find a-1 and merge.
        source_job(store, b, parsed(
            "b-9", "http://a.example/2005/open-source?utm_source=rss",
            title="Gastblog: Open source in marketing", body="Een heel andere samenvatting.")),
    ])
    assert [(r.new_posts, r.merged_posts) for r in reports] == [(1, 0), (0, 1)]
    records = [r for r in store.export_records() if r["kind"] == "post"]
    assert [[x["source"] for x in r["appearances"]] for r in records] == [["a", "b"]]
    assert claim(store, "a").etag == '"v1"' and claim(store, "b").etag == '"v1"'


def test_a_failing_document_fails_alone_and_the_rest_of_its_batch_is_stored(
    store: Store,
) -> None:
    a, b = claim(store, "a"), claim(store, "b")
    calls = []

    def broken(session: object) -> None:
        calls.append(session)
        raise ValueError("a document the store cannot take")

    good_a = source_job(store, a, parsed("a-1", "https://a.example/p1"), etag='"a"')
    good_b = source_job(store, b, parsed("b-1", "https://b.example/p1", title="Iets anders",
                                         body=distinct_body(7)), etag='"b"')
    results = store.ingest_batch([good_a, broken, good_b])  # type: ignore[list-item]
    assert isinstance(results[1], ValueError)
    assert [r.new_posts for r in (results[0], results[2])] == [1, 1]  # type: ignore[union-attr]
    # Tried in the batch, then again on its own; the others were stored once.
    assert len(calls) == 2
    assert store.counts() == {"post": 2}
    assert (claim(store, "a").etag, claim(store, "b").etag) == ('"a"', '"b"')


def test_a_comment_feed_read_in_a_batch_records_the_count_declared_before_it(
    store: Store,
) -> None:
    post = replace(parsed("a-1", "https://a.example/p1"),
                   comments_feed_url="https://a.example/p1/feed/", comment_count=2)
    ingest(store, claim(store, "a"), post)
    a = claim(store, "a")
    [feed_state] = store.comment_feeds_due(a.id, now=NOW, comments_days=30)
    # One transaction: the post feed now declares 5 comments (a change the session
    # holds until it flushes), then the comment feed is read, which records the
    # count it was read for.
    reports = store.ingest_batch([
        source_job(store, a, replace(post, comment_count=5)),
        store.comment_feed_job(feed_state, now=NOW, fetch=fetched(feed_state.url, '"c"'),
                               entries=[], body_hash="c"),
    ])
    assert not any(isinstance(report, Exception) for report in reports)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql(
            "SELECT declared_count, fetched_for_count, etag FROM comment_feed").one() == (
            5, 5, '"c"')


def test_copies_in_one_document_are_weighed_with_the_site_it_names(database_url: str) -> None:
    # The feed lives on another host than the blog; its first document names the
    # blog's site. Two copies of one post in it are both on the blog's own site,
    # so the earlier one stays the published one.
    store = Store(database_url)
    store.sync_sources([SourceConfig(name="fb", url="https://feeds.example/fb")], NOW)
    state = claim(store, "fb")
    first = parsed("g-1", "https://blog.example/2005/open-source/",
                   published=datetime(2005, 5, 27, 10, 8, tzinfo=UTC))
    again = parsed("g-2", "https://blog.example/2005/open-source/?utm_source=feed",
                   published=datetime(2005, 5, 28, 9, 0, tzinfo=UTC))
    arguments = feed_args(state, (first, again), '"v1"')
    arguments["feed"] = replace(arguments["feed"], link="https://blog.example/")
    report = store.ingest_source_feed(state, **arguments)
    assert (report.new_posts, report.merged_posts) == (1, 1)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT link, published FROM entry").one()[0] == (
            "https://blog.example/2005/open-source/")
    store.close()


def test_a_batch_weighs_copies_with_the_site_an_earlier_document_named(
    database_url: str,
) -> None:
    # fb's feed lives on another host than its blog, and names the blog only
    # later. In one batch: a mirror's copy (so the store loads fb's row), fb's
    # document naming its site, then another blog's later copy. That last copy
    # must see fb's post as on its own site: the earlier original stays.
    store = Store(database_url)
    store.sync_sources([SourceConfig(name=name, url=url) for name, url in (
        ("fb", "https://feeds.example/fb"), ("b", "https://b.example/feed/"),
        ("c", "https://c.example/feed/"))], NOW)
    day = datetime(2005, 5, 27, 10, 8, tzinfo=UTC)
    original = parsed("fb-1", "https://blog.example/2005/open-source/", published=day)
    ingest(store, claim(store, "fb"), original)
    fb, b, c = claim(store, "fb"), claim(store, "b"), claim(store, "c")
    named = feed_args(fb, (original,), '"v2"')
    named["feed"] = replace(named["feed"], link="https://blog.example/")
    reports = store.ingest_batch([
        source_job(store, b, parsed("b-1", "https://planet.example/open-source",
                                    published=day + timedelta(days=1))),
        store.source_feed_job(fb, **named),
        source_job(store, c, parsed("c-1", "https://c.example/open-source",
                                    published=day + timedelta(days=2))),
    ])
    assert [(r.new_posts, r.merged_posts) for r in reports] == [(0, 1), (0, 0), (0, 1)]
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT link FROM entry").scalar_one() == (
            "https://blog.example/2005/open-source/")
    store.close()


def key_rows(store: Store) -> tuple[int, int]:
    """Rows in (dedupe_key, dedupe_key_recent)."""
    with store.engine.connect() as connection:
        return tuple(connection.exec_driver_sql(  # type: ignore[return-value]
            f"SELECT count(*) FROM {table}").scalar_one()
            for table in ("dedupe_key", "dedupe_key_recent"))


def test_new_dedupe_keys_wait_in_the_recent_table_until_enough_gather(
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dedupe_index, "RECENT_KEYS_MERGE_AT", 50)
    sources = [SourceConfig(name=n, url=f"https://{n}.example/feed/") for n in "abc"]
    store = Store(database_url)
    store.sync_sources(sources, NOW)
    original = parsed("a-1", "https://a.example/p1", title="Merken", body=distinct_body(1))
    ingest(store, claim(store, "a"), original)
    merged, first = key_rows(store)
    assert merged == 0 and 20 <= first <= 22  # 20 bands, the lead if any, the title
    store.ingest_batch([source_job(store, claim(store, "a"), original,
                                   parsed("a-2", "https://a.example/p2", title="Video",
                                          body=distinct_body(2)))])
    merged, recent = key_rows(store)
    assert merged == 0 and first + 20 <= recent < 50
    store.close()
    # Another process counts what the table holds before adding its own.
    store = Store(database_url)
    ingest(store, claim(store, "b"), parsed("b-1", "https://b.example/p1", title="Data",
                                            body=distinct_body(3)))
    merged, left = key_rows(store)
    assert merged >= 50 and left == 0
    # Merged keys find copies as recent ones did: a light edit elsewhere joins a-1.
    copy = parsed("c-1", "https://c.example/kopie", title="Merken",
                  body=distinct_body(1) + " Een zin die de kopie toevoegt.")
    assert ingest(store, claim(store, "c"), copy).merged_posts == 1
    assert store.counts() == {"post": 3}
    # Pruning forgets the keys in both tables.
    assert store.prune(published_before=datetime(2010, 1, 1, tzinfo=UTC)) == 3
    assert key_rows(store) == (0, 0)
    store.close()


def test_workers_filing_and_merging_keys_at_once_lose_none(
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Three stores (as three workers) file keys and merge them, often at once:
    # every key of every post ends up filed exactly once, merged or recent.
    monkeypatch.setattr(dedupe_index, "RECENT_KEYS_MERGE_AT", 30)
    names = ["w0", "w1", "w2"]
    stores = [Store(database_url) for _ in names]
    stores[0].sync_sources([SourceConfig(name=n, url=f"https://{n}.example/feed/")
                            for n in names], NOW)
    errors: list[BaseException] = []

    def work(store: Store, name: str, number: int) -> None:
        try:
            for post in range(5):
                state = claim(store, name)
                ingest(store, state, parsed(f"{name}-{post}", f"https://{name}.example/{post}",
                                            title=f"Post {name} {post}",
                                            body=distinct_body(100 * number + post)))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(store, name, number))
               for number, (store, name) in enumerate(zip(stores, names, strict=True))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stores[0].counts() == {"post": 15}
    with Session(stores[0].engine) as session:
        filed = [dedupe_index.filed_keys(session, entry_id)
                 for entry_id in session.exec(select(EntryRow.id))]
    assert len(filed) == 15 and all(len(keys) >= 20 for keys in filed)
    merged, recent = key_rows(stores[0])
    assert merged > 0 and merged + recent == sum(map(len, filed))
    for store in stores:
        store.close()


def upgraded_from(database_url: str, version: int, *changes: str) -> Store:
    """A store of sources a and b with one post of a, made by ``changes`` into
    what schema ``version`` had, then opened again: upgraded in place."""
    store = Store(database_url)
    store.sync_sources([SourceConfig(name="a", url="https://a.example/feed/"),
                        SourceConfig(name="b", url="https://b.example/feed/")], NOW)
    ingest(store, claim(store, "a"), parsed("a-1", "https://a.example/p1"))
    store.merge_recent_keys()
    with store.engine.begin() as connection:
        for change in changes:
            connection.exec_driver_sql(change)
        connection.exec_driver_sql(
            f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'")
    store.close()
    store = Store(database_url)
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    return store


def test_a_version_2_store_gets_the_recent_key_table(database_url: str) -> None:
    store = upgraded_from(database_url, 2, "DROP TABLE dedupe_key_recent")
    assert key_rows(store) == (22, 0)
    copy = parsed("b-1", "https://b.example/kopie", body=BODY + " Met een extra zin.")
    assert ingest(store, claim(store, "b"), copy).merged_posts == 1
    store.close()


#: dedupe_key as schema 4 had it: a rowid table keyed (entry_id, key), and a
#: unique index in key order. Plain SQL that SQLite and PostgreSQL both take.
VERSION_4_KEYS = (
    'CREATE TABLE keys_then AS SELECT entry_id, "key", kind FROM dedupe_key',
    "DROP TABLE dedupe_key",
    'CREATE TABLE dedupe_key (entry_id INTEGER NOT NULL REFERENCES entry (id), '
    '"key" VARCHAR(64) NOT NULL, kind VARCHAR(8) NOT NULL, PRIMARY KEY (entry_id, "key"))',
    'INSERT INTO dedupe_key SELECT entry_id, "key", kind FROM keys_then',
    "DROP TABLE keys_then",
    'CREATE UNIQUE INDEX uq_dedupe_key_key_entry ON dedupe_key ("key", entry_id)',
    # and indexed the canonical URLs and fingerprints of comments too.
    "DROP INDEX ix_entry_canonical_url",
    "CREATE INDEX ix_entry_canonical_url ON entry (canonical_url)",
    "DROP INDEX ix_entry_fingerprint",
    "CREATE INDEX ix_entry_fingerprint ON entry (fingerprint)",
)


def test_a_version_4_store_gets_key_ordered_dedupe_keys_and_post_only_indexes(
    database_url: str,
) -> None:
    store = upgraded_from(database_url, 4, *VERSION_4_KEYS)
    with store.engine.connect() as connection:
        tables = inspect(connection)
        primary = tables.get_pk_constraint("dedupe_key")
        assert primary["constrained_columns"] == ["key", "entry_id"]
        # Named as a new store's is (PostgreSQL would otherwise add a 1).
        assert primary["name"] == (None if store.is_sqlite else "dedupe_key_pkey")
        assert {index["name"]: index["column_names"]
                for index in tables.get_indexes("dedupe_key")} == {
            "ix_dedupe_key_entry_id": ["entry_id"]}
        assert "dedupe_key_old" not in tables.get_table_names()
        if store.is_sqlite:
            assert "WITHOUT ROWID" in connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'dedupe_key'").scalar_one()
        filed = set(connection.exec_driver_sql('SELECT "key", kind FROM dedupe_key'))
        where = "sqlite_where" if store.is_sqlite else "postgresql_where"
        posts_only = {index["name"]: (index["column_names"],
                                      str(index["dialect_options"].get(where)))
                      for index in tables.get_indexes("entry")
            if index["name"] in ("ix_entry_canonical_url", "ix_entry_fingerprint")}
    assert {name: columns for name, (columns, _) in posts_only.items()} == {
        "ix_entry_canonical_url": ["canonical_url", "kind"],
        "ix_entry_fingerprint": ["fingerprint", "kind"]}
    assert all("'post'" in where for _, where in posts_only.values()), posts_only
    assert filed == set(dedupe_index.keys_of(normalized(parsed("a-1", "https://a.example/p1"))))
    assert key_rows(store) == (22, 0)
    copy = parsed("b-1", "https://b.example/kopie", body=BODY + " Met een extra zin.")
    assert ingest(store, claim(store, "b"), copy).merged_posts == 1
    store.close()



def test_the_key_upgrade_sorts_in_files_and_indexes_after_copying(tmp_path) -> None:
    from sqlalchemy.engine import Engine

    statements: list[str] = []

    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    # Every connection of every engine while it is listened to: the store
    # upgrades inside its constructor, on an engine made there.
    event.listen(Engine, "connect", trace)
    try:
        store = upgraded_from(f"sqlite:///{tmp_path / 'a.db'}", 4, *VERSION_4_KEYS)
    finally:
        event.remove(Engine, "connect", trace)
    try:
        def after(start: int, prefix: str) -> int:
            return next(i for i, sql in enumerate(statements)
                        if i > start and sql.startswith(prefix))

        # In memory, the sort of a big store's keys took 1.4 GB (see _upgrade).
        # The store was made (and made version 4) before: its upgrade follows.
        upgrade = after(-1, "PRAGMA temp_store=FILE")
        copy = after(after(upgrade, "BEGIN IMMEDIATE"), "INSERT INTO dedupe_key (")
        assert after(copy, "CREATE INDEX ix_dedupe_key_entry_id") < after(
            copy, "PRAGMA temp_store=MEMORY")
        assert not any(sql.startswith("CREATE INDEX ix_dedupe_key_entry_id")
                       for sql in statements[upgrade:copy])
        with store.engine.connect() as connection:
            raw = connection.connection.driver_connection
            assert raw.execute("PRAGMA temp_store").fetchone() == (2,)
        assert key_rows(store) == (22, 0)
    finally:
        store.close()


def test_a_version_3_store_gets_the_warning_column(database_url: str) -> None:
    store = upgraded_from(database_url, 3, "ALTER TABLE source DROP COLUMN last_warning")
    row = {row.name: row for row in store.status()}["a"]
    assert (row.posts, row.last_warning) == (1, None)
    # A feed read despite a fault records what was wrong; a clean one clears it.
    state = claim(store, "a")
    args = feed_args(state, (parsed("a-2", "https://a.example/p2"),), None)
    args["feed"] = replace(args["feed"], warning="text/html is not an XML media type")
    store.ingest_source_feed(state, **args)
    assert store.status()[0].last_warning == "text/html is not an XML media type"
    ingest(store, claim(store, "a"), parsed("a-3", "https://a.example/p3"))
    assert store.status()[0].last_warning is None
    store.close()


def test_sqlite_connections_get_the_larger_cache_and_in_memory_temp_files(tmp_path) -> None:
    from aggregator.store import SQLITE_CACHE_KIB

    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        with store.engine.connect() as connection:
            raw = connection.connection.driver_connection
            assert raw.execute("PRAGMA cache_size").fetchone() == (-SQLITE_CACHE_KIB,)
            assert raw.execute("PRAGMA temp_store").fetchone() == (2,)  # MEMORY
            assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        store.close()


def test_rows_written_through_the_driver_are_the_rows_sqlalchemy_writes(tmp_path) -> None:
    # SQLite stores new entries, appearances and topic rows through the
    # driver (tables.insert_rows); every column must hold what SQLAlchemy's
    # own insert stores, down to the text of a time.
    import sqlite3

    from sqlalchemy import insert

    from aggregator import store as store_module
    from aggregator.tables import AppearanceRow, insert_rows
    from aggregator.topic_index import EntryTopicRow

    store = Store(f"sqlite:///{tmp_path / 'driver.db'}")
    store.sync_sources([SourceConfig(name="a", url="https://a.example/feed/")], NOW)
    state = claim(store, "a")
    plus_two = timezone(timedelta(hours=2))
    entries = [
        replace(normalized(parsed("g1", "https://a.example/1", body=distinct_body(1))),
                published=datetime(2026, 3, 1, 9, 5, 7, 123456, tzinfo=plus_two)),
        replace(normalized(parsed("g2", None, body=distinct_body(2))),
                published=datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), author=None),
    ]
    rows = []
    for number, entry in enumerate(entries):
        values = store_module._new_entry_values(entry, ("topic",), NOW)
        values.update(kind="post", source_id=state.id, first_seen=NOW, uid=f"{number:032x}",
                      pruned=bool(number))
        rows.append(values)
    with Session(store.engine) as session:
        driver_ids = store_module._insert_entries(session, [dict(row) for row in rows])
        core_ids = list(session.execute(store_module._INSERT_ENTRIES, [
            {**row, "uid": "f" + row["uid"][1:]} for row in rows]).scalars())
        appearance = {"source_id": state.id, "kind": "post", "identity_key": "guid:g1",
                      "original_id": "g1", "feed_url": state.fetch_url, "link": None,
                      "published": entries[0].published, "content_hash": "c",
                      "first_seen": NOW}
        insert_rows(session, AppearanceRow.__table__, [
            {**appearance, "entry_id": driver_ids[0], "key_hash": "driver"}])
        session.execute(insert(AppearanceRow.__table__), [
            {**appearance, "entry_id": core_ids[0], "key_hash": "core"}])
        insert_rows(session, EntryTopicRow.__table__, [
            {"entry_id": driver_ids[1], "topic": "t", "published": entries[1].published}])
        session.execute(insert(EntryTopicRow.__table__), [
            {"entry_id": core_ids[1], "topic": "t", "published": entries[1].published}])
        session.commit()
    store.close()
    connection = sqlite3.connect(tmp_path / "driver.db")
    try:
        def stored(table: str, where: str, value: object) -> dict[str, tuple[object, str]]:
            columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
            picked = ", ".join(f'"{name}", typeof("{name}")' for name in columns)
            found = connection.execute(f"SELECT {picked} FROM {table} WHERE {where} = ?",
                                       (value,)).fetchone()
            return {name: (found[2 * i], found[2 * i + 1]) for i, name in enumerate(columns)}

        for number, (driver_id, core_id) in enumerate(zip(driver_ids, core_ids, strict=True)):
            by_driver = stored("entry", "uid", f"{number:032x}")
            by_core = stored("entry", "uid", "f" + f"{number:032x}"[1:])
            assert by_driver.pop("id")[0] == driver_id  # the ids returned are the rows'
            assert by_core.pop("id")[0] == core_id
            assert by_driver.pop("uid") != by_core.pop("uid")
            assert by_driver == by_core
        assert stored("entry", "uid", f"{0:032x}")["published"] == (
            "2026-03-01 07:05:07.123456", "text")
        by_driver = stored("appearance", "key_hash", "driver")
        by_core = stored("appearance", "key_hash", "core")
        for row in (by_driver, by_core):
            row.pop("id"), row.pop("entry_id"), row.pop("key_hash")
        assert by_driver == by_core
        topic_rows = {entry_id: (published, kind) for entry_id, published, kind in
                      connection.execute('SELECT entry_id, published, typeof(published) '
                                         'FROM entry_topic WHERE topic = ?', ("t",))}
        assert topic_rows[driver_ids[1]] == topic_rows[core_ids[1]] == (
            "0999-01-02 03:04:05.000000", "text")
    finally:
        connection.close()


def test_a_stored_time_must_be_aware() -> None:
    from aggregator.tables import sqlite_time

    with pytest.raises(ValueError, match="aware"):
        sqlite_time(datetime(2026, 1, 1))


# ------------------------------------------------------------------ key filter


def two_writers(tmp_path) -> tuple[Store, Store]:
    """Two stores (two processes, as far as their key filters know) on one file."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = Store(url)
    first.sync_sources([SourceConfig(name=name, url=f"https://{name}.example/feed/")
                        for name in "abc"], NOW)
    return first, Store(url)


def copy_of(guid: str, seed: int) -> ParsedEntry:
    """Another site's copy of distinct_body(seed): found through its dedupe keys
    alone (another URL, another body fingerprint)."""
    return parsed(guid, f"https://c.example/{guid}", title="Kopie",
                  body=distinct_body(seed) + " Overgenomen met toestemming.")


@pytest.mark.parametrize("first_writes", [1, 2])
def test_keys_another_writer_filed_are_found_through_the_key_filter(
        tmp_path, first_writes: int) -> None:
    first, second = two_writers(tmp_path)
    key_filter = first._key_filter
    assert key_filter is not None
    for number in range(first_writes):
        ingest(first, claim(first, "a"), parsed(f"a-{number}", f"https://a.example/{number}",
                                                title=f"Eigen {number}",
                                                body=distinct_body(100 + number)))
    assert key_filter.built and not key_filter.off
    # The second writer files a post the first store's filter never saw.
    ingest(second, claim(second, "b"), parsed("b-1", "https://b.example/origineel",
                                              title="Origineel", body=distinct_body(7)))
    report = ingest(first, claim(first, "c"), copy_of("c-1", 7))
    assert report.merged_posts == 1
    # Seen its own token committed, the filter knows another writer came
    # after it and stops; before that, it might have been its own rollback,
    # and it is built again from the tables.
    assert key_filter.off is (first_writes == 2)
    assert key_filter.built
    first.close()
    second.close()


def test_keys_filed_without_a_filter_switch_the_filters_off(tmp_path) -> None:
    first, second = two_writers(tmp_path)
    for number in range(2):
        ingest(first, claim(first, "a"), parsed(f"a-{number}", f"https://a.example/{number}",
                                                title=f"Eigen {number}",
                                                body=distinct_body(100 + number)))
    # A command that files keys outside ingest (splitting a merge does) carries no filter.
    second._key_filter = None
    ingest(second, claim(second, "b"), parsed("b-1", "https://b.example/origineel",
                                              title="Origineel", body=distinct_body(7)))
    assert first.get_meta(dedupe_index.KeyFilter.WRITER) == ""
    assert ingest(first, claim(first, "c"), copy_of("c-1", 7)).merged_posts == 1
    assert first._key_filter is not None and first._key_filter.off
    first.close()
    second.close()


def test_the_key_filter_spares_the_lookups_of_new_posts(tmp_path) -> None:
    first, _ = two_writers(tmp_path)
    statements: list[str] = []
    event.listen(first.engine, "before_cursor_execute",
                 lambda _c, _cu, statement, *_: statements.append(statement))
    for number in range(3):
        ingest(first, claim(first, "a"), *[
            parsed(f"a-{number}-{post}", f"https://a.example/{number}/{post}",
                   title=f"Eigen {number} {post}", body=distinct_body(10 * number + post))
            for post in range(5)])
    key_lookups = [s for s in statements if s.startswith('SELECT "key" FROM dedupe_key')]
    # Only the first document (the filter not built yet, then built) may ask;
    # at about 2 % false positives, 110 new keys a document rarely ask at all.
    assert len(key_lookups) <= 2, key_lookups
    assert ingest(first, claim(first, "b"), copy_of("b-1", 21)).merged_posts == 1
    first.close()


def test_postgresql_stores_look_every_key_up(database_url: str) -> None:
    store = Store(database_url)
    assert (store._key_filter is not None) is store.is_sqlite
    store.close()


def test_a_split_through_the_store_keeps_its_key_filter(tmp_path) -> None:
    store, _ = two_writers(tmp_path)
    ingest(store, claim(store, "a"), parsed("a-1", "https://a.example/origineel",
                                            title="Origineel", body=distinct_body(7)))
    assert ingest(store, claim(store, "b"), copy_of("b-1", 7)).merged_posts == 1
    [record] = list(store.export_records())
    store.split_duplicate(record["id"], source_name="b")
    assert store.counts() == {"post": 2}
    # The split filed the new post's keys through the filter, which stays on.
    assert store._key_filter is not None and not store._key_filter.off
    assert store.get_meta(dedupe_index.KeyFilter.WRITER) == store._key_filter.token
    assert ingest(store, claim(store, "c"), copy_of("c-1", 7)).merged_posts == 1
    store.close()


def test_a_big_store_builds_no_key_filter_and_says_so(
        tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(dedupe_index.KeyFilter, "BUILD_LIMIT", 30)
    first, _ = two_writers(tmp_path)
    # Grown from an empty store, the first filter stays on past the limit.
    for number in range(2):
        ingest(first, claim(first, "a"), parsed(f"a-{number}", f"https://a.example/{number}",
                                                title=f"Eigen {number}",
                                                body=distinct_body(100 + number)))
    assert first._key_filter is not None and not first._key_filter.off
    again = Store(f"sqlite:///{tmp_path / 'shared.db'}")  # a restart: 44 keys to read
    with caplog.at_level("INFO", logger="aggregator.dedupe_index"):
        ingest(again, claim(again, "b"), parsed("b-1", "https://b.example/origineel",
                                                title="Origineel", body=distinct_body(7)))
    assert again._key_filter is not None and again._key_filter.off
    assert "more than the key filter is built from" in caplog.text
    # Keys filed with the filter off are no longer any filter's to answer for.
    assert ingest(first, claim(first, "c"), copy_of("c-1", 7)).merged_posts == 1
    assert first._key_filter.off
    assert ingest(again, claim(again, "c"), copy_of("c-2", 100)).merged_posts == 1
    first.close()
    again.close()
