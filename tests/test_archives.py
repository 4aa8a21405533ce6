"""RFC 5005 archived feeds: all.atom and comments.atom with their archive documents.

Two blogs with hundreds of posts (Dutch and German marketing prose, as the
seed blogs write it) and comment threads are served on 127.0.0.1 and read
through the whole pipeline; the published documents are read back with lxml
and feedparser the way an RFC 5005 §4.2 client does: the subscription
document, then each prev-archive until there is none.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import feedparser
import pytest
import sqlalchemy
from blogserver import BlogServer
from lxml import etree

from aggregator import archive_index
from aggregator.config import load_config
from aggregator.parser_pool import ParserPool
from aggregator.pipeline import Aggregator
from aggregator.store import public_id

ATOM = "{http://www.w3.org/2005/Atom}"
FH = "{http://purl.org/syndication/history/1.0}"
RSS = "application/rss+xml"
BASE_URL = "http://127.0.0.1:8080/"

#: Words of the seed blogs' posts (marketingfacts, videopodcast): every post is
#: a different draw, so no two are near-duplicates that dedupe would merge.
DUTCH = ("merk", "klant", "community", "campagne", "budget", "bureau", "strategie", "video",
         "podcast", "blog", "fans", "reclame", "media", "consument", "broncode", "dialoog",
         "vertrouwen", "netwerk", "product", "markt", "onderzoek", "open", "source",
         "marketing", "evangelisten")
GERMAN = ("Marke", "Kunde", "Gemeinschaft", "Kampagne", "Werbung", "Medien", "Verbraucher",
          "Vertrauen", "Netzwerk", "Produkt", "Markt", "Forschung", "Videopodcast", "Folge",
          "Zuschauer", "Sendung", "Kommentar", "Inhalt", "Plattform", "Gespräch")


@dataclass
class FakeBlog:
    """One blog on the BlogServer: a post feed and a comment feed per commented post."""

    name: str
    words: tuple[str, ...]
    server: BlogServer
    posts: list[tuple[int, datetime, int]] = field(default_factory=list)  # number, date, comments

    @property
    def feed_path(self) -> str:
        return f"/{self.name}/feed/"

    def add_posts(self, count: int, *, start: datetime, comments_every: int = 0) -> None:
        first = len(self.posts)
        for number in range(first, first + count):
            comments = 2 if comments_every and number % comments_every == 0 else 0
            self.posts.append((number, start + timedelta(hours=number), comments))
        self.publish()

    def text(self, seed: str, words: int) -> str:
        rng = random.Random(seed)
        return " ".join(rng.choice(self.words) for _ in range(words))

    def publish(self) -> None:
        items = []
        for number, date, comments in self.posts:
            link = self.server.url(f"/{self.name}/{number}/")
            thread = ""
            if comments:
                thread = (f"<wfw:commentRss>{link}feed/</wfw:commentRss>"
                          f"<slash:comments>{comments}</slash:comments>")
                self.server.set_route(f"/{self.name}/{number}/feed/",
                                      self.comment_feed(number, date, comments),
                                      content_type=RSS)
            items.append(
                f"<item><title>{self.name} {number}: {self.text(f'{self.name}t{number}', 6)}"
                f"</title><link>{link}</link><guid isPermaLink=\"true\">{link}</guid>"
                f"<pubDate>{format_datetime(date)}</pubDate>"
                f"<description>{escape('<p>' + self.text(f'{self.name}{number}', 90) + '</p>')}"
                f"</description>{thread}</item>")
        self.server.set_route(self.feed_path, self.rss(self.name, "".join(items)),
                              content_type=RSS)

    def comment_feed(self, number: int, date: datetime, count: int) -> str:
        link = self.server.url(f"/{self.name}/{number}/")
        items = "".join(
            f"<item><title>Reactie {k}</title><link>{link}#comment-{k}</link>"
            f"<guid isPermaLink=\"false\">{self.name}-{number}-c{k}</guid>"
            f"<pubDate>{format_datetime(date + timedelta(minutes=10 + k))}</pubDate>"
            f"<dc:creator>Lezer {k}</dc:creator>"
            f"<description>{self.text(f'{self.name}{number}c{k}', 25)}</description></item>"
            for k in range(count))
        return self.rss(f"Comments on {self.name} {number}", items)

    def rss(self, title: str, items: str) -> str:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<rss version="2.0" xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
            'xmlns:slash="http://purl.org/rss/1.0/modules/slash/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<channel><title>{title}</title><link>{self.server.url('/' + self.name + '/')}"
            f"</link><description>{title}</description>{items}</channel></rss>")


@pytest.fixture
def server() -> Iterator[BlogServer]:
    with BlogServer() as blogs:
        yield blogs


def write_config(directory: Path, blogs: list[FakeBlog], *, retention_days: int = 0) -> Path:
    text = f"""[aggregator]
title = "Archief"
base_url = "{BASE_URL}"
feeds_dir = "feeds"
retention_days = {retention_days}

[fetch]
allow_short_intervals = true
interval = "15m"
per_host = 4
comments_days = 36500
"""
    for blog in blogs:
        language = "de" if blog.words is GERMAN else "nl"
        text += f"""
[[sources]]
name = "{blog.name}"
url = "{blog.server.url(blog.feed_path)}"
language = "{language}"
allow_private = true
"""
    path = directory / "config.toml"
    path.write_text(text, "utf-8")
    return path


def fetch(config: Path, database_url: str) -> None:
    async def go() -> None:
        aggregator = Aggregator(load_config(config), parser_pool=ParserPool(0))
        try:
            await aggregator.fetch_pass(force=True)
        finally:
            await aggregator.aclose()
            aggregator.close()

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AGGREGATOR_DATABASE_URL", database_url)
        asyncio.run(go())


def publish(config: Path, database_url: str, *, budget: float | None = None,
            rounds: int = 50) -> int:
    """Publish until no archive document waits; returns the publishes it took."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AGGREGATOR_DATABASE_URL", database_url)
        aggregator = Aggregator(load_config(config))
        try:
            if budget is not None:
                aggregator.archive_budget = budget
            for done in range(1, rounds + 1):
                aggregator.publish(all_archives=budget is None)
                if not aggregator.archives_pending:
                    return done
        finally:
            aggregator.close()
    raise AssertionError(f"archive documents still waiting after {rounds} publishes")


def one_blog(tmp_path: Path, server: BlogServer, posts: int, *,
             publish_too: bool = True) -> tuple[FakeBlog, Path, str]:
    """A Dutch blog of ``posts`` posts, fetched into a new SQLite store (and published)."""
    blog = FakeBlog("marketingfacts", DUTCH, server)
    blog.add_posts(posts, start=datetime(2024, 1, 1, tzinfo=UTC))
    config = write_config(tmp_path, [blog])
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fetch(config, url)
    if publish_too:
        publish(config, url)
    return blog, config, url


def stored_ids(database_url: str, kind: str) -> set[str]:
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return {public_id(uid) for (uid,) in connection.execute(sqlalchemy.text(
                "SELECT uid FROM entry WHERE kind = :kind AND NOT pruned"), {"kind": kind})}
    finally:
        engine.dispose()


def local(feeds: Path, url: str) -> Path:
    assert url.startswith(BASE_URL), url
    return feeds / url.removeprefix(BASE_URL)


def links(document: etree._Element, rel: str) -> list[str]:
    return [link.get("href") for link in document.findall(f"{ATOM}link[@rel='{rel}']")]


def entry_ids(document: etree._Element) -> list[str]:
    return [entry.findtext(f"{ATOM}id") for entry in document.findall(f"{ATOM}entry")]


@dataclass
class Reconstruction:
    """What an RFC 5005 §4.2 client collects from one subscription document."""

    subscription: list[str]
    #: Archive documents visited, newest first: (path, entry ids).
    archives: list[tuple[Path, list[str]]]

    @property
    def every_id(self) -> set[str]:
        return set(self.subscription).union(*(ids for _, ids in self.archives))


def reconstruct(feeds: Path, stem: str) -> Reconstruction:
    current = local(feeds, f"{BASE_URL}{stem}.atom")
    document = etree.fromstring(current.read_bytes())
    assert document.find(f"{FH}archive") is None  # a subscription document is no archive
    result = Reconstruction(entry_ids(document), [])
    previous = links(document, "prev-archive")
    newer: str | None = None
    while previous:
        [href] = previous
        path = local(feeds, href)
        archive = etree.fromstring(path.read_bytes())
        # RFC 5005 §4: fh:archive, "current" to the subscription document,
        # "next-archive" to the newer archive (none for the newest).
        assert archive.find(f"{FH}archive") is not None, path
        assert links(archive, "current") == [f"{BASE_URL}{stem}.atom"], path
        assert links(archive, "self") == [href], path
        assert links(archive, "next-archive") == ([newer] if newer else []), path
        assert archive.findtext(f"{ATOM}id") == f"{BASE_URL}{stem}.atom"
        parsed = feedparser.parse(path.read_bytes())
        assert not parsed.bozo, parsed.bozo_exception
        result.archives.append((path, entry_ids(archive)))
        newer, previous = href, links(archive, "prev-archive")
        assert len(result.archives) < 1000, "prev-archive links go round in a circle"
    return result


def archive_files(feeds: Path, stem: str) -> list[Path]:
    return sorted((feeds / "archive" / stem).glob("*.atom"), key=lambda p: int(p.stem))


# --------------------------------------------------------------------------- tests


def test_every_post_and_comment_is_in_the_subscription_document_or_one_archive(
    tmp_path: Path, server: BlogServer, database_url: str,
) -> None:
    """RFC 5005 §4.2: following prev-archive from all.atom gives back every post."""
    dutch = FakeBlog("marketingfacts", DUTCH, server)
    german = FakeBlog("videopodcast", GERMAN, server)
    dutch.add_posts(140, start=datetime(2024, 1, 1, tzinfo=UTC), comments_every=2)
    german.add_posts(90, start=datetime(2024, 3, 1, tzinfo=UTC), comments_every=3)
    config = write_config(tmp_path, [dutch, german])
    fetch(config, database_url)
    publish(config, database_url)
    feeds = tmp_path / "feeds"

    posts = stored_ids(database_url, "post")
    assert len(posts) == 230
    rebuilt = reconstruct(feeds, "all")
    assert [path.name for path, _ in rebuilt.archives] == ["2.atom", "1.atom"]
    assert [len(ids) for _, ids in rebuilt.archives] == [100, 100]
    assert rebuilt.every_id == posts
    archived = [i for _, ids in rebuilt.archives for i in ids]
    assert len(archived) == len(set(archived)), "an entry is in two archive documents"
    # The 30 posts of the open block are in the subscription document.
    assert set(archived) | set(rebuilt.subscription) == posts
    assert len(set(rebuilt.subscription) - set(archived)) == 30

    comments = stored_ids(database_url, "comment")
    assert len(comments) == 2 * (70 + 30)
    threads = reconstruct(feeds, "comments")
    assert [path.name for path, _ in threads.archives] == ["2.atom", "1.atom"]
    assert threads.every_id == comments
    # RSS and JSON Feed subscription documents are not part of the archive.
    assert not (feeds / "archive" / "all" / "1.rss").exists()


def test_archive_documents_keep_their_entries_as_the_feed_grows(
    tmp_path: Path, server: BlogServer,
) -> None:
    """§4: an archive's set of entries and its URI do not change; the newest one
    gains its next-archive link when the block after it closes."""
    blog, config, url = one_blog(tmp_path, server, 250)
    feeds = tmp_path / "feeds"
    first = reconstruct(feeds, "all")
    oldest = feeds / "archive" / "all" / "1.atom"
    oldest_bytes, oldest_mtime = oldest.read_bytes(), oldest.stat().st_mtime_ns

    blog.add_posts(70, start=datetime(2025, 6, 1, tzinfo=UTC))
    fetch(config, url)
    publish(config, url)
    second = reconstruct(feeds, "all")
    assert [p.name for p, _ in second.archives] == ["3.atom", "2.atom", "1.atom"]
    before = {p.name: set(ids) for p, ids in first.archives}
    after = {p.name: set(ids) for p, ids in second.archives}
    assert after["1.atom"] == before["1.atom"] and after["2.atom"] == before["2.atom"]
    assert oldest.read_bytes() == oldest_bytes and oldest.stat().st_mtime_ns == oldest_mtime
    assert second.every_id == stored_ids(url, "post")
    # The 20 left after 3 × 100 are the open block.
    assert len(second.every_id - set().union(*after.values())) == 20


def test_a_short_publish_writes_the_newest_archive_first_and_the_rest_later(
    tmp_path: Path, server: BlogServer,
) -> None:
    """With no time to spare, each publish writes one archive document, newest
    first, so the subscription document's prev-archive is never a 404; a new
    process takes over what the last one left, and a publish told to leave
    archives alone (a fetch that changed nothing) writes none."""
    _, config, url = one_blog(tmp_path, server, 430, publish_too=False)
    feeds = tmp_path / "feeds"

    def publish_once(**options: bool) -> tuple[list[Path], bool]:
        """One publish in a new Aggregator, as a new process would run it."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AGGREGATOR_DATABASE_URL", url)
            aggregator = Aggregator(load_config(config))
            aggregator.archive_budget = 1e-9  # spent after the first document
            try:
                return aggregator.publish(**options), aggregator.archives_pending
            finally:
                aggregator.close()

    assert publish_once()[1]
    assert [p.name for p in archive_files(feeds, "all")] == ["4.atom"]
    [newest] = links(etree.fromstring((feeds / "all.atom").read_bytes()), "prev-archive")
    assert local(feeds, newest).exists()
    assert publish_once(archive_work=False) == ([], True)
    assert [p.name for p in archive_files(feeds, "all")] == ["4.atom"]
    # Three more, one per publish, newest first.
    for written, pending in ([["3.atom"], True], [["2.atom"], True], [["1.atom"], False]):
        changed, waiting = publish_once()
        assert [p.name for p in changed if "archive" in p.parts] == written
        assert waiting is pending
    assert reconstruct(feeds, "all").every_id == stored_ids(url, "post")
    assert publish_once() == ([], False)


def test_a_publish_with_nothing_new_reads_no_archive_block(
    tmp_path: Path, server: BlogServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    blog, config, url = one_blog(tmp_path, server, 210)
    blog.add_posts(1, start=datetime(2026, 1, 1, tzinfo=UTC))
    fetch(config, url)

    read: list[tuple[str, int]] = []
    original = Aggregator._archive_block

    def counting(self: Aggregator, stem: str, block: int):  # type: ignore[no-untyped-def]
        read.append((stem, block))
        return original(self, stem, block)

    monkeypatch.setattr(Aggregator, "_archive_block", counting)
    publish(config, url)  # a new process: the memo comes from the feeds directory
    assert read == []
    all_atom = tmp_path / "feeds" / "all.atom"
    assert "marketingfacts 210:" in all_atom.read_text("utf-8")


def test_posts_of_the_open_block_stay_in_the_subscription_document_however_old(
    tmp_path: Path, server: BlogServer,
) -> None:
    """A blog added later brings old posts: until their block closes, all.atom
    carries them beside its newest 100, or no document would."""
    dutch = FakeBlog("marketingfacts", DUTCH, server)
    dutch.add_posts(200, start=datetime(2025, 1, 1, tzinfo=UTC))
    config = write_config(tmp_path, [dutch])
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fetch(config, url)
    publish(config, url)
    old = FakeBlog("videopodcast", GERMAN, server)
    old.add_posts(30, start=datetime(2007, 7, 1, tzinfo=UTC))
    config = write_config(tmp_path, [dutch, old])
    fetch(config, url)
    publish(config, url)
    subscription = reconstruct(tmp_path / "feeds", "all").subscription
    assert len(subscription) == 130
    titles = (tmp_path / "feeds" / "all.atom").read_text("utf-8")
    assert all(f"videopodcast {n}:" in titles for n in range(30))
    # The other formats keep to the newest 100.
    assert len(feedparser.parse((tmp_path / "feeds" / "all.rss").read_bytes()).entries) == 100


def test_retention_rewrites_archives_without_the_removed_posts_and_their_comments(
    tmp_path: Path, server: BlogServer,
) -> None:
    blog = FakeBlog("marketingfacts", DUTCH, server)
    blog.add_posts(120, start=datetime(2009, 1, 1, tzinfo=UTC), comments_every=1)
    blog.add_posts(110, start=datetime.now(UTC) - timedelta(days=20), comments_every=1)
    config = write_config(tmp_path, [blog])
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fetch(config, url)
    publish(config, url)
    feeds = tmp_path / "feeds"
    text_before = (feeds / "archive" / "all" / "1.atom").read_text("utf-8")
    assert "marketingfacts 0:" in text_before

    write_config(tmp_path, [blog], retention_days=365)
    publish(config, url)
    posts = stored_ids(url, "post")
    assert len(posts) == 110
    rebuilt = reconstruct(feeds, "all")
    assert rebuilt.every_id == posts
    assert "marketingfacts 0:" not in (feeds / "archive" / "all" / "1.atom").read_text("utf-8")
    # The block keeps its number and links: only the removed posts went.
    assert [p.name for p, _ in rebuilt.archives] == ["2.atom", "1.atom"]
    comments = reconstruct(feeds, "comments")
    assert comments.every_id == stored_ids(url, "comment")
    assert len(stored_ids(url, "comment")) == 220


def test_entries_committed_late_are_numbered_all_the_same(postgres_url: str) -> None:
    """PostgreSQL workers may commit a lower entry id after a higher one was
    numbered: the next round finds it below the highest id."""
    from aggregator.store import Store

    store = Store(postgres_url)
    try:
        with store.engine.begin() as connection:
            connection.execute(sqlalchemy.text(
                "INSERT INTO source (name, url, redirect_count, error_count, gone, created_at) "
                "VALUES ('s', 'https://s.example/feed/', 0, 0, false, now())"))
            source = connection.execute(sqlalchemy.text("SELECT id FROM source")).scalar_one()

            def entry(entry_id: int) -> None:
                connection.execute(sqlalchemy.text(
                    "INSERT INTO entry (id, uid, kind, source_id, title, content_html, "
                    "summary_html, published, updated, first_seen, categories, topics, "
                    "content_hash, text, pruned) VALUES (:id, :uid, 'post', :source, 't', "
                    "'<p>x</p>', '', now(), now(), now(), '[]', '[]', 'h', 'x', false)"),
                    {"id": entry_id, "uid": f"{entry_id:032x}", "source": source})

            for entry_id in [*range(1, 101), 105]:
                entry(entry_id)
        counts, more = store.number_archive_entries()
        assert counts["all"] == 101 and not more
        with store.engine.begin() as connection:
            entry(102)  # committed after 105 was numbered
        counts, _ = store.number_archive_entries()
        assert counts["all"] == 102
        assert [e.key for e in store.archive_entries("all", 101, 101)] == [f"{102:032x}"]
        # A second round numbers nothing twice.
        assert store.number_archive_entries()[0]["all"] == 102
    finally:
        store.close()


def test_numbering_is_capped_per_round_and_resumes(tmp_path: Path, server: BlogServer) -> None:
    _, _, url = one_blog(tmp_path, server, 130, publish_too=False)
    from aggregator.store import Store

    store = Store(url)
    try:
        assert store.number_archive_entries(limit=100) == ({"all": 100, "comments": 0}, True)
        assert store.number_archive_entries(limit=100) == ({"all": 130, "comments": 0}, False)
        firsts = store.archive_entries("all", 0, archive_index.BLOCK_SIZE - 1)
        assert len(firsts) == 100
    finally:
        store.close()


def test_the_server_serves_archives_and_keeps_its_cache_bounded(
    tmp_path: Path, server: BlogServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiohttp.test_utils import make_mocked_request

    from aggregator import server as feed_server
    from aggregator.store import Store

    _, config_path, url = one_blog(tmp_path, server, 320)
    sizes = [p.stat().st_size for p in archive_files(tmp_path / "feeds", "all")]
    # Room for about two archive documents (and their gzip).
    monkeypatch.setattr(feed_server, "CACHE_BYTES", int(max(sizes) * 2.6))
    store = Store(url)
    try:
        app = feed_server.FeedServer(load_config(config_path), store)
        for block in (1, 2, 3, 1):
            request = make_mocked_request("GET", f"/feeds/archive/all/{block}.atom")
            response = app._serve_file(request, f"archive/all/{block}.atom")
            assert response.status == 200
            assert response.content_type == "application/atom+xml"
            assert feedparser.parse(response.body).entries  # type: ignore[arg-type]
            assert app._cached_bytes <= feed_server.CACHE_BYTES
        assert len(app._files) <= 2
        assert app._serve_file(make_mocked_request("GET", "/x"), "archive/all/9.atom").status \
            == 404
    finally:
        store.close()


def test_the_daemon_writes_leftover_archives_in_its_ticks(
    tmp_path: Path, server: BlogServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each publish is short; the daemon publishes again within the tick while
    archive documents wait, and in the next tick when its time is up."""
    from aggregator import daemon as daemon_module
    from aggregator.store import Store

    _, config_path, url = one_blog(tmp_path, server, 430, publish_too=False)
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", url)
    config = load_config(config_path)

    def ticks(seconds_per_tick: float) -> list[int]:
        """Archive documents on disk after each of three ticks, in a new daemon."""
        monkeypatch.setattr(daemon_module, "ARCHIVE_SECONDS_PER_TICK", seconds_per_tick)
        daemon = daemon_module.Daemon(config, serve=False, fetch=False)
        daemon.store = Store(config.aggregator.database)
        daemon.aggregator = Aggregator(config, store=daemon.store)
        daemon.aggregator.archive_budget = 1e-9  # one document per publish
        try:
            seen = []
            for _ in range(3):
                asyncio.run(daemon.tick())
                seen.append(len(archive_files(tmp_path / "feeds", "all")))
            return seen
        finally:
            daemon.store.close()

    assert ticks(0.0) == [1, 2, 3]  # one publish per tick, and one each next tick
    assert ticks(10.0) == [4, 4, 4]
    assert reconstruct(tmp_path / "feeds", "all").every_id == stored_ids(url, "post")


def test_fetch_that_changed_nothing_leaves_archives_to_publish(
    tmp_path: Path, server: BlogServer,
) -> None:
    """A fetch whose pass changed nothing writes no archive document (a warm pass
    stays as short as the fetching); `aggregator publish` writes every one."""
    from test_end_to_end import run_cli_in_python

    _, config, url = one_blog(tmp_path, server, 430, publish_too=False)
    out = run_cli_in_python(config, ["fetch", "--all"], database_url=url)
    assert "Some archive documents are still to write" in out
    assert archive_files(tmp_path / "feeds", "all") == []
    assert (tmp_path / "feeds" / "all.atom").exists()
    out = run_cli_in_python(
        config, ["publish"], database_url=url,
        before="import aggregator.pipeline as p\np.ARCHIVE_BUDGET_SECONDS = 1e-9\n")
    assert "Writing the archive documents still to write" in out
    assert len(archive_files(tmp_path / "feeds", "all")) == 4
    assert reconstruct(tmp_path / "feeds", "all").every_id == stored_ids(url, "post")
