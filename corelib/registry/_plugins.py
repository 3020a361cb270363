"""Plugin loading: entry points of group ``corelib.plugins`` into pluggy and the registry.

Each installed plugin is loaded on its own, in a fixed order (entry-point name, then
distribution): a plugin that fails to import or to register is reported and left out while the
others keep working, unless ``CORELIB_STRICT_PLUGINS=1`` makes that fatal. Loading happens once,
on first use of the global plugin manager or registry (see ``_global``), never at
``import corelib``.

Environment: ``CORELIB_DISABLE_PLUGIN_AUTOLOAD=1`` skips discovery, ``CORELIB_BLOCK_PLUGINS=a,b``
blocks plugins by name, ``CORELIB_STRICT_PLUGINS=1`` raises on the first report of a problem.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from itertools import groupby
from typing import TYPE_CHECKING, Any, Literal

import attrs
import pluggy

from corelib._errors import PluginError
from corelib.hooks import PROJECT_NAME, _specs
from corelib.registry._registry import LOCAL_PLUGIN, Registry

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "ENTRY_POINT_GROUP",
    "CorelibPluginManager",
    "PluginReport",
    "autoload_disabled",
]

ENTRY_POINT_GROUP = "corelib.plugins"
_log = logging.getLogger(__name__)
ENV_DISABLE_AUTOLOAD = "CORELIB_DISABLE_PLUGIN_AUTOLOAD"
ENV_BLOCK = "CORELIB_BLOCK_PLUGINS"
ENV_STRICT = "CORELIB_STRICT_PLUGINS"

Status = Literal["loaded", "failed", "blocked", "conflict"]


@attrs.frozen
class PluginReport:
    """How loading one installed plugin (one entry point) went."""

    name: str
    distribution: str | None
    version: str | None
    status: Status
    components: int
    module: str
    error: str | None = None


class CorelibPluginManager(pluggy.PluginManager):
    """pluggy's manager for project ``corelib``, loading entry points into a registry.

    ``add_hookspecs`` may be called again with the same module (a no-op), so plugin code can
    declare its hookspecs wherever it first needs them. ``set_blocked`` before loading keeps a
    plugin from being imported; after loading it unregisters the plugin and its components.
    Registering a plugin object from code calls its ``corelib_register`` right away.
    """

    def __init__(self, registry: Registry) -> None:
        super().__init__(PROJECT_NAME)
        self.registry = registry
        self._hookspec_sources: list[object] = []
        self._origins: dict[str, str] = {}
        self._reports: list[PluginReport] = []
        self._state: Literal["new", "loading", "loaded"] = "new"
        self._strict_error: PluginError | None = None
        self._lock = threading.RLock()
        self.add_hookspecs(_specs)

    # -- pluggy overrides ---------------------------------------------------------------------

    def add_hookspecs(self, module_or_class: Any) -> None:
        """Add the hookspecs in ``module_or_class``; adding the same one twice does nothing."""
        if any(source is module_or_class for source in self._hookspec_sources):
            return
        super().add_hookspecs(module_or_class)
        self._hookspec_sources.append(module_or_class)

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """Register ``plugin`` and run its ``corelib_register`` hook with a bound registry.

        If the hook raises, the plugin and the components it registered are removed again.
        """
        plugin_name = super().register(plugin, name)
        if plugin_name is None:
            return None
        origin = self._origins.get(plugin_name, f"plugin {plugin_name!r} (registered in code)")
        bound = self.registry.bind(plugin_name, origin)
        try:
            for impl in self.hook.corelib_register.get_hookimpls():
                if impl.plugin_name == plugin_name:
                    impl.function(*[{"registry": bound}[arg] for arg in impl.argnames])
        except BaseException:
            self.unregister(name=plugin_name)
            raise
        return plugin_name

    def unregister(self, plugin: Any | None = None, name: str | None = None) -> Any | None:
        """Unregister a plugin (see pluggy) and forget the components it registered."""
        if name is None and plugin is not None:
            name = self.get_name(plugin)
        removed = super().unregister(plugin, name)
        if removed is not None and name is not None:
            self.registry._remove_plugin(name)
        return removed

    def set_blocked(self, name: str) -> None:
        """Block plugin ``name``: it is not loaded, or is unloaded if it already was."""
        super().set_blocked(name)
        self.registry._mark_unavailable(name, PluginError(f"plugin {name!r} is blocked"))
        self._reports = [
            attrs.evolve(r, status="blocked", error=None) if r.name == name else r
            for r in self._reports
        ]

    # -- discovery ----------------------------------------------------------------------------

    def load_plugins(self) -> None:
        """Load the installed plugins, once; later calls return at once (or re-raise strict)."""
        with self._lock:
            if self._state == "new":
                self._state = "loading"
                try:
                    if not autoload_disabled():
                        self._load_entry_points()
                finally:
                    self._state = "loaded"
                self._strict_error = self._strict_failure()
        if self._strict_error is not None:
            raise self._strict_error

    def reports(self) -> list[PluginReport]:
        """One report per installed plugin entry point, in loading order."""
        self.load_plugins()
        counts: dict[str, int] = {}
        for entry in self.registry.entries():
            counts[entry.plugin] = counts.get(entry.plugin, 0) + 1
        return [attrs.evolve(r, components=counts.get(r.name, 0)) for r in self._reports]

    def _load_entry_points(self) -> None:
        for name in os.environ.get(ENV_BLOCK, "").split(","):
            if name.strip():
                self.set_blocked(name.strip())
        for name, same_name in groupby(_installed(), key=lambda c: c.ep.name):
            candidates = list(same_name)
            if len(candidates) > 1:
                self._report_conflict(name, candidates)
            elif self.is_blocked(name):
                self._reports.append(candidates[0].report("blocked"))
            else:
                self._load_entry_point(candidates[0])

    def _load_entry_point(self, candidate: _Candidate) -> None:
        ep = candidate.ep
        origin = f"plugin {ep.name!r} from distribution {candidate.label}"
        stage = "import"
        try:
            if ep.name == LOCAL_PLUGIN:
                raise ValueError(f"the plugin name {LOCAL_PLUGIN!r} is reserved for code")
            plugin = ep.load()
            stage = "register"
            self._origins[ep.name] = origin
            self.register(plugin, name=ep.name)
        except Exception as exc:
            what = "failed to import" if stage == "import" else "failed to register"
            error = PluginError(f"{origin} {what}: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            self.registry._mark_unavailable(ep.name, error)
            _log.warning("%s", error)
            self._reports.append(candidate.report("failed", f"{type(exc).__name__}: {exc}"))
        else:
            self._reports.append(candidate.report("loaded"))

    def _report_conflict(self, name: str, candidates: Sequence[_Candidate]) -> None:
        labels = " and ".join(c.label for c in candidates)
        message = (
            f"plugin name {name!r} is declared by several distributions ({labels}); "
            "none of them was loaded: uninstall all but one"
        )
        self.registry._mark_unavailable(name, PluginError(message))
        _log.warning("%s", message)
        self._reports.extend(c.report("conflict", message) for c in candidates)

    def _strict_failure(self) -> PluginError | None:
        if not _flag(ENV_STRICT):
            return None
        problems = [r for r in self._reports if r.status in ("failed", "conflict")]
        if not problems:
            return None
        listed = "; ".join(f"{r.name} ({r.distribution} {r.version}): {r.error}" for r in problems)
        return PluginError(f"{ENV_STRICT} is set and plugins failed to load: {listed}")


def autoload_disabled() -> bool:
    """Whether ``CORELIB_DISABLE_PLUGIN_AUTOLOAD`` turns plugin discovery off."""
    return _flag(ENV_DISABLE_AUTOLOAD)


def _flag(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in {"1", "true", "yes", "on"}


@attrs.frozen
class _Candidate:
    """An installed entry point with its distribution's name and version (read once)."""

    ep: EntryPoint
    distribution: str | None
    version: str | None

    @property
    def label(self) -> str:
        return f"{self.distribution or '?'} {self.version or '?'}"

    def report(self, status: Status, error: str | None = None) -> PluginReport:
        return PluginReport(
            self.ep.name, self.distribution, self.version, status, 0, self.ep.value, error
        )


def _installed() -> list[_Candidate]:
    """The ``corelib.plugins`` entry points, sorted by name, then distribution."""
    from importlib.metadata import entry_points  # costly to import: only when discovering

    metadata: dict[int, tuple[str | None, str | None]] = {}
    candidates = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        if dist is not None and id(dist) not in metadata:
            fields = dist.metadata  # parsed once per distribution: the costly part
            metadata[id(dist)] = (fields["Name"], fields["Version"])
        name, version = metadata[id(dist)] if dist is not None else (None, None)
        candidates.append(_Candidate(ep, name, version))
    return sorted(candidates, key=lambda c: (c.ep.name, c.distribution or ""))
