"""Pipeline parallelism: each rank runs one stage of the model over a stream of microbatches."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe
from torch.distributed.pipelining.schedules import PipelineScheduleSingle

from corelib import ConfigError
from plugins.ddp.strategies._base import LossFn, Strategy
from plugins.ddp.strategies._broadcast import broadcast_from_rank0
from plugins.ddp.strategies._grad_norm import clip_grad_norm
from plugins.ddp.strategies._pipeline_split import PipelineSplitError, split_stage, stage_units

__all__ = ["Pipeline", "SplitFn"]

SplitFn = Callable[[nn.Module, int, int], nn.Module]
"""`(model, stage_index, num_stages) -> the module that stage runs`."""

_SCHEDULES = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}


class Pipeline(Strategy):
    """Split the model into one stage per rank and train it with a pipeline schedule.

    Args:
        cuts: module names where a new stage begins, one per stage boundary (so
            ``world_size - 1`` of them), in forward order, e.g. ``["blocks.2"]`` on 2 ranks.
            Every module up to the first cut is stage 0, and so on; the model's forward must
            skip removed modules (see ``docs/ddp-parallelism.md``).
        split_fn: instead of cuts, a callable ``(model, stage_index, num_stages)`` returning
            the module that stage runs.
        schedule: ``"gpipe"`` (all forwards, then all backwards) or ``"1f1b"`` (interleaved,
            less activation memory).
        n_microbatches: how many pieces each batch is cut into (at least the number of stages
            for 1F1B); a batch it does not divide, such as an epoch's last, is cut into the
            most equal pieces that divide it.
        device, backend, timeout_s, activation_checkpointing: as for
            :class:`~plugins.ddp.strategies.Strategy` (patterns name modules of the whole
            model; each stage recomputes its own).

    Every rank reads the same batches: the first stage consumes the inputs, the last stage the
    targets, and computes the loss, which is then sent to every rank.
    """

    component_name = "ddp/pipeline"

    def __init__(
        self,
        cuts: Sequence[str] | None = None,
        *,
        split_fn: SplitFn | None = None,
        schedule: Literal["gpipe", "1f1b"] = "1f1b",
        n_microbatches: int = 4,
        device: str | torch.device | None = None,
        backend: str | None = None,
        timeout_s: float = 120.0,
        activation_checkpointing: Sequence[str] | str | None = None,
    ) -> None:
        if (cuts is None) == (split_fn is None):
            raise PipelineSplitError("give exactly one of cuts (module names) and split_fn")
        if schedule not in _SCHEDULES:
            raise ValueError(
                f"unknown pipeline schedule {schedule!r}; expected one of {sorted(_SCHEDULES)}"
            )
        if n_microbatches < 1:
            raise ValueError(f"n_microbatches must be at least 1, got {n_microbatches}")
        super().__init__(
            device=device,
            backend=backend,
            timeout_s=timeout_s,
            activation_checkpointing=activation_checkpointing,
        )
        self.cuts = list(cuts) if cuts is not None else None
        self.split_fn = split_fn
        self.schedule = schedule
        self.n_microbatches = n_microbatches
        if schedule == "1f1b" and n_microbatches < self.world_size:
            raise ValueError(
                f"the 1f1b schedule needs n_microbatches >= the number of stages "
                f"({self.world_size}), got {n_microbatches}"
            )
        self._whole: nn.Module | None = None  # the model that was cut, when cut by name
        self._stage_module: nn.Module | None = None
        self._runners: dict[int, tuple[PipelineScheduleSingle, int]] = {}
        self._loss_fn: LossFn | None = None
        self._loss_scale: float | torch.Tensor = 1.0

    @property
    def data_parallel_size(self) -> int:
        """1: all stages see each batch."""
        return 1

    @property
    def data_parallel_rank(self) -> int:
        """0: all stages see each batch."""
        return 0

    @property
    def is_first_stage(self) -> bool:
        """True on the rank that feeds the inputs in."""
        return self.rank == 0

    @property
    def is_last_stage(self) -> bool:
        """True on the rank that computes the loss."""
        return self.rank == self.world_size - 1

    def wrap(self, model: nn.Module) -> nn.Module:
        """This rank's stage of `model` on the device (the rest of `model` stays where it is),
        with rank 0's weights (each rank may have built `model` with other random weights)."""
        self.checkpoint_activations(model)
        broadcast_from_rank0(model)
        if self.split_fn is not None:
            stage_module = self.split_fn(model, self.rank, self.world_size)
        else:
            assert self.cuts is not None
            if len(self.cuts) != self.world_size - 1:
                raise PipelineSplitError(
                    f"pipeline cuts {self.cuts} make {len(self.cuts) + 1} stages, but "
                    f"{self.world_size} ranks run one stage each; give {self.world_size - 1} cuts"
                )
            stage_module = split_stage(model, self.cuts, self.rank)
            self._whole = model
        stage_module = stage_module.to(self.device)
        if self.is_distributed:
            self._stage_module = stage_module
        return stage_module

    def compile_units(self, model: nn.Module) -> list[nn.Module]:
        """Refused: the trainer's ``compile`` is not supported under pipeline parallelism."""
        raise ConfigError(
            "ddp/trainer: compile is not supported under ddp/pipeline (its stages run inside "
            "torch.distributed.pipelining's schedule); set compile: false, or use ddp/fsdp2"
        )

    def unwrap(self, model: nn.Module) -> nn.Module:
        """The whole model, trained, on every rank (collective): each stage's parameters and
        buffers are broadcast from the rank that trained them into the module that was cut.

        With a `split_fn` the strategy cannot know the whole, and returns the stage.
        """
        if self._whole is None or not self.is_distributed:
            return super().unwrap(model)
        assert self.cuts is not None
        whole = self._whole.to(self.device)
        with torch.no_grad():
            for owner, units in enumerate(stage_units(whole, self.cuts)):
                for unit in units:
                    module = whole.get_submodule(unit)
                    for tensor in [*module.parameters(), *module.buffers()]:
                        dist.broadcast(tensor, src=owner)
        return whole

    def forward_backward(
        self,
        model: nn.Module,
        batch: Any,
        loss_fn: LossFn | None,
        *,
        loss_scale: float | torch.Tensor = 1.0,
        sync: bool = True,
        autocast_dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """Run the schedule over one batch; return the batch's mean loss on every rank.

        Gradients accumulate across calls as in the base class; `sync` has no effect (stages
        share no parameters).
        """
        if self._stage_module is None:
            return super().forward_backward(
                model, batch, loss_fn, loss_scale=loss_scale, autocast_dtype=autocast_dtype
            )
        inputs, targets = self._split(batch, loss_fn)
        runner, pieces = self._runner_for(len(inputs))
        self._loss_fn, self._loss_scale = loss_fn, loss_scale / pieces
        losses: list[torch.Tensor] = []  # the microbatches' scaled losses, on the last stage
        with self._autocast(autocast_dtype):
            runner.step(
                *([inputs] if self.is_first_stage else []),
                target=targets if self.is_last_stage else None,
                losses=losses if self.is_last_stage else None,
            )
        if self.is_last_stage:
            loss = torch.stack(losses).detach().float().mean() / self._loss_scale
        else:
            loss = torch.zeros((), device=self.device)
        dist.broadcast(loss, src=self.world_size - 1)
        return loss

    def backward(self, loss: torch.Tensor, *, loss_scale: float | torch.Tensor = 1.0) -> None:
        """As for every strategy in one process; across stages the schedule runs backward
        inside :meth:`forward_backward`, so a loss computed outside it cannot be used."""
        if self._stage_module is not None:
            raise RuntimeError(
                "ddp/pipeline: backward(loss) needs the whole model in one process; with "
                "several stages the schedule runs backward: call forward_backward(model, batch, "
                "loss_fn)"
            )
        super().backward(loss, loss_scale=loss_scale)

    def eval_loss(
        self,
        model: nn.Module,
        batch: Any,
        loss_fn: LossFn | None,
        *,
        autocast_dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """The batch's loss without gradients, on every rank.

        The whole batch passes from stage to stage (no microbatches, no schedule), so batches
        of any size work, such as the last, smaller one of a validation set.
        """
        if self._stage_module is None:
            return super().eval_loss(model, batch, loss_fn, autocast_dtype=autocast_dtype)
        inputs, targets = self._split(batch, loss_fn)
        assert loss_fn is not None
        with torch.no_grad(), self._autocast(autocast_dtype):
            hidden = model(inputs if self.is_first_stage else _receive(self.rank - 1, self.device))
            if self.is_last_stage:
                loss = loss_fn(hidden, targets).detach().float()
            else:
                _send(hidden, self.rank + 1)
                loss = torch.zeros((), device=self.device)
        dist.broadcast(loss, src=self.world_size - 1)
        return loss

    def clip_grad_norm(self, model: nn.Module, max_norm: float) -> torch.Tensor:
        """Clip by the norm over all stages' gradients; return that norm on every rank."""
        return clip_grad_norm(model.parameters(), max_norm, partitioned=self.is_distributed)

    def state_dict(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """As for every strategy, but the optimizer state is keyed by parameter name throughout
        (``flatten_optimizer_state_dict``): each stage's parameter groups name other parameters,
        and one shared ``param_groups`` entry could not hold them all."""
        from torch.distributed.checkpoint import state_dict  # on first use, as the base class

        options = state_dict.StateDictOptions(flatten_optimizer_state_dict=True)
        model_state, optimizer_state = state_dict.get_state_dict(model, optimizer, options=options)
        return {"model": model_state, "optimizer": optimizer_state}

    def load_state_dict(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, state: Mapping[str, Any]
    ) -> None:
        """The inverse of :meth:`state_dict`."""
        from torch.distributed.checkpoint import state_dict

        state_dict.set_state_dict(
            model,
            optimizer,
            model_state_dict=state["model"],
            optim_state_dict=state["optimizer"],
            options=state_dict.StateDictOptions(flatten_optimizer_state_dict=True),
        )

    def teardown(self) -> None:
        """Drop the schedule (it holds the stage module), then leave the process group."""
        self._runners.clear()
        self._stage_module = self._whole = None
        super().teardown()

    def _scaled_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        assert self._loss_fn is not None
        return self._loss_fn(outputs, targets) * self._loss_scale

    def _runner_for(self, batch_size: int) -> tuple[PipelineScheduleSingle, int]:
        """The schedule for batches of `batch_size`, and how many microbatches it cuts them into.

        Stages learn the shapes they exchange on their first step, so each batch size gets its
        own stage and schedule (in practice two: full batches and an epoch's last one). A size
        that `n_microbatches` does not divide is cut into the most equal pieces that divide it,
        run with GPipe when they are fewer than the stages (1F1B needs at least that many).
        """
        if batch_size not in self._runners:
            assert self._stage_module is not None
            pieces = max(d for d in range(1, self.n_microbatches + 1) if batch_size % d == 0)
            kind = _SCHEDULES[self.schedule] if pieces >= self.world_size else ScheduleGPipe
            stage = PipelineStage(self._stage_module, self.rank, self.world_size, self.device)
            runner = kind(stage, pieces, loss_fn=self._scaled_loss, scale_grads=False)
            self._runners[batch_size] = (runner, pieces)
        return self._runners[batch_size]

    def _split(self, batch: Any, loss_fn: LossFn | None) -> tuple[torch.Tensor, torch.Tensor]:
        if loss_fn is None:
            raise TypeError(
                "the pipeline strategy needs a loss_fn(outputs, targets): the last stage "
                "computes the loss from the model's outputs"
            )
        if not (isinstance(batch, tuple | list) and len(batch) == 2):
            raise TypeError(
                "the pipeline strategy needs batches that are pairs (inputs, targets); got "
                f"{type(batch).__name__}"
            )
        inputs, targets = self.to_device(batch)
        return inputs, targets


def _send(tensor: torch.Tensor, dst: int) -> None:
    dist.send_object_list([tensor.shape, tensor.dtype], dst=dst)
    dist.send(tensor.contiguous(), dst=dst)


def _receive(src: int, device: torch.device) -> torch.Tensor:
    meta: list[Any] = [None, None]
    dist.recv_object_list(meta, src=src)
    tensor = torch.empty(meta[0], dtype=meta[1], device=device)
    dist.recv(tensor, src=src)
    return tensor
