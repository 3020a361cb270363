"""Plugin loading: entry points of group ``corelib.plugins`` into pluggy and the registry.

Each installed plugin is loaded on its own, in a fixed order (entry-point name, then
distribution): a plugin that fails to import or to register is reported and left out while the
others keep working, unless ``CORELIB_STRICT_PLUGINS=1`` makes that fatal. Loading happens once,
on first use of the global plugin manager or registry (see ``_global``), never at
``import corelib``.

A plugin cannot take the process down: anything it raises while loading or registering
(``SystemExit`` included; only ``KeyboardInterrupt`` goes through) fails that plugin alone, and a
plugin that fails is fully unregistered: every pluggy plugin and component added while it loaded
is removed again, so none of its hooks ever runs. A hook implementation that raises later is
named by :meth:`CorelibPluginManager.hook_failure`. A ``corelib_*`` hook implementation that no
hookspec knows (a typo) is reported when the reports are read, after every plugin had the chance
to add hookspecs of its own.

Environment: ``CORELIB_DISABLE_PLUGIN_AUTOLOAD=1`` skips discovery, ``CORELIB_BLOCK_PLUGINS=a,b``
blocks plugins by name, ``CORELIB_STRICT_PLUGINS=1`` turns failures, conflicts and unknown
``corelib_*`` hooks into a :class:`PluginError` when the plugins are loaded.
"""

from __future__ import annotations

import difflib
import logging
import os
import threading
from collections.abc import Sequence
from itertools import groupby
from typing import Any, Literal

import attrs
import pluggy

from corelib._errors import PluginError
from corelib._text import describe_exception, printable
from corelib.hooks import PROJECT_NAME, _specs
from corelib.registry._discovery import Candidate, PluginReport, installed
from corelib.registry._registry import LOCAL_PLUGIN, Registry, check_plugin_name

__all__ = ["HOOK_PREFIX", "CorelibPluginManager", "autoload_disabled", "strict_plugins"]

HOOK_PREFIX = "corelib_"
"""Hook implementations named ``corelib_*`` must match a hookspec (others are not corelib's)."""
_log = logging.getLogger(__name__)
ENV_DISABLE_AUTOLOAD = "CORELIB_DISABLE_PLUGIN_AUTOLOAD"
ENV_BLOCK = "CORELIB_BLOCK_PLUGINS"
ENV_STRICT = "CORELIB_STRICT_PLUGINS"


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
        self._distributions: dict[str, str] = {}
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

        If that raises (or the name is not a valid plugin name), the plugin and the components
        it registered are removed again before the exception goes on.
        """
        plugin_name = super().register(plugin, name)
        if plugin_name is None:
            return None
        try:
            bound = self.registry.bind(plugin_name, self._origin(plugin_name))
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
        """Load the installed plugins, once; later calls return at once.

        Under ``CORELIB_STRICT_PLUGINS=1`` every call raises the :class:`PluginError` that lists
        the failed, conflicting and unknown-hook plugins, if there are any.
        """
        self._load_once()
        if self._strict_error is not None:
            raise self._strict_error

    def reports(self) -> list[PluginReport]:
        """One report per installed plugin entry point, in loading order (never raises strict).

        Unknown ``corelib_*`` hooks are looked for now, so hookspecs that plugins added after
        loading count too.
        """
        self._load_once()
        counts = self.registry._plugin_sizes()
        unknown = self._unknown_hooks()
        reports = []
        for report in self._reports:
            report = attrs.evolve(report, components=counts.get(report.name, 0))
            if report.status == "loaded" and report.name in unknown:
                report = attrs.evolve(report, status="warning", warning=unknown[report.name])
            reports.append(report)
        return reports

    def hook_failure(self, hook_name: str, error: BaseException) -> str:
        """Say which plugin's ``hook_name`` implementation raised ``error``, and what.

        E.g. ``plugin 'acme' (acme-dist 1.0) hook corelib_resolve_target raised ValueError: bad;
        to run without it: --block-plugin acme``. The plugin is the one whose implementation is
        innermost in the traceback, so a wrapper that lets an error through is not blamed.
        """
        caller = getattr(self.hook, hook_name, None)
        impls = caller.get_hookimpls() if caller is not None else []
        culprit = _innermost_implementation(impls, error)
        raised = f"hook {hook_name} raised {describe_exception(error)}"
        if culprit is None:
            names = ", ".join(sorted({repr(impl.plugin_name) for impl in impls})) or "none"
            return f"a plugin's {raised} (plugins implementing it: {names})"
        label = self._distributions.get(culprit)
        if label is None:
            return f"plugin {culprit!r} (registered in code) {raised}"
        return f"plugin {culprit!r} ({label}) {raised}; to run without it: --block-plugin {culprit}"

    def _load_once(self) -> None:
        with self._lock:
            if self._state == "new":
                self._state = "loading"
                try:
                    if not autoload_disabled():
                        self._load_entry_points()
                finally:
                    self._state = "loaded"
                self._strict_error = self._strict_failure()

    def _load_entry_points(self) -> None:
        for name in os.environ.get(ENV_BLOCK, "").split(","):
            if name.strip():
                self.set_blocked(name.strip())
        found, unreadable = installed()
        for report in unreadable:
            _log.warning("%s", printable(f"{report.name}: {report.error}"))
            self._reports.append(report)
        for name, same_name in groupby(found, key=lambda c: c.ep.name):
            candidates = list(same_name)
            if len(candidates) > 1:
                self._report_conflict(name, candidates)
            elif self.is_blocked(name):
                self._reports.append(candidates[0].report("blocked"))
            else:
                self._load_entry_point(candidates[0])

    def _load_entry_point(self, candidate: Candidate) -> None:
        ep = candidate.ep
        self._distributions[ep.name] = candidate.label
        before = self._snapshot()
        stage = "import"
        try:
            check_plugin_name(ep.name)
            if ep.name == LOCAL_PLUGIN:
                raise ValueError(f"the plugin name {LOCAL_PLUGIN!r} is reserved for code")
            plugin = ep.load()
            stage = "register"
            self.register(plugin, name=ep.name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: one plugin must not end the process
            self._roll_back(before)
            reason = describe_exception(exc)
            what = "failed to import" if stage == "import" else "failed to register"
            error = PluginError(f"{self._origin(ep.name)} {what}: {reason}")
            error.__cause__ = exc
            self.registry._mark_unavailable(ep.name, error)
            _log.warning("%s", printable(str(error)))
            self._reports.append(candidate.report("failed", reason))
        else:
            self._reports.append(candidate.report("loaded"))

    def _snapshot(self) -> tuple[set[str], set[str]]:
        """The registered plugin names and component names, to roll a failed plugin back to."""
        plugins = {name for name, plugin in self.list_name_plugin() if plugin is not None}
        return plugins, self.registry._names()

    def _roll_back(self, snapshot: tuple[set[str], set[str]]) -> None:
        """Unregister every plugin object and component added since ``snapshot``.

        A failing entry module may have registered helper objects (with hooks of their own) or
        components in code before it raised: none of it may stay.
        """
        plugins, components = snapshot
        for name, plugin in self.list_name_plugin():
            if plugin is not None and name not in plugins:
                self.unregister(name=name)
        self.registry._forget(self.registry._names() - components)

    def _origin(self, name: str) -> str:
        label = self._distributions.get(name)
        if label is None:
            return f"plugin {name!r} (registered in code)"
        return f"plugin {name!r} from distribution {label}"

    def _report_conflict(self, name: str, candidates: Sequence[Candidate]) -> None:
        labels = " and ".join(c.label for c in candidates)
        message = (
            f"plugin name {name!r} is declared by several distributions ({labels}); "
            "none of them was loaded: uninstall all but one"
        )
        self.registry._mark_unavailable(name, PluginError(message))
        _log.warning("%s", printable(message))
        self._reports.extend(c.report("conflict", message) for c in candidates)

    def _unknown_hooks(self) -> dict[str, str]:
        """Plugin name -> what it implements under a ``corelib_*`` name no hookspec declares.

        pluggy's ``check_pending`` does the same for every name and stops at the first; corelib
        looks only at its own prefix (other names may be specs a plugin adds later) and
        collects them all, with close matches among the known hooks.
        """
        callers = {name: c for name, c in vars(self.hook).items() if not name.startswith("_")}
        known = sorted(name for name, caller in callers.items() if caller.has_spec())
        unknown: dict[str, list[str]] = {}
        for name, caller in sorted(callers.items()):
            if not name.startswith(HOOK_PREFIX) or caller.has_spec():
                continue
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            for impl in caller.get_hookimpls():
                if not impl.optionalhook:
                    unknown.setdefault(impl.plugin_name, []).append(name + hint)
        return {
            plugin: f"unknown hook {', '.join(names)}: no hookspec declares it, so it never runs"
            for plugin, names in unknown.items()
        }

    def _strict_failure(self) -> PluginError | None:
        if not strict_plugins():
            return None
        problems = [
            f"{r.name} ({r.distribution or '?'} {r.version or '?'}): {r.error}"
            for r in self._reports
            if r.status in ("failed", "conflict")
        ]
        problems += [f"{name}: {warning}" for name, warning in self._unknown_hooks().items()]
        if not problems:
            return None
        listed = "; ".join(problems)
        return PluginError(f"{ENV_STRICT} is set and plugins have problems: {listed}")


def autoload_disabled() -> bool:
    """Whether ``CORELIB_DISABLE_PLUGIN_AUTOLOAD`` turns plugin discovery off."""
    return _flag(ENV_DISABLE_AUTOLOAD)


def strict_plugins() -> bool:
    """Whether ``CORELIB_STRICT_PLUGINS`` makes plugin problems errors."""
    return _flag(ENV_STRICT)


def _flag(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in {"1", "true", "yes", "on"}


def _innermost_implementation(impls: Sequence[Any], error: BaseException) -> str | None:
    """The plugin whose implementation is the innermost frame of ``error``'s traceback.

    Falls back to the only plugin implementing the hook when no frame is one of them (a
    callable without Python code, say).
    """
    by_code: dict[object, str] = {}
    for impl in impls:
        try:
            by_code[impl.function.__code__] = impl.plugin_name
        except Exception:  # a builtin or a callable object: no code to match
            continue
    culprit = None
    frame = error.__traceback__
    while frame is not None:
        culprit = by_code.get(frame.tb_frame.f_code, culprit)
        frame = frame.tb_next
    if culprit is None and len({impl.plugin_name for impl in impls}) == 1:
        culprit = impls[0].plugin_name
    return culprit
