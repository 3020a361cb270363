"""The main job's yes/no stage (``ama``) on a scripted LLM: labels, each chain's votes, and
what the majority and the label model predict from them.

The stage is the config's own ``ama`` node (its 4 chains, seeds, samples and aggregators) with
only the LLM and the exemplars swapped. Chain 1 always answers right; chains 2-4 follow a
6-item cycle of right (R), off by 100 (O) and no answer (X). A chain that answers right votes
the label; one that is off votes NO (its number is never the candidate); one with no answer
abstains. On a YES item where two of chains 2-4 are off and the third abstains, the majority
says NO, while the label model, which learns that chain 1 never errs and chains 2-4 err toward
NO, says YES.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _reasoning_fakes import CONFIG, ScriptedLLM, finish_stage, problem, query, write_problems

from corelib import instantiate, load_config
from examples.reasoning.lm import EXEMPLAR_FORMAT, QUERY_FORMAT
from examples.reasoning.pipeline import StageContext
from examples.reasoning.yesno import OpenQuestionChain, YesNoTask, yes_no_question
from plugins.llm import LLM

MAIN = load_config(CONFIG)  # the main job's config

PROBLEMS = [
    problem(f"Ann has {i} apples. She buys 2 more. How many does she have?", f"{i}+2={i + 2}")
    for i in range(1, 13)
]
EXEMPLARS = [
    {"question": "Ben has 1 pen. He finds 3. How many?", "solution": "1+3=4\nThe answer is 4."},
    {"question": "Cara has 5 eggs. She loses 2. How many?", "solution": "5-2=3\nThe answer is 3."},
]
CYCLE = ["OOX", "RRO", "OXO", "ROR", "XOO", "ORR"]  # chains 2, 3, 4 on item i % 6
LABELS = [0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0]  # seed 0's fair coins for these 12 problems
SAMPLES = {"R": "ORR", "O": "ROO", "X": "XXX"}  # chain 4 answers the most frequent of 3 samples


def _text(kind: str, answer: int) -> str:
    return {
        "R": f"{answer - 2}+2={answer}\nThe answer is {answer}.",
        "O": f"The answer is {answer + 100}.",
        "X": "I do not know.",
    }[kind]


def _script(prompt: str, sample: int, parameters: dict[str, Any]) -> str:
    """Answers by chain (told apart by the seed it passes: 1..4) and problem."""
    i = next(i for i, p in enumerate(PROBLEMS) if p.question == query(prompt))
    seed, answer = parameters["seed"], PROBLEMS[i].answer
    if seed == 1:
        return _text("R", answer)
    kind = CYCLE[i % len(CYCLE)][seed - 2]
    return _text(SAMPLES[kind][sample] if seed == 4 else kind, answer)


def _expected_votes(labels: list[int]) -> list[list[int]]:
    return [
        [y, *({"R": y, "O": 0, "X": -1}[kind] for kind in CYCLE[i % len(CYCLE)])]
        for i, y in enumerate(labels)
    ]


def _ama_node(llm: ScriptedLLM) -> dict[str, Any]:
    """The config's ``ama`` node with the scripted LLM and hand-made exemplars."""
    node = MAIN["ama"]
    chains = [{**chain, "llm": llm, "exemplars": EXEMPLARS} for chain in node["chains"]]
    return {**node, "chains": chains}


def _run(tmp_path: Path, node: dict[str, Any]) -> tuple[YesNoTask, str, dict[str, Any]]:
    write_problems(finish_stage(tmp_path, "data", 0), "test", PROBLEMS)
    task = instantiate(node)
    summary = task.run(StageContext(tmp_path, "ama"))
    return task, summary, json.loads((tmp_path / "ama" / "yesno.json").read_text())


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    llm = ScriptedLLM(_script)
    task, summary, written = _run(tmp_path_factory.mktemp("ama"), _ama_node(llm))
    return {"llm": llm, "task": task, "summary": summary, "written": written}


def test_each_question_asks_about_the_true_answer_or_a_near_miss_labelled_accordingly(
    stage: dict[str, Any],
) -> None:
    written = stage["written"]
    assert written["labels"] == LABELS
    for problem_, label, text in zip(PROBLEMS, LABELS, written["inputs"], strict=True):
        candidate = int(text.removeprefix("Is the answer to this problem ").removesuffix("?"))
        assert text == yes_no_question(candidate)
        assert (candidate == problem_.answer) == (label == 1)  # 1 is YES: a true candidate
        if label == 0:
            assert candidate >= 0 and 1 <= abs(candidate - problem_.answer) <= 10


def test_each_chain_asks_the_open_question_and_votes_what_its_answer_says(
    stage: dict[str, Any],
) -> None:
    llm, written = stage["llm"], stage["written"]
    assert isinstance(llm, LLM)
    assert written["votes"] == _expected_votes(LABELS)
    assert written["chains"] == [
        "OpenQuestionChain(samples=1, seed=1)",
        "OpenQuestionChain(samples=1, seed=2)",
        "OpenQuestionChain(samples=1, seed=3)",
        "OpenQuestionChain(samples=3, seed=4)",
    ]
    # one batched call per chain: the problems (never the yes/no question) after one demo
    assert [(c["seed"], c["n"], c["temperature"]) for c in llm.calls] == [
        (1, 1, 0.0),
        (2, 1, 0.0),
        (3, 1, 0.0),
        (4, 3, 0.6),
    ]
    demos = {EXEMPLAR_FORMAT.format(**demo) for demo in EXEMPLARS}
    for call in llm.calls:
        assert call["stop"] == ["\n\n"] and call["max_new_tokens"] == 64
        for prompt, problem_ in zip(call["prompts"], PROBLEMS, strict=True):
            query_text = QUERY_FORMAT.format(question=problem_.question)
            assert prompt.endswith(query_text) and prompt.removesuffix(query_text) in demos


def test_the_label_model_follows_the_reliable_chain_where_the_majority_is_outvoted(
    stage: dict[str, Any],
) -> None:
    predictions = stage["written"]["predictions"]
    outvoted = [6, 8, 10]  # YES items where two of chains 2-4 are off and the third abstains
    assert predictions["majority"] == [0 if i in outvoted else y for i, y in enumerate(LABELS)]
    assert predictions["label model"] == LABELS  # not a majority vote: it differs on 6, 8, 10
    assert stage["summary"] == "12 questions x 4 chains; majority 75.0%, label model 100.0%"
    label_model = stage["task"].aggregators["label model"]
    proba = label_model.predict_proba(np.asarray(stage["written"]["votes"]))[:, 1]
    assert np.all(np.where(np.asarray(LABELS) == 1, proba > 0.7, proba < 0.3))  # not a coin flip


class _RecordingAggregator:
    """Predicts chain 1's votes; records the class balance ``fit`` was given."""

    def __init__(self) -> None:
        self.balances: list[Any] = []

    def fit(self, votes: np.ndarray, *, class_balance: np.ndarray | None = None) -> Any:
        self.balances.append(None if class_balance is None else class_balance.tolist())
        return self

    def predict(self, votes: np.ndarray) -> np.ndarray:
        return votes[:, 0]


@pytest.mark.parametrize(("known", "balance"), [(True, [0.5, 0.5]), (False, None)])
def test_the_aggregators_are_told_the_fair_coin_only_with_known_balance(
    tmp_path: Path, known: bool, balance: list[float] | None
) -> None:
    aggregator = _RecordingAggregator()
    node = {
        **_ama_node(ScriptedLLM(_script)),
        "aggregators": {"first chain": aggregator},
        "known_balance": known,
        "questions": 6,
    }
    _, summary, written = _run(tmp_path, node)
    assert aggregator.balances == [balance]
    assert written["predictions"] == {"first chain": LABELS[:6]}
    assert summary == "6 questions x 4 chains; first chain 100.0%"


def test_a_chain_abstains_where_the_llm_failed_or_no_answer_was_found() -> None:
    replies = {PROBLEMS[0].question: None, PROBLEMS[1].question: "I do not know."}

    def script(prompt: str, sample: int, parameters: dict[str, Any]) -> str | None:
        return replies.get(query(prompt), "The answer is 5.")

    chain = OpenQuestionChain(ScriptedLLM(script), EXEMPLARS, seed=1)
    inputs = [yes_no_question(5), yes_no_question(5), yes_no_question(5), yes_no_question(4)]
    votes = chain.vote(inputs, [p.question for p in PROBLEMS[:4]])
    assert votes.votes.tolist() == [-1, -1, 1, 0]
    assert votes.answers == [None, None, "5", "5"]
    assert votes.outcomes == {"failed": 1, "unmatched": 1, "label": 2}
    with pytest.raises(ValueError, match="names no candidate answer"):
        chain.vote(["Is it five?"], [PROBLEMS[2].question])


def test_the_stage_needs_three_chains() -> None:
    chain = OpenQuestionChain(ScriptedLLM(_script), EXEMPLARS)
    with pytest.raises(ValueError, match="needs at least 3 prompt chains, got 2"):
        YesNoTask([chain, chain], {})
