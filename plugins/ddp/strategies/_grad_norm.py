"""Gradient clipping over parameters that mix plain tensors and DTensors on several meshes.

`torch.nn.utils.clip_grad_norm_` needs all gradients of one kind; tensor parallelism leaves
unplanned layers plain, and FSDP2+TP puts parameters on a 2-D and a 1-D mesh.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.distributed.tensor import DTensor

__all__ = ["clip_grad_norm"]


@torch.no_grad()
def clip_grad_norm(parameters: Iterable[nn.Parameter], max_norm: float) -> torch.Tensor:
    """Scale gradients so that their global 2-norm is at most `max_norm`; return that norm.

    Gradients are grouped by layout; each DTensor group's norm is reduced over its mesh, so the
    result is the norm of the full (unsharded) gradient on every rank.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    groups: dict[object, list[torch.Tensor]] = {}
    for grad in grads:
        key = (grad.device_mesh, grad.placements) if isinstance(grad, DTensor) else None
        groups.setdefault(key, []).append(grad)
    squares = []
    for group in groups.values():
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(group)))
        if isinstance(norm, DTensor):
            norm = norm.full_tensor()
        squares.append(norm.float() ** 2)
    if not squares:
        return torch.tensor(0.0)
    total = torch.stack(squares).sum().sqrt()
    scale = min(1.0, max_norm / (total.item() + 1e-6))
    if scale < 1.0:
        for grad in grads:
            grad.mul_(scale)
    return total
