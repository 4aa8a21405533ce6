"""The `aggregator` command: a thin shell over the library.

Every command loads config.toml first (``--config``, else
``$AGGREGATOR_CONFIG``, else ``./config.toml``); errors a user can fix are
printed as one line and exit with status 2.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import gc
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from aggregator import __version__
from aggregator.config import Config, load_config, resolve_config_path
from aggregator.errors import AggregatorError

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from aggregator.pipeline import PassReport
    from aggregator.store import SourceStatus


@functools.cache
def _console(stderr: bool = False) -> Console:
    # rich is imported by the commands that draw tables or progress, not by
    # every command: it is a twentieth of `aggregator publish`.
    from rich.console import Console

    probe = Console(stderr=stderr)
    # Piped output (logs, CI) has no width; 80 columns would fold every table cell.
    return probe if probe.is_terminal else Console(stderr=stderr, width=160)


def say(message: str) -> None:
    """Print a line of user data as it is (names and URLs are not markup)."""
    click.echo(message)


def _add_row(table: Table, *cells: str) -> None:
    from rich.text import Text

    table.add_row(*(Text(cell) for cell in cells))


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(
        level=level, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Third-party chatter is not what ops need in the fetch log.
    for noisy in ("httpx", "httpcore", "apscheduler", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class State:
    def __init__(self, config_option: str | None) -> None:
        self.config_option = config_option
        self._config: Config | None = None

    @property
    def path(self) -> Path:
        return resolve_config_path(self.config_option)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.path)
        return self._config


def handle_errors(func: F) -> F:
    """Turn project errors into one clear line and exit status 2."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AggregatorError as error:
            from rich.text import Text

            _console(stderr=True).print(Text("error: ", style="bold red") + Text(str(error)),
                                        highlight=False)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_option", metavar="PATH", default=None,
              help="config.toml to use (default: $AGGREGATOR_CONFIG, then ./config.toml).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors in the log.")
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def cli(ctx: click.Context, config_option: str | None, verbose: int, quiet: bool) -> None:
    """Aggregate marketing blogs (posts and comments) and republish them as feeds."""
    _setup_logging(verbose, quiet)
    ctx.obj = State(config_option)


# ---------------------------------------------------------------------- daemon


@cli.command()
@click.option("--role", type=click.Choice(["all", "fetch", "serve"]), default="all",
              show_default=True,
              help="fetch: fetch and publish, no HTTP server; serve: HTTP server that "
                   "publishes whenever another worker fetched something new; all: both.")
@click.pass_obj
@handle_errors
def run(state: State, role: str) -> None:
    """The daemon: fetch on schedule, publish, and serve, until SIGTERM/SIGINT."""
    from aggregator.daemon import Daemon

    asyncio.run(Daemon(state.config, serve=role in ("all", "serve"),
                       fetch=role in ("all", "fetch")).run())


@cli.command()
@click.pass_obj
@handle_errors
def serve(state: State) -> None:
    """The HTTP server alone (feeds, threads, /healthz), until SIGTERM/SIGINT."""
    from aggregator.daemon import Daemon

    asyncio.run(Daemon(state.config, fetch=False, publish=False).run())


#: Most rows the fetch command's table shows; the rest are summed up.
FETCH_TABLE_ROWS = 50


def _print_pass(report: PassReport) -> None:
    """The fetch command's report: a row per source with news or an error, totals below.

    Sources with an error always get a row. With thousands of sources a row
    each hides what matters (and rich takes seconds to lay it out), so news
    beyond FETCH_TABLE_ROWS rows is only counted; `aggregator status` has
    every source.
    """
    errors = sorted((o for o in report.outcomes if o.error), key=lambda o: o.name)
    news = sorted((o for o in report.outcomes if not o.error and o.result != "unchanged"),
                  key=lambda o: o.name)
    shown = errors + news[:max(0, FETCH_TABLE_ROWS - len(errors))]
    from rich.table import Table

    table = Table(title=f"Fetch pass: {len(report.outcomes)} source(s)")
    for column in ("source", "result", "HTTP", "new posts", "updated", "merged",
                   "new comments", "comment feeds", "s", "error"):
        table.add_column(column, overflow="fold")
    for outcome in sorted(shown, key=lambda o: o.name):
        r = outcome.report
        _add_row(table,
            outcome.name, outcome.result, str(outcome.http_status or "-"), str(r.new_posts),
            str(r.updated_posts + r.updated_comments), str(r.merged_posts),
            str(r.new_comments), str(outcome.comment_feeds), f"{outcome.seconds:.2f}",
            outcome.error or "",
        )
    if shown:
        _console().print(table)
    if len(shown) < len(errors) + len(news):
        say(f"{len(errors) + len(news) - len(shown)} more source(s) with news are not "
            "listed; `aggregator status` shows every source.")
    if news or errors:
        totals = [o.report for o in report.outcomes]
        say(f"In all: {sum(r.new_posts for r in totals)} new post(s), "
            f"{sum(r.new_comments for r in totals)} new comment(s), "
            f"{sum(r.updated_posts + r.updated_comments for r in totals)} updated, "
            f"{sum(r.merged_posts for r in totals)} merged as duplicates; "
            f"{len(errors)} source(s) failed.")
    quiet = len(report.outcomes) - len(errors) - len(news)
    if quiet:
        say(f"{quiet} source(s) unchanged since the last fetch.")


@cli.command()
@click.option("--all", "fetch_all", is_flag=True, help="Fetch every enabled source, due or not.")
@click.option("--source", "names", multiple=True, metavar="NAME",
              help="Fetch only this source (repeatable); implies --all for it.")
@click.pass_obj
@handle_errors
def fetch(state: State, fetch_all: bool, names: tuple[str, ...]) -> None:
    """One pass over due (or all) sources, then publish."""
    from aggregator.pipeline import Aggregator, SourceOutcome

    config = state.config
    for name in names:
        if config.source(name) is None:
            known = ", ".join(s.name for s in config.sources) or "none"
            raise click.UsageError(f"no source named {name!r} in {config.path} (known: {known})")
    show_progress = _console().is_terminal
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    async def go() -> Any:
        aggregator = Aggregator(config)
        try:
            with Progress(
                TextColumn("[progress.description]{task.description}"), BarColumn(),
                MofNCompleteColumn(), TimeElapsedColumn(), console=_console(),
                disable=not show_progress, transient=True,
            ) as progress:
                task = progress.add_task("fetching", total=None)

                def total(count: int) -> None:
                    progress.update(task, total=count)

                def advance(outcome: SourceOutcome) -> None:
                    progress.update(task, advance=1, description=f"fetched {outcome.name}")

                started = time.monotonic()
                report = await aggregator.fetch_pass(
                    names=list(names) or None, force=fetch_all or bool(names),
                    progress=advance, on_total=total,
                )
                logging.getLogger("aggregator").info(
                    "fetch pass: %d source(s) in %.3f s", len(report.outcomes),
                    time.monotonic() - started)
            # The parser workers and connections are done: let them go before
            # publishing, which is this command's other peak of memory.
            await aggregator.aclose()
            # A pass that changed nothing leaves archive documents an earlier
            # publish left to the daemon or `publish`: it is a quick look only.
            report.published = await asyncio.to_thread(
                functools.partial(aggregator.publish, archive_work=report.changed))
            report.archives_pending = aggregator.archives_pending
            return report
        finally:
            await aggregator.aclose()
            aggregator.close()

    report = asyncio.run(go())
    _print_pass(report)
    if not report.outcomes:
        say("No source was due. Use --all to fetch every source now.")
    say(f"Published {len(report.published)} changed file(s) "
                  f"to {config.aggregator.feeds_dir}")
    if report.archives_pending:
        say("Some archive documents are still to write: the daemon writes them, "
            "or run `aggregator publish`.")


@cli.command()
@click.pass_obj
@handle_errors
def publish(state: State) -> None:
    """Rewrite the static feeds under feeds/ from the store."""
    # A publish holds a bounded amount (the newest entries of each feed) and
    # ends within a second, when the process's memory goes anyway. At
    # 1,000,000 stored entries the cyclic collector took 85–100 ms of it (a
    # tenth), scanning what imports and the config built.
    collecting = gc.isenabled()
    gc.disable()
    try:
        from aggregator.pipeline import Aggregator

        aggregator = Aggregator(state.config)
        try:
            changed = aggregator.publish()
            if aggregator.archives_pending:
                # Hundreds of archive documents after a cold pass or an
                # upgrade: this command writes them all, with the collector on.
                if collecting:
                    gc.enable()
                say("Writing the archive documents still to write …")
                while aggregator.archives_pending and not aggregator.publish_skipped:
                    step = aggregator.publish(all_archives=True)
                    if not step:
                        break  # no progress (numbering lost a race): the daemon goes on
                    changed += step
        finally:
            aggregator.close()
    finally:
        if collecting:  # main() runs inside tests and other programs too
            gc.enable()
    say(f"Published {len(changed)} changed file(s) to "
                  f"{state.config.aggregator.feeds_dir}")


# ---------------------------------------------------------------------- status


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 90:
        text = f"{int(seconds)}s"
    elif seconds < 90 * 60:
        text = f"{int(seconds // 60)}m"
    elif seconds < 36 * 3600:
        text = f"{seconds / 3600:.1f}h"
    else:
        text = f"{seconds / 86400:.1f}d"
    return f"in {text}" if future else f"{text} ago"


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@handle_errors
def status(state: State, as_json: bool) -> None:
    """Per-source health: last fetch, HTTP status, posts, comments, errors, next check."""
    from aggregator.schedule import FAILING_AFTER
    from aggregator.store import Store

    config = state.config
    store = Store(config.aggregator.database)
    try:
        rows = {row.name: row for row in store.status()}
    finally:
        store.close()
    now = datetime.now(UTC)
    records = []
    for source in config.sources:
        row = rows.get(source.name)
        if row is None:
            health = "disabled" if not source.enabled else "new"
        elif row.gone:
            health = "gone (410): remove it from config.toml"
        elif not source.enabled:
            health = "disabled"
        elif row.error_count >= FAILING_AFTER:
            health = f"failing since {row.failing_since:%Y-%m-%d %H:%M}"  # type: ignore[str-format]
        elif row.error_count:
            health = f"backing off until {row.next_check_at:%Y-%m-%d %H:%M}"  # type: ignore[str-format]
        else:
            health = "ok"
        if row is not None and row.moved_to:
            health += f"; moved to {row.moved_to} (update config.toml)"
        records.append((source, row, health))
    if as_json:
        out = []
        for source, row, health in records:
            out.append({
                "name": source.name, "url": source.url, "enabled": source.enabled,
                "health": health,
                "last_fetch": row.last_fetch_at.isoformat() if row and row.last_fetch_at else None,
                "http_status": row.last_status if row else None,
                "posts": row.posts if row else 0, "comments": row.comments if row else 0,
                "errors": row.error_count if row else 0,
                "last_error": row.last_error if row else None,
                "warning": row.last_warning if row else None,
                "next_check": row.next_check_at.isoformat() if row and row.next_check_at else None,
                "moved_to": row.moved_to if row else None,
            })
        click.echo(json.dumps(out, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"Sources in {config.path}")
    for column in ("source", "health", "last fetch", "HTTP", "posts", "comments", "errors",
                   "next check", "last error or warning"):
        table.add_column(column, overflow="fold")
    for source, row, health in records:
        _add_row(table,
            source.name, health,
            _ago(row.last_fetch_at, now) if row else "never",
            str(row.last_status or "-") if row else "-",
            str(row.posts) if row else "0", str(row.comments) if row else "0",
            str(row.error_count) if row else "0",
            _ago(row.next_check_at, now) if row and row.next_check_at else "-",
            _error_or_warning(row),
        )
    _console().print(table)


def _error_or_warning(row: SourceStatus | None) -> str:
    if row is None:
        return ""
    if row.last_error:
        return row.last_error
    return f"warning: {row.last_warning}" if row.last_warning else ""


@cli.command("check-config")
@click.pass_obj
@handle_errors
def check_config(state: State) -> None:
    """Validate config.toml and say what is wrong, if anything."""
    config = state.config
    sources, topics = len(config.sources), len(config.topics)
    say(f"{config.path}: OK ({sources} source{'' if sources == 1 else 's'}, "
        f"{topics} topic{'' if topics == 1 else 's'})")


# ---------------------------------------------------------------------- sources


@cli.group()
def sources() -> None:
    """List or edit the sources in config.toml (keeps its comments and layout)."""


@sources.command("list")
@click.pass_obj
@handle_errors
def sources_list(state: State) -> None:
    """Show every source in config.toml."""
    from rich.table import Table

    table = Table(title=f"Sources in {state.config.path}")
    for column in ("name", "url", "language", "topics", "comments", "enabled"):
        table.add_column(column, overflow="fold")
    for source in state.config.sources:
        _add_row(table, source.name, source.url, source.language or "-",
                      ", ".join(source.topics) or "-", "yes" if source.comments else "no",
                      "yes" if source.enabled else "no")
    _console().print(table)


@sources.command("add")
@click.argument("url")
@click.option("--name", help="Name of the source (default: the URL's host).")
@click.option("--topic", "topics", multiple=True, help="Topic slug (repeatable).")
@click.option("--language", help="The blog's language, e.g. nl, de, en (a hint).")
@click.option("--no-comments", is_flag=True, help="Do not follow this blog's comment feeds.")
@click.option("--disabled", is_flag=True, help="Add it disabled.")
@click.pass_obj
@handle_errors
def sources_add(state: State, url: str, name: str | None, topics: tuple[str, ...],
                language: str | None, no_comments: bool, disabled: bool) -> None:
    """Add a source by its feed URL."""
    from aggregator.config_edit import add_source

    source = add_source(state.path, url, name=name, topics=topics, language=language,
                        comments=not no_comments, enabled=not disabled)
    say(f"Added source {source.name!r} ({source.url}) to {state.path}")


@sources.command("remove")
@click.argument("name")
@click.pass_obj
@handle_errors
def sources_remove(state: State, name: str) -> None:
    """Remove a source (its entries stay published)."""
    from aggregator.config_edit import remove_source

    source = remove_source(state.path, name)
    say(f"Removed source {source.name!r} from {state.path}")


@sources.command("enable")
@click.argument("name")
@click.pass_obj
@handle_errors
def sources_enable(state: State, name: str) -> None:
    """Enable a source."""
    from aggregator.config_edit import set_source_enabled

    set_source_enabled(state.path, name, True)
    say(f"Enabled source {name!r} in {state.path}")


@sources.command("disable")
@click.argument("name")
@click.pass_obj
@handle_errors
def sources_disable(state: State, name: str) -> None:
    """Disable a source (it is no longer fetched)."""
    from aggregator.config_edit import set_source_enabled

    set_source_enabled(state.path, name, False)
    say(f"Disabled source {name!r} in {state.path}")


# ---------------------------------------------------------------------- opml, export


@cli.group()
def opml() -> None:
    """Import sources from, or export them to, OPML."""


@opml.command("export")
@click.pass_obj
@handle_errors
def opml_export(state: State) -> None:
    """Print the source list as OPML 2.0."""
    from aggregator.opml import render_opml
    from aggregator.pipeline import build_site_info
    from aggregator.store import Store

    store = Store(state.config.aggregator.database)
    try:
        site = build_site_info(state.config, store)
    finally:
        store.close()
    sys.stdout.buffer.write(render_opml(site))


@opml.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--topic", "topics", multiple=True, help="Topic slug for every imported source.")
@click.pass_obj
@handle_errors
def opml_import(state: State, file: Path, topics: tuple[str, ...]) -> None:
    """Add every feed of an OPML file as a source (existing ones are skipped)."""
    from aggregator.config_edit import add_source
    from aggregator.opml import read_opml

    config = state.config
    known_urls = {s.url for s in config.sources}
    known_names = {s.name for s in config.sources}
    added = 0
    for outline in read_opml(file.read_bytes()):
        if outline.url in known_urls:
            continue
        name = outline.title or None
        if name in known_names:
            name = None
        source = add_source(state.path, outline.url, name=name, topics=topics,
                            language=outline.language)
        known_urls.add(source.url)
        known_names.add(source.name)
        added += 1
    say(f"Imported {added} source(s) into {state.path}")


@cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl",
              show_default=True)
@click.pass_obj
@handle_errors
def export(state: State, fmt: str) -> None:
    """Write every canonical entry with its appearances, one JSON object a line."""
    from aggregator.store import Store

    store = Store(state.config.aggregator.database)
    try:
        for record in store.export_records():
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        store.close()


@cli.group()
def duplicates() -> None:
    """Inspect and correct merged duplicates."""


@duplicates.command("split")
@click.argument("entry_id", metavar="ID")
@click.option("--source", "source_name", metavar="NAME",
              help="The source whose copy to split off (needed when the post appeared at "
                   "more than two sources).")
@click.pass_obj
@handle_errors
def duplicates_split(state: State, entry_id: str, source_name: str | None) -> None:
    """Undo a wrong merge: ID (urn:uuid:… from a feed or `export`) is split in two, for good."""
    from aggregator.pipeline import Aggregator
    from aggregator.store import public_id

    aggregator = Aggregator(state.config)
    try:
        result = aggregator.store.split_duplicate(entry_id, source_name=source_name)
        say(f"Split {entry_id}: the copy from the other source is now {public_id(result.new_uid)}"
            f" ({result.moved_comments} comment(s) moved with it). They will not be merged "
            "again.")
        aggregator.publish()
    finally:
        aggregator.close()


def main() -> None:
    """Run the command line in this interpreter (tests and embedding call this)."""
    cli(prog_name="aggregator")


def program() -> NoReturn:
    """The ``aggregator`` program: :func:`main`, then an exit without teardown.

    Tearing down the interpreter (its modules: SQLAlchemy, httpx, pydantic …)
    took 0.15–0.25 s after every command, a tenth of a warm fetch pass. What
    an exit must do is done here first: the atexit handlers (logging's flush
    and close among them, weakref finalizers), then stdout and stderr are
    flushed. With a non-daemon thread still running, the exit is the normal
    one, which waits for it.
    """
    try:
        main()
        code = 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:  # sys.exit("message") prints the message and fails
            print(stop.code, file=sys.stderr)
            code = 1
    if any(thread.is_alive() and not thread.daemon for thread in threading.enumerate()
           if thread is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`) or stream
            code = code or 1
    os._exit(code)
