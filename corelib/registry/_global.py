"""The process-wide registry and plugin manager, created on first use.

The global :data:`registry` discovers the installed plugins before its first lookup or listing,
through :func:`get_plugin_manager`; nothing is discovered at ``import corelib``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

from corelib.registry._plugins import CorelibPluginManager
from corelib.registry._registry import Registry

__all__ = ["get_plugin_manager", "isolated", "register", "registry", "reset"]

T = TypeVar("T")


def _discover_plugins() -> None:
    get_plugin_manager()


registry = Registry(discover=_discover_plugins)
"""The global registry; the first lookup or listing loads the installed plugins."""


def register(group: str, name: str) -> Callable[[T], T]:
    """Decorator: register the decorated object as ``local/<name>`` in ``group``."""

    def decorate(obj: T) -> T:
        registry.register(group, name, obj)
        return obj

    return decorate


_manager: CorelibPluginManager | None = None


def get_plugin_manager(*, load: bool = True) -> CorelibPluginManager:
    """The global plugin manager, with the installed plugins loaded (once) unless ``load=False``.

    ``get_plugin_manager(load=False).set_blocked(name)`` blocks a plugin before it is imported.
    """
    global _manager
    if _manager is None:
        _manager = CorelibPluginManager(registry)
    if load:
        _manager.load_plugins()
    return _manager


def reset() -> None:
    """Forget the global manager and empty the global registry (for tests).

    The next lookup discovers the plugins again, reading the environment anew.
    """
    global _manager
    _manager = None
    registry._clear()


@contextlib.contextmanager
def isolated() -> Iterator[Registry]:
    """Run the block with an empty global registry and a new manager; restore both after.

    For tests: what the block registers or blocks stays inside it, and what was registered
    before (e.g. by ``@register`` at import time) is back afterwards.
    """
    global _manager
    saved_manager, saved_registry = _manager, registry._save()
    reset()
    try:
        yield registry
    finally:
        _manager = saved_manager
        registry._restore(saved_registry)
