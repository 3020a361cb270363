"""Activation checkpointing's memory saving and its cost in step time, side by side.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_activation_checkpointing.py [--runs 3]

The same ``ddp/transformer_lm`` (8 blocks, dim 256, 4 heads, vocab 64) trains on the same
token batches (16 sequences of 256 tokens, SGD, ``ddp/single`` on the CPU) with and without
``activation_checkpointing: "blocks.*"``. Each variant runs in a fresh process, the two
alternating, ``--runs`` times each:

* peak memory: the process's resident-set high-water mark (``getrusage``) at the end, minus
  its resident set when training starts (the model and data already built): what the training
  steps added on top (activations, gradients, temporaries). The whole-process peaks are
  printed too. glibc is told to return every large freed block (``MALLOC_MMAP_THRESHOLD_``),
  so the resident set follows the live tensors.
* step time: the median time between the ends of consecutive optimizer steps, after the first.

Targets (issue 15): checkpointed peak <= 60 % of plain, step time <= 1.4x plain.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

_MIB = 1024.0  # ru_maxrss is in KiB on Linux
_CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}
"""glibc serves every large block by mmap and returns it when freed, so the resident set
follows the live tensors instead of a heap that only grows."""


def _rss_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _MIB


def _rss_now_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2.0**20


def run_variant(checkpointed: bool, steps: int, args: argparse.Namespace) -> dict[str, float]:
    """Train in this process; return peaks (MiB) and step times (s)."""
    import torch

    from corelib import hookimpl
    from plugins.ddp.models import TransformerLM, lm_loss, markov_tokens
    from plugins.ddp.strategies.single import SingleDevice
    from plugins.ddp.trainer import Trainer

    torch.set_num_threads(args.threads)

    class Probe:
        def __init__(self) -> None:
            self.start_mib = 0.0
            self.marks: list[float] = []

        @hookimpl
        def ddp_fit_start(self) -> None:
            self.start_mib = _rss_now_mib()

        @hookimpl
        def ddp_step_end(self) -> None:
            self.marks.append(time.perf_counter())

    probe = Probe()
    data = markov_tokens(args.batch * steps, seq_len=args.seq, vocab_size=64)
    Trainer(
        lambda: TransformerLM(64, args.dim, 8, 4, max_seq_len=args.seq),
        data,
        lambda params: torch.optim.SGD(params, lr=0.01),
        strategy=SingleDevice(
            device="cpu", activation_checkpointing="blocks.*" if checkpointed else None
        ),
        loss_fn=lm_loss,
        batch_size=args.batch,
        max_steps=steps,
        callbacks=(probe,),
    ).fit()
    end_mib = _rss_peak_mib()
    gaps = [b - a for a, b in zip(probe.marks, probe.marks[1:], strict=False)]
    return {
        "added_mib": end_mib - probe.start_mib,
        "peak_mib": end_mib,
        "step_s": statistics.median(gaps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="steps per run (the first is warm-up)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variant", choices=["plain", "checkpointed"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # a child: one run, its figures as JSON on stdout
        print(json.dumps(run_variant(args.variant == "checkpointed", args.steps, args)))
        return
    results: dict[str, list[dict[str, float]]] = {"plain": [], "checkpointed": []}
    for run in range(args.runs):
        order = ["plain", "checkpointed"] if run % 2 == 0 else ["checkpointed", "plain"]
        for variant in order:
            child = subprocess.run(
                [sys.executable, __file__, "--variant", variant, *_forwarded(args)],
                capture_output=True,
                text=True,
                timeout=900,
                env={**os.environ, **_CHILD_ENV, "OMP_NUM_THREADS": str(args.threads)},
                check=True,
            )
            results[variant].append(json.loads(child.stdout.strip().splitlines()[-1]))
    _report(results, args)


def _forwarded(args: argparse.Namespace) -> list[str]:
    names = ("steps", "batch", "seq", "dim", "threads")
    return [item for name in names for item in (f"--{name}", str(getattr(args, name)))]


def _report(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    print(
        f"transformer_lm 8 blocks, dim {args.dim}, batch {args.batch} x {args.seq} tokens, "
        f"{args.threads} threads, {args.runs} runs of {args.steps} steps per variant"
    )
    print(
        f"{'run':>4} {'plain MiB':>10} {'ckpt MiB':>9} {'ratio':>6} "
        f"{'plain s':>8} {'ckpt s':>7} {'ratio':>6}"
    )
    mem_ratios, time_ratios = [], []
    for run, (plain, ckpt) in enumerate(
        zip(results["plain"], results["checkpointed"], strict=True)
    ):
        mem, step = ckpt["added_mib"] / plain["added_mib"], ckpt["step_s"] / plain["step_s"]
        mem_ratios.append(mem)
        time_ratios.append(step)
        print(
            f"{run:>4} {plain['added_mib']:>10.0f} {ckpt['added_mib']:>9.0f} {mem:>6.2f} "
            f"{plain['step_s']:>8.2f} {ckpt['step_s']:>7.2f} {step:>6.2f}"
        )
    whole = [
        c["peak_mib"] / p["peak_mib"]
        for p, c in zip(results["plain"], results["checkpointed"], strict=True)
    ]
    mem, step = statistics.median(mem_ratios), statistics.median(time_ratios)
    print(
        f"median: peak memory added by training {mem:.2f}x plain (target <= 0.60), "
        f"step time {step:.2f}x plain (target <= 1.40); whole-process peak "
        f"{statistics.median(whole):.2f}x"
    )


if __name__ == "__main__":
    main()
