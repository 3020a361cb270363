"""The main job's verifier stage on hand-made paths: which training examples it labels right
and wrong (and each step), and that each test path gets its own score, in order."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from _reasoning_fakes import CONFIG, finish_stage

from corelib import instantiate, load_config
from examples.reasoning.pipeline import StageContext
from examples.reasoning.verify import TrainVerifier, label_paths, score_paths
from plugins.verifiers.labels import LabeledPath, PathLabeller

MAIN = load_config(CONFIG)  # the main job's config (loading it imports torch)
TOM = "Tom has 3 apples and buys 4 more. Then the apples double. How many apples does he have?"
ANN = "Ann has 9 pens. She loses 2. How many pens does she have?"
TRAIN_ROWS = [
    {
        "question": TOM,
        "gold": "14",
        "solution": "3+4=7\n7*2=14\nThe answer is 14.",
        "paths": [
            ["3+4=7\n7*2=14\nThe answer is 14.", "14", 0],  # right
            ["3+4=7\n7*2=15\nThe answer is 15.", "15", 1],  # wrong from the second step
            ["4+4=8\n8*2=16\nThe answer is 16.", "16", 1],  # wrong from the first step
            ["I do not know.", None, 2],  # no answer: wrong
        ],
    },
    # the gold answer comes from the row: this solution does not state it
    {
        "question": ANN,
        "gold": "7",
        "solution": "9-2=7",
        "paths": [["9-2=7\nThe answer is 7.", "7", 0]],
    },
]
LABELLED = [
    LabeledPath(TOM, ("3+4=7", "7*2=14", "The answer is 14."), True, (True, True, True)),  # gold
    LabeledPath(TOM, ("3+4=7", "7*2=14", "The answer is 14."), True, (True, True, True)),
    LabeledPath(TOM, ("3+4=7", "7*2=15", "The answer is 15."), False, (True, False, False)),
    LabeledPath(TOM, ("4+4=8", "8*2=16", "The answer is 16."), False, (False, False, False)),
    LabeledPath(TOM, ("I do not know.",), False, (False,)),
    LabeledPath(ANN, ("9-2=7",), True, (True,)),  # gold
    LabeledPath(ANN, ("9-2=7", "The answer is 7."), True, (True, True)),
]
TEST_ROWS = [
    {"question": "q1", "paths": [["a", "1", 0], ["b", "2", 0], ["c", None, 1]]},
    {"question": "q2", "paths": []},  # every request failed
    {"question": "q3", "paths": [["a", "1", 0], ["d", "4", 1]]},
]
SCORES = [[0.11, 0.12, 0.13], [], [0.31, 0.34]]
SCORE_OF = {("q1", "a"): 0.11, ("q1", "b"): 0.12, ("q1", "c"): 0.13, ("q3", "a"): 0.31}
SCORE_OF[("q3", "d")] = 0.34  # path "a" scores differently under q1 and q3


class FakeVerifier:
    """Scores each (question, path) as ``SCORE_OF`` says (``scores_per_path`` times); records
    its calls."""

    def __init__(
        self, scores_per_path: int = 1, score_of: dict[tuple[str, str], float] = SCORE_OF
    ) -> None:
        self.fitted: list[Any] = []
        self.scored: list[tuple[list[str], list[str]]] = []
        self.saved: list[Path] = []
        self.scores_per_path = scores_per_path
        self.score_of = score_of

    def fit(self, examples: Sequence[LabeledPath]) -> dict[str, float]:
        self.fitted = list(examples)
        return {"train/loss": 0.25}

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True)
        self.saved.append(directory)

    def score(self, questions: list[str], paths: list[str]) -> list[float]:
        self.scored.append((questions, paths))
        pairs = zip(questions, paths, strict=True)
        return [self.score_of[pair] for pair in pairs for _ in range(self.scores_per_path)]


def test_label_paths_marks_right_paths_correct_and_wrong_ones_not_step_by_step() -> None:
    assert label_paths(TRAIN_ROWS, PathLabeller()) == LABELLED


def test_score_paths_gives_each_row_its_own_scores_in_path_order() -> None:
    verifier = FakeVerifier()
    assert score_paths(verifier, TEST_ROWS) == SCORES
    assert verifier.scored == [(["q1", "q1", "q1", "q3", "q3"], ["a", "b", "c", "a", "d"])]


@pytest.mark.parametrize("scores_per_path", [0, 2])
def test_score_paths_rejects_a_verifier_that_returns_another_number_of_scores(
    scores_per_path: int,
) -> None:
    with pytest.raises(ValueError, match=f"returned {5 * scores_per_path} scores for 5 paths"):
        score_paths(FakeVerifier(scores_per_path), TEST_ROWS)


def test_the_stage_trains_on_the_labelled_training_paths_and_scores_the_test_paths(
    tmp_path: Path,
) -> None:
    paths_dir = finish_stage(tmp_path, "paths", 0)
    for name, rows in (("train", TRAIN_ROWS), ("test", TEST_ROWS)):
        (paths_dir / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    verifier = FakeVerifier()
    stage = instantiate({**MAIN["verifier"], "verifier": verifier})  # the main job's node
    assert isinstance(stage, TrainVerifier) and isinstance(stage.labeller, PathLabeller)
    summary = stage.run(StageContext(tmp_path, "verifier"))
    assert verifier.fitted == LABELLED
    assert verifier.saved == [tmp_path / "verifier" / "model"]
    lines = (tmp_path / "verifier" / "scores.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == SCORES
    assert summary == "trained on 7 labelled paths (57% correct), final train loss 0.250"


# held-out questions where the three votes differ: voting 2/3 right, best path 1/3, majority 2/3
VAL_ROWS = [
    {"question": "v1", "gold": "5", "paths": [["p1", "5", 0], ["p2", "6", 0], ["p3", "6", 1]]},
    {"question": "v2", "gold": "3", "paths": [["r1", "3", 0], ["r2", "4", 1]]},
    {"question": "v3", "gold": "7", "paths": [["s1", "7", 0], ["s2", "7", 0], ["s3", "8", 1]]},
]
VAL_SCORES = {("v1", "p1"): 0.9, ("v1", "p2"): 0.2, ("v1", "p3"): 0.3, ("v2", "r1"): 0.4}
VAL_SCORES |= {("v2", "r2"): 0.6, ("v3", "s1"): 0.3, ("v3", "s2"): 0.3, ("v3", "s3"): 0.5}


def test_held_out_training_questions_validate_the_verifier(tmp_path: Path) -> None:
    paths_dir = finish_stage(tmp_path, "paths", 0)
    rows = {"train": TRAIN_ROWS + VAL_ROWS, "test": TEST_ROWS}
    for name, split in rows.items():
        (paths_dir / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in split))
    verifier = FakeVerifier(score_of=SCORE_OF | VAL_SCORES)
    stage = TrainVerifier(verifier, val_questions=3)
    summary = stage.run(StageContext(tmp_path, "verifier"))
    assert verifier.fitted == LABELLED  # trained on the other questions only
    val = json.loads((tmp_path / "verifier" / "val.json").read_text())
    assert val == {"questions": 3, "voting": 2 / 3, "best_path": 1 / 3, "majority": 2 / 3}
    assert summary.endswith("on 3 held-out questions voting 66.7%, best path 33.3%, majority 66.7%")
    lines = (tmp_path / "verifier" / "scores.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == SCORES


def test_holding_out_every_training_question_is_refused(tmp_path: Path) -> None:
    paths_dir = finish_stage(tmp_path, "paths", 0)
    (paths_dir / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in TRAIN_ROWS))
    with pytest.raises(ValueError, match="val_questions=2 leaves no training question of the 2"):
        TrainVerifier(FakeVerifier(), val_questions=2).run(StageContext(tmp_path, "verifier"))
    with pytest.raises(ValueError, match="val_questions must be >= 0"):
        TrainVerifier(FakeVerifier(), val_questions=-1)
