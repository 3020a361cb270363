"""The trainer's checkpoints: which folder, resuming a run, saving it, the save in flight.

Besides the model and optimizer (saved through the strategy), each rank saves its trainer state:
step, data position, scheduler, RNG states, latest metrics, callback states and fp16's gradient
scaler (:mod:`plugins.ddp.checkpoint` checks it when read back).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from plugins.ddp._events import callback_states, load_callback_states
from plugins.ddp._rng import rng_state, set_rng_state
from plugins.ddp._saving import PendingCheckpoint, start_checkpoint
from plugins.ddp.checkpoint import (
    CheckpointError,
    checkpoint_path,
    latest_checkpoint,
    resume_latest,
)
from plugins.ddp.checkpointer import Checkpointer
from plugins.ddp.data import BatchStream
from plugins.ddp.precision import Precision
from plugins.ddp.strategies import Strategy

if TYPE_CHECKING:
    from plugins.ddp.trainer import Trainer

__all__ = ["RunCheckpoints", "checkpoint_folder", "with_checkpointer"]


def checkpoint_folder(checkpoint_dir: Path | None, callbacks: Sequence[Any]) -> Path | None:
    """Where the trainer resumes from and saves by default: ``checkpoint_dir``, else the folder
    of the first ``Checkpointer`` callback (None: neither)."""
    if checkpoint_dir is not None:
        return checkpoint_dir
    return next((c.directory for c in callbacks if isinstance(c, Checkpointer)), None)


def with_checkpointer(
    callbacks: Sequence[Any], checkpoint_dir: Path | None, every: int | None
) -> list[Any]:
    """``callbacks`` plus a ``Checkpointer`` of ``checkpoint_dir`` saving ``every`` N steps,
    unless there is no ``checkpoint_dir`` or a callback already checkpoints there."""
    callbacks = list(callbacks)
    has_own = any(isinstance(c, Checkpointer) and c.directory == checkpoint_dir for c in callbacks)
    if checkpoint_dir is not None and not has_own:
        callbacks.append(Checkpointer(checkpoint_dir, every=every))
    return callbacks


class RunCheckpoints:
    """The checkpoints of one ``fit()`` of ``trainer``, made once its model, optimizer,
    scheduler, ``stream`` and ``precision`` are built; ``hook`` fires ``ddp_checkpoint_saved``."""

    def __init__(
        self, trainer: Trainer, stream: BatchStream, precision: Precision, hook: Any
    ) -> None:
        self._trainer, self._stream, self._precision, self._hook = trainer, stream, precision, hook
        self._last_saved: tuple[Path, int] | None = None  # or the checkpoint resumed from
        self._pending: PendingCheckpoint | None = None

    def resume(self) -> tuple[int, dict[str, float]] | None:
        """Restore the run from the newest readable checkpoint in :func:`checkpoint_folder`
        (collective); return its step and metrics (None: nothing to resume). With
        ``resume=False``, a folder that already holds checkpoints is refused."""
        trainer = self._trainer
        directory = checkpoint_folder(trainer.checkpoint_dir, trainer.callbacks)
        if directory is None:
            return None
        if not trainer.resume:
            if (found := latest_checkpoint(directory)) is not None:
                raise CheckpointError(
                    f"ddp/trainer: resume=False, but {directory} already holds checkpoints (the "
                    f"newest is {found.name}); a new run there would be resumed in their place "
                    "later: pick another checkpoint folder, delete this one, or set resume: true"
                )
            return None
        strategy, model, optimizer = self._live()
        resumed = resume_latest(strategy, directory, model, optimizer)
        if resumed is None:
            return None
        path, state = resumed
        step = int(state["step"])
        self._stream.load_state_dict(state["data"])
        if trainer.scheduler is not None and state["scheduler"] is not None:
            trainer.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        load_callback_states(trainer.callbacks, state.get("callbacks", {}))
        self._precision.load_state_dict(state.get("grad_scaler"))
        self._last_saved = (directory, step)
        if strategy.is_main:
            total = trainer.total_steps
            left = "" if total is None else f" of {total}"
            done = total is not None and step >= total
            print(
                f"ddp/trainer: resumed from {path} (step {step}{left}"
                f"{': nothing left to train' if done else ''})",
                file=sys.stderr,
                flush=True,
            )
        return step, dict(state["metrics"])

    def save(
        self,
        directory: Path,
        latest: Mapping[str, float],
        metrics: Mapping[str, float] | None,
        *,
        background: bool,
    ) -> Path:
        """Save the trainer's step under ``directory`` (collective; a second save of the same
        step there is skipped), recording ``metrics`` over the ``latest`` metrics; see
        :meth:`Trainer.save_checkpoint`."""
        step = self._trainer.step
        if self._last_saved == (directory, step):
            return checkpoint_path(directory, step)
        self.wait()
        strategy, model, optimizer = self._live()
        self._pending = start_checkpoint(
            strategy,
            directory,
            step,
            strategy.state_dict(model, optimizer),
            self._rank_state(latest),
            metrics={**latest, **(metrics or {})},
            background=background,
        )
        self._last_saved = (directory, step)
        if not background:
            self.wait()
        return checkpoint_path(directory, step)

    def wait(self) -> Path | None:
        """Finish the checkpoint being written in the background, if any (collective), and fire
        ``ddp_checkpoint_saved``; return its path (None when none was pending)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        path = pending.wait()
        self._hook.ddp_checkpoint_saved(trainer=self._trainer, step=pending.step, path=path)
        return path

    def where_saved(self, step: int) -> str:
        """Where the checkpoint of ``step`` was saved, for a message after a stop on a signal."""
        last = self._last_saved
        if last is not None and last[1] == step:
            return f"checkpoint {checkpoint_path(*last)}"
        return "no checkpoint saved (no checkpointer saves on signals)"

    def _rank_state(self, latest: Mapping[str, float]) -> dict[str, Any]:
        trainer = self._trainer
        scheduler = trainer.scheduler
        return {
            "step": trainer.step,
            "data": self._stream.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "rng": rng_state(),
            "metrics": dict(latest),
            "callbacks": callback_states(trainer.callbacks),
            "grad_scaler": self._precision.state_dict(),
        }

    def _live(self) -> tuple[Strategy, nn.Module, torch.optim.Optimizer]:
        trainer = self._trainer
        strategy, model, optimizer = trainer.strategy, trainer.model, trainer.optimizer
        assert strategy is not None and model is not None and optimizer is not None
        return strategy, model, optimizer
