"""The main job's paths stage on a scripted LLM, and the exemplars its prompts are built from.

The stage is the config's own ``paths`` node (``verifiers/diverse_prompts`` with 4 exemplar
sets x 5 samples at temperature 0.3, one exemplar each) with the LLM and the exemplars swapped
and smaller chunks. The scripted LLM writes which exemplar its prompt showed and which sample it
is into each completion, so every row the stage writes is known.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _reasoning_fakes import CONFIG, ScriptedLLM, finish_stage, problem, query, write_problems

from corelib import InstantiationError, instantiate, load_config
from examples.reasoning._io import read_jsonl
from examples.reasoning.data import MakeProblems, read_problems
from examples.reasoning.paths import SamplePaths, load_exemplars
from examples.reasoning.pipeline import StageContext

EXEMPLARS = [
    {"question": f"Exemplar {e}: Ann has {e} pens. She finds 1. How many?", "solution": "..."}
    for e in range(6)
]
TEST = [
    problem("Ben has 3 cards. He finds 4 more. How many cards does Ben have?", "3+4=7"),
    problem("Cara has 9 eggs. She loses 2. How many eggs does Cara have?", "9-2=7"),
    problem("Dan has 5 coins. Then the coins double. How many coins?", "5*2=10"),
]
TRAIN = [
    problem("Eva has 2 books. She buys 6 more. How many books?", "2+6=8"),
    problem("Finn has 4 pens. Then the pens triple. How many pens?", "4*3=12"),
    problem("Gia has 8 shells. She gives away 3. How many shells?", "8-3=5"),
]
ANSWERS = {p.question: p.answer for p in TEST + TRAIN}
MAIN = load_config(CONFIG)  # the main job's config (loading it imports torch)
FAILING = (TEST[1].question, 2)  # this (question, exemplar) request fails for good


def _exemplar(prompt: str) -> int:
    """Which exemplar the prompt shows (one shot: the first ``Exemplar N`` in it)."""
    return int(prompt.split("Exemplar ", 1)[1].split(":", 1)[0])


def _path(exemplar: int, sample: int, gold: int) -> tuple[str, str | None]:
    """Sample ``sample`` under ``exemplar``: right, off by one, or no answer (and its answer)."""
    if (exemplar + sample) % 5 == 4:
        return f"e{exemplar} s{sample}: I give up.", None
    answer = gold if (exemplar + sample) % 3 else gold + 1
    return f"e{exemplar} s{sample}\nThe answer is {answer}.", str(answer)


def _greedy(exemplar: int, gold: int) -> tuple[str, str | None]:
    if gold == 10:
        return f"greedy e{exemplar}: no idea", None
    return f"greedy e{exemplar}\nThe answer is {gold}.", str(gold)


def _script(prompt: str, sample: int, parameters: dict[str, Any]) -> str | None:
    question, exemplar = query(prompt), _exemplar(prompt)
    if parameters["temperature"] == 0.0:
        return _greedy(exemplar, ANSWERS[question])[0]
    if (question, exemplar) == FAILING:
        return None
    return _path(exemplar, sample, ANSWERS[question])[0]


def _paths_node(llm: ScriptedLLM, **settings: Any) -> dict[str, Any]:
    """The config's ``paths`` node with the scripted LLM, hand-made exemplars and ``settings``."""
    node = MAIN["paths"]
    return {**node, "prompts": {**node["prompts"], "llm": llm, "exemplars": EXEMPLARS}, **settings}


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    run_dir = tmp_path_factory.mktemp("paths")
    data_dir = finish_stage(run_dir, "data", 0)
    write_problems(data_dir, "test", TEST)
    write_problems(data_dir, "train", TRAIN)
    llm = ScriptedLLM(_script)
    paths = instantiate(_paths_node(llm, chunk=2, train_questions=2))
    summary = paths.run(StageContext(run_dir, "paths"))
    rows = {split: read_jsonl(run_dir / "paths" / f"{split}.jsonl") for split in ("test", "train")}
    return {"stage": paths, "llm": llm, "summary": summary, "rows": rows}


def _expected_paths(stage: SamplePaths, question: str) -> list[list[Any]]:
    """[text, answer, prompt index] for each exemplar set in order, 5 samples each."""
    rows = []
    for index, exemplar_set in enumerate(stage.prompts.exemplar_sets):
        exemplar = _exemplar(exemplar_set[0].question)
        if (question, exemplar) != FAILING:
            rows += [[*_path(exemplar, s, ANSWERS[question]), index] for s in range(5)]
    return rows


def test_the_test_rows_hold_gold_greedy_and_the_paths_in_prompt_order(
    stage: dict[str, Any],
) -> None:
    paths: SamplePaths = stage["stage"]
    first = _exemplar(paths.prompts.exemplar_sets[0][0].question)  # greedy reads prompt 0
    assert len({_exemplar(s[0].question) for s in paths.prompts.exemplar_sets}) > 1
    expected = [
        {
            "question": p.question,
            "gold": str(p.answer),
            "greedy": dict(zip(("text", "answer"), _greedy(first, p.answer), strict=True)),
            "paths": _expected_paths(paths, p.question),
        }
        for p in TEST
    ]
    rows = stage["rows"]["test"]
    assert rows == expected
    assert [len(row["paths"]) for row in rows] == [20, 15, 20]  # one request failed
    assert rows[2]["greedy"] == {"text": f"greedy e{first}: no idea", "answer": None}


def test_the_train_rows_hold_the_solution_and_the_paths_of_the_first_questions(
    stage: dict[str, Any],
) -> None:
    expected = [
        {
            "question": p.question,
            "gold": str(p.answer),
            "solution": p.solution,
            "paths": _expected_paths(stage["stage"], p.question),
        }
        for p in TRAIN[:2]
    ]
    assert stage["rows"]["train"] == expected
    assert stage["summary"] == (
        "20 paths per question for 3 test and 2 training questions (1 failed LLM calls)"
    )


def test_the_llm_is_asked_greedily_once_then_for_samples_chunk_by_chunk(
    stage: dict[str, Any],
) -> None:
    calls = stage["llm"].calls
    # greedy: up to 4 chunks of questions per call; samples: one call per chunk of 2 questions
    assert [(len(c["prompts"]), c["n"], c["temperature"], c["seed"]) for c in calls] == [
        (3, 1, 0.0, None),
        (8, 5, 0.3, 0),
        (4, 5, 0.3, 0),
        (8, 5, 0.3, 0),
    ]
    assert all(c["stop"] == ["\n\n"] and c["max_new_tokens"] == 64 for c in calls)
    assert [query(prompt) for prompt in calls[0]["prompts"]] == [p.question for p in TEST]
    assert [query(prompt) for prompt in calls[3]["prompts"]] == [
        q.question for q in TRAIN[:2] for _ in range(4)
    ]


def test_exemplars_are_the_worked_problems_of_the_data_stage_validation_split(
    tmp_path: Path,
) -> None:
    MakeProblems(train=8, val=5, test=3, seed=0).run(StageContext(tmp_path, "data"))
    node = MAIN["exemplars"]  # the main job's node, pointed at this run
    exemplars = instantiate({**node, "path": str(tmp_path / "data" / "val.jsonl")})
    problems = read_problems(tmp_path / "data" / "val.jsonl")
    assert len(exemplars) == 5
    assert exemplars == [{"question": p.question, "solution": p.solution} for p in problems]
    steps = "".join(f"{step}\n" for step in problems[0].steps)
    assert exemplars[0]["solution"] == f"{steps}The answer is {problems[0].answer}."


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": "q", "steps": ["1+1=2"], "answer": 2', "line 2: not valid JSON"),
        ('["q", ["1+1=2"], 2]', "line 2: a problem is an object with 'question', 'steps' and"),
        ('{"question": "q", "answer": 2}', "line 2: .* this one has no 'steps'"),
        ('{"question": 7, "steps": [], "answer": 2}', "line 2: 'question' must be a string"),
        ('{"question": "q", "steps": "1+1=2", "answer": 2}', "'steps' must be a list of strings"),
        ('{"question": "q", "steps": [], "answer": "two"}', "'answer' must be an integer, got str"),
        ('{"question": "q", "steps": [], "answer": true}', "'answer' must be an integer, got bool"),
    ],
)
def test_a_malformed_exemplars_file_is_an_error_naming_its_line(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "val.jsonl"
    path.write_text(json.dumps(TEST[0].to_dict()) + "\n" + line + "\n")
    with pytest.raises(ValueError) as raised:
        load_exemplars(str(path))
    assert str(raised.value).startswith(f"{path}, line 2: ")
    assert raised.match(message)


def test_an_empty_exemplars_file_is_an_error_where_the_stage_is_built(tmp_path: Path) -> None:
    path = tmp_path / "val.jsonl"
    path.write_text("\n")
    with pytest.raises(ValueError, match=f"{path}: no problems to use as exemplars"):
        load_exemplars(str(path))
    node = _paths_node(ScriptedLLM(_script))
    node["prompts"]["exemplars"] = {**MAIN["exemplars"], "path": str(path)}
    with pytest.raises(InstantiationError, match="no problems to use as exemplars") as raised:
        instantiate(node)
    assert raised.value.path == "prompts.exemplars"
