"""ama/chain and ama/task end to end on the tiny local model, through both LLM backends."""

from __future__ import annotations

import numpy as np
import pytest
from _ama_task import ANSWER_DEMOS, EXAMPLES, INSTRUCTIONS, LABELS, QUESTION_DEMOS

from plugins.ama.chains import PromptChain
from plugins.ama.label_model import LabelModel
from plugins.ama.task import ChainTask, TaskResult
from plugins.llm._faults import FaultPlan
from plugins.llm._retry import Backoff
from plugins.llm.openai_backend import OpenAILLM
from plugins.llm.testing import serve

pytestmark = pytest.mark.timeout(120)

INPUTS = [e["input"] for e in EXAMPLES]
CONTEXTS = [e["context"] for e in EXAMPLES]


def make_chain(llm, instruction: str = INSTRUCTIONS[0], labels=LABELS) -> PromptChain:
    return PromptChain(
        llm,
        labels=labels,
        question_demos=QUESTION_DEMOS,
        answer_demos=ANSWER_DEMOS,
        question_instruction=instruction,
        max_new_tokens=8,
    )


def make_task(llm) -> ChainTask:
    chains = [make_chain(llm, text) for text in INSTRUCTIONS]
    return ChainTask(chains, aggregator=LabelModel(2), examples=EXAMPLES)


def check_result(result: TaskResult) -> None:
    n, m = len(EXAMPLES), len(INSTRUCTIONS)
    assert result.votes.votes.shape == (n, m)
    assert np.isin(result.votes.votes, [-1, 0, 1]).all()
    assert result.predictions.shape == (n,) and np.isin(result.predictions, [0, 1]).all()
    assert sum(result.votes.outcomes.values()) == n * m
    assert result.accuracy is not None and 0.0 <= result.accuracy <= 1.0
    for record in result.votes.chains:
        assert len(record.questions) == len(record.answers) == n
        assert all(isinstance(q, str) for q in record.questions)
    assert str(result).startswith(f"ama/task: {n}x{m} votes (")


def test_prompts_carry_the_chains_demonstrations(tiny_llm) -> None:
    chain = make_chain(tiny_llm)
    prompt = chain.answer_prompt("Is it late?", "It is 5 pm.")
    assert prompt.startswith(chain.answer_instruction)
    assert "Question: Is the sky green?\nAnswer: Unknown" in prompt
    assert prompt.endswith("Context: It is 5 pm.\nQuestion: Is it late?\nAnswer:")
    assert chain.question_prompt("it rains").endswith("Statement: it rains\nQuestion:")
    with pytest.raises(ValueError, match=r"demonstration 0 lacks field\(s\) \['answer'\]"):
        PromptChain(tiny_llm, labels=LABELS, answer_demos=[{"context": "c", "question": "q"}])


@pytest.mark.filterwarnings("ignore:LabelModel.fit. every vote abstains")  # a random tiny LM
def test_task_through_transformers_and_openai_backends_agree(tiny_llm) -> None:
    local = make_task(tiny_llm).run()
    check_result(local)
    with serve(tiny_llm) as base_url:
        remote = make_task(OpenAILLM("tiny", base_url=base_url, timeout=30.0)).run()
    check_result(remote)
    # Greedy decoding of the same model: the served chains say exactly what the local ones say.
    assert np.array_equal(remote.votes.votes, local.votes.votes)
    assert [c.answers for c in remote.votes.chains] == [c.answers for c in local.votes.chains]


def test_an_answer_mapping_that_never_matches_abstains_and_is_counted(tiny_llm) -> None:
    chain = make_chain(tiny_llm, labels={"zebra crossing": 1, "okapi": 0})
    record = chain.vote(INPUTS, CONTEXTS)
    assert record.votes.tolist() == [-1, -1, -1]
    assert record.outcomes["unmatched"] + record.outcomes["unknown"] == 3
    assert all(isinstance(answer, str) for answer in record.answers)


def test_failed_llm_calls_become_counted_abstains(tiny_llm) -> None:
    chain = make_chain(tiny_llm)
    failing_question = chain.question_prompt(INPUTS[0])
    plan = FaultPlan(by_prompt={failing_question: ("500",)})
    with serve(tiny_llm, faults=plan) as base_url:
        llm = OpenAILLM("tiny", base_url=base_url, max_retries=0, backoff=Backoff(base_s=0.01))
        record = make_chain(llm).vote(INPUTS, CONTEXTS)
    assert llm.failures == 1
    assert record.votes[0] == -1 and record.questions[0] is None and record.answers[0] is None
    assert record.outcomes["failed"] == 1 and sum(record.outcomes.values()) == 3
    assert all(q is not None for q in record.questions[1:])


def test_mismatched_inputs_and_missing_fields_are_errors(tiny_llm) -> None:
    with pytest.raises(ValueError, match="3 inputs but 2 contexts"):
        make_chain(tiny_llm).vote(INPUTS, CONTEXTS[:2])
    with pytest.raises(ValueError, match=r"examples\[0\] lacks \['context'\]"):
        ChainTask([make_chain(tiny_llm)], aggregator=LabelModel(2), examples=[{"input": "x"}]).run()
    with pytest.raises(ValueError, match="name 3 classes but the aggregator has cardinality 2"):
        ChainTask([make_chain(tiny_llm, labels={"a": 2})], aggregator=LabelModel(2))
