"""Turning a ``_target_`` into a callable: import paths, registry names, plugin-defined forms.

Grammar: a string with a ``/``, or with neither ``.`` nor ``:``, is a registry name
(``"ddp"``, ``"ama/label_model"``); any other string is an import path (``"pkg.mod.Name"`` or
``"pkg.mod:Name"``). ``corelib_resolve_target`` hooks are asked first for every string.
An :class:`ImportAllowlist` restricts what untrusted configs may reach (safe mode).
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Iterable
from types import ModuleType
from typing import Any

__all__ = [
    "ImportAllowlist",
    "TargetError",
    "import_object",
    "import_path_of",
    "is_registry_name",
    "module_of",
]


class TargetError(Exception):
    """A target string could not be resolved, or was refused (message says why)."""


def is_registry_name(target: str) -> bool:
    """Whether a target string names a registered component rather than an import path."""
    return "/" in target or ("." not in target and ":" not in target)


def module_of(obj: Any) -> str:
    """The module that really defines ``obj`` (its class's module for plain instances)."""
    if isinstance(obj, ModuleType):
        return obj.__name__
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):
        module = type(obj).__module__
    return module


def import_path_of(obj: Any) -> str:
    """The dotted import path that loads back ``obj`` (``"my_app.Trainer"``).

    Raises :class:`TargetError` for objects that cannot be imported by name (lambdas, local
    classes and functions, instances).
    """
    qualname = getattr(obj, "__qualname__", None)
    module = getattr(obj, "__module__", None)
    if not isinstance(qualname, str) or not isinstance(module, str):
        raise TargetError(f"{obj!r} has no importable name (not a module-level class or function)")
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise TargetError(f"{obj!r} is a lambda or a local object and cannot be imported by name")
    name = getattr(obj, "__name__", None)
    candidates = [f"{module}.{qualname}"]
    if isinstance(name, str) and name != qualname:  # e.g. builtins exposed on a module
        candidates.append(f"{module}.{name}")
    problems = []
    for path in candidates:
        try:
            if import_object(path) is obj:
                return path
            problems.append(f"{path!r} loads another object")
        except TargetError as error:
            problems.append(str(error))
    raise TargetError(f"{obj!r} is not importable by name: {'; '.join(problems)}")


class ImportAllowlist:
    """Import prefixes an untrusted config may reach, besides registered components.

    A prefix allows itself and its submodules on dotted boundaries (``"torch.optim"`` allows
    ``"torch.optim.adamw"``, not ``"torch.optimx"``). Both the spelled path and the real module of
    the resolved object must be allowed.
    """

    __slots__ = ("prefixes",)

    def __init__(self, prefixes: Iterable[str] = ()) -> None:
        if isinstance(prefixes, str):
            prefixes = (prefixes,)
        self.prefixes = tuple(p.strip().rstrip(".") for p in prefixes if p.strip())

    def allows(self, dotted: str) -> bool:
        return any(dotted == p or dotted.startswith(p + ".") for p in self.prefixes)

    def __repr__(self) -> str:
        return f"ImportAllowlist({list(self.prefixes)!r})"


def _spelled_module(path: str) -> str:
    return path.replace(":", ".")


def import_object(path: str, allowlist: ImportAllowlist | None = None) -> Any:
    """Import ``"pkg.mod.Name"`` or ``"pkg.mod:Name.attr"``.

    With an allowlist, a path outside it is refused before anything is imported, and every
    module reached on the way and the object's real module must be inside it too.
    """
    if allowlist is not None and not allowlist.allows(_spelled_module(path)):
        raise TargetError(_refusal(path, allowlist))
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
        attrs = attr_path.split(".")
        if not all(module_name.split(".")) or not all(attrs) or ":" in attr_path:
            raise TargetError(f"malformed import path {path!r}; expected 'pkg.mod:Name'")
        module = _import_module(module_name, path)
    else:
        module, attrs = _import_longest_prefix(path)
    obj: Any = module
    for index, attr in enumerate(attrs):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            owner = ".".join([module.__name__, *attrs[:index]])
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise TargetError(
                f"cannot import {path!r}: {owner!r} has no attribute {attr!r}"
                + _did_you_mean(attr, names)
            ) from None
        if allowlist is not None and not allowlist.allows(module_of(obj)):
            raise TargetError(
                f"refused {path!r}: it resolves to {obj!r} defined in module "
                f"{module_of(obj)!r}, outside the allowed import prefixes "
                f"{list(allowlist.prefixes)}"
            )
    return obj


def _import_module(name: str, path: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        raise TargetError(f"cannot import {path!r}: {error}") from error


def _import_longest_prefix(path: str) -> tuple[ModuleType, list[str]]:
    parts = path.split(".")
    if not all(parts):
        raise TargetError(f"malformed import path {path!r}")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        module = sys.modules.get(name)
        if module is None:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as error:
                missing = error.name or ""
                if missing and not (name == missing or name.startswith(missing + ".")):
                    raise TargetError(f"cannot import {path!r}: {error}") from error
                continue
        return module, parts[end:]
    raise TargetError(f"cannot import {path!r}: no module named {parts[0]!r}")


def _refusal(path: str, allowlist: ImportAllowlist) -> str:
    allowed = ", ".join(repr(p) for p in allowlist.prefixes) or "none"
    return (
        f"refused {path!r}: safe mode allows registered components and the import prefixes "
        f"[{allowed}] only (allow more with --allow-import PREFIX, or trust the file with "
        f"--unsafe)"
    )


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
