"""What ``ddp/throughput`` costs per step, and what the trainer's ``compile`` gains per step.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_throughput_compile.py \
        [--device cpu] [--runs 3] [--pairs 4] [--steps 40] [--parts overhead,compile]

Both parts train ``ddp/transformer_lm`` (2 blocks, dim 64, sequences of 32 tokens, batch 16)
with ``ddp/trainer`` + ``ddp/single`` in this one process. An optimizer post-step hook marks
when each step ended (after the GPU finished, on CUDA); a run's step time is the median gap
between marks after the first ``WARMUP_STEPS`` steps.

overhead  Each pair trains twice, with and without ``ddp/throughput`` (``log_every=50``), in
          alternating order (ABBA), so both meet the same machine load; the ratio of a run is
          the median over pairs of with / without. Two baselines: with ``ddp/metrics_logger``
          in both arms (the figures go into a log that is there anyway), and a
          bare trainer (which then skips the per-step loss reduction that any per-step
          callback asks for). Measured directly too: the seconds spent inside the callback's
          step hook per step, over the median step time of the same run (load on the machine
          inflates both alike, so this share is steadier than the A/B ratio on a busy host).
          Target: at most 1 % of a step.
compile   Plain vs ``compile: true`` (inductor, caches off so each warm-up compiles afresh),
          alternating; the speed-up is plain / compiled step time, and the warm-up is the
          compiled run's ``compile/warmup_s`` (its first step) next to a plain first step.

Each part is repeated ``--runs`` times; the spread (min-max over runs) is printed with the
median, and one JSON line per part closes the output.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from corelib import hookimpl
from plugins.ddp.callbacks import MetricsLogger
from plugins.ddp.models import TransformerLM, lm_loss, markov_tokens
from plugins.ddp.strategies.single import SingleDevice
from plugins.ddp.throughput import Throughput
from plugins.ddp.trainer import Trainer

WARMUP_STEPS = 5
VOCAB, DIM, LAYERS, HEADS, SEQ, BATCH = 128, 64, 2, 4, 32, 16


class StepMarks:
    """A post-step hook recording when each step ended (after the GPU's work, on CUDA), and a
    callback recording when training started."""

    def __init__(self) -> None:
        self.marks: list[float] = []
        self.started = 0.0

    @hookimpl
    def ddp_fit_start(self) -> None:
        self.started = time.perf_counter()

    def __call__(self, optimizer: Any, *_: Any) -> None:
        if optimizer.param_groups[0]["params"][0].device.type == "cuda":
            torch.cuda.synchronize()
        self.marks.append(time.perf_counter())

    def median_step(self) -> float:
        gaps = [b - a for a, b in itertools.pairwise(self.marks)]
        return statistics.median(gaps[WARMUP_STEPS:])


def marked_adamw(params: Iterable[torch.nn.Parameter], *, marks: StepMarks) -> Any:
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    optimizer.register_step_post_hook(marks)
    return optimizer


def train(device: str, steps: int, callbacks: tuple[Any, ...] = (), **options: Any) -> Trainer:
    """One run; its trainer (with ``marks``) is returned."""
    marks = StepMarks()
    trainer = Trainer(
        functools.partial(TransformerLM, VOCAB, DIM, LAYERS, HEADS, SEQ),
        markov_tokens(BATCH * steps, seq_len=SEQ, vocab_size=VOCAB),
        functools.partial(marked_adamw, marks=marks),
        strategy=SingleDevice(device=device),
        loss_fn=lm_loss,
        batch_size=BATCH,
        max_steps=steps,
        callbacks=(marks, *callbacks),
        **options,
    )
    trainer.fit()
    trainer.marks = marks  # type: ignore[attr-defined]
    return trainer


class TimedThroughput(Throughput):
    """``ddp/throughput`` that also counts the seconds spent in its step hook."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self.calls = 0

    @hookimpl(tryfirst=True)
    def ddp_step_end(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        started = time.perf_counter()
        super().ddp_step_end(trainer, step, metrics)
        self.seconds += time.perf_counter() - started
        self.calls += 1


def alternate(pairs: int, first: Callable[[], float], second: Callable[[], float]) -> list[float]:
    """``second() / first()`` for each pair, in ABBA order."""
    ratios = []
    for index in range(pairs):
        if index % 2 == 0:
            a = first()
            b = second()
        else:
            b = second()
            a = first()
        ratios.append(b / a)
    return ratios


def overhead_run(device: str, steps: int, pairs: int) -> dict[str, float]:
    """One run of the overhead part: median ratios over ``pairs``."""
    folder = Path(tempfile.mkdtemp(prefix="bench-throughput-"))

    def step_time(*callbacks: Any) -> float:
        return train(device, steps, callbacks).marks.median_step()  # type: ignore[attr-defined]

    def logger() -> MetricsLogger:
        return MetricsLogger(folder, tensorboard=False)

    logged = alternate(
        pairs, lambda: step_time(logger()), lambda: step_time(logger(), Throughput())
    )
    bare = alternate(pairs, lambda: step_time(), lambda: step_time(Throughput()))
    timed = TimedThroughput()
    step = train(device, steps, (logger(), timed)).marks.median_step()  # type: ignore[attr-defined]
    return {
        "with_logger": statistics.median(logged),
        "bare": statistics.median(bare),
        "hook_share": timed.seconds / timed.calls / step,
    }


def compile_run(device: str, steps: int, pairs: int) -> dict[str, float]:
    """One run of the compile part: speed-up and warm-up, medians over ``pairs``."""
    from torch._inductor import config as inductor_config

    inductor_config.fx_graph_cache = False
    inductor_config.autotune_local_cache = False
    speedups, warmups, plain_firsts = [], [], []
    for index in range(pairs):
        order = [False, True] if index % 2 == 0 else [True, False]
        times = {}
        for compiled in order:
            torch._dynamo.reset()
            trainer = train(device, steps, compile=compiled)
            marks = trainer.marks  # type: ignore[attr-defined]
            times[compiled] = marks.median_step()
            if compiled:
                warmups.append(trainer.compile_warmup_s)
            else:
                plain_firsts.append(marks.marks[0] - marks.started)
        speedups.append(times[False] / times[True])
    return {
        "speedup": statistics.median(speedups),
        "warmup_s": statistics.median(warmups),
        "plain_first_step_s": statistics.median(plain_firsts),
    }


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.4g} (min {min(values):.4g}, max {max(values):.4g})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--compile-pairs", type=int, default=1)
    parser.add_argument("--compile-steps", type=int, default=30)
    parser.add_argument("--parts", default="overhead,compile")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}")
    results: dict[str, Any] = {}
    if "overhead" in parts:
        runs = [overhead_run(args.device, args.steps, args.pairs) for _ in range(args.runs)]
        for key in ("with_logger", "bare"):
            values = [run[key] for run in runs]
            print(f"throughput callback, step time with / without ({key}): {spread(values)}")
            results[f"overhead_{key}"] = values
        shares = [run["hook_share"] for run in runs]
        print(f"throughput callback, its step hook's time / step time: {spread(shares)}")
        results["overhead_hook_share"] = shares
        share = max(shares)
        print(f"  target: hook time <= 1% of a step: {'PASS' if share <= 0.01 else 'FAIL'}")
    if "compile" in parts:
        runs = [
            compile_run(args.device, args.compile_steps, args.compile_pairs)
            for _ in range(args.runs)
        ]
        for key, label in [
            ("speedup", "compile speed-up per step (plain / compiled)"),
            ("warmup_s", "compile warm-up, seconds (first compiled step)"),
            ("plain_first_step_s", "plain first step, seconds (for comparison)"),
        ]:
            values = [run[key] for run in runs]
            print(f"{label}: {spread(values)}")
            results[f"compile_{key}"] = values
    print(json.dumps({"device": args.device, "torch": torch.__version__, **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
