"""The AMA stage: "Is the answer to this problem N?" answered by prompt chains, then aggregated.

Half of the test problems (seeded) are asked about their true answer, the others about a
plausible wrong one (the true answer off by a small amount). As AMA does, a chain does not ask
the yes/no question directly (the reasoner was never taught to): it asks the open question
instead (the problem itself, with the chain's own demonstrations), extracts the answer and
compares it with N. ``ama/task`` collects the chains' votes into a vote matrix; each aggregator
(``ama/label_model``, ``ama/majority``) is fitted on it without labels.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from examples.reasoning._io import write_json
from examples.reasoning.data import load_split
from examples.reasoning.lm import EXEMPLAR_FORMAT, QUERY_FORMAT
from examples.reasoning.pipeline import StageContext

__all__ = ["OpenQuestionChain", "YesNoTask", "yes_no_question"]

NO, YES = 0, 1
_CANDIDATE = re.compile(r"Is the answer to this problem (-?\d+)\?")
_OFFSETS = (-10, -5, -3, -2, -1, 1, 2, 3, 5, 10)


def yes_no_question(candidate: int) -> str:
    """The yes/no question about ``candidate``."""
    return f"Is the answer to this problem {candidate}?"


class OpenQuestionChain:
    """One AMA prompt chain over yes/no questions about a problem's answer.

    The chain's demonstrations are ``shots`` worked examples drawn from ``exemplars`` with
    ``seed``. ``answer`` extracts a completion's final answer (``verifiers``' ``RegexAnswer`` by
    default); with ``samples > 1`` the chain samples at ``temperature`` and takes the most
    frequent answer. No answer found: the chain abstains.
    """

    cardinality = 2

    def __init__(
        self,
        llm: Any,
        exemplars: Sequence[Mapping[str, str]],
        *,
        shots: int = 1,
        seed: int = 0,
        samples: int = 1,
        temperature: float = 0.0,
        max_new_tokens: int = 64,
        answer: Callable[[str], Hashable | None] | None = None,
    ) -> None:
        if answer is None:
            from plugins.verifiers.parsing import RegexAnswer

            answer = RegexAnswer()
        demos = random.Random(seed).sample(list(exemplars), shots)
        self.prefix = "".join(EXEMPLAR_FORMAT.format(**demo) for demo in demos)
        self.llm = llm
        self.samples = samples
        self.temperature = temperature if samples > 1 else 0.0
        self.seed = seed
        self.max_new_tokens = max_new_tokens
        self.answer = answer

    def vote(self, inputs: Sequence[str], contexts: Sequence[str]) -> Any:
        """YES/NO (or -1, abstain) for each yes/no ``input`` about the problem in ``contexts``."""
        from plugins.ama.chains import ChainVotes

        prompts = [self.prefix + QUERY_FORMAT.format(question=problem) for problem in contexts]
        results = self.llm.generate(
            prompts,
            n=self.samples,
            temperature=self.temperature,
            max_new_tokens=self.max_new_tokens,
            stop=["\n\n"],
            seed=self.seed,
        )
        votes = np.full(len(inputs), -1, dtype=np.int64)
        answers: list[str | None] = []
        outcomes: Counter[str] = Counter()
        for i, (text, completions) in enumerate(zip(inputs, results, strict=True)):
            found = Counter(a for c in completions if (a := self.answer(c.text)) is not None)
            reply = str(found.most_common(1)[0][0]) if found else None
            answers.append(reply)
            if not completions:
                outcomes["failed"] += 1
            elif reply is None:
                outcomes["unmatched"] += 1
            else:
                votes[i] = YES if reply == _candidate(text) else NO
                outcomes["label"] += 1
        return ChainVotes(votes, list(contexts), answers, outcomes)

    def __repr__(self) -> str:
        return f"OpenQuestionChain(samples={self.samples}, seed={self.seed})"


def _candidate(question: str) -> str:
    match = _CANDIDATE.search(question)
    if match is None:
        raise ValueError(f"OpenQuestionChain: {question!r} names no candidate answer")
    return match.group(1)


class YesNoTask:
    """Ask the chains about ``questions`` test problems; fit and apply each aggregator.

    Each question asks about the true answer with probability 1/2 (seeded). With
    ``known_balance`` the aggregators are told that class balance (``fit(votes,
    class_balance=[0.5, 0.5])``: a known prior, which AMA's label model allows); otherwise the
    label model estimates it from the votes. Writes ``yesno.json``: labels, the vote matrix, and
    each aggregator's predictions.
    """

    def __init__(
        self,
        chains: Sequence[Any],
        aggregators: Mapping[str, Any],
        *,
        questions: int | None = None,
        known_balance: bool = True,
        seed: int = 0,
        data_stage: str = "data",
    ) -> None:
        if len(chains) < 3:
            raise ValueError(f"YesNoTask: needs at least 3 prompt chains, got {len(chains)}")
        self.chains = list(chains)
        self.aggregators = dict(aggregators)
        self.questions = questions
        self.known_balance = known_balance
        self.seed = seed
        self.data_stage = data_stage

    def run(self, context: StageContext) -> str:
        """Vote, aggregate, write ``yesno.json``."""
        from plugins.ama.task import ChainTask

        problems = load_split(context.output(self.data_stage), "test")[: self.questions]
        rng = random.Random(self.seed)
        labels, inputs = [], []
        for problem in problems:
            label = rng.choice((YES, NO))
            wrong = [problem.answer + d for d in _OFFSETS if problem.answer + d >= 0]
            labels.append(label)
            inputs.append(yes_no_question(problem.answer if label else rng.choice(wrong)))
        task_votes = ChainTask(self.chains).votes(inputs, [p.question for p in problems])
        balance = np.array([0.5, 0.5]) if self.known_balance else None  # fair coin above
        predictions = {}
        for name, aggregator in self.aggregators.items():
            aggregator.fit(task_votes.votes, class_balance=balance)
            predictions[name] = aggregator.predict(task_votes.votes).tolist()
        write_json(
            context.directory / "yesno.json",
            {
                "inputs": inputs,
                "labels": labels,
                "votes": task_votes.votes.tolist(),
                "chains": [repr(chain) for chain in self.chains],
                "predictions": predictions,
            },
        )
        gold = np.asarray(labels)
        accuracy = {name: np.mean(np.asarray(p) == gold) for name, p in predictions.items()}
        shown = ", ".join(f"{name} {100 * value:.1f}%" for name, value in accuracy.items())
        return f"{len(problems)} questions x {len(self.chains)} chains; {shown}"
