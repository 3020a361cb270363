"""The hook specifications corelib itself calls."""

from __future__ import annotations

from typing import Any

from corelib.hooks import hookspec


@hookspec
def corelib_register(registry: Any) -> None:
    """Add components to ``registry`` (lazily: pass ``"module:attr"`` refs, not objects)."""


@hookspec(firstresult=True)
def corelib_resolve_target(target: str) -> Any:
    """Claim a ``_target_`` string of a form of the plugin's own; return the callable or None.

    Asked before the built-in rules (import paths, registry names) for every target string.
    """


@hookspec
def corelib_before_instantiate(node: Any, path: str) -> None:
    """Called before the node at ``path`` is built (observe or validate; raise to refuse)."""


@hookspec
def corelib_after_instantiate(obj: Any, node: Any, path: str) -> None:
    """Called after the node at ``path`` was built into ``obj``."""
