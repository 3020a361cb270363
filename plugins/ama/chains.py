"""`ama/chain`: one Ask-Me-Anything prompt chain (input -> open question -> answer -> vote)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import attrs
import numpy as np

from plugins.ama._prompts import (
    ABSTAIN,
    ANSWER_INSTRUCTION,
    QUESTION_INSTRUCTION,
    AnswerMap,
    few_shot,
)
from plugins.llm import LLM


@attrs.frozen
class ChainVotes:
    """What one chain said about each input, and why it abstained where it did.

    `questions`/`answers` hold None where the LLM call failed (an empty completion list).
    `outcomes` counts "label", "unknown" (the answer said so), "unmatched" (the answer mapped
    to no label) and "failed" (an LLM call failed) over the inputs.
    """

    votes: np.ndarray  # (n,) int64, ABSTAIN = -1
    questions: list[str | None]
    answers: list[str | None]
    outcomes: Counter[str]


class PromptChain:
    """An AMA prompt chain with its own in-context demonstrations.

    `question()` asks the LLM to turn each input into an open question (demonstrations are
    mappings with keys "statement" and "question"); `answer()` asks it to answer each question
    from its context, "Unknown" where the context has no evidence (demonstrations: "context",
    "question", "answer"); `labels` maps an answer's leading word(s) to a class, anything else
    abstains. Decoding is greedy and every step is one batched `llm.generate` call.

    Args:
        llm: any `plugins.llm.LLM` backend.
        labels: answer word(s) -> class index, e.g. {"yes": 1, "no": 0}.
        question_demos / answer_demos: the chain's demonstrations.
        question_instruction / answer_instruction: the instruction opening each prompt.
        unknown: answers that abstain on purpose.
        max_new_tokens: generation budget per step.
    """

    def __init__(
        self,
        llm: LLM,
        *,
        labels: Mapping[str, int],
        question_demos: Sequence[Mapping[str, str]] = (),
        answer_demos: Sequence[Mapping[str, str]] = (),
        question_instruction: str = QUESTION_INSTRUCTION,
        answer_instruction: str = ANSWER_INSTRUCTION,
        unknown: Sequence[str] = ("unknown",),
        max_new_tokens: int = 32,
    ) -> None:
        self.llm = llm
        self.labels = dict(labels)
        self.unknown = tuple(unknown)
        self.answer_map = AnswerMap(self.labels, self.unknown)
        self.question_demos = [dict(demo) for demo in question_demos]
        self.answer_demos = [dict(demo) for demo in answer_demos]
        self.question_instruction = question_instruction
        self.answer_instruction = answer_instruction
        self.max_new_tokens = max_new_tokens
        # Fail at construction, not in the middle of a run, on a demonstration lacking a field.
        self.question_prompt("x")
        self.answer_prompt("x", "x")

    @property
    def cardinality(self) -> int:
        """Number of classes the labels name (largest index + 1)."""
        return self.answer_map.cardinality

    def with_question_instruction(self, instruction: str) -> PromptChain:
        """The same chain with another question instruction (e.g. an LLM-written reformulation)."""
        return PromptChain(
            self.llm,
            labels=self.labels,
            question_demos=self.question_demos,
            answer_demos=self.answer_demos,
            question_instruction=instruction,
            answer_instruction=self.answer_instruction,
            unknown=self.unknown,
            max_new_tokens=self.max_new_tokens,
        )

    def question_prompt(self, statement: str) -> str:
        """The prompt asking for an open question about `statement`."""
        return few_shot(
            self.question_instruction,
            self.question_demos,
            ("statement", "question"),
            {"statement": statement},
        )

    def answer_prompt(self, question: str, context: str) -> str:
        """The prompt asking to answer `question` from `context`."""
        return few_shot(
            self.answer_instruction,
            self.answer_demos,
            ("context", "question", "answer"),
            {"context": context, "question": question},
        )

    def question(self, inputs: Sequence[str]) -> list[str | None]:
        """One open question per input; None where the LLM call failed."""
        return self._complete([self.question_prompt(text) for text in inputs])

    def answer(self, questions: Sequence[str], contexts: Sequence[str]) -> list[str | None]:
        """One answer per (question, context); None where the LLM call failed."""
        if len(questions) != len(contexts):
            raise ValueError(f"ama/chain: {len(questions)} questions but {len(contexts)} contexts")
        prompts = [self.answer_prompt(q, c) for q, c in zip(questions, contexts, strict=True)]
        return self._complete(prompts)

    def vote(self, inputs: Sequence[str], contexts: Sequence[str]) -> ChainVotes:
        """Run the chain on each (input, context): a class or ABSTAIN per input, with reasons."""
        if len(inputs) != len(contexts):
            raise ValueError(f"ama/chain: {len(inputs)} inputs but {len(contexts)} contexts")
        questions = self.question(inputs)
        asked = [i for i, q in enumerate(questions) if q is not None]
        answers: list[str | None] = [None] * len(inputs)
        replies = self.answer([questions[i] or "" for i in asked], [contexts[i] for i in asked])
        for i, reply in zip(asked, replies, strict=True):
            answers[i] = reply
        votes = np.full(len(inputs), ABSTAIN, dtype=np.int64)
        outcomes: Counter[str] = Counter()
        for i, reply in enumerate(answers):
            if reply is None:
                outcomes["failed"] += 1
                continue
            votes[i], how = self.answer_map.classify(reply)
            outcomes[how] += 1
        return ChainVotes(votes, questions, answers, outcomes)

    def _complete(self, prompts: list[str]) -> list[str | None]:
        if not prompts:
            return []
        results = self.llm.generate(
            prompts, n=1, temperature=0.0, max_new_tokens=self.max_new_tokens, stop=["\n"]
        )
        if len(results) != len(prompts):
            raise RuntimeError(
                f"ama/chain: the LLM returned {len(results)} results for {len(prompts)} prompts"
            )
        return [completions[0].text.strip() if completions else None for completions in results]
