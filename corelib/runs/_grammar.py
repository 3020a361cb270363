"""The sweep grammar of ``corelib run -m``: which overrides sweep, and over which values.

An override ``KEY=VALUE`` (also ``+KEY=``, ``++KEY=``, ``KEY[+]=``) sweeps when its value is

- a comma list at the top level: ``lr=1e-3,1e-4``, ``model=@small,@large``. Commas inside
  brackets, braces, parentheses or quotes do not split: ``a=[1,2]`` and ``a='x,y'`` are one
  value each. Items are stripped of surrounding spaces; an empty item is an error.
- ``choice(V1,V2,...)``: the same as a comma list.
- ``range(START,STOP[,STEP])``: numbers from START up to, not including, STOP.
- ``interval(LOW,HIGH)``: a continuous interval, for sweepers that sample.
- ``log(LOW,HIGH)`` (or ``log(interval(LOW,HIGH))``): an interval sampled on a log scale.

Any other ``NAME(...)`` value is an error in a sweep (quote it to pass text: ``a='f(x)'``).
Every other override, ``~KEY`` included, is fixed: each job gets it as written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import attrs

from corelib._errors import ConfigError, quote
from corelib.runs._protocols import Assignment, Choice, Interval, Range

__all__ = ["SWEEP_FUNCTIONS", "Sweep", "parse_sweep"]

SWEEP_FUNCTIONS = ("choice", "range", "interval", "log")

_CALL = re.compile(r"\s*(?P<name>[A-Za-z_]\w*)\((?P<inner>.*)\)\s*", re.DOTALL)
_OPEN, _CLOSE = "[{(", "]})"
_QUOTE_AFTER = "[{(,:"  # a quote opens a quoted scalar at an item's start or after these


@attrs.frozen
class Sweep:
    """The overrides of a sweep as written, and the domains of the swept ones by key.

    A key is the override's left side as written (``lr``, ``+model.extra``, ``layers[+]``);
    the space lists keys in command-line order.
    """

    overrides: tuple[str, ...]
    space: Mapping[str, Choice | Range | Interval]

    @property
    def fixed(self) -> tuple[str, ...]:
        """The overrides that do not sweep (every job gets them as written)."""
        return tuple(o for o in self.overrides if _key(o) not in self.space)

    def job_overrides(self, assignment: Assignment) -> tuple[str, ...]:
        """One job's overrides: the command line's, in order, each swept one ``KEY=VALUE``.

        Raises ConfigError when ``assignment`` does not give exactly the swept keys.
        """
        if set(assignment) != set(self.space):
            raise ConfigError(
                f"the sweeper proposed values for {sorted(assignment)}; "
                f"expected the swept keys {sorted(self.space)}"
            )
        return tuple(
            o if (key := _key(o)) not in self.space else f"{key}={assignment[key]}"
            for o in self.overrides
        )


def parse_sweep(overrides: Sequence[str]) -> Sweep:
    """Split ``overrides`` into fixed ones and a search space; ConfigError for a bad sweep."""
    space: dict[str, Choice | Range | Interval] = {}
    for override in overrides:
        key, equals, value = override.partition("=")
        if not equals or not key or key.startswith("~"):
            continue
        domain = _domain(value, override)
        if domain is None:
            continue
        if key in space:
            raise ConfigError(f"sweep {quote(override)}: {key!r} is swept twice")
        space[key] = domain
    return Sweep(tuple(overrides), space)


def _key(override: str) -> str:
    return override.partition("=")[0]


def _domain(value: str, override: str) -> Choice | Range | Interval | None:
    items = split_items(value)
    if len(items) > 1:
        return Choice(_values(items, override))
    call = _CALL.fullmatch(value)
    if call is None or not _balanced(call["inner"]):
        return None
    name, arguments = call["name"], split_items(call["inner"])
    if name == "choice":
        return Choice(_values(arguments, override))
    if name == "range":
        return _range(arguments, override)
    if name == "interval":
        return _interval(arguments, override, log=False)
    if name == "log":
        inner = _CALL.fullmatch(call["inner"])
        if inner is not None and inner["name"] == "interval":
            arguments = split_items(inner["inner"])
        return _interval(arguments, override, log=True)
    raise ConfigError(
        f"sweep {quote(override)}: unknown sweep function {name!r}; expected one of "
        f"{', '.join(SWEEP_FUNCTIONS)} (quote the value to pass it as text: '...')"
    )


def split_items(text: str) -> list[str]:
    """``text`` split at its top-level commas (not inside brackets, braces, parens or quotes).

    Unbalanced text is one item: it is not a list, and the override's own parser reports it.
    """
    return _scan(text) or [text]


def _balanced(text: str) -> bool:
    return _scan(text) is not None


def _scan(text: str) -> list[str] | None:
    """The top-level items of ``text``, or None when its brackets or quotes do not balance."""
    items: list[str] = []
    depth, quoting, start, before = 0, "", 0, ""
    position = 0
    while position < len(text):
        char = text[position]
        if quoting:
            if (quoting == '"' and char == "\\") or text.startswith("''", position):
                position += 1  # an escaped character, or YAML's '' in single quotes
            elif char == quoting:
                quoting = ""
        elif char in "'\"" and before in ("", *_QUOTE_AFTER):
            quoting = char
        elif char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
            if depth < 0:
                return None
        elif char == "," and depth == 0:
            items.append(text[start:position])
            start, before = position + 1, ""
            position += 1
            continue
        if not char.isspace():
            before = char
        position += 1
    if quoting or depth:
        return None
    items.append(text[start:])
    return items


def _values(items: list[str], override: str) -> tuple[str, ...]:
    values = tuple(item.strip() for item in items)
    if not values or any(not value for value in values):
        raise ConfigError(
            f"sweep {quote(override)}: an empty value in the list; expected values separated "
            "by commas (quote a string that holds a comma: 'x,y')"
        )
    for value in values:
        call = _CALL.fullmatch(value)
        if call is not None and call["name"] in SWEEP_FUNCTIONS:
            raise ConfigError(
                f"sweep {quote(override)}: {quote(value)} inside a list; a sweep function is "
                "the whole value (KEY=choice(...), KEY=range(...))"
            )
    return values


def _numbers(items: list[str], override: str, expected: str) -> list[int | float]:
    numbers: list[int | float] = []
    for item in items:
        text = item.strip()
        try:
            number: int | float = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = math.nan
        if not math.isfinite(number):
            raise ConfigError(
                f"sweep {quote(override)}: {quote(text)} is not a finite number; "
                f"expected {expected}"
            )
        numbers.append(number)
    return numbers


def _range(items: list[str], override: str) -> Range:
    expected = "range(START,STOP[,STEP]) with numbers"
    if len(items) not in (2, 3):
        raise ConfigError(f"sweep {quote(override)}: expected {expected}")
    start, stop, *rest = _numbers(items, override, expected)
    step = rest[0] if rest else 1
    if step == 0 or (stop - start) / step <= 0:
        raise ConfigError(
            f"sweep {quote(override)}: the range from {start:g} to {stop:g} by {step:g} is "
            f"empty; expected {expected}"
        )
    return Range(start, stop, step)


def _interval(items: list[str], override: str, *, log: bool) -> Interval:
    expected = "log(LOW,HIGH) with 0 < LOW < HIGH" if log else "interval(LOW,HIGH), LOW < HIGH"
    if len(items) != 2:
        raise ConfigError(f"sweep {quote(override)}: expected {expected}")
    low, high = (float(n) for n in _numbers(items, override, expected))
    if not low < high or (log and low <= 0):
        raise ConfigError(f"sweep {quote(override)}: expected {expected}, got {low:g}, {high:g}")
    return Interval(low, high, log=log)
