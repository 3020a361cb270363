"""``sweepers/random``: ``n_trials`` assignments sampled independently, the same for a seed."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from corelib import ConfigError
from corelib.runs import Assignment, Choice, Interval, JobResult, Range, SearchSpace
from plugins.sweepers._domains import check_interval, range_size, range_text

__all__ = ["RandomSweeper"]

_Sample = Callable[[random.Random], str]


class RandomSweeper:
    """Samples each swept key independently, ``n_trials`` times.

    A choice (``a,b,c`` or ``choice(...)``) uniformly among its values, a ``range`` uniformly
    among its values, ``interval(a,b)`` uniformly in ``[a, b]`` and ``log(a,b)`` uniformly in
    its logarithm. Values are override text (``repr`` for floats, a choice's text as written).
    The same ``seed`` and command line give the same jobs, so ``--resume`` finds them again.
    Draws are independent: a small discrete space may give the same assignment twice.
    """

    def __init__(self, n_trials: int = 10, seed: int = 0) -> None:
        if n_trials < 1:
            raise ConfigError(f"sweepers/random: n_trials={n_trials}; expected at least 1")
        self.n_trials = n_trials
        self.seed = seed
        self._proposed = False

    def ask(self, space: SearchSpace, limit: int) -> list[Assignment]:
        """All ``n_trials`` assignments at the first call (``limit`` is ignored); then ``[]``."""
        if self._proposed:
            return []
        self._proposed = True
        samplers = {key: _sampler(key, domain) for key, domain in space.items()}
        rng = random.Random(self.seed)
        return [
            {key: sample(rng) for key, sample in samplers.items()} for _ in range(self.n_trials)
        ]

    def tell(self, assignment: Assignment, result: JobResult) -> None:
        """Random search does not adapt: results change nothing."""


def _sampler(key: str, domain: Choice | Range | Interval) -> _Sample:
    """A function drawing one value of ``domain`` as text; bad domains fail here, before any."""
    if isinstance(domain, Choice):
        if not domain.values:
            raise ConfigError(f"sweepers/random: {key} has no values to choose from")
        values = domain.values
        return lambda rng: rng.choice(values)
    if isinstance(domain, Range):
        size = range_size(key, domain)
        return lambda rng: range_text(domain, rng.randrange(size))
    check_interval(key, domain)
    low, high = float(domain.low), float(domain.high)
    if domain.log:  # exp(log(x)) may round past an end: clamp
        log_low, log_high = math.log(low), math.log(high)
        return lambda rng: repr(min(max(math.exp(rng.uniform(log_low, log_high)), low), high))
    return lambda rng: repr(rng.uniform(low, high))
