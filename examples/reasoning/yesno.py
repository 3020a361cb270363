"""The AMA stage: is a claim about a problem's answer true? Prompt chains vote, then aggregate.

Each problem becomes a claim: its story, then "In the end, Ann has N apples." with N its true
answer (a fair coin, seeded) or a near miss (off by a small amount). The chains are AMA chains
(``ama/chains``, the shipped ``arithmetic_claims`` demonstration set): question() turns the
claim back into the open question (the problem), answer() lets the reasoner solve it after the
chain's own worked demonstration, and the answer is compared with the claim (equal: yes).
``ama/task`` collects the votes into a vote matrix; each aggregator is fitted on each split's
votes without labels. The validation split chooses the settings; test reports them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from examples.reasoning._io import write_json
from examples.reasoning.data import load_split
from examples.reasoning.pipeline import StageContext
from examples.reasoning.problems import Problem

__all__ = ["YesNoTask", "claim"]

NO, YES = 0, 1
_QUESTION = re.compile(r"(?P<story>.+) How many (?P<items>\w+) does (?P<name>\w+) have\?")
_OFFSETS = (-10, -5, -3, -2, -1, 1, 2, 3, 5, 10)


def claim(problem: Problem, value: int) -> str:
    """The claim that ``problem``'s answer is ``value``, as a statement about its story."""
    match = _QUESTION.fullmatch(problem.question)
    if match is None:
        raise ValueError(f"claim: {problem.question!r} does not end 'How many X does Y have?'")
    return f"{match['story']} In the end, {match['name']} has {value} {match['items']}."


class YesNoTask:
    """Ask the chains about the first ``questions`` problems of each split; fit and apply each
    aggregator there.

    Each claim is about the true answer with probability 1/2 (seeded per split). With
    ``known_balance`` the aggregators are told that class balance (``fit(votes,
    class_balance=[0.5, 0.5])``: a known prior, as AMA sets metal's from its labelled training
    split); otherwise they estimate it (``ama/label_model``) or take it as uniform. Writes
    ``yesno.json``: for the last split (test) at the top level, and for each other one under
    its name ("validation" for "val"): inputs, labels, the vote matrix, each chain's outcome
    counts and each aggregator's predictions.
    """

    def __init__(
        self,
        chains: Sequence[Any],
        aggregators: Mapping[str, Any],
        *,
        questions: int | None = None,
        splits: Sequence[str] = ("val", "test"),
        known_balance: bool = True,
        seed: int = 0,
        data_stage: str = "data",
    ) -> None:
        if len(chains) < 3:
            raise ValueError(f"YesNoTask: needs at least 3 prompt chains, got {len(chains)}")
        if not splits:
            raise ValueError("YesNoTask: needs at least one split, e.g. ('val', 'test')")
        self.chains = list(chains)
        self.aggregators = dict(aggregators)
        self.questions = questions
        self.splits = list(splits)
        self.known_balance = known_balance
        self.seed = seed
        self.data_stage = data_stage

    def run(self, context: StageContext) -> str:
        """Vote, aggregate, write ``yesno.json``."""
        records = {split: self.split(context, split) for split in self.splits}
        *others, last = self.splits
        written: dict[str, Any] = {"chains": [repr(chain) for chain in self.chains]}
        written.update(records[last])
        written.update({_NAMES.get(split, split): records[split] for split in others})
        write_json(context.directory / "yesno.json", written)
        summaries = []
        for split, record in records.items():
            gold = np.asarray(record["labels"])
            shown = ", ".join(
                f"{name} {100 * np.mean(np.asarray(p) == gold):.1f}%"
                for name, p in record["predictions"].items()
            )
            summaries.append(f"{split}: {len(gold)} questions, {shown}")
        return f"{len(self.chains)} chains; " + "; ".join(summaries)

    def split(self, context: StageContext, split: str) -> dict[str, Any]:
        """The claims about one split's problems, the chains' votes and the aggregates."""
        from plugins.ama.task import ChainTask

        problems = load_split(context.output(self.data_stage), split)[: self.questions]
        rng = random.Random(f"{self.seed}:{split}" if split != "test" else self.seed)
        labels, inputs = [], []
        for problem in problems:
            label = rng.choice((YES, NO))
            wrong = [problem.answer + d for d in _OFFSETS if problem.answer + d >= 0]
            labels.append(label)
            inputs.append(claim(problem, problem.answer if label else rng.choice(wrong)))
        # The claim holds the whole story: the chains answer from no other context.
        task_votes = ChainTask(self.chains).votes(inputs, [""] * len(inputs))
        balance = np.array([0.5, 0.5]) if self.known_balance else None  # fair coin above
        predictions = {}
        for name, aggregator in self.aggregators.items():
            aggregator.fit(task_votes.votes, class_balance=balance)
            predictions[name] = aggregator.predict(task_votes.votes).tolist()
        return {
            "inputs": inputs,
            "labels": labels,
            "votes": task_votes.votes.tolist(),
            "outcomes": [dict(chain.outcomes) for chain in task_votes.chains],
            "predictions": predictions,
        }


_NAMES = {"val": "validation"}
