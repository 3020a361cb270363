"""Tensor parallelism: every rank holds a slice of the planned layers and sees the same batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.distributed.device_mesh import init_device_mesh

from plugins.ddp.strategies._base import Strategy
from plugins.ddp.strategies._broadcast import broadcast_from_rank0
from plugins.ddp.strategies._grad_norm import clip_grad_norm
from plugins.ddp.strategies._tp_plan import (
    ParallelizeFn,
    check_plan_source,
    parallelize,
    remove_parallel_hooks,
    resolve_plan,
)

__all__ = ["TensorParallel"]


class TensorParallel(Strategy):
    """Shard layers across all ranks with DTensor's `parallelize_module`.

    Args:
        plan: module-name patterns mapped to styles, e.g. ``{"blocks.*.mlp.fc": "colwise",
            "blocks.*.mlp.proj": "rowwise"}`` (see ``docs/ddp-parallelism.md`` for the styles
            and layout options). A pattern that matches no module is an error naming it.
        parallelize_fn: instead of a plan, a callable ``(model, mesh)`` that parallelizes the
            model itself (in place, or returning the new module).
        device, backend, timeout_s, activation_checkpointing: as for
            :class:`~plugins.ddp.strategies.Strategy`.

    Every rank starts from rank 0's weights and reads the same batches: the ranks form one
    model replica, so there is no data parallelism (see ``ddp/fsdp2_tp`` for both).
    """

    component_name = "ddp/tp"

    def __init__(
        self,
        plan: Mapping[str, Any] | None = None,
        *,
        parallelize_fn: ParallelizeFn | None = None,
        device: str | torch.device | None = None,
        backend: str | None = None,
        timeout_s: float = 120.0,
        activation_checkpointing: Sequence[str] | str | None = None,
    ) -> None:
        check_plan_source(plan, parallelize_fn)
        super().__init__(
            device=device,
            backend=backend,
            timeout_s=timeout_s,
            activation_checkpointing=activation_checkpointing,
        )
        self.plan = plan
        self.parallelize_fn = parallelize_fn

    @property
    def data_parallel_size(self) -> int:
        """1: all ranks share each batch."""
        return 1

    @property
    def data_parallel_rank(self) -> int:
        """0: all ranks share each batch."""
        return 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """Move `model` to the device, copy rank 0's weights everywhere, then apply the plan.

        In a single process the plan is checked against the model, which stays whole.
        """
        self.checkpoint_activations(model)
        model = model.to(self.device)
        if not self.is_distributed:
            if self.plan is not None:
                resolve_plan(model, self.plan)
            return model
        broadcast_from_rank0(model)
        mesh = init_device_mesh(self.device.type, (self.world_size,), mesh_dim_names=("tp",))
        return parallelize(model, mesh, self.plan, self.parallelize_fn)

    def unwrap(self, model: nn.Module) -> nn.Module:
        """``model`` with full plain parameters on every rank and tensor parallelism's hooks
        removed (collective), so it runs as an ordinary module after :meth:`teardown`."""
        model = super().unwrap(model)
        remove_parallel_hooks(model)
        return model

    def clip_grad_norm(self, model: nn.Module, max_norm: float) -> torch.Tensor:
        """Clip over sharded and replicated layers together; return the full gradient norm."""
        return clip_grad_norm(model.parameters(), max_norm)
