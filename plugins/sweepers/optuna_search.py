"""``sweepers/optuna``: Optuna's search for the best value of a key of the jobs' results.

Optuna (extra ``corelib[optuna]``) is imported when the sweeper is built, never before.
"""

from __future__ import annotations

import logging
import math
import reprlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from corelib import ConfigError, PluginError, Trusted
from corelib.runs import Assignment, Choice, Interval, JobResult, Range, SearchSpace
from plugins.sweepers._domains import check_interval, range_size, range_text, range_value

if TYPE_CHECKING:
    import optuna

__all__ = ["OptunaSweeper"]

_log = logging.getLogger(__name__)
_Key = tuple[tuple[str, str], ...]


class OptunaSweeper:
    """Asks Optuna for trials and tells it each job's ``objective``.

    ``objective`` is a key of the jobs' results, dotted for nested dicts (``val.loss``);
    ``result`` means the whole result when a job's result is a plain number. ``direction``
    says whether to ``minimize`` or ``maximize`` it; ``n_trials`` jobs run in all, as many at
    once as the launcher has slots. A job that failed, or whose result lacks the objective or
    holds no finite number there, is told to Optuna as a FAILED trial (the sweep goes on).
    ``sampler``: ``tpe`` (Optuna's default) or ``random``, seeded by ``seed``. ``storage``
    (an Optuna storage URL such as ``sqlite:///sweep.db``) and ``study_name`` keep the study
    for Optuna's tools; a study of that name in that storage is continued.
    """

    def __init__(
        self,
        objective: str,
        direction: Literal["minimize", "maximize"] = "minimize",
        n_trials: int = 20,
        seed: int = 0,
        sampler: Literal["tpe", "random"] = "tpe",
        storage: Annotated[str | None, Trusted] = None,
        study_name: str | None = None,
    ) -> None:
        try:
            import optuna
        except ImportError as error:
            raise PluginError(
                "sweepers/optuna needs Optuna: pip install 'corelib[optuna]'"
            ) from error
        if n_trials < 1:
            raise ConfigError(f"sweepers/optuna: n_trials={n_trials}; expected at least 1")
        if direction not in ("minimize", "maximize"):
            raise ConfigError(
                f"sweepers/optuna: direction={direction!r}; expected 'minimize' or 'maximize'"
            )
        samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
        if sampler not in samplers:
            raise ConfigError(
                f"sweepers/optuna: sampler={sampler!r}; expected one of {sorted(samplers)}"
            )
        if not objective:
            raise ConfigError("sweepers/optuna: objective is empty; expected a key of the results")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.objective = objective
        self.direction = direction
        self.n_trials = n_trials
        try:
            self.study = optuna.create_study(
                storage=storage,
                study_name=study_name,
                direction=direction,
                sampler=samplers[sampler](seed=seed),
                load_if_exists=study_name is not None,
            )
        except Exception as error:  # a bad URL or database: optuna and sqlalchemy raise many kinds
            raise ConfigError(  # the URL is not echoed: it may hold a database password
                f"sweepers/optuna: cannot open the study {study_name!r} in its storage: "
                f"{type(error).__name__}: {str(error)[:200]}"
            ) from error
        self._asked = 0
        self._pending: dict[_Key, list[optuna.trial.Trial]] = {}
        self._best: tuple[Assignment, float] | None = None

    @property
    def best(self) -> tuple[Assignment, float] | None:
        """The best assignment told so far and its objective value (None before any)."""
        return self._best

    def ask(self, space: SearchSpace, limit: int) -> list[Assignment]:
        """Up to ``limit`` new trials from Optuna, until ``n_trials`` were asked; then ``[]``."""
        import optuna

        distributions = {key: _distribution(optuna, key, domain) for key, domain in space.items()}
        assignments: list[Assignment] = []
        for _ in range(min(max(limit, 1), self.n_trials - self._asked)):
            trial = self.study.ask(distributions)
            assignment = {key: _text(space[key], trial.params[key]) for key in distributions}
            self._pending.setdefault(_key(assignment), []).append(trial)
            assignments.append(assignment)
        self._asked += len(assignments)
        return assignments

    def tell(self, assignment: Assignment, result: JobResult) -> None:
        """Tell Optuna the objective of the job that ran ``assignment`` (or that it FAILED)."""
        import optuna

        trials = self._pending.get(_key(assignment))
        if not trials:
            raise ValueError(f"sweepers/optuna: told about {dict(assignment)}, never proposed")
        trial = trials.pop(0)
        value, reason = _objective(result, self.objective)
        if value is None:
            trial.set_user_attr("corelib_failure", reason)
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            if result.ok:
                _log.warning("sweepers/optuna: job %s failed: %s", result.job.index, reason)
            return
        self.study.tell(trial, value)
        if self._best is None or (
            value < self._best[1] if self.direction == "minimize" else value > self._best[1]
        ):
            self._best = (dict(assignment), value)


def _distribution(
    optuna: Any, key: str, domain: Choice | Range | Interval
) -> optuna.distributions.BaseDistribution:
    """Optuna's distribution for a swept domain (a ConfigError naming ``key`` if it has none)."""
    if isinstance(domain, Choice):
        if not domain.values:
            raise ConfigError(f"sweepers/optuna: {key} has no values to choose from")
        return optuna.distributions.CategoricalDistribution(domain.values)
    if isinstance(domain, Range):
        ends = (range_value(domain, 0), range_value(domain, range_size(key, domain) - 1))
        low, high, step = min(ends), max(ends), abs(domain.step)
        if all(isinstance(v, int) for v in (low, high, step)):
            return optuna.distributions.IntDistribution(low, high, step=step)
        return optuna.distributions.FloatDistribution(low, high, step=step)
    check_interval(key, domain)
    return optuna.distributions.FloatDistribution(domain.low, domain.high, log=domain.log)


def _text(domain: Choice | Range | Interval, value: Any) -> str:
    """Optuna's value of a parameter as override text."""
    if isinstance(domain, Choice):
        return str(value)
    if isinstance(domain, Range):  # the nearest value of the range: floats keep their decimals
        size = range_size("", domain)
        index = round((value - domain.start) / domain.step)
        return range_text(domain, min(max(index, 0), size - 1))
    return repr(float(value))


def _objective(result: JobResult, path: str) -> tuple[float | None, str]:
    """The objective's value in ``result``, or None and why there is none."""
    if not result.ok:
        return (
            None,
            f"the job did not finish ({result.status}): {result.error or 'no reason given'}",
        )
    value: Any = result.result
    if not (path == "result" and not isinstance(value, Mapping)):
        for segment in path.split("."):
            if not isinstance(value, Mapping) or segment not in value:
                return None, f"its result has no {path!r} (objective={path})"
            value = value[segment]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None, f"its {path!r} is {reprlib.repr(value)}, not a finite number"
    return float(value), ""


def _key(assignment: Assignment) -> _Key:
    return tuple(assignment.items())
