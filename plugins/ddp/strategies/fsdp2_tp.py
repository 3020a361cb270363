"""2-D parallelism: tensor parallel inside groups of ranks, FSDP2 across the groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.distributed.device_mesh import init_device_mesh

from plugins.ddp.strategies._broadcast import broadcast_from_rank0
from plugins.ddp.strategies._grad_norm import clip_grad_norm
from plugins.ddp.strategies._tp_plan import (
    ParallelizeFn,
    check_plan_source,
    parallelize,
    remove_parallel_hooks,
)
from plugins.ddp.strategies.fsdp2 import FSDP2

__all__ = ["FSDP2TP"]


class FSDP2TP(FSDP2):
    """A ``dp x tp`` device mesh: the plan shards layers over ``tp``, FSDP2 shards over ``dp``.

    Ranks ``0..tp_size-1`` form the first tensor-parallel group, the next ``tp_size`` ranks the
    second, and so on; each group reads its own share of the data (``batch_size`` is per group).

    Args:
        plan: the tensor-parallel plan, as for ``ddp/tp``.
        parallelize_fn: instead of a plan, a callable ``(model, tp_mesh)``.
        tp_size: ranks per tensor-parallel group; it must divide the world size.
        shard_modules, param_dtype, reduce_dtype, output_dtype, reshard_after_forward,
        cpu_offload, device, backend, timeout_s, activation_checkpointing: as for ``ddp/fsdp2``.
    """

    component_name = "ddp/fsdp2_tp"

    def __init__(
        self,
        plan: Mapping[str, Any] | None = None,
        *,
        parallelize_fn: ParallelizeFn | None = None,
        tp_size: int = 2,
        shard_modules: Sequence[str] | None = None,
        param_dtype: str | torch.dtype | None = None,
        reduce_dtype: str | torch.dtype | None = None,
        output_dtype: str | torch.dtype | None = None,
        reshard_after_forward: bool = True,
        cpu_offload: bool = False,
        device: str | torch.device | None = None,
        backend: str | None = None,
        timeout_s: float = 120.0,
        activation_checkpointing: Sequence[str] | str | None = None,
    ) -> None:
        check_plan_source(plan, parallelize_fn)
        super().__init__(
            shard_modules=shard_modules,
            param_dtype=param_dtype,
            reduce_dtype=reduce_dtype,
            output_dtype=output_dtype,
            reshard_after_forward=reshard_after_forward,
            cpu_offload=cpu_offload,
            device=device,
            backend=backend,
            timeout_s=timeout_s,
            activation_checkpointing=activation_checkpointing,
        )
        if tp_size < 1 or self.world_size % tp_size:
            raise ValueError(
                f"ddp/fsdp2_tp: tp_size={tp_size} must divide the number of ranks "
                f"({self.world_size}); launch a multiple of tp_size processes"
            )
        self.plan = plan
        self.parallelize_fn = parallelize_fn
        self.tp_size = tp_size

    @property
    def data_parallel_size(self) -> int:
        """The number of tensor-parallel groups: each reads different data."""
        return self.world_size // self.tp_size

    @property
    def data_parallel_rank(self) -> int:
        """This rank's group (the mesh is laid out row-major: ``rank = dp * tp_size + tp``)."""
        return self.rank // self.tp_size

    def wrap(self, model: nn.Module) -> nn.Module:
        """Copy rank 0's weights everywhere, apply the plan on ``tp``, then shard over ``dp``."""
        self.checkpoint_activations(model)
        units = self._units(model)
        model = model.to(self.device)
        broadcast_from_rank0(model)
        mesh = init_device_mesh(
            self.device.type,
            (self.data_parallel_size, self.tp_size),
            mesh_dim_names=("dp", "tp"),
        )
        model = parallelize(model, mesh["tp"], self.plan, self.parallelize_fn)
        self._shard(units, model, mesh["dp"])
        return model

    def unwrap(self, model: nn.Module) -> nn.Module:
        """As for ``ddp/fsdp2``, and tensor parallelism's hooks removed too."""
        model = super().unwrap(model)
        remove_parallel_hooks(model)
        return model

    def clip_grad_norm(self, model: nn.Module, max_norm: float) -> torch.Tensor:
        """Clip over parameters on the 2-D and the ``dp``-only mesh together."""
        return clip_grad_norm(model.parameters(), max_norm)
