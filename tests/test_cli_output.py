"""What `aggregator fetch` prints after a pass, with a few sources and with thousands."""

from __future__ import annotations

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
