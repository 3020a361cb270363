"""The paths stage: greedy answers and DiVeRSe's M x K reasoning paths from the reasoner.

For each test question: the greedy completion of the first prompt (the baseline) and the
M1 x M2 sampled paths of ``verifiers/diverse_prompts``; for the first ``train_questions``
training questions, the same paths, from which the verifier learns. Questions go to the LLM in
chunks (one progress-bar step each); put ``llm/cached`` in front of the backend and an
interrupted stage resumes from the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from examples.reasoning._io import write_jsonl
from examples.reasoning.data import load_split, read_problems
from examples.reasoning.pipeline import StageContext
from examples.reasoning.problems import Problem

__all__ = ["SamplePaths", "load_exemplars"]


def load_exemplars(path: str) -> list[dict[str, str]]:
    """Worked examples (``question``, ``solution``) for prompts, from a problems file.

    A malformed file (see :func:`read_problems`) or one without problems is a ValueError.
    """
    problems = read_problems(Path(path))
    if not problems:
        raise ValueError(f"{path}: no problems to use as exemplars")
    return [{"question": p.question, "solution": p.solution} for p in problems]


class SamplePaths:
    """Sample reasoning paths with ``prompts`` (a ``verifiers/diverse_prompts``).

    Writes ``test.jsonl`` (gold, greedy and paths per test question) and ``train.jsonl`` (gold
    solution and paths per training question). ``chunk`` questions go to the LLM at a time.
    """

    def __init__(
        self,
        prompts: Any,
        *,
        train_questions: int = 300,
        test_questions: int | None = None,
        chunk: int = 8,
        data_stage: str = "data",
    ) -> None:
        self.prompts = prompts
        self.train_questions = train_questions
        self.test_questions = test_questions
        self.chunk = chunk
        self.data_stage = data_stage

    def run(self, context: StageContext) -> str:
        """Sample and write the test and training paths."""
        data_dir = context.output(self.data_stage)
        test = load_split(data_dir, "test")[: self.test_questions]
        train = load_split(data_dir, "train")[: self.train_questions]
        write_jsonl(context.directory / "test.jsonl", self.evaluation_rows(test, "test paths"))
        train_paths = self.sample(train, "train paths")
        rows = [
            {"question": p.question, "gold": str(p.answer), "solution": p.solution, "paths": paths}
            for p, paths in zip(train, train_paths, strict=True)
        ]
        write_jsonl(context.directory / "train.jsonl", rows)
        per_question = self.prompts.num_prompts * self.prompts.samples_per_prompt
        return (
            f"{per_question} paths per question for {len(test)} test and {len(train)} training "
            f"questions ({self.prompts.failures} failed LLM calls)"
        )

    def evaluation_rows(self, problems: Sequence[Problem], desc: str) -> list[dict[str, Any]]:
        """Per problem: question, gold answer, the greedy completion and the sampled paths."""
        greedy = self.greedy([p.question for p in problems])
        paths = self.sample(problems, desc)
        return [
            {"question": p.question, "gold": str(p.answer), "greedy": g, "paths": question_paths}
            for p, g, question_paths in zip(problems, greedy, paths, strict=True)
        ]

    def greedy(self, questions: Sequence[str]) -> list[dict[str, Any]]:
        """The greedy completion of each question's first prompt, and its answer."""
        llm = self.prompts.llm
        out: list[dict[str, Any]] = []
        for start in tqdm(
            range(0, len(questions), self.chunk * 4), desc="greedy", unit="chunk", disable=None
        ):
            chunk = [self.prompts.prompts(q)[0] for q in questions[start : start + self.chunk * 4]]
            results = llm.generate(
                chunk,
                temperature=0.0,
                max_new_tokens=self.prompts.max_new_tokens,
                stop=self.prompts.stop,
            )
            for completions in results:
                text = completions[0].text if completions else ""
                out.append({"text": text, "answer": self.prompts.answer(text)})
        return out

    def sample(self, problems: Sequence[Problem], desc: str) -> list[list[list[Any]]]:
        """Each problem's paths as ``[text, answer, prompt index]`` triples."""
        out: list[list[list[Any]]] = []
        for start in tqdm(
            range(0, len(problems), self.chunk), desc=desc, unit="chunk", disable=None
        ):
            chunk = [p.question for p in problems[start : start + self.chunk]]
            for question_paths in self.prompts.generate(chunk):
                out.append([[p.text, p.answer, p.prompt_index] for p in question_paths.paths])
        return out
