"""``sweepers/grid``: every combination, in command-line order, refused before it is too big."""

from __future__ import annotations

import tracemalloc

import pytest
from _sweeper_results import job_result

from corelib import ConfigError, registry
from corelib.runs import Choice, Interval, Range, Sweeper
from plugins.sweepers.grid import GridSweeper


def test_the_product_of_the_values_last_key_fastest_then_nothing() -> None:
    sweeper = GridSweeper()
    space = {
        "lr": Choice(("1e-3", "1e-4")),
        "model": Choice(("@small", "@large")),
        "n": Range(1, 3),
    }
    assert sweeper.ask(space, 1) == [
        {"lr": "1e-3", "model": "@small", "n": "1"},
        {"lr": "1e-3", "model": "@small", "n": "2"},
        {"lr": "1e-3", "model": "@large", "n": "1"},
        {"lr": "1e-3", "model": "@large", "n": "2"},
        {"lr": "1e-4", "model": "@small", "n": "1"},
        {"lr": "1e-4", "model": "@small", "n": "2"},
        {"lr": "1e-4", "model": "@large", "n": "1"},
        {"lr": "1e-4", "model": "@large", "n": "2"},
    ]
    sweeper.tell({"lr": "1e-3", "model": "@small", "n": "1"}, job_result({}, {"loss": 1.0}))
    assert sweeper.ask(space, 1) == []


def test_it_follows_the_sweeper_protocol_and_is_registered() -> None:
    assert isinstance(GridSweeper(), Sweeper)
    assert registry.entry("sweepers/grid").load() is GridSweeper


def test_ranges_step_up_down_and_in_decimals() -> None:
    def values(domain: Range) -> list[str]:
        return [row["x"] for row in GridSweeper().ask({"x": domain}, 1)]

    assert values(Range(0, 10, 3)) == ["0", "3", "6", "9"]
    assert values(Range(3, 0, -1)) == ["3", "2", "1"]
    assert values(Range(0, 1, 0.1)) == [
        "0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9",
    ]  # fmt: skip
    assert values(Range(1.0, 0.0, -0.25)) == ["1.0", "0.75", "0.5", "0.25"]


def test_no_space_is_one_job_with_no_overrides() -> None:
    assert GridSweeper().ask({}, 1) == [{}]


@pytest.mark.parametrize("domain", [Interval(0.0, 1.0), Interval(1e-5, 1e-1, log=True)])
def test_a_continuous_domain_is_refused_naming_the_key(domain: Interval) -> None:
    with pytest.raises(ConfigError, match=r"x=(interval|log)\(.*no grid.*--sweeper random"):
        GridSweeper().ask({"lr": Choice(("1",)), "x": domain}, 1)


@pytest.mark.parametrize(
    ("domain", "problem"),
    [(Range(5, 1), "no values"), (Range(0, 1, 0), "step"), (Range(0, float("inf")), "finite")],
)
def test_a_range_with_no_values_is_refused_naming_the_key(domain: Range, problem: str) -> None:
    with pytest.raises(ConfigError, match=rf"^epochs=range\(.*{problem}"):
        GridSweeper().ask({"epochs": domain}, 1)


def test_a_grid_over_max_jobs_is_refused_before_it_is_expanded() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match=r"has 2000000 jobs, more than max_jobs=10 "):
            GridSweeper(max_jobs=10).ask({"a": Range(0, 1_000_000), "b": Choice(("x", "y"))}, 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000  # expanding the range first would take tens of megabytes
