"""The verifier stage: label training paths, train the step-aware verifier, score test paths.

Training paths are labelled by ``verifiers``' ``PathLabeller`` (a path is correct when its
answer equals the gold one, the gold solution is a positive, and the steps of a wrong path are
labelled by DiVeRSe's arithmetic rule); the verifier (``verifiers/step_aware`` by default) is
trained with the ddp Trainer, saved to ``model/``, and scores every test path (``scores.jsonl``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from examples.reasoning._io import read_jsonl, write_jsonl
from examples.reasoning.pipeline import StageContext

__all__ = ["TrainVerifier", "label_paths", "score_paths"]


def label_paths(rows: Sequence[Mapping[str, Any]], labeller: Any) -> list[Any]:
    """The labelled examples of the paths stage's training rows (gold solution included)."""
    return [
        example
        for row in rows
        for example in labeller.label(
            row["question"],
            row["solution"],
            [text for text, _, _ in row["paths"]],
            gold_answer=row["gold"],
        )
    ]


def score_paths(verifier: Any, rows: Sequence[Mapping[str, Any]]) -> list[list[float]]:
    """The verifier's score of each path of each row, as one list per row.

    A verifier that returns another number of scores than there are paths is a ValueError.
    """
    questions = [row["question"] for row in rows for _ in row["paths"]]
    texts = [text for row in rows for text, _, _ in row["paths"]]
    scores = list(verifier.score(questions, texts))
    if len(scores) != len(texts):
        raise ValueError(
            f"score_paths: {verifier!r} returned {len(scores)} scores for {len(texts)} paths"
        )
    flat = iter(scores)
    return [[next(flat) for _ in row["paths"]] for row in rows]


class TrainVerifier:
    """Train ``verifier`` on the paths stage's training paths and score its test paths.

    ``labeller`` defaults to ``PathLabeller()``.
    """

    def __init__(self, verifier: Any, *, labeller: Any = None, paths_stage: str = "paths") -> None:
        if labeller is None:
            from plugins.verifiers.labels import PathLabeller

            labeller = PathLabeller()
        self.verifier = verifier
        self.labeller = labeller
        self.paths_stage = paths_stage

    def run(self, context: StageContext) -> str:
        """Label, train, save, score."""
        paths_dir = context.output(self.paths_stage)
        examples = label_paths(read_jsonl(paths_dir / "train.jsonl"), self.labeller)
        metrics = self.verifier.fit(examples)
        self.verifier.save(context.directory / "model")
        scores = score_paths(self.verifier, read_jsonl(paths_dir / "test.jsonl"))
        write_jsonl(context.directory / "scores.jsonl", scores)
        positives = sum(example.correct for example in examples)
        return (
            f"trained on {len(examples)} labelled paths ({100 * positives / len(examples):.0f}% "
            f"correct), final train loss {metrics['train/loss']:.3f}"
        )
