"""config.toml: its typed form, loading and validation.

The dataclasses below are the contract the rest of the project codes against.
Below them: finding the file (--config, $AGGREGATOR_CONFIG, ./config.toml),
and turning its text into a Config or into one ConfigError that lists every
problem with its table and key, so an editor fixes them all in one pass.
Editing the file in place lives in config_edit.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import hashlib
import os
import pickle
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aggregator import __version__
from aggregator.errors import ConfigError

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
#: Config files of at least this size keep their parsed form in cache_root():
#: about 500 sources, where parsing starts to cost more than the cache.
CACHE_CONFIG_BYTES = 48 * 1024
CACHE_DIR_ENV = "AGGREGATOR_CACHE_DIR"


@dataclass(frozen=True, slots=True)
class AggregatorSettings:
    #: Title of the combined feeds and the index page.
    title: str
    #: Public base URL where the published feeds are reachable, ending with "/".
    base_url: str
    #: SQLAlchemy URL: "sqlite:////abs/path.db" or "postgresql+psycopg://…".
    database: str
    #: Absolute path of the directory published feeds are written to.
    feeds_dir: Path
    #: A contact URL for the User-Agent (defaults to base_url).
    contact: str
    #: Posts published longer ago than this many days are pruned, with their
    #: comments, and never come back; 0 keeps everything.
    retention_days: int = 0


@dataclass(frozen=True, slots=True)
class FetchSettings:
    #: Default minutes between two fetches of a source (15 … 1440).
    interval_minutes: int = 60
    #: ± fraction of jitter applied to every interval.
    jitter: float = 0.1
    #: Requests in flight at once, over all hosts.
    concurrency: int = 20
    #: Requests in flight at once to one host.
    per_host: int = 1
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    #: Total deadline of one fetch, redirects and body included.
    total_timeout: float = 30.0
    #: Cap on the decoded body size.
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = 5
    #: The User-Agent header, already expanded (name, version, contact URL).
    user_agent: str = ""
    #: Follow a post's comment feed while we first saw the post within this many days.
    comments_days: int = 14
    #: Scheduler tick in seconds (how often due sources are claimed, config reloaded).
    tick_seconds: float = 60.0
    #: How long a worker's claim on a source lasts without renewal: a worker that
    #: dies (on another machine) holds its sources, and a slot of their host,
    #: this long. A live worker renews its leases while it works.
    lease_seconds: float = 600.0


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True, slots=True)
class SourceConfig:
    #: Unique, human name of the source (used by the CLI and in outputs).
    name: str
    #: The post feed URL (http or https).
    url: str
    #: Follow comment feeds of this source's posts.
    comments: bool = True
    #: A site-wide comment feed of the blog, if it has one.
    comments_url: str | None = None
    #: Slugs of topics every post of this source belongs to.
    topics: tuple[str, ...] = ()
    #: Declared language of the blog (a hint for detection), or None.
    language: str | None = None
    #: Minutes between fetches for this source; None = [fetch] interval.
    interval_minutes: int | None = None
    enabled: bool = True
    #: May this source (and comment feeds on its own host) live on a
    #: loopback/private address? For local blogs and tests only.
    allow_private: bool = False


@dataclass(frozen=True, slots=True)
class TopicConfig:
    #: URL-safe identifier: [a-z0-9-]+, used in feeds/topics/<slug>.*
    slug: str
    title: str
    #: Words or phrases; any one matching puts an entry in the topic.
    keywords: tuple[str, ...] = ()
    #: Words or phrases that keep an entry out even when a keyword matches.
    exclude: tuple[str, ...] = ()
    #: Names of sources all of whose posts belong to the topic.
    sources: tuple[str, ...] = ()
    #: Feed categories/tags that put an entry in the topic.
    categories: tuple[str, ...] = ()
    #: If non-empty, only entries in these languages can belong to the topic.
    languages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    #: Absolute path of the file this was loaded from.
    path: Path
    aggregator: AggregatorSettings
    fetch: FetchSettings = field(default_factory=FetchSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    sources: tuple[SourceConfig, ...] = ()
    topics: tuple[TopicConfig, ...] = ()

    def source(self, name: str) -> SourceConfig | None:
        for source in self.sources:
            if source.name == name:
                return source
        return None


# --------------------------------------------------------------------------- finding the file

CONFIG_ENV = "AGGREGATOR_CONFIG"
DATABASE_ENV = "AGGREGATOR_DATABASE_URL"
DEFAULT_CONFIG_NAME = "config.toml"
DEFAULT_DATABASE_FILE = "aggregator.db"
DEFAULT_FEEDS_DIR = "feeds"
DEFAULT_USER_AGENT = "aggregator/{version} (+{contact})"

#: Polite polling: no source more often than every 15 minutes, none less than daily.
MIN_INTERVAL_MINUTES = 15
MAX_INTERVAL_MINUTES = 24 * 60
#: Leases shorter than this (seconds) risk expiring under a slow fetch.
MIN_LEASE_SECONDS = 30


def resolve_config_path(cli_value: str | None) -> Path:
    """The config file to use: ``--config``, else ``$AGGREGATOR_CONFIG``, else ./config.toml."""
    chosen = cli_value or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME
    return _absolute(Path(chosen).expanduser())


def load_config(path: Path) -> Config:
    """Read and validate the config file at ``path``.

    Raises ConfigError, whose message names the file, the table and key, what
    is wrong and what to do about it (every problem found, not just the first).
    """
    path = _absolute(Path(path))
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found. Create one: copy the config.toml shipped "
            f"with aggregator to {path} and edit it (at least [aggregator] title and one "
            f"[[sources]] entry), or point --config / ${CONFIG_ENV} at an existing file."
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"{path}: is a directory, not a config file. Pass the path of the .toml file "
            f"itself, e.g. {path / DEFAULT_CONFIG_NAME}."
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the config file ({exc.strerror or exc}). "
            "Check that it exists and that this user may read it."
        ) from None
    cached = _ParsedConfigCache(path, raw) if len(raw) >= CACHE_CONFIG_BYTES else None
    if cached is not None:
        config = cached.load()
        if config is not None:
            return config
    try:
        # utf-8-sig: editors on Windows like to start the file with a BOM.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: line {line}: the file is not valid UTF-8 (byte {raw[exc.start]:#04x}). "
            "Save it as UTF-8, which TOML requires."
        ) from None
    config = parse_config_text(text, path)
    if cached is not None:
        cached.save(config)
    return config


def cache_root() -> Path:
    """Where aggregator keeps what it can always make again: $AGGREGATOR_CACHE_DIR,
    else $XDG_CACHE_HOME/aggregator, else ~/.cache/aggregator."""
    root = os.environ.get(CACHE_DIR_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "aggregator")
    return Path(root)


class _ParsedConfigCache:
    """A large config file's validated Config, kept between processes.

    Reading and checking a config of 10,000 sources takes about 0.25 s, which
    every short command (``aggregator publish`` from cron, ``status``) paid
    again for an unchanged file. The cache holds one pickled Config per
    config path, under a digest of everything the Config is a function of:
    the file's bytes and path, the environment parse_config_text reads, and
    this module's own code. Any other digest, or a file that is unreadable,
    not this user's or writable by others, is ignored and the file is parsed.
    """

    _MAGIC = b"aggregator-config-cache 1\n"

    def __init__(self, path: Path, raw: bytes) -> None:
        digest = hashlib.blake2b(digest_size=32)
        env_database = os.environ.get(DATABASE_ENV, "").strip()
        try:
            module = os.stat(__file__)
            code = f"{module.st_size}:{module.st_mtime_ns}"
        except OSError:
            code = "?"
        for part in (str(path), __version__, code, env_database,
                     os.getcwd() if env_database else "", os.path.expanduser("~")):
            digest.update(part.encode("utf-8", "surrogateescape") + b"\x00")
        digest.update(raw)
        self.key = digest.digest()
        name = hashlib.blake2b(str(path).encode("utf-8", "surrogateescape"),
                               digest_size=12).hexdigest()
        self.file = cache_root() / f"config-{name}.pickle"

    def load(self) -> Config | None:
        try:
            with open(self.file, "rb") as handle:
                stat = os.fstat(handle.fileno())
                # A pickle runs code as it loads: only ever one this user wrote.
                if stat.st_uid != os.getuid() or stat.st_mode & 0o022:
                    return None
                data = handle.read()
        except OSError:
            return None
        header = self._MAGIC + self.key
        if not data.startswith(header):
            return None
        try:
            config = pickle.loads(data[len(header):])
        except Exception:  # a damaged cache only costs a parse
            return None
        return config if isinstance(config, Config) else None

    def save(self, config: Config) -> None:
        data = self._MAGIC + self.key + pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(prefix=".config-", dir=self.file.parent)
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(data)
                os.replace(temporary, self.file)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError:
            pass  # no cache, no harm: the next command parses the file again


def parse_config_text(text: str, path: Path) -> Config:
    """Validate config ``text`` as if it were the contents of ``path``.

    ``path`` anchors relative paths (database, feeds_dir) and names the file in
    messages; nothing is read from or written to it. Used to check an edit
    before it is written.
    """
    path = _absolute(Path(path))
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_syntax_message(path, text, exc)) from None
    problems = _Problems(path)
    config = _build_config(document, path, problems)
    problems.raise_if_any()
    assert config is not None  # every path that yields None also records a problem
    return config


# --------------------------------------------------------------------------- reporting


class _Problems:
    """Every problem found in one file, reported together so one edit fixes them all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.messages.append(f"{where}: {message}" if where else message)

    def raise_if_any(self) -> None:
        if not self.messages:
            return
        if len(self.messages) == 1:
            raise ConfigError(f"{self.path}: {self.messages[0]}")
        listed = "\n".join(f"  - {message}" for message in self.messages)
        raise ConfigError(f"{self.path}: {len(self.messages)} problems:\n{listed}")


def _syntax_message(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> str:
    # tomllib's message already ends in "(at line L, column C)"; quoting the
    # line itself saves the editor a trip to the file.
    message = str(exc)
    found = re.search(r"at line (\d+), column (\d+)", message)
    shown = ""
    if found:
        number = int(found.group(1))
        lines = text.splitlines()
        if 1 <= number <= len(lines):
            shown = f"\n    {number} | {lines[number - 1]}"
    return (
        f"{path}: not valid TOML: {message}.{shown}\n"
        "Fix the syntax there (strings need double quotes, arrays [\"a\", \"b\"], "
        "one key = value per line); see https://toml.io/."
    )


def _describe(value: object) -> str:
    """Name a TOML value's type the way an editor would, with the value."""
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a float ({value})"
    if isinstance(value, str):
        return f"a string ({_quote(value)})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return f"a date/time ({value.isoformat()})"
    return type(value).__name__


def _quote(text: str, limit: int = 60) -> str:
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """'did you mean "x"?' for the closest of ``choices``, or "" when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f'did you mean "{close[0]}"?' if close else ""


class _Invalid(ValueError):
    """A value is wrong; the text says why and what to write instead."""


_MISSING: Any = object()


# --------------------------------------------------------------------------- one table


class _TableReader:
    """Reads the keys of one TOML table, recording problems instead of raising.

    A getter that meets a bad value records the problem and returns the default,
    so validation goes on and reports every problem of the file at once.
    """

    def __init__(self, table: dict[str, Any], where: str, problems: _Problems,
                 allowed: Sequence[str]) -> None:
        self.table = table
        self.where = where
        self.problems = problems
        self.allowed = allowed
        self.failed = False

    def problem(self, key: str | None, message: str) -> None:
        self.failed = True
        where = f'{self.where} key "{key}"' if key else self.where
        self.problems.add(where, message)

    def check_unknown_keys(self) -> None:
        for key in self.table:
            if key in self.allowed:
                continue
            hint = did_you_mean(key, self.allowed) or (
                "known keys: " + ", ".join(self.allowed) + "."
            )
            self.problem(key, f"unknown key; {hint} Remove or rename it.")

    def raw(self, key: str) -> Any:
        return self.table.get(key, _MISSING)

    def _typed(self, key: str, default: Any, expected: str, accept: Callable[[Any], bool],
               example: str) -> Any:
        value = self.table.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                self.problem(key, f"missing; it is required. Add e.g. {key} = {example}")
                return None
            return default
        if not accept(value):
            hint = ""
            if isinstance(value, str) and expected in ("an integer", "a boolean (true/false)",
                                                       "a number"):
                hint = " Write it without quotes."
            self.problem(key, f"expected {expected}, found {_describe(value)}.{hint} "
                              f"Example: {key} = {example}")
            return default if default is not _MISSING else None
        return value

    def string(self, key: str, default: Any = _MISSING, *, example: str = '"…"',
               non_empty: bool = True) -> Any:
        value = self._typed(key, default, "a string", lambda v: isinstance(v, str), example)
        if isinstance(value, str) and non_empty and not value.strip() and key in self.table:
            self.problem(key, f"must not be empty. Example: {key} = {example}")
            return default if default is not _MISSING else None
        return value

    def boolean(self, key: str, default: bool) -> bool:
        return bool(self._typed(key, default, "a boolean (true/false)",
                                lambda v: isinstance(v, bool), "true"))

    def integer(self, key: str, default: int, low: int, high: int | None) -> int:
        value = self._typed(key, default, "an integer", _is_int, str(default))
        return self._in_range(key, value, default, low, high)

    def number(self, key: str, default: float, low: float, high: float | None) -> float:
        value = self._typed(key, default, "a number", _is_number, str(default))
        return float(self._in_range(key, value, default, low, high))

    def _in_range(self, key: str, value: Any, default: Any, low: float,
                  high: float | None) -> Any:
        if value < low or (high is not None and value > high):
            limits = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.problem(key, f"{value} is out of range; it must be {limits}.")
            return default
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.table.get(key, _MISSING)
        if value is _MISSING:
            return ()
        if not isinstance(value, list):
            self.problem(key, f'expected an array of strings, found {_describe(value)}. '
                              f'Example: {key} = ["one", "two"]')
            return ()
        items: list[str] = []
        for position, item in enumerate(value, 1):
            if not isinstance(item, str):
                self.problem(key, f"item {position} must be a string, found {_describe(item)}.")
            elif not item.strip():
                self.problem(key, f"item {position} is empty; remove it.")
            else:
                items.append(item)
        return tuple(items)


def _is_int(value: object) -> bool:
    # TOML booleans arrive as Python bools, which are ints too.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- value syntaxes

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*$", re.IGNORECASE)
_SIZE_BYTES = {
    "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3,
}
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def parse_duration(text: str) -> float:
    """Seconds in a duration string such as "90s", "30m", "1h" or "1d"; else ValueError."""
    match = _DURATION.match(text)
    if not match:
        raise _Invalid(f'{_quote(text)} is not a duration; write a number with a unit: '
                       '"90s", "30m", "1h" or "1d"')
    return float(match.group(1)) * _DURATION_SECONDS[match.group(2).lower()]


def parse_size(text: str) -> int:
    """Bytes in a size string such as "5MiB", "512KiB" or "1000000"; else ValueError."""
    match = _SIZE.match(text)
    if not match:
        raise _Invalid(f'{_quote(text)} is not a size; write e.g. "5MiB", "512KiB" or a '
                       "number of bytes")
    return int(float(match.group(1)) * _SIZE_BYTES[(match.group(2) or "b").lower()])


def _interval_minutes(reader: _TableReader, key: str, default: int | None,
                      allow_short: bool) -> int | None:
    value = reader.raw(key)
    if value is _MISSING:
        return default
    example = f'{key} = 60  (minutes), or {key} = "1h"'
    if _is_int(value):
        minutes = value
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except _Invalid as exc:
            reader.problem(key, f"{exc}. Example: {example}")
            return default
        if seconds % 60:
            reader.problem(key, f"{_quote(value)} is not a whole number of minutes. "
                                f"Example: {example}")
            return default
        minutes = int(seconds // 60)
    else:
        reader.problem(key, f"expected whole minutes (an integer) or a duration string, "
                            f"found {_describe(value)}. Example: {example}")
        return default
    low = 1 if allow_short else MIN_INTERVAL_MINUTES
    if minutes > MAX_INTERVAL_MINUTES:
        reader.problem(key, f"{minutes} minutes is more than a day; polling less often than "
                            f'every 24 hours is not supported. Use at most 1440 ("24h").')
        return default
    if minutes < low:
        if allow_short or minutes < 1:
            reader.problem(key, f"{minutes} minutes is too short; use at least {low} minute(s).")
        else:
            reader.problem(key, f"{minutes} minutes is below the {MIN_INTERVAL_MINUTES}-minute "
                                f'floor that keeps polling polite. Use at least 15 ("15m"); '
                                "for tests only, set [fetch] allow_short_intervals = true.")
        return default
    return minutes


#: What a URL in config.toml may not hold: whitespace (as str.isspace() sees it) and
#: C0 controls. One regex search: a per-character check cost 25 ms per 1,000 sources.
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f]")


def check_http_url(text: str) -> str:
    """``text`` if it is an absolute http(s) URL with a host; else ValueError saying why."""
    if _SPACE_OR_CONTROL.search(text):
        raise _Invalid(f"{_quote(text)} contains spaces or control characters; "
                       "percent-encode them (%20) or remove them")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        shown = f'"{parts.scheme}:"' if parts.scheme else "no scheme"
        raise _Invalid(f"{_quote(text)} has {shown}; only http:// and https:// URLs are "
                       'supported, e.g. "https://example.com/feed/"')
    if not parts.hostname:
        raise _Invalid(f'{_quote(text)} has no host; write the full address, e.g. '
                       '"https://example.com/feed/"')
    try:
        parts.port  # noqa: B018 — urllib checks the port only when asked
    except ValueError:
        raise _Invalid(f"{_quote(text)} has an invalid port number") from None
    return text


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _under(base_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return _absolute(path if path.is_absolute() else base_dir / path)


def normalize_database_url(url: str, base_dir: Path) -> str:
    """The SQLAlchemy URL to open: SQLite paths made absolute, PostgreSQL via psycopg 3.

    A relative SQLite path ("sqlite:///data/agg.db") is taken relative to
    ``base_dir``; a plain "postgresql://" gets the psycopg (3) driver, the one
    the project installs.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise _Invalid(f'{_quote(url)} is not a database URL; write e.g. '
                       '"sqlite:///aggregator.db" or "postgresql+psycopg://user@host/dbname"')
    scheme = scheme.lower()
    if scheme == "sqlite":
        if rest in ("", "/:memory:") or rest.startswith("/:memory:?"):
            return url
        if not rest.startswith("/"):
            raise _Invalid(f'{_quote(url)}: a SQLite URL has no host; write "sqlite:///'
                           'relative/path.db" (three slashes) or "sqlite:////absolute/path.db"')
        file_part, has_query, query = rest[1:].partition("?")
        if not file_part:
            raise _Invalid(f'{_quote(url)} names no database file; write e.g. '
                           '"sqlite:///aggregator.db"')
        database_file = _under(base_dir, file_part)
        return f"sqlite:///{database_file}" + (f"?{query}" if has_query else "")
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        if not rest.strip("/"):
            raise _Invalid(f'{_quote(url)} names no server or database; write e.g. '
                           '"postgresql+psycopg://user:password@host:5432/aggregator"')
        return f"postgresql+psycopg://{rest}"
    raise _Invalid(f'{_quote(url)}: unsupported database "{scheme}"; use SQLite '
                   '("sqlite:///aggregator.db") or PostgreSQL through psycopg 3 '
                   '("postgresql+psycopg://user@host/dbname")')


# --------------------------------------------------------------------------- the whole file

_SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "aggregator": ("title", "base_url", "database", "feeds_dir", "contact", "retention_days"),
    "fetch": ("interval", "jitter", "concurrency", "per_host", "timeouts", "max_bytes",
              "max_redirects", "user_agent", "comments_days", "tick", "lease_seconds",
              "allow_short_intervals"),
    "server": ("host", "port"),
    "sources": ("name", "url", "comments", "comments_url", "topics", "language", "interval",
                "enabled", "allow_private"),
    "topics": ("slug", "title", "keywords", "exclude", "sources", "categories", "languages"),
}
_TIMEOUT_KEYS = ("connect", "read", "total")


def _build_config(document: dict[str, Any], path: Path, problems: _Problems) -> Config | None:
    base_dir = path.parent
    _check_top_level(document, problems)

    server = _read_server(_section(document, "server", problems), problems)
    aggregator_table = _section(document, "aggregator", problems, required=True)
    aggregator = _read_aggregator(aggregator_table, "aggregator" in document, server,
                                  base_dir, problems)
    fetch_table = _section(document, "fetch", problems)
    contact = aggregator.contact if aggregator else ""
    fetch = _read_fetch(fetch_table, contact, problems)
    allow_short = fetch_table.get("allow_short_intervals") is True

    raw_sources = _array_of_tables(document, "sources", problems)
    raw_topics = _array_of_tables(document, "topics", problems)
    topic_slugs = [t["slug"] for t in raw_topics if isinstance(t.get("slug"), str)]
    source_names = [s["name"].strip() for s in raw_sources if isinstance(s.get("name"), str)]

    sources = _read_sources(raw_sources, topic_slugs, allow_short, problems)
    topics = _read_topics(raw_topics, source_names, problems)
    if aggregator is None:
        return None
    return Config(path=path, aggregator=aggregator, fetch=fetch, server=server,
                  sources=tuple(sources), topics=tuple(topics))


def _check_top_level(document: dict[str, Any], problems: _Problems) -> None:
    for key in document:
        if key in _SECTION_KEYS:
            continue
        owners = [name for name, keys in _SECTION_KEYS.items() if key in keys]
        if owners:
            header = f"[[{owners[0]}]]" if owners[0] in ("sources", "topics") else \
                f"[{owners[0]}]"
            hint = f"it belongs under {header}; move it below that header."
        else:
            hint = did_you_mean(key, _SECTION_KEYS) or (
                "the known tables are [aggregator], [fetch], [server], [[sources]] "
                "and [[topics]].")
        problems.add("top level", f'unknown key or table "{key}"; {hint}')


def _section(document: dict[str, Any], name: str, problems: _Problems,
             required: bool = False) -> dict[str, Any]:
    value = document.get(name, _MISSING)
    if value is _MISSING:
        if required:
            problems.add(f"[{name}]", f"missing; it is required. Add:\n\n    [{name}]\n"
                                      '    title = "Marketing Blogs Aggregator"\n')
        return {}
    if not isinstance(value, dict):
        problems.add(f"[{name}]", f"expected a table, found {_describe(value)}. Write it as "
                                  f"a [{name}] header followed by key = value lines.")
        return {}
    return value


def _array_of_tables(document: dict[str, Any], name: str,
                     problems: _Problems) -> list[dict[str, Any]]:
    value = document.get(name, [])
    if not isinstance(value, list):
        problems.add(f"[{name}]", f"expected an array of tables, found {_describe(value)}. "
                                  f"Start each entry with a [[{name}]] header (two brackets).")
        return []
    tables = []
    for position, item in enumerate(value, 1):
        if isinstance(item, dict):
            tables.append(item)
        else:
            problems.add(f"[[{name}]] #{position}",
                         f"expected a table, found {_describe(item)}.")
    return tables


def _read_server(table: dict[str, Any], problems: _Problems) -> ServerSettings:
    reader = _TableReader(table, "[server]", problems, _SECTION_KEYS["server"])
    reader.check_unknown_keys()
    defaults = ServerSettings()
    return ServerSettings(
        host=reader.string("host", defaults.host, example='"127.0.0.1"'),
        port=reader.integer("port", defaults.port, 1, 65535),
    )


def _read_aggregator(table: dict[str, Any], present: bool, server: ServerSettings,
                     base_dir: Path, problems: _Problems) -> AggregatorSettings | None:
    reader = _TableReader(table, "[aggregator]", problems, _SECTION_KEYS["aggregator"])
    reader.check_unknown_keys()
    # A missing [aggregator] is already reported; its title need not be as well.
    title = reader.string("title", example='"Marketing Blogs Aggregator"') if present else None

    # A wildcard bind address is no address to put in a published feed.
    host = server.host if server.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    base_url = reader.string("base_url", f"http://{host}:{server.port}/",
                             example='"https://feeds.example.com/"')
    try:
        check_http_url(base_url)
        if urlsplit(base_url).query or urlsplit(base_url).fragment:
            raise _Invalid(f"{_quote(base_url)} has a query or fragment; give the bare "
                           "address the feeds are published under")
    except _Invalid as exc:
        reader.problem("base_url", f"{exc}.")
    if not base_url.endswith("/"):
        base_url += "/"

    database_default = f"sqlite:///{DEFAULT_DATABASE_FILE}"
    database = reader.string("database", database_default,
                             example='"sqlite:///aggregator.db"')
    env_database = os.environ.get(DATABASE_ENV, "").strip()
    try:
        if env_database:
            # From the shell, a relative path means relative to where the user stands.
            database = normalize_database_url(env_database, Path.cwd())
        else:
            database = normalize_database_url(database, base_dir)
    except _Invalid as exc:
        if env_database:
            problems.add(f"environment variable {DATABASE_ENV}", f"{exc}.")
        else:
            reader.problem("database", f"{exc}.")

    feeds_dir = _under(base_dir, reader.string("feeds_dir", DEFAULT_FEEDS_DIR,
                                               example='"feeds"'))
    contact = reader.string("contact", base_url, example='"mailto:ops@example.com"')
    retention_days = reader.integer("retention_days", 0, 0, None)
    if title is None or reader.failed:
        return None
    return AggregatorSettings(title=title, base_url=base_url, database=database,
                              feeds_dir=feeds_dir, contact=contact,
                              retention_days=retention_days)


def _read_fetch(table: dict[str, Any], contact: str, problems: _Problems) -> FetchSettings:
    reader = _TableReader(table, "[fetch]", problems, _SECTION_KEYS["fetch"])
    reader.check_unknown_keys()
    defaults = FetchSettings()
    allow_short = reader.boolean("allow_short_intervals", False)
    interval = _interval_minutes(reader, "interval", defaults.interval_minutes, allow_short)
    assert interval is not None

    connect, read, total = _read_timeouts(reader, defaults)

    max_bytes = defaults.max_bytes
    raw_max_bytes = reader.raw("max_bytes")
    if raw_max_bytes is not _MISSING:
        try:
            if isinstance(raw_max_bytes, str):
                max_bytes = parse_size(raw_max_bytes)
            elif _is_int(raw_max_bytes):
                max_bytes = raw_max_bytes
            else:
                raise _Invalid(f"expected a number of bytes or a size string, found "
                               f"{_describe(raw_max_bytes)}")
            if max_bytes < 1024:
                raise _Invalid(f"{max_bytes} bytes is too small for any feed; use at least "
                               "1024 bytes")
        except _Invalid as exc:
            reader.problem("max_bytes", f'{exc}. Example: max_bytes = "5MiB"')
            max_bytes = defaults.max_bytes

    tick = _seconds(reader, "tick", defaults.tick_seconds, 1, 3600, '"1m"')
    lease_floor = 1 if allow_short else MIN_LEASE_SECONDS
    lease = _seconds(reader, "lease_seconds", defaults.lease_seconds, lease_floor, 86400,
                     '"10m"', hint="" if allow_short else
                     "; for tests only, set [fetch] allow_short_intervals = true to go lower")

    user_agent = reader.string("user_agent", DEFAULT_USER_AGENT,
                               example=_quote(DEFAULT_USER_AGENT))
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in user_agent):
        reader.problem("user_agent", "contains a line break or control character, which "
                                     "cannot go in an HTTP header; remove it.")
        user_agent = DEFAULT_USER_AGENT
    # Only these two placeholders: str.format would trip over any other brace.
    user_agent = user_agent.replace("{version}", __version__).replace("{contact}", contact)

    return FetchSettings(
        interval_minutes=interval,
        jitter=reader.number("jitter", defaults.jitter, 0.0, 0.5),
        concurrency=reader.integer("concurrency", defaults.concurrency, 1, 1000),
        per_host=reader.integer("per_host", defaults.per_host, 1, 100),
        connect_timeout=connect,
        read_timeout=read,
        total_timeout=total,
        max_bytes=max_bytes,
        max_redirects=reader.integer("max_redirects", defaults.max_redirects, 0, 20),
        user_agent=user_agent,
        comments_days=reader.integer("comments_days", defaults.comments_days, 0, None),
        tick_seconds=tick,
        lease_seconds=lease,
    )


def _seconds(reader: _TableReader, key: str, default: float, low: float, high: float,
             example: str, *, hint: str = "") -> float:
    """A number of seconds, or a duration string, between ``low`` and ``high``."""
    raw = reader.raw(key)
    if raw is _MISSING:
        return default
    try:
        if isinstance(raw, str):
            seconds = parse_duration(raw)
        elif _is_number(raw):
            seconds = float(raw)
        else:
            raise _Invalid(f"expected seconds or a duration string, found {_describe(raw)}")
        if not low <= seconds <= high:
            raise _Invalid(f"{seconds:g} seconds is out of range; it must be between {low:g} "
                           f"and {high:g} seconds{hint}")
    except _Invalid as exc:
        reader.problem(key, f"{exc}. Example: {key} = {default:g}  or  {key} = {example}")
        return default
    return seconds


def _read_timeouts(reader: _TableReader, defaults: FetchSettings) -> tuple[float, float, float]:
    fallback = (defaults.connect_timeout, defaults.read_timeout, defaults.total_timeout)
    value = reader.raw("timeouts")
    if value is _MISSING:
        return fallback
    example = "timeouts = { connect = 5, read = 10, total = 30 }"
    if not isinstance(value, dict):
        reader.problem("timeouts", f"expected a table of seconds, found {_describe(value)}. "
                                   f"Example: {example}")
        return fallback
    inner = _TableReader(value, f"{reader.where} timeouts", reader.problems, _TIMEOUT_KEYS)
    inner.check_unknown_keys()
    seconds = []
    for key, default in zip(_TIMEOUT_KEYS, fallback, strict=True):
        number = inner.number(key, default, 0.0, None)
        if number <= 0:
            inner.problem(key, f"must be more than 0 seconds. Example: {example}")
            number = default
        seconds.append(number)
    connect, read, total = seconds
    if total < connect:
        inner.problem("total", f"{total:g} s is shorter than connect ({connect:g} s); the "
                               "whole fetch cannot take less than connecting. Raise total.")
        total = max(connect, defaults.total_timeout)
    if inner.failed:
        reader.failed = True
    return connect, read, total


def _source_label(position: int, table: dict[str, Any]) -> str:
    name = table.get("name")
    named = f" {_quote(name)}" if isinstance(name, str) and name.strip() else ""
    return f"[[sources]] #{position}{named}"


def _read_sources(tables: list[dict[str, Any]], topic_slugs: list[str], allow_short: bool,
                  problems: _Problems) -> list[SourceConfig]:
    sources: list[SourceConfig] = []
    seen_names: dict[str, int] = {}
    seen_urls: dict[str, int] = {}
    for position, table in enumerate(tables, 1):
        reader = _TableReader(table, _source_label(position, table), problems,
                              _SECTION_KEYS["sources"])
        reader.check_unknown_keys()
        name = reader.string("name", example='"Frankwatching"')
        if isinstance(name, str):
            name = name.strip()
            if name in seen_names:
                reader.problem("name", f"{_quote(name)} is already the name of "
                                       f"[[sources]] #{seen_names[name]}; names must be "
                                       "unique. Rename one of them.")
            seen_names.setdefault(name, position)

        url = reader.string("url", example='"https://example.com/feed/"')
        if isinstance(url, str):
            try:
                check_http_url(url)
                key = feed_url_key(url)
                if key in seen_urls:
                    raise _Invalid(f"{_quote(url)} is the same feed as [[sources]] "
                                   f"#{seen_urls[key]}; list each feed once")
                seen_urls[key] = position
            except _Invalid as exc:
                reader.problem("url", f"{exc}.")

        comments_url = reader.string("comments_url", None,
                                     example='"https://example.com/comments/feed/"')
        if comments_url is not None:
            try:
                check_http_url(comments_url)
            except _Invalid as exc:
                reader.problem("comments_url", f"{exc}.")

        topics = _dedupe(reader.strings("topics"))
        for slug in topics:
            if slug not in topic_slugs:
                reader.problem("topics", _unknown_reference("topic", slug, topic_slugs,
                                                            "[[topics]] slug"))

        language = _language(reader, "language", reader.string("language", None,
                                                                example='"nl"'))
        source = SourceConfig(
            name=name or "",
            url=url or "",
            comments=reader.boolean("comments", True),
            comments_url=comments_url,
            topics=topics,
            language=language,
            interval_minutes=_interval_minutes(reader, "interval", None, allow_short),
            enabled=reader.boolean("enabled", True),
            allow_private=reader.boolean("allow_private", False),
        )
        if not reader.failed:
            sources.append(source)
    return sources


def _read_topics(tables: list[dict[str, Any]], source_names: list[str],
                 problems: _Problems) -> list[TopicConfig]:
    topics: list[TopicConfig] = []
    seen: dict[str, int] = {}
    for position, table in enumerate(tables, 1):
        slug = table.get("slug")
        named = f" {_quote(slug)}" if isinstance(slug, str) and slug else ""
        reader = _TableReader(table, f"[[topics]] #{position}{named}", problems,
                              _SECTION_KEYS["topics"])
        reader.check_unknown_keys()
        slug = reader.string("slug", example='"social-media"')
        if isinstance(slug, str):
            if not _SLUG.match(slug):
                suggestion = re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-") or "my-topic"
                reader.problem("slug", f"{_quote(slug)} is not a slug: use lower-case letters, "
                                       f"digits and hyphens, starting with a letter or digit, "
                                       f'e.g. "{suggestion}".')
            elif slug in seen:
                reader.problem("slug", f"{_quote(slug)} is already the slug of [[topics]] "
                                       f"#{seen[slug]}; slugs must be unique.")
            seen.setdefault(slug, position)

        names = _dedupe(reader.strings("sources"))
        for name in names:
            if name not in source_names:
                reader.problem("sources", _unknown_reference("source", name, source_names,
                                                             "[[sources]] name"))
        languages = []
        for code in _dedupe(reader.strings("languages")):
            checked = _language(reader, "languages", code)
            if checked:
                languages.append(checked)

        topic = TopicConfig(
            slug=slug or "",
            title=reader.string("title", slug or "", example='"Social media"'),
            keywords=reader.strings("keywords"),
            exclude=reader.strings("exclude"),
            sources=names,
            categories=reader.strings("categories"),
            languages=tuple(languages),
        )
        if not reader.failed:
            topics.append(topic)
    return topics


def _language(reader: _TableReader, key: str, code: str | None) -> str | None:
    if code is None:
        return None
    if _LANGUAGE.match(code):
        return code.lower()
    primary = re.split(r"[-_]", code, maxsplit=1)[0].lower()
    hint = f' (for {_quote(code)} write "{primary}")' if _LANGUAGE.match(primary) else ""
    reader.problem(key, f"{_quote(code)} is not a 2- or 3-letter language code such as "
                        f'"nl", "de" or "en"{hint}.')
    return None


def _unknown_reference(kind: str, value: str, known: list[str], where: str) -> str:
    hint = did_you_mean(value, known)
    listed = ", ".join(_quote(k) for k in dict.fromkeys(known)) if known else "none yet"
    return (f"unknown {kind} {_quote(value)}; {hint + ' ' if hint else ''}"
            f"known: {listed}. Each must match a {where}.")


def _dedupe(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def feed_url_key(url: str) -> str:
    """What two feed URLs share when they are the same feed for config purposes.

    Scheme and host case, a default port, a trailing slash and the fragment
    do not make a different feed.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port not in (None, 80, 443) else None
    netloc = f"{host}:{port}" if port else host
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((scheme, netloc, path, parts.query, ""))
