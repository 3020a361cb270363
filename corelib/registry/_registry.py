"""The component registry: names (``plugin/name``) mapped to objects or lazy ``module:attr`` refs.

A component is registered under a group (``trainers``, ``models``, ...) and a name, on behalf of
a plugin; its qualified name ``<plugin>/<name>`` is unique across groups. Lookups accept the
qualified name or, where it is unique, the short name. Registering a ref never imports it: the
module is imported by :meth:`Entry.load`, on first use.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from corelib._errors import PluginError, RegistryError, quote
from corelib._text import describe_exception

__all__ = ["KINDS", "LOCAL_PLUGIN", "Entry", "PluginRegistrar", "Registry", "check_plugin_name"]

LOCAL_PLUGIN = "local"
"""The plugin that registrations made in code (outside any plugin) belong to."""
KINDS = (
    "trainers",
    "strategies",
    "callbacks",
    "models",
    "datasets",
    "llms",
    "prompt_generators",
    "verifiers",
    "aggregators",
    "resolvers",
    "configs",
    "sweepers",
    "launchers",
)
"""The kinds of component every installation knows (listed even when empty); plugins add more."""


@attrs.frozen
class Entry:
    """One registered component; ``ref`` is its ``"module:attr"`` string, or None for an object."""

    group: str
    name: str
    plugin: str
    ref: str | None
    _obj: object = attrs.field(default=None, repr=False, eq=False, alias="obj")
    qualified_name: str = attrs.field(init=False)

    @qualified_name.default
    def _qualify(self) -> str:
        return f"{self.plugin}/{self.name}"

    @property
    def target(self) -> str:
        """Where the component lives: its ref, a path, or the object's ``module:qualname``."""
        if self.ref is not None:
            return self.ref
        if isinstance(self._obj, os.PathLike):  # a config file (group "configs")
            return os.fspath(self._obj)
        module = getattr(self._obj, "__module__", None) or "?"
        qualname = getattr(self._obj, "__qualname__", None) or type(self._obj).__qualname__
        return f"{module}:{qualname}"

    def load(self) -> object:
        """Return the component, importing its module first if it was registered by ref."""
        if self.ref is None:
            return self._obj
        module_name, _, attr_path = self.ref.partition(":")
        try:
            obj: object = importlib.import_module(module_name)
            for attr in attr_path.split("."):
                obj = getattr(obj, attr)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: a component must not end the process
            raise RegistryError(
                f"component {self.qualified_name!r} (group {self.group!r}) could not be "
                f"loaded from {self.ref!r}: {describe_exception(exc)}"
            ) from exc
        return obj


class Registry:
    """Components by group and name; see the module docstring for the naming rules.

    ``discover`` is called before the first lookup or listing (the global registry uses it to
    load the installed plugins); registering never triggers it.
    """

    def __init__(self, discover: Callable[[], None] | None = None) -> None:
        self._discover = discover
        self._discovered = discover is None
        self._entries: dict[str, Entry] = {}
        self._by_short_name: dict[str, list[str]] = {}
        self._origins: dict[str, str] = {}
        self._unavailable: dict[str, PluginError] = {}

    # -- registration -------------------------------------------------------------------------

    def register(
        self, group: str, name: str, obj_or_ref: object, *, plugin: str = LOCAL_PLUGIN
    ) -> None:
        """Register ``obj_or_ref`` (an object, or a ``"module:attr"`` ref) as ``plugin/name``.

        Registering the very same object or ref again is a no-op; anything else under a taken
        qualified name is a :class:`RegistryError` naming both registrations and their origins.
        """
        self._register(group, name, obj_or_ref, plugin=plugin, origin=None)

    def _register(
        self, group: str, name: str, obj_or_ref: object, *, plugin: str, origin: str | None
    ) -> None:
        _check_identifier("group", group)
        _check_identifier("name", name)
        check_plugin_name(plugin)
        ref = _check_ref(obj_or_ref) if isinstance(obj_or_ref, str) else None
        entry = Entry(group, name, plugin, ref, obj=None if ref is not None else obj_or_ref)
        if origin is None:
            origin = _default_origin(entry)
        existing = self._entries.get(entry.qualified_name)
        if existing is not None:
            if existing.group == group and _same_component(existing, entry):
                return
            first_origin = self._origins[existing.qualified_name]
            raise RegistryError(
                f"{entry.qualified_name!r} is registered twice: first in group "
                f"{existing.group!r} as {existing.target!r} by {first_origin}, "
                f"then in group {group!r} as {entry.target!r} by {origin}"
            )
        self._entries[entry.qualified_name] = entry
        self._by_short_name.setdefault(name, []).append(entry.qualified_name)
        self._origins[entry.qualified_name] = origin

    def bind(self, plugin: str, origin: str) -> PluginRegistrar:
        """A view whose ``register`` files components under ``plugin``.

        ``origin`` says where they come from in error messages (plugin and distribution).
        """
        check_plugin_name(plugin)
        return PluginRegistrar(self, plugin, origin)

    # -- lookups ------------------------------------------------------------------------------

    def get(self, name: str) -> object:
        """Return the component called ``name`` (qualified or unique short), importing it."""
        return self.entry(name).load()

    def entry(self, name: str) -> Entry:
        """Return the :class:`Entry` called ``name`` without importing the component."""
        self._ensure_discovered()
        plugin, slash, _ = name.partition("/")
        if slash:
            entry = self._entries.get(name)
            if entry is not None:
                return entry
            if plugin in self._unavailable:
                failure = self._unavailable[plugin]
                raise PluginError(f"{quote(name)} is unavailable: {failure}") from failure.__cause__
            raise self._unknown(name)
        candidates = self._by_short_name.get(name, [])
        if len(candidates) == 1:
            return self._entries[candidates[0]]
        if candidates:
            listed = ", ".join(repr(c) for c in sorted(candidates))
            raise RegistryError(
                f"short name {quote(name)} is ambiguous: use one of the qualified names {listed}"
            )
        if self._unavailable:
            failures = "; ".join(str(err) for err in self._unavailable.values())
            first = next(iter(self._unavailable.values()))
            raise PluginError(
                f"{self._unknown(name)} (it may belong to an unavailable plugin: {failures})"
            ) from first.__cause__
        raise self._unknown(name)

    def entries(self, group: str | None = None) -> list[Entry]:
        """All entries (or those of ``group``), sorted by group, then qualified name."""
        self._ensure_discovered()
        if group is not None and group not in KINDS and group not in self.groups():
            known = sorted({*KINDS, *self.groups()})
            raise RegistryError(
                f"unknown group {group!r}{_suggest(group, known)}; known groups: {', '.join(known)}"
            )
        selected = (e for e in self._entries.values() if group is None or e.group == group)
        return sorted(selected, key=lambda e: (e.group, e.qualified_name))

    def groups(self) -> list[str]:
        """The groups that hold at least one component, sorted."""
        self._ensure_discovered()
        return sorted({entry.group for entry in self._entries.values()})

    def origin(self, qualified_name: str) -> str:
        """Who registered ``qualified_name`` (plugin and distribution, or the code module)."""
        return self._origins[qualified_name]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.entry(name)
        except RegistryError:
            return False
        return True

    def __len__(self) -> int:
        self._ensure_discovered()
        return len(self._entries)

    def _unknown(self, name: str) -> RegistryError:
        known = [*self._entries, *self._by_short_name]
        suggestion = _suggest(name, known)
        return RegistryError(f"no component named {quote(name)} in the registry{suggestion}")

    def _ensure_discovered(self) -> None:
        if not self._discovered and self._discover is not None:
            self._discover()
            self._discovered = True

    # -- plugin bookkeeping (used by the plugin manager) ----------------------------------------

    def _remove_plugin(self, plugin: str) -> None:
        """Forget every component of ``plugin`` (it failed half-way or was blocked)."""
        self._forget([q for q, e in self._entries.items() if e.plugin == plugin])

    def _forget(self, qualified_names: Iterable[str]) -> None:
        """Forget the components called ``qualified_names``."""
        for qualified_name in qualified_names:
            entry = self._entries.pop(qualified_name)
            del self._origins[qualified_name]
            self._by_short_name[entry.name].remove(qualified_name)
            if not self._by_short_name[entry.name]:
                del self._by_short_name[entry.name]

    def _names(self) -> set[str]:
        """The qualified names registered now (no discovery)."""
        return set(self._entries)

    def _plugin_sizes(self) -> dict[str, int]:
        """How many components each plugin registered (no discovery)."""
        sizes: dict[str, int] = {}
        for entry in self._entries.values():
            sizes[entry.plugin] = sizes.get(entry.plugin, 0) + 1
        return sizes

    def _mark_unavailable(self, plugin: str, error: PluginError) -> None:
        """Make lookups of ``plugin/...`` raise ``error`` instead of "unknown name"."""
        self._remove_plugin(plugin)
        self._unavailable[plugin] = error

    def _clear(self) -> None:
        """Forget everything and re-arm discovery (for tests; see ``corelib.registry.reset``)."""
        self._restore(({}, {}, {}, {}, self._discover is None))

    def _save(self) -> tuple[Any, ...]:
        """A copy of the whole state, for :meth:`_restore` (tests)."""
        by_short_name = {name: list(names) for name, names in self._by_short_name.items()}
        state = (self._entries, by_short_name, self._origins, self._unavailable)
        return (*(dict(part) for part in state), self._discovered)

    def _restore(self, saved: tuple[Any, ...]) -> None:
        (self._entries, self._by_short_name, self._origins, self._unavailable) = saved[:4]
        self._discovered = saved[4]


@attrs.frozen
class PluginRegistrar:
    """What a plugin's ``corelib_register`` hook receives: the registry, bound to that plugin."""

    _registry: Registry
    plugin: str
    origin: str

    def register(self, group: str, name: str, obj_or_ref: object) -> None:
        """Register ``obj_or_ref`` as ``<plugin>/<name>`` in ``group`` (see Registry.register)."""
        self._registry._register(group, name, obj_or_ref, plugin=self.plugin, origin=self.origin)


def _default_origin(entry: Entry) -> str:
    if entry.plugin == LOCAL_PLUGIN:
        return f"plugin {LOCAL_PLUGIN!r} (code in {entry.target.partition(':')[0]})"
    return f"plugin {entry.plugin!r}"


def _same_component(a: Entry, b: Entry) -> bool:
    return a.ref == b.ref if a.ref is not None else a._obj is b._obj


_NAME = re.compile(r"[^/.:\s]+")
_PLUGIN_NAME = re.compile(r"[^/:\s]+")


def _check_identifier(kind: str, value: object) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise RegistryError(
            f"invalid component {kind} {value!r}: expected a non-empty string without "
            "'/', '.', ':' or whitespace"
        )


def check_plugin_name(plugin: object) -> None:
    """Raise a :class:`RegistryError` unless ``plugin`` is a usable plugin name."""
    if not isinstance(plugin, str) or not _PLUGIN_NAME.fullmatch(plugin):
        raise RegistryError(
            f"invalid plugin name {plugin!r}: expected a non-empty string without "
            "'/', ':' or whitespace"
        )


def _check_ref(ref: str) -> str:
    module, colon, attr = ref.partition(":")
    if not colon or not module or not attr or ":" in attr:
        raise RegistryError(f"invalid ref {ref!r}: expected 'package.module:attribute'")
    return ref


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, sorted(set(known)), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
