"""Worker processes for parsing: a runaway feed stops itself, never the aggregator.

Parsing bytes that strangers control can take unbounded time (a pathological
document) or memory (an entity blow-up), or kill the interpreter (a crash in a
C extension). So every parse runs in a worker process of a :class:`ParserPool`:

* a pool has N *slots*, each with its own single worker process, handed out
  through a queue of idle slots; a parse waits for a free slot, and its time
  limit starts only once it has one;
* a parse that outlives ``timeout`` gets its worker SIGKILLed; the slot starts
  a fresh worker on its next use, and parses in other slots carry on;
* each worker caps its own address space (``RLIMIT_AS``), so an allocation past
  ``memory_limit`` fails there (MemoryError, or the process dies) and not in
  the server; it also caps its CPU time per parse (``RLIMIT_CPU``), which stops
  a parse even when this process is gone (killed with -9) and cannot kill it;
* workers run at a lower priority, so the scheduler and the web server in this
  process stay responsive while they work;
* workers start lazily and are reused: starting an interpreter costs ~1 s;
  a worker left idle for ``idle_timeout`` seconds is stopped, so that between
  fetch passes the pool holds no memory (each worker is ~70–150 MB).

Every failure of the machinery ends as :class:`ParseError` for the one feed
whose parse caused it. Workers are plain ``python -c`` children talking over a
socket pair (not multiprocessing): that way the parent's ``__main__`` is never
re-imported, the environment is set before the first import, and waiting for a
reply is a non-blocking socket read on whatever event loop is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aggregator.errors import AggregatorError, ParseError

__all__ = ["WORKER_NICENESS", "ParserPool"]

T = TypeVar("T")

#: How much lower than this process workers run (added to their nice value).
WORKER_NICENESS = 5
#: How long a new worker may take to start its interpreter and imports.
START_TIMEOUT = 30.0
#: A worker whose address space grew past this share of its limit retires after
#: its reply: the heap a big parse left behind would make the next, innocent
#: feed fail the memory limit.
RETIRE_AT = 0.5
#: A worker idle this long is stopped; the next parse starts a fresh one.
IDLE_TIMEOUT = 10.0
#: How long close() and aclose() wait for killed workers to be reaped.
_REAP_SECONDS = 1.0
#: Replies larger than this are unpickled off the event loop.
_BIG_REPLY = 1 << 20
_FRAME = struct.Struct("!Q")
_CHUNK = 1 << 18
#: Native maths libraries (OpenBLAS under numpy, which py3langid imports) start
#: a thread per core at import, each reserving address space: on a large host
#: that alone would exceed a worker's memory limit. A parse needs none of them.
_SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                    "MKL_NUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}


class Named:
    """A module-level function by its module and name, imported where it is called.

    Pickled as those two strings, so the process that sends work to the
    workers need not import what only the workers run (parsing, language
    detection and their libraries are tens of megabytes per process).
    """

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def __reduce__(self) -> tuple[type[Named], tuple[str, str]]:
        return Named, (self.module, self.name)

    def __call__(self, *args: Any) -> Any:
        return getattr(importlib.import_module(self.module), self.name)(*args)

    def __repr__(self) -> str:
        return f"Named({self.module!r}, {self.name!r})"


class ParserPool:
    """A pool of parser worker processes with time and memory bounds per parse.

    ``workers=None`` means one per CPU; ``workers=0`` runs parses in threads of
    this process instead (for fast tests: the timeout is reported but the
    thread cannot be stopped, and there is no memory limit). ``preload`` names
    modules each worker imports when it starts, so the first parse does not pay
    for them inside its time limit. A worker idle for ``idle_timeout`` seconds
    is stopped (None: kept until the pool closes).
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        timeout: float = 60.0,
        memory_limit: int = 1024 * 1024 * 1024,
        preload: Sequence[str] = (),
        idle_timeout: float | None = IDLE_TIMEOUT,
    ) -> None:
        count = (os.cpu_count() or 1) if workers is None else workers
        if count < 0:
            raise ValueError(f"workers must be 0 or more, not {count}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, not {idle_timeout}")
        if memory_limit <= 0:
            raise ValueError(f"memory_limit must be positive, not {memory_limit}")
        self.workers = count
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.preload = tuple(preload)
        self.idle_timeout = idle_timeout
        self._slots = [_Slot() for _ in range(count)]
        self._dying: list[subprocess.Popen[bytes]] = []
        self._idle: asyncio.Queue[_Slot] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._closed = False
        # Whatever happens to this object, no worker outlives the interpreter.
        self._finalizer = weakref.finalize(self, _kill_all, self._slots, self._dying)

    # ------------------------------------------------------------------ public

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Return ``func(*args)`` computed in a worker.

        ``func`` and ``args`` must pickle (``func`` a module-level function).
        Raises ParseError when the parse runs out of time or memory or its
        worker dies, and when ``func`` raises anything that is not already an
        AggregatorError (those are re-raised as they are).
        """
        if self._closed:
            raise ParseError("parsing stopped: the parser pool was shut down")
        if self.workers == 0:
            return await self._run_in_thread(func, args)
        self._reap_dying()
        idle = self._idle_slots()
        slot = await idle.get()
        slot.busy = True
        if slot.idle_timer is not None:
            slot.idle_timer.cancel()
            slot.idle_timer = None
        try:
            return await self._run_in_slot(slot, func, args)
        finally:
            slot.busy = False
            if self.idle_timeout is not None and slot.worker is not None:
                slot.idle_timer = asyncio.get_running_loop().call_later(
                    self.idle_timeout, self._stop_idle, slot)
            idle.put_nowait(slot)

    async def aclose(self) -> None:
        """Stop every worker at once, even one in the middle of a parse."""
        self._closed = True
        self._stop_all()
        deadline = time.monotonic() + _REAP_SECONDS
        while self._reap_dying() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        # Parses that were in flight see their worker gone and clean up.
        await asyncio.sleep(0)

    def close(self) -> None:
        """Like aclose, for code without a running event loop."""
        self._closed = True
        self._stop_all()
        deadline = time.monotonic() + _REAP_SECONDS
        while self._reap_dying() and time.monotonic() < deadline:
            time.sleep(0.01)

    # ------------------------------------------------------------------ slots

    def _idle_slots(self) -> asyncio.Queue[_Slot]:
        loop = asyncio.get_running_loop()
        if self._idle is None or self._loop is not loop:
            # An asyncio queue belongs to one loop; a CLI may run several loops
            # one after the other. A slot still busy on a loop that is gone
            # holds a reply nobody will read: its worker is of no further use.
            self._loop = loop
            self._idle = asyncio.Queue()
            for slot in self._slots:
                if slot.busy:
                    self._retire(slot)
                    slot.busy = False
                self._idle.put_nowait(slot)
        return self._idle

    async def _run_in_slot(self, slot: _Slot, func: Callable[..., T], args: tuple[Any, ...]) -> T:
        request = pickle.dumps((func, args), protocol=pickle.HIGHEST_PROTOCOL)
        worker = await self._ready_worker(slot)
        loop = asyncio.get_running_loop()
        healthy = False
        try:
            try:
                async with asyncio.timeout(self.timeout):
                    await loop.sock_sendall(worker.channel, _FRAME.pack(len(request)) + request)
                    del request
                    reply = await _receive(loop, worker.channel)
            except TimeoutError:
                raise ParseError(self._timeout_message()) from None
            except OSError:
                reply = None  # the worker went away while we were writing
            if reply is None:
                raise await self._death_error(worker)
            try:
                if len(reply) > _BIG_REPLY:
                    outcome = await asyncio.to_thread(pickle.loads, reply)
                else:
                    outcome = pickle.loads(reply)
            except Exception as error:  # e.g. an exception class that cannot be rebuilt
                raise ParseError(f"parsing failed: the parser's answer could not be read "
                                 f"({type(error).__name__}: {error})") from error
            kind, value, detail, retiring = outcome
            healthy = kind != "memory" and not retiring
            return self._result(kind, value, detail)
        finally:
            # A worker that timed out, died, hit its memory limit or was
            # cancelled mid-parse (its reply would reach the next feed) is
            # replaced; the slot starts a fresh one on its next use.
            if not healthy:
                self._retire(slot)

    async def _ready_worker(self, slot: _Slot) -> _Worker:
        worker = slot.worker
        if worker is not None and worker.process.poll() is None:
            return worker
        self._retire(slot)
        try:
            worker = _start_worker(self.memory_limit, self.timeout, self.preload)
        except OSError as error:  # out of processes or file descriptors
            raise ParseError(f"the parser process could not start: {error}") from error
        slot.worker = worker
        started = False
        try:
            try:
                async with asyncio.timeout(START_TIMEOUT):
                    greeting = await _receive(asyncio.get_running_loop(), worker.channel)
            except TimeoutError:
                greeting = None
            if greeting is None:
                raise ParseError(f"the parser process did not start within {START_TIMEOUT:g} s")
            kind, detail = pickle.loads(greeting)
            if kind != "ready":
                raise ParseError(f"the parser process could not start: {detail}")
            started = True
            return worker
        finally:
            if not started:
                self._retire(slot)

    def _stop_idle(self, slot: _Slot) -> None:
        """A worker nobody needed for ``idle_timeout`` goes; its memory with it."""
        slot.idle_timer = None
        if not slot.busy:
            self._retire(slot)
            # Collect its exit status soon, rather than at the next parse.
            asyncio.get_running_loop().call_later(_REAP_SECONDS, self._reap_dying)

    def _retire(self, slot: _Slot) -> None:
        worker, slot.worker = slot.worker, None
        if worker is not None:
            _kill(worker.process)
            worker.channel.close()
            self._dying.append(worker.process)

    def _stop_all(self) -> None:
        for slot in self._slots:
            if slot.busy and slot.worker is not None:
                # Its run() is waiting on the socket: kill the process and let
                # run() see the end of the stream and close the socket itself.
                _kill(slot.worker.process)
                self._dying.append(slot.worker.process)
            else:
                self._retire(slot)
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None

    def _reap_dying(self) -> list[subprocess.Popen[bytes]]:
        """Collect the exit status of killed workers; return those still alive."""
        self._dying[:] = [process for process in self._dying if process.poll() is None]
        return self._dying

    # ------------------------------------------------------------------ outcomes

    async def _death_error(self, worker: _Worker) -> ParseError:
        """Why a worker stopped answering, once its exit status is known."""
        deadline = time.monotonic() + _REAP_SECONDS
        while worker.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        code = worker.process.returncode
        if self._closed:
            return ParseError("parsing stopped: the parser pool was shut down")
        if code == -signal.SIGXCPU:
            return ParseError(self._timeout_message())
        if code == -signal.SIGKILL:
            # Not our kill (we do not read a reply after killing): the kernel's
            # out-of-memory killer, in practice.
            return ParseError(self._memory_message())
        if code is not None and code < 0:
            how = f"signal {signal.Signals(-code).name}" if -code in _SIGNALS else f"signal {-code}"
        else:
            how = f"exit code {code}"
        return ParseError(f"the parser process crashed on this feed ({how})")

    def _result(self, kind: str, value: Any, detail: str | None) -> Any:
        if kind == "ok":
            return value
        if kind == "memory":
            raise ParseError(self._memory_message())
        error = value if isinstance(value, BaseException) else None
        if isinstance(error, AggregatorError):
            raise error  # a deliberate verdict on the feed; its message says it all
        message = f"{type(error).__name__}: {error}" if error is not None else detail
        failure = ParseError(f"parsing failed: {message}")
        if error is not None and detail:
            failure.add_note(f"in the parser process:\n{detail}")
        raise failure from error

    async def _run_in_thread(self, func: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="parse")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                return await loop.run_in_executor(self._threads, functools.partial(func, *args))
        except TimeoutError:
            raise ParseError(self._timeout_message()) from None
        except AggregatorError:
            raise
        except MemoryError:
            raise ParseError(self._memory_message()) from None
        except Exception as error:
            raise ParseError(f"parsing failed: {type(error).__name__}: {error}") from error

    def _timeout_message(self) -> str:
        return f"parsing took longer than {self.timeout:g} s, stopped"

    def _memory_message(self) -> str:
        return f"parsing needed more than {_size(self.memory_limit)} of memory, stopped"


class _Slot:
    """One place in the pool: at most one worker process, at most one parse."""

    __slots__ = ("busy", "idle_timer", "worker")

    def __init__(self) -> None:
        self.worker: _Worker | None = None
        self.busy = False
        self.idle_timer: asyncio.TimerHandle | None = None


class _Worker:
    __slots__ = ("channel", "process")

    def __init__(self, process: subprocess.Popen[bytes], channel: socket.socket) -> None:
        self.process = process
        self.channel = channel


_SIGNALS = frozenset(s.value for s in signal.Signals)


def _size(limit: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= scale:
            return f"{limit / scale:.3g} {unit}"
    return f"{limit} bytes"


def _start_worker(memory_limit: int, timeout: float, preload: Sequence[str]) -> _Worker:
    ours, theirs = socket.socketpair()
    # The worker sees the modules this process sees (a test module, a source
    # tree), so functions pickled by reference import there too.
    code = (f"import sys; sys.path[:] = {sys.path!r}; "
            "from aggregator.parser_pool import serve; serve()")
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(theirs.fileno()), str(memory_limit),
             repr(timeout), ",".join(preload)],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
            # stdout belongs to the CLI's output; stray prints go nowhere.
            stdout=subprocess.DEVNULL,
            env={**os.environ, **_SINGLE_THREADED},
            # A Ctrl-C in the terminal is for this process, which stops the
            # workers itself; a worker must not die of it mid-reply.
            start_new_session=True,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    ours.setblocking(False)
    return _Worker(process, ours)


async def _receive(loop: asyncio.AbstractEventLoop, channel: socket.socket) -> bytearray | None:
    """One length-prefixed frame, or None at the end of the stream."""
    header = await _receive_exactly(loop, channel, _FRAME.size)
    if header is None:
        return None
    return await _receive_exactly(loop, channel, _FRAME.unpack(header)[0])


async def _receive_exactly(loop: asyncio.AbstractEventLoop, channel: socket.socket,
                           size: int) -> bytearray | None:
    buffer = bytearray(size)
    view = memoryview(buffer)
    filled = 0
    while filled < size:
        try:
            count = await loop.sock_recv_into(channel, view[filled:filled + _CHUNK])
        except OSError:
            return None
        if count == 0:
            return None
        filled += count
    return buffer


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        if process.poll() is None:
            process.kill()


def _kill_all(slots: list[_Slot], dying: list[subprocess.Popen[bytes]]) -> None:
    for slot in slots:
        if slot.worker is not None:
            _kill(slot.worker.process)
            dying.append(slot.worker.process)
    deadline = time.monotonic() + _REAP_SECONDS
    for process in dying:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.0, deadline - time.monotonic()))


# --------------------------------------------------------------------------- the worker side


def serve() -> None:
    """A worker's main loop: run requests from the socket until it closes.

    Started as ``python -c`` by :func:`_start_worker`, with the socket's file
    descriptor, the memory limit, the per-parse timeout and modules to preload
    as arguments.
    """
    import resource

    fd, memory_limit, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    preload = [name for name in sys.argv[4].split(",") if name]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(WORKER_NICENESS)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = memory_limit if hard == resource.RLIM_INFINITY else min(memory_limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    with socket.socket(fileno=fd) as channel:
        try:
            for name in preload:
                importlib.import_module(name)
        except BaseException as error:
            _send(channel, pickle.dumps(("failed", f"{type(error).__name__}: {error}")))
            return
        _send(channel, pickle.dumps(("ready", os.getpid())))
        while True:
            request = _read(channel)
            if request is None:
                return  # the pool closed the socket, or its process is gone
            reply, retiring = _handle(request, timeout, soft)
            del request
            _send(channel, reply)
            if retiring:
                return


def _handle(request: bytearray, timeout: float, memory_limit: int) -> tuple[bytes, bool]:
    """Run one request; return the pickled reply and whether to stop afterwards."""
    _limit_cpu(timeout)
    memory = pickle.dumps(("memory", None, None, True))
    outcome: tuple[str, Any, str | None]
    try:
        func, args = pickle.loads(request)
        outcome = ("ok", func(*args), None)
    except BaseException as error:
        if _caused_by_memory(error):
            return memory, True
        outcome = ("error", error, "".join(traceback.format_exception(error)))
    retiring = _address_space() > memory_limit * RETIRE_AT
    try:
        return pickle.dumps((*outcome, retiring), protocol=pickle.HIGHEST_PROTOCOL), retiring
    except MemoryError:
        return memory, True
    except Exception as error:  # an unpicklable result or exception
        detail = outcome[2] or ""
        described = f"{outcome[0]} could not be sent back ({type(error).__name__}: {error})"
        return pickle.dumps(("error", None, f"{described}\n{detail}", retiring)), retiring


def _limit_cpu(timeout: float) -> None:
    """Let this parse use ``timeout`` seconds of CPU (and a margin), no more.

    The pool kills a worker at the timeout by the wall clock; this is the
    backstop when the pool's process is gone and nobody is left to do it: the
    kernel sends SIGXCPU, which ends the process.
    """
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + timeout) + 5
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _caused_by_memory(error: BaseException) -> bool:
    # Parsers wrap what they catch (ParseError("could not read the feed:
    # MemoryError")): the cause is what tells a memory limit from a bad feed.
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, MemoryError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _address_space() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _read(channel: socket.socket) -> bytearray | None:
    header = _read_exactly(channel, _FRAME.size)
    return None if header is None else _read_exactly(channel, _FRAME.unpack(header)[0])


def _read_exactly(channel: socket.socket, size: int) -> bytearray | None:
    buffer = bytearray(size)
    view = memoryview(buffer)
    filled = 0
    while filled < size:
        count = channel.recv_into(view[filled:], min(size - filled, _CHUNK))
        if count == 0:
            return None
        filled += count
    return buffer


def _send(channel: socket.socket, payload: bytes) -> None:
    channel.sendall(_FRAME.pack(len(payload)))
    channel.sendall(payload)
