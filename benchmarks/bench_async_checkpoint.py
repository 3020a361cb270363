"""How long a saving step stalls training: no checkpoint, synchronous saves, async saves.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_async_checkpoint.py [--hidden 1536]
        [--layers 4] [--batch-size 256] [--steps 40] [--every 10] [--runs 3]

One process on the CPU trains an MLP of `--layers` layers `--hidden` wide (by default 7.1 M
parameters, 27 MiB; 54 MiB of checkpoint with SGD's momentum) with ddp/trainer, three ways in turn
(`--runs` rounds, rotating order, so all meet the same machine load):

  none   no checkpoints
  sync   ddp/checkpointer(every=N): the step that saves waits for the write
  async  ddp/checkpointer(every=N, async_save=true): the step copies the state to memory, a
         thread writes it (the next save, and the end of fit, wait for it)

A callback marks the end of every step; a step's time is the gap since the previous mark. The
saving step is the step after each save (the save runs in the saving step's end hooks, so its
cost lands in the next gap). "normal" is the median of the steps that follow no save, after
warm-up; "saving" is the median saving step, "stall" saving - normal, "ratio" saving / normal,
and "after" the median of the steps while an async write still runs (the thread shares the
CPU) / normal. Limit: async ratio at most 1.5x. Each figure is the median over runs and its
spread (min-max). What an async save costs the step is the copy of the state to memory, so
the ratio falls as steps get longer (a bigger batch) and rises with the state's size.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from corelib import hookimpl
from plugins.ddp.checkpointer import Checkpointer
from plugins.ddp.models import MLP
from plugins.ddp.strategies.single import SingleDevice
from plugins.ddp.synthetic import gaussian_blobs
from plugins.ddp.trainer import Trainer

_WARMUP = 3


class _StepClock:
    """The end time of every step."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    @hookimpl(tryfirst=True)
    def ddp_step_end(self) -> None:
        self.ends.append(time.perf_counter())


def _train(mode: str, args: argparse.Namespace, directory: Path) -> dict[str, float]:
    clock = _StepClock()
    callbacks: list[Any] = [clock]
    if mode != "none":
        callbacks.append(
            Checkpointer(directory, every=args.every, keep_last=1, async_save=mode == "async")
        )
    features = args.hidden
    Trainer(
        functools.partial(MLP, features, args.hidden, 10, depth=args.layers),
        gaussian_blobs(4096, features, 10, sample_seed=0),
        functools.partial(torch.optim.SGD, lr=0.01, momentum=0.9),
        strategy=SingleDevice(device="cpu"),
        loss_fn=F.cross_entropy,
        batch_size=args.batch_size,
        max_steps=args.steps,
        callbacks=callbacks,
    ).fit()
    gaps = {
        step + 1: end - start
        for step, (start, end) in enumerate(zip(clock.ends, clock.ends[1:], strict=False), 1)
    }
    saved = {step for step in gaps if (step - 1) % args.every == 0 and step - 1 >= args.every}
    later = {s + k for s in saved for k in range(1, args.every // 2)} & gaps.keys()
    normal = [t for s, t in gaps.items() if s > _WARMUP and s not in saved and s not in later]
    base = statistics.median(normal)
    result = {"normal": 1000 * base}
    if mode != "none":
        saving = statistics.median(gaps[s] for s in saved)
        result.update(saving=1000 * saving, stall=1000 * (saving - base), ratio=saving / base)
        result["after"] = statistics.median(gaps[s] for s in later) / base
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=1536)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    modes = ["none", "sync", "async"]
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    for run in range(args.runs):
        for mode in modes[run % 3 :] + modes[: run % 3]:
            with tempfile.TemporaryDirectory() as directory:
                results[mode].append(_train(mode, args, Path(directory)))
    model = MLP(args.hidden, args.hidden, 10, depth=args.layers)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    print(f"command: {' '.join(sys.argv)}")
    print(
        f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, "
        f"{size / 2**20:.0f} MiB (checkpoint with momentum {2 * size / 2**20:.0f} MiB); "
        f"torch {torch.__version__}, 1 CPU thread, {args.runs} runs"
    )
    columns = {"normal": "{:.0f}", "saving": "{:.0f}", "stall": "{:.0f}"}
    columns.update(ratio="{:.2f}x", after="{:.2f}x")
    header = ["normal ms", "saving ms", "stall ms", "saving/normal", "after/normal"]
    print(f"{'mode':6}" + "".join(f"{name:>22}" for name in header))
    for mode in modes:
        rows = results[mode]
        cells = [
            _spread([row[key] for row in rows], form) if key in rows[0] else "-"
            for key, form in columns.items()
        ]
        print(f"{mode:6}" + "".join(f"{cell:>22}" for cell in cells))
    ratio = statistics.median(row["ratio"] for row in results["async"])
    verdict = "within" if ratio <= 1.5 else "OVER"
    print(f"async saving step {ratio:.2f}x a normal step: {verdict} the 1.5x limit")


def _spread(values: list[float], form: str) -> str:
    middle = statistics.median(values)
    return f"{form.format(middle)} ({form.format(min(values))}-{form.format(max(values))})"


if __name__ == "__main__":
    main()
