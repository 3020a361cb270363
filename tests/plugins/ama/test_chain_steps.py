"""AMA chain steps on an LLM that answers from a table: question() output, the demonstrations
in each prompt, "Unknown" and unparsable answers abstaining, sampled answers, exact votes."""

from __future__ import annotations

from typing import Any

import pytest

from plugins.ama.chains import PromptChain
from plugins.ama.demos import load_demo_set, task_chains
from plugins.llm import Completion


class TableLLM:
    """Completes a prompt from `table` keyed by the prompt's last line of input (the statement
    or the question asked); `calls` records each generate call."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[dict[str, Any]] = []

    def generate(self, prompts: list[str], **parameters: Any) -> list[list[Completion]]:
        self.calls.append({"prompts": list(prompts), **parameters})
        out = []
        for prompt in prompts:
            key = _asked(prompt)
            texts = self.table.get(key, [])[: parameters.get("n", 1)]
            out.append([Completion(text, None, "stop") for text in texts])
        return out


def _asked(prompt: str) -> str:
    """The query's input: the statement, or the question of an answer prompt."""
    block = prompt.rsplit("\n\n", 1)[-1] if not prompt.endswith("\n") else prompt
    for marker in ("Statement: ", "Question: "):
        if marker in block:
            return block.rsplit(marker, 1)[1].split("\n", 1)[0]
    raise AssertionError(f"no input in {prompt!r}")


STATEMENTS = ["the shop opens at eight", "the road was closed", "the cat is asleep", "it snowed"]
QUESTIONS = ["Does the shop open at eight?", "Was the road closed?", "Is the cat asleep?", "Snow?"]
CONTEXT = "A short passage."


def test_an_entailment_chain_asks_answers_and_votes_exactly() -> None:
    table = {s: [q] for s, q in zip(STATEMENTS, QUESTIONS, strict=True)}
    table.update(
        {
            "Does the shop open at eight?": ["Yes, at eight"],
            "Was the road closed?": ["No, it was open"],
            "Is the cat asleep?": ["Unknown"],
            "Snow?": ["Perhaps the weather"],  # parses as no label
        }
    )
    llm = TableLLM(table)
    [chain] = task_chains(llm, "entailment", chains=[1])
    record = chain.vote(STATEMENTS, [CONTEXT] * 4)
    assert record.questions == QUESTIONS
    assert record.answers == ["Yes, at eight", "No, it was open", "Unknown", "Perhaps the weather"]
    assert record.votes.tolist() == [1, 0, -1, -1]
    assert record.outcomes == {"label": 2, "unknown": 1, "unmatched": 1}
    # Two batched calls: question() then answer(), each prompt carrying this chain's demos.
    question_call, answer_call = llm.calls
    demos = load_demo_set("entailment")["chains"][1]
    for prompt in question_call["prompts"]:
        for demo in demos["question_demos"]:
            assert f"Statement: {demo['statement']}\nQuestion: {demo['question']}" in prompt
    for prompt, question in zip(answer_call["prompts"], QUESTIONS, strict=True):
        for demo in demos["answer_demos"]:
            assert f"Question: {demo['question']}\nAnswer: {demo['answer']}" in prompt
        assert prompt.endswith(f"Context: {CONTEXT}\nQuestion: {question}\nAnswer:")
    assert question_call["stop"] == answer_call["stop"] == ["\n"]
    assert question_call["temperature"] == answer_call["temperature"] == 0.0


def test_each_shipped_chain_has_its_own_demonstrations() -> None:
    chains = task_chains(TableLLM({}), "entailment")
    prompts = [chain.answer_prompt("Q?", "C.") for chain in chains]
    assert len(set(prompts)) == len(chains) == 3
    assert [repr(chain) for chain in chains] == [
        f"PromptChain(entailment[{i}], samples=1)" for i in range(3)
    ]


CLAIM = "Ann has 4 eggs. She buys 3 more. In the end, Ann has {} eggs."
PROBLEM = "Ann has 4 eggs. She buys 3 more. How many eggs does Ann have?"


def test_an_arithmetic_chain_rewrites_the_claim_and_compares_the_answer() -> None:
    llm = TableLLM({PROBLEM: ["4+3=7\nThe answer is 7."]})
    [chain] = task_chains(llm, "arithmetic_claims", chains=[2])
    claims = [CLAIM.format(7), CLAIM.format(9)]
    assert chain.question(claims) == [PROBLEM, PROBLEM]
    assert llm.calls == []  # the fixed rewrite needs no LLM call
    record = chain.vote(claims, ["", ""])
    assert record.votes.tolist() == [1, 0] and record.answers == ["7", "7"]
    [call] = llm.calls
    demo = load_demo_set("arithmetic_claims")["chains"][2]["answer_demos"][0]
    expected = f"Question: {demo['question']}\nAnswer:\n{demo['answer']}\n\n"
    assert call["prompts"][0] == expected + f"Question: {PROBLEM}\nAnswer:\n"
    assert call["stop"] == ["\n\n"] and call["max_new_tokens"] == 64
    # An answer without "The answer is N." does not parse: abstain.
    record = task_chains(TableLLM({PROBLEM: ["4+3=7"]}), "arithmetic_claims")[0].vote(
        claims[:1], [""]
    )
    assert record.votes.tolist() == [-1] and record.outcomes == {"unmatched": 1}
    with pytest.raises(ValueError, match="does not match the question_template"):
        chain.question(["Ann has 7 eggs."])


@pytest.mark.parametrize(
    ("samples", "agreement", "vote", "outcome"),
    [
        (["The answer is 7.", "The answer is 7.", "The answer is 8."], 0.5, 1, "label"),
        (["The answer is 8.", "The answer is 8.", "7"], 0.5, 0, "label"),
        (["The answer is 7.", "The answer is 7.", "The answer is 8."], 1.0, -1, "unknown"),
        (["The answer is 6.", "The answer is 7.", "The answer is 8."], 0.5, -1, "unknown"),
        (["6", "7", "8"], 0.5, -1, "unmatched"),
    ],
)
def test_sampled_answers_vote_only_when_enough_samples_agree(
    samples: list[str], agreement: float, vote: int, outcome: str
) -> None:
    llm = TableLLM({PROBLEM: samples})
    [chain] = task_chains(
        llm, "arithmetic_claims", chains=[3], samples=3, temperature=0.7, agreement=agreement
    )
    record = chain.vote([CLAIM.format(7)], [""])
    assert record.votes.tolist() == [vote] and record.outcomes == {outcome: 1}
    [call] = llm.calls
    assert (call["n"], call["temperature"], call["seed"]) == (3, 0.7, 3)  # seed + chain index


def test_a_failed_call_abstains_and_is_counted() -> None:
    [chain] = task_chains(TableLLM({}), "entailment", chains=[0])
    record = chain.vote(["the sun is hot"], [CONTEXT])
    assert record.votes.tolist() == [-1] and record.questions == [None]
    assert record.outcomes == {"failed": 1}


def test_a_template_that_contradicts_its_demonstrations_is_refused() -> None:
    template = {"pattern": r"(?P<s>.+)", "question": "{s}?"}
    with pytest.raises(ValueError, match=r"question demonstration 0: the question_template gives"):
        PromptChain(
            TableLLM({}),
            labels={"yes": 1, "no": 0},
            question_demos=[{"statement": "it rains", "question": "Does it rain?"}],
            question_template=template,
        )
    with pytest.raises(ValueError, match=r"has no group \(\?P<claim>"):
        PromptChain(TableLLM({}), labels={"yes": 1, "no": 0}, claim_pattern=r"\d+")
