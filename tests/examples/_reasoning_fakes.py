"""Hand-made fixtures for the reasoning stages' tests: a scripted LLM, problems, stage records.

``ScriptedLLM`` implements the ``LLM`` protocol of ``plugins.llm``: a function of (prompt,
index of the sample, generation parameters) gives each completion's text, and every call is
recorded. ``write_problems`` writes a data stage's split; ``finish_stage`` writes the record
that marks an earlier stage as done (``StageContext.output`` accepts it).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "reasoning" / "config.py"
if str(ROOT) not in sys.path:  # `examples` is not an installed package
    sys.path.insert(0, str(ROOT))

from examples.reasoning.pipeline import RECORD  # noqa: E402
from examples.reasoning.problems import Problem  # noqa: E402
from plugins.llm import Completion  # noqa: E402

Script = Callable[[str, int, dict[str, Any]], str | None]
"""(prompt, sample index, parameters) -> the completion's text; None fails the prompt."""


@attrs.define
class ScriptedLLM:
    """An LLM whose completions ``script`` writes; ``calls`` records each ``generate`` call.

    A prompt for which ``script`` returns None for its first sample gets an empty list (a
    request that failed for good, as the protocol says).
    """

    script: Script
    calls: list[dict[str, Any]] = attrs.field(factory=list)

    def generate(
        self,
        prompts: list[str],
        *,
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> list[list[Completion]]:
        """``n`` scripted completions per prompt."""
        parameters = {
            "n": n,
            "temperature": temperature,
            "top_p": top_p,
            "max_new_tokens": max_new_tokens,
            "stop": stop,
            "seed": seed,
        }
        self.calls.append({"prompts": list(prompts), **parameters})
        out = []
        for prompt in prompts:
            texts = [self.script(prompt, i, parameters) for i in range(n)]
            failed = texts[0] is None
            out.append([] if failed else [Completion(t or "", None, "stop") for t in texts])
        return out


def query(prompt: str) -> str:
    """The question a prompt asks (its last ``Question: ...`` before ``Answer:``)."""
    return prompt.rsplit("Question: ", 1)[1].removesuffix("\nAnswer:\n")


def problem(question: str, *steps: str) -> Problem:
    """A problem whose answer is the result of its last step (``"3+4=7"`` -> 7)."""
    return Problem(question, steps, int(steps[-1].rsplit("=", 1)[1]))


def write_problems(data_dir: Path, split: str, problems: Sequence[Problem]) -> Path:
    """Write ``problems`` as the data stage's ``split`` file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{split}.jsonl"
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in problems))
    return path


def finish_stage(run_dir: Path, name: str, order: int, wall: float = 1.0, cpu: float = 1.0) -> Path:
    """Record stage ``name`` as finished (as ``Pipeline`` does); return its directory."""
    directory = run_dir / name
    directory.mkdir(parents=True, exist_ok=True)
    record = {"name": name, "key": "k", "order": order, "done": True, "seconds": wall}
    (directory / RECORD).write_text(json.dumps({**record, "cpu_seconds": cpu}))
    return directory
