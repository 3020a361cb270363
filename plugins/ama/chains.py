"""`ama/chain`: one Ask-Me-Anything prompt chain (input -> open question -> answer -> vote)."""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Mapping, Sequence

import attrs
import numpy as np

from plugins.ama._prompts import (
    ABSTAIN,
    ANSWER_FORMAT,
    ANSWER_INSTRUCTION,
    QUESTION_FORMAT,
    QUESTION_INSTRUCTION,
    AnswerMap,
    few_shot,
    template_fields,
)
from plugins.llm import LLM


@attrs.frozen
class ChainVotes:
    """What one chain said about each input, and why it abstained where it did.

    `questions`/`answers` hold None where the LLM call failed (an empty completion list);
    an answer is the reply the chain voted from (the agreed one, with several samples).
    `outcomes` counts "label", "unknown" (the answer said so, or the samples disagreed),
    "unmatched" (the answer did not parse or mapped to no label) and "failed" (an LLM call
    failed) over the inputs.
    """

    votes: np.ndarray  # (n,) int64, ABSTAIN = -1
    questions: list[str | None]
    answers: list[str | None]
    outcomes: Counter[str]


class PromptChain:
    """An AMA prompt chain with its own in-context demonstrations.

    `question()` turns each input statement into an open question: the LLM completes
    `question_format` after the `question_demos`, or, with `question_template`, a fixed rewrite
    is applied instead (for an LLM that cannot rewrite; it must reproduce every question
    demonstration). `answer()` asks the LLM to answer each question from its context after the
    `answer_demos`, "Unknown" where the context has no evidence. The reply is the whole answer,
    or `answer_pattern`'s group "answer" (no match: the answer did not parse, abstain). With
    `samples > 1` the answer is sampled at `temperature` and the most frequent reply counts only
    if at least `agreement` of the samples gave it (else "Unknown": the samples disagree).
    Finally `labels` maps the reply's leading word(s) to a class; with `claim_pattern` the reply
    is compared with the claim the statement makes (its group "claim"): equal votes
    `labels["yes"]`, different `labels["no"]`. Every step is one batched `llm.generate` call.

    Args:
        llm: any `plugins.llm.LLM` backend.
        labels: answer word(s) -> class index, e.g. {"yes": 1, "no": 0}.
        question_demos / answer_demos: the chain's demonstrations (mappings of the formats'
            fields: "statement", "question"; "context", "question", "answer").
        question_instruction / answer_instruction: the instruction opening each prompt ("" for
            none).
        question_format / answer_format: one demonstration's layout; the last field is the
            one the LLM writes.
        question_template: {"pattern": regex with named groups, "question": format string of
            those groups}: a fixed question() step instead of the LLM.
        answer_pattern: regex whose group "answer" is the reply within the answer text.
        claim_pattern: regex whose group "claim" is the value a statement claims.
        unknown: answers that abstain on purpose.
        samples, temperature, agreement, seed: answer() sampling (greedy with samples=1).
        max_new_tokens: generation budget per step.
        answer_stop: where answer() generation stops (question() stops at a newline).
        name: shown in repr, e.g. "arithmetic_claims[2]".
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
        question_format: str = QUESTION_FORMAT,
        answer_format: str = ANSWER_FORMAT,
        question_template: Mapping[str, str] | None = None,
        answer_pattern: str | None = None,
        claim_pattern: str | None = None,
        unknown: Sequence[str] = ("unknown",),
        samples: int = 1,
        temperature: float = 0.0,
        agreement: float = 0.5,
        seed: int = 0,
        max_new_tokens: int = 32,
        answer_stop: Sequence[str] = ("\n",),
        name: str = "",
    ) -> None:
        self.llm = llm
        self.labels = dict(labels)
        self.unknown = tuple(unknown)
        self.answer_map = AnswerMap(self.labels, self.unknown)
        self.question_demos = [dict(demo) for demo in question_demos]
        self.answer_demos = [dict(demo) for demo in answer_demos]
        self.question_instruction = question_instruction
        self.answer_instruction = answer_instruction
        self.question_format = question_format
        self.answer_format = answer_format
        self.question_template = None if question_template is None else dict(question_template)
        self.answer_pattern = None if answer_pattern is None else re.compile(answer_pattern)
        self.claim_pattern = None if claim_pattern is None else re.compile(claim_pattern)
        if samples < 1 or not 0.0 < agreement <= 1.0:
            raise ValueError(
                f"ama/chain: need samples >= 1 and 0 < agreement <= 1, got {samples}, {agreement}"
            )
        self.samples = samples
        self.temperature = temperature if samples > 1 else 0.0
        self.agreement = agreement
        self.seed = seed
        self.max_new_tokens = max_new_tokens
        self.answer_stop = list(answer_stop)
        self.name = name
        self._check()

    def _check(self) -> None:
        """Fail at construction, not in the middle of a run, on a malformed setting."""
        if template_fields(self.question_format)[-1] != "question":
            raise ValueError("ama/chain: question_format must end with the {question} field")
        if template_fields(self.answer_format)[-1] != "answer":
            raise ValueError("ama/chain: answer_format must end with the {answer} field")
        for pattern, group in ((self.answer_pattern, "answer"), (self.claim_pattern, "claim")):
            if pattern is not None and group not in pattern.groupindex:
                raise ValueError(f"ama/chain: {pattern.pattern!r} has no group (?P<{group}>...)")
        if self.claim_pattern is not None and not {"yes", "no"} <= set(self.labels):
            raise ValueError("ama/chain: claim_pattern needs labels for 'yes' and 'no'")
        if self.question_template is not None:
            missing = {"pattern", "question"} - set(self.question_template)
            if missing:
                raise ValueError(f"ama/chain: question_template lacks {sorted(missing)}")
            for index, demo in enumerate(self.question_demos):
                made = self._rewrite(demo.get("statement", ""))
                if made != demo.get("question"):
                    raise ValueError(
                        f"ama/chain: question demonstration {index}: the question_template "
                        f"gives {made!r}, the demonstration says {demo.get('question')!r}"
                    )
        self.question_prompt("x")
        self.answer_prompt("x", "x")

    @property
    def cardinality(self) -> int:
        """Number of classes the labels name (largest index + 1)."""
        return self.answer_map.cardinality

    def with_question_instruction(self, instruction: str) -> PromptChain:
        """The same chain with another question instruction (e.g. an LLM-written reformulation)."""
        chain = copy.copy(self)
        chain.question_instruction = instruction
        return chain

    def question_prompt(self, statement: str) -> str:
        """The prompt asking for an open question about `statement`."""
        demos = self.question_demos
        return few_shot(
            self.question_instruction, demos, self.question_format, {"statement": statement}
        )

    def answer_prompt(self, question: str, context: str) -> str:
        """The prompt asking to answer `question` from `context`."""
        query = {"context": context, "question": question}
        return few_shot(self.answer_instruction, self.answer_demos, self.answer_format, query)

    def question(self, inputs: Sequence[str]) -> list[str | None]:
        """One open question per input; None where the LLM call failed."""
        if self.question_template is not None:
            return [self._rewrite(text) for text in inputs]
        prompts = [self.question_prompt(text) for text in inputs]
        return [replies[0] if replies else None for replies in self._complete(prompts, 1, ["\n"])]

    def answer(self, questions: Sequence[str], contexts: Sequence[str]) -> list[list[str]]:
        """The sampled answer texts per (question, context); [] where the LLM call failed."""
        if len(questions) != len(contexts):
            raise ValueError(f"ama/chain: {len(questions)} questions but {len(contexts)} contexts")
        prompts = [self.answer_prompt(q, c) for q, c in zip(questions, contexts, strict=True)]
        return self._complete(prompts, self.samples, self.answer_stop)

    def vote(self, inputs: Sequence[str], contexts: Sequence[str]) -> ChainVotes:
        """Run the chain on each (input, context): a class or ABSTAIN per input, with reasons."""
        if len(inputs) != len(contexts):
            raise ValueError(f"ama/chain: {len(inputs)} inputs but {len(contexts)} contexts")
        questions = self.question(inputs)
        asked = [i for i, q in enumerate(questions) if q is not None]
        texts: list[list[str]] = [[] for _ in inputs]
        replies = self.answer([questions[i] or "" for i in asked], [contexts[i] for i in asked])
        for i, reply in zip(asked, replies, strict=True):
            texts[i] = reply
        votes = np.full(len(inputs), ABSTAIN, dtype=np.int64)
        answers: list[str | None] = [None] * len(inputs)
        outcomes: Counter[str] = Counter()
        for i, samples in enumerate(texts):
            if not samples:
                outcomes["failed"] += 1
                continue
            answers[i], how = self._agreed(samples)
            if how == "label":
                votes[i], how = self._classify(answers[i] or "", inputs[i])
            outcomes[how] += 1
        return ChainVotes(votes, questions, answers, outcomes)

    def _rewrite(self, statement: str) -> str:
        """The fixed question() step: `question_template` applied to `statement`."""
        assert self.question_template is not None
        match = re.fullmatch(self.question_template["pattern"], statement.strip(), re.DOTALL)
        if match is None:
            raise ValueError(
                f"ama/chain: the statement {statement!r} does not match the question_template "
                f"pattern {self.question_template['pattern']!r}"
            )
        return self.question_template["question"].format_map(match.groupdict())

    def _agreed(self, samples: list[str]) -> tuple[str | None, str]:
        """The reply the samples agree on and "label", or why there is none."""
        replies = []
        for text in samples:
            if self.answer_pattern is None:
                replies.append(text)
            elif match := self.answer_pattern.search(text):
                replies.append(match.group("answer"))
        if not replies:
            return samples[0], "unmatched"
        reply, count = Counter(replies).most_common(1)[0]
        if count < self.agreement * len(samples):
            return reply, "unknown"
        return reply, "label"

    def _classify(self, reply: str, statement: str) -> tuple[int, str]:
        label, how = self.answer_map.classify(reply)
        if self.claim_pattern is None or how == "unknown":
            return label, how
        match = self.claim_pattern.search(statement)
        if match is None:
            raise ValueError(
                f"ama/chain: the statement {statement!r} makes no claim matching "
                f"{self.claim_pattern.pattern!r}"
            )
        same = reply.strip().lower() == match.group("claim").strip().lower()
        return self.labels["yes" if same else "no"], "label"

    def _complete(self, prompts: list[str], n: int, stop: list[str]) -> list[list[str]]:
        if not prompts:
            return []
        results = self.llm.generate(
            prompts,
            n=n,
            temperature=self.temperature if n > 1 else 0.0,
            max_new_tokens=self.max_new_tokens,
            stop=stop,
            seed=self.seed,
        )
        if len(results) != len(prompts):
            raise RuntimeError(
                f"ama/chain: the LLM returned {len(results)} results for {len(prompts)} prompts"
            )
        return [[completion.text.strip() for completion in texts] for texts in results]

    def __repr__(self) -> str:
        shown = f"{self.name}, " if self.name else ""
        return f"PromptChain({shown}samples={self.samples})"
