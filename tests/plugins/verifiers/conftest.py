"""Shared fixtures: synthetic multi-step arithmetic word problems with right and wrong paths."""

from __future__ import annotations

import random

import pytest

_ACTIONS = {"+": "finds {n} more", "-": "gives away {n}", "*": "doubles them"}


def make_problem(rng: random.Random) -> tuple[str, list[tuple[str, int]]]:
    """A word problem and its operations, e.g. ``[("+", 7), ("-", 3)]``."""
    start = rng.randint(2, 20)
    ops: list[tuple[str, int]] = []
    for _ in range(rng.randint(2, 3)):
        op = rng.choice("+-*")
        ops.append((op, 2 if op == "*" else rng.randint(1, 9)))
    actions = ", then ".join(_ACTIONS[op].format(n=n) for op, n in ops)
    return f"Sam has {start} apples. Sam {actions}. How many apples are left?", [("=", start), *ops]


def solve(ops: list[tuple[str, int]], flip: int | None = None) -> str:
    """The worked solution of ``ops``; with ``flip``, step ``flip`` uses a wrong operator."""
    value = ops[0][1]
    lines = []
    for k, (op, n) in enumerate(ops[1:]):
        if k == flip:
            op = {"+": "-", "-": "+", "*": "+"}[op]
        result = {"+": value + n, "-": value - n, "*": value * n}[op]
        lines.append(f"{value} {op} {n} = {result}")
        value = result
    return "\n".join([*lines, f"The answer is {value}."])


def make_dataset(seed: int, size: int, wrong_per_question: int = 2) -> list[dict[str, object]]:
    """``size`` problems, each with its gold solution, one correct and some wrong paths."""
    rng = random.Random(seed)
    items = []
    for _ in range(size):
        question, ops = make_problem(rng)
        wrong = [solve(ops, flip=rng.randrange(len(ops) - 1)) for _ in range(wrong_per_question)]
        items.append({"question": question, "gold": solve(ops), "paths": [solve(ops), *wrong]})
    return items


@pytest.fixture(scope="session")
def arithmetic() -> dict[str, list[dict[str, object]]]:
    """Train and test splits of synthetic problems (seeded)."""
    return {"train": make_dataset(0, 300), "test": make_dataset(1, 60)}
