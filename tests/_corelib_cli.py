"""Running the real ``corelib`` command line in a subprocess, as tests do throughout.

``run_corelib(cwd, *args)`` runs ``python -m corelib ARGS`` in ``cwd`` with this checkout and
``cwd`` on ``PYTHONPATH`` (so configs can name modules written there), without torchrun's
``RANK``/``WORLD_SIZE`` from any outer run, and bounded by ``timeout`` seconds.
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
    environment = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    environment["PYTHONPATH"] = os.pathsep.join([str(cwd), str(REPO)])
    if not plugins:
        environment["CORELIB_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "corelib", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
