"""``ddp/throughput``: samples (and tokens) per second, step-time percentiles, peak memory per
rank and MFU, into the metrics log and the run's record.

Step times are taken between consecutive step ends (validation and synchronous checkpoint saves
are left out). On CUDA each step end only records an event: the device is synchronised once per
``log_every`` steps, when the figures are computed, so measuring costs no per-step sync.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from corelib import ConfigError, hookimpl

__all__ = ["PEAK_FLOPS", "Throughput", "percentile"]

PEAK_FLOPS = {"H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12}
"""Dense bf16 peak FLOP/s per GPU, by a part of ``torch.cuda.get_device_name()`` (first match)."""


class Throughput:
    """Record how fast training runs and how much memory it holds.

    Every ``log_every`` steps it adds to that step's metrics, so that
    ``ddp/metrics_logger`` and every other step callback see them:
    ``throughput/samples_per_s`` (all data-parallel ranks together), ``throughput/tokens_per_s``
    (with ``tokens_per_sample``), ``throughput/step_s_p50``, ``_p90``, ``_p99`` (over the last
    ``window`` steps, rank 0's clock), ``throughput/mfu`` (with ``flops_per_sample``) and
    ``memory/peak_bytes`` (the largest over ranks: CUDA's max allocated, or the process's peak
    RSS on the CPU). The figures at the end of ``fit()`` are kept in :attr:`summary` on every
    rank; with ``run_dir``, rank 0 also writes them to ``<run_dir>/throughput.json``
    (atomically), with the peak memory of every rank and the warm-up seconds.

    Args:
        log_every: steps between reports (each costs one all-reduce and, on CUDA, one sync).
        window: how many of the latest step times the percentiles and rates cover.
        warmup_steps: steps at the start of each ``fit()`` left out of the figures (their
            seconds are reported as ``warmup_s`` in the record).
        tokens_per_sample: tokens in one sample (sequence length) for tokens/s.
        flops_per_sample: training FLOPs per sample (forward and backward: about
            ``6 * parameters * tokens_per_sample`` for a transformer) for MFU.
        peak_flops: one device's peak FLOP/s for MFU; ``None``: :data:`PEAK_FLOPS` by the GPU's
            name (refused at fit start when unknown and ``flops_per_sample`` is set).
        run_dir: the run's record folder (e.g. ``${run:dir}``) for ``throughput.json``.
    """

    def __init__(
        self,
        *,
        log_every: int = 50,
        window: int = 200,
        warmup_steps: int = 3,
        tokens_per_sample: int | None = None,
        flops_per_sample: float | None = None,
        peak_flops: float | None = None,
        run_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        for name, count in {"log_every": log_every, "window": window}.items():
            if not isinstance(count, int) or count < 1:
                raise ConfigError(
                    f"ddp/throughput: {name} must be a positive integer, not {count!r}"
                )
        if not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ConfigError(f"ddp/throughput: warmup_steps must be >= 0, not {warmup_steps!r}")
        positive: dict[str, float | None] = {
            "tokens_per_sample": tokens_per_sample,
            "flops_per_sample": flops_per_sample,
            "peak_flops": peak_flops,
        }
        for name, value in positive.items():
            if value is not None and not value > 0:
                raise ConfigError(f"ddp/throughput: {name} must be positive, not {value!r}")
        self.log_every = log_every
        self.window = window
        self.warmup_steps = warmup_steps
        self.tokens_per_sample = tokens_per_sample
        self.flops_per_sample = flops_per_sample
        self.peak_flops = peak_flops
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.summary: dict[str, Any] = {}
        """The latest figures (what ``throughput.json`` holds), on every rank."""
        self._clock: _Clock | None = None
        self._times: deque[float] = deque(maxlen=window)
        self._pending: list[tuple[Any, Any]] = []
        self._start: Any = None
        self._last: Any = None
        self._steps_seen = 0
        self._warmup: tuple[Any, Any] | None = None
        self._samples_per_step = 0
        self._device_peak: float | None = None

    @hookimpl
    def ddp_fit_start(self, trainer: Any) -> None:
        strategy = trainer.strategy
        self._device_peak = self.peak_flops or _known_peak_flops(strategy.device)
        if self.flops_per_sample is not None and self._device_peak is None:
            raise ConfigError(
                f"ddp/throughput: flops_per_sample is set but the peak FLOP/s of {strategy.device} "
                f"under {type(strategy).__name__} is unknown; set peak_flops (one device's "
                f"FLOP/s; known GPUs: {sorted(PEAK_FLOPS)})"
            )
        self._samples_per_step = (
            trainer.batch_size * trainer.grad_accum_steps * strategy.data_parallel_size
        )
        self._clock = _Clock(strategy.device)
        self._times.clear()
        self._pending, self._steps_seen, self._warmup, self.summary = [], 0, None, {}
        self._last = self._start = self._clock.mark()

    @hookimpl(tryfirst=True)  # before the logger and trackers, which record what it adds
    def ddp_step_end(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        assert self._clock is not None, "ddp_fit_start comes first"
        now = self._clock.mark()
        self._steps_seen += 1
        if self._steps_seen <= self.warmup_steps:
            self._warmup = (self._start, now)
        else:
            self._pending.append((self._last, now))
        self._last = now
        if step % self.log_every == 0:
            metrics.update(self._report(trainer))

    @hookimpl
    def ddp_validation_end(self) -> None:
        self._restart()

    @hookimpl
    def ddp_checkpoint_saved(self) -> None:
        self._restart()

    @hookimpl
    def ddp_fit_end(self, trainer: Any) -> None:
        self._report(trainer, per_rank=True)
        if self.run_dir is not None and trainer.strategy.is_main:
            _write_json_atomically(self.run_dir / "throughput.json", self.summary)

    def _restart(self) -> None:
        """Leave what ran since the last step end (validation, a save) out of the next step."""
        if self._clock is not None:
            self._last = self._clock.mark()

    def _report(self, trainer: Any, *, per_rank: bool = False) -> dict[str, float]:
        """The figures so far (one collective on every rank; syncs the device on CUDA)."""
        assert self._clock is not None
        strategy = trainer.strategy
        self._times.extend(self._clock.seconds(self._pending))
        self._pending = []
        peak = _peak_memory_bytes(strategy.device)
        metrics: dict[str, float] = {}
        if self._times:
            times = sorted(self._times)
            samples_per_s = self._samples_per_step * len(times) / sum(times)
            metrics["throughput/samples_per_s"] = samples_per_s
            if self.tokens_per_sample is not None:
                metrics["throughput/tokens_per_s"] = samples_per_s * self.tokens_per_sample
            for q in (50, 90, 99):
                metrics[f"throughput/step_s_p{q}"] = percentile(times, q)
            if self.flops_per_sample is not None and self._device_peak is not None:
                device_flops = self._device_peak * strategy.world_size
                metrics["throughput/mfu"] = samples_per_s * self.flops_per_sample / device_flops
        if per_rank:  # every rank's peak in its own slot: one sum gathers them
            slots = torch.zeros(strategy.world_size, dtype=torch.float64, device=strategy.device)
            slots[strategy.rank] = peak
            peaks = strategy.all_reduce(slots, "sum").tolist()
        else:
            peaks = [strategy.all_reduce(torch.tensor(peak, device=strategy.device), "max").item()]
        metrics["memory/peak_bytes"] = max(peaks)
        self.summary = {
            "step": trainer.step,
            "world_size": strategy.world_size,
            "device": str(strategy.device),
            "samples_per_step": self._samples_per_step,
            "steps_timed": len(self._times),
            "warmup_steps": self.warmup_steps,
            "warmup_s": None if self._warmup is None else self._clock.seconds([self._warmup])[0],
            "compile_warmup_s": getattr(trainer, "compile_warmup_s", None),
            "memory_kind": "cuda_max_allocated" if strategy.device.type == "cuda" else "max_rss",
            **({"peak_memory_bytes_per_rank": peaks} if per_rank else {}),
            **{name.split("/", 1)[1]: value for name, value in metrics.items()},
        }
        return metrics


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of ``sorted_values`` (linear between ranks, as numpy's default)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    position = (len(sorted_values) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


class _Clock:
    """Time marks: ``perf_counter`` on the CPU, CUDA events (read only when asked) on a GPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.device = device
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)

    def mark(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def seconds(self, spans: Sequence[tuple[Any, Any]]) -> list[float]:
        """The seconds of each ``(start, end)`` span of marks."""
        if not self.cuda:
            return [end - start for start, end in spans]
        if spans:
            spans[-1][1].synchronize()
        return [start.elapsed_time(end) / 1000 for start, end in spans]


def _peak_memory_bytes(device: torch.device) -> float:
    if device.type == "cuda":
        return float(torch.cuda.max_memory_allocated(device))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(peak if sys.platform == "darwin" else peak * 1024)  # Linux counts KiB


def _known_peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for part, flops in PEAK_FLOPS.items() if part in name), None)


def _write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write to a new temporary file (never one that is already there: a planted link is not
    followed) in the same folder, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(data, file, indent=2)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
