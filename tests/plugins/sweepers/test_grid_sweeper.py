"""``sweepers/grid``: every combination, in command-line order, refused before it is too big."""

from __future__ import annotations

import tracemalloc
from decimal import Decimal

import pytest
from _sweeper_results import job_result
from hypothesis import given
from hypothesis import strategies as st

from corelib import ConfigError, registry
from corelib.runs import Choice, Interval, Range, Sweeper
from plugins.sweepers.grid import GridSweeper, values_of


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


@given(
    start=st.integers(-50, 50),
    stop=st.integers(-50, 50),
    step=st.integers(-7, 7).filter(bool),
)
def test_an_integer_range_has_the_values_of_python_range(start: int, stop: int, step: int) -> None:
    expected = [str(v) for v in range(start, stop, step)]
    if not expected:
        with pytest.raises(ConfigError, match="has no values"):
            values_of("n", Range(start, stop, step))
    else:
        assert values_of("n", Range(start, stop, step)) == expected


@given(start=st.integers(-20, 20), count=st.integers(1, 30), tenths=st.integers(1, 9))
def test_a_decimal_range_has_its_decimal_values(start: int, count: int, tenths: int) -> None:
    step = tenths / 10
    stop = start + count * step - step / 2  # between the last value and the next
    values = values_of("x", Range(float(start), stop, step))
    assert values == [repr(float(Decimal(start) + i * Decimal(tenths) / 10)) for i in range(count)]
