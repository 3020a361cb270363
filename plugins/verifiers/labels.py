"""Labelling reasoning paths for verifier training: the path label and one label per step.

A path is correct when its final answer equals the gold answer; the gold solution itself is
always a positive. In a correct path every step is correct; in a wrong one a ``StepLabeller``
decides step by step (DiVeRSe's arithmetic rule by default; an NLI-based labeller fits the same
protocol).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Protocol, runtime_checkable

import attrs

from plugins.verifiers.parsing import AnswerExtractor, RegexAnswer, RegexResults, StepSplitter

__all__ = ["ArithmeticStepLabeller", "LabeledPath", "PathLabeller", "StepLabeller"]


@attrs.frozen
class LabeledPath:
    """One training example: a question, a path's steps, and whether the path and each step
    are correct (``len(step_labels) == len(steps)``)."""

    question: str
    steps: tuple[str, ...]
    correct: bool
    step_labels: tuple[bool, ...]

    def __attrs_post_init__(self) -> None:
        if len(self.step_labels) != len(self.steps):
            raise ValueError(
                f"LabeledPath: {len(self.steps)} steps but {len(self.step_labels)} step labels"
            )


@runtime_checkable
class StepLabeller(Protocol):
    """Labels the steps of a wrong path against the question's correct paths."""

    def label_steps(
        self, question: str, steps: Sequence[str], positives: Sequence[Sequence[str]]
    ) -> list[bool]:
        """One label per step of ``steps``; ``positives`` are the steps of correct paths."""
        ...


@attrs.frozen
class ArithmeticStepLabeller:
    """DiVeRSe's rule for arithmetic: step k of a wrong path is correct when the intermediate
    results of steps 1..k form a sub-multiset of some correct path's intermediate results.

    Steps without results add nothing; while no result has been seen, a step is incorrect.
    """

    results: Callable[[str], list[str]] = attrs.field(factory=RegexResults)

    def label_steps(
        self, question: str, steps: Sequence[str], positives: Sequence[Sequence[str]]
    ) -> list[bool]:
        """Label each step of ``steps`` (``question`` is unused by this rule)."""
        golden = [self._multiset(positive) for positive in positives]
        seen: Counter[str] = Counter()
        labels = []
        for step in steps:
            seen.update(self.results(step))
            labels.append(bool(seen) and any(seen <= gold for gold in golden))
        return labels

    def _multiset(self, steps: Sequence[str]) -> Counter[str]:
        counts: Counter[str] = Counter()
        for step in steps:
            counts.update(self.results(step))
        return counts


@attrs.frozen
class PathLabeller:
    """Turns a question's gold solution and sampled paths into ``LabeledPath`` examples."""

    answer: AnswerExtractor = attrs.field(factory=RegexAnswer)
    splitter: Callable[[str], list[str]] = attrs.field(factory=StepSplitter)
    step_labeller: StepLabeller = attrs.field(factory=ArithmeticStepLabeller)

    def label(
        self,
        question: str,
        gold_solution: str,
        paths: Sequence[str],
        *,
        gold_answer: Hashable | None = None,
    ) -> list[LabeledPath]:
        """The gold solution (first, a positive) followed by each path, labelled.

        ``gold_answer`` defaults to the answer extracted from ``gold_solution`` (when both are
        there they must agree, so a mistyped ``31`` vs ``"31"`` cannot mark every path wrong); a
        path whose answer cannot be extracted is wrong.
        """
        extracted = self.answer(gold_solution)
        if gold_answer is None:
            gold_answer = extracted
        elif extracted is not None and extracted != gold_answer:
            raise ValueError(
                f"PathLabeller: gold_answer={gold_answer!r} but the gold solution of question "
                f"{question!r} reads {extracted!r} (extractor {self.answer!r})"
            )
        if gold_answer is None:
            raise ValueError(
                f"PathLabeller: no answer found in the gold solution of question {question!r} "
                f"(extractor {self.answer!r}); pass gold_answer= or fix the extractor"
            )
        gold_steps = tuple(self.splitter(gold_solution))
        split = [tuple(self.splitter(path)) for path in paths]
        correct = [self.answer(path) == gold_answer for path in paths]
        positives = [gold_steps, *(s for s, ok in zip(split, correct, strict=True) if ok)]
        examples = [LabeledPath(question, gold_steps, True, (True,) * len(gold_steps))]
        for steps, ok in zip(split, correct, strict=True):
            if ok:
                step_labels = (True,) * len(steps)
            else:
                step_labels = tuple(self.step_labeller.label_steps(question, steps, positives))
            examples.append(LabeledPath(question, steps, ok, step_labels))
        return examples
