"""Per-call target resolution: hooks first, then registry names and import paths; safe mode."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from corelib._errors import PluginError, RegistryError, quote
from corelib._typing import parameter_types
from corelib.registry._global import get_plugin_manager, registry
from corelib.registry._targets import (
    ImportAllowlist,
    TargetError,
    import_object,
    is_registry_name,
    module_of,
)

__all__ = ["Allow", "TargetResolver", "make_allowlist"]

Allow = Iterable[str] | str | None
# import path -> (module name, module object, its attribute named first or None, that
# attribute's value, the object the path names): enough to notice a reload cheaply.
_imported: dict[str, tuple[str, ModuleType, str | None, Any, Any]] = {}
_MISSING = object()


def make_allowlist(allow: Allow) -> ImportAllowlist | None:
    """``None`` means unrestricted; otherwise the import prefixes safe mode accepts."""
    if allow is None or isinstance(allow, ImportAllowlist):
        return allow
    return ImportAllowlist(allow)


class TargetResolver:
    """Resolves ``_target_`` values for one build or check, caching what it resolved.

    ``corelib_resolve_target`` hooks are asked first for every string; registry names go to the
    registry; import paths are imported (process-wide cache when unrestricted). With an
    allowlist, anything neither registered nor under an allowed prefix is refused.
    """

    def __init__(self, allowlist: ImportAllowlist | None) -> None:
        self.allowlist = allowlist
        hook = get_plugin_manager().hook.corelib_resolve_target
        self._hook = hook if hook.get_hookimpls() else None
        self._resolved: dict[str, Any] = {}
        self.typed_targets: dict[Any, tuple[Any, dict[str, Any]]] = {}
        self._registered_targets: set[str] | None = None

    def resolve(self, spec: Any) -> Any:
        """Return the callable ``spec`` names, or raise TargetError / RegistryError."""
        if isinstance(spec, str):
            obj = self._resolved.get(spec)
            if obj is None:
                obj = self._resolve_string(spec)
                self._resolved[spec] = obj
        elif callable(spec):
            obj = spec
            if self.allowlist is not None:
                name = getattr(spec, "__qualname__", type(spec).__qualname__)
                self._check_object(obj, f"{module_of(spec)}.{name}")
        else:
            raise TargetError(
                f"_target_ must be a callable or a target string, got {type(spec).__name__} "
                f"{quote(spec)}"
            )
        if not callable(obj):
            raise TargetError(f"{quote(spec)} resolved to {quote(obj)}, which is not callable")
        return obj

    def resolve_with_types(self, spec: Any) -> tuple[Any, dict[str, Any]]:
        """The callable ``spec`` names and its checkable parameter types (cached per spec)."""
        key = spec if isinstance(spec, str) else id(spec)
        hit = self.typed_targets.get(key)
        if hit is None:
            target = self.resolve(spec)
            hit = (target, parameter_types(target))
            if isinstance(spec, str):
                self.typed_targets[key] = hit
        return hit

    def resolve_object(self, path: str) -> Any:
        """Resolve an ``_import_`` reference (any object, callable or not)."""
        if self.allowlist is None:
            return _import_cached(path)
        try:
            return import_object(path, self.allowlist)
        except TargetError:  # a registered path is trusted as installed, whatever the rules
            if self._is_registered_path(path):
                return _import_cached(path)
            raise

    def _resolve_string(self, spec: str) -> Any:
        if self._hook is not None:
            try:
                claimed = self._hook(target=spec)
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # a plugin's bug, named: not the config's
                failure = get_plugin_manager().hook_failure("corelib_resolve_target", error)
                raise PluginError(failure) from error
            if claimed is not None:
                if self.allowlist is not None:
                    self._check_object(claimed, spec)
                return claimed
        if is_registry_name(spec):
            return registry.get(spec)
        return self.resolve_object(spec)

    def _registered(self) -> set[str]:
        if self._registered_targets is None:
            targets = {entry.target for entry in registry.entries()}
            self._registered_targets = targets | {t.replace(":", ".") for t in targets}
        return self._registered_targets

    def _is_registered_path(self, path: str) -> bool:
        try:
            return path in self._registered()
        except RegistryError:
            return False

    def _check_object(self, obj: Any, spelled: str) -> None:
        """A callable given in the tree, or claimed by a hook: registered, or allowed and not
        denied (the same rules as an import path, applied to the object's real name)."""
        assert self.allowlist is not None
        qualname = getattr(obj, "__qualname__", None)
        if isinstance(qualname, str) and self._is_registered_path(f"{module_of(obj)}:{qualname}"):
            return
        refusal = self.allowlist.refuse_object(obj, spelled)
        if refusal is not None:
            raise TargetError(refusal)


def _import_cached(path: str) -> Any:
    """``import_object(path)``, cached process-wide until the module is reloaded or replaced.

    A hit is only trusted while ``sys.modules`` still holds the same module object and that
    module's first attribute on the path is still the same object: ``importlib.reload``
    rebinds the module's names, and re-importing replaces the module in ``sys.modules``.
    """
    hit = _imported.get(path)
    if hit is not None:
        module_name, module, attr, attr_value, obj = hit
        if sys.modules.get(module_name) is module and (
            attr is None or module.__dict__.get(attr, _MISSING) is attr_value
        ):
            return obj
    obj = import_object(path)
    owner = _owner(path)
    if owner is not None:
        module_name, attr = owner
        module = sys.modules[module_name]
        attr_value = None if attr is None else module.__dict__.get(attr, _MISSING)
        _imported[path] = (module_name, module, attr, attr_value, obj)
    return obj


def _owner(path: str) -> tuple[str, str | None] | None:
    """The module (now in ``sys.modules``) an imported ``path`` was found in, and the attribute
    of it that the path names first (None for the module itself)."""
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
        return (module_name, attr_path.split(".")[0]) if module_name in sys.modules else None
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        module_name = ".".join(parts[:end])
        if module_name in sys.modules:
            return module_name, parts[end] if end < len(parts) else None
    return None
