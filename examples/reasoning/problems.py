"""Seeded synthetic multi-step arithmetic word problems with worked, step-by-step solutions."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import attrs

NAMES = (
    ("Ann", "She"), ("Ben", "He"), ("Cara", "She"), ("Dan", "He"), ("Eva", "She"),
    ("Finn", "He"), ("Gia", "She"), ("Hugo", "He"), ("Iris", "She"), ("Jack", "He"),
    ("Kim", "She"), ("Leo", "He"), ("Mia", "She"), ("Noah", "He"), ("Olga", "She"),
    ("Paul", "He"),
)  # fmt: skip
ITEMS = (
    "apples", "books", "cards", "coins", "eggs", "pens", "shells", "stamps", "marbles",
    "stickers", "cookies", "buttons",
)  # fmt: skip


_FIELDS = ("question", "steps", "answer")


@attrs.frozen
class Problem:
    """One word problem: its text, its worked steps (``"7+5=12"``) and the integer answer."""

    question: str
    steps: tuple[str, ...]
    answer: int

    @property
    def solution(self) -> str:
        """The worked solution: one step per line, then ``The answer is N.``"""
        return "".join(f"{step}\n" for step in self.steps) + f"The answer is {self.answer}."

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (round-trips through :meth:`from_dict`)."""
        return {"question": self.question, "steps": list(self.steps), "answer": self.answer}

    @classmethod
    def from_dict(cls, data: object) -> Problem:
        """The problem written by :meth:`to_dict`; ValueError says what is malformed."""
        expected = "a problem is an object with 'question', 'steps' and 'answer'"
        if not isinstance(data, dict):
            raise ValueError(f"{expected}, got {type(data).__name__}")
        missing = [key for key in _FIELDS if key not in data]
        if missing:
            raise ValueError(f"{expected}; this one has no {' or '.join(map(repr, missing))}")
        question, steps, answer = (data[key] for key in _FIELDS)
        if not isinstance(question, str):
            raise ValueError(f"'question' must be a string, got {type(question).__name__}")
        if not isinstance(steps, list) or not all(isinstance(step, str) for step in steps):
            raise ValueError("'steps' must be a list of strings")
        if isinstance(answer, bool) or not re.fullmatch(r"-?\d+", str(answer)):
            raise ValueError(f"'answer' must be an integer, got {type(answer).__name__}")
        return cls(question, tuple(steps), int(str(answer)))


@attrs.define
class _State:
    """A problem being written: the running total, its sentences and its worked steps."""

    total: int
    sentences: list[str]
    steps: list[str]

    def apply(self, op: str, operand: int) -> None:
        result = {"+": self.total + operand, "-": self.total - operand, "*": self.total * operand}
        self.steps.append(f"{self.total}{op}{operand}={result[op]}")
        self.total = result[op]


def _add(state: _State, rng: random.Random, he: str, items: str, high: int) -> None:
    n = rng.randint(2, high)
    state.sentences.append(rng.choice((f"{he} buys {n} more.", f"{he} finds {n} more.")))
    state.apply("+", n)


def _subtract(state: _State, rng: random.Random, he: str, items: str, high: int) -> None:
    if state.total < 3:
        _add(state, rng, he, items, high)
        return
    n = rng.randint(1, min(high, state.total - 1))
    state.sentences.append(rng.choice((f"{he} gives away {n}.", f"{he} loses {n}.")))
    state.apply("-", n)


def _multiply(state: _State, rng: random.Random, he: str, items: str, high: int) -> None:
    if state.total > high:
        _subtract(state, rng, he, items, high)
        return
    k = rng.randint(2, 3)
    state.sentences.append(f"Then the {items} {'double' if k == 2 else 'triple'}.")
    state.apply("*", k)


def _add_groups(state: _State, rng: random.Random, he: str, items: str, high: int) -> None:
    groups, size = rng.randint(2, 5), rng.randint(2, max(2, high // 2))
    state.sentences.append(f"{he} buys {groups} bags of {size}.")
    state.steps.append(f"{groups}*{size}={groups * size}")
    state.apply("+", groups * size)


_OPERATIONS: tuple[Callable[[_State, random.Random, str, str, int], None], ...] = (
    _add,
    _subtract,
    _multiply,
    _add_groups,
)


def make_problem(
    rng: random.Random, *, min_ops: int = 2, max_ops: int = 3, high: int = 20
) -> Problem:
    """One problem of ``min_ops..max_ops`` operations on numbers up to ``high``."""
    name, he = rng.choice(NAMES)
    items = rng.choice(ITEMS)
    state = _State(rng.randint(2, high), [], [])
    state.sentences.append(f"{name} has {state.total} {items}.")
    for _ in range(rng.randint(min_ops, max_ops)):
        rng.choice(_OPERATIONS)(state, rng, he, items, high)
    question = " ".join(state.sentences) + f" How many {items} does {name} have?"
    return Problem(question, tuple(state.steps), state.total)


def make_problems(
    count: int, *, seed: int, min_ops: int = 2, max_ops: int = 3, high: int = 20
) -> list[Problem]:
    """``count`` distinct problems drawn with ``seed`` (the same seed gives the same list)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    problems: list[Problem] = []
    while len(problems) < count:
        problem = make_problem(rng, min_ops=min_ops, max_ops=max_ops, high=high)
        if problem.question not in seen:
            seen.add(problem.question)
            problems.append(problem)
    return problems
