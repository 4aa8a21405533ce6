"""Politeness, measured against a local server that counts every request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import sqlalchemy
from blogserver import BlogServer
from passes import run_pass
from test_end_to_end import write_config

from aggregator import __version__

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Polite</title><link>{{BASE}}/polite/</link>
<description>x</description>{ttl}
<item><title>Merkbeleving in 2013</title><link>{{BASE}}/polite/1/</link>
<guid isPermaLink="false">polite-1</guid><pubDate>Mon, 14 Jan 2013 08:00:00 +0100</pubDate>
<description>Een bericht over merken en hun klanten.</description></item>
</channel></rss>"""


@pytest.fixture
def blog() -> Iterator[BlogServer]:
    with BlogServer() as server:
        yield server


def polite_config(tmp_path: Path, blog: BlogServer, path: str = "/polite/feed/") -> Path:
    config = write_config(tmp_path, blog, sources=())
    config.write_text(config.read_text("utf-8").replace("per_host = 4", "per_host = 1")
                      + f"""
[[sources]]
name = "polite"
url = "{blog.url(path)}"
allow_private = true
""", "utf-8")
    return config


def source_row(database_url: str, name: str = "polite") -> dict:
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(sqlalchemy.text(
                "SELECT * FROM source WHERE name = :name"), {"name": name}).mappings().one()
            return dict(row)
    finally:
        engine.dispose()


def aware(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_request_headers_are_honest_and_validators_verbatim(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    blog.set_route("/polite/feed/", FEED.replace("{ttl}", ""),
                   content_type="application/rss+xml",
                   headers={"ETag": '"v1-abc"', "Set-Cookie": "tracker=1; Path=/",
                            "Last-Modified": "Mon, 14 Jan 2013 07:00:00 GMT"})
    config = polite_config(tmp_path, blog)
    run_pass(config, database_url, force=False, publish=False)
    run_pass(config, database_url, publish=False)
    first, second = blog.requests
    assert first.headers["user-agent"].startswith(f"aggregator/{__version__} (+http")
    assert first.headers["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in first.headers and "if-modified-since" not in first.headers
    assert "cookie" not in second.headers
    assert second.headers["if-none-match"] == '"v1-abc"'
    assert second.headers["if-modified-since"] == "Mon, 14 Jan 2013 07:00:00 GMT"
    assert second.status == 304


@pytest.mark.parametrize("retry_after", ["3600", "http-date"])
def test_429_and_503_retry_after_is_honoured(
    tmp_path: Path, blog: BlogServer, database_url: str, retry_after: str,
) -> None:
    value = retry_after
    if retry_after == "http-date":
        value = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    status = 429 if retry_after == "3600" else 503
    blog.set_route("/polite/feed/", "slow down", content_type="text/plain", status=status,
                   headers={"Retry-After": value})
    config = polite_config(tmp_path, blog)
    started = datetime.now(UTC)
    report = run_pass(config, database_url, force=False, publish=False)
    assert report.outcomes[0].result == "error"
    row = source_row(database_url)
    assert aware(row["next_check_at"]) >= started + timedelta(minutes=55)
    blog.reset()
    run_pass(config, database_url, force=False, publish=False)  # not due: nothing is requested
    assert blog.count() == 0


def test_cache_control_and_ttl_are_floors(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    blog.set_route("/polite/feed/", FEED.replace("{ttl}", "<ttl>300</ttl>"),
                   content_type="application/rss+xml",
                   headers={"Cache-Control": "max-age=7200"})
    config = polite_config(tmp_path, blog)  # interval is 1 minute
    started = datetime.now(UTC)
    run_pass(config, database_url, force=False, publish=False)
    next_check = aware(source_row(database_url)["next_check_at"])
    assert next_check >= started + timedelta(minutes=290)  # <ttl> 300 minutes wins
    assert next_check <= started + timedelta(days=7, minutes=1)


def test_410_stops_polling_and_is_reported(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    blog.set_route("/polite/feed/", "gone", content_type="text/plain", status=410)
    config = polite_config(tmp_path, blog)
    report = run_pass(config, database_url, force=False, publish=False)
    assert report.outcomes[0].result == "gone"
    assert source_row(database_url)["gone"]
    blog.reset()
    run_pass(config, database_url, publish=False)
    assert blog.count() == 0


def test_errors_back_off_and_success_resets(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    blog.set_route("/polite/feed/", "oops", content_type="text/plain", status=500)
    config = polite_config(tmp_path, blog)
    waits = []
    for _ in range(3):
        started = datetime.now(UTC)
        run_pass(config, database_url, publish=False)
        waits.append(aware(source_row(database_url)["next_check_at"]) - started)
    assert waits[0] >= timedelta(minutes=13)  # at least 15 min less jitter
    assert waits[1] > waits[0] and waits[2] > waits[1]
    assert source_row(database_url)["error_count"] == 3
    blog.set_route("/polite/feed/", FEED.replace("{ttl}", ""), content_type="application/rss+xml")
    run_pass(config, database_url, publish=False)
    row = source_row(database_url)
    assert row["error_count"] == 0 and row["failing_since"] is None


def test_permanent_redirect_is_remembered_after_it_is_seen_consistently(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    blog.set_route("/polite/feed/", "", content_type="text/plain", status=301,
                   headers={"Location": blog.url("/moved/feed/")})
    blog.set_route("/moved/feed/", FEED.replace("{ttl}", ""), content_type="application/rss+xml")
    config = polite_config(tmp_path, blog)
    for _ in range(3):
        run_pass(config, database_url, publish=False)
    assert source_row(database_url)["moved_to"] == blog.url("/moved/feed/")
    blog.reset()
    run_pass(config, database_url, publish=False)
    assert [r.route for r in blog.requests] == ["/moved/feed/"]


def test_restart_does_not_make_a_source_due_early(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    blog.set_route("/polite/feed/", FEED.replace("{ttl}", ""), content_type="application/rss+xml")
    config = polite_config(tmp_path, blog)
    run_pass(config, database_url, force=False, publish=False)
    for _ in range(3):  # three "restarts" of a fetch process
        run_pass(config, database_url, force=False, publish=False)
    assert blog.count("/polite/feed/") == 1


def test_one_request_at_a_time_per_host(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    config = write_config(tmp_path, blog)
    config.write_text(config.read_text("utf-8").replace("per_host = 4", "per_host = 1"))
    blog.set_delay("*", 0.05)
    run_pass(config, database_url, force=False, publish=False)
    assert blog.count() == 8  # 3 feeds and the 5 comment feeds of posts with comments
    assert blog.max_concurrent() == 1


def test_sources_of_one_host_wait_in_progress_not_in_requests(
    tmp_path: Path, blog: BlogServer, database_url: str,
) -> None:
    """With per_host = 1 the blog still sees one request at a time, while the
    pass holds two of its three sources (SOURCES_PER_REQUEST per request
    slot): one fetching, the other parsed, stored or queued for the host."""
    config = write_config(tmp_path, blog)
    config.write_text(config.read_text("utf-8").replace("per_host = 4", "per_host = 1"))
    blog.set_delay("*", 0.1)
    engine = sqlalchemy.create_engine(database_url)
    most_leased = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal most_leased
        while not done.is_set():
            try:
                with engine.connect() as connection:
                    leased = connection.execute(sqlalchemy.text(
                        "SELECT count(*) FROM source WHERE lease_owner IS NOT NULL")).scalar_one()
                most_leased = max(most_leased, leased)
            except sqlalchemy.exc.DBAPIError:  # the schema is not there yet
                pass
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run_pass(config, database_url, force=False, publish=False)
    finally:
        done.set()
        watcher.join()
        engine.dispose()
    assert blog.count() == 8
    assert blog.max_concurrent() == 1
    assert most_leased == 2
