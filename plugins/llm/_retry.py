"""Retry timing: exponential backoff with jitter, and the ``Retry-After`` header."""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

import attrs


def is_retryable(status: int) -> bool:
    """429 (too many requests), 408 (the server's timeout) and 5xx are worth retrying; other
    4xx are not."""
    return status in (408, 429) or status >= 500


@attrs.frozen
class Backoff:
    """Wait ``base_s * 2**attempt`` (capped at ``max_s``), jittered to between half and all of
    it, and never less than the server's ``Retry-After``."""

    base_s: float = 0.5
    max_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        ceiling = min(self.max_s, self.base_s * 2**attempt)
        jittered = rng.uniform(ceiling / 2, ceiling)
        return jittered if retry_after is None else max(jittered, retry_after)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP date); None if absent
    or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
