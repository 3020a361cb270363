"""The greeter plugin's entry module: light (corelib and the standard library only).

corelib imports this module to list the plugin; the component module ``greeter`` is imported
only when a config (or ``corelib describe``) uses the component.
"""

from __future__ import annotations

from typing import Any

from corelib import hookimpl


@hookimpl
def corelib_register(registry: Any) -> None:
    """Register the components by lazy ``"module:attr"`` refs."""
    registry.register("examples", "greeter", "corelib_greeter.greeter:Greeter")
