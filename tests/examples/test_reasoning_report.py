"""The main job's report stage on hand-made paths, scores and yes/no votes: every figure it
prints is worked out here by hand.

The stage is the config's own ``report`` node (its three answer votes). Five test questions:

    question  gold  greedy  path answers (verifier scores)              SC  voting  best
    1         12    12      12 (.8), 12 (.5), 9 (.7)                     12  12      12
    2         5     6       5 (.7), 5 (.1), 6 (.6)                       5   5       5
    3         3     3       4 (.5), 4 (.1), 4 (.1), 3 (.45), 3 (.45)     4   3       4
    4         20    2       21 (.1), 21 (.1), 20 (.9), none (.95)        21  20      20
    5         8     none    none (.3), none (.4)                         -   -       -

so greedy is right 2 of 5 times, self-consistency (SC) 2, the voting verifier 4, best path 3.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest
from _reasoning_fakes import CONFIG, finish_stage

from corelib import instantiate, load_config
from examples.reasoning.pipeline import StageContext

ROWS = [  # gold, greedy answer, [(path answer, score)]
    ("12", "12", [("12", 0.8), ("12", 0.5), ("9", 0.7)]),
    ("5", "6", [("5", 0.7), ("5", 0.1), ("6", 0.6)]),
    ("3", "3", [("4", 0.5), ("4", 0.1), ("4", 0.1), ("3", 0.45), ("3", 0.45)]),
    ("20", "2", [("21", 0.1), ("21", 0.1), ("20", 0.9), (None, 0.95)]),
    ("8", None, [(None, 0.3), (None, 0.4)]),
]
YES_NO = {
    "inputs": ["Is the answer to this problem 1?"] * 4,
    "labels": [1, 0, 0, 1],
    "votes": [[1, 1, -1], [0, 1, 0], [0, 0, 1], [1, 0, -1]],  # chains right 4, 2 and 1 times
    "chains": ["chain a", "chain b", "chain c"],
    "predictions": {"majority": [1, 1, 0, 0], "label model": [1, 0, 0, 1]},
}
SECONDS = {"data": (1.2, 1.0), "paths": (12.6, 20.4), "verifier": (7.6, 15.2), "ama": (3.1, 4.9)}

# 95% Wilson intervals, p' = (p + z^2/2n) / (1 + z^2/n) +- z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n)
WILSON = {
    (2, 5): (0.117621, 0.769276),
    (3, 5): (0.230724, 0.882379),
    (4, 5): (0.375535, 0.963776),
    (1, 4): (0.045587, 0.699358),
    (2, 4): (0.150039, 0.849961),
    (4, 4): (0.510109, 1.0),
}
# paired differences: mean of the per-question differences d +- z sd(d) / sqrt(5); d is
# [0, 1, -1, 0, 0], [0, 0, 1, 1, 0] and [0, 0, -1, 0, 0], e.g. for the first sd = sqrt(2 / 4)
# and 1.96 * 0.7071 / 2.2361 = 0.6198
DIFFERENCES = {
    "self-consistency (majority) - greedy": (0.0, -0.619795, 0.619795),
    "DiVeRSe voting verifier - self-consistency (majority)": (0.4, -0.080091, 0.880091),
    "best path (verifier) - DiVeRSe voting verifier": (-0.2, -0.591993, 0.191993),
}

REPORT = load_config(CONFIG)["report"]  # the main job's node (loading it imports torch)

TABLE = """\
Arithmetic word problems: 5 test questions, 5 sampled paths each   accuracy   95% CI
  greedy                              40.0%   [11.8, 76.9]
  self-consistency (majority)         40.0%   [11.8, 76.9]
  DiVeRSe voting verifier             80.0%   [37.6, 96.4]
  best path (verifier)                60.0%   [23.1, 88.2]
  paired differences (95% CI):
    self-consistency (majority) - greedy      +0.0  [-62.0, +62.0]
    DiVeRSe voting verifier - self-consistency (majority) +40.0  [ -8.0, +88.0]
    best path (verifier) - DiVeRSe voting verifier -20.0  [-59.2, +19.2]
  verifier: a right path scored above a wrong one of the same question in 61.5% of 13 pairs
Yes/no: is the claim about a problem's answer true? (4 test questions)
  chain 1                            100.0%   [51.0, 100.0]
  chain 2                             50.0%   [15.0, 85.0]
  chain 3                             25.0%   [ 4.6, 69.9]
  majority                            50.0%   [15.0, 85.0]
  label model                        100.0%   [51.0, 100.0]
Seconds per stage, wall-clock (CPU time of all its processes): \
data 1 (1), paths 13 (20), verifier 8 (15), ama 3 (5)"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    run_dir = tmp_path_factory.mktemp("report")
    for order, (name, (wall, cpu)) in enumerate(SECONDS.items()):
        finish_stage(run_dir, name, order, wall, cpu)
    test = [
        {
            "question": f"question {q}",
            "gold": gold,
            "greedy": {"text": f"The answer is {greedy}.", "answer": greedy},
            "paths": [[f"path {q}.{i}", answer, i % 2] for i, (answer, _) in enumerate(paths)],
        }
        for q, (gold, greedy, paths) in enumerate(ROWS)
    ]
    (run_dir / "paths" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    scores = "".join(json.dumps([s for _, s in paths]) + "\n" for _, _, paths in ROWS)
    (run_dir / "verifier" / "scores.jsonl").write_text(scores)
    (run_dir / "ama" / "yesno.json").write_text(json.dumps(YES_NO))
    stage = instantiate(REPORT)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        summary = stage.run(StageContext(run_dir, "report"))
    return {"dir": run_dir / "report", "summary": summary, "printed": printed.getvalue()}


def test_the_table_prints_exactly_the_hand_worked_figures(report: dict[str, Any]) -> None:
    assert report["printed"] == TABLE + "\n"
    assert (report["dir"] / "table.txt").read_text() == TABLE + "\n"
    directory = report["dir"]
    assert report["summary"] == (
        f"results in {directory / 'results.json'}, plot in {directory / 'accuracy_vs_paths.png'}"
    )


def test_results_hold_each_accuracy_with_its_wilson_interval(report: dict[str, Any]) -> None:
    results = json.loads((report["dir"] / "results.json").read_text())
    arithmetic = results["arithmetic"]
    hits = {"greedy": 2, "self-consistency (majority)": 2, "DiVeRSe voting verifier": 4}
    hits["best path (verifier)"] = 3
    assert list(arithmetic["methods"]) == list(hits)
    for name, entry in arithmetic["methods"].items():
        low, high = WILSON[(hits[name], 5)]
        assert entry["n"] == 5 and entry["accuracy"] == hits[name] / 5
        assert entry["low"] == pytest.approx(low, abs=1e-6)
        assert entry["high"] == pytest.approx(high, abs=1e-6)
    yes_no_hits = {"chain 1": 4, "chain 2": 2, "chain 3": 1, "majority": 2, "label model": 4}
    assert list(results["yes_no"]) == list(yes_no_hits)
    for name, entry in results["yes_no"].items():
        low, high = WILSON[(yes_no_hits[name], 4)]
        assert entry["n"] == 4 and entry["accuracy"] == yes_no_hits[name] / 4
        assert (entry["low"], entry["high"]) == pytest.approx((low, high), abs=1e-6)
    assert arithmetic["paths_per_question"] == 5
    # right above wrong: q1 1 of 2 pairs, q2 1 of 2, q3 4 of 6, q4 2 of 3 (a path with no
    # answer is wrong), q5 has no right path
    assert arithmetic["verifier_ranking"] == {"right_above_wrong": 8 / 13, "pairs": 13}
    assert results["stage_seconds"] == {
        name: {"wall": wall, "cpu": cpu} for name, (wall, cpu) in SECONDS.items()
    }


def test_results_hold_the_paired_differences_in_method_order(report: dict[str, Any]) -> None:
    differences = json.loads((report["dir"] / "results.json").read_text())["arithmetic"][
        "differences"
    ]
    assert list(differences) == list(DIFFERENCES)
    for name, (mean, low, high) in DIFFERENCES.items():
        entry = differences[name]
        assert (entry["difference"], entry["low"], entry["high"]) == pytest.approx(
            (mean, low, high), abs=1e-6
        )


def test_the_curve_ends_at_the_full_vote_and_starts_where_every_vote_sees_one_path(
    report: dict[str, Any],
) -> None:
    curve = json.loads((report["dir"] / "results.json").read_text())["curve"]
    votes = ["self-consistency (majority)", "DiVeRSe voting verifier", "best path (verifier)"]
    assert list(curve) == ["paths", *votes]
    assert curve["paths"] == [1, 2, 3, 4, 5]
    # with 5 paths every question votes with all of its paths: the table's accuracies
    assert [curve[name][-1] for name in votes] == [0.4, 0.8, 0.6]
    # with 1 path every vote takes that path's answer, and each vote draws the same paths
    assert curve[votes[0]][0] == curve[votes[1]][0] == curve[votes[2]][0]
    assert (report["dir"] / "accuracy_vs_paths.png").read_bytes()[:4] == b"\x89PNG"
