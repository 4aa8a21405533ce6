"""Tests for aggregator.parser_pool: time, memory and crash bounds per parse.

The functions the workers run are defined at module level here, since a worker
imports them by name. Each test starts real worker processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aggregator.errors import FetchError, ParseError
from aggregator.parser_pool import WORKER_NICENESS, ParserPool

GiB = 1024 * 1024 * 1024

# --------------------------------------------------------------------------- worker functions


def add(a: int, b: int) -> int:
    return a + b


def worker_pid() -> int:
    return os.getpid()


def slow_echo(value: str, seconds: float) -> str:
    time.sleep(seconds)
    return value


def sleep_forever(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    while True:
        time.sleep(1)


def spin_forever(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    while True:
        pass


def allocate(size: int) -> int:
    return len(bytearray(size))


_kept: list[bytearray] = []


def allocate_and_keep(size: int) -> int:
    _kept.append(bytearray(size))
    return os.getpid()


def allocate_wrapped(size: int) -> int:
    # What parse_feed does with any exception: a memory error in disguise.
    try:
        return len(bytearray(size))
    except Exception as error:
        raise ParseError(f"could not read the feed: {type(error).__name__}") from error


def exit_abruptly() -> None:
    os._exit(1)


def killed_by_signal(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(5)


def refuse(message: str) -> None:
    raise ParseError(message)


def refuse_fetch(message: str) -> None:
    raise FetchError(message, status=418)


def fail_unexpectedly() -> None:
    raise KeyError("no such field")


def limits_and_niceness() -> tuple[str, int]:
    return Path("/proc/self/limits").read_text(), os.getpriority(os.PRIO_PROCESS, 0)


def unpicklable_result() -> Any:
    return lambda: None


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def pid_file(tmp_path: Path) -> Path:
    return tmp_path / "pid"


@pytest.fixture
def pool() -> Iterator[ParserPool]:
    pool = ParserPool(2, timeout=1.5)
    try:
        yield pool
    finally:
        pool.close()


def alive(pid: int) -> bool:
    """Whether *pid* runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def our_workers() -> list[int]:
    """Child processes of this process that run a parser worker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == os.getpid() and b"aggregator.parser_pool" in command:
            found.append(int(entry.name))
    return found


async def wait_for_pid(pid_file: Path) -> int:
    for _ in range(500):
        if pid_file.exists() and pid_file.read_text():
            return int(pid_file.read_text())
        await asyncio.sleep(0.01)
    raise AssertionError("the worker never started the function")


# --------------------------------------------------------------------------- results


def test_results_and_errors_come_back_with_their_message(pool: ParserPool) -> None:
    async def scenario() -> None:
        assert await pool.run(add, 2, 3) == 5
        with pytest.raises(ParseError, match=r"^not a feed: odd$"):
            await pool.run(refuse, "not a feed: odd")
        # Any other project error passes through as it is, attributes included.
        with pytest.raises(FetchError, match="teapot") as fetch_error:
            await pool.run(refuse_fetch, "teapot")
        assert fetch_error.value.status == 418
        with pytest.raises(ParseError, match=r"parsing failed: KeyError: 'no such field'") as info:
            await pool.run(fail_unexpectedly)
        assert isinstance(info.value.__cause__, KeyError)
        with pytest.raises(ParseError, match="could not be sent back"):
            await pool.run(unpicklable_result)
        # None of that cost a worker.
        assert await pool.run(add, 1, 1) == 2

    asyncio.run(scenario())


def test_workers_are_reused_not_started_per_parse() -> None:
    pool = ParserPool(1, timeout=5)
    try:
        async def scenario() -> set[int]:
            return {await pool.run(worker_pid) for _ in range(5)}

        pids = asyncio.run(scenario())
        assert len(pids) == 1
        assert pids != {os.getpid()}
    finally:
        pool.close()


def test_an_idle_worker_is_stopped_and_a_new_one_started_when_needed() -> None:
    pool = ParserPool(1, timeout=5, idle_timeout=0.3)
    try:
        async def scenario() -> None:
            first = await pool.run(worker_pid)
            # A parse longer than the idle timeout keeps its worker.
            assert await pool.run(slow_echo, "busy", 0.6) == "busy"
            assert await pool.run(worker_pid) == first
            await asyncio.sleep(0.3 + 1.5)  # idle, then reaped
            assert not alive(first)
            assert our_workers() == []
            second = await pool.run(worker_pid)
            assert second != first and alive(second)

        asyncio.run(scenario())
    finally:
        pool.close()


def test_workers_run_with_memory_cpu_and_priority_limits() -> None:
    pool = ParserPool(1, timeout=7, memory_limit=512 * 1024 * 1024)
    try:
        limits, niceness = asyncio.run(pool.run(limits_and_niceness))
    finally:
        pool.close()
    address_space = next(line for line in limits.splitlines() if "address space" in line)
    assert address_space.split()[3] == str(512 * 1024 * 1024)
    cpu = next(line for line in limits.splitlines() if "cpu time" in line)
    # The parse's own allowance (timeout plus a margin), on top of what the
    # worker used to start.
    assert 7 < int(cpu.split()[3]) < 7 + 15
    assert niceness >= os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICENESS or niceness == 19


# --------------------------------------------------------------------------- time


def test_a_runaway_parse_is_stopped_while_another_slot_carries_on(
    pool: ParserPool, pid_file: Path,
) -> None:
    async def scenario() -> None:
        started = time.monotonic()
        stuck = asyncio.ensure_future(pool.run(sleep_forever, str(pid_file)))
        normal = asyncio.ensure_future(pool.run(slow_echo, "fine", 0.5))
        assert await normal == "fine"
        assert not stuck.done()  # the runaway did not hold up the other slot
        with pytest.raises(ParseError, match=r"^parsing took longer than 1\.5 s, stopped$"):
            await stuck
        assert 1.4 < time.monotonic() - started < 3.5
        stuck_pid = int(pid_file.read_text())
        # Its worker is killed and its slot works again with a fresh one.
        assert await pool.run(add, 20, 22) == 42
        assert stuck_pid not in {await pool.run(worker_pid) for _ in range(4)}
        for _ in range(100):
            if not alive(stuck_pid):
                break
            await asyncio.sleep(0.01)
        assert not alive(stuck_pid)

    asyncio.run(scenario())


def test_a_busy_loop_is_stopped_too(pool: ParserPool, pid_file: Path) -> None:
    async def scenario() -> None:
        with pytest.raises(ParseError, match=r"longer than 1\.5 s"):
            await pool.run(spin_forever, str(pid_file))
        assert await pool.run(add, 1, 2) == 3

    asyncio.run(scenario())


def test_the_loop_stays_responsive_while_a_worker_is_stuck(
    pool: ParserPool, pid_file: Path,
) -> None:
    async def scenario() -> float:
        stuck = asyncio.ensure_future(pool.run(spin_forever, str(pid_file)))
        await wait_for_pid(pid_file)
        worst = 0.0
        while not stuck.done():
            before = time.monotonic()
            await asyncio.sleep(0.01)
            worst = max(worst, time.monotonic() - before)
        with pytest.raises(ParseError):
            stuck.result()
        return worst

    assert asyncio.run(scenario()) < 0.3


def test_a_cancelled_parse_does_not_hand_its_reply_to_the_next_feed() -> None:
    pool = ParserPool(1, timeout=5)
    try:
        async def scenario() -> None:
            assert await pool.run(add, 0, 0) == 0  # the worker is up
            late = asyncio.ensure_future(pool.run(slow_echo, "stale", 0.5))
            await asyncio.sleep(0.2)
            late.cancel()
            with pytest.raises(asyncio.CancelledError):
                await late
            assert await pool.run(slow_echo, "fresh", 0.6) == "fresh"

        asyncio.run(scenario())
    finally:
        pool.close()


# --------------------------------------------------------------------------- memory and crashes


@pytest.mark.parametrize("function", [allocate, allocate_wrapped])
def test_a_parse_past_the_memory_limit_is_stopped_and_the_pool_goes_on(function: Any) -> None:
    pool = ParserPool(1, timeout=10)
    try:
        async def scenario() -> None:
            with pytest.raises(ParseError,
                               match=r"^parsing needed more than 1 GiB of memory, stopped$"):
                await pool.run(function, 4 * GiB)
            assert await pool.run(allocate, 100 * 1024 * 1024) == 100 * 1024 * 1024

        asyncio.run(scenario())
    finally:
        pool.close()


def test_a_worker_left_with_a_large_heap_is_replaced() -> None:
    pool = ParserPool(1, timeout=10, memory_limit=GiB)
    try:
        async def scenario() -> None:
            bloated = await pool.run(allocate_and_keep, 700 * 1024 * 1024)
            # The next feed gets a worker with its whole allowance.
            assert await pool.run(worker_pid) != bloated
            assert await pool.run(allocate, 700 * 1024 * 1024) == 700 * 1024 * 1024

        asyncio.run(scenario())
    finally:
        pool.close()


def test_a_crashing_worker_fails_only_its_own_parse(pool: ParserPool) -> None:
    async def scenario() -> None:
        crash = asyncio.ensure_future(pool.run(exit_abruptly))
        other = asyncio.ensure_future(pool.run(slow_echo, "unaffected", 0.3))
        with pytest.raises(ParseError, match=r"crashed on this feed \(exit code 1\)"):
            await crash
        assert await other == "unaffected"
        with pytest.raises(ParseError, match=r"crashed on this feed \(signal SIGSEGV\)"):
            await pool.run(killed_by_signal, signal.SIGSEGV)
        # A SIGKILL we did not send is the kernel's out-of-memory killer.
        with pytest.raises(ParseError, match="more than 1 GiB of memory"):
            await pool.run(killed_by_signal, signal.SIGKILL)
        assert await pool.run(add, 3, 4) == 7

    asyncio.run(scenario())


# --------------------------------------------------------------------------- shutdown


def test_aclose_stops_a_stuck_worker_promptly_and_leaves_no_child(
    pid_file: Path, tmp_path: Path,
) -> None:
    pool = ParserPool(2, timeout=60)

    async def scenario() -> float:
        stuck = asyncio.ensure_future(pool.run(spin_forever, str(pid_file)))
        idle_pid = await pool.run(worker_pid)
        stuck_pid = await wait_for_pid(pid_file)
        assert {stuck_pid, idle_pid} <= set(our_workers())
        started = time.monotonic()
        await pool.aclose()
        took = time.monotonic() - started
        with pytest.raises(ParseError, match="shut down"):
            await stuck
        with pytest.raises(ParseError, match="shut down"):
            await pool.run(add, 1, 1)
        assert not alive(stuck_pid)
        assert not alive(idle_pid)
        return took

    assert asyncio.run(scenario()) < 2
    assert our_workers() == []


def test_close_without_a_loop_stops_workers(pid_file: Path) -> None:
    pool = ParserPool(1, timeout=60)
    pid = asyncio.run(pool.run(worker_pid))
    assert alive(pid)
    started = time.monotonic()
    pool.close()
    assert time.monotonic() - started < 2
    assert not alive(pid)
    assert our_workers() == []


def test_one_pool_serves_successive_event_loops() -> None:
    pool = ParserPool(1, timeout=5)
    try:
        assert asyncio.run(pool.run(add, 1, 2)) == 3
        assert asyncio.run(pool.run(add, 3, 4)) == 7
    finally:
        pool.close()


def test_a_module_that_cannot_be_preloaded_fails_the_parse_not_the_caller() -> None:
    pool = ParserPool(1, timeout=5, preload=("aggregator.no_such_module",))
    try:
        with pytest.raises(ParseError, match="could not start: ModuleNotFoundError"):
            asyncio.run(pool.run(add, 1, 2))
    finally:
        pool.close()


# --------------------------------------------------------------------------- thread mode


def test_thread_mode_runs_in_this_process_with_the_same_errors() -> None:
    pool = ParserPool(0, timeout=0.5)

    async def scenario() -> None:
        assert await pool.run(worker_pid) == os.getpid()
        with pytest.raises(ParseError, match=r"^boom$"):
            await pool.run(refuse, "boom")
        with pytest.raises(ParseError, match="parsing failed: KeyError"):
            await pool.run(fail_unexpectedly)
        with pytest.raises(ParseError, match=r"longer than 0\.5 s"):
            await pool.run(slow_echo, "late", 1.0)
        await pool.aclose()

    asyncio.run(scenario())


class NeedsTwoArguments(Exception):
    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} {second}")


def raise_unrebuildable() -> None:
    raise NeedsTwoArguments("one", "two")


def test_an_answer_that_cannot_be_unpickled_is_a_parse_error(pool: ParserPool) -> None:
    async def scenario() -> None:
        with pytest.raises(ParseError, match="answer could not be read"):
            await pool.run(raise_unrebuildable)
        assert await pool.run(add, 5, 5) == 10

    asyncio.run(scenario())
