"""``ddp/fsdp2``: fully sharded data parallel with ``torch.distributed.fsdp.fully_shard``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

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

from corelib import ConfigError
from plugins.ddp._module_patterns import select_modules
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
        init_on_meta: build the model (given as a factory) on the ``meta`` device, shard it,
            then give each rank memory for its shards alone and initialise them there: a model
            larger than one rank's memory can be set up. Each rank initialises its shards with
            ``init_fn(model)``, or else every submodule's ``reset_parameters()``.
        init_fn: with ``init_on_meta``, initialises the sharded, materialised model in place.
        device, backend, timeout_s, activation_checkpointing: see :class:`Strategy`.
    """

    component_name = "ddp/fsdp2"

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
        init_on_meta: bool = False,
        init_fn: Callable[[nn.Module], None] | None = None,
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
        self.shard_modules = None if shard_modules is None else list(shard_modules)
        self._given_policy = MixedPrecisionPolicy(
            param_dtype=_dtype(param_dtype, "param_dtype"),
            reduce_dtype=_dtype(reduce_dtype, "reduce_dtype"),
            output_dtype=_dtype(output_dtype, "output_dtype"),
        )
        self.mp_policy = self._given_policy
        self.reshard_after_forward = reshard_after_forward
        self.cpu_offload = cpu_offload
        if init_fn is not None and not init_on_meta:
            raise ConfigError(f"{self.component_name}: init_fn is used only with init_on_meta=True")
        self.init_on_meta = init_on_meta
        self.init_fn = init_fn

    def use_precision(
        self, param_dtype: torch.dtype | None, reduce_dtype: torch.dtype | None
    ) -> None:
        """Take the trainer's precision as the mixed-precision policy: ``param_dtype`` and
        ``reduce_dtype`` fill the fields this strategy was not given explicitly."""
        given = self._given_policy
        self.mp_policy = replace(
            given,
            param_dtype=given.param_dtype or param_dtype,
            reduce_dtype=given.reduce_dtype or reduce_dtype,
        )

    def model_init_context(self) -> contextlib.AbstractContextManager[Any]:
        """The ``meta`` device with ``init_on_meta``: the factory allocates no memory."""
        return torch.device("meta") if self.init_on_meta else contextlib.nullcontext()

    def wrap(self, model: nn.Module) -> nn.Module:
        """Broadcast rank 0's weights, then ``fully_shard`` each selected block and the root."""
        self.checkpoint_activations(model)
        units, on_meta = self._units(model), self._on_meta(model)
        mesh = init_device_mesh(self.device.type, (self.world_size,))
        if on_meta:
            self._shard(units, model, mesh)
            self._materialise(model)
            return model
        model = model.to(self.device)
        broadcast_from_rank0(model)
        self._shard(units, model, mesh)
        return model

    def _on_meta(self, model: nn.Module) -> bool:
        """Whether ``model`` is to be sharded on ``meta`` and materialised afterwards."""
        on_meta = [t.is_meta for t in [*model.parameters(), *model.buffers()]]
        if not self.init_on_meta:
            if any(on_meta):
                raise ConfigError(
                    f"{self.component_name}: the model has tensors on the meta device; set "
                    "init_on_meta: true to shard and initialise it"
                )
            return False
        if not all(on_meta):
            raise ConfigError(
                f"{self.component_name}: init_on_meta=True needs the model as a factory "
                "(_partial_: true) so that it is built on the meta device; this one already "
                "holds tensors in memory"
            )
        return True

    def _materialise(self, model: nn.Module) -> None:
        """Give the sharded ``model`` this rank's memory and initialise it there."""
        model.to_empty(device="cpu" if self.cpu_offload else self.device)
        with torch.no_grad():
            if self.init_fn is not None:
                self.init_fn(model)
                return
            for module in model.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()

    def compile_units(self, model: nn.Module) -> list[nn.Module]:
        """Each block that becomes an FSDP unit (compiled before ``fully_shard``, as torchtitan
        does); the whole model when ``shard_modules`` selects none."""
        return self._units(model) or [model]

    def _shard(self, units: list[nn.Module], model: nn.Module, mesh: DeviceMesh) -> None:
        """``fully_shard`` each unit, then the root (which takes what the units left), on mesh."""
        # Pinned memory needs an accelerator: on a CPU-only machine pinning fails.
        offload = (
            CPUOffloadPolicy(pin_memory=self.device.type != "cpu")
            if self.cpu_offload
            else OffloadPolicy()
        )
        for module in [*units, model]:
            fully_shard(
                module,
                mesh=mesh,
                mp_policy=self.mp_policy,
                reshard_after_forward=self.reshard_after_forward,
                offload_policy=offload,
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
        if self.shard_modules is None:
            return [
                child
                for parent in model.modules()
                if isinstance(parent, nn.ModuleList | nn.ModuleDict)
                for child in parent.children()
            ]
        selected = select_modules(model, self.shard_modules, setting="ddp/fsdp2: shard_modules")
        return [module for _, module in selected]


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
