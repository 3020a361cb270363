"""ama/reformulations: the LLM rewrites a seed prompt; rewrites that parse are kept."""

from __future__ import annotations

import pytest
from _ama_task import ANSWER_DEMOS, LABELS, QUESTION_DEMOS

from plugins.ama.chains import PromptChain
from plugins.ama.reformulate import Reformulations, parses_like
from plugins.llm._faults import FaultPlan
from plugins.llm.openai_backend import OpenAILLM
from plugins.llm.testing import serve

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("rewrite", "kept"),
    [
        ("Ask a question about {input}.", True),
        ("Ask about it.", False),  # lost the placeholder
        ("Ask about {input} and {other}.", False),  # a placeholder the template cannot fill
        ("Ask about {input", False),  # does not parse as a template
        ("   ", False),
    ],
)
def test_rewrites_must_keep_the_seeds_placeholders(rewrite: str, kept: bool) -> None:
    assert parses_like(rewrite, "Rewrite {input} as a question.") is kept


def test_sampled_rewrites_are_kept_or_counted(tiny_llm) -> None:
    reformulations = Reformulations(tiny_llm, n=4, temperature=1.0, seed=3)
    seed = "Rewrite the statement as a question."
    kept = reformulations.generate(seed)
    assert len(kept) + reformulations.rejected == 4
    assert all(parses_like(text, seed) for text in kept)
    assert len({text.lower() for text in kept}) == len(kept)
    assert reformulations.generate(seed) == kept  # seeded: the same draws again
    # A seed with a placeholder the tiny model never writes: every rewrite is rejected.
    assert Reformulations(tiny_llm, n=3, seed=3).generate("Ask about {input}.") == []


def test_chains_from_rewrites_share_everything_but_the_instruction(tiny_llm) -> None:
    base = PromptChain(
        tiny_llm, labels=LABELS, question_demos=QUESTION_DEMOS, answer_demos=ANSWER_DEMOS
    )
    chains = Reformulations(tiny_llm, n=4, temperature=1.0, seed=3).chains(base)
    assert chains[0] is base and len(chains) >= 1
    for chain in chains[1:]:
        assert chain.question_instruction != base.question_instruction
        assert chain.answer_prompt("q", "c") == base.answer_prompt("q", "c")
        assert chain.labels == base.labels and chain.llm is base.llm


def test_a_failed_call_returns_nothing_and_is_counted(tiny_llm) -> None:
    with serve(tiny_llm, faults=FaultPlan.first(1, "500")) as base_url:
        llm = OpenAILLM("tiny", base_url=base_url, max_retries=0)
        reformulations = Reformulations(llm, n=2)
        assert reformulations.generate("Rewrite the statement as a question.") == []
    assert reformulations.failures == 1 and llm.failures == 1
