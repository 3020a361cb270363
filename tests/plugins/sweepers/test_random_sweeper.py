"""``sweepers/random``: independent uniform draws per key, the same jobs for the same seed."""

from __future__ import annotations

import math
from collections import Counter
from statistics import median

import pytest
from _sweeper_results import job_result

from corelib import ConfigError, registry
from corelib.runs import Choice, Interval, Range, SearchSpace, Sweeper
from plugins.sweepers.random_search import RandomSweeper

SPACE: SearchSpace = {
    "lr": Interval(1e-4, 1.0, log=True),
    "dropout": Interval(0.0, 0.5),
    "layers": Range(2, 12, 2),
    "optimizer": Choice(("@adamw", "@sgd", "1e-3")),
}


def draws(n_trials: int, seed: int = 0, space: SearchSpace = SPACE) -> list[dict[str, str]]:
    return [dict(row) for row in RandomSweeper(n_trials=n_trials, seed=seed).ask(space, 1)]


def test_n_trials_at_the_first_ask_whatever_the_limit_then_nothing() -> None:
    sweeper = RandomSweeper(n_trials=7)
    assignments = sweeper.ask(SPACE, 2)
    assert len(assignments) == 7
    assert all(list(row) == list(SPACE) for row in assignments)
    sweeper.tell(assignments[0], job_result(assignments[0], {"loss": 0.1}))
    assert sweeper.ask(SPACE, 2) == []


def test_the_same_seed_gives_the_same_jobs_another_seed_others() -> None:
    assert draws(20, seed=3) == draws(20, seed=3)
    assert draws(20, seed=3) != draws(20, seed=4)
    assert draws(5, seed=3) == draws(20, seed=3)[:5]


def test_values_are_override_text_inside_their_domains() -> None:
    for row in draws(200):
        assert 1e-4 <= float(row["lr"]) <= 1.0
        assert 0.0 <= float(row["dropout"]) <= 0.5
        assert repr(float(row["dropout"])) == row["dropout"]  # exact: repr round-trips
        assert row["layers"] in {"2", "4", "6", "8", "10"}
        assert row["optimizer"] in {"@adamw", "@sgd", "1e-3"}  # a choice's text as written


def test_each_domain_is_drawn_uniformly() -> None:
    rows = draws(6000, seed=1)
    discrete = {"layers": ["2", "4", "6", "8", "10"], "optimizer": ["@adamw", "@sgd", "1e-3"]}
    for key, values in discrete.items():
        counts = Counter(row[key] for row in rows)
        expected = len(rows) / len(values)
        assert set(counts) == set(values)
        assert all(abs(counts[v] - expected) < 0.1 * expected for v in values), counts
    dropout = [float(row["dropout"]) for row in rows]
    assert abs(sum(d < 0.125 for d in dropout) / len(rows) - 0.25) < 0.02
    assert abs(median(dropout) - 0.25) < 0.02


def test_a_log_interval_is_uniform_in_its_logarithm() -> None:
    exponents = [math.log10(float(row["lr"])) for row in draws(6000, seed=2)]
    per_decade = Counter(math.floor(e) for e in exponents)
    assert sorted(per_decade) == [-4, -3, -2, -1]
    assert all(abs(count / len(exponents) - 0.25) < 0.03 for count in per_decade.values())
    assert abs(median(exponents) - (-2.0)) < 0.1  # uniform on [1e-4, 1] would put it near 0.5


def test_it_follows_the_sweeper_protocol_and_is_registered() -> None:
    assert isinstance(RandomSweeper(), Sweeper)
    assert registry.entry("sweepers/random").load() is RandomSweeper


@pytest.mark.parametrize(
    ("domain", "problem"),
    [
        (Interval(1.0, 1.0), r"x=interval\(1,1\): expected LOW < HIGH"),
        (Interval(0.0, 1.0, log=True), r"x=log\(0,1\): expected 0 < LOW < HIGH"),
        (Range(3, 3), r"x=range\(3,3,1\): the range has no values"),
        (Choice(()), "x has no values to choose from"),
    ],
)
def test_a_domain_it_cannot_sample_is_refused_naming_the_key(domain: object, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        RandomSweeper().ask({"x": domain}, 1)  # type: ignore[dict-item]


def test_no_trials_is_refused() -> None:
    with pytest.raises(ConfigError, match="n_trials=0; expected at least 1"):
        RandomSweeper(n_trials=0)
