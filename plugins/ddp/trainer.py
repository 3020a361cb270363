"""``ddp/trainer``: the fit loop over any :class:`~plugins.ddp.strategies.Strategy`."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from plugins.ddp._events import trainer_events
from plugins.ddp._rng import seed_everything
from plugins.ddp._signals import StopRequest, stop_on_signals
from plugins.ddp._steps import train_step, validation_loss
from plugins.ddp._trainer_state import RunCheckpoints, checkpoint_folder, with_checkpointer
from plugins.ddp.activation_checkpointing import remove_activation_checkpointing
from plugins.ddp.compile import WarmupClock, compile_model, compile_options
from plugins.ddp.data import BatchStream, DataSource
from plugins.ddp.precision import Precision, check_precision
from plugins.ddp.strategies import LossFn, OptimizerFactory, Strategy

__all__ = ["Trainer"]

_METRICS_EVERY = 16
"""Steps between reductions of the loss (and of a stop signal) when no callback needs each step."""


class Trainer:
    """Train ``model`` on ``train_data`` with ``optimizer`` under a strategy.

    Args:
        model: an ``nn.Module`` (trained in place, keeping its weights; after ``fit()`` it
            holds the full trained tensors on every rank, unsharded) or a zero-argument
            factory, called after every RNG was seeded with ``seed``.
        train_data: a dataset (sharded per rank by the strategy) or a dataloader factory
            ``f(*, rank, world_size, epoch, seed)`` (see :mod:`plugins.ddp.data`).
        optimizer: a factory taking the parameters (``_partial_: true``), built after wrapping.
        strategy: ``None`` picks ``ddp/ddp`` when launched with ``WORLD_SIZE>1``, else
            ``ddp/single``; on the best device either way.
        loss_fn: ``loss_fn(model(x), y)`` for batches ``(x, y)``; ``None``: ``model(*batch)``
            returns the loss.
        batch_size: samples per rank per micro-batch.
        max_steps: optimizer steps in total (counted across resumes); overrides ``max_epochs``,
            the data cycling as needed.
        max_epochs: epochs over ``train_data`` when ``max_steps`` is None.
        val_data: a dataset or factory for validation (``"val/loss"``), every ``val_every``
            steps and at the end.
        grad_accum_steps: micro-batches per optimizer step (gradients synced on the last).
        grad_clip_norm: clip the global gradient norm to this value.
        precision: ``"32"`` (or ``32``), ``"bf16"`` (autocast), ``"bf16-true"`` (parameters
            in bf16) or ``"fp16"`` (autocast and a gradient scaler); see
            :mod:`plugins.ddp.precision`. ``corelib check`` refuses anything else.
        scheduler: a factory taking the optimizer; stepped after each optimizer step.
        compile: ``torch.compile`` the model (per block under FSDP2), ``true`` or a mapping of
            ``torch.compile``'s arguments (``backend``, ``mode``, ...); the first step's time,
            which compiles, is reported apart as ``compile/warmup_s`` (see :mod:`.compile`).
        callbacks: objects implementing :mod:`plugins.ddp.hookspecs`.
        checkpoint_dir: where to save (adds a ``Checkpointer``) and resume from.
        checkpoint_every: save every N steps (plus at the end and on SIGTERM or SIGINT).
        resume: continue from the newest readable checkpoint in ``checkpoint_dir`` (or in the
            directory of a ``Checkpointer`` callback) if there is one; ``False`` refuses a
            directory that already holds checkpoints.
        seed: seeds model creation (same on all ranks) and each rank's RNG (``seed + rank``).
    """

    def __init__(
        self,
        model: nn.Module | Callable[[], nn.Module],
        train_data: DataSource,
        optimizer: OptimizerFactory,
        *,
        strategy: Strategy | None = None,
        loss_fn: LossFn | None = None,
        batch_size: int = 32,
        max_steps: int | None = None,
        max_epochs: int = 1,
        val_data: DataSource | None = None,
        val_every: int | None = None,
        grad_accum_steps: int = 1,
        grad_clip_norm: float | None = None,
        precision: Literal["32", "bf16", "bf16-true", "fp16", 32] = "32",
        scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
        compile: bool | dict[str, Any] = False,
        callbacks: Sequence[Any] = (),
        checkpoint_dir: str | os.PathLike[str] | None = None,
        checkpoint_every: int | None = None,
        resume: bool = True,
        seed: int = 0,
    ) -> None:
        required = {"batch_size": batch_size, "grad_accum_steps": grad_accum_steps}
        optional = {"max_steps": max_steps, "val_every": val_every}
        for name, value in [*required.items(), *optional.items()]:
            if value is not None:
                _require_positive(name, value)
        if max_steps is None:
            _require_positive("max_epochs", max_epochs)
        check_precision(precision)
        if checkpoint_every is not None and checkpoint_dir is None:
            raise ValueError("ddp/trainer: checkpoint_every needs a checkpoint_dir")
        self._model_source = model
        self._train_data = train_data
        self._optimizer_factory = optimizer
        self._scheduler_factory = scheduler
        self._strategy_choice = strategy
        self.loss_fn = loss_fn
        self.batch_size = batch_size
        self.max_steps = max_steps
        self.max_epochs = max_epochs
        self.val_data = val_data
        self.val_every = val_every
        self.grad_accum_steps = grad_accum_steps
        self.grad_clip_norm = grad_clip_norm
        self.precision = str(precision)
        self.compile = compile_options(compile)
        self.compile_warmup_s: float | None = None
        self.callbacks = list(callbacks)
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.seed = seed
        # The live run (set during fit(); references are dropped when it ends).
        self.strategy: Strategy | None = strategy
        self.model: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.step = 0
        self.total_steps: int | None = None
        self._stream: BatchStream | None = None
        self._hook: Any = None
        self._precision: Precision | None = None
        self._metrics: dict[str, float] = {}
        self._checkpoints: RunCheckpoints | None = None
        self._stop_requested = False

    def run(self) -> dict[str, float]:
        """Same as :meth:`fit` (what ``corelib run`` calls)."""
        return self.fit()

    def fit(self) -> dict[str, float]:
        """Train; return the final metrics (``step``, ``train/loss``, ``lr``, ``val/loss``).

        ``train/loss`` is the last optimizer step's loss averaged over ranks. On SIGTERM or
        SIGINT (Ctrl-C) every rank stops at the next step boundary, the checkpointer saves, and
        the process exits with code 143 or 130 (``SystemExit``).
        """
        strategy = self.strategy = self._strategy_choice or _default_strategy()
        try:
            strategy.setup()
            callbacks = with_checkpointer(
                self.callbacks, self.checkpoint_dir, self.checkpoint_every
            )
            with trainer_events(callbacks) as hook, stop_on_signals() as stop:
                self._hook = hook
                self._prepare()
                metrics = self._train(stop)
                if isinstance(self._model_source, nn.Module) and self.model is not None:
                    # the caller's module outlives the group
                    remove_activation_checkpointing(strategy.unwrap(self.model))
                return metrics
        except Exception as error:
            if strategy.world_size > 1:  # one process: the error itself says it all
                print(
                    f"ddp/trainer: rank {strategy.rank} of {strategy.world_size} failed: "
                    f"{type(error).__name__}: {error}",
                    file=sys.stderr,
                    flush=True,
                )
            # The traceback's frames hold the wrapped model and its state: alive at
            # destroy_process_group() (in teardown) they can deadlock it. Their lines stay.
            traceback.clear_frames(error.__traceback__)
            raise
        finally:
            self.model = self.optimizer = self.scheduler = self._stream = self._hook = None
            self._checkpoints = None  # a background save cut short by an error stays uncommitted
            self._precision = None
            strategy.teardown()

    def save_checkpoint(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        async_save: bool = False,
        metrics: Mapping[str, float] | None = None,
    ) -> Path:
        """Save the live run (collective: every rank calls it) under ``directory`` (default:
        ``checkpoint_dir``); a second save of the same step there is skipped. ``metrics``
        (over the trainer's latest) are recorded in the checkpoint's ``metrics.json``.

        With ``async_save`` the tensors are copied to CPU memory and written in the background;
        the next save, :meth:`wait_for_checkpoint`, the end of ``fit()`` and a stop on a signal
        wait for the write and commit it. ``ddp_checkpoint_saved`` fires once it is complete."""
        if self._checkpoints is None:
            raise RuntimeError("ddp/trainer: save_checkpoint() works only while fit() runs")
        if directory is None:
            directory = checkpoint_folder(self.checkpoint_dir, self.callbacks)
        if directory is None:
            raise ValueError("ddp/trainer: save_checkpoint() needs a directory")
        return self._checkpoints.save(
            Path(directory), self._metrics, metrics, background=async_save
        )

    def wait_for_checkpoint(self) -> Path | None:
        """Finish the checkpoint being written in the background, if any (collective); return
        its path (None when none was pending)."""
        return None if self._checkpoints is None else self._checkpoints.wait()

    def request_stop(self) -> None:
        """End training after the current step (a final validation and save follow as at any
        end). Every rank must ask at the same step: ``ddp/early_stopping`` agrees over ranks."""
        self._stop_requested = True

    # -- the loop ----------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Build the model, optimizer, scheduler and data; resume from a checkpoint if any."""
        strategy = self._live_strategy()
        precision = self._precision = Precision(self.precision, strategy)
        model = precision.convert_model(self._build_model(strategy))
        if self.compile is not None:
            compile_model(model, strategy, self.compile)
        self.model = strategy.wrap(model)
        self.optimizer = strategy.build_optimizer(self._optimizer_factory, self.model)
        self.scheduler = (
            self._scheduler_factory(self.optimizer) if self._scheduler_factory else None
        )
        self._stream = BatchStream(
            self._train_data,
            strategy,
            batch_size=self.batch_size,
            seed=self.seed,
            max_epochs=None if self.max_steps is not None else self.max_epochs,
        )
        self.total_steps = self._count_total_steps(self._stream)
        self.step, self._metrics, self._stop_requested = 0, {}, False
        self._checkpoints = RunCheckpoints(self, self._stream, precision, self._hook)
        if (resumed := self._checkpoints.resume()) is not None:
            self.step, self._metrics = resumed

    def _train(self, stop: StopRequest) -> dict[str, float]:
        self._hook.ddp_fit_start(trainer=self)
        every_step = bool(self._hook.ddp_step_end.get_hookimpls())
        assert self._stream is not None, "_prepare() builds the stream"
        batches = iter(self._stream)
        loss, validated_at = None, None
        warmup = WarmupClock(self._live_strategy().device) if self.compile is not None else None
        while not self._stop_requested and (
            self.total_steps is None or self.step < self.total_steps
        ):
            loss = self._train_step(batches)
            if loss is None:
                break
            self.step += 1
            if every_step or self.step % _METRICS_EVERY == 0 or warmup is not None:
                step_metrics, stopping = self._step_metrics(loss, stop)
                if warmup is not None:  # this first step compiled the model: reported apart
                    step_metrics["compile/warmup_s"] = self.compile_warmup_s = warmup.stop()
                    warmup = None
                self._hook.ddp_step_end(trainer=self, step=self.step, metrics=step_metrics)
                if stopping:
                    self._stop_after_signal(stop)
            if self.val_data is not None and self.val_every and self.step % self.val_every == 0:
                self._validate()
                validated_at = self.step
        if loss is not None and self._metrics.get("step") != self.step:
            self._step_metrics(loss, stop)
        if self.val_data is not None and validated_at != self.step:
            self._validate()
        metrics = {"step": float(self.step), "train/loss": float("nan"), **self._metrics}
        self._hook.ddp_fit_end(trainer=self, metrics=dict(metrics))
        self.wait_for_checkpoint()
        return metrics

    def _stop_after_signal(self, stop: StopRequest) -> None:
        self._hook.ddp_fit_interrupted(trainer=self, step=self.step)
        self.wait_for_checkpoint()
        assert self._checkpoints is not None, "_prepare() makes them"
        if self._live_strategy().is_main:
            where = self._checkpoints.where_saved(self.step)
            print(
                f"ddp/trainer: {stop.name}: stopped after step {self.step}; {where}",
                file=sys.stderr,
                flush=True,
            )
        raise SystemExit(stop.exit_code)

    def _train_step(self, batches: Iterator[Any]) -> torch.Tensor | None:
        model, optimizer = self.model, self.optimizer
        assert model is not None and optimizer is not None
        return train_step(
            self._live_strategy(),
            model,
            optimizer,
            self._live_precision(),
            batches,
            loss_fn=self.loss_fn,
            grad_accum_steps=self.grad_accum_steps,
            grad_clip_norm=self.grad_clip_norm,
            scheduler=self.scheduler,
        )

    def _step_metrics(self, loss: torch.Tensor, stop: StopRequest) -> tuple[dict[str, float], bool]:
        """This step's metrics (loss averaged over ranks; also kept as the latest), and whether
        any rank got a stop signal: one all-reduce."""
        strategy = self._live_strategy()
        packed = torch.stack([loss.float(), loss.new_tensor(float(stop.requested)).float()])
        loss_sum, stops = strategy.all_reduce(packed, "sum").tolist()
        assert self.optimizer is not None
        metrics = {
            "step": float(self.step),
            "train/loss": loss_sum / strategy.world_size,
            "lr": float(self.optimizer.param_groups[0]["lr"]),
        }
        self._metrics.update(metrics)
        return metrics, stops > 0

    def _validate(self) -> None:
        model, data = self.model, self.val_data
        assert model is not None and data is not None
        loss = validation_loss(
            self._live_strategy(),
            model,
            self._live_precision(),
            data,
            loss_fn=self.loss_fn,
            batch_size=self.batch_size,
            seed=self.seed,
        )
        self._metrics["val/loss"] = loss
        metrics = {"step": float(self.step), "val/loss": loss}
        self._hook.ddp_validation_end(trainer=self, step=self.step, metrics=metrics)

    # -- setup -------------------------------------------------------------------------------

    def _build_model(self, strategy: Strategy) -> nn.Module:
        seed_everything(self.seed)
        source = self._model_source
        if isinstance(source, nn.Module):
            model = source
        else:
            with strategy.model_init_context():
                model = source()
        if not isinstance(model, nn.Module):
            raise TypeError(
                "ddp/trainer: model must be an nn.Module or a zero-argument factory returning "
                f"one; {source!r} returned {type(model).__name__}"
            )
        seed_everything(self.seed + strategy.rank)
        return model

    def _count_total_steps(self, stream: BatchStream) -> int | None:
        if self.max_steps is not None:
            return self.max_steps
        per_epoch = stream.batches_per_epoch()
        if per_epoch is None:
            return None
        total = self.max_epochs * per_epoch // self.grad_accum_steps
        if total == 0:
            raise ValueError(
                f"ddp/trainer: {self.max_epochs} epoch(s) of {per_epoch} batches per rank make "
                f"no optimizer step with grad_accum_steps={self.grad_accum_steps}"
            )
        return total

    def _live_precision(self) -> Precision:
        assert self._precision is not None, "fit() sets the precision"
        return self._precision

    def _live_strategy(self) -> Strategy:
        assert self.strategy is not None, "fit() sets the strategy"
        return self.strategy


def _default_strategy() -> Strategy:
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        from plugins.ddp.strategies.ddp import DDP

        return DDP()
    from plugins.ddp.strategies.single import SingleDevice

    return SingleDevice()


def _require_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"ddp/trainer: {name} must be a positive integer, not {value!r}")
