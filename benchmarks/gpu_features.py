"""Memory and speed features side by side, for ``gpu_check.sh`` (one GPU, or the CPU).

    python benchmarks/gpu_features.py --device cuda --out DIR [--checks precision,ac,async]
    python benchmarks/gpu_features.py --cpu-smoke --out DIR      (tiny model, the CPU)

Each check trains ``ddp/transformer_lm`` with ``ddp/trainer`` + ``ddp/single`` a few ways and
prints ratios against the plain run; ``ddp/throughput`` measures the step time (median, past
its warm-up) and the peak memory (CUDA's max allocated; not comparable on the CPU, where it is
the process's RSS high-water mark):

  precision  ``precision="bf16"`` and ``"fp16"`` against ``"32"``: step time and peak memory.
  ac         strategy option ``activation_checkpointing=["blocks.*"]`` (8 blocks): peak memory
             and step time against none.
  async      checkpointer ``async_save=true`` against a synchronous save every few steps: the
             step that saves, over a normal step (its stall), for both.

A setting this build does not have (refused before the first step: unknown option or value, or
a platform that cannot run it) prints ``skipped: option missing`` and the refusal; the other
checks still run. Records go to ``DIR/features.jsonl``; the exit status is 1 if a run failed.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_throughput_compile import StepMarks, marked_adamw

from corelib import CorelibError, instantiate
from plugins.ddp.models import TransformerLM, lm_loss, markov_tokens
from plugins.ddp.throughput import Throughput
from plugins.ddp.trainer import Trainer

FIELDS = ("vocab", "dim", "blocks", "heads", "seq", "batch", "steps")
SIZES = {
    "large": (8192, 1024, 8, 16, 512, 8, 16),
    "small": (64, 32, 8, 2, 32, 4, 8),
}


class OptionMissing(Exception):
    """A setting was refused before training started."""


def train(size: str, device: str, *, strategy: dict[str, Any] | None = None, **options: Any) -> Any:
    """Train once; return (step marks, throughput summary). A refusal before the first step
    raises :class:`OptionMissing`."""
    vocab, dim, blocks, heads, seq, batch, steps = SIZES[size]
    marks, throughput = StepMarks(), Throughput(log_every=steps, warmup_steps=2)
    callbacks = [marks, throughput, *options.pop("callbacks", ())]
    try:
        strategy_object = instantiate(
            {"_target_": "ddp/single", "device": device, **(strategy or {})}
        )
        trainer = Trainer(
            functools.partial(TransformerLM, vocab, dim, blocks, heads, seq),
            markov_tokens(batch * steps, seq_len=seq, vocab_size=vocab),
            functools.partial(marked_adamw, marks=marks),
            strategy=strategy_object,
            loss_fn=lm_loss,
            batch_size=batch,
            max_steps=steps,
            callbacks=callbacks,
            **options,
        )
        trainer.fit()
    except (CorelibError, TypeError, ValueError) as error:
        if marks.marks:
            raise
        raise OptionMissing(str(error).splitlines()[0][:200]) from error
    return marks, throughput.summary


def _peak_ratio(run: dict[str, Any], base: dict[str, Any], device: str) -> str:
    if device != "cuda" and not device.startswith("cuda:"):
        return "peak memory n/a on the CPU"
    return f"peak memory {run['peak_bytes'] / base['peak_bytes']:.2f}x"


def check_precision(size: str, device: str) -> list[dict[str, Any]]:
    _, base = train(size, device)
    records = []
    for precision in ("bf16", "fp16"):
        try:
            _, run = train(size, device, precision=precision)
        except OptionMissing as missing:
            print(f"precision {precision}: skipped: option missing ({missing})")
            records.append({"check": f"precision-{precision}", "skipped": str(missing)})
            continue
        speed = run["step_s_p50"] / base["step_s_p50"]
        print(
            f"precision {precision} / 32: step time {speed:.2f}x, {_peak_ratio(run, base, device)}"
        )
        records.append(
            {"check": f"precision-{precision}", "step_ratio": speed, **_peaks(run, base)}
        )
    return records


def check_ac(size: str, device: str) -> list[dict[str, Any]]:
    _, base = train(size, device)
    try:
        _, run = train(size, device, strategy={"activation_checkpointing": ["blocks.*"]})
    except OptionMissing as missing:
        print(f"activation checkpointing: skipped: option missing ({missing})")
        return [{"check": "ac", "skipped": str(missing)}]
    speed = run["step_s_p50"] / base["step_s_p50"]
    print(
        f"activation checkpointing / none: step time {speed:.2f}x, "
        f"{_peak_ratio(run, base, device)} (targets: <= 1.4x, <= 0.60x)"
    )
    return [{"check": "ac", "step_ratio": speed, **_peaks(run, base)}]


def check_async(size: str, device: str) -> list[dict[str, Any]]:
    every = SIZES[size][-1] // 4

    def stall(async_save: bool) -> float:
        folder = tempfile.mkdtemp(prefix="gpu-features-ckpt-")
        node = {"_target_": "ddp/checkpointer", "directory": folder, "every": every}
        if async_save:
            node["async_save"] = True
        try:
            checkpointer = instantiate(node)
        except CorelibError as error:
            raise OptionMissing(str(error).splitlines()[0][:200]) from error
        marks, _ = train(size, device, callbacks=[checkpointer])
        # gaps[i] is step i + 2, with whatever ran after step i + 1 ended (a save, at times)
        gaps = [b - a for a, b in itertools.pairwise(marks.marks)]
        after_save = set(range(every - 1, len(gaps), every))
        saving = [gaps[i] for i in after_save]
        normal = [gap for i, gap in enumerate(gaps) if i not in after_save and i > 0]
        return statistics.median(saving) / statistics.median(normal)

    synchronous = stall(False)
    print(f"checkpoint, synchronous: the saving step / a normal step = {synchronous:.2f}x")
    records: list[dict[str, Any]] = [{"check": "checkpoint-sync", "stall_ratio": synchronous}]
    try:
        asynchronous = stall(True)
    except OptionMissing as missing:
        print(f"checkpoint async_save: skipped: option missing ({missing})")
        return [*records, {"check": "checkpoint-async", "skipped": str(missing)}]
    print(
        f"checkpoint async_save: the saving step / a normal step = {asynchronous:.2f}x "
        "(target <= 1.5x)"
    )
    return [*records, {"check": "checkpoint-async", "stall_ratio": asynchronous}]


def _peaks(run: dict[str, Any], base: dict[str, Any]) -> dict[str, float]:
    return {"peak_bytes": run["peak_bytes"], "base_peak_bytes": base["peak_bytes"]}


CHECKS: dict[str, Callable[[str, str], list[dict[str, Any]]]] = {
    "precision": check_precision,
    "ac": check_ac,
    "async": check_async,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--checks", default=",".join(CHECKS))
    parser.add_argument("--cpu-smoke", action="store_true", help="the tiny model on the CPU")
    args = parser.parse_args()
    device, size = ("cpu", "small") if args.cpu_smoke else (args.device, "large")
    print(f"gpu_features: device {device}, model {dict(zip(FIELDS, SIZES[size], strict=True))}")
    failed = 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name in filter(None, args.checks.split(",")):
        try:
            records = CHECKS[name](size, device)
        except Exception as error:  # recorded; the next checks still run
            print(f"{name}: FAILED: {type(error).__name__}: {error}"[:400])
            records, failed = (
                [{"check": name, "error": f"{type(error).__name__}: {error}"[:300]}],
                failed + 1,
            )
        with (args.out / "features.jsonl").open("a") as file:
            for record in records:
                file.write(json.dumps({"device": device, **record}) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
