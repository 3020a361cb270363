"""``corelib run -m`` with ``launchers/local`` against the alternatives, side by side in one run.

1. **Overhead per trivial job**: ``corelib run -m CONFIG main.i=range(0,N) --jobs 1`` against a
   hand-written loop of ``subprocess.run(["python", "-m", "corelib", "run", CONFIG, "main.i=I",
   "--run-dir", ...])`` over the same N jobs, each a recorded run (target: at most 1.5x).
2. **Parallel jobs**: N sleep-bound jobs with ``--jobs 1`` against ``--jobs 2`` (target: at
   least 1.6x faster).
3. **Hydra**: ``python app.py -m i=0,...,N-1`` with Hydra's basic launcher on the same trivial
   jobs (Hydra runs them one after another inside its own process; reported as a ratio).

The methods alternate within each repeat; the script prints the median wall seconds of each and
the ratios.

    .venv/bin/python benchmarks/bench_sweep.py [--jobs 8] [--sleep-jobs 4] [--sleep 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

MODULE = """\
import time


def trivial(i: int = 0):
    return {"i": i}


def sleepy(i: int = 0, seconds: float = 1.0):
    time.sleep(seconds)
    return {"i": i}
"""

HYDRA_APP = """\
import hydra


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg):
    return {"i": cfg.i}


if __name__ == "__main__":
    main()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8, help="trivial jobs per sweep")
    parser.add_argument("--sleep-jobs", type=int, default=4, help="sleep-bound jobs per sweep")
    parser.add_argument("--sleep", type=float, default=2.0, help="seconds each sleep job sleeps")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        _write_apps(folder, options.sleep)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}
        corelib = [sys.executable, "-m", "corelib", "run"]
        allow = ["--allow-import", "sweepbench"]
        n, m = options.jobs, options.sleep_jobs

        def run(argv: list[str]) -> None:
            subprocess.run(argv, cwd=folder, env=env, check=True, capture_output=True)

        def hand_loop() -> None:
            for i in range(n):
                run([*corelib, "trivial.yaml", f"main.i={i}", *allow, "--run-dir", f"loop/{i}"])

        def sweep(config: str, count: int, jobs: int) -> Callable[[], None]:
            return lambda: run(
                [*corelib, "-m", config, f"main.i=range(0,{count})", *allow, "--run-dir", "sweep",
                 "--jobs", str(jobs)]
            )  # fmt: skip

        def hydra() -> None:
            values = ",".join(map(str, range(n)))
            run([sys.executable, "hydra_app.py", "-m", f"i={values}", "hydra.sweep.dir=hydra"])

        methods: dict[str, Callable[[], None]] = {
            f"hand loop, {n} trivial jobs": hand_loop,
            f"corelib run -m --jobs 1, {n} trivial jobs": sweep("trivial.yaml", n, 1),
            f"hydra -m (basic launcher), {n} trivial jobs": hydra,
            f"corelib run -m --jobs 1, {m} x {options.sleep:g} s sleep jobs": sweep(
                "sleepy.yaml", m, 1
            ),
            f"corelib run -m --jobs 2, {m} x {options.sleep:g} s sleep jobs": sweep(
                "sleepy.yaml", m, 2
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(options.repeats):
            for name, method in methods.items():
                for leftover in ("loop", "sweep", "hydra"):
                    shutil.rmtree(folder / leftover, ignore_errors=True)
                started = time.perf_counter()
                method()
                times[name].append(time.perf_counter() - started)

    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in medians.items():
        print(f"{name:<50} {seconds:7.2f} s  ({seconds / _count(name) * 1000:6.0f} ms a job)")
    loop, local, hydra_s, one, two = medians.values()
    print(f"\ncorelib run -m / hand loop:           {local / loop:.2f}x (target <= 1.5x)")
    print(f"--jobs 2 speed-up on sleep jobs:      {one / two:.2f}x (target >= 1.6x)")
    print(f"corelib run -m / hydra -m:            {local / hydra_s:.2f}x")


def _count(name: str) -> int:
    return int(name.rsplit(", ", 1)[1].split()[0])


def _write_apps(folder: Path, sleep: float) -> None:
    (folder / "sweepbench.py").write_text(MODULE)
    (folder / "trivial.yaml").write_text("main:\n  _target_: sweepbench.trivial\n  i: 0\n")
    sleepy = f"main:\n  _target_: sweepbench.sleepy\n  i: 0\n  seconds: {sleep}\n"
    (folder / "sleepy.yaml").write_text(sleepy)
    (folder / "hydra_app.py").write_text(HYDRA_APP)
    (folder / "conf").mkdir()
    (folder / "conf" / "config.yaml").write_text("i: 0\n")


if __name__ == "__main__":
    main()
