"""`aggregator run`: scheduler ticks plus the HTTP server, until SIGTERM/SIGINT.

APScheduler only ticks; when each source is due is data in the store
(``next_check_at``). A tick reloads config.toml if it changed (a broken edit
is reported and the last good config stays in force), fetches the due
sources and publishes when something changed.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import hashlib
import logging
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from aggregator.config import Config, load_config
from aggregator.errors import AggregatorError, ConfigError
from aggregator.pipeline import Aggregator
from aggregator.server import FeedServer
from aggregator.store import Store

log = logging.getLogger("aggregator.daemon")

#: A stop signal must end the process well within 10 s: 6 s for the running
#: pass to finish its current transaction, the rest for closing down.
STOP_GRACE_SECONDS = 6.0
#: How long a tick goes on writing archive documents left over (each publish
#: spends at most ARCHIVE_BUDGET_SECONDS on them); the next tick goes on.
ARCHIVE_SECONDS_PER_TICK = 10.0


class Daemon:
    """The long-running process: fetch on schedule, publish, serve."""

    def __init__(self, config: Config, *, serve: bool = True, fetch: bool = True,
                 publish: bool = True) -> None:
        self.config = config
        self.serve = serve
        self.fetch = fetch
        #: Publish when any worker sharing the store changed content.
        self.publish = publish
        self._published_generation = -1
        self._config_digest = _digest(config.path)
        self._stop = asyncio.Event()
        self._tick_task: asyncio.Task[None] | None = None
        self._needs_publish = True
        self.store: Store | None = None
        self.aggregator: Aggregator | None = None
        self.server: FeedServer | None = None

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        limit_malloc_arenas()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        self.store = Store(self.config.aggregator.database)
        self.aggregator = Aggregator(self.config, store=self.store)
        scheduler: AsyncIOScheduler | None = None
        try:
            if self.serve:
                self.server = FeedServer(self.config, self.store)
                await self.server.start()
            if self.fetch or self.publish:
                scheduler = AsyncIOScheduler(timezone=UTC)
                scheduler.add_job(
                    self._start_tick, "interval", seconds=self.config.fetch.tick_seconds,
                    next_run_time=datetime.now(UTC), max_instances=1, coalesce=True,
                    id="tick", misfire_grace_time=None,
                )
                scheduler.start()
            log.info("aggregator running with %s; stop with SIGTERM or Ctrl-C",
                     self.config.path)
            await self._stop.wait()
            log.info("stopping")
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            await self._finish_tick()
            if self.server is not None:
                await self.server.stop()
            await self.aggregator.aclose()
            self.store.close()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            log.info("stopped")

    async def _start_tick(self) -> None:
        # The tick runs as our own task, so shutdown can cancel and await it,
        # and a pass longer than the tick interval simply skips the next ticks.
        if self._tick_task is not None and not self._tick_task.done():
            return
        self._tick_task = asyncio.create_task(self.tick())

    async def _finish_tick(self) -> None:
        task = self._tick_task
        if task is None or task.done():
            return
        task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_GRACE_SECONDS)
        except (asyncio.CancelledError, TimeoutError):
            pass
        except Exception:
            log.exception("the last tick failed while stopping")

    async def tick(self) -> None:
        """Reload config if edited, fetch due sources, publish if anything changed."""
        assert self.aggregator is not None and self.store is not None
        try:
            self.reload_config()
            if self.fetch:
                await self.aggregator.fetch_pass()  # bumps the content generation
            if self.publish:
                generation = await asyncio.to_thread(self.store.content_generation)
                if self._needs_publish or generation != self._published_generation:
                    await asyncio.to_thread(self.aggregator.publish)
                    # Archive documents left over (a cold pass, an upgrade):
                    # more publishes, each short, for a while in every tick.
                    until = time.monotonic() + ARCHIVE_SECONDS_PER_TICK
                    while (self.aggregator.archives_pending and time.monotonic() < until
                           and not self.aggregator.publish_skipped):
                        await asyncio.to_thread(self.aggregator.publish)
                    # Skipped because another process was writing the directory:
                    # it may have read the store before the news; try next tick.
                    self._needs_publish = (self.aggregator.publish_skipped
                                           or self.aggregator.archives_pending)
                    self._published_generation = generation
                    if self.server is not None:
                        self.server.published()
        except asyncio.CancelledError:
            raise
        except AggregatorError as error:
            log.error("tick failed: %s", error)
        except Exception:
            # The daemon must outlive any one bad tick; the next tick retries.
            log.exception("tick failed unexpectedly")
        finally:
            self.store.release_idle_connections()
            return_freed_memory()

    def reload_config(self) -> bool:
        """Take an edited config.toml into use; keep the last good one if broken."""
        digest = _digest(self.config.path)
        if digest == self._config_digest:
            return False
        self._config_digest = digest
        try:
            new = load_config(self.config.path)
        except ConfigError as error:
            log.error("config.toml changed but is invalid, keeping the last good config: %s",
                      error)
            return False
        if new.aggregator.database != self.config.aggregator.database:
            log.warning("[aggregator] database changed: restart the daemon to use it")
        if new.server != self.config.server:
            log.warning("[server] changed: restart the daemon to listen on the new address")
        self.config = new
        assert self.aggregator is not None
        self.aggregator.reconfigure(new)
        if self.server is not None:
            self.server.reconfigure(new)
        self._needs_publish = True
        log.info("reloaded %s: %d sources, %d topics", new.path, len(new.sources),
                 len(new.topics))
        return True


def _glibc(name: str) -> Callable[..., int] | None:
    try:
        return getattr(ctypes.CDLL(None), name)  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return None


_mallopt = _glibc("mallopt")
_malloc_trim = _glibc("malloc_trim")
#: mallopt parameter: how many malloc arenas threads may create.
_M_ARENA_MAX = -8


def limit_malloc_arenas() -> None:
    """One malloc arena for all threads; call before the first thread starts.

    glibc gives threads arenas of their own (up to 8 per core), and memory
    freed in them mostly stays in RSS: with the database and publishing in
    worker threads that was about 12 MB of a 10,000-source daemon. The
    threads are mostly waiting on the GIL, so sharing one costs nothing.
    """
    if _mallopt is not None:
        _mallopt(_M_ARENA_MAX, 1)


def return_freed_memory() -> None:
    """Give the memory a tick freed back to the system, so RSS between passes is small.

    A pass over thousands of sources and a publish allocate and free tens of
    MB; glibc keeps freed heap for reuse, and RSS would stay at the peak.
    """
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
