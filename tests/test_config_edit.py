"""Editing config.toml: edits keep comments and layout, stay valid, and fail without writing."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import shutil
import stat
import tempfile
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.config import load_config
from aggregator.config_edit import add_source, list_sources, remove_source, set_source_enabled
from aggregator.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[1] / "config.toml"

EDITED = textwrap.dedent("""\
    # Our marketing feeds. Keep this comment.
    [aggregator]
    title = "Test hub"  # shown on the index page

    # --- Sources ---

    [[sources]]
    # The biggest Dutch marketing blog.
    name = "Marketingfacts"
    url = "https://www.marketingfacts.nl/feed/"
    language = "nl"
    topics = ["social-media"]

    [[sources]]
    name = "t3n"
    url = "https://t3n.de/rss.xml"
    enabled = true  # switched back on after the outage

    # --- Topics ---
    # Each topic gets its own feed.

    [[topics]]
    slug = "social-media"
    keywords = ["social media", "sociale media"]
    sources = [
      "Marketingfacts",  # all of it
      "t3n",
    ]

    [[topics]]
    slug = "trends"
""")


@pytest.fixture(autouse=True)
def _no_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGGREGATOR_DATABASE_URL", raising=False)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(EDITED, encoding="utf-8")
    return path


def comment_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


# --------------------------------------------------------------------------- add


def test_add_source_appends_and_keeps_every_comment(config_path: Path) -> None:
    added = add_source(config_path, "https://www.frankwatching.com/feed/", name="Frankwatching",
                       topics=["trends"], language="NL", comments=False)
    assert added.name == "Frankwatching" and added.language == "nl"
    assert added.topics == ("trends",) and added.comments is False

    text = config_path.read_text(encoding="utf-8")
    for line in comment_lines(EDITED):
        assert line in text.splitlines()
    assert 'title = "Test hub"  # shown on the index page\n' in text
    assert '  "Marketingfacts",  # all of it\n' in text
    # The new entry joins the other sources, before the comment introducing the topics.
    assert text.index('name = "Frankwatching"') < text.index("# --- Topics ---")
    assert "# Each topic gets its own feed.\n\n[[topics]]" in text
    assert [s.name for s in load_config(config_path).sources] == \
        ["Marketingfacts", "t3n", "Frankwatching"]


def test_add_source_defaults_name_to_host_and_writes_only_what_differs(config_path: Path) -> None:
    added = add_source(config_path, "https://www.emerce.nl/feed")
    assert added.name == "www.emerce.nl"
    assert (added.comments, added.enabled, added.allow_private, added.topics) == \
        (True, True, False, ())
    text = config_path.read_text(encoding="utf-8")
    block = text[text.index('name = "www.emerce.nl"'):text.index("# --- Topics ---")]
    assert block == 'name = "www.emerce.nl"\nurl = "https://www.emerce.nl/feed"\n\n'


def test_add_source_disabled_private(config_path: Path) -> None:
    added = add_source(config_path, "http://127.0.0.1:9999/feed", name="Local",
                       enabled=False, allow_private=True)
    assert (added.enabled, added.allow_private) == (False, True)


def test_add_then_remove_restores_the_file_byte_for_byte(config_path: Path) -> None:
    add_source(config_path, "https://upload-magazin.de/feed/", name="Upload")
    assert config_path.read_text(encoding="utf-8") != EDITED
    remove_source(config_path, "Upload")
    assert config_path.read_text(encoding="utf-8") == EDITED


@pytest.mark.parametrize(("url", "kwargs", "says"), [
    ("https://other.example/feed", {"name": "t3n"}, 'a source named "t3n" already exists'),
    ("https://T3N.de/rss.xml/", {"name": "T3N again"}, 'already configured, as source "t3n"'),
    ("https://x.example/feed", {"topics": ["trend"]}, 'unknown topic "trend"'),
    ("ftp://x.example/feed", {}, "only http:// and https://"),
    ("https://x.example/feed", {"name": "  "}, "its name is empty"),
])
def test_add_source_refusals_leave_the_file_untouched(
        config_path: Path, url: str, kwargs: dict[str, object], says: str) -> None:
    before = config_path.read_bytes()
    with pytest.raises(ConfigError, match=says):
        add_source(config_path, url, **kwargs)  # type: ignore[arg-type]
    assert config_path.read_bytes() == before


def test_unknown_topic_lists_known_slugs(config_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        add_source(config_path, "https://x.example/feed", topics=["socialmedia"])
    assert 'did you mean "social-media"?' in str(caught.value)
    assert "known topics: social-media, trends" in str(caught.value)


def test_broken_edit_is_not_written(config_path: Path) -> None:
    before = config_path.read_bytes()
    with pytest.raises(ConfigError) as caught:
        add_source(config_path, "https://x.example/feed", name="X", language="dutch")
    message = str(caught.value)
    assert '[[sources]] #3 "X" key "language"' in message
    assert "is unchanged" in message
    assert config_path.read_bytes() == before
    # No temporary file left; the lock file stays (removing it would race).
    assert sorted(p.name for p in config_path.parent.iterdir()) == [
        ".config.toml.lock", "config.toml"]


def test_edit_of_an_invalid_file_reports_the_existing_problem(config_path: Path) -> None:
    config_path.write_text(EDITED.replace('slug = "trends"', 'slug = "Trends!"'),
                           encoding="utf-8")
    before = config_path.read_bytes()
    with pytest.raises(ConfigError, match='key "slug"'):
        add_source(config_path, "https://x.example/feed")
    assert config_path.read_bytes() == before


def test_add_to_a_file_without_sources(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[aggregator]\ntitle = "T"  # the title\n', encoding="utf-8")
    add_source(path, "https://seths.blog/feed/", name="Seth Godin", language="en")
    text = path.read_text(encoding="utf-8")
    assert text.startswith('[aggregator]\ntitle = "T"  # the title\n')
    assert load_config(path).sources[0].url == "https://seths.blog/feed/"

    path.write_text('sources = []\n[aggregator]\ntitle = "T"\n', encoding="utf-8")
    add_source(path, "https://seths.blog/feed/", name="Seth Godin")
    assert [s.name for s in load_config(path).sources] == ["Seth Godin"]


def test_add_to_inline_sources_keeps_their_style(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('sources = [{ name = "A", url = "https://a.example/feed" }]\n'
                    '[aggregator]\ntitle = "T"\n', encoding="utf-8")
    add_source(path, "https://b.example/feed", name="B")
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith('sources = [{ name = "A", url = "https://a.example/feed" }, {')
    assert 'name = "B"' in first_line
    assert [s.name for s in load_config(path).sources] == ["A", "B"]


# --------------------------------------------------------------------------- remove


def test_remove_source_drops_it_from_topics_and_keeps_comments(config_path: Path) -> None:
    removed = remove_source(config_path, "t3n")
    assert removed.url == "https://t3n.de/rss.xml"
    config = load_config(config_path)
    assert [s.name for s in config.sources] == ["Marketingfacts"]
    assert config.topics[0].sources == ("Marketingfacts",)
    text = config_path.read_text(encoding="utf-8")
    assert '  "Marketingfacts",  # all of it\n' in text
    # The topics heading belonged to the space after t3n; it must survive t3n.
    assert "# --- Topics ---\n# Each topic gets its own feed.\n\n[[topics]]" in text
    assert "switched back on" not in text


def test_remove_first_source_keeps_the_heading_above_it(config_path: Path) -> None:
    remove_source(config_path, "Marketingfacts")
    text = config_path.read_text(encoding="utf-8")
    assert "# --- Sources ---\n\n[[sources]]\nname = \"t3n\"" in text
    assert "# The biggest Dutch marketing blog." not in text
    assert load_config(config_path).topics[0].sources == ("t3n",)


def test_remove_every_source_leaves_a_valid_file(config_path: Path) -> None:
    remove_source(config_path, "Marketingfacts")
    remove_source(config_path, "t3n")
    config = load_config(config_path)
    assert config.sources == ()
    assert config.topics[0].sources == ()
    text = config_path.read_text(encoding="utf-8")
    assert "# --- Topics ---" in text and "[[sources]]" not in text


def test_remove_unknown_source_lists_names(config_path: Path) -> None:
    before = config_path.read_bytes()
    with pytest.raises(ConfigError) as caught:
        remove_source(config_path, "T3N")
    message = str(caught.value)
    assert 'no source named "T3N"' in message
    assert 'Known sources: "Marketingfacts", "t3n"' in message
    assert config_path.read_bytes() == before


# --------------------------------------------------------------------------- enable / disable


def test_disable_adds_the_key_inside_the_entry(config_path: Path) -> None:
    changed = set_source_enabled(config_path, "Marketingfacts", False)
    assert changed.enabled is False
    text = config_path.read_text(encoding="utf-8")
    assert 'topics = ["social-media"]\nenabled = false\n\n[[sources]]' in text
    assert load_config(config_path).source("t3n").enabled is True  # type: ignore[union-attr]


def test_toggle_existing_key_keeps_its_comment(config_path: Path) -> None:
    assert set_source_enabled(config_path, "t3n", False).enabled is False
    text = config_path.read_text(encoding="utf-8")
    assert "enabled = false  # switched back on after the outage\n" in text
    assert set_source_enabled(config_path, "t3n", True).enabled is True
    assert config_path.read_text(encoding="utf-8") == EDITED


def test_enable_unknown_source(config_path: Path) -> None:
    with pytest.raises(ConfigError, match='did you mean "Marketingfacts"'):
        set_source_enabled(config_path, "Marketingfact", True)


# --------------------------------------------------------------------------- the file itself


def test_edit_preserves_mode_and_symlink(tmp_path: Path, config_path: Path) -> None:
    os.chmod(config_path, 0o640)
    link = tmp_path / "link.toml"
    link.symlink_to(config_path)
    set_source_enabled(link, "t3n", False)
    assert link.is_symlink()
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o640
    assert load_config(config_path).source("t3n").enabled is False  # type: ignore[union-attr]


def test_an_edit_waits_for_one_in_progress(config_path: Path) -> None:
    # Another editor holds the lock between reading and writing the file.
    with open(config_path.parent / ".config.toml.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        editor = threading.Thread(target=add_source,
                                  args=(config_path, "https://waits.example/feed"))
        editor.start()
        editor.join(0.5)
        assert editor.is_alive()
        assert config_path.read_text(encoding="utf-8") == EDITED
        fcntl.flock(lock, fcntl.LOCK_UN)
    editor.join(10)
    assert not editor.is_alive()
    assert load_config(config_path).source("waits.example") is not None


def test_an_edit_of_a_missing_file_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        add_source(tmp_path / "config.toml", "https://missing.example/feed")
    assert list(tmp_path.iterdir()) == []


def _add_numbered(path: Path, number: int, start: Any) -> None:
    start.wait()
    add_source(path, f"https://blog{number}.example/feed", name=f"Blog {number}")


def test_editors_at_once_all_make_their_edit(config_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    start = context.Event()
    editors = [context.Process(target=_add_numbered, args=(config_path, n, start))
               for n in range(8)]
    for editor in editors:
        editor.start()
    start.set()
    for editor in editors:
        editor.join(60)
        assert editor.exitcode == 0
    names = {source.name for source in load_config(config_path).sources}
    assert names == {"Marketingfacts", "t3n", *(f"Blog {n}" for n in range(8))}
    assert comment_lines(config_path.read_text(encoding="utf-8")) == comment_lines(EDITED)


def test_crlf_lines_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(EDITED.replace("\n", "\r\n").encode())
    remove_source(path, "Marketingfacts")
    raw = path.read_bytes()
    assert b'# Our marketing feeds. Keep this comment.\r\n[aggregator]\r\n' in raw
    assert b"Marketingfacts" not in raw


def test_edits_of_the_shipped_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    shutil.copy(SHIPPED, path)
    original = path.read_text(encoding="utf-8")
    add_source(path, "https://www.socialmedia.example/feed/", name="Example",
               topics=["social-media", "word-of-mouth"], language="en")
    set_source_enabled(path, "Emerce", False)
    remove_source(path, "Seth Godin")
    config = load_config(path)
    assert config.source("Example") is not None and config.source("Seth Godin") is None
    assert config.source("Emerce").enabled is False  # type: ignore[union-attr]
    text = path.read_text(encoding="utf-8")
    seth_comment = "# Seth's blog has no comments."
    for line in comment_lines(original):
        if line != seth_comment:
            assert line in text.splitlines(), line
    assert len(list_sources(config)) == len(load_config(SHIPPED).sources)


@settings(max_examples=40, deadline=None)
@given(name=st.text(min_size=1, max_size=30).filter(lambda n: n.strip() and n.strip() == n))
def test_any_name_survives_add_and_remove(name: str) -> None:
    # Quotes, backslashes and non-ASCII in a name must come back out of the file unchanged.
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "config.toml"
        path.write_text(EDITED, encoding="utf-8")
        if name in ("Marketingfacts", "t3n"):
            return
        assert add_source(path, "https://any.example/feed", name=name).name == name
        assert load_config(path).source(name) is not None
        remove_source(path, name)
        assert path.read_text(encoding="utf-8") == EDITED
