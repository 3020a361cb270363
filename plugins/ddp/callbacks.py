"""Callbacks: objects implementing the trainer's hookspecs (:mod:`plugins.ddp.hookspecs`).

List them in the trainer's ``callbacks``; they are registered on corelib's plugin manager for
the duration of ``fit()``. Any plugin can add its own the same way.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any, Literal

from corelib import hookimpl

__all__ = ["Checkpointer", "MetricsLogger", "ProgressBar"]


class ProgressBar:
    """A tqdm bar on rank 0: steps done of the total, steps/s, ETA, and the latest losses."""

    def __init__(self, *, leave: bool = True) -> None:
        self.leave = leave
        self._bar: Any = None

    @hookimpl
    def ddp_fit_start(self, trainer: Any) -> None:
        if not trainer.strategy.is_main:
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
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            self._bar.set_postfix(loss=f"{metrics['train/loss']:.4g}", refresh=False)

    @hookimpl
    def ddp_validation_end(self, metrics: dict[str, float]) -> None:
        if self._bar is not None:
            self._bar.write(f"step {int(metrics['step'])}: val/loss {metrics['val/loss']:.4g}")

    @hookimpl
    def ddp_fit_end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class MetricsLogger:
    """Rank 0 appends every step's and validation's metrics to ``<directory>/metrics.<format>``.

    ``jsonl``: one JSON object per line (``step``, ``time``, the metrics). ``csv``: long format,
    columns ``step,time,name,value``. Each record is flushed as written, so a crash loses nothing.
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

    def _append(self, write: Any) -> None:
        with self.path.open("a", newline="") as file:
            write(file)


class Checkpointer:
    """Save a checkpoint every ``every`` steps (if set), at the end of training and on SIGTERM;
    keep the newest ``keep_last`` (all when None). The trainer resumes from ``directory`` when
    it has no ``checkpoint_dir`` of its own."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        every: int | None = None,
        keep_last: int | None = 3,
    ) -> None:
        if every is not None and every < 1:
            raise ValueError(f"ddp/checkpointer: every must be >= 1 or None, not {every}")
        if keep_last is not None and keep_last < 1:
            raise ValueError(f"ddp/checkpointer: keep_last must be >= 1 or None, not {keep_last}")
        self.directory = Path(directory)
        self.every = every
        self.keep_last = keep_last

    @hookimpl
    def ddp_step_end(self, trainer: Any, step: int) -> None:
        if self.every is not None and step % self.every == 0:
            trainer.save_checkpoint(self.directory, keep_last=self.keep_last)

    @hookimpl
    def ddp_fit_interrupted(self, trainer: Any) -> None:
        trainer.save_checkpoint(self.directory, keep_last=self.keep_last)

    @hookimpl
    def ddp_fit_end(self, trainer: Any) -> None:
        trainer.save_checkpoint(self.directory, keep_last=self.keep_last)


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
