"""The verifier stage: label training paths, train the step-aware verifier, score test paths.

Training paths are labelled by ``verifiers``' ``PathLabeller`` (a path is correct when its
answer equals the gold one, the gold solution is a positive, and the steps of a wrong path are
labelled by DiVeRSe's arithmetic rule); the verifier is trained with the ddp Trainer, saved to
``model/``, and scores every test path (``scores.jsonl``). With ``val_questions``, the paths of
the last training questions are held out as a validation split: the verifier scores them and
``val.json`` holds the voting verifier's, best path's and majority's accuracy on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from examples.reasoning._io import read_jsonl, write_json, write_jsonl
from examples.reasoning.pipeline import StageContext

__all__ = ["TrainVerifier", "label_paths", "score_paths", "vote_accuracy"]


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


def vote_accuracy(
    vote: Any, rows: Sequence[Mapping[str, Any]], scores: Sequence[Sequence[float]]
) -> float:
    """The share of ``rows`` whose gold answer ``vote`` chooses from the paths' answers and
    ``scores`` (0.0 for no rows)."""
    hits = [
        vote.choose([answer for _, answer, _ in row["paths"]], row_scores) == row["gold"]
        for row, row_scores in zip(rows, scores, strict=True)
    ]
    return sum(hits) / len(hits) if hits else 0.0


class TrainVerifier:
    """Train ``verifier`` on the paths stage's training paths and score its test paths.

    ``labeller`` defaults to ``PathLabeller()``. ``val_questions`` (default 0) holds out the
    paths of the last that many training questions as a validation split (``val.json``).
    """

    def __init__(
        self,
        verifier: Any,
        *,
        labeller: Any = None,
        paths_stage: str = "paths",
        val_questions: int = 0,
    ) -> None:
        if labeller is None:
            from plugins.verifiers.labels import PathLabeller

            labeller = PathLabeller()
        if val_questions < 0:
            raise ValueError(f"TrainVerifier: val_questions must be >= 0, got {val_questions}")
        self.verifier = verifier
        self.labeller = labeller
        self.paths_stage = paths_stage
        self.val_questions = val_questions

    def run(self, context: StageContext) -> str:
        """Label, train, save, score (and validate)."""
        paths_dir = context.output(self.paths_stage)
        rows = read_jsonl(paths_dir / "train.jsonl")
        cut = len(rows) - self.val_questions
        if self.val_questions and cut < 1:
            raise ValueError(
                f"TrainVerifier: val_questions={self.val_questions} leaves no training question "
                f"of the {len(rows)} in {paths_dir / 'train.jsonl'}"
            )
        examples = label_paths(rows[:cut], self.labeller)
        metrics = self.verifier.fit(examples)
        self.verifier.save(context.directory / "model")
        scores = score_paths(self.verifier, read_jsonl(paths_dir / "test.jsonl"))
        write_jsonl(context.directory / "scores.jsonl", scores)
        positives = sum(example.correct for example in examples)
        summary = (
            f"trained on {len(examples)} labelled paths ({100 * positives / len(examples):.0f}% "
            f"correct), final train loss {metrics['train/loss']:.3f}"
        )
        if not self.val_questions:
            return summary
        val = self.validate(rows[cut:])
        write_json(context.directory / "val.json", val)
        return summary + (
            f"; on {val['questions']} held-out questions voting {100 * val['voting']:.1f}%, "
            f"best path {100 * val['best_path']:.1f}%, majority {100 * val['majority']:.1f}%"
        )

    def validate(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The accuracy of the voting verifier, the best path and the majority on ``rows``."""
        from plugins.verifiers.voting import BestPath, MajorityVote, VotingVerifier

        scores = score_paths(self.verifier, rows)
        return {
            "questions": len(rows),
            "voting": vote_accuracy(VotingVerifier(), rows, scores),
            "best_path": vote_accuracy(BestPath(), rows, scores),
            "majority": vote_accuracy(MajorityVote(), rows, scores),
        }
