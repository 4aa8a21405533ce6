"""The store's writer alone: record a cold pass's ingest batches, replay them.

In a cold pass the parser workers, the event loop and the store's writer
thread share two cores, and the machine's speed drifts between runs, so a
change to the write path is hard to see in ``run_bench.py``. This records
what the writer was given (every ``ingest_batch`` call, with each job's
arguments) during one in-process ``fetch --all``, then replays it into a
fresh SQLite store on one thread and prints the wall and CPU time and the
bytes the process read and wrote (``/proc/self/io``):

    python bench/serve_corpus.py CORPUS --port 18080 &      # see run_bench.py
    python bench/writer_replay.py capture CONFIG BATCHES    # about a minute
    python bench/writer_replay.py replay CONFIG BATCHES [--merge N]

CONFIG is a config.toml whose sources are served locally (run_bench.py's
``--keep`` work directory has one); it is copied to a temporary directory
first, so its own store is never touched. ``--merge N`` replays N recorded
batches as one transaction. The batches file is a pickle: only ever load
one this script wrote.
"""

from __future__ import annotations

import argparse
import pickle
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _copied_config(config: Path, directory: Path) -> Path:
    # Relative paths in the config (database, feeds_dir) resolve against its
    # directory: a copy puts the store and the feeds in the temporary one.
    copy = directory / "config.toml"
    shutil.copyfile(config, copy)
    return copy


def _io() -> dict[str, int]:
    with open("/proc/self/io", encoding="ascii") as stats:
        return {name: int(value) for name, value in
                (line.split(": ") for line in stats.read().splitlines())}


def capture(config: Path, out: Path) -> None:
    from aggregator.cli import cli
    from aggregator.store import Store

    batches: list[list[tuple[str, Any, dict[str, Any]]]] = []
    source_job, comment_job, ingest = Store.source_feed_job, Store.comment_feed_job, \
        Store.ingest_batch

    def source_feed_job(self: Store, source: Any, **arguments: Any) -> Any:
        job = source_job(self, source, **arguments)
        recorded = dict(arguments)
        # The topics function is a closure of the pipeline: its answers are kept.
        recorded["topics_for"] = [arguments["topics_for"](e) for e in arguments["entries"]]
        job.recorded = ("source", source, recorded)
        return job

    def comment_feed_job(self: Store, feed_state: Any, **arguments: Any) -> Any:
        job = comment_job(self, feed_state, **arguments)
        job.recorded = ("comment", feed_state, dict(arguments))
        return job

    def ingest_batch(self: Store, jobs: Any) -> Any:
        batches.append([job.recorded for job in jobs])
        return ingest(self, jobs)

    Store.source_feed_job = source_feed_job  # type: ignore[method-assign]
    Store.comment_feed_job = comment_feed_job  # type: ignore[method-assign]
    Store.ingest_batch = ingest_batch  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="writer-capture-") as directory:
        copy = _copied_config(config, Path(directory))
        try:
            cli(["--config", str(copy), "fetch", "--all"], standalone_mode=False)
        except SystemExit as exit_:
            if exit_.code:
                raise
    with open(out, "wb") as file:
        pickle.dump(batches, file, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"{len(batches)} batches, {sum(map(len, batches))} documents -> {out}")


def replay(config: Path, batches_file: Path, merge: int) -> None:
    from aggregator.config import load_config
    from aggregator.store import Store

    with open(batches_file, "rb") as file:
        batches = pickle.load(file)  # only files capture() wrote (see the docstring)
    if merge > 1:
        batches = [[job for batch in batches[start:start + merge] for job in batch]
                   for start in range(0, len(batches), merge)]
    with tempfile.TemporaryDirectory(prefix="writer-replay-") as directory:
        database = Path(directory) / "replay.db"
        store = Store(f"sqlite:///{database}")
        store.sync_sources(load_config(config).sources, datetime.now(UTC))

        def job_of(recorded: tuple[str, Any, dict[str, Any]]) -> Any:
            kind, state, arguments = recorded
            if kind == "comment":
                return store.comment_feed_job(state, **arguments)
            arguments = dict(arguments)
            topics = dict(zip(map(id, arguments["entries"]), arguments["topics_for"],
                              strict=True))
            arguments["topics_for"] = lambda entry: topics[id(entry)]
            return store.source_feed_job(state, **arguments)

        io_before, usage_before = _io(), resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        failed = 0
        for batch in batches:
            failed += sum(isinstance(result, Exception)
                          for result in store.ingest_batch([job_of(job) for job in batch]))
        wall = time.perf_counter() - started
        io_after, usage_after = _io(), resource.getrusage(resource.RUSAGE_SELF)
        store.engine.dispose()
        with sqlite3.connect(database) as connection:
            counts = dict(connection.execute("SELECT kind, COUNT(*) FROM entry GROUP BY kind"))
    print(f"{len(batches)} transactions: wall {wall:.2f} s, user "
          f"{usage_after.ru_utime - usage_before.ru_utime:.2f} s, sys "
          f"{usage_after.ru_stime - usage_before.ru_stime:.2f} s; wrote "
          f"{(io_after['wchar'] - io_before['wchar']) / 1e6:,.0f} MB in "
          f"{io_after['syscw'] - io_before['syscw']:,} calls, read "
          f"{(io_after['rchar'] - io_before['rchar']) / 1e6:,.0f} MB in "
          f"{io_after['syscr'] - io_before['syscr']:,} calls; stored {counts}, "
          f"{failed} failed")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    record = commands.add_parser("capture", help="record a cold pass's ingest batches")
    record.add_argument("config", type=Path)
    record.add_argument("batches", type=Path)
    again = commands.add_parser("replay", help="replay recorded batches into a fresh store")
    again.add_argument("config", type=Path)
    again.add_argument("batches", type=Path)
    again.add_argument("--merge", type=int, default=1, help="recorded batches per transaction")
    args = parser.parse_args(argv)
    if args.command == "capture":
        capture(args.config.resolve(), args.batches)
    else:
        replay(args.config.resolve(), args.batches, args.merge)


if __name__ == "__main__":
    sys.exit(main())
