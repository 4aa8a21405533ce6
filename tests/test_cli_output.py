"""What `aggregator fetch` prints after a pass, with a few sources and with thousands."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator import cli
from aggregator.pipeline import PassReport, SourceOutcome
from aggregator.store import IngestReport


def outcome(name: str, result: str, *, posts: int = 0, comments: int = 0,
            error: str | None = None) -> SourceOutcome:
    return SourceOutcome(name=name, result=result, http_status=200 if not error else 503,
                         report=IngestReport(new_posts=posts, new_comments=comments),
                         error=error)


def test_a_small_pass_lists_every_source_with_news_and_sums_it_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = PassReport(outcomes=[
        outcome("Frankwatching", "updated", posts=3, comments=2),
        outcome("Marketingfacts", "error", error="503 Service Unavailable"),
        outcome("Upstream", "unchanged"),
    ])
    cli._print_pass(report)
    out = capsys.readouterr().out
    assert "Frankwatching" in out and "Marketingfacts" in out
    assert "503 Service Unavailable" in out
    assert "Upstream" not in out  # nothing new: counted, not listed
    assert "In all: 3 new post(s), 2 new comment(s)" in out
    assert "1 source(s) failed" in out
    assert "1 source(s) unchanged since the last fetch." in out
    assert "not listed" not in out


def test_a_large_pass_lists_every_error_and_counts_the_rest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    news = [outcome(f"Blog {i:04d}", "updated", posts=2, comments=1) for i in range(1000)]
    errors = [outcome(f"Broken {i:02d}", "error", error=f"timeout {i}")
              for i in range(cli.FETCH_TABLE_ROWS + 5)]
    cli._print_pass(PassReport(outcomes=news + errors))
    out = capsys.readouterr().out
    # Every failure has its row, even past the cap; no news row fits.
    for i in range(cli.FETCH_TABLE_ROWS + 5):
        assert f"timeout {i}" in out
    assert "Blog 0000" not in out
    assert "1000 more source(s) with news are not listed" in out
    assert "In all: 2000 new post(s), 1000 new comment(s)" in out
    assert f"{cli.FETCH_TABLE_ROWS + 5} source(s) failed" in out


def test_news_fills_the_rows_the_errors_leave(capsys: pytest.CaptureFixture[str]) -> None:
    news = [outcome(f"Blog {i:04d}", "updated", posts=1) for i in range(200)]
    cli._print_pass(PassReport(outcomes=[*news, outcome("Broken", "error", error="refused")]))
    out = capsys.readouterr().out
    listed = [i for i in range(200) if f"Blog {i:04d}" in out]
    assert len(listed) == cli.FETCH_TABLE_ROWS - 1
    assert "refused" in out
    assert f"{200 - (cli.FETCH_TABLE_ROWS - 1)} more source(s) with news are not listed" in out


def _program(prelude: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``aggregator`` as the installed program does, after *prelude*, in a new process."""
    code = (f"import atexit, sys, threading, time\n{prelude}\n"
            f"sys.argv = ['aggregator', *{list(args)!r}]\n"
            "from aggregator.cli import program\nprogram()\n")
    # Buffered, as a pipe is by default: what is not flushed at the exit is lost.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False, env=env)


def test_the_program_runs_exit_handlers_and_flushes_before_its_quick_exit() -> None:
    # Written without a flush: only the flush at the exit gets it out of the pipe's buffer.
    done = _program("atexit.register(lambda: sys.stdout.write('handlers ran\\n'))", "--version")
    assert done.returncode == 0, done.stderr
    assert "aggregator" in done.stdout and done.stdout.rstrip().endswith("handlers ran")


def test_the_program_keeps_a_failing_command_s_exit_status(tmp_path: Path) -> None:
    done = _program("", "--config", str(tmp_path / "missing.toml"), "status")
    assert done.returncode == 2
    assert "config file not found" in done.stderr


def test_the_program_waits_for_a_thread_still_at_work() -> None:
    prelude = ("def late():\n    time.sleep(0.3)\n    sys.stdout.write('thread done\\n')\n"
               "threading.Thread(target=late).start()")
    done = _program(prelude, "--version")
    assert done.returncode == 0, done.stderr
    assert "thread done" in done.stdout


def test_python_dash_m_and_the_console_script_both_run_the_program() -> None:
    import tomllib

    project = Path(__file__).resolve().parents[1]
    scripts = tomllib.loads((project / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["aggregator"] == "aggregator.cli:program"
    assert "program()" in (project / "aggregator" / "__main__.py").read_text()
    done = subprocess.run([sys.executable, "-m", "aggregator", "--version"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0 and "aggregator" in done.stdout


def test_publishing_does_not_load_the_http_client_or_the_tables(tmp_path: Path) -> None:
    # A cron `aggregator publish` at 10,000 sources must stay under a second;
    # httpx and httpcore were a tenth of its imports, rich another twentieth.
    config = tmp_path / "config.toml"
    config.write_text('[aggregator]\ntitle = "T"\n', encoding="utf-8")
    prelude = ("atexit.register(lambda: sys.stdout.write("
               "'loaded: ' + ' '.join(m for m in ('httpx', 'httpcore', 'rich') "
               "if m in sys.modules) + '|\\n'))")
    done = _program(prelude, "--config", str(config), "publish")
    assert done.returncode == 0, done.stderr
    assert "loaded: |" in done.stdout


def test_publish_runs_without_the_cycle_collector_and_turns_it_back_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from aggregator.pipeline import Aggregator

    config = tmp_path / "config.toml"
    config.write_text('[aggregator]\ntitle = "T"\n', encoding="utf-8")
    collecting: list[bool] = []
    publish = Aggregator.publish

    def watched(self: Aggregator) -> list[Path]:
        collecting.append(gc.isenabled())
        return publish(self)

    monkeypatch.setattr(Aggregator, "publish", watched)
    monkeypatch.setattr(sys, "argv", ["aggregator", "--config", str(config), "publish"])
    assert gc.isenabled()
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 0
    assert "Published" in capsys.readouterr().out
    # Off while it worked; on again for whatever runs next in this process.
    assert collecting == [False]
    assert gc.isenabled()
