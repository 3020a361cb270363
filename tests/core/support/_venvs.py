"""Real installs for tests: a fresh venv holding corelib (editable, this checkout) and projects.

The venv gets corelib with ``-e`` and each project as a regular install (its package data
copied as a wheel would), all ``--no-deps``; the dependencies (pluggy, attrs, cattrs, PyYAML,
setuptools, torch...) come from the running environment through a ``.pth`` line, the way
``--system-site-packages`` would lend them. :func:`run_installed` runs that venv's ``corelib``
console script as a user would.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def make_venv(root: Path, *projects: Path) -> Path:
    """A venv under ``root`` with corelib and ``projects`` installed; returns its ``bin``."""
    venv_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv_dir], check=True)
    python = venv_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "_outer_site.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    options = ["--no-deps", "--no-build-isolation", "--no-index", "--disable-pip-version-check"]
    subprocess.run([*install, *options, "-e", REPO, *projects], check=True, timeout=240)
    return venv_dir / "bin"


def run_installed(
    venv: Path, *args: str, cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The venv's ``corelib ARGS`` in ``cwd``, with no PYTHON*/CORELIB_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CORELIB_"))}
    return subprocess.run(
        [venv / "corelib", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
