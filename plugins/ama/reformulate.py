"""`ama/reformulations`: the LLM writes reformulations of a seed prompt (AMA's own step)."""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence

from plugins.ama._prompts import few_shot
from plugins.ama.chains import PromptChain
from plugins.llm import LLM

INSTRUCTION = "Write the instruction in other words, keeping its meaning."


class Reformulations:
    """Ask the LLM for `n` sampled rewrites of a seed prompt; keep those that parse.

    A rewrite parses when it is a non-empty line, differs from the seed and from the rewrites
    kept before it (ignoring case), and has exactly the seed's `{placeholders}`, so it can take
    the seed's place in a template. `failures` counts prompts whose LLM call failed and
    `rejected` the rewrites that did not parse, over all calls.

    Args:
        llm: any `plugins.llm.LLM` backend.
        n: rewrites drawn per seed prompt.
        demos: mappings with "original" and "reformulation", shown before the seed.
        instruction: the instruction opening the prompt.
        temperature, seed: sampling (a temperature of 0 gives one distinct rewrite at most).
    """

    def __init__(
        self,
        llm: LLM,
        *,
        n: int = 4,
        demos: Sequence[Mapping[str, str]] = (),
        instruction: str = INSTRUCTION,
        temperature: float = 0.7,
        seed: int = 0,
        max_new_tokens: int = 48,
    ) -> None:
        self.llm = llm
        self.n = n
        self.demos = [dict(demo) for demo in demos]
        self.instruction = instruction
        self.temperature = temperature
        self.seed = seed
        self.max_new_tokens = max_new_tokens
        self.failures = 0
        self.rejected = 0

    def generate(self, seed_prompt: str) -> list[str]:
        """The rewrites of `seed_prompt` that parse, in the order drawn."""
        prompt = few_shot(
            self.instruction,
            self.demos,
            "Original: {original}\nReformulation: {reformulation}",
            {"original": seed_prompt},
        )
        [completions] = self.llm.generate(
            [prompt],
            n=self.n,
            temperature=self.temperature,
            max_new_tokens=self.max_new_tokens,
            stop=["\n"],
            seed=self.seed,
        )
        if not completions:
            self.failures += 1
            return []
        kept: list[str] = []
        seen = {seed_prompt.strip().lower()}
        for completion in completions:
            text = completion.text.strip()
            if text.lower() not in seen and parses_like(text, seed_prompt):
                kept.append(text)
                seen.add(text.lower())
            else:
                self.rejected += 1
        return kept

    def chains(self, base: PromptChain) -> list[PromptChain]:
        """`base` followed by one chain per kept rewrite of its question instruction."""
        rewrites = self.generate(base.question_instruction)
        return [base, *(base.with_question_instruction(text) for text in rewrites)]


def parses_like(rewrite: str, seed_prompt: str) -> bool:
    """Whether `rewrite` can stand in for `seed_prompt`: non-blank, and a format string with
    exactly the seed's `{placeholders}`."""
    fields = _fields(rewrite)
    return bool(rewrite.strip()) and fields is not None and fields == _fields(seed_prompt)


def _fields(template: str) -> frozenset[str] | None:
    """The `{placeholder}` names of a format string; None when it does not parse as one."""
    try:
        return frozenset(
            name for _, name, _, _ in string.Formatter().parse(template) if name is not None
        )
    except ValueError:
        return None
