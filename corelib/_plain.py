"""``to_dict``: a config tree as plain dicts and lists, ready to be written to a file."""

from __future__ import annotations

import types
from typing import Any

from corelib._errors import ConfigError
from corelib._traversal import CycleError, Location, fold
from corelib.registry import TargetError, import_path_of

__all__ = ["to_dict"]

_NAMED_CALLABLES = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodDescriptorType,
)


def to_dict(cfg: Any) -> Any:
    """Return ``cfg`` as plain dicts and lists (tuples become lists).

    A callable in ``_target_`` becomes its import path (``"my_app.Trainer"``); a class or
    function anywhere else becomes ``{"_import_": "pkg.mod.name"}``, which ``instantiate`` turns
    back into that object. A node shared by several paths stays one shared object. Raises
    :class:`ConfigError` naming the key path of anything that cannot be named by an import path
    (a lambda, a local class).
    """
    try:
        return fold(cfg, _visit)
    except CycleError as cycle:
        raise ConfigError(f"{cycle.location}: {cycle}") from None


def _visit(node: Any, children: Any, loc: Location) -> Any:
    if isinstance(node, dict):
        return {
            key: _plain_value(value, loc.child(key), is_target=key == "_target_")
            for key, value in children.items()
        }
    return [_plain_value(value, loc.child(index)) for index, value in enumerate(children)]


def _plain_value(value: Any, loc: Location, *, is_target: bool = False) -> Any:
    if isinstance(value, _NAMED_CALLABLES) or (is_target and callable(value)):
        try:
            path = import_path_of(value)
        except TargetError as error:
            raise ConfigError(f"{loc}: cannot be written by name: {error}") from None
        return path if is_target else {"_import_": path}
    return value
