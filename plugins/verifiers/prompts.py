"""DiVeRSe's diverse prompts: M1 exemplar sets x M2 samples = M1*M2 reasoning paths per question.

The M1 exemplar sets are drawn once (seeded) from a pool of worked examples and shared by every
question, as the paper's fixed prompts are. A question never sees itself as an exemplar: where a
set holds the query, that exemplar is swapped for the set's next spare from the pool (dropped
when the pool has none). Each prompt is sampled M2 times in one batched ``llm.generate`` call
per chunk of prompts.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Hashable, Mapping, Sequence

import attrs

from plugins.llm import LLM
from plugins.verifiers.parsing import AnswerExtractor, RegexAnswer

__all__ = ["DiversePrompts", "QuestionPaths", "ReasoningPath", "WorkedExample"]

log = logging.getLogger(__name__)


@attrs.frozen
class WorkedExample:
    """A question with its step-by-step solution, used as an in-context exemplar."""

    question: str
    solution: str


@attrs.frozen
class ReasoningPath:
    """One sampled path: its text, its extracted answer (None: none found) and the index of
    the exemplar set (prompt) that produced it."""

    text: str
    answer: Hashable | None
    prompt_index: int


@attrs.frozen
class QuestionPaths:
    """A question's paths in prompt order, and the prompts whose LLM call failed."""

    question: str
    paths: tuple[ReasoningPath, ...]
    failed_prompts: tuple[int, ...] = ()

    @property
    def answers(self) -> list[Hashable | None]:
        """Each path's answer, in path order."""
        return [path.answer for path in self.paths]

    @property
    def texts(self) -> list[str]:
        """Each path's text, in path order."""
        return [path.text for path in self.paths]


def _as_example(item: WorkedExample | Mapping[str, str], index: int) -> WorkedExample:
    if isinstance(item, WorkedExample):
        return item
    try:
        return WorkedExample(question=item["question"], solution=item["solution"])
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"DiversePrompts: exemplars[{index}] must be a WorkedExample or a mapping with "
            f"'question' and 'solution', got {item!r}"
        ) from exc


def _render(name: str, template: str, question: str, solution: str) -> str:
    try:
        return template.format(question=question, solution=solution)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"DiversePrompts: {name}={template!r} must use only {{question}} and {{solution}} "
            f"placeholders: {exc!r}"
        ) from exc


class DiversePrompts:
    """Samples DiVeRSe reasoning paths from an ``LLM`` (registry group ``prompt_generators``).

    ``num_prompts`` exemplar sets (M1) of ``shots`` examples each are drawn from ``exemplars``
    with ``seed``; each prompt is sampled ``samples_per_prompt`` times (M2). A prompt reads
    ``exemplar_format`` for each exemplar, then ``query_format`` for the question. ``answer``
    extracts a path's final answer (a ``RegexAnswer`` or any callable returning None when it
    finds none). At most ``batch_size`` prompts go to the LLM per call. A query that is itself
    in an exemplar set gets that set with the exemplar replaced by a spare (see the module).
    """

    def __init__(
        self,
        llm: LLM,
        exemplars: Sequence[WorkedExample | Mapping[str, str]],
        *,
        num_prompts: int = 5,
        samples_per_prompt: int = 20,
        shots: int = 5,
        temperature: float = 0.7,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        stop: Sequence[str] | None = ("\n\n",),
        seed: int = 0,
        answer: AnswerExtractor | None = None,
        exemplar_format: str = "Question: {question}\nAnswer:\n{solution}\n\n",
        query_format: str = "Question: {question}\nAnswer:\n",
        batch_size: int = 16,
    ) -> None:
        pool = [_as_example(item, i) for i, item in enumerate(exemplars)]
        if not 1 <= shots <= len(pool):
            raise ValueError(
                f"DiversePrompts: shots={shots} must be between 1 and the pool size "
                f"({len(pool)} exemplars)"
            )
        for name, value in [
            ("num_prompts", num_prompts),
            ("samples_per_prompt", samples_per_prompt),
            ("batch_size", batch_size),
        ]:
            if value < 1:
                raise ValueError(f"DiversePrompts: {name} must be >= 1, got {value}")
        self.llm = llm
        self.samples_per_prompt = samples_per_prompt
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.stop = list(stop) if stop is not None else None
        self.seed = seed
        self.answer: AnswerExtractor = answer if answer is not None else RegexAnswer()
        self.query_format = query_format
        self.batch_size = batch_size
        self.failures = 0
        rng = random.Random(seed)
        self.exemplar_sets: list[list[WorkedExample]] = []
        self._spares: list[list[WorkedExample]] = []
        for _ in range(num_prompts):
            chosen = rng.sample(pool, shots)  # the same draws as before spares existed
            self.exemplar_sets.append(chosen)
            self._spares.append([e for e in pool if all(e is not c for c in chosen)])
        self.exemplar_format = exemplar_format
        self._prefixes = [self._prefix(s) for s in self.exemplar_sets]
        _render("query_format", query_format, "", "")  # fail here, not on the first question

    @property
    def num_prompts(self) -> int:
        """M1, the number of exemplar sets (prompts per question)."""
        return len(self._prefixes)

    def prompts(self, question: str) -> list[str]:
        """The M1 prompts for ``question``, in prompt order (never with itself as exemplar)."""
        query = _render("query_format", self.query_format, question, "")
        return [
            (self._prefix(self._without(i, question)) if self._holds(i, question) else prefix)
            + query
            for i, prefix in enumerate(self._prefixes)
        ]

    def _holds(self, index: int, question: str) -> bool:
        return any(e.question == question for e in self.exemplar_sets[index])

    def _without(self, index: int, question: str) -> list[WorkedExample]:
        """Exemplar set ``index`` with each exemplar of ``question`` swapped for a spare."""
        spares = iter(e for e in self._spares[index] if e.question != question)
        kept = []
        for exemplar in self.exemplar_sets[index]:
            if exemplar.question != question:
                kept.append(exemplar)
            elif (spare := next(spares, None)) is not None:
                kept.append(spare)
        return kept

    def _prefix(self, exemplars: Sequence[WorkedExample]) -> str:
        return "".join(
            _render("exemplar_format", self.exemplar_format, e.question, e.solution)
            for e in exemplars
        )

    def generate(self, questions: Sequence[str]) -> list[QuestionPaths]:
        """Sample M1*M2 paths for each question (fewer where an LLM call failed).

        A failed call (an empty completion list) is recorded in ``failed_prompts``, counted in
        ``self.failures`` and logged; it never raises.
        """
        jobs = [(q, p) for q in range(len(questions)) for p in range(self.num_prompts)]
        texts = [prompt for question in questions for prompt in self.prompts(question)]
        results: list[list[str]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            batch = self.llm.generate(
                chunk,
                n=self.samples_per_prompt,
                temperature=self.temperature,
                top_p=self.top_p,
                max_new_tokens=self.max_new_tokens,
                stop=self.stop,
                seed=self.seed,
            )
            if len(batch) != len(chunk):
                raise RuntimeError(
                    f"DiversePrompts: {self.llm!r} returned {len(batch)} results "
                    f"for {len(chunk)} prompts"
                )
            results.extend([completion.text for completion in samples] for samples in batch)
        paths: list[list[ReasoningPath]] = [[] for _ in questions]
        failed: list[list[int]] = [[] for _ in questions]
        for (q, p), samples in zip(jobs, results, strict=True):
            if not samples:
                failed[q].append(p)
                continue
            paths[q].extend(ReasoningPath(text, self.answer(text), p) for text in samples)
        n_failed = sum(len(f) for f in failed)
        if n_failed:
            self.failures += n_failed
            log.warning("DiversePrompts: %d of %d LLM calls failed", n_failed, len(jobs))
        return [
            QuestionPaths(question, tuple(paths[q]), tuple(failed[q]))
            for q, question in enumerate(questions)
        ]

    def __repr__(self) -> str:
        return (
            f"DiversePrompts(llm={self.llm!r}, num_prompts={self.num_prompts}, "
            f"samples_per_prompt={self.samples_per_prompt}, seed={self.seed})"
        )
