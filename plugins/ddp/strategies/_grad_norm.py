"""Gradient clipping over parameters that mix plain tensors and DTensors on several meshes.

`torch.nn.utils.clip_grad_norm_` needs all gradients of one kind on one mesh; tensor
parallelism leaves unplanned layers plain, FSDP2+TP puts parameters on a 2-D and a 1-D mesh,
and pipeline stages each hold a different part of the model.

Each rank sums the squares of the gradient pieces it holds, each piece weighted by one over the
number of ranks holding a copy of it, and one all-reduce over all ranks gives the square of the
global norm: exact, and one collective however many meshes there are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.tensor import DTensor, Replicate

__all__ = ["clip_grad_norm"]


@torch.no_grad()
def clip_grad_norm(
    parameters: Iterable[nn.Parameter], max_norm: float, *, partitioned: bool = False
) -> torch.Tensor:
    """Scale gradients so that their global 2-norm is at most `max_norm`; return that norm.

    Plain (non-DTensor) gradients are replicas on every rank, or with `partitioned` each rank's
    own (pipeline stages). The returned norm is the same on every rank.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    world = dist.get_world_size() if dist.is_initialized() else 1
    device = grads[0].device if grads else torch.device("cpu")
    square = torch.zeros((), device=device, dtype=torch.float32)
    groups: dict[tuple[object, ...], list[torch.Tensor]] = {}
    for grad in grads:
        groups.setdefault(_copies_key(grad), []).append(grad)
    for group in groups.values():
        local = [_local_piece(g) for g in group]
        norms = torch.stack(torch._foreach_norm(local)).float()
        copies = _copies(group[0], world, partitioned)
        square += norms.square().sum().to(device) / copies
    if world > 1:
        dist.all_reduce(square)
    total = square.sqrt()
    scale = min(1.0, max_norm / (total.item() + 1e-6))
    if scale < 1.0:
        for grad in grads:
            grad.mul_(scale)
    return total


def _copies_key(grad: torch.Tensor) -> tuple[object, ...]:
    if isinstance(grad, DTensor):
        return (grad.device_mesh, grad.placements)
    return ()


def _local_piece(grad: torch.Tensor) -> torch.Tensor:
    """This rank's piece of `grad`; pending sums (sequence-parallel norms) are reduced first."""
    if not isinstance(grad, DTensor):
        return grad
    if any(p.is_partial() for p in grad.placements):
        placements = [Replicate() if p.is_partial() else p for p in grad.placements]
        grad = grad.redistribute(grad.device_mesh, placements)
    return grad.to_local()


def _copies(grad: torch.Tensor, world: int, partitioned: bool) -> int:
    """On how many ranks each local piece of `grad` lives (partial sums count as reduced)."""
    if not isinstance(grad, DTensor):
        return 1 if partitioned else world
    mesh = grad.device_mesh
    replicated = [
        mesh.size(dim)
        for dim, placement in enumerate(grad.placements)
        if placement.is_replicate() or placement.is_partial()  # all else is a kind of shard
    ]
    return world // mesh.size() * math.prod(replicated)
