"""The trainer's ``precision`` setting: what each value does to a run under each strategy.

* ``"32"``: float32 throughout; FSDP2 keeps the policy it was given.
* ``"bf16"``: ``torch.autocast`` to bfloat16 over float32 weights; FSDP2 also gets
  ``MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32)``.
* ``"bf16-true"``: the model and the batches' floating tensors in bfloat16, no autocast.
* ``"fp16"``: autocast to float16 and a gradient scaler (``torch.amp.GradScaler``;
  ``ShardedGradScaler`` where ranks hold different gradients, so that they agree on skipping
  a step: FSDP2 and pipeline parallelism; refused under ``ddp/tp``); FSDP2 also gets
  ``MixedPrecisionPolicy(param_dtype=fp16, reduce_dtype=fp32)``.

Under FSDP2 the policy fields the strategy was given explicitly win. The scaler's state is
saved with every checkpoint, so a resumed run scales as the original did.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import torch
from torch import nn
from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler
from torch.utils._pytree import tree_map_only

from corelib import ConfigError
from plugins.ddp._errors import CheckpointError
from plugins.ddp.strategies import Strategy
from plugins.ddp.strategies.ddp import DDP
from plugins.ddp.strategies.fsdp2 import FSDP2
from plugins.ddp.strategies.tp import TensorParallel

__all__ = ["PRECISIONS", "Precision", "PrecisionName"]

PrecisionName = Literal["32", "bf16", "bf16-true", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(PrecisionName)

_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}
_FSDP2_PARAMS = {"bf16": torch.bfloat16, "fp16": torch.float16}
_fp16_probed: dict[str, str | None] = {}


class Precision:
    """One run's precision: autocast dtype, parameter dtype and gradient scaler.

    Args:
        name: one of :data:`PRECISIONS` (``32`` as an int is accepted too).
        strategy: the strategy the run trains with (after its ``setup()``: its device is set).

    Raises:
        ValueError: an unknown ``name``.
        ConfigError: a value the strategy or the device cannot run (fp16 where there are no
            fp16 kernels, or under ``ddp/tp``).
    """

    def __init__(self, name: str | int, strategy: Strategy) -> None:
        self.name = check_precision(name)
        self.autocast_dtype: torch.dtype | None = _AUTOCAST.get(self.name)
        self.param_dtype: torch.dtype | None = torch.bfloat16 if self.name == "bf16-true" else None
        self.grad_scaler: torch.amp.GradScaler | None = None
        self._device = strategy.device
        if self.name == "fp16":
            _check_fp16(strategy)
            self.grad_scaler = _grad_scaler(strategy)
        if isinstance(strategy, FSDP2):
            reduce_dtype = torch.float32 if self.name in _FSDP2_PARAMS else None
            strategy.use_precision(_FSDP2_PARAMS.get(self.name), reduce_dtype)

    def convert_model(self, model: nn.Module) -> nn.Module:
        """``model`` with its floating parameters and buffers in the parameter dtype (before
        wrapping; bf16-true only)."""
        return model if self.param_dtype is None else model.to(self.param_dtype)

    def convert_batch(self, batch: Any) -> Any:
        """``batch`` with its floating tensors in the parameter dtype (bf16-true only)."""
        if self.param_dtype is None:
            return batch
        dtype = self.param_dtype
        return tree_map_only(
            torch.Tensor, lambda t: t.to(dtype) if t.is_floating_point() else t, batch
        )

    def loss_scale(self, scale: float) -> float | torch.Tensor:
        """What backward multiplies the loss by: ``scale`` (1 / accumulation steps), times the
        gradient scaler's current scale under fp16."""
        if self.grad_scaler is None:
            return scale
        return self.grad_scaler.scale(torch.tensor(scale, device=self._device))

    def unscale_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients by the scaler's scale (before clipping them)."""
        if self.grad_scaler is not None:
            self.grad_scaler.unscale_(optimizer)

    def optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Step ``optimizer``; under fp16 skip a step with non-finite gradients and adapt the
        scale (as every rank does alike)."""
        if self.grad_scaler is None:
            optimizer.step()
            return
        self.grad_scaler.step(optimizer)
        self.grad_scaler.update()

    def state_dict(self) -> dict[str, Any] | None:
        """The scaler's state (plain values) for a checkpoint; ``None`` without a scaler."""
        return None if self.grad_scaler is None else self.grad_scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state_dict`'s output (a checkpoint without one leaves the scaler).

        Raises:
            CheckpointError: ``state`` is not a scaler's state (no positive, finite scale).
        """
        if self.grad_scaler is None or not state:
            return
        scale = state.get("scale")
        if not isinstance(scale, float | int) or not 0 < scale < float("inf"):
            raise CheckpointError(
                f"the checkpoint's gradient scaler state has scale={scale!r}; expected a "
                "positive finite number"
            )
        self.grad_scaler.load_state_dict(state)


def check_precision(name: str | int) -> str:
    """``name`` as one of :data:`PRECISIONS`, or a ``ValueError`` listing them."""
    if str(name) not in PRECISIONS:
        raise ValueError(f"ddp/trainer: precision={name!r}; expected one of {list(PRECISIONS)}")
    return str(name)


def _grad_scaler(strategy: Strategy) -> torch.amp.GradScaler:
    """fp16's scaler. Where ranks hold different gradients (sharded, or split into pipeline
    stages) the sharded scaler all-reduces its check for non-finite gradients, so every rank
    skips the same steps; it also unscales FSDP2's DTensor gradients. DDP's ranks hold the same
    gradients after their all-reduce, and one process needs no agreement: the plain scaler."""
    sharded = isinstance(strategy, FSDP2) or (
        strategy.is_distributed and not isinstance(strategy, DDP)
    )
    return (ShardedGradScaler if sharded else torch.amp.GradScaler)(strategy.device.type)


def _check_fp16(strategy: Strategy) -> None:
    where = f"precision='fp16' under {strategy.component_name}"
    if isinstance(strategy, TensorParallel):
        raise ConfigError(
            f"{where} is not supported: torch's gradient scalers cannot unscale the mix of "
            "DTensor (parallelised layers) and plain gradients that tensor parallelism leaves; "
            "use 'bf16' or 'bf16-true', or ddp/fsdp2_tp, whose gradients are all DTensors"
        )
    device = strategy.device.type
    if device not in _fp16_probed:
        _fp16_probed[device] = _fp16_problem(strategy.device)
    if (problem := _fp16_probed[device]) is not None:
        raise ConfigError(
            f"{where} on {device}: this torch build has no float16 kernels there ({problem}); "
            "use 'bf16', or train on a device with float16 support"
        )


def _fp16_problem(device: torch.device) -> str | None:
    """Why a tiny float16 autocast forward and backward fail on ``device``; None if they run."""
    try:
        weight = torch.ones(4, 4, device=device, requires_grad=True)
        with torch.autocast(device.type, dtype=torch.float16):
            out = weight @ torch.ones(4, 4, device=device)
        if out.dtype != torch.float16:
            return f"autocast gave {out.dtype}"
        out.float().sum().backward()
        return None
    except (RuntimeError, NotImplementedError) as error:
        return str(error).splitlines()[0] if str(error) else type(error).__name__
