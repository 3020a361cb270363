"""The sweep grammar: which overrides of ``corelib run -m`` sweep, and over which values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corelib import ConfigError
from corelib.runs import Choice, Interval, Range, parse_sweep


@pytest.mark.parametrize(
    ("override", "key", "domain"),
    [
        ("lr=1e-3,1e-4", "lr", Choice(("1e-3", "1e-4"))),
        ("a=1, 2 ,3", "a", Choice(("1", "2", "3"))),
        ("a=choice(x,y)", "a", Choice(("x", "y"))),
        ("a=choice(x)", "a", Choice(("x",))),
        ("model=@small,@large", "model", Choice(("@small", "@large"))),
        ("+model.extra=1,2", "+model.extra", Choice(("1", "2"))),
        ("++model.depth=1,2", "++model.depth", Choice(("1", "2"))),
        ("layers[+]=3,4", "layers[+]", Choice(("3", "4"))),
        ("a=[1,2],[3]", "a", Choice(("[1,2]", "[3]"))),
        ("a='x,y',z", "a", Choice(("'x,y'", "z"))),
        ("a=it's,x", "a", Choice(("it's", "x"))),
        ("a=range(1,4)", "a", Range(1, 4, 1)),
        ("a=range(0,1,0.25)", "a", Range(0, 1, 0.25)),
        ("a=range(5,1,-2)", "a", Range(5, 1, -2)),
        ("a=interval(0,1)", "a", Interval(0.0, 1.0)),
        ("lr=log(1e-4,1e-1)", "lr", Interval(1e-4, 1e-1, log=True)),
        ("lr=log(interval(1e-4,1e-1))", "lr", Interval(1e-4, 1e-1, log=True)),
    ],
)
def test_sweeps_and_their_domains(override: str, key: str, domain: object) -> None:
    sweep = parse_sweep([override])

    assert dict(sweep.space) == {key: domain}
    assert sweep.fixed == ()


@pytest.mark.parametrize(
    "override",
    [
        "a=1",
        "a=[1,2]",
        "a={b: 1, c: 2}",
        "a='x,y'",
        'a="x,\\"y"',
        "~a",
        "a=",
        "a=[1,2",
        "a=f(1,2)x",
    ],
)
def test_other_overrides_are_fixed(override: str) -> None:
    sweep = parse_sweep(["b=1,2", override])

    assert list(sweep.space) == ["b"]
    assert sweep.fixed == (override,)


def test_a_job_gets_the_command_line_in_order_with_its_values() -> None:
    sweep = parse_sweep(["model=@small,@large", "model.width=3", "~x", "lr=range(1,3)"])

    assert sweep.job_overrides({"model": "@large", "lr": "2"}) == (
        "model=@large",  # the preset comes first: model.width=3 edits it
        "model.width=3",
        "~x",
        "lr=2",
    )
    with pytest.raises(ConfigError, match=r"expected the swept keys \['lr', 'model'\]"):
        sweep.job_overrides({"model": "@small"})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("a=1,,2", "an empty value in the list"),
        ("a=1,", "an empty value in the list"),
        ("a=choice()", "an empty value in the list"),
        ("a=choise(1,2)", "unknown sweep function 'choise'; expected one of choice, range"),
        ("a=1,range(1,3)", r"'range\(1,3\)' inside a list"),
        ("a=range(1)", r"expected range\(START,STOP\[,STEP\]\) with numbers"),
        ("a=range(1,x)", "'x' is not a finite number"),
        ("a=range(3,1)", "the range from 3 to 1 by 1 is empty"),
        ("a=range(1,3,0)", "by 0 is empty"),
        ("a=interval(1,1)", r"expected interval\(LOW,HIGH\), LOW < HIGH"),
        ("a=interval(0,nan)", "'nan' is not a finite number"),
        ("a=log(0,1)", r"expected log\(LOW,HIGH\) with 0 < LOW < HIGH"),
        ("a=log(1,2,3)", r"expected log\(LOW,HIGH\)"),
    ],
)
def test_a_malformed_sweep_names_the_argument_and_what_was_expected(
    override: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_sweep([override])

    assert f"sweep {override!r}" in str(caught.value)


def test_a_key_swept_twice_is_an_error() -> None:
    with pytest.raises(ConfigError, match="'a' is swept twice"):
        parse_sweep(["a=1,2", "a=3,4"])


_PLAIN = st.from_regex(r"[A-Za-z0-9_.@/+-]+", fullmatch=True).filter(lambda text: "(" not in text)
_QUOTED = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12).map(
    lambda text: "'" + text.replace("'", "''") + "'"
)
_LISTS = st.lists(_PLAIN, max_size=3).map(lambda items: "[" + ", ".join(items) + "]")
_VALUES = st.one_of(_PLAIN, _QUOTED, _LISTS)


@given(st.lists(_VALUES, min_size=2, max_size=6))
def test_a_comma_list_of_safe_values_round_trips(values: list[str]) -> None:
    sweep = parse_sweep(["key=" + ",".join(values)])

    assert dict(sweep.space) == {"key": Choice(tuple(values))}
    assert sweep.job_overrides({"key": values[1]}) == (f"key={values[1]}",)


@given(_VALUES)
def test_one_safe_value_is_not_a_sweep(value: str) -> None:
    assert dict(parse_sweep([f"key={value}"]).space) == {}
