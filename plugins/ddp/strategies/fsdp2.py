"""``ddp/fsdp2``: fully sharded data parallel with ``torch.distributed.fsdp.fully_shard``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from fnmatch import fnmatchcase

import torch
from torch import nn
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import (
    CPUOffloadPolicy,
    FSDPModule,
    MixedPrecisionPolicy,
    OffloadPolicy,
    fully_shard,
)

from plugins.ddp.strategies._base import Strategy
from plugins.ddp.strategies._broadcast import broadcast_from_rank0
from plugins.ddp.strategies._unwrap import gather_full_tensors, remove_fsdp, reshard_all

__all__ = ["FSDP2"]

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


class FSDP2(Strategy):
    """Parameters, gradients and optimizer state sharded over all ranks.

    Each selected block becomes its own FSDP unit (its parameters are gathered only while it
    runs), then the root module takes the rest. Every rank starts from rank 0's weights.

    Args:
        shard_modules: which submodules become units: patterns matched against qualified names
            (``"blocks.*"``, fnmatch style, one ``*`` per name level) or class names
            (``"Block"``). ``None``: every child of an ``nn.ModuleList``/``nn.ModuleDict``
            (the usual stack of transformer blocks). ``[]``: the root only.
        param_dtype: dtype of the gathered parameters in forward/backward (``"bf16"``...);
            ``None`` keeps the stored dtype.
        reduce_dtype: dtype of gradient reduction; ``None`` follows ``param_dtype``.
        output_dtype: dtype the units' outputs are cast to; ``None`` leaves them.
        reshard_after_forward: free gathered parameters after forward (saves memory, costs
            a second all-gather in backward).
        cpu_offload: keep sharded parameters and optimizer state on the CPU.
        device, backend, timeout_s: see :class:`Strategy`.
    """

    requires_process_group = True

    def __init__(
        self,
        *,
        shard_modules: Sequence[str] | None = None,
        param_dtype: str | torch.dtype | None = None,
        reduce_dtype: str | torch.dtype | None = None,
        output_dtype: str | torch.dtype | None = None,
        reshard_after_forward: bool = True,
        cpu_offload: bool = False,
        device: str | torch.device | None = None,
        backend: str | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        super().__init__(device=device, backend=backend, timeout_s=timeout_s)
        self.shard_modules = None if shard_modules is None else list(shard_modules)
        self.mp_policy = MixedPrecisionPolicy(
            param_dtype=_dtype(param_dtype, "param_dtype"),
            reduce_dtype=_dtype(reduce_dtype, "reduce_dtype"),
            output_dtype=_dtype(output_dtype, "output_dtype"),
        )
        self.reshard_after_forward = reshard_after_forward
        self.cpu_offload = cpu_offload

    def wrap(self, model: nn.Module) -> nn.Module:
        """Broadcast rank 0's weights, then ``fully_shard`` each selected block and the root."""
        units = self._units(model)
        model = model.to(self.device)
        broadcast_from_rank0(model)
        mesh = init_device_mesh(self.device.type, (self.world_size,))
        self._shard(units, model, mesh)
        return model

    def compile_units(self, model: nn.Module) -> list[nn.Module]:
        """Each block that becomes an FSDP unit (compiled before ``fully_shard``, as torchtitan
        does); the whole model when ``shard_modules`` selects none."""
        return self._units(model) or [model]

    def _shard(self, units: list[nn.Module], model: nn.Module, mesh: DeviceMesh) -> None:
        """``fully_shard`` each unit, then the root (which takes what the units left), on mesh."""
        for module in [*units, model]:
            fully_shard(
                module,
                mesh=mesh,
                mp_policy=self.mp_policy,
                reshard_after_forward=self.reshard_after_forward,
                offload_policy=CPUOffloadPolicy() if self.cpu_offload else OffloadPolicy(),
            )

    def unwrap(self, model: nn.Module) -> nn.Module:
        """``model`` with every rank holding the full trained parameters as plain tensors and
        ``fully_shard`` undone (collective), so it is usable after :meth:`teardown`."""
        reshard_all(model)
        gather_full_tensors(model)
        remove_fsdp(model)
        return model

    def gradient_sync(
        self, model: nn.Module, *, enabled: bool
    ) -> contextlib.AbstractContextManager[None]:
        """Skip the reduce-scatter of gradients while accumulating (``enabled=False``)."""
        if enabled or not isinstance(model, FSDPModule):
            return contextlib.nullcontext()
        return _without_gradient_sync(model)

    def _units(self, model: nn.Module) -> list[nn.Module]:
        named = [(name, module) for name, module in model.named_modules() if name]
        if self.shard_modules is None:
            return [
                child
                for _, parent in [("", model), *named]
                if isinstance(parent, nn.ModuleList | nn.ModuleDict)
                for child in parent.children()
            ]
        units: list[nn.Module] = []
        for pattern in self.shard_modules:
            matched = [module for name, module in named if _matches(pattern, name, module)]
            if not matched:
                raise ValueError(
                    f"ddp/fsdp2: shard_modules pattern {pattern!r} matches no submodule of "
                    f"{type(model).__name__}; its modules are "
                    f"{[name for name, _ in named][:20]} (patterns match qualified names or "
                    "class names)"
                )
            units.extend(module for module in matched if module not in units)
        return units


def _matches(pattern: str, name: str, module: nn.Module) -> bool:
    if pattern == type(module).__name__:
        return True
    pattern_parts, name_parts = pattern.split("."), name.split(".")
    return len(pattern_parts) == len(name_parts) and all(
        fnmatchcase(part, want) for part, want in zip(name_parts, pattern_parts, strict=True)
    )


def _dtype(value: str | torch.dtype | None, field: str) -> torch.dtype | None:
    if value is None or isinstance(value, torch.dtype):
        return value
    try:
        return _DTYPES[str(value).removeprefix("torch.")]
    except KeyError:
        raise ValueError(
            f"ddp/fsdp2: {field}={value!r} is not a dtype; expected one of {sorted(_DTYPES)}"
        ) from None


@contextlib.contextmanager
def _without_gradient_sync(model: FSDPModule) -> Iterator[None]:
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)
