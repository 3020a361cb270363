"""The verifier stage: label training paths, train the step-aware verifier, score test paths.

Training paths are labelled by ``verifiers``' ``PathLabeller`` (a path is correct when its
answer equals the gold one, the gold solution is a positive, and the steps of a wrong path are
labelled by DiVeRSe's arithmetic rule); the verifier (``verifiers/step_aware`` by default) is
trained with the ddp Trainer, saved to ``model/``, and scores every test path (``scores.jsonl``).
"""

from __future__ import annotations

from typing import Any

from examples.reasoning._io import read_jsonl, write_jsonl
from examples.reasoning.pipeline import StageContext

__all__ = ["TrainVerifier"]


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
        examples = [
            example
            for row in read_jsonl(paths_dir / "train.jsonl")
            for example in self.labeller.label(
                row["question"],
                row["solution"],
                [text for text, _, _ in row["paths"]],
                gold_answer=row["gold"],
            )
        ]
        metrics = self.verifier.fit(examples)
        self.verifier.save(context.directory / "model")
        test = read_jsonl(paths_dir / "test.jsonl")
        questions = [row["question"] for row in test for _ in row["paths"]]
        texts = [text for row in test for text, _, _ in row["paths"]]
        flat = iter(self.verifier.score(questions, texts))
        scores = [[next(flat) for _ in row["paths"]] for row in test]
        write_jsonl(context.directory / "scores.jsonl", scores)
        positives = sum(example.correct for example in examples)
        return (
            f"trained on {len(examples)} labelled paths ({100 * positives / len(examples):.0f}% "
            f"correct), final train loss {metrics['train/loss']:.3f}"
        )
