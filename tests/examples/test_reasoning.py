"""The reasoning example: its problems, its stage bookkeeping, and the whole pipeline end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `examples` is not an installed package
    sys.path.insert(0, str(ROOT))

from corelib import L, instantiate  # noqa: E402
from examples.reasoning.pipeline import Pipeline, StageContext  # noqa: E402
from examples.reasoning.problems import make_problems  # noqa: E402
from examples.reasoning.report import paired_difference, verifier_ranking, wilson  # noqa: E402

CONFIG = ROOT / "examples" / "reasoning" / "config.py"
_STEP = re.compile(r"(\d+)([+\-*])(\d+)=(-?\d+)")


# -- problems ------------------------------------------------------------------------------------


def test_problems_are_seeded_distinct_and_correctly_worked() -> None:
    problems = make_problems(200, seed=3)
    assert problems == make_problems(200, seed=3)
    assert problems != make_problems(200, seed=4)
    assert len({p.question for p in problems}) == 200
    for problem in problems:
        results = []
        for step in problem.steps:
            a, op, b, c = _STEP.fullmatch(step).groups()  # type: ignore[union-attr]
            assert {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op] == int(c)
            results.append(int(c))
        assert results[-1] == problem.answer >= 0
        assert problem.solution.endswith(f"\nThe answer is {problem.answer}.")
        assert 2 <= len(problem.steps) <= 6


# -- pipeline bookkeeping ------------------------------------------------------------------------


class Step:
    """A test stage: logs each run to ``<run_dir>/log``; ``fail_once`` raises on its first run
    after leaving a partial file, which the next run must find (resume)."""

    def __init__(self, value: int, *, fail_once: bool = False) -> None:
        self.value = value
        self.fail_once = fail_once

    def run(self, context: StageContext) -> str:
        partial = context.directory / "partial"
        with (context.run_dir / "log").open("a") as log:
            log.write(f"{context.name}{' resumed' if partial.exists() else ''}\n")
        if self.fail_once and not partial.exists():
            partial.write_text("half done")
            raise RuntimeError("interrupted")
        (context.directory / "out").write_text(str(self.value))
        return f"value {self.value}"


def _run(
    tmp_path: Path, values: dict[str, int], *, force: tuple[str, ...] = (), **kw: bool
) -> list[str]:
    log = tmp_path / "run" / "log"
    log.unlink(missing_ok=True)
    stages = {
        name: L(Step)(value=value, **kw if name == "b" else {}) for name, value in values.items()
    }
    pipeline = instantiate(
        L(Pipeline)(stages=stages, run_dir=str(tmp_path / "run"), _recursive_=False)
    )
    pipeline.run(force=list(force))
    return log.read_text().split("\n")[:-1] if log.exists() else []


def test_pipeline_skips_up_to_date_stages_and_reruns_changed_and_forced_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path, {"a": 1, "b": 2, "c": 3}) == ["a", "b", "c"]
    assert _run(tmp_path, {"a": 1, "b": 2, "c": 3}) == []
    assert "[b] up to date" in capsys.readouterr().out
    assert _run(tmp_path, {"a": 1, "b": 5, "c": 3}) == ["b", "c"]  # a changed stage and after
    assert (tmp_path / "run" / "b" / "out").read_text() == "5"
    assert _run(tmp_path, {"a": 1, "b": 5, "c": 3}, force=("b",)) == ["b", "c"]
    with pytest.raises(ValueError, match="no such stage; stages are a, b, c"):
        _run(tmp_path, {"a": 1, "b": 5, "c": 3}, force=("x",))


def test_an_interrupted_stage_resumes_in_its_directory(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="interrupted"):
        _run(tmp_path, {"a": 1, "b": 2, "c": 3}, fail_once=True)
    assert _run(tmp_path, {"a": 1, "b": 2, "c": 3}, fail_once=True) == ["b resumed", "c"]
    # forcing starts the stage over from an empty directory
    with pytest.raises(RuntimeError, match="interrupted"):
        _run(tmp_path, {"a": 1, "b": 2, "c": 3}, fail_once=True, force=("b",))


def test_a_stage_cannot_read_an_unfinished_stage(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="stage 'b' reads the output of stage 'a'"):
        StageContext(tmp_path, "b").output("a")


def test_the_reasoner_stage_checks_its_training_job_before_starting_workers(
    tmp_path: Path,
) -> None:
    from corelib import ConfigError
    from examples.reasoning.data import MakeProblems
    from examples.reasoning.lm import TokenBlocks, tiny_gpt
    from examples.reasoning.reasoner import TrainReasoner

    reasoner = L(TrainReasoner)(
        trainer=L("ddp/trainer")(max_steps=1, batch_size="eight", bogus=1),
        model=L(tiny_gpt)(n_layer=1, n_embd=8, n_head=1),
        data=L(TokenBlocks)(),
        vocab_size=300,
        _recursive_=False,
    )
    stages = {"data": L(MakeProblems)(train=30, val=4, test=4), "reasoner": reasoner}
    pipeline = instantiate(L(Pipeline)(stages=stages, run_dir=str(tmp_path), _recursive_=False))
    with pytest.raises(ConfigError) as raised:
        pipeline.run()
    message = str(raised.value)
    assert str(tmp_path / "reasoner" / "job.yaml") in message
    assert "trainer.batch_size" in message and "expected int, got str 'eight'" in message
    assert "unexpected keyword argument 'bogus'" in message
    assert not (tmp_path / "reasoner" / "checkpoints").exists()  # no worker started


# -- statistics ----------------------------------------------------------------------------------


def test_wilson_interval_and_paired_difference() -> None:
    low, high = wilson(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0
    assert wilson(0, 24)[1] == pytest.approx(0.1380, abs=1e-4)
    diff = paired_difference([True] * 30 + [False] * 70, [False] * 100)
    assert diff["difference"] == pytest.approx(0.3) and diff["low"] < 0.3 < diff["high"]


def test_verifier_ranking_counts_right_over_wrong_pairs_within_each_question() -> None:
    answers = [["4", "5", "4"], ["7", "7"], ["1", None]]
    scores = [[0.9, 0.5, 0.4], [0.2, 0.3], [0.1, 0.6]]
    # question 1: 0.9 > 0.5 and 0.4 < 0.5; question 2 has no wrong path; question 3: 0.1 < 0.6
    ranking = verifier_ranking(answers, ["4", "7", "1"], scores)
    assert ranking == {"right_above_wrong": pytest.approx(1 / 3), "pairs": 3}
    assert verifier_ranking([["2", "2"]], ["2"], [[0.5, 0.5]])["right_above_wrong"] is None
    assert verifier_ranking([["2", "3"]], ["2"], [[0.5, 0.5]])["right_above_wrong"] == 0.5


# -- the whole pipeline --------------------------------------------------------------------------


def _cli(run_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    overrides = [
        f"run_dir={run_dir}",  # every path of the run refers to it
        "data.train=300",
        "data.val=20",
        "data.test=24",
        "reasoner.trainer.max_steps=20",
        "reasoner.trainer.scheduler.total_steps=20",
        "reasoner.trainer.batch_size=8",
        "reasoner.trainer.checkpoint_every=10",
        "paths.train_questions=16",
        "paths.prompts.num_prompts=2",
        "paths.prompts.samples_per_prompt=3",
        "verifier.verifier.trainer.max_steps=10",
        "verifier.verifier.trainer.batch_size=16",
    ]
    command = [sys.executable, "-m", "corelib", "run", str(CONFIG), *overrides, *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=400, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_the_pipeline_runs_end_to_end_then_skips_and_forces_stages(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = _cli(run_dir)
    assert first.returncode == 0, first.stderr[-3000:]
    for row in (
        "greedy",
        "self-consistency",
        "DiVeRSe voting verifier",
        "best path",
        "label model",
    ):
        assert row in first.stdout
    results = json.loads((run_dir / "report" / "results.json").read_text())
    methods = results["arithmetic"]["methods"]
    assert len(methods) == 4 and len(results["yes_no"]) == 6  # 3 chains, 3 aggregators
    for entry in [*methods.values(), *results["yes_no"].values()]:
        assert entry["n"] == 24 and 0 <= entry["low"] <= entry["accuracy"] <= entry["high"] <= 1
    assert results["curve"]["paths"] == list(range(1, 7))
    ranking = results["arithmetic"]["verifier_ranking"]
    assert ranking["pairs"] == 0 or 0 <= ranking["right_above_wrong"] <= 1
    assert set(results["stage_seconds"]) == {"data", "reasoner", "paths", "verifier", "ama"}
    assert (run_dir / "report" / "accuracy_vs_paths.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "reasoner" / "model" / "config.json").is_file()  # save_pretrained

    again = _cli(run_dir, "--force", "report")
    assert again.returncode == 0, again.stderr[-3000:]
    for stage in ("data", "reasoner", "paths", "verifier", "ama"):
        assert f"[{stage}] up to date" in again.stdout
    assert "[report] running" in again.stdout
    assert (
        json.loads((run_dir / "report" / "results.json").read_text())["arithmetic"]
        == (results["arithmetic"])
    )
