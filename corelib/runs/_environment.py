"""What ``run.json`` and ``plugins.json`` say: where, when, with what a run ran.

Versions come from the installed distributions' metadata (``importlib.metadata``): nothing is
imported to learn a version. The git commit is that of the working directory's repository.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

import attrs

from corelib.registry import get_plugin_manager
from corelib.runs._record import RunRecord

__all__ = ["now", "plugins_report", "run_info"]

KEY_LIBRARIES: Final = (
    "attrs",
    "cattrs",
    "pluggy",
    "PyYAML",
    "numpy",
    "torch",
    "transformers",
    "submitit",
    "ray",
    "optuna",
)
"""The libraries whose versions a record lists when they are installed."""

_GIT_TIMEOUT_S: Final = 10.0


def now() -> str:
    """The time now, ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def run_info(record: RunRecord, started: str) -> dict[str, Any]:
    """The content of ``run.json``."""
    info: dict[str, Any] = {
        "argv": list(record.argv),
        "config": record.config_path,
        "overrides": list(record.overrides),
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": started,
        "python_executable": sys.executable,
        "versions": _versions(),
    }
    git = _git(os.getcwd())
    if git is not None:
        info["git"] = git
    return info


def plugins_report() -> list[dict[str, Any]]:
    """What ``corelib plugins --json`` prints: one report per installed plugin."""
    return [attrs.asdict(report) for report in get_plugin_manager().reports()]


def _versions() -> dict[str, Any]:
    plugins = {
        report.distribution: report.version
        for report in get_plugin_manager().reports()
        if report.distribution is not None
    }
    libraries = {name: _version(name) for name in KEY_LIBRARIES}
    return {
        "python": platform.python_version(),
        "corelib": _version("corelib"),
        "plugins": plugins,
        "libraries": {name: found for name, found in libraries.items() if found is not None},
    }


def _version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _git(cwd: str) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the repository holding ``cwd``; None outside one (or without
    git). No fsmonitor hook runs; untracked files do not make the tree dirty."""
    commit = _git_output(cwd, "rev-parse", "HEAD")
    if commit is None:
        return None
    changes = _git_output(cwd, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": None if changes is None else bool(changes.strip())}


def _git_output(cwd: str, *args: str) -> str | None:
    command = ["git", "-c", "core.fsmonitor=false", "-C", cwd, *args]
    environment = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            env=environment,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None
