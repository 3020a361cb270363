"""Training checks for a lent GPU machine; `gpu_check.sh` runs them (see there).

    python benchmarks/gpu_check.py --device cuda --out DIR --tag T --checks ddp,fsdp2-bf16
    python -m torch.distributed.run --nproc-per-node 2 benchmarks/gpu_check.py ... --backend gloo
    python benchmarks/gpu_check.py --summarize --out DIR

Each check trains a fresh MLP with ``ddp/trainer`` under one strategy and precision (all checks
of one invocation share the processes); rank 0 appends a JSON line per check to
``DIR/checks.jsonl``: first and final loss, steps/s and peak GPU memory (the maximum over ranks).
``--summarize`` prints them as a table and judges them: every run must learn, DDP and FSDP2 on
one rank must match a single device, and FSDP2 on two ranks must peak lower than DDP.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from corelib import hookimpl
from plugins.ddp.models import MLP
from plugins.ddp.strategies.ddp import DDP
from plugins.ddp.strategies.fsdp2 import FSDP2
from plugins.ddp.strategies.single import SingleDevice
from plugins.ddp.synthetic import gaussian_blobs
from plugins.ddp.trainer import Trainer

FEATURES, CLASSES, BATCH, STEPS = 1024, 10, 64, 30
SPREAD = 40.0  # the classes overlap: the loss falls, but not to zero


class Trace:
    """Callback keeping each step's loss, when the first step ended, and the peak GPU memory
    (the largest over ranks, reduced while the process group is still up)."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.first_step_end = 0.0
        self.peak_mib = math.nan

    @hookimpl
    def ddp_step_end(self, step: int, metrics: dict[str, float]) -> None:
        if step == 1:
            self.first_step_end = time.perf_counter()
        self.losses.append(metrics["train/loss"])

    @hookimpl
    def ddp_fit_end(self, trainer: Trainer) -> None:
        if not torch.cuda.is_available():
            return
        strategy = trainer.strategy
        peak = torch.tensor(torch.cuda.max_memory_allocated() / 2**20, device=strategy.device)
        self.peak_mib = strategy.all_reduce(peak, "max").item()


def _strategy(kind: str, device: str, backend: str | None, precision: str) -> Any:
    if kind == "single":
        return SingleDevice(device=device)
    if kind == "ddp":
        return DDP(device=device, backend=backend)
    if kind != "fsdp2":
        raise ValueError(f"unknown check {kind!r}: expected single, ddp or fsdp2 (+ -bf16, -mem)")
    bf16 = "bf16" if precision == "bf16" else None
    return FSDP2(device=device, backend=backend, param_dtype=bf16, reduce_dtype="fp32")


def run_check(name: str, device: str, backend: str | None, hidden: int) -> dict[str, Any]:
    """Train under the check named ``<strategy>[-bf16][-mem]``; return its record."""
    kind, *flags = name.split("-")
    precision = "bf16" if "bf16" in flags else "32"
    width = hidden * 4 if "mem" in flags else hidden
    strategy = _strategy(kind, device, backend, precision)
    trace = Trace()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    metrics = Trainer(
        functools.partial(MLP, FEATURES, width, CLASSES, depth=4),
        gaussian_blobs(BATCH * STEPS * strategy.world_size, FEATURES, CLASSES, spread=SPREAD),
        functools.partial(torch.optim.AdamW, lr=1e-3),
        strategy=strategy,
        loss_fn=F.cross_entropy,
        batch_size=BATCH,
        max_steps=STEPS,
        precision=precision,
        callbacks=(trace,),
    ).fit()
    ended = time.perf_counter()
    return {
        "check": name,
        "ranks": strategy.world_size,
        "backend": backend or "-",
        "device": device,
        "hidden": width,
        "first_loss": trace.losses[0],
        "final_loss": metrics["train/loss"],
        "steps_per_s": (STEPS - 1) / max(ended - trace.first_step_end, 1e-9),
        "seconds": ended - started,
        "peak_mib": trace.peak_mib,
    }


def summarize(out: Path) -> int:
    """Print every record and the verdicts; return 1 if any verdict failed."""
    lines = (out / "checks.jsonl").read_text().splitlines()
    records = [r for r in map(json.loads, lines) if "error" not in r]
    errors = [r for r in map(json.loads, lines) if "error" in r]
    print(
        f"{'run':<22} {'ranks':>5} {'backend':>7} {'first':>7} {'final':>7} {'steps/s':>8} "
        f"{'peak MiB':>9}"
    )
    for r in records:
        print(
            f"{r['tag'] + '/' + r['check']:<22} {r['ranks']:>5} {r['backend']:>7} "
            f"{r['first_loss']:>7.3f} {r['final_loss']:>7.3f} {r['steps_per_s']:>8.1f} "
            f"{r['peak_mib']:>9.1f}"
        )
    by_key = {(r["tag"], r["check"]): r for r in records}
    verdicts = [(f"{r['tag']}/{r['check']} raised {r['error']}", False) for r in errors]
    verdicts += [
        (f"{r['tag']}/{r['check']} learns", r["final_loss"] < r["first_loss"]) for r in records
    ]
    for run, reference in [
        (("nccl1", "ddp"), ("single", "single")),
        (("nccl1", "fsdp2"), ("single", "single")),
        (("gloo2", "fsdp2"), ("gloo2", "ddp")),  # the same global batch
    ]:
        if run in by_key and reference in by_key:
            gap = abs(by_key[run]["final_loss"] - by_key[reference]["final_loss"])
            text = f"{'/'.join(run)} matches {'/'.join(reference)} (|diff| {gap:.1e} < 1e-3)"
            verdicts.append((text, gap < 1e-3))
    for tag in ("nccl1", "gloo2"):
        ddp, fsdp2 = by_key.get((tag, "ddp-mem")), by_key.get((tag, "fsdp2-mem"))
        if ddp and fsdp2 and not math.isnan(ddp["peak_mib"]):
            ratio = fsdp2["peak_mib"] / ddp["peak_mib"]
            expect = ratio < 0.9 if ddp["ranks"] > 1 else ratio < 1.1
            verdicts.append((f"{tag}: FSDP2 peak memory / DDP = {ratio:.2f}", expect))
    for text, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in verdicts) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--summarize", action="store_true")
    parser.add_argument("--tag", default="run", help="names this invocation in the summary")
    parser.add_argument("--checks", default="", help="comma-separated: single, ddp-bf16, ...")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--backend", default=None)
    parser.add_argument("--hidden", type=int, default=1024, help="MLP width (x4 for -mem checks)")
    args = parser.parse_args()
    if args.summarize:
        return summarize(args.out)
    # One process group for all checks: the strategies join it instead of making their own
    # (a second group in the same torchrun job could not connect on gloo).
    if "RANK" in os.environ:
        if args.device == "cuda":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count())
        dist.init_process_group(args.backend or "gloo", timeout=timedelta(seconds=120))
    failed = 0
    try:
        for name in filter(None, args.checks.split(",")):
            try:
                record = run_check(name, args.device, args.backend, args.hidden)
            except Exception as error:  # recorded; the next checks still run
                record = {"check": name, "error": f"{type(error).__name__}: {error}"[:300]}
                failed += 1
            if int(os.environ.get("RANK", 0)) == 0:
                with (args.out / "checks.jsonl").open("a") as file:
                    file.write(json.dumps({"tag": args.tag, **record}) + "\n")
                print(f"{args.tag}/{name}: {record}", flush=True)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
