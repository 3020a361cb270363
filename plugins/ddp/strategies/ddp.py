"""``ddp/ddp``: data parallel with ``torch.nn.parallel.DistributedDataParallel``."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from plugins.ddp.strategies._base import Strategy

__all__ = ["DDP"]


class DDP(Strategy):
    """One full replica per rank; gradients all-reduced in buckets during backward.

    Every rank starts from rank 0's weights (DDP broadcasts them when wrapping). Launched as one
    process it still wraps the model, in a one-rank process group.

    Args:
        find_unused_parameters: allow parameters that get no gradient in some steps.
        static_graph: promise the same graph every step (lets DDP optimise further).
        bucket_cap_mb: gradient bucket size; ``None`` keeps torch's default.
        device, backend, timeout_s, activation_checkpointing: see :class:`Strategy`.
    """

    component_name = "ddp/ddp"

    requires_process_group = True

    def __init__(
        self,
        *,
        find_unused_parameters: bool = False,
        static_graph: bool = False,
        bucket_cap_mb: float | None = None,
        device: str | torch.device | None = None,
        backend: str | None = None,
        timeout_s: float = 120.0,
        activation_checkpointing: Sequence[str] | str | None = None,
    ) -> None:
        super().__init__(
            device=device,
            backend=backend,
            timeout_s=timeout_s,
            activation_checkpointing=activation_checkpointing,
        )
        self.find_unused_parameters = find_unused_parameters
        self.static_graph = static_graph
        self.bucket_cap_mb = bucket_cap_mb

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` on the device inside ``DistributedDataParallel``."""
        self.checkpoint_activations(model)
        model = model.to(self.device)
        return DistributedDataParallel(
            model,
            device_ids=[self.device] if self.device.type == "cuda" else None,
            bucket_cap_mb=self.bucket_cap_mb,
            find_unused_parameters=self.find_unused_parameters,
            static_graph=self.static_graph,
        )

    def unwrap(self, model: nn.Module) -> nn.Module:
        """The module inside ``DistributedDataParallel`` (trained in place)."""
        inner = model.module if isinstance(model, DistributedDataParallel) else model
        return super().unwrap(inner)

    def gradient_sync(
        self, model: nn.Module, *, enabled: bool
    ) -> contextlib.AbstractContextManager[None]:
        """DDP's ``no_sync()`` while accumulating, so only the last micro-batch all-reduces."""
        if enabled or not isinstance(model, DistributedDataParallel):
            return contextlib.nullcontext()
        return model.no_sync()
