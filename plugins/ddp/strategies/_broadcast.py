"""Make every rank start from rank 0's weights."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["broadcast_from_rank0"]


@torch.no_grad()
def broadcast_from_rank0(module: nn.Module) -> None:
    """Overwrite `module`'s parameters and buffers (plain tensors only) with rank 0's values.

    Call it before sharding: it is a no-op outside a process group.
    """
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)
