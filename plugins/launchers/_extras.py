"""What the engines' launchers share besides ``run_job``: importing the engine when the launcher
is built (never before), and quoting the engine's errors on one line."""

from __future__ import annotations

import importlib
from types import ModuleType

from corelib import PluginError

__all__ = ["engine_reason", "import_engine"]


def import_engine(module: str, component: str, engine: str, extra: str) -> ModuleType:
    """Import ``module``; a missing engine is one line naming the extra that installs it:
    ``launchers/ray needs Ray: pip install 'corelib[ray]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PluginError(f"{component} needs {engine}: pip install 'corelib[{extra}]'") from exc


def engine_reason(exc: BaseException, limit: int = 300) -> str:
    """``exc``'s message on one line, at most ``limit`` characters (engines' are long)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
