"""Gradient clipping over parameters that mix plain tensors and DTensors on several meshes.

`torch.nn.utils.clip_grad_norm_` needs all gradients of one kind on one mesh; tensor
parallelism leaves unplanned layers plain, FSDP2+TP puts parameters on a 2-D and a 1-D mesh,
and pipeline stages each hold a different part of the model.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.tensor import DTensor

__all__ = ["clip_grad_norm"]


@torch.no_grad()
def clip_grad_norm(
    parameters: Iterable[nn.Parameter], max_norm: float, *, partitioned: bool = False
) -> torch.Tensor:
    """Scale gradients so that their global 2-norm is at most `max_norm`; return that norm.

    Gradients are grouped by layout; each DTensor group's norm is reduced over its mesh, so the
    result is the norm of the full (unsharded) gradient on every rank. With `partitioned`, each
    rank holds different plain parameters (pipeline stages) and their norms are summed over all
    ranks; otherwise plain parameters are replicas and count once.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    groups: dict[object, list[torch.Tensor]] = {}
    for grad in grads:
        key = (grad.device_mesh, grad.placements) if isinstance(grad, DTensor) else None
        groups.setdefault(key, []).append(grad)
    total = torch.zeros((), device=grads[0].device if grads else None)
    for group in groups.values():
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(group)))
        if isinstance(norm, DTensor):
            norm = norm.full_tensor()
        total += norm.float() ** 2
    if partitioned and dist.is_initialized():
        dist.all_reduce(total)
    total = total.sqrt()
    scale = min(1.0, max_norm / (total.item() + 1e-6))
    if scale < 1.0:
        for grad in grads:
            grad.mul_(scale)
    return total
