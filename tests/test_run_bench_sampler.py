"""bench/run_bench.py's process sampler: what it reports of a run's threads.

The speed benchmark prints how long the aggregator's busiest threads ran and
waited for a CPU (from /proc/…/schedstat). These tests check that instrument
on a real subprocess whose threads do known amounts of work, not the figures.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

needs_schedstat = pytest.mark.skipif(
    not Path("/proc/self/schedstat").exists(),
    reason="the sampler reads Linux's /proc/PID/schedstat, which this kernel lacks",
)


def _run_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_bench", BENCH / "run_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_bench"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@needs_schedstat
def test_schedstat_reads_time_on_a_cpu_and_time_waiting():
    run_bench = _run_bench()
    on_cpu, waiting = run_bench._schedstat("/proc/self/schedstat")
    assert on_cpu > 0.0  # this test process has run
    assert waiting >= 0.0


@needs_schedstat
def test_measure_reports_the_busiest_thread_and_the_child_processes():
    run_bench = _run_bench()
    # A main process with one thread that spins for about 0.8 s while the
    # main thread sleeps, and two child processes that spin for about 0.5 s
    # and 0.2 s.
    program = textwrap.dedent("""
        import subprocess, sys, threading, time

        def spin(seconds):
            end = time.thread_time() + seconds
            while time.thread_time() < end:
                pass
            time.sleep(0.3)  # for the sampler to see the whole spin

        children = [subprocess.Popen([sys.executable, "-c",
            f"import time\\nend = time.thread_time() + {seconds}\\n"
            "while time.thread_time() < end: pass\\ntime.sleep(0.3)"])
            for seconds in (0.5, 0.2)]
        worker = threading.Thread(target=spin, args=(0.8,))
        worker.start()
        worker.join()
        for child in children:
            child.wait()
    """)
    result = run_bench.measure("spin", [sys.executable, "-c", program])
    assert result.returncode == 0, result.stderr
    busiest_on_cpu, _ = result.root_threads[0]
    assert 0.7 <= busiest_on_cpu < 2.0
    assert all(on >= 0 and waiting >= 0 for on, waiting in result.root_threads)
    # Busiest first: the child that spun longer, then the other.
    assert len(result.other_processes) == 2
    (longer, _), (shorter, _) = result.other_processes
    assert 0.35 <= longer < 1.5
    assert 0.1 <= shorter < longer
    line = run_bench.scheduling(result)
    assert line.startswith("main process threads ")
    assert "; other processes " in line
    assert f"{busiest_on_cpu:.1f} + " in line


def test_a_named_corpus_made_with_other_arguments_is_kept_and_the_run_stops(tmp_path):
    run_bench = _run_bench()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    arguments = {"feeds": 1000, "posts": 25000, "seed": 1, "comment_share": 0.1,
                 "markup": "real", "comment_feeds": "commented", "version": 5}
    manifest = corpus / "manifest.json"
    manifest.write_text(json.dumps({"corpus": {"arguments": arguments}}), encoding="utf-8")
    with pytest.raises(SystemExit) as stopped:
        run_bench.ensure_corpus(corpus, 100, 2500, 1, replace=False)
    message = str(stopped.value)
    assert "feeds 1000 (asked: 100)" in message and "posts 25000 (asked: 2500)" in message
    assert "seed" not in message  # only what differs is named
    assert json.loads(manifest.read_text(encoding="utf-8"))["corpus"]["arguments"] == arguments
