"""Writing a directory atomically: readers see the old one or the new one, never a half."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["write_directory"]


def write_directory(target: Path, write: Callable[[Path], None]) -> Path:
    """Fill a fresh temporary sibling of ``target`` with ``write(tmp)``, then move it in place.

    An existing ``target`` is moved aside first and removed once the new one is in place; if
    ``write`` fails, ``target`` is left untouched and the temporary directory removed.
    """
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target
