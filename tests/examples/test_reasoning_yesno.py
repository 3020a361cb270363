"""The main job's yes/no stage (``ama``) on a scripted LLM: claims and labels, the questions
the chains ask, each chain's votes, and what majority, the label model and AMA's metal label
model predict from them.

The stage is the config's own ``ama`` node (its aggregators, balance and seed) with the LLM
swapped and 4 of the shipped ``arithmetic_claims`` chains. Chain 1 always answers right; chains
2-4 follow a 6-item cycle of right (R), off by 100 (O) and no parsable answer (X). A chain that
answers right votes the label; one that is off votes NO (its number is never the claimed one);
one with no answer abstains. On a YES item where two of chains 2-4 are off and the third
abstains, the majority says NO, while the label model, which learns that chain 1 never errs
and chains 2-4 err toward NO, says YES.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _reasoning_fakes import CONFIG, ScriptedLLM, finish_stage, problem, query, write_problems

from corelib import instantiate, load_config
from examples.reasoning.pipeline import StageContext
from examples.reasoning.yesno import YesNoTask, claim
from plugins.ama.demos import load_demo_set
from plugins.llm import LLM

MAIN = load_config(CONFIG)  # the main job's config

PROBLEMS = [
    problem(
        f"Ann has {i} apples. She buys 2 more. How many apples does Ann have?", f"{i}+2={i + 2}"
    )
    for i in range(1, 13)
]
VAL = [
    problem(f"Ben has {i} pens. He finds 3 more. How many pens does Ben have?", f"{i}+3={i + 3}")
    for i in range(1, 7)
]
CYCLE = ["OOX", "RRO", "OXO", "ROR", "XOO", "ORR"]  # chains 2, 3, 4 on item i % 6
LABELS = [0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0]  # seed 0's fair coins for these 12 problems
DEMOS = load_demo_set("arithmetic_claims")["chains"]


def _text(kind: str, answer: int) -> str:
    return {
        "R": f"{answer - 2}+2={answer}\nThe answer is {answer}.",
        "O": f"The answer is {answer + 100}.",
        "X": "I do not know.",
    }[kind]


def _script(prompt: str, sample: int, parameters: dict[str, Any]) -> str:
    """Answers by chain (told apart by the seed it passes: 0..3) and problem."""
    everything = PROBLEMS + VAL
    i = next(i for i, p in enumerate(everything) if p.question == query(prompt))
    seed, answer = parameters["seed"], everything[i].answer
    if seed == 0 or i >= len(PROBLEMS):
        return _text("R", answer)
    return _text(CYCLE[i % len(CYCLE)][seed - 1], answer)


def _expected_votes(labels: list[int]) -> list[list[int]]:
    return [
        [y, *({"R": y, "O": 0, "X": -1}[kind] for kind in CYCLE[i % len(CYCLE)])]
        for i, y in enumerate(labels)
    ]


def _ama_node(llm: ScriptedLLM) -> dict[str, Any]:
    """The config's ``ama`` node with the scripted LLM and 4 of its chains."""
    node = MAIN["ama"]
    return {**node, "chains": {**node["chains"], "llm": llm, "chains": [0, 1, 2, 3]}}


def _run(tmp_path: Path, node: dict[str, Any]) -> tuple[YesNoTask, str, dict[str, Any]]:
    data = finish_stage(tmp_path, "data", 0)
    write_problems(data, "test", PROBLEMS)
    write_problems(data, "val", VAL)
    task = instantiate(node)
    summary = task.run(StageContext(tmp_path, "ama"))
    return task, summary, json.loads((tmp_path / "ama" / "yesno.json").read_text())


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    llm = ScriptedLLM(_script)
    task, summary, written = _run(tmp_path_factory.mktemp("ama"), _ama_node(llm))
    return {"llm": llm, "task": task, "summary": summary, "written": written}


def test_each_claim_is_about_the_true_answer_or_a_near_miss_labelled_accordingly(
    stage: dict[str, Any],
) -> None:
    written = stage["written"]
    assert written["labels"] == LABELS
    for split, problems in ((written, PROBLEMS), (written["validation"], VAL)):
        for problem_, label, text in zip(problems, split["labels"], split["inputs"], strict=True):
            value = int(text.rsplit(" has ", 1)[1].split()[0])
            assert text == claim(problem_, value)
            assert (value == problem_.answer) == (label == 1)  # 1 is YES: a true claim
            if label == 0:
                assert value >= 0 and 1 <= abs(value - problem_.answer) <= 10
    assert (
        claim(PROBLEMS[0], 9) == "Ann has 1 apples. She buys 2 more. In the end, Ann has 9 apples."
    )
    with pytest.raises(ValueError, match="does not end 'How many X does Y have"):
        claim(problem("What is 2+2?", "2+2=4"), 4)


def test_each_chain_asks_the_problem_after_its_own_demonstration_and_votes_what_it_answers(
    stage: dict[str, Any],
) -> None:
    llm, written = stage["llm"], stage["written"]
    assert isinstance(llm, LLM)
    assert written["votes"] == _expected_votes(LABELS)
    assert written["validation"]["votes"] == [[y] * 4 for y in written["validation"]["labels"]]
    assert written["chains"] == [
        f"PromptChain(arithmetic_claims[{i}], samples=1)" for i in range(4)
    ]
    assert written["outcomes"][0] == {"label": 12}
    assert written["outcomes"][1] == {"label": 10, "unmatched": 2}  # X on items 0 and 6
    # One batched answer() call per chain and split (question() is a fixed rewrite): the
    # problem itself, never the claim, after the chain's own worked demonstration.
    assert [(c["seed"], len(c["prompts"])) for c in llm.calls] == [
        *((seed, len(VAL)) for seed in range(4)),
        *((seed, len(PROBLEMS)) for seed in range(4)),
    ]
    for call in llm.calls:
        assert call["stop"] == ["\n\n"] and call["max_new_tokens"] == 64
        assert call["n"] == 1 and call["temperature"] == 0.0
        [demo] = DEMOS[call["seed"]]["answer_demos"]
        prefix = f"Question: {demo['question']}\nAnswer:\n{demo['answer']}\n\n"
        problems = VAL if len(call["prompts"]) == len(VAL) else PROBLEMS
        for prompt, problem_ in zip(call["prompts"], problems, strict=True):
            assert prompt == prefix + f"Question: {problem_.question}\nAnswer:\n"


def test_the_label_model_follows_the_reliable_chain_where_the_majority_is_outvoted(
    stage: dict[str, Any],
) -> None:
    predictions = stage["written"]["predictions"]
    outvoted = [6, 8, 10]  # YES items where two of chains 2-4 are off and the third abstains
    assert predictions["majority"] == [0 if i in outvoted else y for i, y in enumerate(LABELS)]
    assert predictions["label model"] == LABELS  # not a majority vote: it differs on 6, 8, 10
    # metal's moment fit also follows chain 1 here (P(yes) 0.58-0.75 on the outvoted items)
    assert predictions["AMA's metal label model"] == LABELS
    assert stage["summary"] == (
        "4 chains; val: 6 questions, majority 100.0%, label model 100.0%, AMA's metal label "
        "model 100.0%; test: 12 questions, majority 75.0%, label model 100.0%, AMA's metal "
        "label model 100.0%"
    )
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
        "splits": ["test"],
    }
    _, summary, written = _run(tmp_path, node)
    assert aggregator.balances == [balance]
    assert written["predictions"] == {"first chain": LABELS[:6]}
    assert summary == "4 chains; test: 6 questions, first chain 100.0%"


def test_the_stage_needs_three_chains() -> None:
    chain = instantiate(_ama_node(ScriptedLLM(_script))["chains"])[0]
    with pytest.raises(ValueError, match="needs at least 3 prompt chains, got 2"):
        YesNoTask([chain, chain], {})


def test_the_report_shows_test_with_its_interval_and_validation_beside_it(
    stage: dict[str, Any],
) -> None:
    from examples.reasoning.report import Report, _yes_no_lines

    written = stage["written"]
    report = Report({})
    test, validation = report.yes_no(written), report.yes_no(written["validation"])
    names = ["chain 1", "chain 2", "chain 3", "chain 4", "majority", "label model"]
    assert list(test) == list(validation) == [*names, "AMA's metal label model"]
    # chain 2 is right where it answers right (R: items 1, 3, 7, 9) or is off (O) on a NO item
    # (0, 2, 5, 11): 8 of 12
    assert test["chain 2"]["accuracy"] == 8 / 12 and test["majority"]["accuracy"] == 9 / 12
    assert all(entry["accuracy"] == 1.0 and entry["n"] == 6 for entry in validation.values())
    lines = _yes_no_lines(test, validation)
    assert lines[0].endswith("(12 test questions; validation: 6, where the settings were chosen)")
    row = f"  {'chain 2':<34}  66.7%   [39.1, 86.2]   validation 100.0%"
    assert lines[2] == row
