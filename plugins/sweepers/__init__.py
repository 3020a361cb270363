"""Sweepers: which jobs a sweep runs (registry group ``sweepers``).

``sweepers/grid`` runs every combination of the swept values; ``sweepers/random`` samples
``n_trials`` assignments; ``sweepers/optuna`` searches with Optuna for the best value of a key of
the jobs' results (extra ``corelib[optuna]``, imported only when that sweeper is built).
Importing this module imports nothing else. The protocol they follow is
:class:`corelib.runs.Sweeper` (docs/plugins.md).
"""

from __future__ import annotations

from typing import Any

from corelib import hookimpl

__all__ = ["corelib_register"]

_SWEEPERS = {
    "grid": "plugins.sweepers.grid:GridSweeper",
    "random": "plugins.sweepers.random_search:RandomSweeper",
    "optuna": "plugins.sweepers.optuna_search:OptunaSweeper",
}


@hookimpl
def corelib_register(registry: Any) -> None:
    """Register the sweepers lazily (as ``"module:attr"`` references)."""
    for name, ref in _SWEEPERS.items():
        registry.register("sweepers", name, ref)
