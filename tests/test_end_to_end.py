"""The whole path, through the CLI: seed blogs on a local server → store → published feeds.

The published files are read back with feedparser and lxml, never with the
code that wrote them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
import sqlalchemy
from blogserver import SEEDBLOGS, BlogServer
from lxml import etree
from passes import run_pass

EXPECTED = json.loads(
    (Path(__file__).parent / "fixtures" / "seedblogs" / "expected.json").read_text("utf-8")
)
ATOM = "{http://www.w3.org/2005/Atom}"
THR = "{http://purl.org/syndication/thread/1.0}"

TOPICS = """
[[topics]]
slug = "open-source-marketing"
title = "Open source marketing"
keywords = ["open source marketing", "open source"]

[[topics]]
slug = "consumer-generated-media"
title = "Consumer-generated media"
keywords = ["consumer generated media", "consument praat terug", "user generated content"]

[[topics]]
slug = "social-media"
title = "Social media"
keywords = ["social media", "Myspace", "Facebook"]

[[topics]]
slug = "brand-communities"
title = "Brand communities"
keywords = ["brand communities", "brand community", "merk-gemeenschappen"]
"""


def source_block(name: str, url: str, language: str) -> str:
    return f"""
[[sources]]
name = "{name}"
url = "{url}"
language = "{language}"
allow_private = true
"""


def write_config(directory: Path, blog: BlogServer, *, port: int = 8080,
                 sources: tuple[str, ...] = ("marketingfacts", "videopodcast", "upstream")) -> Path:
    urls = {
        "marketingfacts": (blog.url("/marketingfacts/feed/"), "nl"),
        "videopodcast": (blog.url("/videopodcast/atom.xml"), "de"),
        "upstream": (blog.url("/upstream/feed/"), "nl"),
    }
    text = f"""# test configuration
[aggregator]
title = "Seed blogs"
base_url = "http://127.0.0.1:{port}/"
feeds_dir = "feeds"

[fetch]
allow_short_intervals = true
interval = "1m"
tick = 1
per_host = 4
comments_days = 36500

[server]
host = "127.0.0.1"
port = {port}
"""
    for name in sources:
        url, language = urls[name]
        text += source_block(name, url, language)
    text += TOPICS
    path = directory / "config.toml"
    path.write_text(text, "utf-8")
    return path


def run_cli(config: Path, *args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGGREGATOR_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )


def run_cli_in_python(config: Path, args: list[str], *, database_url: str,
                      before: str = "", after: str = "") -> str:
    """Run the CLI inside ``python -c`` between two pieces of code (to patch, then
    to look at the process); returns what it printed."""
    program = (
        f"import sys\n{before}"
        "from aggregator.cli import main\n"
        f"sys.argv = ['aggregator', '--config', {str(config)!r}, *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        f"{after}"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            env={**os.environ, "AGGREGATOR_DATABASE_URL": database_url},
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture
def blog() -> Iterator[BlogServer]:
    with BlogServer() as server:
        yield server


def blog_fixture(path: str) -> str:
    """The seed blogs' document at ``path``, as served before {{BASE}} is filled in."""
    manifest = json.loads((SEEDBLOGS / "manifest.json").read_text("utf-8"))
    return (SEEDBLOGS / manifest["documents"][path]["file"]).read_text("utf-8")


def parsed(path: Path) -> Any:
    result = feedparser.parse(path.read_bytes())
    assert not result.bozo, f"{path}: {result.bozo_exception}"
    return result


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def test_fetch_publishes_every_post_and_comment_once(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    config = write_config(tmp_path, blog)
    first = run_cli(config, "fetch", database_url=database_url)
    assert first.returncode == 0, first.stderr
    feeds = tmp_path / "feeds"

    posts = parsed(feeds / "all.atom").entries
    expected_posts = EXPECTED["posts"]
    duplicate_guids = {guid for _, guid in EXPECTED["duplicates"]}
    # Every post once: the cross-post is merged into one entry.
    assert len(posts) == len(expected_posts) - 1
    titles = [p.title for p in posts]
    assert len(set(titles)) == len(titles)
    for post in expected_posts:
        assert post["title"] in titles
    by_title = {p.title: p for p in posts}

    # The merged entry names both places it appeared.
    crosspost = next(p for p in expected_posts if p["guid"] in duplicate_guids)
    merged = by_title[crosspost["title"]]
    # The earliest copy (the original on its own blog) is the canonical one.
    assert "/marketingfacts/" in merged.link
    vias = [link.href for link in merged.links if link.rel == "via"]
    assert any("/upstream/" in href for href in vias), merged.links
    assert "Also published at" in merged.content[0].value

    # Posts carry rel="replies" with thr:count, pointing at the thread feed.
    tree = etree.parse(str(feeds / "all.atom"))
    entry_ids = {}
    for entry in tree.iter(f"{ATOM}entry"):
        title = entry.findtext(f"{ATOM}title")
        entry_ids[title] = entry.findtext(f"{ATOM}id")
        assert entry.find(f"{ATOM}source/{ATOM}id") is not None, "atom:source missing"
    open_source = entry_ids["Open source dringt door in marketing"]

    comments_tree = etree.parse(str(feeds / "comments.atom"))
    comments = []
    for entry in comments_tree.iter(f"{ATOM}entry"):
        reply = entry.find(f"{THR}in-reply-to")
        assert reply is not None, "every comment carries thr:in-reply-to"
        comments.append({
            "id": entry.findtext(f"{ATOM}id"),
            "author": entry.findtext(f"{ATOM}author/{ATOM}name"),
            "published": utc(entry.findtext(f"{ATOM}published")),
            "content": entry.findtext(f"{ATOM}content") or "",
            "ref": reply.get("ref"),
        })
    expected_comments = [
        (post, comment) for post in expected_posts for comment in post["comments"]
    ]
    assert len(comments) == len(expected_comments)
    for post, comment in expected_comments:
        matches = [c for c in comments if comment["text_snippet"] in c["content"]]
        assert len(matches) == 1, comment
        found = matches[0]
        assert found["author"] == comment["author"]
        assert found["published"] == utc(comment["published_utc"])
        if comment["in_reply_to"] == "post":
            # Comments of the re-post join the canonical post's thread.
            assert found["ref"] == entry_ids[post["title"]]
        else:
            answered = next(c for c in comments if c["author"] == comment["in_reply_to"]
                            and c["ref"] == entry_ids[post["title"]])
            assert found["ref"] == answered["id"]
    joost = next(c for c in comments if c["author"] == "Joost")
    assert joost["ref"] == open_source

    # Languages: detected per entry.
    for code in ("nl", "de", "en"):
        lang_titles = {e.title for e in parsed(feeds / "lang" / f"{code}.atom").entries}
        wanted = {p["title"] for p in expected_posts if p["language"] == code}
        assert lang_titles == wanted, code

    # Topics: keyword rules over title, content and categories.
    def topic(slug: str) -> set[str]:
        return {e.title for e in parsed(feeds / "topics" / f"{slug}.atom").entries}

    assert "Open source dringt door in marketing" in topic("open-source-marketing")
    assert "De marketeer wordt slechts facilitator!" in topic("open-source-marketing")
    assert "Help, de consument praat terug" not in topic("open-source-marketing")
    assert "Help, de consument praat terug" in topic("consumer-generated-media")
    assert "Twee trends om in 2013 in de gaten te houden" in topic("social-media")
    assert "33: Martin Oetting über Marketing im Internet-Zeitalter" in topic("social-media")

    # The other formats carry the same posts.
    rss = parsed(feeds / "all.rss")
    assert sorted(e.title for e in rss.entries) == sorted(titles)
    json_feed = json.loads((feeds / "all.json").read_text("utf-8"))
    assert json_feed["version"] == "https://jsonfeed.org/version/1.1"
    assert sorted(item["title"] for item in json_feed["items"]) == sorted(titles)
    assert {item["id"] for item in json_feed["items"]} == set(entry_ids.values())
    assert (feeds / "sources.opml").exists() and (feeds / "index.html").exists()

    # A second pass sends conditional requests, gets 304s and changes nothing.
    mtimes = {p: p.stat().st_mtime_ns for p in feeds.rglob("*") if p.is_file()}
    blog.reset()
    second = run_cli(config, "fetch", "--all", database_url=database_url)
    assert second.returncode == 0, second.stderr
    assert blog.requests, "the second pass fetched nothing"
    for request in blog.requests:
        assert "if-none-match" in request.headers or "if-modified-since" in request.headers
        assert request.status == 304, request.path
    assert {p: p.stat().st_mtime_ns for p in feeds.rglob("*") if p.is_file()} == mtimes
    ids_again = {e.id for e in parsed(feeds / "all.atom").entries}
    assert ids_again == set(entry_ids.values())


def test_status_and_export_report_the_store(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    config = write_config(tmp_path, blog)
    assert run_cli(config, "fetch", database_url=database_url).returncode == 0
    status = run_cli(config, "status", "--json", database_url=database_url)
    assert status.returncode == 0, status.stderr
    rows = {row["name"]: row for row in json.loads(status.stdout)}
    assert rows["marketingfacts"]["posts"] == 4
    assert rows["marketingfacts"]["comments"] == 3
    assert rows["videopodcast"]["comments"] == 10
    assert rows["upstream"]["http_status"] == 200
    assert all(row["health"] == "ok" for row in rows.values())
    assert all(row["warning"] is None for row in rows.values())

    def fetch_all() -> tuple[dict[str, Any], list[int]]:
        """Status rows by name after a forced pass, and the upstream feed's answers."""
        blog.reset()
        fetched = run_cli(config, "fetch", "--all", database_url=database_url)
        assert fetched.returncode == 0, fetched.stderr
        status = run_cli(config, "status", "--json", database_url=database_url)
        assert status.returncode == 0, status.stderr
        rows = {row["name"]: row for row in json.loads(status.stdout)}
        return rows, [r.status for r in blog.requests if r.route == "/upstream/feed/"]

    # A feed read despite a fault: status says what was wrong, until it changes.
    with_item = blog_fixture("/upstream/feed/").replace(
        "</channel>", "<item><title>Nieuw</title><link>/n</link></item></channel>")
    blog.set_route("/upstream/feed/", with_item, content_type="text/html")
    rows, _ = fetch_all()
    assert rows["upstream"]["warning"] == "text/html is not an XML media type"
    assert rows["upstream"]["health"] == "ok" and rows["marketingfacts"]["warning"] is None
    table = run_cli(config, "status", database_url=database_url)
    assert "warning: text/html is not an XML media type" in " ".join(table.stdout.split()), \
        table.stdout
    # The site fixes its media type and serves the same bytes under a new
    # validator: read again, clean.
    blog.set_route("/upstream/feed/", with_item,
                   content_type="application/rss+xml; charset=UTF-8",
                   headers={"ETag": '"media-type-fixed"'})
    rows, answers = fetch_all()
    assert rows["upstream"]["warning"] is None and answers == [200]
    # Unchanged since, headers and all: not read again, and still clean.
    rows, answers = fetch_all()
    assert rows["upstream"]["warning"] is None and answers == [304]

    export = run_cli(config, "export", database_url=database_url)
    assert export.returncode == 0, export.stderr
    records = [json.loads(line) for line in export.stdout.splitlines()]
    posts = [r for r in records if r["kind"] == "post"]
    merged = [r for r in posts if len(r["appearances"]) == 2]
    assert len(merged) == 1
    assert {a["source"] for a in merged[0]["appearances"]} == {"marketingfacts", "upstream"}
    assert merged[0]["comments"] == 3


def test_a_body_hash_stored_by_an_earlier_version_still_matches(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    feed = blog_fixture("/upstream/feed/")
    blog.set_route("/upstream/feed/", feed, content_type="application/rss+xml; charset=UTF-8")
    config = write_config(tmp_path, blog, sources=("upstream",))
    run_pass(config, database_url)
    # Earlier versions hashed the bytes alone.
    served = feed.replace("{{BASE}}", blog.base_url).encode("utf-8")
    legacy = hashlib.sha256(served).hexdigest()
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.begin() as connection:
            assert connection.execute(sqlalchemy.text(
                "SELECT body_hash FROM source")).scalar_one() != legacy
            connection.execute(sqlalchemy.text("UPDATE source SET body_hash = :hash"),
                               {"hash": legacy})
        # The same bytes under a new validator: a 200 for a document already read.
        blog.set_route("/upstream/feed/", feed,
                       content_type="application/rss+xml; charset=UTF-8",
                       headers={"ETag": '"another-tag"'})
        [outcome] = run_pass(config, database_url).outcomes
        assert (outcome.http_status, outcome.result) == (200, "unchanged")
        with engine.connect() as connection:  # not parsed again, so the hash stays
            assert connection.execute(sqlalchemy.text(
                "SELECT body_hash FROM source")).scalar_one() == legacy
    finally:
        engine.dispose()


def test_a_front_page_as_source_url_says_which_feed_to_use(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    config = write_config(tmp_path, blog, sources=("upstream",))
    config.write_text(config.read_text("utf-8").replace(
        blog.url("/upstream/feed/"), blog.url("/upstream/")), "utf-8")
    assert run_cli(config, "fetch", database_url=database_url).returncode == 0
    [row] = json.loads(run_cli(config, "status", "--json", database_url=database_url).stdout)
    assert row["http_status"] == 200  # the page was served: it is no feed
    assert row["last_error"] == (
        "not a feed: the server returned an HTML page that announces a feed at "
        f"{blog.url('/upstream/feed/')}: set the source's url to that")
    assert [r.route for r in blog.requests] == ["/upstream/"]


def test_check_config_names_the_broken_key(tmp_path: Path, blog: BlogServer) -> None:
    config = write_config(tmp_path, blog)
    ok = run_cli(config, "check-config", database_url="sqlite://")
    assert ok.returncode == 0
    assert ok.stdout.strip().endswith("OK (3 sources, 4 topics)"), ok.stdout
    one = write_config(tmp_path, blog, sources=("upstream",))
    single = run_cli(one, "check-config", database_url="sqlite://").stdout
    assert single.strip().endswith("OK (1 source, 4 topics)"), single
    config = write_config(tmp_path, blog)
    config.write_text(config.read_text("utf-8").replace('per_host = 4', 'per_host = "four"'))
    result = run_cli(config, "check-config", database_url="sqlite://")
    assert result.returncode == 2
    assert "per_host" in result.stderr


def test_duplicates_split_undoes_a_merge_for_good(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    config = write_config(tmp_path, blog)
    assert run_cli(config, "fetch", database_url=database_url).returncode == 0
    feeds = tmp_path / "feeds"
    merged = next(e for e in parsed(feeds / "all.atom").entries
                  if e.title == "Open source dringt door in marketing")
    split = run_cli(config, "duplicates", "split", merged.id, database_url=database_url)
    assert split.returncode == 0, split.stderr
    posts = parsed(feeds / "all.atom").entries
    copies = [e for e in posts if e.title == "Open source dringt door in marketing"]
    assert len(copies) == 2
    assert merged.id in {e.id for e in copies}  # the original keeps its id
    # The decision stays: fetching everything again does not merge them back.
    blog.reset()
    again = run_cli(config, "fetch", "--all", database_url=database_url)
    assert again.returncode == 0, again.stderr
    copies = [e for e in parsed(feeds / "all.atom").entries
              if e.title == "Open source dringt door in marketing"]
    assert len(copies) == 2
    # Joost's comment went with the upstream copy.
    comments = etree.parse(str(feeds / "comments.atom"))
    refs = {entry.findtext(f"{ATOM}author/{ATOM}name"):
            entry.find(f"{THR}in-reply-to").get("ref")
            for entry in comments.iter(f"{ATOM}entry")}
    other = next(e.id for e in copies if e.id != merged.id)
    assert refs["Joost"] == other
    assert refs["Kasper Katje"] == merged.id
    unknown = run_cli(config, "duplicates", "split",
                      "urn:uuid:00000000-0000-0000-0000-000000000000", database_url=database_url)
    assert unknown.returncode == 2 and "no post has the id" in unknown.stderr


def test_changing_a_topic_rule_refiles_existing_posts(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    config = write_config(tmp_path, blog)
    assert run_cli(config, "fetch", database_url=database_url).returncode == 0
    feeds = tmp_path / "feeds"

    def titles(slug: str) -> set[str]:
        return {e.title for e in parsed(feeds / "topics" / f"{slug}.atom").entries}

    assert "Help, de consument praat terug" not in titles("brand-communities")
    # Stemmed: the keyword "merk" now also finds "merken" in the Dutch post.
    text = config.read_text("utf-8").replace(
        'keywords = ["brand communities", "brand community", "merk-gemeenschappen"]',
        'keywords = ["brand communities", "merk"]\nexclude = ["open source"]')
    config.write_text(text, "utf-8")
    result = run_cli(config, "publish", database_url=database_url)
    assert result.returncode == 0, result.stderr
    refiled = titles("brand-communities")
    assert "Twee trends om in 2013 in de gaten te houden" in refiled  # "merken"
    assert "Open source dringt door in marketing" not in refiled  # excluded now


def test_the_fetching_process_leaves_reading_to_its_workers(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    # Parsing, sanitizing and language detection run in the parser workers;
    # their libraries are tens of megabytes the fetching process must not carry.
    # (numpy may come in: the store compares a post with its possible copies.)
    config = write_config(tmp_path, blog)
    output = run_cli_in_python(
        config, ["fetch", "--all"], database_url=database_url,
        after="print('LOADED', sorted(m for m in ('py3langid', 'feedparser', 'nh3', "
              "'lxml.html') if m in sys.modules))\n")
    assert "LOADED []" in output
    published = feedparser.parse((tmp_path / "feeds" / "all.atom").read_bytes())
    assert len(published.entries) == len(EXPECTED["posts"]) - 1


def _renders_of_a_publish(config: Path, database_url: str) -> int:
    """How many outputs a new `aggregator publish` process renders, after news
    (a new content generation) that changes none of them."""
    output = run_cli_in_python(config, ["publish"], database_url=database_url, before=(
        "from aggregator import publish\n"
        "from aggregator.store import Store\n"
        f"Store({database_url!r}).bump_content_generation()\n"
        "calls = []\n"
        "def counted(render):\n"
        "    def wrapper(*args, **kwargs):\n"
        "        calls.append(render.__name__)\n"
        "        return render(*args, **kwargs)\n"
        "    return wrapper\n"
        "for name in ('render_atom', 'render_rss', 'render_json', 'render_opml', 'render_index'):\n"
        "    setattr(publish, name, counted(getattr(publish, name)))\n"
    ), after="print('RENDERED', len(calls))\n")
    return int(output.split("RENDERED ")[1].split()[0])


def test_a_new_publishing_process_renders_only_what_changed(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    config = write_config(tmp_path, blog)
    assert run_cli(config, "fetch", database_url=database_url).returncode == 0
    feeds = tmp_path / "feeds"
    outputs = sorted(p for p in feeds.rglob("*") if p.is_file() and not p.name.startswith("."))
    before = {p: p.read_bytes() for p in outputs}
    # The memo the fetch's publish left: nothing needs rendering again.
    assert (feeds / ".render-memo").is_file()
    assert _renders_of_a_publish(config, database_url) == 0
    # A file someone removed is rendered again, and only that one.
    (feeds / "topics" / "social-media.rss").unlink()
    assert _renders_of_a_publish(config, database_url) == 1
    # Without the memo, every output is rendered (and comes out the same).
    (feeds / ".render-memo").unlink()
    assert _renders_of_a_publish(config, database_url) == len(outputs)
    assert {p: p.read_bytes() for p in outputs} == before
