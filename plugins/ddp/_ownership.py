"""Only read checkpoints that nobody but the current user could have written.

Loading a checkpoint unpickles its ``.metadata`` (``torch.distributed.checkpoint`` does), and a
pickle can run any code. So, as ssh treats its keys, a checkpoint folder, the root folder that
holds it, and the files in them must be owned by the current user and writable by nobody else;
anything else is refused before a byte of it is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from plugins.ddp._errors import CheckpointError

__all__ = ["private_mode", "require_private"]


def require_private(*directories: Path) -> None:
    """Raise :class:`CheckpointError` unless each of ``directories`` (when it exists) and the
    files directly in it are owned by the current user and not writable by group or others."""
    if not hasattr(os, "getuid"):  # no POSIX owners (Windows): nothing to compare with
        return
    for directory in directories:
        if not directory.exists():
            continue
        _require_private_entry(directory, directory)
        if directory.is_dir():
            for entry in directory.iterdir():
                if not entry.is_dir():
                    _require_private_entry(entry, directory)


def private_mode(path: Path) -> None:
    """Drop group and other write permission from ``path`` (what a umask of 002 leaves)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        path.chmod(mode & ~(stat.S_IWGRP | stat.S_IWOTH))


def _require_private_entry(path: Path, directory: Path) -> None:
    info = path.stat()  # follows symbolic links: the target is what would be read
    what = "checkpoint folder" if path == directory else f"file in checkpoint folder {directory}"
    if info.st_uid != os.getuid():
        raise CheckpointError(
            f"refusing to read {what} {path}: it is owned by uid {info.st_uid}, not by you "
            f"(uid {os.getuid()}), and loading a checkpoint unpickles it; if you trust it, take "
            f"it over (chown -R {os.getuid()} {directory}) or copy it into a folder of your own"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = "its group" if info.st_mode & stat.S_IWGRP else "others"
        raise CheckpointError(
            f"refusing to read {what} {path}: it is writable by {who}, and loading a checkpoint "
            f"unpickles it; if you trust it, make it private: chmod -R go-w {directory}"
        )
