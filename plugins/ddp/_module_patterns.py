"""Module-name patterns, the one syntax every strategy option that selects submodules uses
(``shard_modules``, ``activation_checkpointing``, tensor-parallel plan keys).

A pattern is a dotted module name in which ``*`` (fnmatch style) stands within one name level,
``"blocks.*"`` matching ``blocks.0`` and ``blocks.1`` but not ``blocks.0.attn``; where a module is
at hand, a pattern may also be its class name (``"Block"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from torch import nn

from corelib import ConfigError

__all__ = ["ModulePatternError", "matches", "select_modules"]


class ModulePatternError(ConfigError, ValueError):
    """A module-name pattern that selects no submodule of the model."""


def matches(pattern: str, name: str, module: nn.Module | None = None) -> bool:
    """Whether ``pattern`` selects the module called ``name`` (or, given, of ``module``'s class)."""
    if module is not None and pattern == type(module).__name__:
        return True
    pattern_parts, name_parts = pattern.split("."), name.split(".")
    return len(pattern_parts) == len(name_parts) and all(
        fnmatchcase(part, want) for part, want in zip(name_parts, pattern_parts, strict=True)
    )


def select_modules(
    model: nn.Module, patterns: Sequence[str], *, setting: str
) -> list[tuple[str, nn.Module]]:
    """The submodules of ``model`` that ``patterns`` select, as ``(name, module)`` in model order.

    Raises:
        ModulePatternError: a pattern matches no submodule; the message names ``setting``,
            the pattern, and a few of the model's module names.
    """
    named = [(name, module) for name, module in model.named_modules() if name]
    selected: dict[int, tuple[str, nn.Module]] = {}
    for pattern in patterns:
        found = [(name, module) for name, module in named if matches(pattern, name, module)]
        if not found:
            raise ModulePatternError(
                f"{setting} pattern {pattern!r} matches no submodule of {type(model).__name__}; "
                f"its modules are {[name for name, _ in named][:20]} (patterns match qualified "
                "names, one '*' per name level, or class names)"
            )
        selected.update((id(module), (name, module)) for name, module in found)
    order = {id(module): index for index, (_, module) in enumerate(named)}
    return sorted(selected.values(), key=lambda item: order[id(item[1])])
