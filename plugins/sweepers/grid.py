"""``sweepers/grid``: every combination of the swept values, in command-line order."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from corelib import ConfigError
from corelib.runs import Assignment, Choice, Interval, JobResult, Range, SearchSpace
from plugins.sweepers._domains import range_size, range_text

__all__ = ["GridSweeper", "values_of"]


class GridSweeper:
    """Runs the Cartesian product of the swept values (the last key varies fastest).

    A ``range`` is expanded to its values; an ``interval`` or ``log`` domain has no grid and is
    refused (sample it with ``--sweeper random`` or ``optuna``). ``max_jobs`` bounds the product:
    a grid larger than that is refused before any job starts (and before it is expanded).
    """

    def __init__(self, max_jobs: int = 100_000) -> None:
        self.max_jobs = max_jobs
        self._proposed = False

    def ask(self, space: SearchSpace, limit: int) -> list[Assignment]:
        """All the combinations on the first call (``limit`` does not apply); ``[]`` after."""
        if self._proposed:
            return []
        self._proposed = True
        keys = list(space)
        size = math.prod(_size(key, space[key]) for key in keys)
        if size > self.max_jobs:
            raise ConfigError(
                f"sweepers/grid: the grid has {size} jobs, more than max_jobs={self.max_jobs} "
                "(set sweeper.max_jobs=N to allow it, or sample with --sweeper random)"
            )
        columns = [values_of(key, space[key]) for key in keys]
        return [dict(zip(keys, row, strict=True)) for row in itertools.product(*columns)]

    def tell(self, assignment: Assignment, result: JobResult) -> None:
        """A grid does not adapt: results change nothing."""


def values_of(key: str, domain: Choice | Range | Interval) -> Sequence[str]:
    """The values of a discrete domain as override text; an interval is a ConfigError."""
    if isinstance(domain, Choice):
        return domain.values
    if isinstance(domain, Range):
        return [range_text(domain, i) for i in range(range_size(key, domain))]
    raise ConfigError(
        f"sweepers/grid: {key}={'log' if domain.log else 'interval'}({domain.low:g},"
        f"{domain.high:g}) is a continuous domain with no grid; sample it with --sweeper random "
        "(sweeper.n_trials=N) or --sweeper optuna"
    )


def _size(key: str, domain: Choice | Range | Interval) -> int:
    if isinstance(domain, Range):
        return range_size(key, domain)
    return len(values_of(key, domain))
