"""Activation checkpointing: selected submodules keep none of their inner activations for
backward and run their forward again when backward reaches them (``torch.utils.checkpoint``,
non-reentrant), trading compute for memory.

A strategy's ``activation_checkpointing`` option names the modules with the patterns every
strategy option uses (``"blocks.*"``, or a class name such as ``"Block"``; see
:mod:`plugins.ddp._module_patterns`). The module's structure, parameter names and
state dict stay as they were (its ``forward`` is wrapped on the instance), so checkpoints move
freely between runs with and without it; under FSDP2 it is applied before ``fully_shard``, so
each recomputation runs on the gathered parameters of its unit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from plugins.ddp._module_patterns import select_modules

__all__ = [
    "apply_activation_checkpointing",
    "checkpoint_patterns",
    "remove_activation_checkpointing",
]


class _CheckpointedForward:
    """A module's forward that, while gradients are recorded, saves only its inputs."""

    def __init__(self, forward: Callable[..., Any]) -> None:
        self.forward = forward

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not torch.is_grad_enabled():  # validation, inference: nothing to save or recompute
            return self.forward(*args, **kwargs)
        return checkpoint(self.forward, *args, use_reentrant=False, **kwargs)


def checkpoint_patterns(value: Sequence[str] | str | None) -> list[str] | None:
    """The option as a list of patterns (``None`` when off); a bad type or an empty pattern is a
    ``TypeError``/``ValueError`` naming the setting."""
    if value is None:
        return None
    patterns = [value] if isinstance(value, str) else list(value)
    if not patterns or not all(isinstance(p, str) and p.strip() for p in patterns):
        raise ValueError(
            "activation_checkpointing takes a module-name pattern or a non-empty list of them "
            f"(such as 'blocks.*'), not {value!r}"
        )
    return patterns


def apply_activation_checkpointing(
    model: nn.Module, patterns: Sequence[str], *, strategy: str
) -> list[str]:
    """Checkpoint the submodules of ``model`` that ``patterns`` select (in place); return their
    names. A module inside another selected one is left alone (the outer one recomputes it).

    Raises:
        ModulePatternError: a pattern selects nothing (named, with some module names).
    """
    selected = select_modules(model, patterns, setting=f"{strategy}: activation_checkpointing")
    names: list[str] = []
    for name, module in selected:
        if any(name.startswith(f"{outer}.") for outer in names):
            continue
        if not isinstance(module.__dict__.get("forward"), _CheckpointedForward):
            module.forward = _CheckpointedForward(module.forward)
        names.append(name)
    return names


def remove_activation_checkpointing(model: nn.Module) -> None:
    """Undo :func:`apply_activation_checkpointing` on every submodule of ``model``."""
    for module in model.modules():
        if isinstance(module.__dict__.get("forward"), _CheckpointedForward):
            del module.forward
