"""Loading and validating config.toml: defaults, syntaxes, and every error an editor can make."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from aggregator import __version__
from aggregator.config import (
    _SECTION_KEYS,
    DEFAULT_MAX_BYTES,
    Config,
    feed_url_key,
    load_config,
    parse_config_text,
    parse_duration,
    parse_size,
    resolve_config_path,
)
from aggregator.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[1] / "config.toml"

MINIMAL = '[aggregator]\ntitle = "Test"\n'


@pytest.fixture(autouse=True)
def _no_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own shell must not change what these tests see.
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("AGGREGATOR_CONFIG", raising=False)


def parse(text: str, path: Path = Path("/srv/agg/config.toml")) -> Config:
    return parse_config_text(textwrap.dedent(text), path)


def problem(text: str, path: Path = Path("/srv/agg/config.toml")) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text, path)
    return str(caught.value)


def with_source(extra: str = "", fetch: str = "", topics: str = "") -> str:
    return (MINIMAL + fetch + '[[sources]]\nname = "Blog"\nurl = "https://blog.example/feed/"\n'
            + extra + topics)


# --------------------------------------------------------------------------- shipped file


def test_shipped_config_loads_with_its_documented_values() -> None:
    config = load_config(SHIPPED)
    root = SHIPPED.parent
    assert config.path == SHIPPED
    assert config.aggregator.title == "Marketing Blogs Aggregator"
    assert config.aggregator.base_url == "http://127.0.0.1:8080/"
    assert config.aggregator.database == f"sqlite:///{root}/aggregator.db"
    assert config.aggregator.feeds_dir == root / "feeds"
    assert config.fetch.interval_minutes == 60
    assert config.fetch.max_bytes == DEFAULT_MAX_BYTES
    assert config.fetch.user_agent == f"aggregator/{__version__} (+http://127.0.0.1:8080/)"


def test_shipped_config_covers_three_languages_and_the_seed_topics() -> None:
    config = load_config(SHIPPED)
    assert {s.language for s in config.sources} == {"nl", "de", "en"}
    assert all(s.topics and s.language for s in config.sources)
    slugs = {t.slug for t in config.topics}
    assert {"open-source-marketing", "consumer-generated-media", "social-media",
            "brand-communities", "marketing-trends", "word-of-mouth"} <= slugs
    names = {s.name for s in config.sources}
    assert {"Marketingfacts", "Frankwatching", "Emerce", "t3n", "Seth Godin"} <= names
    brands = next(t for t in config.topics if t.slug == "brand-communities")
    assert "merk-gemeenschap" in brands.keywords and "Markengemeinschaft" in brands.keywords


@pytest.mark.parametrize("section", sorted(_SECTION_KEYS))
def test_shipped_config_documents_every_key(section: str) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    for key in _SECTION_KEYS[section]:
        # Either set (key = …) or explained in a comment (# key = … / "#   key  …").
        assert re.search(rf"^\s*#?\s*{key}\s*(=|\s)", text, re.MULTILINE), (section, key)


# --------------------------------------------------------------------------- finding the file


def test_resolve_config_path_prefers_cli_then_env_then_cwd(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_config_path(None) == tmp_path / "config.toml"
    monkeypatch.setenv("AGGREGATOR_CONFIG", "env/agg.toml")
    assert resolve_config_path(None) == tmp_path / "env" / "agg.toml"
    assert resolve_config_path("cli.toml") == tmp_path / "cli.toml"
    assert resolve_config_path("/etc/agg.toml") == Path("/etc/agg.toml")


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not found\. Create one") as caught:
        load_config(tmp_path / "nope.toml")
    assert str(tmp_path / "nope.toml") in str(caught.value)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_file_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[aggregator]\ntitle = "Caf\xe9"\n')
    with pytest.raises(ConfigError, match="line 2: the file is not valid UTF-8"):
        load_config(path)


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load_config(path).aggregator.title == "Test"


def test_syntax_error_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[aggregator]\ntitle = "x"\nport = 80 80\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not valid TOML")
    assert "line 3, column" in message
    assert "3 | port = 80 80" in message


def test_relative_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text(MINIMAL, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("config.toml"))
    assert config.path == tmp_path / "config.toml"
    assert config.aggregator.feeds_dir == tmp_path / "feeds"


# --------------------------------------------------------------------------- defaults


def test_minimal_config_takes_every_default() -> None:
    config = parse(MINIMAL)
    assert config.aggregator.base_url == "http://127.0.0.1:8080/"
    assert config.aggregator.contact == "http://127.0.0.1:8080/"
    assert config.aggregator.database == "sqlite:////srv/agg/aggregator.db"
    assert config.aggregator.feeds_dir == Path("/srv/agg/feeds")
    fetch = config.fetch
    assert (fetch.interval_minutes, fetch.jitter, fetch.concurrency, fetch.per_host) == \
        (60, 0.1, 20, 1)
    assert (fetch.connect_timeout, fetch.read_timeout, fetch.total_timeout) == (5, 10, 30)
    assert (fetch.max_bytes, fetch.max_redirects, fetch.comments_days, fetch.tick_seconds) == \
        (5 * 1024 * 1024, 5, 14, 60.0)
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8080)
    assert config.sources == () and config.topics == ()


def test_source_and_topic_defaults() -> None:
    config = parse(with_source(topics='[[topics]]\nslug = "seo"\n'))
    source = config.sources[0]
    assert (source.comments, source.comments_url, source.topics, source.language,
            source.interval_minutes, source.enabled, source.allow_private) == \
        (True, None, (), None, None, True, False)
    topic = config.topics[0]
    assert topic.title == "seo"
    assert topic.keywords == topic.sources == topic.languages == ()


# --------------------------------------------------------------------------- [aggregator]


def test_title_is_required() -> None:
    assert '[aggregator] key "title": missing; it is required' in \
        problem('[aggregator]\nbase_url = "http://x/"\n')


def test_empty_aggregator_table() -> None:
    assert '[aggregator] key "title": missing' in problem("[aggregator]\n")


def test_missing_aggregator_table() -> None:
    message = problem('[server]\nport = 8080\n')
    assert "[aggregator]: missing; it is required" in message


def test_base_url_defaults_to_server_address_and_gets_a_slash() -> None:
    assert parse(MINIMAL + '[server]\nhost = "10.0.0.5"\nport = 9000\n') \
        .aggregator.base_url == "http://10.0.0.5:9000/"
    # A wildcard bind address is no address for a published link.
    assert parse(MINIMAL + '[server]\nhost = "0.0.0.0"\n').aggregator.base_url == \
        "http://127.0.0.1:8080/"
    config = parse('[aggregator]\ntitle = "T"\nbase_url = "https://feeds.example.com/agg"\n')
    assert config.aggregator.base_url == "https://feeds.example.com/agg/"
    assert config.aggregator.contact == "https://feeds.example.com/agg/"


@pytest.mark.parametrize("url", ["ftp://feeds.example.com/", "feeds.example.com",
                                 "https:///nohost", "https://x.example/?a=1"])
def test_base_url_must_be_http_with_host(url: str) -> None:
    assert '[aggregator] key "base_url"' in \
        problem(f'[aggregator]\ntitle = "T"\nbase_url = "{url}"\n')


@pytest.mark.parametrize(("value", "expected"), [
    ("sqlite:///data/agg.db", "sqlite:////srv/agg/data/agg.db"),
    ("sqlite:////var/lib/agg.db", "sqlite:////var/lib/agg.db"),
    ("sqlite:///../agg.db?timeout=5", "sqlite:////srv/agg.db?timeout=5"),
    ("sqlite://", "sqlite://"),
    ("postgresql://u:p@db/agg", "postgresql+psycopg://u:p@db/agg"),
    ("postgresql+psycopg://u@db:5432/agg", "postgresql+psycopg://u@db:5432/agg"),
])
def test_database_urls(value: str, expected: str) -> None:
    config = parse(f'[aggregator]\ntitle = "T"\ndatabase = "{value}"\n')
    assert config.aggregator.database == expected


@pytest.mark.parametrize("value", ["mysql://db/agg", "agg.db", "sqlite://host/agg.db",
                                   "postgresql://"])
def test_bad_database_url(value: str) -> None:
    assert '[aggregator] key "database"' in \
        problem(f'[aggregator]\ntitle = "T"\ndatabase = "{value}"\n')


def test_database_env_overrides_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = '[aggregator]\ntitle = "T"\ndatabase = "sqlite:///file.db"\n'
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", "postgresql://ops@db/agg")
    assert parse(text).aggregator.database == "postgresql+psycopg://ops@db/agg"
    # From the shell, a relative SQLite path is relative to the current directory.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", "sqlite:///here.db")
    assert parse(text).aggregator.database == f"sqlite:///{tmp_path}/here.db"


def test_bad_database_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", "oracle://db")
    assert "environment variable AGGREGATOR_DATABASE_URL" in problem(MINIMAL)


def test_feeds_dir_relative_to_config_and_absolute() -> None:
    assert parse(MINIMAL + 'feeds_dir = "../public/feeds"\n').aggregator.feeds_dir == \
        Path("/srv/public/feeds")
    assert parse(MINIMAL + 'feeds_dir = "/var/www/feeds"\n').aggregator.feeds_dir == \
        Path("/var/www/feeds")


# --------------------------------------------------------------------------- [fetch]


@pytest.mark.parametrize(("value", "minutes"), [
    ("15", 15), ("1440", 1440), ('"30m"', 30), ('"1h"', 60), ('"1d"', 1440), ('"900s"', 15),
    ('"2 h"', 120),
])
def test_interval_syntaxes(value: str, minutes: int) -> None:
    assert parse(MINIMAL + f"[fetch]\ninterval = {value}\n").fetch.interval_minutes == minutes


@pytest.mark.parametrize(("value", "says"), [
    ("5", "below the 15-minute floor"),
    ('"90s"', "not a whole number of minutes"),
    ("1441", "more than a day"),
    ('"2d"', "more than a day"),
    ('"soon"', "not a duration"),
    ('"60"', "not a duration"),
    ("1.5", "found a float (1.5)"),
    ("true", "found a boolean (true)"),
])
def test_bad_intervals(value: str, says: str) -> None:
    message = problem(MINIMAL + f"[fetch]\ninterval = {value}\n")
    assert '[fetch] key "interval"' in message
    assert says in message


def test_short_intervals_only_when_allowed_for_tests() -> None:
    text = MINIMAL + '[fetch]\nallow_short_intervals = true\ninterval = 1\n'
    assert parse(text).fetch.interval_minutes == 1
    source = with_source('interval = "2m"\n', fetch='[fetch]\nallow_short_intervals = true\n')
    assert parse(source).sources[0].interval_minutes == 2
    assert "use at least 1 minute" in problem(
        MINIMAL + '[fetch]\nallow_short_intervals = true\ninterval = 0\n')
    assert '[[sources]] #1 "Blog" key "interval"' in problem(with_source("interval = 2\n"))


@pytest.mark.parametrize(("key", "value"), [
    ("jitter", "0.6"), ("jitter", "-0.1"), ("concurrency", "0"), ("concurrency", "1001"),
    ("per_host", "0"), ("per_host", "101"), ("max_redirects", "21"), ("max_redirects", "-1"),
    ("comments_days", "-1"),
])
def test_numbers_out_of_range(key: str, value: str) -> None:
    message = problem(MINIMAL + f"[fetch]\n{key} = {value}\n")
    assert f'[fetch] key "{key}": {value} is out of range' in message


def test_numbers_in_range() -> None:
    fetch = parse(MINIMAL + "[fetch]\njitter = 0\nconcurrency = 1000\nper_host = 100\n"
                  "max_redirects = 0\ncomments_days = 0\n").fetch
    assert (fetch.jitter, fetch.concurrency, fetch.per_host, fetch.max_redirects,
            fetch.comments_days) == (0.0, 1000, 100, 0, 0)


def test_type_errors_say_expected_and_found() -> None:
    message = problem(MINIMAL + '[fetch]\nconcurrency = "20"\n[server]\nport = "8080"\n')
    assert '[fetch] key "concurrency": expected an integer, found a string ("20")' in message
    assert '[server] key "port": expected an integer, found a string ("8080")' in message
    assert "Write it without quotes" in message
    assert "2 problems" in message
    assert 'expected a boolean (true/false), found a string ("yes")' in \
        problem(with_source('comments = "yes"\n'))
    assert 'expected an array of strings, found a string ("seo")' in \
        problem(with_source('topics = "seo"\n'))


@pytest.mark.parametrize(("value", "size"), [
    ("1024", 1024), ('"512KiB"', 512 * 1024), ('"5MiB"', 5 * 1024 * 1024), ('"2MB"', 2_000_000),
    ('"1.5 MiB"', 1536 * 1024),
])
def test_max_bytes(value: str, size: int) -> None:
    assert parse(MINIMAL + f"[fetch]\nmax_bytes = {value}\n").fetch.max_bytes == size


@pytest.mark.parametrize("value", ["1000", '"1KB"', '"lots"', "5.5"])
def test_bad_max_bytes(value: str) -> None:
    assert '[fetch] key "max_bytes"' in problem(MINIMAL + f"[fetch]\nmax_bytes = {value}\n")


def test_timeouts_partial_and_invalid() -> None:
    fetch = parse(MINIMAL + "[fetch]\ntimeouts = { total = 60, read = 2.5 }\n").fetch
    assert (fetch.connect_timeout, fetch.read_timeout, fetch.total_timeout) == (5.0, 2.5, 60.0)
    assert '[fetch] timeouts key "total": 2 s is shorter than connect (5 s)' in \
        problem(MINIMAL + "[fetch]\ntimeouts = { total = 2 }\n")
    assert '[fetch] timeouts key "connect": must be more than 0' in \
        problem(MINIMAL + "[fetch]\ntimeouts = { connect = 0 }\n")
    assert 'timeouts key "raed": unknown key; did you mean "read"?' in \
        problem(MINIMAL + "[fetch]\ntimeouts = { raed = 3 }\n")
    assert '[fetch] key "timeouts": expected a table of seconds' in \
        problem(MINIMAL + "[fetch]\ntimeouts = 30\n")


def test_tick() -> None:
    assert parse(MINIMAL + '[fetch]\ntick = "30s"\n').fetch.tick_seconds == 30.0
    assert parse(MINIMAL + "[fetch]\ntick = 1\n").fetch.tick_seconds == 1.0
    assert parse(MINIMAL + '[fetch]\ntick = "1h"\n').fetch.tick_seconds == 3600.0
    assert '[fetch] key "tick"' in problem(MINIMAL + "[fetch]\ntick = 0\n")
    assert '[fetch] key "tick"' in problem(MINIMAL + '[fetch]\ntick = "2h"\n')


def test_lease_seconds() -> None:
    assert parse(MINIMAL).fetch.lease_seconds == 600.0
    assert parse(MINIMAL + '[fetch]\nlease_seconds = "15m"\n').fetch.lease_seconds == 900.0
    assert parse(MINIMAL + "[fetch]\nlease_seconds = 30\n").fetch.lease_seconds == 30.0
    short = problem(MINIMAL + "[fetch]\nlease_seconds = 5\n")
    assert '[fetch] key "lease_seconds"' in short and "allow_short_intervals" in short
    assert parse(MINIMAL + "[fetch]\nallow_short_intervals = true\nlease_seconds = 5\n"
                 ).fetch.lease_seconds == 5.0
    assert '[fetch] key "lease_seconds"' in problem(MINIMAL + '[fetch]\nlease_seconds = "2d"\n')


def test_user_agent_placeholders() -> None:
    config = parse(MINIMAL + 'contact = "mailto:ops@example.com"\n'
                   '[fetch]\nuser_agent = "MarketingBot/{version} {contact} {other}"\n')
    assert config.fetch.user_agent == f"MarketingBot/{__version__} mailto:ops@example.com {{other}}"
    assert '[fetch] key "user_agent"' in problem(MINIMAL + '[fetch]\nuser_agent = "a\\nb"\n')


def test_server_port_range() -> None:
    assert '[server] key "port": 70000 is out of range' in \
        problem(MINIMAL + "[server]\nport = 70000\n")


# --------------------------------------------------------------------------- unknown keys


def test_unknown_key_suggests_the_close_one() -> None:
    message = problem(MINIMAL + "[fetch]\nintervall = 30\n")
    assert '[fetch] key "intervall": unknown key; did you mean "interval"?' in message


def test_unknown_key_without_close_match_lists_known_keys() -> None:
    assert "known keys: host, port" in problem(MINIMAL + "[server]\nbananas = 1\n")


def test_key_outside_its_table() -> None:
    message = problem('title = "T"\n[aggregator]\ntitle = "T"\n')
    assert 'top level: unknown key or table "title"; it belongs under [aggregator]' in message


def test_unknown_table_suggests_the_close_one() -> None:
    assert 'unknown key or table "feth"; did you mean "fetch"?' in \
        problem(MINIMAL + "[feth]\ninterval = 30\n")


def test_sources_written_as_single_table() -> None:
    message = problem(MINIMAL + '[sources]\nname = "x"\n')
    assert "[sources]: expected an array of tables" in message
    assert "[[sources]]" in message


# --------------------------------------------------------------------------- [[sources]]


def test_source_fields_are_read() -> None:
    config = parse(with_source(
        'comments = false\ncomments_url = "https://blog.example/comments/feed/"\n'
        'topics = ["seo", "seo"]\nlanguage = "NL"\ninterval = "2h"\nenabled = false\n'
        'allow_private = true\n', topics='[[topics]]\nslug = "seo"\n'))
    source = config.source("Blog")
    assert source is not None
    assert (source.comments, source.comments_url, source.topics, source.language,
            source.interval_minutes, source.enabled, source.allow_private) == \
        (False, "https://blog.example/comments/feed/", ("seo",), "nl", 120, False, True)
    assert config.source("Nope") is None


def test_source_name_and_url_are_required() -> None:
    message = problem(MINIMAL + "[[sources]]\ncomments = true\n")
    assert '[[sources]] #1 key "name": missing' in message
    assert '[[sources]] #1 key "url": missing' in message


def test_source_name_must_not_be_empty() -> None:
    assert '[[sources]] #1 key "name": must not be empty' in \
        problem(MINIMAL + '[[sources]]\nname = " "\nurl = "https://a.example/"\n')


@pytest.mark.parametrize("url", ["ftp://blog.example/feed", "blog.example/feed",
                                 "https://", "https://blog.example/my feed",
                                 "https://blog.example:99999/feed"])
def test_source_url_must_be_http_with_host(url: str) -> None:
    message = problem(MINIMAL + f'[[sources]]\nname = "Emerce"\nurl = "{url}"\n')
    assert '[[sources]] #1 "Emerce" key "url"' in message


def test_source_names_must_be_unique() -> None:
    text = with_source() + '[[sources]]\nname = "Blog"\nurl = "https://other.example/feed"\n'
    assert '[[sources]] #2 "Blog" key "name": "Blog" is already the name of [[sources]] #1' \
        in problem(text)


def test_source_urls_must_be_unique() -> None:
    text = with_source() + '[[sources]]\nname = "Two"\nurl = "HTTPS://Blog.example/feed"\n'
    assert '[[sources]] #2 "Two" key "url"' in problem(text)
    assert "same feed as [[sources]] #1" in problem(text)


def test_source_topics_must_exist() -> None:
    message = problem(with_source('topics = ["socal-media"]\n',
                                  topics='[[topics]]\nslug = "social-media"\n'))
    assert '[[sources]] #1 "Blog" key "topics": unknown topic "socal-media"' in message
    assert 'did you mean "social-media"?' in message


@pytest.mark.parametrize("code", ["dutch", "n", "nl-NL", "12"])
def test_source_language_code(code: str) -> None:
    assert '[[sources]] #1 "Blog" key "language"' in problem(with_source(f'language = "{code}"\n'))


def test_comments_url_must_be_http() -> None:
    assert 'key "comments_url"' in problem(with_source('comments_url = "mailto:x@y"\n'))


# --------------------------------------------------------------------------- [[topics]]


def test_topic_fields_are_read() -> None:
    config = parse(with_source(topics=(
        '[[topics]]\nslug = "social-media"\ntitle = "Social media"\n'
        'keywords = ["social media", "soziale Medien"]\nexclude = ["vacature"]\n'
        'sources = ["Blog"]\ncategories = ["Social"]\nlanguages = ["NL", "de"]\n')))
    topic = config.topics[0]
    assert topic == type(topic)(slug="social-media", title="Social media",
                                keywords=("social media", "soziale Medien"),
                                exclude=("vacature",), sources=("Blog",),
                                categories=("Social",), languages=("nl", "de"))


@pytest.mark.parametrize("slug", ["Social Media", "-seo", "seo_tips", ""])
def test_topic_slug_syntax(slug: str) -> None:
    assert '[[topics]] #1' in problem(MINIMAL + f'[[topics]]\nslug = "{slug}"\n')
    assert 'key "slug"' in problem(MINIMAL + f'[[topics]]\nslug = "{slug}"\n')


def test_topic_slug_required_and_unique() -> None:
    assert '[[topics]] #1 key "slug": missing' in problem(MINIMAL + '[[topics]]\ntitle = "x"\n')
    assert '[[topics]] #2 "seo" key "slug": "seo" is already the slug' in \
        problem(MINIMAL + '[[topics]]\nslug = "seo"\n[[topics]]\nslug = "seo"\n')


def test_topic_sources_must_exist() -> None:
    message = problem(with_source(topics='[[topics]]\nslug = "seo"\nsources = ["Blgo"]\n'))
    assert '[[topics]] #1 "seo" key "sources": unknown source "Blgo"' in message
    assert 'did you mean "Blog"?' in message


def test_topic_lists_hold_non_empty_strings() -> None:
    assert 'key "keywords": item 2 is empty' in \
        problem(MINIMAL + '[[topics]]\nslug = "seo"\nkeywords = ["a", " "]\n')
    assert 'key "exclude": item 1 must be a string, found an integer (3)' in \
        problem(MINIMAL + '[[topics]]\nslug = "seo"\nexclude = [3]\n')


def test_many_problems_are_reported_together() -> None:
    message = problem(MINIMAL + '[fetch]\njitter = 2\n[server]\nport = 0\n'
                      '[[sources]]\nname = "A"\nurl = "nope"\n')
    assert message.startswith("/srv/agg/config.toml: 3 problems:")
    assert message.count("\n  - ") == 3


# --------------------------------------------------------------------------- value syntaxes


def test_parse_duration_and_size_reject_garbage() -> None:
    assert parse_duration("1.5h") == 5400
    assert parse_size("512KiB") == 524288
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("fortnight")
    with pytest.raises(ValueError, match="not a size"):
        parse_size("5 parsecs")


def test_feed_url_key_ignores_case_slash_port_and_fragment() -> None:
    assert feed_url_key("HTTPS://Blog.Example:443/feed/#x") == \
        feed_url_key("https://blog.example/feed")
    assert feed_url_key("https://blog.example/feed?cat=1") != \
        feed_url_key("https://blog.example/feed?cat=2")


# --------------------------------------------------------------------------- parsed-config cache


def _big_config(tmp_path: Path, sources: int = 600, title: str = "Big") -> Path:
    """A config large enough (at least CACHE_CONFIG_BYTES) to be cached."""
    from aggregator.config import CACHE_CONFIG_BYTES

    lines = [f'[aggregator]\ntitle = "{title}"\n']
    lines += [f'[[sources]]\nname = "Blog {n}"\nurl = "https://blog{n}.example/feed/"\n'
              f'language = "nl"\n' for n in range(sources)]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    assert path.stat().st_size >= CACHE_CONFIG_BYTES
    return path


def _cached_name(tmp_path: Path) -> str:
    (only,) = (tmp_path / "cache").glob("config-*.pickle")
    return only.name


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import aggregator.config as config_module

    calls: list[int] = []
    original = config_module.parse_config_text

    def counted(text: str, path: Path) -> Config:
        calls.append(1)
        return original(text, path)

    monkeypatch.setattr(config_module, "parse_config_text", counted)
    return calls


def test_a_large_config_is_parsed_once_and_then_read_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGGREGATOR_CACHE_DIR", str(tmp_path / "cache"))
    path = _big_config(tmp_path)
    parses = _count_parses(monkeypatch)
    first = load_config(path)
    second = load_config(path)
    assert len(parses) == 1
    assert second == first and len(second.sources) == 600
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [_cached_name(tmp_path)]
    # An edit is seen at once: the cache is keyed by the file's bytes.
    _big_config(tmp_path, title="Edited")
    assert load_config(path).aggregator.title == "Edited"
    assert len(parses) == 2
    # So is the environment that parse_config_text reads.
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", "sqlite:////tmp/elsewhere.db")
    assert load_config(path).aggregator.database == "sqlite:////tmp/elsewhere.db"
    assert len(parses) == 3
    # One cache file per config path, however often the file changes.
    assert len(list((tmp_path / "cache").glob("config-*"))) == 1


def test_a_small_config_is_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "config.toml"
    path.write_text(with_source(), encoding="utf-8")
    parses = _count_parses(monkeypatch)
    load_config(path)
    load_config(path)
    assert len(parses) == 2
    assert not (tmp_path / "cache").exists()


def test_an_invalid_large_config_is_reported_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGGREGATOR_CACHE_DIR", str(tmp_path / "cache"))
    path = _big_config(tmp_path)
    path.write_text(path.read_text() + '\n[fetch]\nconcurrency = "many"\n', encoding="utf-8")
    for _ in range(2):
        with pytest.raises(ConfigError, match="concurrency"):
            load_config(path)


def test_a_damaged_or_foreign_cache_file_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGGREGATOR_CACHE_DIR", str(tmp_path / "cache"))
    path = _big_config(tmp_path)
    expected = load_config(path)
    (cached,) = (tmp_path / "cache").glob("config-*")
    parses = _count_parses(monkeypatch)

    data = cached.read_bytes()
    cached.write_bytes(data[: len(data) // 2])  # cut short
    assert load_config(path) == expected
    assert len(parses) == 1  # parsed again, and the cache mended

    cached.chmod(0o666)  # anyone may have written this pickle: never load it
    assert load_config(path) == expected
    assert len(parses) == 2

    cached.chmod(0o600)
    cached.write_bytes(b"not a cache")
    assert load_config(path) == expected
    assert len(parses) == 3
    assert load_config(path) == expected
    assert len(parses) == 3


def test_an_unwritable_cache_directory_costs_nothing_but_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("AGGREGATOR_CACHE_DIR", str(blocker / "cache"))
    path = _big_config(tmp_path)
    assert len(load_config(path).sources) == 600
    assert len(load_config(path).sources) == 600
