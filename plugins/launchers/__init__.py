"""Launchers: where the jobs of a sweep run (registry group ``launchers``).

``launchers/local`` runs them as processes on this machine (``--jobs N`` at once);
``launchers/submitit`` sends them to SLURM through submitit (extra ``corelib[submitit]``);
``launchers/ray`` runs them as Ray tasks (extra ``corelib[ray]``). Each engine is imported only
when its launcher is built; importing this module imports nothing else. The protocol they follow
is :class:`corelib.runs.Launcher` (docs/plugins.md).
"""

from __future__ import annotations

from typing import Any

from corelib import hookimpl

__all__ = ["corelib_register"]

_LAUNCHERS = {
    "local": "plugins.launchers.local:LocalLauncher",
    "submitit": "plugins.launchers.submitit_engine:SubmititLauncher",
    "ray": "plugins.launchers.ray_engine:RayLauncher",
}


@hookimpl
def corelib_register(registry: Any) -> None:
    """Register the launchers lazily (as ``"module:attr"`` references)."""
    for name, ref in _LAUNCHERS.items():
        registry.register("launchers", name, ref)
