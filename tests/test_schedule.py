"""When to fetch next and how healthy a source is: plain data in, plain data out."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.schedule import FAILING_AFTER, health, next_check_at

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def wait(outcome: str = "ok", *, jitter: float = 0.0, error_count: int = 0,
         seed: int = 1, **floors: float | int | None) -> timedelta | None:
    when = next_check_at(
        now=NOW, interval=HOUR, jitter=jitter, rng=random.Random(seed),
        outcome=outcome, error_count=error_count, **floors,  # type: ignore[arg-type]
    )
    return None if when is None else when - NOW


@pytest.mark.parametrize(
    ("outcome", "floors", "expected"),
    [
        ("ok", {}, HOUR),
        ("not_modified", {}, HOUR),
        # Server hints are floors, never shorteners.
        ("ok", {"retry_after": 60.0}, HOUR),
        ("ok", {"retry_after": 7200.0}, 2 * HOUR),
        ("ok", {"fresh_for": 3 * 3600.0}, 3 * HOUR),
        ("not_modified", {"ttl_minutes": 180}, 3 * HOUR),
        ("ok", {"retry_after": 7200.0, "fresh_for": 600.0, "ttl_minutes": 240}, 4 * HOUR),
        # …capped at 7 days, so a source is never silenced for good.
        ("ok", {"fresh_for": 365 * 86400.0}, timedelta(days=7)),
        ("ok", {"ttl_minutes": 10**9}, timedelta(days=7)),
        ("ok", {"retry_after": float("inf")}, timedelta(days=7)),
        # Nonsense from a server is ignored.
        ("ok", {"retry_after": -500.0, "fresh_for": float("nan")}, HOUR),
        ("gone", {}, None),
        ("gone", {"retry_after": 60.0}, None),
    ],
)
def test_after_a_fetch(outcome: str, floors: dict[str, float], expected: timedelta | None) -> None:
    assert wait(outcome, **floors) == expected


@pytest.mark.parametrize(
    ("error_count", "expected"),
    [
        (1, timedelta(minutes=15)),
        (2, timedelta(minutes=30)),
        (3, timedelta(hours=1)),
        (5, timedelta(hours=4)),
        (7, timedelta(hours=16)),
        (8, timedelta(hours=24)),
        (50, timedelta(hours=24)),
        (10**9, timedelta(hours=24)),
        (0, timedelta(minutes=15)),
    ],
)
def test_error_backoff_doubles_up_to_a_day(error_count: int, expected: timedelta) -> None:
    assert wait("error", error_count=error_count) == expected


def test_error_waits_at_least_retry_after_capped_at_a_week() -> None:
    assert wait("error", error_count=1, retry_after=7200.0) == 2 * HOUR
    assert wait("error", error_count=1, retry_after=30 * 86400.0) == timedelta(days=7)
    # fresh_for and ttl say nothing about an error response.
    assert wait("error", error_count=1, fresh_for=7200.0, ttl_minutes=600) == timedelta(
        minutes=15
    )


def test_jitter_stays_within_bounds_and_varies() -> None:
    waits = {wait("ok", jitter=0.1, seed=seed) for seed in range(50)}
    assert all(timedelta(minutes=54) <= w <= timedelta(minutes=66) for w in waits if w)
    assert len(waits) > 40


def test_same_seed_same_answer() -> None:
    assert wait("ok", jitter=0.1, seed=7) == wait("ok", jitter=0.1, seed=7)


@given(
    outcome=st.sampled_from(["ok", "not_modified", "error"]),
    jitter=st.floats(-2.0, 5.0),
    error_count=st.integers(-5, 10_000),
    retry_after=st.none() | st.floats(allow_nan=True),
    fresh_for=st.none() | st.floats(allow_nan=True),
    ttl_minutes=st.none() | st.integers(-10**6, 10**9),
    seed=st.integers(0, 2**32),
)
def test_never_before_now_never_after_a_week(
    outcome: str, jitter: float, error_count: int, retry_after: float | None,
    fresh_for: float | None, ttl_minutes: int | None, seed: int,
) -> None:
    delay = wait(outcome, jitter=jitter, error_count=error_count, seed=seed,
                 retry_after=retry_after, fresh_for=fresh_for, ttl_minutes=ttl_minutes)
    assert delay is not None
    assert timedelta(0) <= delay <= timedelta(days=7)


@pytest.mark.parametrize(
    ("error_count", "gone", "expected"),
    [
        (0, False, "ok"),
        (1, False, "backing off"),
        (FAILING_AFTER - 1, False, "backing off"),
        (FAILING_AFTER, False, "failing"),
        (500, False, "failing"),
        (0, True, "gone"),
        (12, True, "gone"),
    ],
)
def test_health(error_count: int, gone: bool, expected: str) -> None:
    assert health(error_count, gone) == expected
