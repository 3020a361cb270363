"""The shipped demonstration sets load and are well formed; a malformed file is a ConfigError
naming the file and the entry; `ama/chains` builds them from a config."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from corelib import ConfigError, instantiate
from examples.reasoning.problems import make_problems
from plugins.ama.chains import PromptChain
from plugins.ama.demos import DEMOS_DIR, load_demo_set, task_chains, tasks


def test_the_shipped_sets_load_and_every_chain_builds() -> None:
    assert tasks() == ["arithmetic_claims", "entailment"]
    for task in tasks():
        data = load_demo_set(task)
        chains = task_chains(None, task)  # type: ignore[arg-type]
        assert len(chains) == len(data["chains"]) >= 3
        assert all(isinstance(chain, PromptChain) and chain.cardinality == 2 for chain in chains)
        for chain in data["chains"]:
            assert chain["question_demos"] and chain["answer_demos"]


def test_the_arithmetic_demonstrations_are_right_and_never_a_main_job_problem() -> None:
    data = load_demo_set("arithmetic_claims")
    answer = re.compile(data["answer_pattern"])
    # The main job's data stage: 10,500 problems drawn with seed 0 (examples/reasoning/config.py).
    main_job = {p.question for p in make_problems(10500, seed=0, min_ops=2, max_ops=3, high=5)}
    for chain in data["chains"]:
        for demo in chain["answer_demos"]:
            assert demo["question"] not in main_job
            *steps, last = demo["answer"].split("\n")
            for step in steps:  # each worked step is correct arithmetic
                left, result = step.split("=")
                assert eval(left, {"__builtins__": {}}) == int(result)  # digits and + - * only
            match = answer.fullmatch(last)
            assert match is not None and match["answer"] == steps[-1].split("=")[1]


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "broken.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


GOOD: dict[str, Any] = {
    "labels": {"yes": 1, "no": 0},
    "chains": [
        {
            "question_demos": [{"statement": "it rains", "question": "Does it rain?"}],
            "answer_demos": [{"context": "c", "question": "q", "answer": "Yes"}],
        }
    ],
}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "cannot read the demonstration set"),
        ([], "a demonstration set is a JSON object, got list"),
        ({**GOOD, "labelz": {}}, r"unknown key\(s\) \['labelz'\]"),
        ({"chains": GOOD["chains"]}, "'labels' is missing"),
        ({**GOOD, "chains": []}, "'chains' must be a non-empty list"),
        ({**GOOD, "answer_stop": "\n"}, "'answer_stop' must be a JSON list"),
        (
            {**GOOD, "chains": [GOOD["chains"][0], {"question_demos": []}]},
            r"chains\[1\] must be an object with exactly",
        ),
        (
            {**GOOD, "chains": [{**GOOD["chains"][0], "answer_demos": [{"context": "c"}]}]},
            r"chains\[0\]: demonstration 0 lacks field\(s\) \['question', 'answer'\]",
        ),
        (
            {**GOOD, "chains": [{**GOOD["chains"][0], "answer_demos": [{"context": 3}]}]},
            r"chains\[0\]\.answer_demos\[0\] must map fields to strings",
        ),
        (
            {**GOOD, "question_template": {"pattern": "(?P<s>.+)", "question": "{s}?"}},
            r"chains\[0\]: ama/chain: question demonstration 0: the question_template gives",
        ),
    ],
)
def test_a_malformed_file_names_the_file_and_the_entry(
    tmp_path: Path, data: Any, message: str
) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError, match=message) as caught:
        load_demo_set(path)
    assert str(caught.value).startswith(str(path))


class _NoAnswers:
    """An LLM whose every call fails (the chains are only built here)."""

    def generate(self, prompts: list[str], **parameters: Any) -> list[list[Any]]:
        return [[] for _ in prompts]


def test_ama_chains_from_a_config() -> None:
    node = {"_target_": "ama/chains", "llm": _NoAnswers(), "task": "entailment", "chains": [0, 2]}
    chains = instantiate(node)
    assert [repr(chain) for chain in chains] == [
        "PromptChain(entailment[0], samples=1)",
        "PromptChain(entailment[2], samples=1)",
    ]
    with pytest.raises(ConfigError, match=r"has chains 0\.\.2; asked for \[3\]"):
        task_chains(None, "entailment", chains=[3])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no demonstration set 'nli'; shipped: "):
        task_chains(None, "nli")  # type: ignore[arg-type]
    assert (DEMOS_DIR / "entailment.json").is_file()
