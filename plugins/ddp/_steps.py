"""The tensor work of the fit loop: one optimizer step, and one validation pass."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from plugins.ddp.data import DataSource, load_batches
from plugins.ddp.precision import Precision
from plugins.ddp.strategies import LossFn, Strategy

__all__ = ["train_step", "validation_loss"]

_END = object()


def train_step(
    strategy: Strategy,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    precision: Precision,
    batches: Iterator[Any],
    *,
    loss_fn: LossFn | None,
    grad_accum_steps: int,
    grad_clip_norm: float | None,
    scheduler: Any,
) -> torch.Tensor | None:
    """One optimizer step over ``grad_accum_steps`` micro-batches from ``batches`` (gradients
    synced on the last), clipped to ``grad_clip_norm``, then the ``scheduler``'s step; return
    this rank's mean micro-batch loss (None: the data ran out first, and nothing was stepped)."""
    losses = []
    for micro in range(grad_accum_steps):
        batch = next(batches, _END)
        if batch is _END:  # the data ran out (max_epochs reached) mid-accumulation
            optimizer.zero_grad(set_to_none=True)
            return None
        losses.append(
            strategy.forward_backward(
                model,
                precision.convert_batch(batch),
                loss_fn,
                loss_scale=precision.loss_scale(1.0 / grad_accum_steps),
                sync=micro == grad_accum_steps - 1,
                autocast_dtype=precision.autocast_dtype,
            )
        )
    if grad_clip_norm is not None:
        precision.unscale_gradients(optimizer)
        strategy.clip_grad_norm(model, grad_clip_norm)
    precision.optimizer_step(optimizer)
    optimizer.zero_grad(set_to_none=True)
    if scheduler is not None:
        scheduler.step()
    return losses[0] if len(losses) == 1 else torch.stack(losses).mean()


def validation_loss(
    strategy: Strategy,
    model: nn.Module,
    precision: Precision,
    data: DataSource,
    *,
    loss_fn: LossFn | None,
    batch_size: int,
    seed: int,
) -> float:
    """The loss over ``data``'s batches (``batch_size`` per rank), averaged over every rank's
    batches (collective); ``model`` is in eval mode meanwhile."""
    model.eval()
    totals = torch.zeros(2, device=strategy.device)
    batches = load_batches(data, strategy, batch_size=batch_size, seed=seed, epoch=0, train=False)
    for batch in batches:
        loss = strategy.eval_loss(
            model,
            precision.convert_batch(batch),
            loss_fn,
            autocast_dtype=precision.autocast_dtype,
        )
        totals += torch.stack([loss.float(), loss.new_ones((), dtype=torch.float32)])
    model.train()
    loss_sum, count = strategy.all_reduce(totals, "sum").tolist()
    return float(loss_sum / max(count, 1.0))
