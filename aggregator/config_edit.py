"""Editing config.toml in place: adding, removing, enabling and disabling sources.

config.toml belongs to its editors, so an edit keeps the file's comments, order
and layout (tomlkit round-trips them). Every edit is checked as a whole new
config before anything is written, and written atomically (a temporary file in
the same directory, then os.replace): a daemon re-reading the file sees the old
or the new version, never half of one, and a rejected edit leaves the file as
it was. Edits hold a lock (``.config.toml.lock`` beside the file) from reading
to writing, so two editors run at once make both their edits, one after the
other, rather than the second writing over the first.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomlkit
from tomlkit.items import AoT, Array, Comment, Null, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

from aggregator.config import (
    Config,
    SourceConfig,
    check_http_url,
    did_you_mean,
    feed_url_key,
    load_config,
    parse_config_text,
)
from aggregator.errors import ConfigError


def list_sources(config: Config) -> list[SourceConfig]:
    """The configured sources, in file order."""
    return list(config.sources)


def add_source(path: Path, url: str, *, name: str | None = None,
               topics: Sequence[str] = (), language: str | None = None,
               comments: bool = True, enabled: bool = True,
               allow_private: bool = False) -> SourceConfig:
    """Append a [[sources]] entry for ``url`` to the config file; return it as loaded.

    ``name`` defaults to the URL's host. A name or feed URL that is already
    configured, or a topic slug the file does not declare, is a ConfigError.
    """
    with _editing(path):
        return _add_source(Path(path), url, name=name, topics=topics, language=language,
                           comments=comments, enabled=enabled, allow_private=allow_private)


def _add_source(path: Path, url: str, *, name: str | None, topics: Sequence[str],
                language: str | None, comments: bool, enabled: bool,
                allow_private: bool) -> SourceConfig:
    current = load_config(path)
    try:
        check_http_url(url)
    except ValueError as exc:
        raise ConfigError(f"{current.path}: cannot add the source: {exc}.") from None
    if name is None:
        name = urlsplit(url).hostname or ""
    name = name.strip()
    if not name:
        raise ConfigError(f"{current.path}: cannot add the source: its name is empty. "
                          "Give a name (--name).")
    existing = current.source(name)
    if existing is not None:
        raise ConfigError(f'{current.path}: a source named "{name}" already exists '
                          f"(url {existing.url}). Choose another name (--name).")
    for source in current.sources:
        if feed_url_key(source.url) == feed_url_key(url):
            raise ConfigError(f'{current.path}: {url} is already configured, as source '
                              f'"{source.name}" (url {source.url}).')
    known = [topic.slug for topic in current.topics]
    for slug in topics:
        if slug not in known:
            hint = did_you_mean(slug, known)
            listed = ", ".join(known) if known else "none; add a [[topics]] entry first"
            raise ConfigError(f'{current.path}: unknown topic "{slug}"; '
                              f"{hint + ' ' if hint else ''}known topics: {listed}.")

    document = _read_document(current.path)
    entry: dict[str, Any] = {"name": name, "url": url}
    if language is not None:
        entry["language"] = language.lower()
    if topics:
        entry["topics"] = list(dict.fromkeys(topics))
    # Defaults stay implicit, as in the hand-written entries.
    if not comments:
        entry["comments"] = False
    if not enabled:
        entry["enabled"] = False
    if allow_private:
        entry["allow_private"] = True
    _append_source(document, entry)
    added = _write_checked(current.path, document).source(name)
    assert added is not None
    return added


def remove_source(path: Path, name: str) -> SourceConfig:
    """Delete source ``name`` from the config file (and from every topic's
    ``sources`` list, so the file stays valid); return what was removed."""
    with _editing(path):
        return _remove_source(Path(path), name)


def _remove_source(path: Path, name: str) -> SourceConfig:
    current = load_config(path)
    removed = _existing(current, name)
    document = _read_document(current.path)
    container = document["sources"]
    index = _index_of(container, name)
    if isinstance(container, AoT):
        # Comments after the entry's last blank line introduce what follows it
        # ("# --- German ---"): they stay, handed to the table before.
        tail = _detach_tail(container[index])
        del container[index]
        receiver = container[index - 1] if index > 0 else _table_before(document, "sources")
        if receiver is not None:
            if _ends_with_blank_line(receiver):
                # The blank line that set off the removed entry is already there.
                while tail and isinstance(tail[0], Whitespace):
                    tail.pop(0)
            for item in tail:
                receiver.value.append(None, item)
        if not len(container):
            # An emptied array of tables would be rendered as "sources = []" at
            # the top of the file; no key at all reads better and means the same.
            del document["sources"]
    else:
        del container[index]

    for topic in _topic_entries(document):
        members = topic.get("sources")
        if isinstance(members, list):
            while name in members:
                members.remove(name)
    _write_checked(current.path, document)
    return removed


def set_source_enabled(path: Path, name: str, enabled: bool) -> SourceConfig:
    """Set ``enabled`` of source ``name`` in the config file; return the source as loaded."""
    with _editing(path):
        return _set_source_enabled(Path(path), name, enabled)


def _set_source_enabled(path: Path, name: str, enabled: bool) -> SourceConfig:
    current = load_config(path)
    _existing(current, name)
    document = _read_document(current.path)
    container = document["sources"]
    entry = container[_index_of(container, name)]
    if "enabled" in entry:
        entry["enabled"] = enabled
    elif not enabled:
        _add_key(entry, "enabled", False)
    # else: already enabled by default; nothing to write, but the file is re-checked anyway.
    changed = _write_checked(current.path, document).source(name)
    assert changed is not None
    return changed


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _editing(path: Path | str) -> Iterator[None]:
    """Hold the config file's edit lock while the block reads and writes it."""
    target = Path(os.path.realpath(path))  # one lock however the file is reached
    if not target.is_file():
        yield  # the edit's own load reports the missing file, without a stray lock
        return
    lock_path = target.parent / f".{target.name}.lock"
    try:
        handle = open(lock_path, "a+b")  # noqa: SIM115 (held across the yield)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot lock the config file for editing: cannot create "
                          f"{lock_path} ({exc.strerror or exc}); it is unchanged. Check "
                          f"that this user may write to {target.parent}.") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes
        yield


def _existing(config: Config, name: str) -> SourceConfig:
    source = config.source(name)
    if source is None:
        names = [s.name for s in config.sources]
        hint = did_you_mean(name, names)
        listed = ", ".join(f'"{n}"' for n in names) if names else "none"
        raise ConfigError(f'{config.path}: no source named "{name}". '
                          f"{hint + ' ' if hint else ''}Known sources: {listed}.")
    return source


def _read_document(path: Path) -> TOMLDocument:
    # Bytes, not read_text(): universal newlines would turn a CRLF file into LF.
    text = path.read_bytes().decode("utf-8-sig")
    if text and not text.endswith("\n"):
        text += "\n"  # so appended tables start on a line of their own
    return tomlkit.parse(text)


def _index_of(container: Any, name: str) -> int:
    for index, entry in enumerate(container):
        if isinstance(entry.get("name"), str) and entry["name"].strip() == name:
            return index
    raise AssertionError(f"source {name!r} passed validation but is not in the document")


def _topic_entries(document: TOMLDocument) -> list[Any]:
    topics = document.get("topics")
    return list(topics) if isinstance(topics, (AoT, Array, list)) else []


def _append_source(document: TOMLDocument, entry: dict[str, Any]) -> None:
    container = document.get("sources")
    if isinstance(container, Array):
        if len(container):
            # Sources written as an inline array of inline tables: stay in that style.
            inline = tomlkit.inline_table()
            inline.update(entry)
            container.append(inline)
            return
        del document["sources"]  # "sources = []": replace with the usual [[sources]] form
        container = None
    table = tomlkit.table()
    for key, value in entry.items():
        table.add(key, value)
    if container is None:
        container = tomlkit.aot()
        container.append(table)
        document.append("sources", container)
        return
    last = container[-1]
    tail = _detach_tail(last)
    last.value.append(None, tomlkit.nl())
    for item in tail:
        table.value.append(None, item)
    container.append(table)


def _detach_tail(table: Table) -> list[Any]:
    """Cut the comments and blank lines that end ``table`` after its last blank line.

    tomlkit keeps the comments between two tables at the end of the first
    one, though after a blank line they introduce the next. Comments right
    under the last key (no blank line) stay: they belong to the table.
    """
    body = table.value.body
    last_key = max((i for i, (_, item) in enumerate(body)
                    if not isinstance(item, (Comment, Whitespace, Null))), default=-1)
    start = next((i for i in range(last_key + 1, len(body))
                  if isinstance(body[i][1], Whitespace)), None)
    if start is None:
        return []
    tail = [item for _, item in body[start:] if not isinstance(item, Null)]
    for i in range(start, len(body)):
        # Nulls render as nothing; how tomlkit itself deletes from a container.
        body[i] = (None, Null())
    return tail


def _ends_with_blank_line(table: Table) -> bool:
    items = [item for _, item in table.value.body if not isinstance(item, Null)]
    return bool(items) and isinstance(items[-1], Whitespace)


def _add_key(entry: Any, key: str, value: Any) -> None:
    if not isinstance(entry, Table):
        entry[key] = value
        return
    tail = _detach_tail(entry)
    entry.add(key, value)
    for item in tail:
        entry.value.append(None, item)


def _table_before(document: TOMLDocument, key: str) -> Table | None:
    previous: Table | None = None
    for item_key, item in document.body:
        if item_key is not None and item_key.key == key:
            return previous
        if isinstance(item, Table):
            previous = item
        elif isinstance(item, AoT) and len(item):
            previous = item[-1]
        elif not isinstance(item, (Comment, Whitespace, Null)):
            previous = None
    return None


def _write_checked(path: Path, document: TOMLDocument) -> Config:
    text = tomlkit.dumps(document)
    # Removing the last entry leaves the blank line that preceded it at the
    # end of the file; end on exactly one line break instead.
    content = text.rstrip("\r\n")
    if content:
        text = content + ("\r\n" if text[len(content):].startswith("\r\n") else "\n")
    try:
        config = parse_config_text(text, path)
    except ConfigError as exc:
        raise ConfigError(f"{exc}\nThe edit was not written; {path} is unchanged.") from None
    _write_atomically(path, text)
    return config


def _write_atomically(path: Path, text: str) -> None:
    target = Path(os.path.realpath(path))  # edit a symlinked config, keep the link
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                                 dir=target.parent)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, mode)  # mkstemp creates 0600
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the config file ({exc.strerror or exc}); "
                          "it is unchanged. Check that this user may write to "
                          f"{target.parent}.") from None
