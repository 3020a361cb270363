"""The repository's main job as a shipped config: ``corelib run examples/reasoning``.

The main job (``examples/reasoning/config.py``) lives in the repository, outside any package, so
only a checkout (an editable install, or ``PYTHONPATH`` at the repository root) has it: there
this plugin registers the file as the config ``examples/reasoning``; an installed wheel carries no
``examples/`` folder, and the plugin registers nothing. Importing this module imports nothing
else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corelib import hookimpl

__all__ = ["MAIN_JOB", "corelib_register"]

MAIN_JOB = Path(__file__).resolve().parents[2] / "examples" / "reasoning" / "config.py"


@hookimpl
def corelib_register(registry: Any) -> None:
    """Register the main job's config, where this checkout has it."""
    if MAIN_JOB.is_file():
        registry.register("configs", "reasoning", MAIN_JOB)
