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

from corelib._errors import quote
from corelib.registry._denylist import denied_name, denied_object

__all__ = [
    "ImportAllowlist",
    "TargetError",
    "import_object",
    "import_path_of",
    "is_registry_name",
    "module_of",
    "real_name",
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


def real_name(obj: Any) -> str:
    """Where ``obj`` is really defined: ``module.qualname``, or the module alone for modules and
    objects without a qualified name."""
    qualname = None if isinstance(obj, ModuleType) else getattr(obj, "__qualname__", None)
    module = module_of(obj)
    return f"{module}.{qualname}" if isinstance(qualname, str) else module


def import_path_of(obj: Any) -> str:
    """The dotted import path that loads back ``obj`` (``"my_app.Trainer"``).

    Raises :class:`TargetError` for objects that cannot be imported by name (lambdas, local
    classes and functions, instances).
    """
    qualname = getattr(obj, "__qualname__", None)
    module = getattr(obj, "__module__", None)
    if not isinstance(qualname, str) or not isinstance(module, str):
        raise TargetError(
            f"{quote(obj)} has no importable name (not a module-level class or function)"
        )
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise TargetError(
            f"{quote(obj)} is a lambda or a local object and cannot be imported by name"
        )
    name = getattr(obj, "__name__", None)
    candidates = [f"{module}.{qualname}"]
    if isinstance(name, str) and name != qualname:  # e.g. builtins exposed on a module
        candidates.append(f"{module}.{name}")
    problems = []
    for path in candidates:
        try:
            if import_object(path) is obj:
                return path
            problems.append(f"{quote(path)} loads another object")
        except TargetError as error:
            problems.append(str(error))
    raise TargetError(f"{quote(obj)} is not importable by name: {'; '.join(problems)}")


class ImportAllowlist:
    """The import prefixes an untrusted config may reach, besides registered components.

    A prefix allows itself and its submodules on dotted boundaries (``"torch.optim"`` allows
    ``"torch.optim.adamw"``, not ``"torch.optimx"``). Three rules refuse a target, each named in
    the refusal: "not allowed" (the spelled path, a module or attribute reached on the way, or
    the resolved object's real module is outside every prefix), "private name" (a dotted segment
    starts with ``_``, unless the exact path is allowed) and "denied" (the deny list, whatever
    the prefix).
    """

    __slots__ = ("prefixes",)

    def __init__(self, prefixes: Iterable[str] = ()) -> None:
        if isinstance(prefixes, str):
            prefixes = (prefixes,)
        self.prefixes = tuple(p.strip().rstrip(".") for p in prefixes if p.strip())

    def allows(self, dotted: str) -> bool:
        return any(dotted == p or dotted.startswith(p + ".") for p in self.prefixes)

    def refuse_spelling(self, path: str) -> str | None:
        """Why the spelled ``path`` is refused before anything is imported; None if it is not."""
        dotted = _spelled_module(path)
        reasons = []
        entry = denied_name(dotted)
        if entry is not None:
            reasons.append(_denied(entry))
        private = [s for s in dotted.split(".") if s.startswith("_")]
        if private and dotted not in self.prefixes:
            reasons.append(
                f"private name (the segment {quote(private[0])} starts with '_'; only a path "
                "allowed exactly reaches a private name)"
            )
        if not self.allows(dotted):
            hint = (
                ""
                if reasons
                else "; allow more with --allow-import PREFIX, or trust the file with --unsafe"
            )
            reasons.append(
                "not allowed (safe mode allows registered components and the import prefixes "
                f"{self._shown()} only{hint})"
            )
        return f"refused {quote(path)}: {'; and '.join(reasons)}" if reasons else None

    def refuse_object(self, obj: Any, spelled: str) -> str | None:
        """Why the resolved ``obj`` is refused: denied, or its real module is not allowed."""
        reason = self.denied_reason(obj) or self.outside_reason(obj)
        return None if reason is None else f"refused {quote(spelled)}: {reason}"

    def denied_reason(self, obj: Any) -> str | None:
        """The "denied (...)" reason when ``obj`` is on the deny list (real name or identity)."""
        entry = denied_object(obj, real_name(obj))
        return None if entry is None else _denied(entry)

    def outside_reason(self, obj: Any) -> str | None:
        """The "not allowed (...)" reason when the real module of ``obj`` is outside the list."""
        module = module_of(obj)
        if self.allows(module):
            return None
        return (
            f"not allowed (it reaches {quote(obj, 80)} defined in module {quote(module)}, "
            f"outside the allowed import prefixes {self._shown()}; to reach it, allow the "
            f"prefix {quote(module.partition('.')[0])} too, if you trust that package)"
        )

    def _shown(self) -> str:
        return quote(list(self.prefixes), 400)

    def __repr__(self) -> str:
        return f"ImportAllowlist({list(self.prefixes)!r})"


def _denied(entry: str) -> str:
    return (
        f"denied (on the deny list as {entry!r}: it can load code or pickles, run commands or "
        "evaluate strings, so no allowed prefix reaches it; build a file you trust with --unsafe)"
    )


def _spelled_module(path: str) -> str:
    return path.replace(":", ".")


def import_object(path: str, allowlist: ImportAllowlist | None = None) -> Any:
    """Import ``"pkg.mod.Name"`` or ``"pkg.mod:Name.attr"``.

    With an allowlist, the spelled path is checked before anything is imported (see
    :class:`ImportAllowlist`), then the module, every attribute reached on the way and the
    resolved object: a module reached under another name (``os.path`` is ``posixpath``) is
    judged by its real name like everything else.
    """
    if allowlist is not None:
        _refuse(allowlist.refuse_spelling(path))
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
        attrs = attr_path.split(".")
        if not all(module_name.split(".")) or not all(attrs) or ":" in attr_path:
            raise TargetError(f"malformed import path {quote(path)}; expected 'pkg.mod:Name'")
        module = _import_module(module_name, path)
    else:
        module, attrs = _import_longest_prefix(path)
    obj: Any = module
    for index, attr in enumerate(attrs):
        if allowlist is not None:  # the module and every attribute on the way
            outside = allowlist.outside_reason(obj)
            if outside is not None:  # an alias: say so too when it leads to a denied object
                aliased = _peek(obj, attrs[index:])
                denied = None if aliased is None else allowlist.denied_reason(aliased)
                reasons = [denied, outside] if denied else [outside]
                raise TargetError(f"refused {quote(path)}: {'; and '.join(reasons)}")
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            owner = ".".join([module.__name__, *attrs[:index]])
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise TargetError(
                f"cannot import {quote(path)}: {quote(owner)} has no attribute {quote(attr)}"
                + _did_you_mean(attr, names)
            ) from None
    if allowlist is not None:  # the object itself: denied (it names the alias), then its module
        _refuse(allowlist.refuse_object(obj, path))
    return obj


def _peek(obj: Any, attrs: list[str]) -> Any:
    """The object ``attrs`` lead to from ``obj`` through module namespaces only (no import, no
    module ``__getattr__``); None where the path leaves modules or leads nowhere."""
    for attr in attrs:
        if not isinstance(obj, ModuleType):
            return None
        obj = vars(obj).get(attr)
    return obj


def _refuse(refusal: str | None) -> None:
    if refusal:
        raise TargetError(refusal)


def _import_module(name: str, path: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        raise TargetError(_not_found(path, error)) from error


def _import_longest_prefix(path: str) -> tuple[ModuleType, list[str]]:
    parts = path.split(".")
    if not all(parts):
        raise TargetError(f"malformed import path {quote(path)}")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        module = sys.modules.get(name)
        if module is None:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as error:
                missing = error.name or ""
                if missing and not (name == missing or name.startswith(missing + ".")):
                    raise TargetError(_not_found(path, error)) from error
                continue
        return module, parts[end:]
    raise TargetError(f"cannot import {quote(path)}: no module named {quote(parts[0])}")


def _not_found(path: str, error: ModuleNotFoundError) -> str:
    return f"cannot import {quote(path)}: no module named {quote(error.name)}"


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
