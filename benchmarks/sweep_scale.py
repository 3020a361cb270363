"""What a sweep of 10,000 jobs costs corelib's side, measured in one process (no job runs).

    PYTHONPATH=. .venv/bin/python benchmarks/sweep_scale.py [--jobs 10000]
        [--optuna-trials 1000] [--machinery-jobs 1000]

For each sweeper: the time of its ``ask`` and the memory its assignments hold (tracemalloc:
what stays allocated, and the peak while proposing); the memory of ``--jobs`` JobResults as the
machinery keeps them for the table; Optuna's TPE cost per trial (ask + tell) at the start and
at the end of ``--optuna-trials`` trials (it grows with the trials told); and the whole
machinery (``corelib.runs.multirun``: parse, grid, check of every job, ``sweep.jsonl``) over a
grid of ``--machinery-jobs`` jobs handed to a launcher that runs nothing and reports each job
finished at once: corelib's own cost per job, the size of ``sweep.jsonl`` and the growth of the
process's peak memory. docs/runs.md ("A sweep of 10,000 jobs") quotes these figures.
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corelib.runs import SWEEP_LOG, Choice, Interval, Job, JobResult, Range, multirun
from plugins.sweepers.grid import GridSweeper
from plugins.sweepers.optuna_search import OptunaSweeper
from plugins.sweepers.random_search import RandomSweeper


def measured(make: Callable[[], Any]) -> tuple[Any, float, int, int]:
    """``make()``, its seconds, the bytes it left allocated and its peak bytes."""
    tracemalloc.start()
    start = time.perf_counter()
    value = make()
    seconds = time.perf_counter() - start
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return value, seconds, kept, peak


def job_results(count: int) -> list[JobResult]:
    """``count`` finished jobs of a two-key sweep with a two-metric result each."""
    return [
        JobResult(
            job=Job(i, "train.yaml", (f"lr={i % 100}", f"seed={i // 100}"), Path(f"sweep/{i}")),
            status="finished",
            exit_code=0,
            result={"loss": 1.0 / (i + 1), "accuracy": 0.5},
            wall_s=1.25,
        )
        for i in range(count)
    ]


def optuna_costs(trials: int, window: int = 50) -> tuple[float, float]:
    """TPE's milliseconds per trial (ask + tell) over the first and the last ``window`` trials."""
    sweeper = OptunaSweeper("loss", n_trials=trials, seed=0)
    space = {"x": Interval(0.0, 1.0), "y": Interval(1e-4, 1.0, log=True)}
    (result,) = job_results(1)
    times = []
    while True:
        start = time.perf_counter()
        batch = sweeper.ask(space, 1)
        if not batch:
            break
        (assignment,) = batch
        value = (float(assignment["x"]) - 0.3) ** 2 + math.log10(float(assignment["y"])) ** 2
        sweeper.tell(assignment, JobResult(result.job, "finished", 0, result={"loss": value}))
        times.append(time.perf_counter() - start)
    window = min(window, len(times))
    return 1e3 * sum(times[:window]) / window, 1e3 * sum(times[-window:]) / window


class InstantLauncher:
    """Runs nothing: every job is reported finished at once, with a two-metric result.
    ``first_launch`` is when the machinery first handed it jobs (``time.perf_counter``)."""

    slots = 1
    first_launch: float | None = None

    def launch(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        if self.first_launch is None:
            self.first_launch = time.perf_counter()
        for job in jobs:
            yield JobResult(job, "finished", 0, result={"loss": 0.5, "accuracy": 0.9}, wall_s=1.0)


@dataclass(frozen=True)
class Machinery:
    """What :func:`machinery` measured."""

    jobs: int
    seconds: float
    to_first_launch_s: float
    sweep_log_bytes: int
    rss_growth_kb: int


def machinery(jobs: int) -> Machinery:
    """``multirun`` over a grid of about ``jobs`` jobs (a ``.py`` config, two swept keys): the
    seconds in all and until the launcher got the first job, the size of ``sweep.jsonl`` and
    the growth of peak RSS (measured first, before anything else here raised the peak)."""
    with tempfile.TemporaryDirectory(prefix="sweep_scale_") as temporary:
        return _machinery(Path(temporary), jobs)


def _machinery(folder: Path, jobs: int) -> Machinery:
    (folder / "job.py").write_text("from corelib import L\nmain = L(dict)(a=0, b=0)\n")
    side = math.isqrt(jobs)
    overrides = [f"main.a=range(0,{side})", f"main.b=range(0,{jobs // side})"]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    launcher = InstantLauncher()
    start = time.perf_counter()
    results = multirun(folder / "job.py", overrides, launcher=launcher, run_dir=folder / "out")
    seconds = time.perf_counter() - start
    assert launcher.first_launch is not None
    size = (folder / "out" / SWEEP_LOG).stat().st_size
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss
    return Machinery(len(results), seconds, launcher.first_launch - start, size, rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--optuna-trials", type=int, default=1_000)
    parser.add_argument("--machinery-jobs", type=int, default=1_000)
    args = parser.parse_args()
    cost = machinery(args.machinery_jobs)
    print(
        f"multirun, {cost.jobs} jobs, nothing run: {cost.seconds:.1f} s "
        f"({1e3 * cost.seconds / cost.jobs:.1f} ms per job), the first job launched after "
        f"{cost.to_first_launch_s:.1f} s, sweep.jsonl {cost.sweep_log_bytes / 1e6:.2f} MB "
        f"({cost.sweep_log_bytes / cost.jobs:.0f} B per job), "
        f"peak RSS +{cost.rss_growth_kb / 1e3:.1f} MB"
    )
    side = math.isqrt(args.jobs)
    grid_space = {"lr": Range(0, side), "seed": Range(0, args.jobs // side)}
    random_space = {
        "lr": Interval(1e-5, 1e-1, log=True),
        "dropout": Interval(0.0, 0.5),
        "model": Choice(("@small", "@large")),
    }
    rows = [
        ("grid", lambda: GridSweeper().ask(grid_space, 1)),
        ("random", lambda: RandomSweeper(n_trials=args.jobs).ask(random_space, 1)),
        ("JobResults", lambda: job_results(args.jobs)),
    ]
    print(f"{'what':<12} {'count':>7} {'seconds':>8} {'kept MB':>8} {'peak MB':>8} {'B/item':>7}")
    for name, make in rows:
        value, seconds, kept, peak = measured(make)
        print(
            f"{name:<12} {len(value):>7} {seconds:>8.3f} {kept / 1e6:>8.2f} {peak / 1e6:>8.2f} "
            f"{kept / len(value):>7.0f}"
        )
    first, last = optuna_costs(args.optuna_trials)
    print(
        f"optuna TPE, 2 keys: {first:.1f} ms per trial at the start, {last:.1f} ms at the end "
        f"of {args.optuna_trials} trials (means over up to 50 trials)"
    )


if __name__ == "__main__":
    main()
