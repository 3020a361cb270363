"""``corelib run -m ... --sweeper random|optuna`` and ``corelib.runs.multirun``: the sweepers
end to end, with real jobs.

The config is a ``.py`` file whose entry returns ``{"loss": (x - 0.3) ** 2, "x": x}`` (and
raises for ``x > 0.6`` while the file ``crash-above-0.6`` exists).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from _corelib_cli import run_corelib

from corelib.runs import Interval, multirun
from plugins.sweepers.optuna_search import OptunaSweeper
from plugins.sweepers.random_search import RandomSweeper

PARABOLA = """\
from pathlib import Path

from corelib import L


def parabola(x: float = 0.5) -> dict:
    if x > 0.6 and Path("crash-above-0.6").exists():
        raise RuntimeError("crashed on purpose")
    return {"loss": (x - 0.3) ** 2, "x": x}


main = L(parabola)(x=0.5)
"""


def sweep(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``corelib run -m parabola.py ARGS --run-dir out`` in ``tmp_path``."""
    (tmp_path / "parabola.py").write_text(PARABOLA)
    return run_corelib(
        tmp_path, "run", "-m", "parabola.py", *args, "--run-dir", "out", plugins=True, timeout=240
    )


def events(out: Path) -> list[dict[str, object]]:
    """The lines of ``out/sweep.jsonl``, parsed, in order."""
    return [json.loads(line) for line in (out / "sweep.jsonl").read_text().splitlines()]


def job_lines(out: Path) -> list[dict[str, object]]:
    """The ``job`` lines (a job's end), by job number."""
    jobs = [event for event in events(out) if event["event"] == "job"]
    return sorted(jobs, key=lambda event: int(str(event["job"])))


@pytest.mark.timeout(300)
def test_optuna_sweeps_an_interval_for_the_objective_of_the_jobs_results(tmp_path: Path) -> None:
    done = sweep(
        tmp_path,
        "main.x=interval(0,1)",
        "--sweeper", "optuna", "sweeper.objective=loss", "sweeper.n_trials=8", "--jobs", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    jobs = job_lines(tmp_path / "out")
    assert [job["status"] for job in jobs] == ["finished"] * 8
    for job in jobs:
        (override,) = job["overrides"]  # type: ignore[misc]
        x = float(override.removeprefix("main.x="))
        assert 0.0 <= x <= 1.0
        assert job["result"] == {"loss": (x - 0.3) ** 2, "x": x}
    description = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert description["sweeper"] == "optuna"
    assert description["sweeper_options"] == {"objective": "loss", "n_trials": 8}
    assert "loss" in done.stdout.splitlines()[0]  # the table's header


@pytest.mark.timeout(300)
def test_optuna_prints_the_best_job_after_the_table_and_logs_it_at_the_end(tmp_path: Path) -> None:
    done = sweep(
        tmp_path, "main.x=interval(0,1)",
        "--sweeper", "optuna", "sweeper.objective=loss", "sweeper.n_trials=3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    best = min(job_lines(tmp_path / "out"), key=lambda job: job["result"]["loss"])  # type: ignore[index]
    (override,) = best["overrides"]  # type: ignore[misc]
    loss = best["result"]["loss"]  # type: ignore[index]
    end = events(tmp_path / "out")[-1]
    assert end["event"] == "end"
    assert end["best"] == {
        "assignment": {"main.x": override.removeprefix("main.x=")},
        "objective": "loss",
        "value": loss,
    }
    header, *rows, last = done.stdout.splitlines()
    assert "loss" in header
    assert len(rows) == 3
    assert last == f"best: {override} (loss={loss:.6g})"


@pytest.mark.timeout(300)
def test_optuna_goes_on_when_the_results_lack_the_objective_and_says_so(tmp_path: Path) -> None:
    done = sweep(
        tmp_path, "main.x=interval(0,1)", "--sweeper", "optuna",
        "sweeper.objective=val.loss", "sweeper.n_trials=2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # every job finished: the sweep did not fail
    assert len(job_lines(tmp_path / "out")) == 2
    assert "sweepers/optuna: job 0 failed: its result has no 'val.loss'" in done.stderr
    assert "sweepers/optuna: job 1 failed: its result has no 'val.loss'" in done.stderr


@pytest.mark.timeout(300)
def test_random_runs_the_jobs_its_seed_gives(tmp_path: Path) -> None:
    done = sweep(
        tmp_path, "main.x=interval(0,1)", "--sweeper", "random",
        "sweeper.n_trials=3", "sweeper.seed=5",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = RandomSweeper(n_trials=3, seed=5).ask({"main.x": Interval(0.0, 1.0)}, 1)
    ran = [job["overrides"] for job in job_lines(tmp_path / "out")]
    assert ran == [[f"main.x={assignment['main.x']}"] for assignment in expected]
    assert "best" not in events(tmp_path / "out")[-1]  # a random sweeper tells no best job
    assert len(done.stdout.splitlines()) == 1 + 3  # the table alone


def test_the_grid_refuses_an_interval_before_any_job_starts(tmp_path: Path) -> None:
    done = sweep(tmp_path, "main.x=interval(0,1)")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "corelib: error: sweepers/grid: main.x=interval(0,1) is a continuous domain with no "
        "grid; sample it with --sweeper random (sweeper.n_trials=N) or --sweeper optuna"
    ]
    assert not (tmp_path / "out" / "0").exists()


@pytest.mark.timeout(300)
def test_optuna_from_python_reports_the_best_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "parabola.py").write_text(PARABOLA)
    monkeypatch.chdir(tmp_path)
    sweeper = OptunaSweeper(objective="loss", n_trials=3)
    results = multirun("parabola.py", ["main.x=interval(0,1)"], sweeper=sweeper, run_dir="out")
    assert [result.status for result in results] == ["finished"] * 3
    assert sweeper.best is not None
    assignment, loss = sweeper.best
    assert loss == min(result.result["loss"] for result in results)
    assert assignment == {"main.x": repr(min(results, key=lambda r: r.result["loss"]).result["x"])}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_optuna_resume_reruns_only_the_failed_jobs(tmp_path: Path) -> None:
    args = ("main.x=interval(0,1)", "--sweeper", "optuna", "sweeper.objective=loss")
    (tmp_path / "crash-above-0.6").touch()
    first = sweep(tmp_path, *args, "sweeper.n_trials=4")
    assert first.returncode == 1, first.stderr
    before = job_lines(tmp_path / "out")
    crashed = [job["job"] for job in before if job["status"] == "failed"]
    assert 0 < len(crashed) < 4  # seed 0's first four: 0.549, 0.715, 0.603, 0.545

    (tmp_path / "crash-above-0.6").unlink()
    again = sweep(tmp_path, *args, "sweeper.n_trials=4", "--resume")
    assert again.returncode == 0, again.stderr
    logged = events(tmp_path / "out")
    second_start = [i for i, event in enumerate(logged) if event["event"] == "start"][1]
    after = [event for event in logged[second_start:] if event["event"] == "job"]
    assert [job["job"] for job in after] == crashed
    assert [job["overrides"] for job in after] == [before[n]["overrides"] for n in crashed]
    assert {job["status"] for job in after} == {"finished"}
