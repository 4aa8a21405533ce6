"""When to fetch a source next, and how healthy it is: pure decisions, no I/O.

The store keeps ``next_check_at`` per source; the scheduler only claims the
sources whose time has come. This module is the one place that turns the
outcome of a fetch (and what the server said about freshness) into that time.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Literal

Outcome = Literal["ok", "not_modified", "error", "gone"]
Health = Literal["ok", "backing off", "failing", "gone"]

#: Consecutive errors after which a source is shown to ops as failing.
FAILING_AFTER = 10
#: The longest a server can push us away with Retry-After, max-age, Expires or <ttl>.
MAX_FLOOR = timedelta(days=7)
#: The first retry after an error; doubled per further error up to MAX_BACKOFF.
FIRST_BACKOFF = timedelta(minutes=15)
MAX_BACKOFF = timedelta(hours=24)


def _seconds(value: float | None) -> float:
    """A server-given delay as usable seconds: missing, negative or NaN → 0."""
    if value is None or math.isnan(value) or value <= 0:
        return 0.0
    return value


def _jittered(base: timedelta, jitter: float, rng: random.Random) -> timedelta:
    # Jitter spreads sources added together so they do not hit hosts in step.
    spread = min(max(jitter, 0.0), 1.0)
    return base * (1.0 + rng.uniform(-spread, spread))


def _backoff(error_count: int) -> timedelta:
    # The exponent is clamped so a long-dead source cannot overflow timedelta.
    doublings = min(max(error_count, 1) - 1, 32)
    return min(MAX_BACKOFF, FIRST_BACKOFF * 2**doublings)


def next_check_at(
    *,
    now: datetime,
    interval: timedelta,
    jitter: float,
    rng: random.Random,
    outcome: Outcome,
    error_count: int,
    retry_after: float | None = None,
    fresh_for: float | None = None,
    ttl_minutes: int | None = None,
) -> datetime | None:
    """The time to fetch a source next, or None to stop polling it (410 Gone).

    After a success the configured interval (± jitter) applies, but never
    sooner than the server asked: Retry-After, Cache-Control max-age /
    Expires (``fresh_for``) and RSS ``<ttl>`` are floors, each capped at
    7 days so a misconfigured server cannot silence a source for good.
    After an error the wait doubles per consecutive error from 15 minutes up
    to 24 hours (± jitter), and is at least Retry-After.
    """
    if outcome == "gone":
        return None
    if outcome == "error":
        delay = _jittered(_backoff(error_count), jitter, rng)
        floor_seconds = _seconds(retry_after)
    else:
        delay = _jittered(interval, jitter, rng)
        ttl_seconds = ttl_minutes * 60.0 if ttl_minutes is not None else None
        floor_seconds = max(_seconds(retry_after), _seconds(fresh_for), _seconds(ttl_seconds))
    floor = timedelta(seconds=min(floor_seconds, MAX_FLOOR.total_seconds()))
    return now + max(delay, floor, timedelta(0))


def health(error_count: int, gone: bool = False) -> Health:
    """How a source looks to ops: "ok", "backing off", "failing" or "gone"."""
    if gone:
        return "gone"
    if error_count <= 0:
        return "ok"
    if error_count >= FAILING_AFTER:
        return "failing"
    return "backing off"
