"""The data stage: seeded word problems split into train / val / test JSON Lines files."""

from __future__ import annotations

from pathlib import Path

from examples.reasoning._io import numbered_jsonl, write_jsonl
from examples.reasoning.pipeline import StageContext
from examples.reasoning.problems import Problem, make_problems

__all__ = ["MakeProblems", "load_split", "read_problems", "run_seed"]

SPLITS = ("train", "val", "test")


def run_seed(value: int) -> int:
    """The run's seed, ``value``: as one config node shared by every seeded part of a config,
    one override (``seed.value=1``) reseeds them all."""
    return value


def read_problems(path: Path) -> list[Problem]:
    """The problems in the JSON Lines file ``path``; a malformed one is a ValueError naming the
    file and its line."""
    problems = []
    for number, row in numbered_jsonl(path):
        try:
            problems.append(Problem.from_dict(row))
        except ValueError as exc:
            raise ValueError(f"{path}, line {number}: {exc}") from None
    return problems


def load_split(data_dir: Path, split: str) -> list[Problem]:
    """The problems of ``split`` written by :class:`MakeProblems` in ``data_dir``."""
    return read_problems(data_dir / f"{split}.jsonl")


class MakeProblems:
    """Write ``train``, ``val`` and ``test`` problems (distinct questions) drawn with ``seed``.

    ``min_ops``..``max_ops`` operations per problem on numbers up to ``high`` set the difficulty.
    """

    def __init__(
        self,
        *,
        train: int = 3000,
        val: int = 200,
        test: int = 400,
        seed: int = 0,
        min_ops: int = 2,
        max_ops: int = 3,
        high: int = 20,
    ) -> None:
        self.sizes = {"train": train, "val": val, "test": test}
        self.seed = seed
        self.difficulty = {"min_ops": min_ops, "max_ops": max_ops, "high": high}

    def run(self, context: StageContext) -> str:
        """Draw every problem at once (so the splits never share a question) and write them."""
        problems = make_problems(sum(self.sizes.values()), seed=self.seed, **self.difficulty)
        start = 0
        for split in SPLITS:
            chunk = problems[start : start + self.sizes[split]]
            write_jsonl(context.directory / f"{split}.jsonl", (p.to_dict() for p in chunk))
            start += len(chunk)
        return ", ".join(f"{self.sizes[s]} {s}" for s in SPLITS) + " problems"
