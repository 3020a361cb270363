"""Callbacks: objects implementing the trainer's hookspecs (:mod:`plugins.ddp.hookspecs`).

List them in the trainer's ``callbacks``; they are registered on corelib's plugin manager for
the duration of ``fit()``. Any plugin can add its own the same way.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Literal

from corelib import hookimpl
from plugins.ddp.checkpointer import Checkpointer  # its home since it grew; importable here too

__all__ = ["Checkpointer", "MetricsLogger", "ProgressBar"]


class ProgressBar:
    """Progress on rank 0: steps done of the total, steps/s, ETA, and the latest loss.

    On a terminal, a tqdm bar. When stderr is not a terminal (a log file, a pipe, a batch
    job), plain lines instead of the bar's carriage-return frames: one every ``every`` steps
    (``None``: every 5% of the run, or every 100 steps when the total is unknown) and one at
    the end, e.g. ``step 150/300 (50%) loss=0.312 41.2 step/s eta 4s``.
    """

    def __init__(self, *, leave: bool = True, every: int | None = None) -> None:
        if every is not None and (not isinstance(every, int) or every < 1):
            raise ValueError(f"ddp/progress: every must be a positive integer, not {every!r}")
        self.leave = leave
        self.every = every
        self._bar: Any = None
        self._lines: _ProgressLines | None = None

    @hookimpl
    def ddp_fit_start(self, trainer: Any) -> None:
        if not trainer.strategy.is_main:
            return
        if not sys.stderr.isatty():
            self._lines = _ProgressLines(trainer.step, trainer.total_steps, self.every)
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=trainer.total_steps,
            initial=trainer.step,
            unit="step",
            dynamic_ncols=True,
            leave=self.leave,
        )

    @hookimpl
    def ddp_step_end(self, step: int, metrics: dict[str, float]) -> None:
        if self._lines is not None:
            self._lines.step(step, metrics["train/loss"])
        elif self._bar is not None:
            self._bar.update(step - self._bar.n)
            self._bar.set_postfix(loss=f"{metrics['train/loss']:.4g}", refresh=False)

    @hookimpl
    def ddp_validation_end(self, metrics: dict[str, float]) -> None:
        line = f"step {int(metrics['step'])}: val/loss {metrics['val/loss']:.4g}"
        if self._lines is not None:
            _print(line)
        elif self._bar is not None:
            self._bar.write(line)

    @hookimpl
    def ddp_fit_end(self) -> None:
        if self._lines is not None:
            self._lines.finish()
            self._lines = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class _ProgressLines:
    """The plain-line form of :class:`ProgressBar`, for logs."""

    def __init__(self, start: int, total: int | None, every: int | None) -> None:
        self.start, self.total = start, total
        self.every = every or (max(1, total // 20) if total else 100)
        self.started = time.monotonic()
        self.last: tuple[int, float] | None = None
        self.printed: int | None = None

    def step(self, step: int, loss: float) -> None:
        self.last = (step, loss)
        if step % self.every == 0:
            self._print()

    def finish(self) -> None:
        if self.last is not None and self.printed != self.last[0]:
            self._print()

    def _print(self) -> None:
        assert self.last is not None
        step, loss = self.last
        rate = (step - self.start) / max(time.monotonic() - self.started, 1e-9)
        parts = [f"step {step}"]
        if self.total:
            parts[0] += f"/{self.total} ({100 * step // self.total}%)"
        parts += [f"loss={loss:.4g}", f"{rate:.3g} step/s"]
        if self.total and rate > 0:
            parts.append(f"eta {max(self.total - step, 0) / rate:.0f}s")
        _print(" ".join(parts))
        self.printed = step


def _print(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class MetricsLogger:
    """Rank 0 appends every step's and validation's metrics to ``<directory>/metrics.<format>``.

    ``jsonl``: one JSON object per line (``step``, ``time``, the metrics). ``csv``: long format,
    columns ``step,time,name,value``. Each record is flushed as written, so a crash loses nothing.
    When training starts at step N (N > 0 after a resume), records of later steps, which the
    resumed run is about to redo, are dropped first (the file is rewritten to a temporary file
    and renamed over the old one, so a crash meanwhile keeps every earlier line); so the file
    never repeats a step, and a run that starts over (N = 0) starts a new log.
    ``tensorboard``: also write TensorBoard scalars under ``<directory>/tensorboard`` (``None``:
    when the ``tensorboard`` package is installed).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        format: Literal["jsonl", "csv"] = "jsonl",
        tensorboard: bool | None = None,
    ) -> None:
        if format not in ("jsonl", "csv"):
            raise ValueError(f"ddp/metrics_logger: format must be 'jsonl' or 'csv', not {format!r}")
        self.directory = Path(directory)
        self.format = format
        self.tensorboard = tensorboard
        self._writer: Any = None
        self._active = False

    @property
    def path(self) -> Path:
        """The metrics file."""
        return self.directory / f"metrics.{self.format}"

    @hookimpl
    def ddp_fit_start(self, trainer: Any) -> None:
        self._active = trainer.strategy.is_main
        if not self._active:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._drop_after(trainer.step)
        if self.format == "csv" and not self.path.exists():
            self._append(lambda f: csv.writer(f).writerow(["step", "time", "name", "value"]))
        if self.tensorboard is not False:
            self._writer = _summary_writer(self.directory / "tensorboard", self.tensorboard)

    @hookimpl
    def ddp_step_end(self, step: int, metrics: dict[str, float]) -> None:
        self._record(step, metrics)

    @hookimpl
    def ddp_validation_end(self, step: int, metrics: dict[str, float]) -> None:
        self._record(step, metrics)

    @hookimpl
    def ddp_fit_end(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _record(self, step: int, metrics: dict[str, float]) -> None:
        if not self._active:
            return
        now = time.time()
        values = {name: value for name, value in metrics.items() if name != "step"}
        if self.format == "jsonl":
            line = json.dumps({"step": step, "time": now, **values})
            self._append(lambda f: f.write(line + "\n"))
        else:
            rows = [[step, now, name, value] for name, value in values.items()]
            self._append(lambda f: csv.writer(f).writerows(rows))
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(name, value, step)

    def _drop_after(self, step: int) -> None:
        """Rewrite the file without the records of steps after ``step`` (atomically)."""
        if not self.path.exists():
            return
        lines = self.path.read_text().splitlines(keepends=True)
        kept = [line for index, line in enumerate(lines) if self._keeps(line, index, step)]
        if kept == lines:
            return
        temp = self.path.with_name(f".{self.path.name}.tmp")
        with temp.open("w", newline="") as file:
            file.writelines(kept)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, self.path)

    def _keeps(self, line: str, index: int, step: int) -> bool:
        """Whether ``line`` records a step up to ``step`` (a torn last line does not)."""
        if not line.endswith("\n"):
            return False
        try:
            if self.format == "jsonl":
                return int(json.loads(line)["step"]) <= step
            if index == 0:
                return True  # the CSV header
            return int(next(csv.reader([line]))[0]) <= step
        except (ValueError, KeyError, TypeError, IndexError):
            return False

    def _append(self, write: Any) -> None:
        with self.path.open("a", newline="") as file:
            write(file)


def _summary_writer(log_dir: Path, required: bool | None) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        if required:
            raise ImportError(
                "ddp/metrics_logger: tensorboard=True needs the tensorboard package"
            ) from None
        return None
    return SummaryWriter(log_dir=os.fspath(log_dir))
