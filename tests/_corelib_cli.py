"""Running the real ``corelib`` command line in a subprocess, as tests do throughout.

``run_corelib(cwd, *args)`` runs ``python -m corelib ARGS`` in ``cwd`` with this checkout and
``cwd`` on ``PYTHONPATH`` (so configs can name modules written there), without torchrun's
``RANK``/``WORLD_SIZE`` from any outer run, and bounded by ``timeout`` seconds;
``corelib_environment`` is that environment, for tests that start ``corelib`` themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_corelib(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    plugins: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``corelib ARGS`` in ``cwd``; installed plugins are discovered only with ``plugins``."""
    return subprocess.run(
        [sys.executable, "-m", "corelib", *args],
        cwd=cwd,
        env=corelib_environment(cwd, env, plugins=plugins),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def corelib_environment(
    cwd: Path, env: dict[str, str] | None = None, *, plugins: bool = False
) -> dict[str, str]:
    """The environment :func:`run_corelib` gives ``corelib`` (for tests that start it
    themselves, e.g. to send it a signal)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    environment["PYTHONPATH"] = os.pathsep.join([str(cwd), str(REPO)])
    if not plugins:
        environment["CORELIB_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    environment.update(env or {})
    return environment
