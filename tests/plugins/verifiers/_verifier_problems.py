"""Synthetic two-step arithmetic word problems with right and wrong paths (seeded).

A question names two different operations (``Sam has 5, finds 3, then doubles.``); a wrong
path does one of its steps with the third operation, which the question never names.
"""

from __future__ import annotations

import random

_ACTIONS = {"+": "finds {n}", "-": "loses {n}", "*": "doubles"}
_APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def make_problem(rng: random.Random) -> tuple[str, int, list[tuple[str, int]]]:
    """A word problem, its start value and its operations, e.g. ``[("+", 7), ("*", 2)]``."""
    start = rng.randint(2, 20)
    ops = [(op, 2 if op == "*" else rng.randint(1, 9)) for op in rng.sample("+-*", 2)]
    actions = ", then ".join(_ACTIONS[op].format(n=n) for op, n in ops)
    return f"Sam has {start}, {actions}. How many now?", start, ops


def solve(start: int, ops: list[tuple[str, int]]) -> str:
    """The worked solution: one line per operation, then ``The answer is N.``."""
    value, lines = start, []
    for op, n in ops:
        result = _APPLY[op](value, n)
        lines.append(f"{value} {op} {n} = {result}")
        value = result
    return "\n".join([*lines, f"The answer is {value}."])


def make_dataset(seed: int, size: int) -> list[dict[str, object]]:
    """``size`` problems, each with its gold solution, a correct path and a wrong one."""
    rng = random.Random(seed)
    items = []
    for _ in range(size):
        question, start, ops = make_problem(rng)
        (absent,) = set("+-*") - {op for op, _ in ops}
        wrong = list(ops)
        k = rng.randrange(len(ops))
        wrong[k] = (absent, 2 if absent == "*" else ops[k][1])
        paths = [solve(start, ops), solve(start, wrong)]
        items.append({"question": question, "gold": solve(start, ops), "paths": paths})
    return items
