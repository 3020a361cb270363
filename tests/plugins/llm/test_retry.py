"""Backoff delays and Retry-After parsing."""

from __future__ import annotations

import random
import time
from email.utils import formatdate

import pytest

from plugins.llm._retry import Backoff, is_retryable, parse_retry_after


def test_delays_double_with_jitter_up_to_the_cap() -> None:
    backoff, rng = Backoff(base_s=1.0, max_s=5.0), random.Random(0)
    for attempt, ceiling in enumerate([1.0, 2.0, 4.0, 5.0, 5.0]):
        delays = [backoff.delay(attempt, None, rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not constant


def test_retry_after_is_a_floor() -> None:
    backoff, rng = Backoff(base_s=0.01, max_s=0.1), random.Random(0)
    assert backoff.delay(0, 3.0, rng) == 3.0
    assert backoff.delay(0, 0.0, rng) <= 0.01


def test_retry_after_values() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after(formatdate(time.time() + 30, usegmt=True)) == pytest.approx(30, abs=2)
    assert parse_retry_after(formatdate(time.time() - 30, usegmt=True)) == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_which_statuses_are_retried() -> None:
    assert [s for s in (400, 401, 403, 404, 408, 422, 429, 500, 502, 503) if is_retryable(s)] == [
        408,
        429,
        500,
        502,
        503,
    ]
