"""What the verifier tests share: labelled examples, a small trainer, and the scores to check."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import torch

from plugins.ddp.trainer import Trainer
from plugins.verifiers.labels import LabeledPath, PathLabeller

LABELLER = PathLabeller()


def labelled(items: list[dict[str, object]]) -> list[LabeledPath]:
    return [
        example
        for item in items
        for example in LABELLER.label(item["question"], item["gold"], item["paths"])  # type: ignore[arg-type]
    ]


def trainer(**options: object) -> functools.partial[Trainer]:
    return functools.partial(
        Trainer, optimizer=functools.partial(torch.optim.AdamW, lr=3e-3), batch_size=32, **options
    )


class PathScores(NamedTuple):
    every: list[float]
    right: list[float]
    wrong: list[float]
    ranked: float
    """The share of (right, wrong) pairs with the right path scored higher."""


def path_scores(verifier: Any, items: list[dict[str, object]]) -> PathScores:
    """The verifier's scores of the labelled paths of ``items``, all and split by correctness."""
    test = labelled(items)
    scores = verifier.score([ex.question for ex in test], ["\n".join(ex.steps) for ex in test])
    right = [s for s, ex in zip(scores, test, strict=True) if ex.correct]
    wrong = [s for s, ex in zip(scores, test, strict=True) if not ex.correct]
    ranked = sum(r > w for r in right for w in wrong) / (len(right) * len(wrong))
    return PathScores(scores, right, wrong, ranked)


def step_scores_by_label(
    verifier: Any, items: list[dict[str, object]]
) -> tuple[list[float], list[float]]:
    """The step scores of the labelled paths of ``items``, split into good and bad steps; each
    path must get one score per step."""
    good: list[float] = []
    bad: list[float] = []
    for ex in labelled(items):
        step_scores = verifier.score_steps(ex.question, "\n".join(ex.steps))
        assert len(step_scores) == len(ex.steps)
        for score, label in zip(step_scores, ex.step_labels, strict=True):
            (good if label else bad).append(score)
    return good, bad
