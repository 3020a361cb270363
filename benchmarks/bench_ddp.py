"""The ddp trainer's overhead over hand-written PyTorch loops, single-process and 2-rank DDP.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_ddp.py [--rounds 3] [--steps 60]

The same model (a 3-layer MLP, 1024 hidden units) on the same data (Gaussian blobs, 1024
features, 10 classes; batch 64 per rank) is trained four ways, each in fresh processes:

  (i)   plain        a hand-written loop (DataLoader, SGD)       python bench_ddp.py
  (ii)  single       ddp/trainer + ddp/single, a YAML config      corelib run
  (iii) ddp          hand-written DDP on 2 gloo ranks             torchrun --nproc-per-node 2
  (iv)  trainer-ddp  ddp/trainer + ddp/ddp on 2 ranks             corelib run --nproc-per-node 2

The four cases are interleaved round after round, starting each round with the next case, so
drift in machine load and the order of runs hit them alike.
Every optimizer carries the same post-step hook, which records when each step ended; a step time
is the gap between two such marks (the first few are warm-up and dropped). Startup is the wall
time from starting the command to the end of the first step. Targets: step-time overhead at most
3 %, startup at most 1.5x the hand-written equivalent.
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FEATURES, HIDDEN, CLASSES, BATCH = 1024, 1024, 10, 64
WARMUP_STEPS = 5

CONFIG = """\
_target_: ddp/trainer
model: {{_target_: plugins.ddp.models.MLP, _partial_: true, in_dim: {features}, hidden: {hidden},
        out_dim: {classes}, depth: 3}}
train_data: {{_target_: bench_ddp.make_dataset, n_samples: {samples}}}
optimizer: {{_target_: bench_ddp.timed_sgd, _partial_: true, lr: 0.01, out: {out}}}
loss_fn: {{_import_: torch.nn.functional.cross_entropy}}
strategy: {{_target_: {strategy}, device: {device}{backend}}}
batch_size: {batch}
max_steps: {steps}
"""


# -- pieces shared by every worker ---------------------------------------------------------------


def make_dataset(n_samples: int) -> Any:
    """The benchmark's data: the same for every case."""
    from plugins.ddp.synthetic import gaussian_blobs

    return gaussian_blobs(n_samples, FEATURES, CLASSES)


def make_model() -> Any:
    """The benchmark's model, built from the seeded global RNG."""
    from plugins.ddp.models import MLP

    return MLP(FEATURES, HIDDEN, CLASSES, depth=3)


def timed_sgd(params: Iterable[Any], *, lr: float, out: str) -> Any:
    """SGD whose steps are timed; rank 0 writes the marks to `out` as JSON when it exits.

    On a GPU each mark waits for the step's kernels, in every case alike.
    """
    import torch

    params = list(params)
    optimizer = torch.optim.SGD(params, lr=lr)
    on_gpu = params[0].device.type == "cuda"
    marks: list[float] = []
    first_step_wall: list[float] = []

    def mark(*_: Any) -> None:
        if on_gpu:
            torch.cuda.synchronize()
        marks.append(time.perf_counter())
        if not first_step_wall:
            first_step_wall.append(time.time())

    def write() -> None:
        if int(os.environ.get("RANK", 0)) == 0:
            Path(out).write_text(json.dumps({"first_step_wall": first_step_wall, "marks": marks}))

    optimizer.register_step_post_hook(mark)
    atexit.register(write)
    return optimizer


# -- the hand-written loops ------------------------------------------------------------------


def plain_loop(steps: int, out: str, device: str) -> None:
    """(i): the loop a user would write for one process."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    model = make_model().to(device)
    optimizer = timed_sgd(model.parameters(), lr=0.01, out=out)
    loader = DataLoader(make_dataset(steps * BATCH), batch_size=BATCH, shuffle=True, drop_last=True)
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


def ddp_loop(steps: int, out: str, device: str, backend: str) -> None:
    """(iii): the loop a user would write for DDP under torchrun."""
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, DistributedSampler

    if device == "cuda":
        device = f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
        torch.cuda.set_device(device)
    dist.init_process_group(backend)
    torch.manual_seed(0)
    device_ids = [device] if device.startswith("cuda") else None
    model = DistributedDataParallel(make_model().to(device), device_ids=device_ids)
    optimizer = timed_sgd(model.parameters(), lr=0.01, out=out)
    dataset = make_dataset(steps * BATCH * dist.get_world_size())
    sampler = DistributedSampler(dataset, shuffle=True, drop_last=True)
    loader = DataLoader(dataset, batch_size=BATCH, sampler=sampler, drop_last=True)
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    del model, optimizer
    dist.destroy_process_group()


# -- the launcher ----------------------------------------------------------------------------


def _commands(args: argparse.Namespace, out: Path) -> dict[str, list[str]]:
    python = sys.executable
    nproc = ["--nproc-per-node", str(args.nproc)]
    worker = [str(Path(__file__)), "--steps", str(args.steps), "--device", args.device]
    configs = {}
    for name, strategy, ranks in [
        ("single", "ddp/single", 1),
        ("trainer-ddp", "ddp/ddp", args.nproc),
    ]:
        config = out / f"{name}.yaml"
        config.write_text(
            CONFIG.format(
                features=FEATURES,
                hidden=HIDDEN,
                classes=CLASSES,
                samples=args.steps * BATCH * ranks,
                out=out / f"{name}.json",
                strategy=strategy,
                device=args.device,
                backend=f", backend: {args.backend}" if name == "trainer-ddp" else "",
                batch=BATCH,
                steps=args.steps,
            )
        )
        configs[name] = str(config)
    return {
        "plain": [python, *worker, "--worker", "plain", "--out", str(out / "plain.json")],
        "single": [python, "-m", "corelib", "run", configs["single"], "--unsafe"],
        "ddp": [
            *[python, "-m", "torch.distributed.run", *nproc, *worker],
            *["--backend", args.backend, "--worker", "ddp", "--out", str(out / "ddp.json")],
        ],
        "trainer-ddp": [python, "-m", "corelib", "run", configs["trainer-ddp"], "--unsafe", *nproc],
    }


def _run(name: str, command: list[str], out: Path) -> tuple[list[float], float]:
    """Run one case; return its step times (s) after warm-up and its startup time (s)."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")])
    started = time.time()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    record = json.loads((out / f"{name}.json").read_text())
    marks = record["marks"]
    gaps = [b - a for a, b in itertools.pairwise(marks)][WARMUP_STEPS:]
    return gaps, record["first_step_wall"][0] - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of all cases")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per run")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (each rank its own GPU)")
    parser.add_argument("--backend", default="gloo", help="process-group backend of the DDP cases")
    parser.add_argument("--nproc", type=int, default=2, help="ranks of the DDP cases")
    parser.add_argument("--worker", choices=["plain", "ddp"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "plain":
        plain_loop(args.steps, args.out, args.device)
        return
    if args.worker == "ddp":
        ddp_loop(args.steps, args.out, args.device, args.backend)
        return

    steps: dict[str, list[float]] = {}
    startup: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_ddp_") as tmp:
        out = Path(tmp)
        commands = _commands(args, out)
        names = list(commands)
        for round_index in range(args.rounds):
            shift = round_index % len(names)  # each case in every position, to cancel order effects
            for name in names[shift:] + names[:shift]:
                gaps, start = _run(name, commands[name], out)
                steps.setdefault(name, []).extend(gaps)
                startup.setdefault(name, []).append(start)
            print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)
    _report(steps, startup, args)


def _report(
    steps: dict[str, list[float]], startup: dict[str, list[float]], args: argparse.Namespace
) -> None:
    threads = os.environ.get("OMP_NUM_THREADS", "1")
    print(
        f"MLP 3x{HIDDEN}, batch {BATCH}/rank, {args.steps} steps x {args.rounds} rounds, "
        f"device {args.device}, DDP cases: {args.nproc} ranks, {args.backend}, "
        f"OMP_NUM_THREADS={threads}"
    )
    print(f"{'case':<12} {'median step ms':>15} {'mean step ms':>13} {'startup s':>10}")
    for name in steps:
        median, mean = statistics.median(steps[name]), statistics.fmean(steps[name])
        start = statistics.median(startup[name])
        print(f"{name:<12} {median * 1e3:>15.2f} {mean * 1e3:>13.2f} {start:>10.2f}")
    step_target = 1.02 if args.device == "cuda" else 1.03
    for framework, baseline in [("single", "plain"), ("trainer-ddp", "ddp")]:
        step_ratio = statistics.median(steps[framework]) / statistics.median(steps[baseline])
        start_ratio = statistics.median(startup[framework]) / statistics.median(startup[baseline])
        print(
            f"{framework}/{baseline}: step {step_ratio:.3f} (target <= {step_target}), "
            f"startup {start_ratio:.2f}x (target <= 1.5x)"
        )


if __name__ == "__main__":
    main()
