"""`ama/task`: several prompt chains over a set of inputs, their vote matrix, and its aggregate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs
import numpy as np

from plugins.ama.chains import ChainVotes, PromptChain


class Aggregator(Protocol):
    """What `ChainTask` needs of a label model (`ama/label_model`, `ama/majority`)."""

    def fit(self, votes: np.ndarray, *, class_balance: np.ndarray | None = None) -> object: ...
    def predict(self, votes: np.ndarray) -> np.ndarray: ...


@attrs.frozen
class TaskVotes:
    """The (inputs, chains) vote matrix (-1 abstains) and each chain's record."""

    votes: np.ndarray
    chains: list[ChainVotes]

    @property
    def outcomes(self) -> Counter[str]:
        """Outcome counts summed over chains: "label", "unknown", "unmatched", "failed"."""
        return sum((chain.outcomes for chain in self.chains), Counter())


@attrs.frozen
class TaskResult:
    """Predicted classes per example, the votes behind them, and accuracy where labels exist."""

    predictions: np.ndarray
    votes: TaskVotes
    accuracy: float | None

    def __str__(self) -> str:
        counts = ", ".join(f"{key} {value}" for key, value in sorted(self.votes.outcomes.items()))
        shape = "x".join(map(str, self.votes.votes.shape))
        score = "" if self.accuracy is None else f"; accuracy {100 * self.accuracy:.1f}%"
        return f"ama/task: {shape} votes ({counts}){score}"


class ChainTask:
    """Run every chain on every example and aggregate the votes with a label model.

    Examples are mappings with an "input" (the statement a chain questions), a "context" (what
    the question is answered from) and optionally a "label" (class index, used only to report
    accuracy). The aggregator is fitted on the votes of all examples without labels (AMA's own
    code passes training labels to set the class prior: give `class_balance` for that).

    Args:
        chains: the prompt chains (the paper uses 3-6); they must agree on the classes.
        aggregator: e.g. `LabelModel(cardinality)` or `MajorityVote(cardinality)`.
        examples: the inputs `run()` works on.
        class_balance: a known class prior handed to the aggregator's `fit`.
    """

    def __init__(
        self,
        chains: Sequence[PromptChain],
        *,
        aggregator: Aggregator | None = None,
        examples: Sequence[Mapping[str, object]] = (),
        class_balance: Sequence[float] | None = None,
    ) -> None:
        if not chains:
            raise ValueError("ama/task: needs at least one prompt chain")
        self.chains = list(chains)
        classes = max(chain.cardinality for chain in self.chains)
        declared = getattr(aggregator, "cardinality", classes)
        if declared < classes:
            raise ValueError(
                f"ama/task: the chains' labels name {classes} classes but the aggregator "
                f"has cardinality {declared}"
            )
        self.aggregator = aggregator
        self.examples = list(examples)
        self.class_balance = None if class_balance is None else np.asarray(class_balance)

    def votes(self, inputs: Sequence[str], contexts: Sequence[str]) -> TaskVotes:
        """The (len(inputs), len(chains)) vote matrix, one batched pass per chain step."""
        records = [chain.vote(inputs, contexts) for chain in self.chains]
        matrix = np.stack([record.votes for record in records], axis=1)
        return TaskVotes(matrix.reshape(len(inputs), len(records)), records)

    def run(self) -> TaskResult:
        """Vote on `examples`, fit the aggregator on the votes, and predict a class for each."""
        if self.aggregator is None:
            raise ValueError("ama/task: run() needs an aggregator, e.g. ama/label_model")
        if not self.examples:
            raise ValueError("ama/task: run() needs examples with 'input' and 'context'")
        for index, example in enumerate(self.examples):
            missing = {"input", "context"} - set(example)
            if missing:
                raise ValueError(f"ama/task: examples[{index}] lacks {sorted(missing)}")
        task_votes = self.votes(
            [str(e["input"]) for e in self.examples], [str(e["context"]) for e in self.examples]
        )
        self.aggregator.fit(task_votes.votes, class_balance=self.class_balance)
        predictions = self.aggregator.predict(task_votes.votes)
        labels = [e.get("label") for e in self.examples]
        accuracy = None
        if all(label is not None for label in labels):
            accuracy = float(np.mean(predictions == np.asarray(labels)))
        return TaskResult(predictions, task_votes, accuracy)
