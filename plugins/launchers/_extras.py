"""Importing a launcher's engine when the launcher is built, never before."""

from __future__ import annotations

import importlib
from types import ModuleType

from corelib import PluginError

__all__ = ["import_engine"]


def import_engine(module: str, component: str, engine: str, extra: str) -> ModuleType:
    """Import ``module``; a missing engine is one line naming the extra that installs it:
    ``launchers/ray needs Ray: pip install 'corelib[ray]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PluginError(f"{component} needs {engine}: pip install 'corelib[{extra}]'") from exc
