"""Turn a sharded model back into an ordinary module that outlives its process group.

FSDP2 and tensor parallelism replace a module's parameters with DTensors in place, so the
module a user passed in is the sharded one. Once the process group is destroyed those DTensors
cannot be gathered any more (``full_tensor()`` fails to resolve the group), so before teardown
every rank gathers the full tensors and puts plain parameters back; FSDP2's class swap and hooks
are removed too, so the module runs forward and saves state like before it was wrapped.
FSDP is imported on first use (as in ``_dcp``): a one-process run should not pay for it.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["gather_full_tensors", "remove_fsdp", "reshard_all"]

_FSDP_PACKAGE = "torch.distributed.fsdp."
_HOOK_DICTS = (
    "_forward_pre_hooks",
    "_forward_hooks",
    "_state_dict_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)
_COMPOSABLE_KEY_PREFIX = "__composable_api_state_key_"


def gather_full_tensors(model: nn.Module) -> None:
    """Replace every DTensor parameter and buffer of ``model`` by a plain one holding the full
    tensor (collective: every rank calls it, visiting the tensors in the same order)."""
    with torch.no_grad():
        for module in model.modules():
            for name, param in list(module._parameters.items()):
                full = _full_tensor(param)
                if full is not None and param is not None:
                    module._parameters[name] = nn.Parameter(full, param.requires_grad)
            for name, buffer in list(module._buffers.items()):
                full = _full_tensor(buffer)
                if full is not None:
                    module._buffers[name] = full


def remove_fsdp(model: nn.Module) -> None:
    """Undo ``fully_shard`` on ``model`` and its submodules after :func:`gather_full_tensors`:
    the original classes come back and FSDP2's hooks and state go."""
    from torch.distributed.fsdp import FSDPModule

    for module in model.modules():
        for hooks_name in _HOOK_DICTS:
            hooks = getattr(module, hooks_name)
            for key in [key for key, hook in hooks.items() if _from_fsdp(hook)]:
                del hooks[key]
        if isinstance(module, FSDPModule):
            for key in [key for key in module.__dict__ if key.startswith(_COMPOSABLE_KEY_PREFIX)]:
                del module.__dict__[key]
            original = next(cls for cls in type(module).__mro__ if not issubclass(cls, FSDPModule))
            module.__class__ = original  # type: ignore[assignment]


def reshard_all(model: nn.Module) -> None:
    """Put FSDP2's sharded parameters back on every unit (after a forward that kept them
    gathered), so that :func:`gather_full_tensors` sees DTensors everywhere."""
    from torch.distributed.fsdp import FSDPModule

    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()


def _full_tensor(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """The whole of a DTensor (collective), or None for a plain tensor."""
    full_tensor = getattr(tensor, "full_tensor", None)  # a DTensor: no need to import it
    return None if full_tensor is None else full_tensor().detach()


def _from_fsdp(hook: object) -> bool:
    function = getattr(hook, "func", hook)  # functools.partial or a plain callable
    function = getattr(function, "__func__", function)  # a bound method
    return getattr(function, "__module__", "").startswith(_FSDP_PACKAGE)
