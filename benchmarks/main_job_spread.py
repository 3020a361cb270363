"""The main job's spread over seeds and CPU kernels: one run of the pipeline per (seed, kernels).

Each run is ``corelib run examples/reasoning/config.py`` with ``seed.value=SEED`` (the one node
that seeds the data, the model's initialisation, the trainer and the sampling), in its own
folder ``OUT/seed<SEED>-<KERNELS>``, with ``ATEN_CPU_CAPABILITY=<KERNELS>`` (``native``: not
set). A rerun reuses the finished stages of each folder (the pipeline's stage cache);
``--force STAGE`` is passed on, so downstream stages are redone cheaply after a code change.
Then the table: each metric's mean, min-max and per-run values, how many runs had each paired
interval above zero, and each run's wall-clock seconds per stage as the stages last ran. It is
printed and written as JSON (``OUT/spread.json``).

    PYTHONPATH=. python benchmarks/main_job_spread.py                      # 3 seeds x 3 kernels
    PYTHONPATH=. python benchmarks/main_job_spread.py --out /work/spread --force verifier
    PYTHONPATH=. python benchmarks/main_job_spread.py --seeds 0 --kernels native avx2

``--threads 1`` sets ``OMP_NUM_THREADS=1`` for the runs: on a machine running more jobs than it
has cores, torch's two intra-op threads wait on each other and sampling slows down tenfold.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `examples` is not an installed package
    sys.path.insert(0, str(ROOT))

from examples.reasoning._io import read_json  # noqa: E402
from examples.reasoning.report import paired_difference  # noqa: E402

CONFIG = ROOT / "examples" / "reasoning" / "config.py"
KERNELS = ("native", "avx2", "default")
SC, VOTING = "self-consistency (majority)", "DiVeRSe voting verifier"
ACCURACIES = {  # shown name -> its key path in results.json
    "greedy": ("arithmetic", "methods", "greedy"),
    "self-consistency": ("arithmetic", "methods", SC),
    "voting verifier": ("arithmetic", "methods", VOTING),
    "best path": ("arithmetic", "methods", "best path (verifier)"),
    "yes/no majority": ("yes_no", "majority"),
    "label model": ("yes_no", "label model"),
}
DIFFERENCES = {  # shown name -> the report's paired difference
    "SC - greedy": f"{SC} - greedy",
    "voting - SC": f"{VOTING} - {SC}",
}
LABEL_MODEL_GAIN = "label model - majority"


def cpu_has_avx512() -> bool:
    """Whether this CPU has AVX-512 (``avx512f`` in ``/proc/cpuinfo``; False where unreadable)."""
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def run_overrides(run_dir: Path, seed: int) -> list[str]:
    """The config overrides that put a run in ``run_dir`` and seed it with ``seed``."""
    return [
        f"run_dir={run_dir}",  # every path of the run refers to ${run_dir}
        f"seed.value={seed}",
    ]


def run_job(
    run_dir: Path,
    seed: int,
    kernels: str,
    force: Sequence[str],
    timeout: float,
    threads: int | None = None,
) -> float:
    """Run (or resume) the main job in ``run_dir``; its output goes to ``<run_dir>.log``.
    ``threads`` sets ``OMP_NUM_THREADS`` (the reasoner's workers set their own). Returns the
    wall-clock seconds; a failed run is a RuntimeError naming its log."""
    env = {key: value for key, value in os.environ.items() if key != "ATEN_CPU_CAPABILITY"}
    if kernels != "native":
        env["ATEN_CPU_CAPABILITY"] = kernels
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "corelib", "run", str(CONFIG), *run_overrides(run_dir, seed)]
    command += [arg for stage in force for arg in ("--force", stage)]
    log = run_dir.with_name(f"{run_dir.name}.log")
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False
        ).returncode
    if code != 0:
        raise RuntimeError(f"{run_dir.name}: the main job exited with code {code}; see {log}")
    return time.perf_counter() - start


def figures(run_dir: Path) -> dict[str, Any]:
    """One finished run's accuracies and paired differences (in points), and stage seconds."""
    results = read_json(run_dir / "report" / "results.json")
    yesno = read_json(run_dir / "ama" / "yesno.json")
    accuracy = {name: 100 * _at(results, path)["accuracy"] for name, path in ACCURACIES.items()}
    differences = {
        name: results["arithmetic"]["differences"][key] for name, key in DIFFERENCES.items()
    }
    labels = yesno["labels"]
    predictions = yesno["predictions"]
    differences[LABEL_MODEL_GAIN] = paired_difference(
        [p == y for p, y in zip(predictions["label model"], labels, strict=True)],
        [p == y for p, y in zip(predictions["majority"], labels, strict=True)],
    )
    return {
        "accuracy": accuracy,
        "differences": {
            name: {key: 100 * value for key, value in d.items()} for name, d in differences.items()
        },
        "stage_seconds": {name: s["wall"] for name, s in results["stage_seconds"].items()},
    }


def _at(tree: Any, path: Sequence[str]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def summarise(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Per metric: mean, min, max and per-run values; per paired difference also how many runs
    had its 95% interval above zero."""
    summary: dict[str, Any] = {}
    for name in ACCURACIES:
        values = {run: r["accuracy"][name] for run, r in runs.items()}
        summary[name] = _spread(values)
    for name in [*DIFFERENCES, LABEL_MODEL_GAIN]:
        values = {run: r["differences"][name]["difference"] for run, r in runs.items()}
        above = sum(r["differences"][name]["low"] > 0 for r in runs.values())
        summary[name] = {**_spread(values), "interval_above_zero": above}
    return summary


def _spread(values: Mapping[str, float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values.values()),
        "min": min(values.values()),
        "max": max(values.values()),
        "runs": dict(values),
    }


def format_table(runs: Mapping[str, Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    """The printed table: one row per metric, one column per run."""
    names = list(runs)
    header = f"{'metric (points)':<22} {'mean':>6} {'min-max':>13}  " + " ".join(
        f"{n:>15}" for n in names
    )
    lines = [header]
    for metric, s in summary.items():
        signed = "+" if metric not in ACCURACIES else ""
        row = (
            f"{metric:<22} {s['mean']:>{signed}6.1f} "
            f"{format(s['min'], signed + '.1f'):>6}-{format(s['max'], signed + '.1f'):<6}  "
            + " ".join(f"{s['runs'][n]:>{signed}15.1f}" for n in names)
        )
        if "interval_above_zero" in s:
            row += f"   paired 95% interval > 0 in {s['interval_above_zero']}/{len(names)} runs"
        lines.append(row)
    lines.append(
        f"{'stage wall s, summed':<22} {'':>6} {'':>13}  "
        + " ".join(f"{sum(runs[n]['stage_seconds'].values()):>15.0f}" for n in names)
    )
    for stage in next(iter(runs.values()))["stage_seconds"]:
        lines.append(
            f"{'  ' + stage:<22} {'':>6} {'':>13}  "
            + " ".join(f"{runs[n]['stage_seconds'].get(stage, 0.0):>15.0f}" for n in names)
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--kernels",
        nargs="+",
        default=list(KERNELS),
        help="ATEN_CPU_CAPABILITY values; native leaves it unset (avx512 is skipped on a CPU "
        "without it)",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/spread"))
    parser.add_argument("--force", action="append", default=[], metavar="STAGE")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds per run")
    parser.add_argument(
        "--threads",
        type=int,
        help="OMP_NUM_THREADS for the runs (default: torch's own); 1 where the machine is "
        "oversubscribed, where torch's threads wait on each other",
    )
    args = parser.parse_args(argv)
    kernels = [k for k in args.kernels if k != "avx512" or cpu_has_avx512()]
    for skipped in sorted(set(args.kernels) - set(kernels)):
        print(f"skipping {skipped}: this CPU does not have it", flush=True)
    runs: dict[str, dict[str, Any]] = {}
    for seed in args.seeds:
        for kernel in kernels:
            name = f"seed{seed}-{kernel}"
            run_dir = args.out.resolve() / name
            seconds = run_job(run_dir, seed, kernel, args.force, args.timeout, args.threads)
            runs[name] = {"seed": seed, "kernels": kernel, **figures(run_dir)}
            runs[name]["this_invocation_seconds"] = seconds
            accuracy = runs[name]["accuracy"]
            print(
                f"{name}: {seconds:.0f} s; greedy {accuracy['greedy']:.1f}, "
                f"self-consistency {accuracy['self-consistency']:.1f}",
                flush=True,
            )
    summary = summarise(runs)
    table = format_table(runs, summary)
    print(table)
    path = args.out / "spread.json"
    path.write_text(json.dumps({"runs": runs, "summary": summary, "table": table}, indent=1))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
