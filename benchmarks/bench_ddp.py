"""The ddp trainer's overhead over hand-written PyTorch loops, single-process and 2-rank DDP.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_ddp.py [--pairs 8] [--steps 40] [--rounds 3]

The same model (a 3-layer MLP, 1024 hidden units) on the same data (Gaussian blobs, 1024
features, 10 classes; batch 64 per rank) is trained four ways:

  (i)   plain        a hand-written loop (DataLoader, SGD)
  (ii)  single       ddp/trainer + ddp/single
  (iii) ddp          a hand-written DDP loop (DistributedSampler) on 2 gloo ranks
  (iv)  trainer-ddp  ddp/trainer + ddp/ddp on 2 ranks

Step time. One process (for i/ii) and one 2-rank torchrun job (for iii/iv) alternate the
hand-written and the framework run `--pairs` times (ABBA order), `--steps` steps each, so both
meet the same machine load; every optimizer carries the same post-step hook marking when each
step ended (after the GPU finished, on CUDA). A run's step time is the median gap between marks
after warm-up; the overhead is the median over pairs of framework / hand-written.

Startup. Each case is also launched the way a user would, `--rounds` times in rotating order,
and timed from starting the command to the end of its first step: `python script.py`,
`corelib run config.yaml`, `torchrun --nproc-per-node 2 script.py`,
`corelib run config.yaml --nproc-per-node 2`.

Targets: step overhead at most 3 % (2 % on a GPU), startup at most 1.5x hand-written.
"""

from __future__ import annotations

import argparse
import atexit
import functools
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
FEATURES, HIDDEN, CLASSES, BATCH, LR = 1024, 1024, 10, 64, 0.01
WARMUP_STEPS = 5

CONFIG = """\
_target_: ddp/trainer
model: {{_target_: plugins.ddp.models.MLP, _partial_: true, in_dim: {features}, hidden: {hidden},
        out_dim: {classes}, depth: 3}}
train_data: {{_target_: bench_ddp.make_dataset, n_samples: {samples}}}
optimizer: {{_target_: bench_ddp.timed_sgd, _partial_: true, lr: {lr}, out: {out}}}
loss_fn: {{_import_: torch.nn.functional.cross_entropy}}
strategy: {{_target_: {strategy}, device: {device}{backend}}}
batch_size: {batch}
max_steps: {steps}
"""


# -- what every case shares ------------------------------------------------------------------


def make_dataset(n_samples: int) -> Any:
    """The benchmark's data: the same for every case."""
    from plugins.ddp.synthetic import gaussian_blobs

    return gaussian_blobs(n_samples, FEATURES, CLASSES)


def make_model() -> Any:
    """The benchmark's model, built from the seeded global RNG."""
    from plugins.ddp.models import MLP

    return MLP(FEATURES, HIDDEN, CLASSES, depth=3)


class StepMarks:
    """A post-step hook recording when each step ended (after the GPU's work, on CUDA)."""

    def __init__(self, on_gpu: bool) -> None:
        self.on_gpu = on_gpu
        self.marks: list[float] = []
        self.first_step_wall: float | None = None

    def __call__(self, *_: Any) -> None:
        if self.on_gpu:
            import torch

            torch.cuda.synchronize()
        self.marks.append(time.perf_counter())
        if self.first_step_wall is None:
            self.first_step_wall = time.time()

    def median_step(self) -> float:
        """The median gap between marks after warm-up, in seconds."""
        return statistics.median([b - a for a, b in itertools.pairwise(self.marks)][WARMUP_STEPS:])


def sgd(params: Iterable[Any], *, lr: float, marks: StepMarks | None = None) -> Any:
    """SGD whose steps are marked by ``marks`` (a fresh recorder when None)."""
    import torch

    params = list(params)
    optimizer = torch.optim.SGD(params, lr=lr)
    optimizer.marks = marks or StepMarks(params[0].device.type == "cuda")
    optimizer.register_step_post_hook(optimizer.marks)
    return optimizer


def timed_sgd(params: Iterable[Any], *, lr: float, out: str) -> Any:
    """:func:`sgd` whose rank 0 writes the time of its first step to ``out`` at exit."""
    optimizer = sgd(params, lr=lr)

    def write() -> None:
        if int(os.environ.get("RANK", 0)) == 0:
            Path(out).write_text(json.dumps({"first_step_wall": optimizer.marks.first_step_wall}))

    atexit.register(write)
    return optimizer


# -- the two ways to train -------------------------------------------------------------------


def hand_written(steps: int, device: str, marks: StepMarks | None = None) -> None:
    """(i) or, inside a process group, (iii): the loop a user would write."""
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, DistributedSampler

    distributed = dist.is_initialized()
    ranks = dist.get_world_size() if distributed else 1
    torch.manual_seed(0)
    model = make_model().to(device)
    if distributed:
        device_ids = [device] if device.startswith("cuda") else None
        model = DistributedDataParallel(model, device_ids=device_ids)
    optimizer = sgd(model.parameters(), lr=LR, marks=marks)
    dataset = make_dataset(steps * BATCH * ranks)
    sampler = DistributedSampler(dataset, shuffle=True, drop_last=True) if distributed else None
    loader = DataLoader(
        dataset, batch_size=BATCH, shuffle=not distributed, sampler=sampler, drop_last=True
    )
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


def framework(steps: int, device: str, backend: str, marks: StepMarks) -> None:
    """(ii) or, inside a process group, (iv): ``ddp/trainer`` with ``ddp/single`` or ``ddp/ddp``."""
    import torch.distributed as dist
    import torch.nn.functional as F

    from plugins.ddp.strategies.ddp import DDP
    from plugins.ddp.strategies.single import SingleDevice
    from plugins.ddp.trainer import Trainer

    distributed = dist.is_initialized()
    strategy = DDP(device=device, backend=backend) if distributed else SingleDevice(device=device)
    Trainer(
        make_model,
        make_dataset(steps * BATCH * strategy.world_size),
        functools.partial(sgd, lr=LR, marks=marks),
        strategy=strategy,
        loss_fn=F.cross_entropy,
        batch_size=BATCH,
        max_steps=steps,
    ).fit()


def _join(device: str, backend: str) -> str:
    """Under torchrun, start the one process group every run uses; return this rank's device."""
    import torch
    import torch.distributed as dist

    if "RANK" not in os.environ:
        return device
    if device == "cuda":
        device = f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
        torch.cuda.set_device(device)
    dist.init_process_group(backend)
    return device


def _leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def alternate(pairs: int, steps: int, device: str, backend: str, out: str) -> None:
    """Worker: alternate hand-written and framework runs; rank 0 writes their step times."""
    device = _join(device, backend)
    runs = {
        "hand": functools.partial(hand_written, steps, device),
        "framework": functools.partial(framework, steps, device, backend),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for pair in range(pairs):
        order = ["hand", "framework"] if pair % 2 == 0 else ["framework", "hand"]  # ABBA
        for name in order:
            marks = StepMarks(device.startswith("cuda"))
            runs[name](marks)
            times[name].append(marks.median_step())
    if int(os.environ.get("RANK", 0)) == 0:
        Path(out).write_text(json.dumps(times))
    _leave()


def first_step(steps: int, device: str, backend: str, out: str) -> None:
    """Worker for the startup of (i) and (iii): a short hand-written run."""
    device = _join(device, backend)
    marks = StepMarks(device.startswith("cuda"))
    hand_written(steps, device, marks)
    if int(os.environ.get("RANK", 0)) == 0:
        Path(out).write_text(json.dumps({"first_step_wall": marks.first_step_wall}))
    _leave()


# -- the launcher ----------------------------------------------------------------------------


def _environment() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")])
    return env


def _call(name: str, command: list[str]) -> float:
    """Run ``command``; return how long it took to start (s) if it succeeded."""
    started = time.time()
    done = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return started


def _launchers(args: argparse.Namespace, out: Path) -> dict[str, list[str]]:
    """The commands that start each case as a user would, for the startup measurement."""
    python = sys.executable
    torchrun = [python, "-m", "torch.distributed.run", "--nproc-per-node", str(args.nproc)]
    script = [str(Path(__file__)), "--device", args.device, "--backend", args.backend]
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
                samples=WARMUP_STEPS * BATCH * ranks,
                lr=LR,
                out=out / f"{name}.json",
                strategy=strategy,
                device=args.device,
                backend=f", backend: {args.backend}" if strategy == "ddp/ddp" else "",
                batch=BATCH,
                steps=WARMUP_STEPS,
            )
        )
        configs[name] = [python, "-m", "corelib", "run", str(config), "--unsafe"]
    short = ["--steps", str(WARMUP_STEPS), "--worker", "first-step"]
    return {
        "plain": [python, *script, *short, "--out", str(out / "plain.json")],
        "single": configs["single"],
        "ddp": [*torchrun, *script, *short, "--out", str(out / "ddp.json")],
        "trainer-ddp": [*configs["trainer-ddp"], "--nproc-per-node", str(args.nproc)],
    }


def _startup(args: argparse.Namespace, out: Path) -> dict[str, list[float]]:
    launchers = _launchers(args, out)
    names = list(launchers)
    startup: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(args.rounds):
        shift = round_index % len(names)  # each case in every position: order effects cancel
        for name in names[shift:] + names[:shift]:
            started = _call(name, launchers[name])
            first = json.loads((out / f"{name}.json").read_text())["first_step_wall"]
            startup[name].append(first - started)
    return startup


def _step_times(args: argparse.Namespace, out: Path) -> dict[str, dict[str, list[float]]]:
    python = sys.executable
    worker = [
        *[str(Path(__file__)), "--device", args.device, "--backend", args.backend],
        *["--pairs", str(args.pairs), "--steps", str(args.steps), "--worker", "alternate"],
    ]
    torchrun = [python, "-m", "torch.distributed.run", "--nproc-per-node", str(args.nproc)]
    times = {}
    for name, launcher in [("single", [python]), ("ddp", torchrun)]:
        _call(name, [*launcher, *worker, "--out", str(out / f"steps-{name}.json")])
        times[name] = json.loads((out / f"steps-{name}.json").read_text())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=8, help="hand/framework run pairs per job")
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per run")
    parser.add_argument("--rounds", type=int, default=3, help="launches of each case (startup)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (each rank its own GPU)")
    parser.add_argument("--backend", default="gloo", help="process-group backend of the DDP cases")
    parser.add_argument("--nproc", type=int, default=2, help="ranks of the DDP cases")
    parser.add_argument("--worker", choices=["alternate", "first-step"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "alternate":
        alternate(args.pairs, args.steps, args.device, args.backend, args.out)
    elif args.worker == "first-step":
        first_step(args.steps, args.device, args.backend, args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_ddp_") as tmp:
            times = _step_times(args, Path(tmp))
            startup = _startup(args, Path(tmp))
        _report(times, startup, args)


def _report(
    times: dict[str, dict[str, list[float]]],
    startup: dict[str, list[float]],
    args: argparse.Namespace,
) -> None:
    threads = os.environ.get("OMP_NUM_THREADS", "1")
    print(
        f"MLP 3x{HIDDEN}, batch {BATCH}/rank, device {args.device}, OMP_NUM_THREADS={threads}; "
        f"DDP: {args.nproc} ranks, {args.backend}; step times: {args.pairs} pairs x "
        f"{args.steps} steps; startup: {args.rounds} launches each"
    )
    print(f"{'case':<12} {'median step ms':>15} {'median startup s':>17}")
    target = 1.02 if args.device == "cuda" else 1.03
    rows = [
        ("plain", "single", "hand"),
        ("single", "single", "framework"),
        ("ddp", "ddp", "hand"),
        ("trainer-ddp", "ddp", "framework"),
    ]
    for case, job, kind in rows:
        step = statistics.median(times[job][kind]) * 1e3
        print(f"{case:<12} {step:>15.2f} {statistics.median(startup[case]):>17.2f}")
    for framework_case, hand_case, job in [
        ("single", "plain", "single"),
        ("trainer-ddp", "ddp", "ddp"),
    ]:
        pairs = zip(times[job]["framework"], times[job]["hand"], strict=True)
        ratios = sorted(f / h for f, h in pairs)
        start = statistics.median(startup[framework_case]) / statistics.median(startup[hand_case])
        print(
            f"{framework_case}/{hand_case}: step {statistics.median(ratios):.3f} "
            f"(pairs {ratios[0]:.3f}..{ratios[-1]:.3f}; target <= {target}), "
            f"startup {start:.2f}x (target <= 1.5x)"
        )


if __name__ == "__main__":
    main()
