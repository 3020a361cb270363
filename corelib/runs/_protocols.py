"""What launchers and sweepers are: the two protocols the multirun machinery calls.

A **launcher** (registry group ``launchers``) runs jobs and yields their results as they end.
A **sweeper** (group ``sweepers``) proposes assignments of values to the swept keys and is told
each job's result. Both are components built from their config node (``launcher.KEY=VALUE`` /
``sweeper.KEY=VALUE`` on the command line set their parameters). docs/plugins.md shows how to
write one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

import attrs

from corelib.runs._jobs import Job, JobResult

__all__ = ["Assignment", "Choice", "Interval", "Launcher", "Range", "SearchSpace", "Sweeper"]


@attrs.frozen
class Choice:
    """Discrete values, as override text: ``a=1,2,3`` or ``a=choice(1,2,3)``."""

    values: tuple[str, ...]


@attrs.frozen
class Range:
    """Integers (or floats) from ``start`` up to, not including, ``stop``: ``range(a,b[,step])``."""

    start: int | float
    stop: int | float
    step: int | float = 1


@attrs.frozen
class Interval:
    """A continuous interval ``[low, high]`` for sweepers that sample: ``interval(a,b)``;
    ``log``: sampled on a log scale (``log(a,b)``)."""

    low: float
    high: float
    log: bool = False


SearchSpace = Mapping[str, Choice | Range | Interval]
"""The swept keys (the override's left side, e.g. ``lr``, ``+model.extra``) and their domains,
in command-line order."""

Assignment = Mapping[str, str]
"""One job's values: swept key -> override value text (the job's override is ``KEY=VALUE``)."""


@runtime_checkable
class Launcher(Protocol):
    """Runs jobs. ``slots`` is how many it runs at once (sweepers that adapt ask that many
    jobs at a time)."""

    slots: int

    def launch(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        """Run ``jobs`` and yield each one's :class:`JobResult` as it ends, in any order.

        Each job runs ``job.command()`` (or ``corelib`` with ``job.argv()``) where its
        ``run_dir`` is visible, within ``job.timeout_s``; :func:`corelib.runs.collect` turns the
        exit status into the result. Closing the iterator early (Ctrl-C, ``--fail-fast``) must
        stop the jobs still running.
        """
        ...


@runtime_checkable
class Sweeper(Protocol):
    """Proposes the jobs of a sweep and learns from their results."""

    def ask(self, space: SearchSpace, limit: int) -> list[Assignment]:
        """Up to ``limit`` more assignments to run; an empty list ends the sweep.

        Called again after the results of the previous batch were told, so a sweeper that
        proposes everything at once (grid) returns it all on the first call and ``[]`` next.
        Raises :class:`corelib.ConfigError` for a domain it cannot sweep (e.g. ``grid`` and an
        ``interval``), naming the key.
        """
        ...

    def tell(self, assignment: Assignment, result: JobResult) -> None:
        """The result of the job that ran ``assignment``."""
        ...
