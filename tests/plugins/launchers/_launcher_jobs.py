"""Waiting on what a launched job leaves behind: its process id file, and its process's end."""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["wait_for_file", "wait_gone"]


def wait_gone(pid: int, within_s: float = 10.0) -> bool:
    """Whether process ``pid`` is gone (or a zombie) within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        status = Path(f"/proc/{pid}/status")
        if status.exists() and "\nState:\tZ" in status.read_text():
            return True
        time.sleep(0.1)
    return False


def wait_for_file(path: Path, within_s: float = 60.0) -> str:
    """The text of ``path`` once it exists and is not empty."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.1)
    raise AssertionError(f"{path} did not appear within {within_s} s")
